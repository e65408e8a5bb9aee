// ImageNet classification head: global average pool over layer4, then a fully connected layer.

/// `fc(flatten(adaptive_avg_pool2d(layer4, 1)))`: raw logits (no softmax), one row per image.
public struct ClassificationHead: Sendable {
    package let fc: Linear

    /// Loads `fc.weight` `[numClasses, inFeatures]` and `fc.bias` from `scope` (e.g. `classification_head`).
    package init(weights scope: WeightScope, inFeatures: Int, numClasses: Int) throws(LadonError) {
        fc = try Linear(weights: scope.scope("fc"), inFeatures: inFeatures, outFeatures: numClasses)
    }

    /// `layer4: [N, C, h, w]` → logits `[N, numClasses]`.
    public func callAsFunction(_ layer4: Tensor) -> Tensor {
        let pooled = Kernels.adaptiveAvgPool2d(layer4, outputHeight: 1, outputWidth: 1)
        return fc(pooled.reshaped([layer4.n, layer4.c]))
    }
}
