// Pointwise kernels: ReLU, residual add, fused residual add + ReLU.

extension Kernels {
    /// In-place ReLU, `x = max(x, 0)`. NaN stays NaN, as in `torch.relu`.
    public static func relu(_ x: inout Tensor) {
        x.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            mapInPlace(base, count: p.count) { v in v.replacing(with: 0, where: v .< 0) } scalar: { $0 < 0 ? 0 : $0 }
        }
    }

    /// Plain reference for ``relu(_:)``.
    public static func reluReference(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape, scalars: x.scalars.map { $0 < 0 ? 0 : $0 })
    }

    /// In-place residual add, `x += y` (same shape required).
    public static func add(_ x: inout Tensor, _ y: Tensor) {
        precondition(x.shape == y.shape, "add: shapes \(x.shape) and \(y.shape) differ")
        y.withUnsafeBufferPointer { yp in
            x.withUnsafeMutableBufferPointer { xp in
                guard let xb = xp.baseAddress, let yb = yp.baseAddress else { return }
                zipInPlace(xb, yb, count: xp.count) { a, b in a + b } scalar: { $0 + $1 }
            }
        }
    }

    /// In-place residual add followed by ReLU, `x = relu(x + y)` (the tail of a ResNet block).
    public static func addRelu(_ x: inout Tensor, _ y: Tensor) {
        precondition(x.shape == y.shape, "addRelu: shapes \(x.shape) and \(y.shape) differ")
        y.withUnsafeBufferPointer { yp in
            x.withUnsafeMutableBufferPointer { xp in
                guard let xb = xp.baseAddress, let yb = yp.baseAddress else { return }
                zipInPlace(xb, yb, count: xp.count) { a, b in
                    let s = a + b
                    return s.replacing(with: 0, where: s .< 0)
                } scalar: { a, b in
                    let s = a + b
                    return s < 0 ? 0 : s
                }
            }
        }
    }

    /// Plain reference for ``add(_:_:)`` (`relu == false`) and ``addRelu(_:_:)`` (`relu == true`).
    public static func addReference(_ x: Tensor, _ y: Tensor, relu: Bool = false) -> Tensor {
        precondition(x.shape == y.shape, "add: shapes \(x.shape) and \(y.shape) differ")
        var out = x
        for i in 0..<x.count {
            let s = x.scalars[i] + y.scalars[i]
            out.scalars[i] = relu && s < 0 ? 0 : s
        }
        return out
    }

    // MARK: - Loops

    /// Elements per SIMD step of the pointwise loops.
    typealias Lanes = SIMD16<Float>

    /// `p[i] = f(p[i])` in SIMD16 steps, a scalar tail, and two threads for large buffers.
    @inline(__always)
    static func mapInPlace(_ p: UnsafeMutablePointer<Float>, count: Int,
                           _ vector: (Lanes) -> Lanes, scalar: (Float) -> Float) {
        let blocks = count / Lanes.scalarCount
        KernelThreads.forEachRange(blocks, work: count, minimumWork: 1 << 20) { range in
            let raw = UnsafeMutableRawPointer(p)
            for b in range {
                let offset = b * Lanes.scalarCount * MemoryLayout<Float>.stride
                raw.storeBytes(of: vector(raw.loadUnaligned(fromByteOffset: offset, as: Lanes.self)),
                               toByteOffset: offset, as: Lanes.self)
            }
        }
        for i in (blocks * Lanes.scalarCount)..<count { p[i] = scalar(p[i]) }
    }

    /// `x[i] = f(x[i], y[i])` in SIMD16 steps, a scalar tail, and two threads for large buffers.
    @inline(__always)
    static func zipInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int,
                           _ vector: (Lanes, Lanes) -> Lanes, scalar: (Float, Float) -> Float) {
        let blocks = count / Lanes.scalarCount
        KernelThreads.forEachRange(blocks, work: count, minimumWork: 1 << 20) { range in
            let xr = UnsafeMutableRawPointer(x), yr = UnsafeRawPointer(y)
            for b in range {
                let offset = b * Lanes.scalarCount * MemoryLayout<Float>.stride
                let v = vector(xr.loadUnaligned(fromByteOffset: offset, as: Lanes.self),
                               yr.loadUnaligned(fromByteOffset: offset, as: Lanes.self))
                xr.storeBytes(of: v, toByteOffset: offset, as: Lanes.self)
            }
        }
        for i in (blocks * Lanes.scalarCount)..<count { x[i] = scalar(x[i], y[i]) }
    }
}
