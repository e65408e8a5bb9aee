// Weights packed once, at load, into the GEMM micro-kernel's panel layout, so no call re-packs them.

/// A GEMM `A` operand `[M×K]` (a layer's weights) packed for one ``GEMMBlocking``: the depth is split into the
/// blocks `gemmSerial` uses (``GEMMBlocking/depthBlock(_:)``), and each block holds `MR`-row panels of
/// interleaved columns, exactly what ``Kernels/packA(_:i0:mc:k0:kc:mr:into:)`` writes per call otherwise.
/// Element `(i, p)` of the block `k0..<k0+kcb` sits at `k0·paddedRows + (i / MR)·MR·kcb + (p − k0)·MR + i % MR`;
/// rows past `M` are zero. The packing is lossless: ``unpacked()`` gives the matrix back.
package struct PackedMatrix: Sendable {
    /// `M` and `K`.
    package let rows: Int, columns: Int
    /// The micro-tile rows and the depth block this packing was made for.
    let mr: Int, kc: Int
    /// `M` rounded up to a multiple of `MR`.
    let paddedRows: Int
    private var scalars: [Float]

    /// Packs the row-major `a[rows×columns]` (leading dimension `lda`) for `blocking`.
    init(_ a: UnsafePointer<Float>, rows: Int, columns: Int, lda: Int, blocking: GEMMBlocking = .preferred) {
        precondition(rows >= 0 && columns >= 0 && lda >= columns, "PackedMatrix: bad shape \(rows)×\(columns), lda \(lda)")
        let (mr, kc) = (blocking.mr, blocking.depthBlock(columns))
        let padded = Kernels.roundUp(rows, mr)
        self.rows = rows
        self.columns = columns
        self.mr = mr
        self.kc = kc
        self.paddedRows = padded
        scalars = [Float](unsafeUninitializedCapacity: padded * columns) { buffer, count in
            guard let dst = buffer.baseAddress else { count = 0; return }
            var k0 = 0
            while k0 < columns {
                let depth = min(kc, columns - k0)
                var i0 = 0
                while i0 < padded {
                    // Whole MC-sized chunks; packA zero-fills the rows past `rows`.
                    let chunk = min(padded - i0, 16 * mr)
                    let valid = max(0, min(chunk, rows - i0))
                    let out = dst + k0 * padded + i0 * depth
                    if valid > 0 {
                        Kernels.packA(a, lda: lda, transposed: false, i0: i0, mc: valid, k0: k0, kc: depth, mr: mr,
                                      into: out)
                    }
                    // Panels that hold no real row at all.
                    let written = Kernels.roundUp(valid, mr)
                    (out + written * depth).update(repeating: 0, count: (chunk - written) * depth)
                    i0 += chunk
                }
                k0 += depth
            }
            count = padded * columns
        }
    }

    /// Packs a weight tensor as `[shape[0] × (count / shape[0])]` (a convolution's `[outC, inC·kH·kW]`).
    package init(_ weight: Tensor) { self.init(weight, blocking: .preferred) }

    /// Packs a weight tensor for `blocking`.
    init(_ weight: Tensor, blocking: GEMMBlocking) {
        let rows = weight.shape.first ?? 0
        let columns = rows == 0 ? 0 : weight.count / rows
        self = weight.withUnsafeBufferPointer { w in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 1) { one in
                PackedMatrix(w.baseAddress ?? UnsafePointer(one.baseAddress!), rows: rows, columns: columns,
                             lda: max(columns, 1), blocking: blocking)
            }
        }
    }

    /// Multiplies row `i` by `scale[i]` where it lies in the panels: a BatchNorm folded into packed weights, the same
    /// Float products as scaling the rows before packing.
    mutating func scaleRows(by scale: [Float]) {
        precondition(scale.count == rows, "scaleRows: \(scale.count) scales for \(rows) rows")
        let (rows, columns, mr, kc, padded) = (rows, columns, mr, kc, paddedRows)
        scalars.withUnsafeMutableBufferPointer { values in
            guard let base = values.baseAddress else { return }
            var k0 = 0
            while k0 < columns {
                let depth = min(kc, columns - k0)
                for q in 0..<padded / mr {
                    let panel = base + k0 * padded + q * mr * depth
                    let valid = min(mr, rows - q * mr)
                    for p in 0..<depth {
                        for r in 0..<valid { panel[p * mr + r] *= scale[q * mr + r] }
                    }
                }
                k0 += depth
            }
        }
    }

    /// Whether `gemmSerial` with `blocking` can read these panels directly.
    func matches(_ blocking: GEMMBlocking) -> Bool { mr == blocking.mr && kc == blocking.depthBlock(columns) }

    /// Element `(i, p)` of the original matrix.
    func element(_ i: Int, _ p: Int) -> Float {
        let k0 = p / kc * kc, depth = min(kc, columns - k0)
        return scalars[k0 * paddedRows + i / mr * mr * depth + (p - k0) * mr + i % mr]
    }

    /// The original row-major `[rows × columns]` matrix.
    package func unpacked() -> [Float] {
        // Panel by panel in storage order (the layout ``element(_:_:)`` reads), not element by element.
        var out = [Float](repeating: 0, count: rows * columns)
        out.withUnsafeMutableBufferPointer { o in
            scalars.withUnsafeBufferPointer { src in
                var k0 = 0
                while k0 < columns {
                    let depth = min(kc, columns - k0)
                    for i0 in stride(from: 0, to: rows, by: mr) {
                        let panel = src.baseAddress! + k0 * paddedRows + i0 * depth
                        for i in 0..<min(mr, rows - i0) {
                            let row = o.baseAddress! + (i0 + i) * columns + k0
                            for p in 0..<depth { row[p] = panel[p * mr + i] }
                        }
                    }
                    k0 += depth
                }
            }
        }
        return out
    }

    /// Calls `body` with the panels as a GEMM operand (valid only inside `body`).
    func withPanels<R>(_ body: (PackedPanels) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer { buffer in
            try body(PackedPanels(base: buffer.baseAddress!, paddedRows: paddedRows, row: 0, mr: mr, kc: kc))
        }
    }
}

