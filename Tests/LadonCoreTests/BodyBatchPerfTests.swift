// Does running queued packets through the decoder and body as one batch raise a server's throughput?
// Times the decoder + layer2–4 on B latents one at a time against the same B latents as one [B, …] batch,
// interleaved round by round, on full-size weights (the GEMM shapes are what matter, not the values).
// `bodyLayerTimings` times each decoder layer and bottleneck convolution of the body the same way.
// Run: swift test -c release --no-parallel --filter BodyBatchPerf
// The weights come from LADON_PERF_MODEL (or the CLI's default model path) when that file exists; otherwise they are
// random, in memory, with the full-size ResNet-50 Ladon shapes (LadonWeightLayout), so the benchmark always runs.
import Foundation
import LadonTestSupport
import Testing
@testable import LadonCore

@Suite(.serialized, .enabled(if: PerfGate.enabled, Comment(rawValue: PerfGate.reason)))
struct BodyBatchPerfTests {
    init() {
        PerfGate.announce()
    }

    /// The decoder and layer2–4 under test, and where their weights came from.
    struct Body {
        let config: LadonModelConfig
        let decoder: LadonDecoder
        let body: ResNetBody
        let source: String

        /// Decoder then layer2–4, as `ServerHalf.features` runs them.
        func features(_ latent: Tensor) -> [Tensor] { body(decoder(latent)) }
    }

