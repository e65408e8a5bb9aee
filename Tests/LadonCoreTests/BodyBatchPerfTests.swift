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
        // The layers run as a chain, as in the server half: each output is a fresh tensor, written over memory an earlier
        // layer freed (an isolated layer timed in a loop would rewrite one block that is still in cache).
        var times: [String: [Double]] = [:], order: [String] = [], work: [String: Double] = [:], shapes: [String: [Int]] = [:]
        /// Runs `body` as step `name` of the chain and records its time; `flops` gives the work from the output.
        func step(_ name: String, flops: (Tensor) -> Double, _ body: () -> Tensor) -> Tensor {
            var out: Tensor?
            let t = ContinuousClock().measure { out = body() }.seconds
            if times[name] == nil { order.append(name) }
            times[name, default: []].append(t)
            work[name] = flops(out!)
            shapes[name] = Array(out!.shape.dropFirst())
            return out!
        }
        func conv(_ c: Conv2d) -> (Tensor) -> Double {
            { out in
                let p = c.parameters
                return 2 * Double(p.outChannels * p.inChannels / p.groups * p.kernelHeight * p.kernelWidth)
                    * Double(out.shape[2] * out.shape[3])
            }
        }
        /// A GDN step works in place on the previous output, as `GDN.callAsFunction` does on the decoder's temporaries.
        func gdnStep(_ name: String, _ g: GDN, _ x: inout Tensor) {
            _ = step(name, flops: { out in 2 * Double(g.channels * g.channels * out.shape[2] * out.shape[3]) }) {
                Kernels.gdnInPlace(&x, beta: g.beta, gamma: g.gamma, inverse: g.inverse, packedGamma: g.packedGamma)
                return x
            }
        }
        let d = server.decoder
        _ = server.features(latent)  // warm-up: scratch buffers, page faults
        for _ in 0..<runs {
            var x = step("decoder.0", flops: conv(d.conv1)) { d.conv1(latent) }
            gdnStep("decoder.1 IGDN", d.igdn1, &x)
            x = step("decoder.2", flops: conv(d.conv2)) { d.conv2(x) }
            gdnStep("decoder.3 IGDN", d.igdn2, &x)
            x = step("decoder.4", flops: conv(d.conv3)) { d.conv3(x) }
            for (s, stage) in server.body.stages.enumerated() {
                for (b, block) in stage.enumerated() {
                    guard case .bottleneck(let blk) = block else { x = block(x); continue }
                    let input = x, name = "layer\(s + 2).\(b)"
                    let identity = blk.downsample.map { ds in step(name + " downsample", flops: conv(ds)) { ds(input) } } ?? input
                    let h1 = step(name + " conv1", flops: conv(blk.conv1)) { blk.conv1(input) }
                    let h2 = step(name + " conv2", flops: conv(blk.conv2)) { blk.conv2(h1) }
                    x = step(name + " conv3", flops: conv(blk.conv3)) { blk.conv3(h2, residual: identity) }
                }
            }
        }
        var total = 0.0
        for name in order {
            let t = DetectionPerfTests.median(times[name]!)
            total += t
            print(String(format: "| %@ | %@ | %.2f | %.0f |", name, "\(shapes[name]!)", t * 1000, work[name]! / t / 1e9))
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
