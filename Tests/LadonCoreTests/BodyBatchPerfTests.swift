// Does running queued packets through the decoder and body as one batch raise a server's throughput?
// Times `ServerHalf.features` on B latents one at a time against the same B latents as one [B, …] batch,
// interleaved round by round, on a real model file (full-size weights: the GEMM shapes are what matter).
// Run: LADON_PERF_MODEL=model.safetensors swift test -c release --no-parallel --filter BodyBatchPerf
// (without a model file, at LADON_PERF_MODEL or the CLI's default path, it says so and measures nothing).
import Foundation
import LadonTestSupport
import Testing
@testable import LadonCore

@Suite(.serialized, .enabled(if: PerfGate.enabled, Comment(rawValue: PerfGate.reason)))
struct BodyBatchPerfTests {
    init() { PerfGate.announce() }

    static var modelPath: String? {
        let candidates = [ProcessInfo.processInfo.environment["LADON_PERF_MODEL"],
                          NSHomeDirectory() + "/.local/share/ladon/ladon-resnet50.safetensors"]
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
    }

    @Test func batchedBodyAgainstOneByOne() throws {
        guard let path = Self.modelPath else {
            print("BodyBatchPerf: no model file (set LADON_PERF_MODEL to a converted .safetensors); nothing measured.")
            return
        }
        let server = try ServerHalf(path: path)
        let rounds = Int(ProcessInfo.processInfo.environment["LADON_PERF_ITERS"] ?? "") ?? 5
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
