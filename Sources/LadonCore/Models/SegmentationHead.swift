// DeepLabv3 head (torchvision DeepLabHead) over layer4, upsampled to the padded input size.

/// torchvision `DeepLabHead(in, classes)`: ASPP (1×1, three dilated 3×3, image pooling) → concat → 1×1
/// projection → 3×3 conv → 1×1 classifier, every conv but the last followed by BN + ReLU (BN folded here).
/// Dropout is the identity at inference.
public struct SegmentationHead: Sendable {
    package let branch1x1: Conv2d
    package let atrousBranches: [Conv2d]
    package let poolingBranch: Conv2d
    package let project: Conv2d
    package let conv: Conv2d
    package let classifier: Conv2d

    /// Loads `classifier.0.*` (ASPP), `classifier.1/2` (conv + BN) and `classifier.4` from `scope`
    /// (e.g. `segmentation_head`).
    package init(weights scope: WeightScope, inChannels: Int, config: LadonModelConfig.Segmentation) throws(LadonError) {
        let head = scope.scope("classifier")
        let aspp = head.scope("0")
        let c = config.asppChannels
        branch1x1 = try Conv2d(weights: aspp.scope("convs.0.0"), parameters: .init(inChannels: inChannels, outChannels: c, kernelSize: 1),
                               hasBias: false, batchNorm: aspp.scope("convs.0.1"), activation: .relu)
        var atrous: [Conv2d] = []
        for (i, rate) in config.asppRates.enumerated() {
            atrous.append(try Conv2d(weights: aspp.scope("convs.\(i + 1).0"),
                                     parameters: .init(inChannels: inChannels, outChannels: c, kernelSize: 3, padding: rate, dilation: rate),
                                     hasBias: false, batchNorm: aspp.scope("convs.\(i + 1).1"), activation: .relu))
        }
        atrousBranches = atrous
        let poolIndex = config.asppRates.count + 1
        poolingBranch = try Conv2d(weights: aspp.scope("convs.\(poolIndex).1"), parameters: .init(inChannels: inChannels, outChannels: c, kernelSize: 1),
                                   hasBias: false, batchNorm: aspp.scope("convs.\(poolIndex).2"), activation: .relu)
        project = try Conv2d(weights: aspp.scope("project.0"), parameters: .init(inChannels: c * (poolIndex + 1), outChannels: c, kernelSize: 1),
                             hasBias: false, batchNorm: aspp.scope("project.1"), activation: .relu)
        conv = try Conv2d(weights: head.scope("1"), parameters: .init(inChannels: c, outChannels: c, kernelSize: 3, padding: 1),
                          hasBias: false, batchNorm: head.scope("2"), activation: .relu)
        classifier = try Conv2d(weights: head.scope("4"), parameters: .init(inChannels: c, outChannels: config.numClasses, kernelSize: 1),
                                hasBias: true)
    }

    /// Class logits at the feature resolution: `layer4 [N, C, h, w]` → `[N, classes, h, w]`.
    public func logits(_ layer4: Tensor) -> Tensor {
        var branches = [branch1x1(layer4)]
        for b in atrousBranches { branches.append(b(layer4)) }
        // Image pooling: global average → 1×1 conv/BN/ReLU → bilinear "upsampling" of a 1×1 map = broadcast.
        let pooled = poolingBranch(Kernels.adaptiveAvgPool2d(layer4, outputHeight: 1, outputWidth: 1))
        branches.append(Kernels.resizeBilinear(pooled, outputHeight: layer4.h, outputWidth: layer4.w))
        return classifier(conv(project(Kernels.concatChannels(branches))))
    }

    /// Class logits upsampled (bilinear, `align_corners=False`) to `height × width` (the padded input size).
    public func callAsFunction(_ layer4: Tensor, height: Int, width: Int) -> Tensor {
        Kernels.resizeBilinear(logits(layer4), outputHeight: height, outputWidth: width)
    }
}
