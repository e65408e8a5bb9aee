// The body layer2…layer4: torchvision Bottleneck v1.5 (ResNet-50) or timm ResNestBottleneck (ResNeSt-269e) blocks,
// with BatchNorm folded into the convolutions.

/// torchvision `Bottleneck`: 1×1 → BN → ReLU → 3×3 (stride) → BN → ReLU → 1×1 → BN, + shortcut, ReLU.
public struct ResNetBottleneckBlock: Sendable {
    package let conv1: Conv2d, conv2: Conv2d, conv3: Conv2d
    /// 1×1 strided conv + BN on the shortcut (first block of a stage only).
    package let downsample: Conv2d?

    package init(weights s: WeightScope, inChannels: Int, planes: Int, expansion: Int, stride: Int,
                epsilon: Float = 1e-5) throws(LadonError) {
        let out = planes * expansion
        conv1 = try Conv2d(weights: s.scope("conv1"), parameters: .init(inChannels: inChannels, outChannels: planes, kernelSize: 1),
                           hasBias: false, batchNorm: s.scope("bn1"), epsilon: epsilon, activation: .relu)
        conv2 = try Conv2d(weights: s.scope("conv2"), parameters: .init(inChannels: planes, outChannels: planes, kernelSize: 3, stride: stride, padding: 1),
                           hasBias: false, batchNorm: s.scope("bn2"), epsilon: epsilon, activation: .relu)
        // conv3 + bn3 + residual + ReLU run as one fused convolution.
        conv3 = try Conv2d(weights: s.scope("conv3"), parameters: .init(inChannels: planes, outChannels: out, kernelSize: 1),
                           hasBias: false, batchNorm: s.scope("bn3"), epsilon: epsilon, activation: .relu)
        if stride != 1 || inChannels != out {
            downsample = try Conv2d(weights: s.scope("downsample.0"), parameters: .init(inChannels: inChannels, outChannels: out, kernelSize: 1, stride: stride),
                                    hasBias: false, batchNorm: s.scope("downsample.1"), epsilon: epsilon)
        } else {
            downsample = nil
        }
    }

    /// Runs the block. When `x` is passed with `consume` and no downsample applies, conv3 writes its result over `x`
    /// (``Conv2d/callAsFunction(_:residualInPlace:)``).
    public func callAsFunction(_ x: consuming Tensor) -> Tensor {
        let y = conv2(conv1(x))
        if let downsample { return conv3(y, residualInPlace: downsample(x)) }
        return conv3(y, residualInPlace: consume x)
    }
}

/// timm `ResNestBottleneck` as `resnest269e` builds it (radix 2, cardinality 1, `avd` after the attention,
/// `avg_down` shortcut), BatchNorm folded:
/// 1×1 → BN → ReLU → split attention (grouped 3×3 → BN → ReLU → `Kernels.splitAttention`)
/// → 3×3/s2/p1 average pool (strided blocks) → 1×1 → BN, + shortcut, ReLU. The shortcut of a stage's first block is
/// a 2×2/s2 ceil-mode average pool (padding not counted; none at stride 1), a 1×1 conv and BN.
public struct ResNeStBottleneckBlock: Sendable {
    /// `conv1` + `bn1` + ReLU.
    package let conv1: Conv2d
    /// `conv2.conv` (3×3, `groups = radix`, `planes → radix·planes`) + `conv2.bn0` + ReLU.
    package let splitConv: Conv2d
    /// `conv2.fc1` + `conv2.bn1` (ReLU applied by the attention kernel) and `conv2.fc2`.
    package let fc1: Conv2d, fc2: Conv2d
    /// `conv3` + `bn3`, residual and ReLU fused.
    package let conv3: Conv2d
    /// `downsample.1` + `downsample.2` (first block of a stage only).
    package let downsample: Conv2d?
    public let radix: Int
    public let stride: Int

    /// Radix of `resnest269e` (timm `block_args=dict(radix=2, avd=True, avd_first=False)`).
    public static let resnest269eRadix = 2

    /// Width of the attention MLP: timm's `make_divisible(planes·radix·0.25, divisor 8, min_value 32)`
    /// (`planes / 2` for every ResNeSt-269e stage, at least 32 for narrow test models).
    public static func attentionChannels(planes: Int, radix: Int) -> Int {
        let v = Double(planes * radix) * 0.25
        var rounded = max(32, Int(v + 4) / 8 * 8)
        if Double(rounded) < 0.9 * v { rounded += 8 }
        return rounded
    }

