// Single-precision matrix multiplication, the workhorse behind 1x1 and im2col convolutions and linear layers.

extension Kernels {
    /// `C[M×N] = op(A)·op(B) (+ C if accumulate)`, row-major with leading dimensions; same contract as
    /// ``gemmReference(m:n:k:a:lda:transposeA:b:ldb:transposeB:c:ldc:accumulate:)``.
    ///
    /// Goto-style blocked GEMM: `A` is packed into `MR`-row panels and `B` into `NR`-column panels (both
    /// transposes are handled by the packing), and a register-blocked SIMD micro-kernel computes each
    /// `MR×NR` tile. Work is split over `threads` (default ``threadCount``) along `N` or `M`, whichever
    /// duplicates less packing. With `k == 0` the product is zero: `C` is zeroed unless `accumulate`.
    public static func gemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false,
        threads: Int? = nil
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m \(m) n \(n) k \(k)")
        guard m > 0, n > 0 else { return }
        precondition(ldc >= n, "gemm: ldc \(ldc) < n \(n)")
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        precondition(lda >= (transposeA ? m : k) && ldb >= (transposeB ? k : n), "gemm: leading dimension too small")
        let op = GEMMOperands(m: m, n: n, k: k, a: a, lda: lda, transposeA: transposeA,
                              b: b, ldb: ldb, transposeB: transposeB, c: c, ldc: ldc,
                              accumulate: accumulate, epilogue: .none)
        gemmBlocked(op, threads: resolvedThreads(threads))
    }

    /// Splits `op` across threads and runs the blocked algorithm on each part.
    static func gemmBlocked(_ op: GEMMOperands, threads: Int) {
        let (mr, nr) = (GEMMBlocking.mr, GEMMBlocking.nr)
        let tilesM = (op.m + mr - 1) / mr, tilesN = (op.n + nr - 1) / nr
        var parts = threads
        // Below ~4 MFLOP a second thread costs more to wake than it saves.
        if 2 * op.m * op.n * op.k < 4_000_000 { parts = 1 }
        // Splitting N makes every thread pack all of A (m·k); splitting M makes each pack all of B (k·n).
        let splitN = op.n >= op.m ? tilesN >= 2 : tilesM < 2
        parts = min(parts, splitN ? tilesN : tilesM)
        if parts <= 1 {
            gemmSerial(op)
            return
        }
        let tiles = splitN ? tilesN : tilesM, count = parts
        let unit = splitN ? nr : mr
        let extent = splitN ? op.n : op.m
        parallelFor(count) { part in
            let lo = min(extent, tiles * part / count * unit)
            let hi = min(extent, tiles * (part + 1) / count * unit)
            guard lo < hi else { return }
            gemmSerial(splitN ? op.columns(lo..<hi) : op.rows(lo..<hi))
        }
    }

    /// The single-threaded blocked loop nest (BLIS order: jc → pc [pack B] → ic [pack A] → jr → ir).
    static func gemmSerial(_ op: GEMMOperands) {
        let (mr, nr) = (GEMMBlocking.mr, GEMMBlocking.nr)
        // Even block sizes avoid a thin remainder block (e.g. k = 300 → 2×150, not 256 + 44).
        let kBlocks = (op.k + GEMMBlocking.kc - 1) / GEMMBlocking.kc
        let kc = (op.k + kBlocks - 1) / kBlocks
        let mcMax = min(GEMMBlocking.mc, roundUp(op.m, mr))
        let ncMax = min(GEMMBlocking.nc, roundUp(op.n, nr))
        let aCount = mcMax * kc, bCount = kc * ncMax, tileCount = mr * nr
        KernelScratch.shared.withBuffer(count: aCount + bCount + tileCount + 64) { scratch in
            let packedA = scratch
            let packedB = scratch + roundUp(aCount, 16)
            let tile = packedB + roundUp(bCount, 16)
            var jc = 0
            while jc < op.n {
                let nc = min(ncMax, op.n - jc)
                var pc = 0
                while pc < op.k {
                    let kcNow = min(kc, op.k - pc)
                    packB(op, k0: pc, kc: kcNow, j0: jc, nc: nc, into: packedB)
                    let loadC = op.accumulate || pc > 0
                    let last = pc + kcNow == op.k
                    var ic = 0
                    while ic < op.m {
                        let mc = min(mcMax, op.m - ic)
                        packA(op, i0: ic, mc: mc, k0: pc, kc: kcNow, into: packedA)
                        var jr = 0
                        while jr < nc {
                            let cols = min(nr, nc - jr)
                            var ir = 0
                            while ir < mc {
                                let rows = min(mr, mc - ir)
                                let i = ic + ir, j = jc + jr
                                gemmMicroKernel(
                                    kc: kcNow, a: packedA + ir * kcNow, b: packedB + jr * kcNow,
                                    c: op.c + i * op.ldc + j, ldc: op.ldc, rows: rows, cols: cols,
                                    loadC: loadC,
                                    epilogue: last && !op.epilogue.isNone ? op.epilogue.offset(row: i, column: j) : nil,
                                    tile: tile)
                                ir += mr
                            }
                            jr += nr
                        }
                        ic += mc
                    }
                    pc += kcNow
                }
                jc += nc
            }
        }
    }

    @inline(__always)
    static func roundUp(_ x: Int, _ multiple: Int) -> Int { (x + multiple - 1) / multiple * multiple }
}

