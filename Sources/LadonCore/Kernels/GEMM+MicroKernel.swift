// GEMM packing routines and the register-blocked SIMD micro-kernels (12×32 for AVX-512, 6×16 otherwise).
import CLadonKernels

/// The SIMD vector the kernels are written with (one zmm register with AVX-512).
typealias GEMMVector = SIMD16<Float>

/// `acc += a·b`, fused when the build targets a CPU with FMA (see Package.swift).
@inline(__always)
func fusedMultiplyAdd(_ acc: inout GEMMVector, _ a: GEMMVector, _ b: GEMMVector) {
    #if LADON_FMA
    acc = acc.addingProduct(a, b)
    #else
    acc += a * b
    #endif
}

extension Kernels {
    /// Packs rows `i0..<i0+mc`, depths `k0..<k0+kc` of `op(A)` into `MR`-row panels: panel `r` holds
    /// `kc` groups of `MR` values (`dst[(r·kc + p)·MR + i]`), rows past `mc` zero-filled.
    static func packA(_ op: GEMMOperands, i0: Int, mc: Int, k0: Int, kc: Int, mr: Int,
                      into dst: UnsafeMutablePointer<Float>) {
        packA(op.a, lda: op.lda, transposed: op.transposeA, i0: i0, mc: mc, k0: k0, kc: kc, mr: mr, into: dst)
    }

    /// ``packA(_:i0:mc:k0:kc:mr:into:)`` for an `A` given by pointer, leading dimension and transposition.
    static func packA(_ a: UnsafePointer<Float>, lda: Int, transposed: Bool, i0: Int, mc: Int, k0: Int, kc: Int,
                      mr: Int, into dst: UnsafeMutablePointer<Float>) {
        if !transposed {
            // Row-major A: each MR-row panel is a transpose of MR rows × kc, the layout of a transposed B's
            // panels: 8 × 8 register transposes in C instead of a scalar store per element.
            cladon_pack_transposed_panels(0, dst, a + i0 * lda + k0, lda, kc, mc, mr)
            return
        }
        var r = 0
        while r * mr < mc {
            let rows = min(mr, mc - r * mr)
            let panel = dst + r * mr * kc
            let firstRow = i0 + r * mr
            // A is stored [K×M]: a row of the panel is contiguous.
            for p in 0..<kc {
                let src = a + (k0 + p) * lda + firstRow
                let out = panel + p * mr
                for i in 0..<rows { out[i] = src[i] }
                for i in rows..<mr { out[i] = 0 }
            }
            r += 1
        }
    }

    /// ``packA(_:lda:transposed:i0:mc:k0:kc:mr:into:)`` as a plain loop, the reference its tests compare against.
    static func packAReference(_ a: UnsafePointer<Float>, lda: Int, transposed: Bool, i0: Int, mc: Int, k0: Int,
                               kc: Int, mr: Int, into dst: UnsafeMutablePointer<Float>) {
        for r in 0..<(mc + mr - 1) / mr {
            for p in 0..<kc {
                for i in 0..<mr {
                    let row = i0 + r * mr + i
                    dst[(r * kc + p) * mr + i] = r * mr + i < mc
                        ? (transposed ? a[(k0 + p) * lda + row] : a[row * lda + k0 + p]) : 0
                }
            }
        }
    }

    /// Packs depths `k0..<k0+kc`, columns `j0..<j0+nc` of `op(B)` into `NR`-column panels: panel `q` holds
    /// `kc` rows of `NR` values (`dst[(q·kc + p)·NR + j]`), columns past `nc` zero-filled.
    static func packB(_ op: GEMMOperands, k0: Int, kc: Int, j0: Int, nc: Int, nr: Int,
                      into dst: UnsafeMutablePointer<Float>) {
        if !op.transposeB {
            // Row by row in C (software prefetch of the rows ahead; the Swift SIMD copy panel by panel ran the
            // 1×1 and plain GEMMs 10–17 points of peak lower, GEMMPerfTests on Zen 5).
            cladon_pack_matrix_panels(0, dst, op.b + k0 * op.ldb + j0, op.ldb, kc, nc, nr)
            return
        }
        // B is stored [N×K]: 8×8 register transposes of its rows (C).
        cladon_pack_transposed_panels(0, dst, op.b + j0 * op.ldb + k0, op.ldb, kc, nc, nr)
    }