/// A pointer view of a ``PackedMatrix`` for one GEMM call, starting at row `row` (a multiple of `MR`).
struct PackedPanels {
    let base: UnsafePointer<Float>
    let paddedRows: Int
    var row: Int
    let mr: Int, kc: Int

    /// The panels of rows `row + i0 ..< …` in the depth block starting at `k0` (`depth` deep).
    func panels(row i0: Int, depth k0: Int, depthCount: Int) -> UnsafePointer<Float> {
        base + k0 * paddedRows + (row + i0) * depthCount
    }

    /// The view starting `rows` further down (a multiple of `MR`).
    func offset(rows: Int) -> PackedPanels {
        precondition(rows % mr == 0, "PackedPanels: row offset \(rows) is not a multiple of \(mr)")
        var sub = self
        sub.row += rows
        return sub
    }
}

extension Kernels {
    /// `C[M×N] = A·op(B)` (+ epilogue) with `A` prepacked: the GEMM of a layer with packed weights.
    /// `A` must have been packed for ``GEMMBlocking/preferred`` (or `blocking`).
    static func gemm(packed a: PackedMatrix, n: Int, b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                     c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false,
                     epilogue: GEMMEpilogue = .none, threads: Int, blocking: GEMMBlocking = .preferred) {
        guard a.rows > 0, n > 0 else { return }
        precondition(a.matches(blocking), "gemm: weights packed for MR \(a.mr), KC \(a.kc), not this blocking")
        a.withPanels { panels in
            let op = GEMMOperands(m: a.rows, n: n, k: a.columns, a: panels.base, lda: a.columns, transposeA: false,
                                  b: b, ldb: ldb, transposeB: transposeB, c: c, ldc: ldc, accumulate: accumulate,
                                  epilogue: epilogue, packedA: panels)
            if a.columns == 0 {
                if !accumulate { for i in 0..<a.rows { (c + i * ldc).update(repeating: 0, count: n) } }
                return
            }
            gemmBlocked(op, threads: threads, blocking: blocking)
        }
    }
}

