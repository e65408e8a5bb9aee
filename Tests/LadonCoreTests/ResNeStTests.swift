// ResNeSt-269e Ladon: grouped convolution, the two average pools, split attention and the body against timm /
// sc2bench (Scripts/make_resnest_fixtures.py), and the full-size weight layout.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct ResNeStKernelTests {
    static let ops: KernelFixture = try! KernelFixture("resnest_ops")

    @Test(arguments: Conv2dTests.forced + [.reference, .automatic])
    func groupedConvolutionMatchesPyTorch(algorithm: Conv2dAlgorithm) throws {
        let f = Self.ops
        for name in ["g2_3x3", "g2_3x3_s2", "g3_3x3", "g4_1x1", "g4_5x5"] {
            let q = try f.integers("conv_\(name)_params")
            let p = Conv2dParameters(inChannels: q[0], outChannels: q[1], kernelSize: q[2], stride: q[3], padding: q[4], groups: q[5])
            let y = Kernels.conv2d(try f.tensor("conv_\(name)_x"), weight: try f.tensor("conv_\(name)_w"), bias: nil, p,
                                   algorithm: algorithm, threads: 2)
            expectClose(y, try f.tensor("conv_\(name)_y"), rtol: 1e-5, atol: 1e-6, "\(name) \(algorithm)")
        }
    }

    static let poolCases = ["13x13", "8x10", "7x4", "1x3", "2x2", "40x37"]

    @Test func averagePoolsMatchPyTorch() throws {
        for name in Self.poolCases {
            let x = try Self.ops.tensor("pool_\(name)_x")
            let avd = try Self.ops.tensor("pool_\(name)_avd"), down = try Self.ops.tensor("pool_\(name)_down")
            // Same windows, divisors and summation order as ATen's CPU kernel: identical.
            expectIdentical(Kernels.avgPool2d(x, kernelSize: 3, stride: 2, padding: 1), avd, "avd \(name)")
            expectIdentical(Kernels.avgPool2d(x, kernelSize: 2, stride: 2, ceilMode: true, countIncludePad: false), down, "down \(name)")
            expectClose(Kernels.avgPool2dReference(x, kernelSize: 3, stride: 2, padding: 1), avd, rtol: 1e-6, atol: 1e-7, "avd ref \(name)")
            expectClose(Kernels.avgPool2dReference(x, kernelSize: 2, stride: 2, ceilMode: true, countIncludePad: false), down,
                        rtol: 1e-6, atol: 1e-7, "down ref \(name)")
        }
    }

    @Test func averagePoolDivisorsFollowPyTorch() {
        // 3×3/s2/p1 with padding counted: every window divides by 9 (corners cover 4 ones, edges 6).
        let ones5 = Tensor(shape: [1, 1, 5, 5], repeating: 1)
        let expected: [Float] = [4, 6, 4, 6, 9, 6, 4, 6, 4].map { $0 / 9 }
        #expect(Kernels.avgPool2d(ones5, kernelSize: 3, stride: 2, padding: 1).scalars == expected)
        let ones = Tensor(shape: [1, 1, 3, 3], repeating: 1)
        // 2×2/s2 ceil mode without padding counted: 3 → 2 windows, the last one element wide, all averages 1.
        let allOnes: [Float] = [1, 1, 1, 1]
        #expect(Kernels.avgPool2d(ones, kernelSize: 2, stride: 2, ceilMode: true, countIncludePad: false).scalars == allOnes)
        // Ceil mode drops a window that would start in the padding: 5 + p1, k2, s2 → 3, not 4.
        #expect(Kernels.avgPooledExtent(5, kernelSize: 2, stride: 2, padding: 1, ceilMode: true) == 3)
        #expect(Kernels.avgPooledExtent(13, kernelSize: 2, stride: 2, padding: 0, ceilMode: true) == 7)
        #expect(Kernels.avgPooledExtent(13, kernelSize: 2, stride: 2, padding: 0, ceilMode: false) == 6)
    }

    @Test func averagePoolMatchesReferenceOnOddShapes() {
        var rng = SplitMix64(seed: 12)
        for _ in 0..<40 {
            let k = rng.extent(1...4), s = rng.extent(1...3), p = rng.extent(0...(k / 2))
            let ceil = Bool.random(using: &rng), count = Bool.random(using: &rng)
            let x = Tensor.random([rng.extent(1...2), rng.extent(1...4), rng.extent(k...30), rng.extent(k...30)], using: &rng)
            expectClose(Kernels.avgPool2d(x, kernelSize: k, stride: s, padding: p, ceilMode: ceil, countIncludePad: count),
                        Kernels.avgPool2dReference(x, kernelSize: k, stride: s, padding: p, ceilMode: ceil, countIncludePad: count),
                        rtol: 1e-6, atol: 1e-6, "k\(k) s\(s) p\(p) ceil \(ceil) count \(count) \(x.shape)")
        }
    }

    /// fc1 with bn1 folded (as the block loads it), fc2, from the fixture's SplitAttn state dict.
    static func attentionLayers(_ name: String) throws -> (radix: Int, fc1: Conv2d, fc2: Conv2d) {
        let q = try ops.integers("attn_\(name)_params")
        let (radix, w, a) = (q[0], q[1], q[2])
        let scope = WeightScope(file: ops.file, prefix: "attn_\(name)")
        let fc1 = try Conv2d(weights: scope.scope("fc1"), parameters: .init(inChannels: w, outChannels: a, kernelSize: 1),
                             hasBias: true, batchNorm: scope.scope("bn1"), activation: .relu)
        let fc2 = try Conv2d(weights: scope.scope("fc2"), parameters: .init(inChannels: a, outChannels: radix * w, kernelSize: 1),
                             hasBias: true)
        return (radix, fc1, fc2)
    }

    @Test(arguments: ["r2", "r2_wide", "r3"]) func splitAttentionMatchesTimm(_ name: String) throws {
        let (radix, fc1, fc2) = try Self.attentionLayers(name)
        let splits = try Self.ops.tensor("attn_\(name)_splits"), expected = try Self.ops.tensor("attn_\(name)_y")
        let fast = Kernels.splitAttention(splits, radix: radix, fc1Weight: fc1.weight, fc1Bias: fc1.bias!,
                                          fc2Weight: fc2.weight, fc2Bias: fc2.bias!)
        let reference = Kernels.splitAttentionReference(splits, radix: radix, fc1Weight: fc1.weight, fc1Bias: fc1.bias!,
                                                        fc2Weight: fc2.weight, fc2Bias: fc2.bias!)
        expectClose(fast, expected, rtol: 1e-5, atol: 1e-6, "\(name) fast")
        expectClose(reference, expected, rtol: 1e-5, atol: 1e-6, "\(name) reference")
        // The attention must matter: the output is not the plain mean of the splits.
        let mean = Kernels.splitAttentionReference(splits, radix: radix, fc1Weight: Tensor(shape: [fc1.weight.count]),
                                                   fc1Bias: fc1.bias!.map { _ in 0 }, fc2Weight: Tensor(shape: [fc2.weight.count]),
                                                   fc2Bias: fc2.bias!.map { _ in 0 })
        #expect(zip(mean.scalars, expected.scalars).map { abs($0 - $1) }.max()! > 0.05)
    }

    @Test func splitAttentionMatchesReferenceOnOddShapes() {
        var rng = SplitMix64(seed: 269)
        for _ in 0..<12 {
            let radix = rng.extent(1...3), c = rng.extent(1...9), a = rng.extent(1...7)
            let x = Tensor.random([rng.extent(1...2), radix * c, rng.extent(1...40), rng.extent(1...40)], in: 0...2, using: &rng)
            let w1 = Tensor.random([a, c], using: &rng), w2 = Tensor.random([radix * c, a], in: -3...3, using: &rng)
            let b1 = (0..<a).map { _ in Float.random(in: -1...1, using: &rng) }
            let b2 = (0..<(radix * c)).map { _ in Float.random(in: -1...1, using: &rng) }
            expectClose(Kernels.splitAttention(x, radix: radix, fc1Weight: w1, fc1Bias: b1, fc2Weight: w2, fc2Bias: b2),
                        Kernels.splitAttentionReference(x, radix: radix, fc1Weight: w1, fc1Bias: b1, fc2Weight: w2, fc2Bias: b2),
                        rtol: 1e-5, atol: 1e-6, "radix \(radix) \(x.shape) a \(a)")
        }
    }

    @Test func attentionWidthIsTimmsMakeDivisible() throws {
        let json = try #require(Self.ops.file.metadata["makeDivisible"])
        let expected = try JSONDecoder().decode([String: Int].self, from: Data(json.utf8))
        #expect(expected.count == 7)
        for (planes, width) in expected {
            #expect(ResNeStBottleneckBlock.attentionChannels(planes: Int(planes)!, radix: 2) == width, "planes \(planes)")
        }
    }
}

