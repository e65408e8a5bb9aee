// NCHW shape accessors and shape checks.

extension Tensor {
    /// Batch size of an NCHW tensor.
    @inlinable public var n: Int { precondition(rank == 4, "expected NCHW, got \(shape)"); return shape[0] }
    /// Channels of an NCHW tensor.
    @inlinable public var c: Int { precondition(rank == 4, "expected NCHW, got \(shape)"); return shape[1] }
    /// Height of an NCHW tensor.
    @inlinable public var h: Int { precondition(rank == 4, "expected NCHW, got \(shape)"); return shape[2] }
    /// Width of an NCHW tensor.
    @inlinable public var w: Int { precondition(rank == 4, "expected NCHW, got \(shape)"); return shape[3] }

    /// Largest absolute difference to `other` (same shape required); handy for tests and parity reports.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "shape mismatch \(shape) vs \(other.shape)")
        var m: Float = 0
        for i in 0..<count {
            let d = abs(scalars[i] - other.scalars[i])
            if d.isNaN { return .nan }
            m = max(m, d)
        }
        return m
    }

    /// Largest absolute value (0 for an empty tensor).
    public var maxAbs: Float { scalars.reduce(0) { max($0, abs($1)) } }
}
