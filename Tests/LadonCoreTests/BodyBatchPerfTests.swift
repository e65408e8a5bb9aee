// Does running queued packets through the decoder and body as one batch raise a server's throughput?
// Times `ServerHalf.features` on B latents one at a time against the same B latents as one [B, …] batch,
// interleaved round by round, on a real model file (full-size weights: the GEMM shapes are what matter).
// `bodyLayerTimings` times each decoder layer and bottleneck convolution of the body on the same model file.
// Run: LADON_PERF_MODEL=model.safetensors swift test -c release --no-parallel --filter BodyBatchPerf
// (without a model file, at LADON_PERF_MODEL or the CLI's default path, it says so and measures nothing).
import Foundation
import LadonTestSupport
import Testing
@testable import LadonCore

@Suite(.serialized, .enabled(if: PerfGate.enabled, Comment(rawValue: PerfGate.reason)))
struct BodyBatchPerfTests {
    init() {
        PerfGate.announce()
        // Allocate as `ladon` does: without it every 11–50 MB tensor is a fresh mapping whose page faults land in
        // whichever layer allocates it, depending on what freed memory glibc happens to hold.
        AllocatorTuning.keepLargeBlocksForReuse()
    }

    static var modelPath: String? {
        let candidates = [ProcessInfo.processInfo.environment["LADON_PERF_MODEL"],
                          NSHomeDirectory() + "/.local/share/ladon/ladon-resnet50.safetensors"]
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// The server half of the model file and the number of timed runs (`LADON_PERF_ITERS`, default 5); `nil`, after
    /// saying so, when there is no model file.
    static func loadServer() throws -> (ServerHalf, Int)? {
        guard let path = modelPath else {
            print("BodyBatchPerf: no model file (set LADON_PERF_MODEL to a converted .safetensors); nothing measured.")
            return nil
        }
        return (try ServerHalf(path: path), Int(ProcessInfo.processInfo.environment["LADON_PERF_ITERS"] ?? "") ?? 5)
    }

    /// Where the body's time goes: each decoder layer and each bottleneck convolution of layer2–4 on the latent of a
    /// 416×416 input, median of LADON_PERF_ITERS runs, with its GFLOP/s (convolutions and GDN: 2 × MACs).
    @Test func bodyLayerTimings() throws {
        guard let (server, runs) = try Self.loadServer() else { return }
        let channels = server.config.decoderChannels[0]
        var rng = SplitMix64(seed: 7)
        let latent = Tensor(shape: [1, channels, 103, 103],
                            scalars: (0..<channels * 103 * 103).map { _ in Float(Int.random(in: -4...4, using: &rng)) })
        print("BodyLayerTimings: \(Kernels.threadCount) threads, \(Kernels.gemmKernelName) kernel, median of \(runs) runs")
        print("| layer | output | ms | GFLOP/s |")
        print("|---|---|---|---|")
        var total = 0.0
        /// Times `body`; `flops` gives the work from the output.
        func time(_ name: String, flops: (Tensor) -> Double, _ body: () -> Tensor) -> Tensor {
            var out = body()
            var times: [Double] = []
            for _ in 0..<runs { times.append(ContinuousClock().measure { out = body() }.seconds) }
            let t = DetectionPerfTests.median(times)
            total += t
            print(String(format: "| %@ | %@ | %.2f | %.0f |", name, "\(Array(out.shape.dropFirst()))", t * 1000,
                         flops(out) / t / 1e9))
            return out
        }
        func conv(_ c: Conv2d) -> (Tensor) -> Double {
            { out in
                let p = c.parameters
                return 2 * Double(p.outChannels * p.inChannels / p.groups * p.kernelHeight * p.kernelWidth)
                    * Double(out.shape[2] * out.shape[3])
            }
        }
        func gdn(_ g: GDN) -> (Tensor) -> Double { { out in 2 * Double(g.channels * g.channels * out.shape[2] * out.shape[3]) } }
        let d = server.decoder
        _ = server.features(latent)  // warm-up: scratch buffers, page faults
        let x0 = time("decoder.0", flops: conv(d.conv1)) { d.conv1(latent) }
        let x1 = time("decoder.1 IGDN", flops: gdn(d.igdn1)) { d.igdn1(x0) }
        let x2 = time("decoder.2", flops: conv(d.conv2)) { d.conv2(x1) }
        let x3 = time("decoder.3 IGDN", flops: gdn(d.igdn2)) { d.igdn2(x2) }
        var x = time("decoder.4", flops: conv(d.conv3)) { d.conv3(x3) }
        for (s, stage) in server.body.stages.enumerated() {
            for (b, block) in stage.enumerated() {
                guard case .bottleneck(let blk) = block else { continue }
                let input = x, name = "layer\(s + 2).\(b)"
                let identity = blk.downsample.map { ds in time(name + " downsample", flops: conv(ds)) { ds(input) } } ?? input
                let h1 = time(name + " conv1", flops: conv(blk.conv1)) { blk.conv1(input) }
                let h2 = time(name + " conv2", flops: conv(blk.conv2)) { blk.conv2(h1) }
                x = time(name + " conv3", flops: conv(blk.conv3)) { blk.conv3(h2, residual: identity) }
            }
        }
        print(String(format: "| total | | %.1f | |", total * 1000))
    }

    @Test func batchedBodyAgainstOneByOne() throws {
        guard let (server, rounds) = try Self.loadServer() else { return }
        // The latent of a 416×416 padded input; integer symbols as the entropy decoder returns them.
        let channels = server.config.decoderChannels[0]
        let (h, w) = (103, 103)
        var rng = SplitMix64(seed: 5)
        print("BodyBatchPerf: decoder + layer2–4 per image, latent [\(channels), \(h), \(w)], \(Kernels.threadCount) threads, "
            + "median of \(rounds) interleaved rounds (\(Kernels.gemmKernelName) kernel)")
        print("| batch | one by one (ms/image) | batched (ms/image) | batched / one by one |")
        print("|---|---|---|---|")
        for batch in [2, 4] {
            let latents = (0..<batch).map { _ in
                Tensor(shape: [1, channels, h, w],
                       scalars: (0..<channels * h * w).map { _ in Float(Int.random(in: -4...4, using: &rng)) })
            }
            let stacked = Tensor(shape: [batch, channels, h, w], scalars: latents.flatMap(\.scalars))
            var single: [Double] = [], batched: [Double] = []
            _ = server.features(latents[0])
            for _ in 0..<rounds {
                single.append(ContinuousClock().measure { for l in latents { _ = server.features(l) } }.seconds / Double(batch))
                batched.append(ContinuousClock().measure { _ = server.features(stacked) }.seconds / Double(batch))
            }
            let (s, b) = (DetectionPerfTests.median(single), DetectionPerfTests.median(batched))
            print(String(format: "| %d | %.1f | %.1f | %.2f |", batch, s * 1000, b * 1000, b / s))
        }
    }
}
