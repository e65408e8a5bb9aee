// Feature pyramid network (torchvision `FeaturePyramidNetwork` + `LastLevelMaxPool`) for the detection head.

/// torchvision's `FeaturePyramidNetwork` with `LastLevelMaxPool`, no normalisation layers.
///
/// ```
/// last = inner[n-1](C[n-1]); P[n-1] = layer[n-1](last)
/// for i in n-2 ... 0: last = inner[i](C[i]) + nearest(last, size of C[i]); P[i] = layer[i](last)
/// pool = P[n-1][::2, ::2]           # max_pool2d(kernel 1, stride 2, padding 0)
/// ```
/// `inner[i]` is a 1×1 convolution with bias, `layer[i]` a 3×3 convolution (padding 1) with bias; no activations.
package struct FeaturePyramidNetwork: Sendable {
    /// Lateral 1×1 convolutions, one per input level.
    package let innerBlocks: [Conv2d]
    /// Output 3×3 convolutions, one per input level.
    package let layerBlocks: [Conv2d]

    package init(innerBlocks: [Conv2d], layerBlocks: [Conv2d]) {
        precondition(innerBlocks.count == layerBlocks.count && !innerBlocks.isEmpty)
        self.innerBlocks = innerBlocks
        self.layerBlocks = layerBlocks
    }

    /// Loads `inner_blocks.{i}.0.{weight,bias}` and `layer_blocks.{i}.0.{weight,bias}` from `scope` (at `fpn`).
    package init(weights scope: WeightScope, inChannels: [Int], outChannels: Int) throws(LadonError) {
        var inner: [Conv2d] = [], layer: [Conv2d] = []
        for (i, c) in inChannels.enumerated() {
            inner.append(try Conv2d(weights: scope.scope("inner_blocks.\(i).0"),
                                    parameters: Conv2dParameters(inChannels: c, outChannels: outChannels, kernelSize: 1),
                                    hasBias: true))
            layer.append(try Conv2d(weights: scope.scope("layer_blocks.\(i).0"),
                                    parameters: Conv2dParameters(inChannels: outChannels, outChannels: outChannels,
                                                                 kernelSize: 3, padding: 1),
                                    hasBias: true))
        }
        self.init(innerBlocks: inner, layerBlocks: layer)
    }

    /// `features[i]`: `[1, inChannels[i], h_i, w_i]`, finest first. Returns `[P_0, …, P_{n-1}, pool]`.
    package func callAsFunction(_ features: [Tensor]) -> [Tensor] {
        precondition(features.count == innerBlocks.count, "FPN: \(features.count) inputs for \(innerBlocks.count) levels")
        let n = features.count
        var outputs = [Tensor](repeating: Tensor(shape: [0]), count: n)
        var last = innerBlocks[n - 1](features[n - 1])
        outputs[n - 1] = layerBlocks[n - 1](last)
        for i in stride(from: n - 2, through: 0, by: -1) {
            let topDown = Kernels.upsampleNearest(last, outputHeight: features[i].h, outputWidth: features[i].w)
            last = innerBlocks[i](features[i], residual: topDown)   // inner(C_i) + top-down, as torchvision adds
            outputs[i] = layerBlocks[i](last)
        }
        outputs.append(fpnLastLevelMaxPool(outputs[n - 1]))
        return outputs
    }
}

/// `F.max_pool2d(x, kernel_size: 1, stride: 2, padding: 0)` (torchvision `LastLevelMaxPool`): with a 1×1 window the
/// max is the element itself, so this keeps every other row and column, `ceil(n / 2)` of each.
func fpnLastLevelMaxPool(_ x: Tensor) -> Tensor {
    let (n, c, h, w) = (x.n, x.c, x.h, x.w)
    let (oh, ow) = ((h + 1) / 2, (w + 1) / 2)
    if n * c * oh * ow == 0 { return Tensor(shape: [n, c, oh, ow]) }
    return Tensor(shape: [n, c, oh, ow], unsafeUninitialized: { out in
        x.withUnsafeBufferPointer { src in
            for plane in 0..<(n * c) {
                let s = src.baseAddress! + plane * h * w
                let d = out.baseAddress! + plane * oh * ow
                for oy in 0..<oh {
                    for ox in 0..<ow { d[oy * ow + ox] = s[2 * oy * w + 2 * ox] }
                }
            }
        }
    })
}