extension Kernels {
    /// `y[M] = A·x` (+ `bias`, then ReLU) with `A` prepacked: a layer applied to one input vector (the
    /// classifier), where a GEMM would compute a whole `NR`-wide tile for one column. Each row is one FMA chain
    /// over `p` in order. Rows are split over `threads` by panel when the product is large enough.
    static func gemv(packed a: PackedMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                     bias: UnsafePointer<Float>?, relu: Bool, threads: Int) {
        let panels = a.paddedRows / max(a.mr, 1)
        guard a.rows > 0 else { return }
        let parts = a.rows * a.columns >= 1 << 18 ? min(threads, panels) : 1
        a.withPanels { packed in
            WorkSplit.forEachPart(parts) { part in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { accumulator in
                    let acc = accumulator.baseAddress!
                    let end = panels * (part + 1) / parts
                    var r = panels * part / parts
                    while r < end {
                        // Four panels at once (12 or 6 rows each): four weight streams and 12 or 8 independent FMA
                        // chains keep more loads in flight than one panel's 3 or 2 chains (each row's sum is still
                        // one chain over p in order, so the result is the same).
                        let group = (a.mr == 12 || a.mr == 6) && end - r >= 4 ? 4 : 1
                        acc.update(repeating: 0, count: 64)
                        var k0 = 0
                        while k0 < a.columns {
                            let depth = min(a.kc, a.columns - k0)
                            let first = packed.base + k0 * a.paddedRows + r * a.mr * depth
                            if group == 4 && a.mr == 12 {
                                gemvFourPanels12(first, depth: depth, x: x + k0, acc: acc)
                            } else if group == 4 {
                                gemvFourPanels6(first, depth: depth, x: x + k0, acc: acc)
                            } else {
                                gemvPanel(first, mr: a.mr, depth: depth, x: x + k0, acc: acc)
                            }
                            k0 += depth
                        }
                        for i in 0..<min(group * a.mr, a.rows - r * a.mr) {
                            var v = acc[i]
                            if let bias { v += bias[r * a.mr + i] }
                            if relu { v = v > 0 ? v : 0 }
                            y[r * a.mr + i] = v
                        }
                        r += group
                    }
                }
            }
        }
    }

    /// `acc[0..<24] += ` four consecutive 6-row panels (`6·depth` floats apart) times `x`, over one depth block.
    @inline(__always)
    private static func gemvFourPanels6(_ panel: UnsafePointer<Float>, depth: Int, x: UnsafePointer<Float>,
                                        acc: UnsafeMutablePointer<Float>) {
        typealias V = SIMD4<Float>
        typealias W = SIMD2<Float>
        let stride = 24 * depth
        let p0 = UnsafeRawPointer(panel), p1 = p0 + stride, p2 = p1 + stride, p3 = p2 + stride
        let out = UnsafeMutableRawPointer(acc)
        var a0 = out.loadUnaligned(as: V.self), a1 = out.loadUnaligned(fromByteOffset: 16, as: W.self)
        var b0 = out.loadUnaligned(fromByteOffset: 24, as: V.self), b1 = out.loadUnaligned(fromByteOffset: 40, as: W.self)
        var c0 = out.loadUnaligned(fromByteOffset: 48, as: V.self), c1 = out.loadUnaligned(fromByteOffset: 64, as: W.self)
        var d0 = out.loadUnaligned(fromByteOffset: 72, as: V.self), d1 = out.loadUnaligned(fromByteOffset: 88, as: W.self)
        for p in 0..<depth {
            let xv = V(repeating: x[p]), xw = W(repeating: x[p]), o = p * 24
            a0 = gemvFMA(a0, p0.loadUnaligned(fromByteOffset: o, as: V.self), xv)
            a1 = gemvFMA(a1, p0.loadUnaligned(fromByteOffset: o + 16, as: W.self), xw)
            b0 = gemvFMA(b0, p1.loadUnaligned(fromByteOffset: o, as: V.self), xv)
            b1 = gemvFMA(b1, p1.loadUnaligned(fromByteOffset: o + 16, as: W.self), xw)
            c0 = gemvFMA(c0, p2.loadUnaligned(fromByteOffset: o, as: V.self), xv)
            c1 = gemvFMA(c1, p2.loadUnaligned(fromByteOffset: o + 16, as: W.self), xw)
            d0 = gemvFMA(d0, p3.loadUnaligned(fromByteOffset: o, as: V.self), xv)
            d1 = gemvFMA(d1, p3.loadUnaligned(fromByteOffset: o + 16, as: W.self), xw)
        }
        out.storeBytes(of: a0, as: V.self); out.storeBytes(of: a1, toByteOffset: 16, as: W.self)
        out.storeBytes(of: b0, toByteOffset: 24, as: V.self); out.storeBytes(of: b1, toByteOffset: 40, as: W.self)
        out.storeBytes(of: c0, toByteOffset: 48, as: V.self); out.storeBytes(of: c1, toByteOffset: 64, as: W.self)
        out.storeBytes(of: d0, toByteOffset: 72, as: V.self); out.storeBytes(of: d1, toByteOffset: 88, as: W.self)
    }