    /// Loads one block from `s` (timm names: `conv1`, `bn1`, `conv2.{conv,bn0,fc1,bn1,fc2}`, `conv3`, `bn3`,
    /// `downsample.{1,2}`) and folds every BatchNorm.
    ///
    /// - Parameters:
    ///   - s: the block's scope, e.g. `shared_body.layer3.0`.
    ///   - inChannels: channels entering the block.
    ///   - planes: the block's width `w` (the attention splits have `w` channels each).
    ///   - expansion: output channels are `expansion · planes` (4 in timm).
    ///   - stride: 2 for the first block of a stage (average pools after the attention and on the shortcut), else 1.
    ///   - radix: number of splits (2 for ResNeSt-269e).
    ///   - epsilon: BatchNorm epsilon.
    package init(weights s: WeightScope, inChannels: Int, planes: Int, expansion: Int, stride: Int,
                radix: Int = ResNeStBottleneckBlock.resnest269eRadix, epsilon: Float = 1e-5) throws(LadonError) {
        let out = planes * expansion, attention = Self.attentionChannels(planes: planes, radix: radix)
        conv1 = try Conv2d(weights: s.scope("conv1"), parameters: .init(inChannels: inChannels, outChannels: planes, kernelSize: 1),
                           hasBias: false, batchNorm: s.scope("bn1"), epsilon: epsilon, activation: .relu)
        splitConv = try Conv2d(weights: s.scope("conv2.conv"),
                               parameters: .init(inChannels: planes, outChannels: planes * radix, kernelSize: 3, padding: 1, groups: radix),
                               hasBias: false, batchNorm: s.scope("conv2.bn0"), epsilon: epsilon, activation: .relu)
        fc1 = try Conv2d(weights: s.scope("conv2.fc1"), parameters: .init(inChannels: planes, outChannels: attention, kernelSize: 1),
                         hasBias: true, batchNorm: s.scope("conv2.bn1"), epsilon: epsilon, activation: .relu)
        fc2 = try Conv2d(weights: s.scope("conv2.fc2"), parameters: .init(inChannels: attention, outChannels: planes * radix, kernelSize: 1),
                         hasBias: true)
        conv3 = try Conv2d(weights: s.scope("conv3"), parameters: .init(inChannels: planes, outChannels: out, kernelSize: 1),
                           hasBias: false, batchNorm: s.scope("bn3"), epsilon: epsilon, activation: .relu)
        if stride != 1 || inChannels != out {
            downsample = try Conv2d(weights: s.scope("downsample.1"), parameters: .init(inChannels: inChannels, outChannels: out, kernelSize: 1),
                                    hasBias: false, batchNorm: s.scope("downsample.2"), epsilon: epsilon)
        } else {
            downsample = nil
        }
        self.radix = radix
        self.stride = stride
    }

    /// Runs the block on `[N, inChannels, H, W]`; returns `[N, expansion · planes, ⌈H/stride⌉, ⌈W/stride⌉]`. As in
    /// ``ResNetBottleneckBlock``, conv3 writes over the shortcut when it can.
    public func callAsFunction(_ x: consuming Tensor) -> Tensor {
        var y = Kernels.splitAttention(splitConv(conv1(x)), radix: radix, fc1Weight: fc1.weight, fc1Bias: fc1.bias ?? [],
                                       fc2Weight: fc2.weight, fc2Bias: fc2.bias ?? [])
        if stride > 1 { y = Kernels.avgPool2d(y, kernelSize: 3, stride: stride, padding: 1) }
        if let downsample {
            let pooled = stride > 1
                ? Kernels.avgPool2d(x, kernelSize: stride, stride: stride, ceilMode: true, countIncludePad: false) : x
            return conv3(y, residualInPlace: downsample(pooled))
        }
        return conv3(y, residualInPlace: consume x)
    }
}

/// One block of the body, of the type the config names.
public enum ResNetBlock: Sendable {
    /// A torchvision `Bottleneck` (ResNet-50).
    case bottleneck(ResNetBottleneckBlock)
    /// A timm `ResNestBottleneck` (ResNeSt-269e).
    case splitAttention(ResNeStBottleneckBlock)

    /// Runs the block (consuming `x` lets the block write over it, see ``ResNetBottleneckBlock``).
    public func callAsFunction(_ x: consuming Tensor) -> Tensor {
        switch self {
        case .bottleneck(let block): return block(consume x)
        case .splitAttention(let block): return block(consume x)
        }
    }
}

/// The shared body after the decoder: `layer2`, `layer3`, `layer4` (stride 2 each), of ResNet-50 or
/// ResNeSt-269e blocks as the config's ``LadonModelConfig/Body/kind`` says.
public struct ResNetBody: Sendable {
    /// `stages[i]` is `layer{i+2}`.
    public let stages: [[ResNetBlock]]

    /// Loads `layer2.*`…`layer4.*` from `scope` (e.g. `shared_body`).
    package init(weights scope: WeightScope, inChannels: Int, config: LadonModelConfig.Body) throws(LadonError) {
        guard let kind = config.kind else { throw .config(.unsupportedBody(name: config.name)) }
        var inChannels = inChannels
        var stages: [[ResNetBlock]] = []
        for (i, (blocks, planes)) in zip(config.blocks, config.planes).enumerated() {
            let layer = scope.scope("layer\(i + 2)")
            var stage: [ResNetBlock] = []
            for b in 0..<blocks {
                let weights = layer.scope("\(b)"), stride = b == 0 ? 2 : 1, epsilon = Float(config.batchNormEpsilon)
                switch kind {
                case .resnet50:
                    stage.append(.bottleneck(try ResNetBottleneckBlock(
                        weights: weights, inChannels: inChannels, planes: planes, expansion: config.expansion,
                        stride: stride, epsilon: epsilon)))
                case .resnest269e:
                    stage.append(.splitAttention(try ResNeStBottleneckBlock(
                        weights: weights, inChannels: inChannels, planes: planes, expansion: config.expansion,
                        stride: stride, epsilon: epsilon)))
                }
                inChannels = planes * config.expansion
            }
            stages.append(stage)
        }
        self.stages = stages
    }

    /// Returns the outputs of layer2, layer3 and layer4.
    public func callAsFunction(_ x: Tensor) -> [Tensor] {
        var features: [Tensor] = []
        var h = x
        for stage in stages {
            for block in stage { h = block(consume h) }
            features.append(h)
        }
        return features
    }
}
