// How long a model takes to load, and how much slower the first image after loading runs than the next ones.
// Run: swift test -c release --no-parallel --filter ModelLoadPerf
// With a model file (LADON_PERF_MODEL, or the CLI's default path) it loads the whole model (`LadonModel(path:)`) on one
// and two threads; otherwise it loads the decoder and layer2–4 of random full-size weights written to a temporary file.
// The file is read once before timing, so every load finds it in the page cache (as a service restart or a second
// `ladon infer` does).
import Foundation
import LadonTestSupport
import Testing
@testable import LadonCore

@Suite(.serialized, .enabled(if: PerfGate.enabled, Comment(rawValue: PerfGate.reason)))
struct ModelLoadPerfTests {
    init() { PerfGate.announce() }

    @Test func loadAndFirstImage() throws {
        let runs = BodyBatchPerfTests.runs
        let saved = Kernels.threadCount
        defer { Kernels.threadCount = saved }
        guard let path = BodyBatchPerfTests.modelPath else {
            // No model file: the decoder and body of random full-size weights, from a file.
            let config = LadonModelConfig.resnet50
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-load-\(UUID().uuidString).safetensors")
            try BodyBatchPerfTests.randomSharedBodyWeights(config).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let ms = KernelPerfTests.medianMilliseconds(runs: runs) {
                let root = WeightScope(file: try! SafeTensorsFile(path: file.path))
                _ = try! ResNetBody(weights: root.scope("shared_body"), inChannels: config.decoderChannels[3], config: config.body)
            }
            KernelPerfTests.report("load layer2-4, random weights (no model file)", ms, "median of \(runs)")
            return
        }
        _ = try Data(contentsOf: URL(fileURLWithPath: path))  // into the page cache
        var model: LadonModel?
        for threads in [1, 2] {
            Kernels.threadCount = threads
            let ms = KernelPerfTests.medianMilliseconds(runs: runs) { model = try! LadonModel(path: path) }
            KernelPerfTests.report("LadonModel(path:), \(threads) thread(s)", ms, "median of \(runs) after a warm-up load")
        }
        // The first image after loading makes the Winograd weights and touches activation memory the loads did not use
        // (in a fresh `ladon infer` process it also pays every first-touch page fault, so there the gap is larger).
        Kernels.threadCount = saved
        var rng = SplitMix64(seed: 21)
        let image = Tensor.random([1, 3, 480, 640], in: 0...1, using: &rng)
        let times = try (0..<3).map { _ in try ContinuousClock().measure { _ = try model!.infer(image) }.seconds * 1e3 }
        KernelPerfTests.report("infer 640x480: first image after the load", times[0],
                               String(format: "then %.1f, %.1f ms", times[1], times[2]))
    }
}
