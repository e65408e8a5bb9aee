// The Float32 NCHW tensor value type every kernel and layer works on.

/// A dense, contiguous, row-major `Float32` tensor (NCHW for images and feature maps).
///
/// `Tensor` is a value type with copy-on-write storage (a Swift `Array`). There is no stride machinery:
/// every tensor is contiguous, and the last dimension varies fastest. Kernels take the storage as unsafe
/// buffers at their boundary; the public API stays safe.
///
/// ```swift
/// var x = Tensor(shape: [1, 3, 4, 4])          // zeros
/// x[0, 1, 2, 3] = 1.5
/// let y = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
/// ```
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.reduce(1, *)`.
    public var scalars: [Float]

    /// Creates a zero-filled tensor.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        self.scalars = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// Creates a tensor filled with `value`.
    public init(shape: [Int], repeating value: Float) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        self.scalars = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// Wraps existing scalars. The count must equal the product of `shape`.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(shape.reduce(1, *) == scalars.count,
                     "shape \(shape) needs \(shape.reduce(1, *)) scalars, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// Creates a tensor whose storage is written by `initializer`, without zero-filling first.
    /// The closure must write every element.
    public init(shape: [Int], unsafeUninitialized initializer: (UnsafeMutableBufferPointer<Float>) -> Void) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        let count = shape.reduce(1, *)
        self.shape = shape
        self.scalars = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            initializer(buffer)
            initialized = count
        }
    }

    /// Number of elements.
    @inlinable public var count: Int { scalars.count }
    /// Number of dimensions.
    @inlinable public var rank: Int { shape.count }

    /// Returns the same elements viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }

    /// Row-major offset of a multi-dimensional index.
    @inlinable public func offset(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index rank \(index.count) != tensor rank \(shape.count)")
        var offset = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "index \(index) out of range for shape \(shape)")
            offset = offset * d + i
        }
        return offset
    }

    /// Element access by multi-dimensional index (checked; for tests and glue code, not hot loops).
    public subscript(_ index: Int...) -> Float {
        get { scalars[offset(index)] }
        set { scalars[offset(index)] = newValue }
    }

    /// Calls `body` with a read-only pointer to the storage.
    @inlinable public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    /// Calls `body` with a mutable pointer to the storage (copying first if the storage is shared).
    @inlinable public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(6).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(scalars.count > 6 ? ", …" : "")])"
    }
}
