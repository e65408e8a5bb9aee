// Pointwise kernels: ReLU, residual add, fused residual add + ReLU.

extension Kernels {
    /// In-place ReLU, `x = max(x, 0)`. NaN stays NaN, as in `torch.relu`.
    package static func relu(_ x: inout Tensor) {
        x.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            let count = p.count
            forEachSIMDBlock(count) { blocks in
                let raw = UnsafeMutableRawPointer(base)
                for b in blocks {
                    let o = b * blockBytes
                    let v = raw.loadUnaligned(fromByteOffset: o, as: Lanes.self)
                    raw.storeBytes(of: v.replacing(with: 0, where: v .< 0), toByteOffset: o, as: Lanes.self)
                }
            }
            for i in (count / Lanes.scalarCount * Lanes.scalarCount)..<count where base[i] < 0 { base[i] = 0 }
        }
    }

    /// Plain reference for ``relu(_:)``.
    package static func reluReference(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape, scalars: x.scalars.map { $0 < 0 ? 0 : $0 })
    }

    /// In-place residual add, `x += y` (same shape required).
    package static func add(_ x: inout Tensor, _ y: Tensor) {
        addInPlace(&x, y, relu: false)
    }

    /// In-place residual add followed by ReLU, `x = relu(x + y)` (the tail of a ResNet block).
    package static func addRelu(_ x: inout Tensor, _ y: Tensor) {
        addInPlace(&x, y, relu: true)
    }

    private static func addInPlace(_ x: inout Tensor, _ y: Tensor, relu: Bool) {
        precondition(x.shape == y.shape, "add: shapes \(x.shape) and \(y.shape) differ")
        y.withUnsafeBufferPointer { yp in
            x.withUnsafeMutableBufferPointer { xp in
                guard let xb = xp.baseAddress, let yb = yp.baseAddress else { return }
                let count = xp.count
                forEachSIMDBlock(count) { blocks in
                    let xr = UnsafeMutableRawPointer(xb), yr = UnsafeRawPointer(yb)
                    for b in blocks {
                        let o = b * blockBytes
                        let s = xr.loadUnaligned(fromByteOffset: o, as: Lanes.self) + yr.loadUnaligned(fromByteOffset: o, as: Lanes.self)
                        xr.storeBytes(of: relu ? s.replacing(with: 0, where: s .< 0) : s, toByteOffset: o, as: Lanes.self)
                    }
                }
                for i in (count / Lanes.scalarCount * Lanes.scalarCount)..<count {
                    let s = xb[i] + yb[i]
                    xb[i] = relu && s < 0 ? 0 : s
                }
            }
        }
    }

    /// Plain reference for ``add(_:_:)`` (`relu == false`) and ``addRelu(_:_:)`` (`relu == true`).
    package static func addReference(_ x: Tensor, _ y: Tensor, relu: Bool = false) -> Tensor {
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
    /// Bytes per SIMD step.
    @inline(__always) static var blockBytes: Int { Lanes.scalarCount * MemoryLayout<Float>.stride }

    /// Calls `body` with ranges of whole SIMD blocks covering `count / 16` blocks, on ``Kernels/threadCount`` threads for large
    /// buffers. The loop lives inside `body`, so the per-block code is inlined (no closure call per block).
    static func forEachSIMDBlock(_ count: Int, _ body: (Range<Int>) -> Void) {
        WorkSplit.forEachRange(count / Lanes.scalarCount, work: count, minimumWork: 1 << 20, body)
    }
}