/// Register and cache blocking of the GEMM.
enum GEMMBlocking {
    /// Micro-tile rows (broadcast `A` values).
    static let mr = 12
    /// Micro-tile columns: two vectors.
    static let nr = 2 * GEMMVector.scalarCount
    /// Depth of a packed block (`KC×NR` of `B` stays in L1).
    static let kc = 256
    /// Rows of a packed `A` block (`MC×KC` stays in L2).
    static let mc = 144
    /// Columns of a packed `B` block.
    static let nc = 2048
}

/// What to apply to `C` after the last `K` block: `C = relu?(C + bias[row] + residual)`.
/// Pointers are relative to the first element of the `C` they come with.
struct GEMMEpilogue: @unchecked Sendable {
    /// One value per row of `C`.
    var bias: UnsafePointer<Float>?
    /// Same shape as `C`, leading dimension `ldr`.
    var residual: UnsafePointer<Float>?
    var ldr: Int
    var relu: Bool

    static let none = GEMMEpilogue(bias: nil, residual: nil, ldr: 0, relu: false)

    var isNone: Bool { bias == nil && residual == nil && !relu }

    /// The epilogue for the sub-matrix of `C` starting at (`row`, `column`).
    func offset(row: Int, column: Int) -> GEMMEpilogue {
        GEMMEpilogue(bias: bias.map { $0 + row }, residual: residual.map { $0 + row * ldr + column },
                     ldr: ldr, relu: relu)
    }
}

/// One GEMM problem (or a part of one), with raw operand pointers.
struct GEMMOperands: @unchecked Sendable {
    var m: Int, n: Int, k: Int
    var a: UnsafePointer<Float>, lda: Int, transposeA: Bool
    var b: UnsafePointer<Float>, ldb: Int, transposeB: Bool
    var c: UnsafeMutablePointer<Float>, ldc: Int
    var accumulate: Bool
    var epilogue: GEMMEpilogue

    /// The sub-problem computing rows `range` of `C`.
    func rows(_ range: Range<Int>) -> GEMMOperands {
        var sub = self
        sub.m = range.count
        sub.a = transposeA ? a + range.lowerBound : a + range.lowerBound * lda
        sub.c = c + range.lowerBound * ldc
        sub.epilogue = epilogue.offset(row: range.lowerBound, column: 0)
        return sub
    }

    /// The sub-problem computing columns `range` of `C`.
    func columns(_ range: Range<Int>) -> GEMMOperands {
        var sub = self
        sub.n = range.count
        sub.b = transposeB ? b + range.lowerBound * ldb : b + range.lowerBound
        sub.c = c + range.lowerBound
        sub.epilogue = epilogue.offset(row: 0, column: range.lowerBound)
        return sub
    }
}