@Suite struct ResNeStBodyTests {
    static let fixture: SafeTensorsFile = try! Fixtures.safetensors("model/resnest_body.safetensors")

    static func bodyConfig() throws -> LadonModelConfig.Body {
        try JSONDecoder().decode(LadonModelConfig.Body.self, from: Data(#require(fixture.metadata["body"]).utf8))
    }

    @Test func stagesMatchSplittableResNeSt() throws {
        let config = try Self.bodyConfig()
        #expect(config.kind == .resnest269e && config.blocks == [2, 3, 2])
        let inChannels = try #require(Int(Self.fixture.metadata["inChannels"] ?? ""))
        let body = try ResNetBody(weights: WeightScope(file: Self.fixture, prefix: "shared_body"), inChannels: inChannels, config: config)
        #expect(body.stages.map(\.count) == [2, 3, 2])
        let features = body(try Self.fixture.tensor("input"))
        // Odd extents on the way (14×10 → 7×5 → 4×3 → 2×2): the ceil-mode shortcut pool and the avd pool line up.
        #expect(features.map(\.shape) == [[1, 24, 7, 5], [1, 32, 4, 3], [1, 40, 2, 2]])
        for (k, name) in ["layer2", "layer3", "layer4"].enumerated() {
            expectClose(features[k], try Self.fixture.tensor(name), rtol: 1e-5, atol: 1e-6, name)
        }
    }

    @Test func layoutNamesEveryTensorOfTheTimmBody() throws {
        var config = LadonModelConfig.resnest269e
        config.body = try Self.bodyConfig()
        config.decoderChannels[3] = try #require(Int(Self.fixture.metadata["inChannels"] ?? ""))
        try config.validate()
        let specs = LadonWeightLayout.sharedSpecs(for: config).filter { $0.name.hasPrefix("shared_body.layer") }
        let stored = Self.fixture.names.filter { $0.hasPrefix("shared_body.") }
        #expect(Set(specs.map(\.name)) == Set(stored))
        for spec in specs { #expect(spec.matches(try Self.fixture.entry(spec.name).shape), "\(spec.name)") }
    }

    @Test func fullSizeLayoutHasTimmsCountsAndParameters() {
        let specs = LadonWeightLayout.sharedSpecs(for: .resnest269e)
        let body = specs.filter { [.layer2, .layer3, .layer4].contains($0.group) }
        // timm resnest269e layer2–4: 2,340 state-dict entries, of which 347 are num_batches_tracked (not stored).
        #expect(body.count == 1_993)
        let parameters = body.filter { !$0.name.hasSuffix("running_mean") && !$0.name.hasSuffix("running_var") }
            .map { $0.shape.reduce(1, *) }.reduce(0, +)
        #expect(parameters == 108_511_872)
        #expect(specs.first { $0.name == "shared_body.layer4.0.conv2.conv.weight" }?.shape == [1024, 256, 3, 3])
        #expect(specs.first { $0.name == "shared_body.layer4.0.conv2.fc1.weight" }?.shape == [256, 512, 1, 1])
        #expect(specs.first { $0.name == "shared_body.layer4.0.downsample.1.weight" }?.shape == [2048, 1024, 1, 1])
        #expect(specs.first { $0.name == "encoder.encoder.4.weight" }?.shape == [32, 64, 2, 2])
    }

    @Test func shippedConfigIsTheBuiltInOne() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shipped = try LadonModelConfig.load(path: root.appendingPathComponent("Configs/ladon-resnest269e.json").path)
        #expect(shipped == .resnest269e)
        #expect(LadonModelConfig.builtIn(backbone: "resnest269e") == .resnest269e)
        var odd = LadonModelConfig.resnest269e
        odd.body.planes = [128, 255, 512]
        #expect(throws: LadonError.self) { try odd.validate() }
    }
}
