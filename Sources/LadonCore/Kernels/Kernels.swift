// The namespace of all compute kernels (pure functions over tensors and buffers; no model knowledge).

/// Compute kernels. Each optimised kernel has a plain reference kernel beside it (`…Reference`), kept as
/// the specification and the test oracle.
public enum Kernels {}

/// A pointwise activation fused into a kernel's epilogue.
package enum Activation: Sendable, Equatable {
    case none
    case relu

    @inline(__always) @usableFromInline
    func apply(_ v: Float) -> Float {
        switch self {
        case .none: return v
        case .relu: return v < 0 ? 0 : v   // NaN propagates, as torch.relu does
        }
    }
}
