// ResNet layer2…layer4 (torchvision Bottleneck v1.5) with BatchNorm folded into the convolutions.

/// torchvision `Bottleneck`: 1×1 → BN → ReLU → 3×3 (stride) → BN → ReLU → 1×1 → BN, + shortcut, ReLU.
public struct ResNetBottleneckBlock: Sendable {
    public let conv1: Conv2d, conv2: Conv2d, conv3: Conv2d
    /// 1×1 strided conv + BN on the shortcut (first block of a stage only).
    public let downsample: Conv2d?

    public init(weights s: WeightScope, inChannels: Int, planes: Int, expansion: Int, stride: Int,
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

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let identity = downsample.map { $0(x) } ?? x
        return conv3(conv2(conv1(x)), residual: identity)
    }
}

/// The shared body after the decoder: `layer2`, `layer3`, `layer4` (stride 2 each).
public struct ResNetBody: Sendable {
    /// `stages[i]` is `layer{i+2}`.
    public let stages: [[ResNetBottleneckBlock]]

    /// Loads `layer2.*`…`layer4.*` from `scope` (e.g. `shared_body`).
    public init(weights scope: WeightScope, inChannels: Int, config: LadonModelConfig.Body) throws(LadonError) {
        var inChannels = inChannels
        var stages: [[ResNetBottleneckBlock]] = []
        for (i, (blocks, planes)) in zip(config.blocks, config.planes).enumerated() {
            let layer = scope.scope("layer\(i + 2)")
            var stage: [ResNetBottleneckBlock] = []
            for b in 0..<blocks {
                stage.append(try ResNetBottleneckBlock(weights: layer.scope("\(b)"), inChannels: inChannels, planes: planes,
                                                       expansion: config.expansion, stride: b == 0 ? 2 : 1,
                                                       epsilon: Float(config.batchNormEpsilon)))
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
            for block in stage { h = block(h) }
            features.append(h)
        }
        return features
    }
}