    static var modelPath: String? {
        let candidates = [ProcessInfo.processInfo.environment["LADON_PERF_MODEL"],
                          NSHomeDirectory() + "/.local/share/ladon/ladon-resnet50.safetensors"]
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// The number of timed runs (`LADON_PERF_ITERS`, default 5).
    static var runs: Int { Int(ProcessInfo.processInfo.environment["LADON_PERF_ITERS"] ?? "") ?? 5 }

    /// The decoder and body of the model file, or of random full-size ResNet-50 weights when there is none.
    static func loadBody() throws -> Body {
        if let path = modelPath {
            let server = try ServerHalf(path: path)
            return Body(config: server.config, decoder: server.decoder, body: server.body, source: path)
        }
        let config = LadonModelConfig.resnet50
        let root = WeightScope(file: try SafeTensorsFile(data: randomSharedBodyWeights(config)))
        return Body(config: config,
                    decoder: try LadonDecoder(weights: root.scope("shared_body.decoder"), channels: config.decoderChannels),
                    body: try ResNetBody(weights: root.scope("shared_body"), inChannels: config.decoderChannels[3],
                                         config: config.body),
                    source: "random full-size ResNet-50 weights (no model file; set LADON_PERF_MODEL to use one)")
    }

    /// Every decoder and layer2–4 tensor of `config` with values in the ranges trained weights have: convolutions
    /// ±√(6 / fan-in) (activations keep their scale through the ReLUs), GDN β near 1 and γ small and positive (in
    /// CompressAI's reparametrised form), BatchNorm close to identity. Timing does not depend on the values as long as
    /// the activations stay finite and normal.
    static func randomSharedBodyWeights(_ config: LadonModelConfig) -> Data {
        var rng = SplitMix64(seed: 11)
        var writer = SafeTensorsWriter()
        let groups: Set<LadonWeightLayout.Group> = [.decoder, .layer2, .layer3, .layer4]
        for spec in LadonWeightLayout.sharedSpecs(for: config) where groups.contains(spec.group) {
            let name = spec.name, count = spec.shape.reduce(1, *)
            func uniform(_ range: ClosedRange<Float>) -> Tensor { Tensor.random(spec.shape, in: range, using: &rng) }
            let tensor: Tensor
            if name.hasSuffix(".pedestal") {
                tensor = Tensor(shape: spec.shape, repeating: 0x1p-36)
            } else if name.hasSuffix("beta_reparam.lower_bound.bound") {
                tensor = Tensor(shape: spec.shape, repeating: Float((1e-6 + 0x1p-36).squareRoot()))
            } else if name.hasSuffix("gamma_reparam.lower_bound.bound") {
                tensor = Tensor(shape: spec.shape, repeating: 0x1p-18)
            } else if name.hasSuffix(".beta") {
                tensor = uniform(0.9...1.1)
            } else if name.hasSuffix(".gamma") {
                tensor = uniform(0.001...0.02)
            } else if name.hasSuffix(".running_var") || (name.hasSuffix(".weight") && spec.shape.count == 1) {
                tensor = uniform(0.8...1.2)
            } else if name.hasSuffix(".running_mean") || name.hasSuffix(".bias") {
                tensor = uniform(-0.1...0.1)
            } else {
                let fanIn = count / spec.shape[0]
                let bound = (6 / Float(fanIn)).squareRoot()
                tensor = uniform(-bound...bound)
            }
            writer.add(name, tensor)
        }
        return writer.serialized()
    }

    /// Where the body's time goes: each decoder layer and each bottleneck convolution of layer2–4 on the latent of a
    /// 416×416 input, median of LADON_PERF_ITERS runs, with its GFLOP/s (convolutions and GDN: 2 × MACs).
    @Test func bodyLayerTimings() throws {
        let model = try Self.loadBody(), runs = Self.runs
        let channels = model.config.decoderChannels[0]
        var rng = SplitMix64(seed: 7)
        let latent = Tensor(shape: [1, channels, 103, 103],
                            scalars: (0..<channels * 103 * 103).map { _ in Float(Int.random(in: -4...4, using: &rng)) })
        print("BodyLayerTimings: \(Kernels.threadCount) threads, \(Kernels.gemmKernelName) kernel, median of \(runs) runs, "
            + model.source)
        print("| layer | output | ms | GFLOP/s |")
        print("|---|---|---|---|")
        // The layers run as a chain, as in the model half: each output is a fresh tensor, written over memory an earlier
        // layer freed (an isolated layer timed in a loop would rewrite one block that is still in cache).
        var times: [String: [Double]] = [:], order: [String] = [], work: [String: Double] = [:], shapes: [String: [Int]] = [:]
        var overShortcut: Set<String> = []
        /// Runs `body` as step `name` of the chain and records its time; `flops` gives the work from the output.
        func step(_ name: String, flops: (Tensor) -> Double, _ body: () -> Tensor) -> Tensor {
            var out: Tensor?
            let t = ContinuousClock().measure { out = body() }.seconds
            record(name, t, flops: flops, out!)
            return out!
        }
        func record(_ name: String, _ t: Double, flops: (Tensor) -> Double, _ out: Tensor) {
            if times[name] == nil { order.append(name) }
            times[name, default: []].append(t)
            work[name] = flops(out)
            shapes[name] = Array(out.shape.dropFirst())
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
        let d = model.decoder
        // Warm-up (scratch buffers, page faults); random weights must give finite, normal activations to time fairly.
        let warm = model.features(latent).last!.scalars
        let subnormal = warm.filter { $0 != 0 && !$0.isNormal }.count
        print(String(format: "layer4 output: max |x| %.3g, %d subnormal of %d", warm.map(abs).max()!, subnormal, warm.count))
        let finite = warm.allSatisfy { $0.isFinite }
        #expect(finite)
        for _ in 0..<runs {
            var x = step("decoder.0", flops: conv(d.conv1)) { d.conv1(latent) }
            gdnStep("decoder.1 IGDN", d.igdn1, &x)
            x = step("decoder.2", flops: conv(d.conv2)) { d.conv2(x) }
            gdnStep("decoder.3 IGDN", d.igdn2, &x)
            x = step("decoder.4", flops: conv(d.conv3)) { d.conv3(x) }
            for (s, stage) in model.body.stages.enumerated() {
                for (b, block) in stage.enumerated() {
                    guard case .bottleneck(let blk) = block else { x = block(consume x); continue }
                    let name = "layer\(s + 2).\(b)"
                    var identity = blk.downsample.map { ds in step(name + " downsample", flops: conv(ds)) { [x] in ds(x) } }
                    let h1 = step(name + " conv1", flops: conv(blk.conv1)) { [x] in blk.conv1(x) }
                    let h2 = step(name + " conv2", flops: conv(blk.conv2)) { blk.conv2(h1) }
                    // conv3 writes over the shortcut as the block does (`x` is given up when it is the shortcut).
                    var shortcut: Tensor? = identity.take() ?? x
                    x = Tensor(shape: [0])
                    let storage = shortcut?.withUnsafeBufferPointer { $0.baseAddress }
                    let start = ContinuousClock.now
                    x = blk.conv3(h2, residualInPlace: shortcut.take()!)
                    record(name + " conv3", (ContinuousClock.now - start).seconds, flops: conv(blk.conv3), x)
                    if x.withUnsafeBufferPointer({ $0.baseAddress }) == storage { overShortcut.insert(name) }
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
        print("conv3 written over its shortcut: \(overShortcut.sorted().joined(separator: ", "))")
    }

    @Test func batchedBodyAgainstOneByOne() throws {
        let model = try Self.loadBody(), rounds = Self.runs
        // The latent of a 416×416 padded input; integer symbols as the entropy decoder returns them.
        let channels = model.config.decoderChannels[0]
        let (h, w) = (103, 103)
        var rng = SplitMix64(seed: 5)
        print("BodyBatchPerf: decoder + layer2–4 per image, latent [\(channels), \(h), \(w)], \(Kernels.threadCount) threads, "
            + "median of \(rounds) interleaved rounds (\(Kernels.gemmKernelName) kernel), \(model.source)")
        print("| batch | one by one (ms/image) | batched (ms/image) | batched / one by one |")
        print("|---|---|---|---|")
        for batch in [2, 4] {
            let latents = (0..<batch).map { _ in
                Tensor(shape: [1, channels, h, w],
                       scalars: (0..<channels * h * w).map { _ in Float(Int.random(in: -4...4, using: &rng)) })
            }
            let stacked = Tensor(shape: [batch, channels, h, w], scalars: latents.flatMap(\.scalars))
            var single: [Double] = [], batched: [Double] = []
            _ = model.features(latents[0])
            for _ in 0..<rounds {
                single.append(ContinuousClock().measure { for l in latents { _ = model.features(l) } }.seconds / Double(batch))
                batched.append(ContinuousClock().measure { _ = model.features(stacked) }.seconds / Double(batch))
            }
            let (s, b) = (DetectionPerfTests.median(single), DetectionPerfTests.median(batched))
            print(String(format: "| %d | %.1f | %.1f | %.2f |", batch, s * 1000, b * 1000, b / s))
        }
    }
}