    /// Computes one 12×32 tile from packed panels and writes its `rows×cols` valid part to `c`
    /// (adding the old `C` when `loadC`, then applying `epilogue` when given). `tile` is 12·32 scratch.
    @inline(never)
    static func gemmMicroKernel12x32(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ rows: Int, _ cols: Int,
                                     _ loadC: Bool, _ epilogue: GEMMEpilogue?, _ tile: UnsafeMutablePointer<Float>) {
        typealias V = GEMMVector
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        var c60 = V(), c61 = V(), c70 = V(), c71 = V(), c80 = V(), c81 = V()
        var c90 = V(), c91 = V(), cA0 = V(), cA1 = V(), cB0 = V(), cB1 = V()
        var ap = a
        var bp = UnsafeRawPointer(b)
        let vectorBytes = V.scalarCount * 4
        for _ in 0..<kc {
            let b0 = bp.loadUnaligned(as: V.self)
            let b1 = bp.loadUnaligned(fromByteOffset: vectorBytes, as: V.self)
            var x = V(repeating: ap[0]); fusedMultiplyAdd(&c00, x, b0); fusedMultiplyAdd(&c01, x, b1)
            x = V(repeating: ap[1]); fusedMultiplyAdd(&c10, x, b0); fusedMultiplyAdd(&c11, x, b1)
            x = V(repeating: ap[2]); fusedMultiplyAdd(&c20, x, b0); fusedMultiplyAdd(&c21, x, b1)
            x = V(repeating: ap[3]); fusedMultiplyAdd(&c30, x, b0); fusedMultiplyAdd(&c31, x, b1)
            x = V(repeating: ap[4]); fusedMultiplyAdd(&c40, x, b0); fusedMultiplyAdd(&c41, x, b1)
            x = V(repeating: ap[5]); fusedMultiplyAdd(&c50, x, b0); fusedMultiplyAdd(&c51, x, b1)
            x = V(repeating: ap[6]); fusedMultiplyAdd(&c60, x, b0); fusedMultiplyAdd(&c61, x, b1)
            x = V(repeating: ap[7]); fusedMultiplyAdd(&c70, x, b0); fusedMultiplyAdd(&c71, x, b1)
            x = V(repeating: ap[8]); fusedMultiplyAdd(&c80, x, b0); fusedMultiplyAdd(&c81, x, b1)
            x = V(repeating: ap[9]); fusedMultiplyAdd(&c90, x, b0); fusedMultiplyAdd(&c91, x, b1)
            x = V(repeating: ap[10]); fusedMultiplyAdd(&cA0, x, b0); fusedMultiplyAdd(&cA1, x, b1)
            x = V(repeating: ap[11]); fusedMultiplyAdd(&cB0, x, b0); fusedMultiplyAdd(&cB1, x, b1)
            ap += 12
            bp += 2 * vectorBytes
        }
        let full = rows == 12 && cols == 2 * V.scalarCount
        // A full tile goes straight to C; an edge tile goes through `tile` and is copied element-wise.
        let dst = full ? c : tile
        let ld = full ? ldc : 2 * V.scalarCount
        let vectorEpilogue = full ? epilogue : nil
        let fromC = full && loadC
        storeRow(c00, c01, dst, 0, fromC, vectorEpilogue)
        storeRow(c10, c11, dst + ld, 1, fromC, vectorEpilogue)
        storeRow(c20, c21, dst + 2 * ld, 2, fromC, vectorEpilogue)
        storeRow(c30, c31, dst + 3 * ld, 3, fromC, vectorEpilogue)
        storeRow(c40, c41, dst + 4 * ld, 4, fromC, vectorEpilogue)
        storeRow(c50, c51, dst + 5 * ld, 5, fromC, vectorEpilogue)
        storeRow(c60, c61, dst + 6 * ld, 6, fromC, vectorEpilogue)
        storeRow(c70, c71, dst + 7 * ld, 7, fromC, vectorEpilogue)
        storeRow(c80, c81, dst + 8 * ld, 8, fromC, vectorEpilogue)
        storeRow(c90, c91, dst + 9 * ld, 9, fromC, vectorEpilogue)
        storeRow(cA0, cA1, dst + 10 * ld, 10, fromC, vectorEpilogue)
        storeRow(cB0, cB1, dst + 11 * ld, 11, fromC, vectorEpilogue)
        if !full { copyEdgeTile(tile, 2 * V.scalarCount, c, ldc, rows, cols, loadC, epilogue) }
    }