    /// `acc[0..<48] += ` four consecutive 12-row panels (`12·depth` floats apart) times `x`, over one depth block.
    @inline(__always)
    private static func gemvFourPanels12(_ panel: UnsafePointer<Float>, depth: Int, x: UnsafePointer<Float>,
                                         acc: UnsafeMutablePointer<Float>) {
        typealias V = SIMD4<Float>
        let stride = 48 * depth
        let p0 = UnsafeRawPointer(panel), p1 = p0 + stride, p2 = p1 + stride, p3 = p2 + stride
        let out = UnsafeMutableRawPointer(acc)
        var a0 = out.loadUnaligned(as: V.self), a1 = out.loadUnaligned(fromByteOffset: 16, as: V.self), a2 = out.loadUnaligned(fromByteOffset: 32, as: V.self)
        var b0 = out.loadUnaligned(fromByteOffset: 48, as: V.self), b1 = out.loadUnaligned(fromByteOffset: 64, as: V.self)
        var b2 = out.loadUnaligned(fromByteOffset: 80, as: V.self)
        var c0 = out.loadUnaligned(fromByteOffset: 96, as: V.self), c1 = out.loadUnaligned(fromByteOffset: 112, as: V.self)
        var c2 = out.loadUnaligned(fromByteOffset: 128, as: V.self)
        var d0 = out.loadUnaligned(fromByteOffset: 144, as: V.self), d1 = out.loadUnaligned(fromByteOffset: 160, as: V.self)
        var d2 = out.loadUnaligned(fromByteOffset: 176, as: V.self)
        for p in 0..<depth {
            let xv = V(repeating: x[p]), o = p * 48
            a0 = gemvFMA(a0, p0.loadUnaligned(fromByteOffset: o, as: V.self), xv)
            a1 = gemvFMA(a1, p0.loadUnaligned(fromByteOffset: o + 16, as: V.self), xv)
            a2 = gemvFMA(a2, p0.loadUnaligned(fromByteOffset: o + 32, as: V.self), xv)
            b0 = gemvFMA(b0, p1.loadUnaligned(fromByteOffset: o, as: V.self), xv)
            b1 = gemvFMA(b1, p1.loadUnaligned(fromByteOffset: o + 16, as: V.self), xv)
            b2 = gemvFMA(b2, p1.loadUnaligned(fromByteOffset: o + 32, as: V.self), xv)
            c0 = gemvFMA(c0, p2.loadUnaligned(fromByteOffset: o, as: V.self), xv)
            c1 = gemvFMA(c1, p2.loadUnaligned(fromByteOffset: o + 16, as: V.self), xv)
            c2 = gemvFMA(c2, p2.loadUnaligned(fromByteOffset: o + 32, as: V.self), xv)
            d0 = gemvFMA(d0, p3.loadUnaligned(fromByteOffset: o, as: V.self), xv)
            d1 = gemvFMA(d1, p3.loadUnaligned(fromByteOffset: o + 16, as: V.self), xv)
            d2 = gemvFMA(d2, p3.loadUnaligned(fromByteOffset: o + 32, as: V.self), xv)
        }
        out.storeBytes(of: a0, as: V.self); out.storeBytes(of: a1, toByteOffset: 16, as: V.self)
        out.storeBytes(of: a2, toByteOffset: 32, as: V.self); out.storeBytes(of: b0, toByteOffset: 48, as: V.self)
        out.storeBytes(of: b1, toByteOffset: 64, as: V.self); out.storeBytes(of: b2, toByteOffset: 80, as: V.self)
        out.storeBytes(of: c0, toByteOffset: 96, as: V.self); out.storeBytes(of: c1, toByteOffset: 112, as: V.self)
        out.storeBytes(of: c2, toByteOffset: 128, as: V.self); out.storeBytes(of: d0, toByteOffset: 144, as: V.self)
        out.storeBytes(of: d1, toByteOffset: 160, as: V.self); out.storeBytes(of: d2, toByteOffset: 176, as: V.self)
    }

