// Convolution dispatch: picks an algorithm per shape; tests and benchmarks can force one.

/// The convolution algorithms, selectable for tests and benchmarks.
public enum Conv2dAlgorithm: String, Sendable, CaseIterable {
    /// Choose per shape.
    case automatic
    /// ``Kernels/conv2dReference(_:weight:bias:_:activation:residual:)``.
    case reference
    /// 1×1, stride 1, no padding: a single GEMM over the channel dimension.
    case pointwise
    /// im2col + GEMM.
    case im2col
    /// Direct convolution (no im2col buffer).
    case direct
}

extension Kernels {
    /// `out = activation(conv(input, weight) + bias + residual)`, NCHW.
    ///
    /// - Parameters:
    ///   - input: `[N, inC, H, W]`.
    ///   - weight: `[outC, inC/groups, kH, kW]`.
    ///   - bias: `outC` values or `nil`.
    ///   - residual: optional `[N, outC, P, Q]` tensor added before the activation (ResNet shortcut).
    ///   - algorithm: `.automatic` picks per shape.
    public static func conv2d(_ input: Tensor, weight: Tensor, bias: [Float]?, _ p: Conv2dParameters,
                              activation: Activation = .none, residual: Tensor? = nil,
                              algorithm: Conv2dAlgorithm = .automatic) -> Tensor {
        // Until the optimised paths land, every algorithm runs the reference.
        conv2dReference(input, weight: weight, bias: bias, p, activation: activation, residual: residual)
    }
}