    /// Computes one 6×16 tile (one vector per row); same contract as ``gemmMicroKernel12x32``.
    @inline(never)
    static func gemmMicroKernel6x16(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ rows: Int, _ cols: Int,
                                    _ loadC: Bool, _ epilogue: GEMMEpilogue?, _ tile: UnsafeMutablePointer<Float>) {
        typealias V = GEMMVector
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V()
        var ap = a
        var bp = UnsafeRawPointer(b)
        for _ in 0..<kc {
            let bv = bp.loadUnaligned(as: V.self)
            fusedMultiplyAdd(&c0, V(repeating: ap[0]), bv)
            fusedMultiplyAdd(&c1, V(repeating: ap[1]), bv)
            fusedMultiplyAdd(&c2, V(repeating: ap[2]), bv)
            fusedMultiplyAdd(&c3, V(repeating: ap[3]), bv)
            fusedMultiplyAdd(&c4, V(repeating: ap[4]), bv)
            fusedMultiplyAdd(&c5, V(repeating: ap[5]), bv)
            ap += 6
            bp += V.scalarCount * 4
        }
        let full = rows == 6 && cols == V.scalarCount
        storeSixRows((c0, c1, c2, c3, c4, c5), full: full, c, ldc, loadC, epilogue, tile)
        if !full { copyEdgeTile(tile, V.scalarCount, c, ldc, rows, cols, loadC, epilogue) }
    }

    /// Stores six accumulator rows: a full tile straight to `c` (`+ C` when `loadC`, then the epilogue), any other to
    /// `tile` (leading dimension 16) as they are, for the caller to copy its valid part.
    @inline(__always)
    static func storeSixRows(_ r: (GEMMVector, GEMMVector, GEMMVector, GEMMVector, GEMMVector, GEMMVector), full: Bool,
                             _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ loadC: Bool, _ epilogue: GEMMEpilogue?,
                             _ tile: UnsafeMutablePointer<Float>) {
        let dst = full ? c : tile
        let ld = full ? ldc : GEMMVector.scalarCount
        let vectorEpilogue = full ? epilogue : nil
        let fromC = full && loadC
        storeVector(r.0, dst, 0, fromC, vectorEpilogue)
        storeVector(r.1, dst + ld, 1, fromC, vectorEpilogue)
        storeVector(r.2, dst + 2 * ld, 2, fromC, vectorEpilogue)
        storeVector(r.3, dst + 3 * ld, 3, fromC, vectorEpilogue)
        storeVector(r.4, dst + 4 * ld, 4, fromC, vectorEpilogue)
        storeVector(r.5, dst + 5 * ld, 5, fromC, vectorEpilogue)
    }

    /// Writes the valid `rows×cols` corner of a computed tile (leading dimension `ldt`) to `c`.
    static func copyEdgeTile(_ tile: UnsafeMutablePointer<Float>, _ ldt: Int, _ c: UnsafeMutablePointer<Float>,
                             _ ldc: Int, _ rows: Int, _ cols: Int, _ loadC: Bool, _ epilogue: GEMMEpilogue?) {
        for i in 0..<rows {
            let crow = c + i * ldc, trow = tile + i * ldt
            for j in 0..<cols {
                var v = trow[j]
                if loadC { v += crow[j] }
                if let e = epilogue { v = e.apply(v, row: i, column: j) }
                crow[j] = v
            }
        }
    }

    /// Stores one tile row of two vectors.
    @inline(__always)
    static func storeRow(_ v0: GEMMVector, _ v1: GEMMVector, _ dst: UnsafeMutablePointer<Float>, _ row: Int,
                         _ loadC: Bool, _ epilogue: GEMMEpilogue?) {
        storeVector(v0, dst, row, loadC, epilogue)
        storeVector(v1, dst + GEMMVector.scalarCount, row, loadC, epilogue.map { $0.offset(row: 0, column: GEMMVector.scalarCount) })
    }

    /// Stores one vector of a tile row, optionally adding the old values and applying the epilogue
    /// (`epilogue` is relative to the row's first element of the tile: `bias[row]`, `residual + row·ldr`).
    @inline(__always)
    static func storeVector(_ v: GEMMVector, _ dst: UnsafeMutablePointer<Float>, _ row: Int,
                            _ loadC: Bool, _ epilogue: GEMMEpilogue?) {
        typealias V = GEMMVector
        let d = UnsafeMutableRawPointer(dst)
        var x = v
        if loadC { x += d.loadUnaligned(as: V.self) }
        if let e = epilogue {
            if let bias = e.bias { x += V(repeating: bias[row]) }
            if let r = e.residual { x += UnsafeRawPointer(r + row * e.ldr).loadUnaligned(as: V.self) }
            // Matches the scalar `v > 0 ? v : 0` (NaN and −0 become 0).
            if e.relu { x.replace(with: 0, where: .!(x .> 0)) }
        }
        d.storeBytes(of: x, as: V.self)
    }
}