    /// `acc[0..<mr] += panel[p][i] · x[p]` over one panel's depth block (`mr` = 12 or 6, else scalar).
    @inline(__always)
    private static func gemvPanel(_ panel: UnsafePointer<Float>, mr: Int, depth: Int, x: UnsafePointer<Float>,
                                  acc: UnsafeMutablePointer<Float>) {
        let raw = UnsafeRawPointer(panel)
        let out = UnsafeMutableRawPointer(acc)
        switch mr {
        case 12:
            var s0 = out.loadUnaligned(as: SIMD4<Float>.self), s1 = out.loadUnaligned(fromByteOffset: 16, as: SIMD4<Float>.self)
            var s2 = out.loadUnaligned(fromByteOffset: 32, as: SIMD4<Float>.self)
            for p in 0..<depth {
                let xv = SIMD4<Float>(repeating: x[p]), o = p * 48
                s0 = gemvFMA(s0, raw.loadUnaligned(fromByteOffset: o, as: SIMD4<Float>.self), xv)
                s1 = gemvFMA(s1, raw.loadUnaligned(fromByteOffset: o + 16, as: SIMD4<Float>.self), xv)
                s2 = gemvFMA(s2, raw.loadUnaligned(fromByteOffset: o + 32, as: SIMD4<Float>.self), xv)
            }
            out.storeBytes(of: s0, as: SIMD4<Float>.self)
            out.storeBytes(of: s1, toByteOffset: 16, as: SIMD4<Float>.self)
            out.storeBytes(of: s2, toByteOffset: 32, as: SIMD4<Float>.self)
        case 6:
            var s0 = out.loadUnaligned(as: SIMD4<Float>.self), s1 = out.loadUnaligned(fromByteOffset: 16, as: SIMD2<Float>.self)
            for p in 0..<depth {
                let o = p * 24
                s0 = gemvFMA(s0, raw.loadUnaligned(fromByteOffset: o, as: SIMD4<Float>.self), SIMD4(repeating: x[p]))
                s1 = gemvFMA(s1, raw.loadUnaligned(fromByteOffset: o + 16, as: SIMD2<Float>.self), SIMD2(repeating: x[p]))
            }
            out.storeBytes(of: s0, as: SIMD4<Float>.self)
            out.storeBytes(of: s1, toByteOffset: 16, as: SIMD2<Float>.self)
        default:
            for p in 0..<depth { for i in 0..<mr { acc[i] += panel[p * mr + i] * x[p] } }
        }
    }

    @inline(__always)
    private static func gemvFMA<V: SIMD>(_ acc: V, _ a: V, _ b: V) -> V where V.Scalar == Float {
        #if LADON_FMA
        return acc.addingProduct(a, b)
        #else
        return acc + a * b
        #endif
    }
}
