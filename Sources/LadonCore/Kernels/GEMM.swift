// Single-precision matrix multiplication, the workhorse behind 1x1 and im2col convolutions and linear layers.
import Foundation

extension Kernels {
    /// `C[M×N] = op(A)·op(B) (+ C if accumulate)`, row-major with leading dimensions; same contract as
    /// `gemmReference` (the plain reference kernel).
    ///
    /// Goto-style blocked GEMM: `A` is packed into `MR`-row panels and `B` into `NR`-column panels (both
    /// transposes are handled by the packing), and a register-blocked SIMD micro-kernel computes each
    /// `MR×NR` tile (the fastest this CPU supports, see ``gemmKernelName``). Work is split over `threads`
    /// (default ``threadCount``) along `N` or `M`, whichever duplicates less packing (wide products with prepacked
    /// weights: column blocks taken by whichever thread is free). With `k == 0` the product is zero: `C` is zeroed
    /// unless `accumulate`.
    ///
    /// Public so that packages depending on LadonCore can time the kernel their build runs (docs/performance.md,
    /// "Dependents"); the model calls it through its layers.
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

    /// Splits `op` across threads (fixed shares, column blocks handed out as threads come free, or chunks handed out
    /// per depth block from both ends, ``DepthChunkSchedule``) and runs the
    /// blocked algorithm on each part; every element is computed the same way whatever the split. Below `parallelFlops`
    /// (~4 MFLOP, where waking a second thread costs more than it saves) it stays on the calling thread.
    /// `rowChunkTiles` and `columnChunkTiles` size the two-ended chunks: `nil` for the blocking's own
    /// (``GEMMBlocking/rowChunkTiles``), `0` for fixed halves instead.
    static func gemmBlocked(_ op: GEMMOperands, threads: Int, blocking: GEMMBlocking = .preferred,
                            parallelFlops: Int = 4_000_000, rowChunkTiles: Int? = nil, columnChunkTiles: Int? = nil) {
        let (mr, nr) = (blocking.mr, blocking.nr)
        let tilesM = (op.m + mr - 1) / mr, tilesN = (op.n + nr - 1) / nr
        var parts = threads
        if 2 * op.m * op.n * op.k < parallelFlops { parts = 1 }
        // Splitting N makes every thread pack all of A (m·k); splitting M makes each pack all of B (k·n).
        // Prepacked weights cost nothing to share, so N is split unless that leaves the busiest thread more tiles
        // than splitting M would (N = 169 on 16-column tiles: 11 tiles, 6 + 5; 512 rows: 43 + 43 six-row tiles),
        // by more than the 3 % that packing all of B on every thread costs at most (M ≥ 128). The columns a thread
        // computes count the last tile as the C AVX-512 kernel runs it: 16 columns when at most 16 are valid (N = 169
        // on 32-column tiles: 96 + 73 columns split by N, against 86 + 85 row tiles of 176 computed columns by M).
        let splitN: Bool
        if op.packedA != nil {
            let tail = op.n % nr
            let lastTileColumns = tail == 0 ? nr : (blocking.hasHalfWidthTiles && tail <= nr / 2 ? nr / 2 : nr)
            let computedColumns = (tilesN - 1) * nr + lastTileColumns
            let busiestN = (tilesN + parts - 1) / parts * nr * tilesM * mr
            let busiestM = (tilesM + parts - 1) / parts * mr * computedColumns
            splitN = tilesM < 2 || op.m < 128 || 100 * busiestM >= 97 * busiestN
        } else {
            splitN = op.n >= op.m ? tilesN >= 2 : tilesM < 2
        }
        parts = min(parts, splitN ? tilesN : tilesM)
        if parts <= 1 {
            gemmSerial(op, blocking)
            return
        }
        // On two threads, chunks handed out from both ends per depth block (``DepthChunkSchedule``; each chunk's share of
        // B or C mostly stays with one thread from block to block), so that a thread the host slows down for a spell
        // takes fewer chunks instead of holding up the join. By columns with 128–512 rows and C at most 2 MB (between
        // depth blocks it stays in the two L2s; layer2's N = 2704 and layer3's 676 in 64-column chunks: 1.02–1.10× the
        // two-thread GFLOP/s of whole column blocks or fixed halves; with 1,024 rows, A's depth block read again per
        // chunk cost 2–4 %). By rows when a depth block of all of B fits a quarter of a 1 MB L2 (layer4's N = 169;
        // 48-row chunks: 1.02–1.10× the fixed halves). AVX-512 figures; the AVX2 kernel's in GEMMBlocking.
        if parts == 2, op.packedA != nil {
            let columnChunk = columnChunkTiles ?? blocking.columnChunkTiles
            let rowChunk = rowChunkTiles ?? blocking.rowChunkTiles
            if splitN, columnChunk > 0, (128...512).contains(op.m), op.m * op.n <= 1 << 19, tilesN >= 4 * columnChunk {
                gemmColumnChunks(op, chunkTiles: columnChunk, blocking)
                return
            }
            if !splitN, rowChunk > 0, blocking.depthBlock(op.k) * roundUp(op.n, nr) <= 1 << 16, tilesM >= 4 * rowChunk {
                gemmRowChunks(op, chunkTiles: rowChunk, blocking)
                return
            }
        }
        let blockTiles = max(1, blocking.ncSmall / nr)
        if splitN && op.packedA != nil && tilesN >= 3 * parts * blockTiles {
            // Other wide products go in chunks of one column block (A is read once per block either way) to whichever
            // thread is free next, so a core the host slows down hands its remaining chunks over instead of holding up
            // the join. Anything else keeps one fixed share per thread.
            WorkSplit.forEachChunk(tilesN, chunk: blockTiles, parts: parts) { range in
                gemmSerial(op.columns(range.lowerBound * nr..<min(op.n, range.upperBound * nr)), blocking)
            }
            return
        }
        let tiles = splitN ? tilesN : tilesM, count = parts
        let unit = splitN ? nr : mr
        let extent = splitN ? op.n : op.m
        WorkSplit.forEachPart(count) { part in
            let lo = min(extent, tiles * part / count * unit)
            let hi = min(extent, tiles * (part + 1) / count * unit)
            guard lo < hi else { return }
            gemmSerial(splitN ? op.columns(lo..<hi) : op.rows(lo..<hi), blocking)
        }
    }

    /// The single-threaded blocked loop nest (depth blocks outermost: pc → jc [pack B] → ic [pack A] → jr → ir).
    /// When all of `M` fits one `MC` block, `A` is packed once per depth block and `B` in `KC×NCsmall`
    /// chunks that stay in L2 right before their tiles run (small-M, wide-N shapes). With prepacked `A` on a
    /// machine with 1 MB of L2 or more, the columns go outermost instead (jc → pc → ic) to keep `C` in L2. A plain `B`
    /// may be packed by the first row block's tiles instead of a separate pass (``GEMMKernel/packingBlockFunction``).
    static func gemmSerial(_ op: GEMMOperands, _ blocking: GEMMBlocking) {
        let (mr, nr) = (blocking.mr, blocking.nr)
        let kc = blocking.depthBlock(op.k)
        if let packed = op.packedA {
            precondition(packed.mr == mr && packed.kc == kc, "gemm: A was packed for another blocking")
        }
        let mcMax = min(blocking.mc, roundUp(op.m, mr))
        let singleBlock = op.m <= mcMax
        // With prepacked A and an L2 of 1 MB or more (Zen 4) the columns go outermost (jc → pc → ic): a C block
        // of all M rows × nc columns (half the L2) stays in L2 across every depth block instead of going out to
        // memory and back once per depth block. With 512 KB (Zen 3) that block crowds out the A and B blocks:
        // there depth blocks outermost measured faster (GEMMPerfTests, same build: up to 13 %, docs/performance.md).
        // Columns outermost reads all of A once per column block: weights over 16 MB (half a 32 MB L3; the box head's
        // fc6 is 51 MB) would come from memory that often, so they keep depth blocks outermost (A read once, C in L3).
        // (The L3 size the system reports is not used: in a VM it can be the host's, 384 MB on the Zen 5 machine.)
        let columnsOutermost = op.packedA != nil && (GEMMBlocking.loopOrder.map { $0 == "columns" }
            ?? (CacheInfo.level2Bytes >= 1 << 20 && op.m * op.k * 4 <= 16 << 20))
        let ncMax = columnsOutermost
            ? min(blocking.ncSmall, max(nr, CacheInfo.level2Bytes / 8 / max(op.m, 1) / nr * nr), roundUp(op.n, nr))
            : min(singleBlock ? blocking.ncSmall : blocking.nc, roundUp(op.n, nr))
        let aCount = op.packedA == nil ? mcMax * kc : 0, bCount = kc * ncMax, tileCount = mr * nr
        let block = blocking.kernel.blockFunction
        let packingBlock = packingTiles(op, blocking)
        KernelScratch.shared.withBuffer(count: aCount + bCount + tileCount + 64) { scratch in
            let packedA = scratch
            let packedB = scratch + roundUp(aCount, 16)
            let tile = packedB + roundUp(bCount, 16)
            // Runs the tiles of rows ic..<ic+mc against the packed B panels jr..<jr+nc (columns j0 + jr).
            // The packed rows ic..<ic+mc of depth block pc: prepacked weights, or packed now into `packedA`.
            func panelsOfA(ic: Int, mc: Int, pc: Int, kc: Int) -> UnsafePointer<Float> {
                if let packed = op.packedA { return packed.panels(row: ic, depth: pc, depthCount: kc) }
                packA(op, i0: ic, mc: mc, k0: pc, kc: kc, mr: mr, into: packedA)
                return UnsafePointer(packedA)
            }
            // Packs the B block (depth pc, columns jc..<jc+nc) and runs it against every MC block of rows.
            func rowBlocks(pc: Int, kc kcNow: Int, jc: Int, nc: Int) {
                if packingBlock == nil { packPanelsOfB(op, k0: pc, kc: kcNow, j0: jc, nc: nc, nr: nr, into: packedB) }
                var ic = 0
                while ic < op.m {
                    let mc = min(mcMax, op.m - ic)
                    let a = panelsOfA(ic: ic, mc: mc, pc: pc, kc: kcNow)
                    runRowBlock(op, block, a: a, i0: ic, mc: mc, pc: pc, kc: kcNow, j0: jc, nc: nc, packedB: packedB,
                                packing: ic == 0 ? packingBlock : nil, tile: tile)
                    ic += mc
                }
            }
            if columnsOutermost {
                var jc = 0
                while jc < op.n {
                    let nc = min(ncMax, op.n - jc)
                    var pc = 0
                    while pc < op.k {
                        let kcNow = min(kc, op.k - pc)
                        rowBlocks(pc: pc, kc: kcNow, jc: jc, nc: nc)
                        pc += kcNow
                    }
                    jc += nc
                }
                return
            }
            var pc = 0
            while pc < op.k {
                let kcNow = min(kc, op.k - pc)
                if singleBlock {
                    let a = panelsOfA(ic: 0, mc: op.m, pc: pc, kc: kcNow)
                    var jc = 0
                    while jc < op.n {
                        let nc = min(ncMax, op.n - jc)
                        if packingBlock == nil {
                            packPanelsOfB(op, k0: pc, kc: kcNow, j0: jc, nc: nc, nr: nr, into: packedB)
                        }
                        runRowBlock(op, block, a: a, i0: 0, mc: op.m, pc: pc, kc: kcNow, j0: jc, nc: nc,
                                    packedB: packedB, packing: packingBlock, tile: tile)
                        jc += nc
                    }
                } else {
                    var jc = 0
                    while jc < op.n {
                        let nc = min(ncMax, op.n - jc)
                        rowBlocks(pc: pc, kc: kcNow, jc: jc, nc: nc)
                        jc += nc
                    }
                }
                pc += kcNow
            }
        }
    }

    /// A product split by rows between two threads (prepacked `A`, narrow `N`: the 13×13 stages' N = 169) in chunks
    /// of `chunkTiles` row tiles taken from both ends per depth block (``DepthChunkSchedule``) instead of a fixed half
    /// each. As in the fixed halves, each thread packs the depth block's `B` into its own L2-sized buffer (once it has
    /// taken a chunk there) and runs the chunks it takes against it; where the kernel can (``packingTiles(_:_:)``), the
    /// first chunk's tiles pack that `B` as they multiply, as ``gemmSerial(_:_:)``'s first row block does (layer4's
    /// N = 169, AVX-512, alternated against a separate packing pass: 1.00–1.05× the two-thread speed, median 1.02).
    /// Each element of `C` is the same FMA chain, depth block by depth block in order, as in ``gemmSerial(_:_:)``.
    static func gemmRowChunks(_ op: GEMMOperands, chunkTiles: Int, _ blocking: GEMMBlocking) {
        let (mr, nr) = (blocking.mr, blocking.nr)
        let kc = blocking.depthBlock(op.k)
        let packed = op.packedA!
        precondition(packed.mr == mr && packed.kc == kc, "gemm: A was packed for another blocking")
        let panelColumns = roundUp(op.n, nr)
        let block = blocking.kernel.blockFunction
        let packingBlock = packingTiles(op, blocking)
        let tilesM = (op.m + mr - 1) / mr
        DepthChunkSchedule.run(chunks: (tilesM + chunkTiles - 1) / chunkTiles, depthBlocks: (op.k + kc - 1) / kc,
                               scratchCount: kc * panelColumns + mr * nr + 64) { p, chunk, firstTaken, scratch in
            let packedB = scratch, tile = scratch + roundUp(kc * panelColumns, 16)
            let pc = p * kc, kcNow = min(kc, op.k - pc)
            let i0 = chunk * chunkTiles * mr, rows = min(op.m, i0 + chunkTiles * mr) - i0
            if firstTaken, packingBlock == nil {
                packPanelsOfB(op, k0: pc, kc: kcNow, j0: 0, nc: op.n, nr: nr, into: packedB)
            }
            runRowBlock(op, block, a: packed.panels(row: i0, depth: pc, depthCount: kcNow), i0: i0, mc: rows,
                        pc: pc, kc: kcNow, j0: 0, nc: op.n, packedB: packedB, packing: firstTaken ? packingBlock : nil,
                        tile: tile)
        }
    }

    /// A product split by columns between two threads (prepacked `A`, too narrow for whole column blocks per thread:
    /// the 26×26 stages' N = 676) in chunks of `chunkTiles` column tiles taken from both ends per depth block
    /// (``DepthChunkSchedule``) instead of a fixed half each. A chunk packs its own columns of the depth block's `B`
    /// (in the first row block's tiles where the kernel can, as ``gemmSerial(_:_:)`` does) and runs every row block
    /// of `A`'s depth block against them; each element of `C` is the same FMA chain as in ``gemmSerial(_:_:)``.
    static func gemmColumnChunks(_ op: GEMMOperands, chunkTiles: Int, _ blocking: GEMMBlocking) {
        let (mr, nr) = (blocking.mr, blocking.nr)
        let kc = blocking.depthBlock(op.k)
        let packed = op.packedA!
        precondition(packed.mr == mr && packed.kc == kc, "gemm: A was packed for another blocking")
        let block = blocking.kernel.blockFunction
        let packingBlock = packingTiles(op, blocking)
        let mcMax = min(blocking.mc, roundUp(op.m, mr)), chunkColumns = chunkTiles * nr
        let tilesN = (op.n + nr - 1) / nr
        DepthChunkSchedule.run(chunks: (tilesN + chunkTiles - 1) / chunkTiles, depthBlocks: (op.k + kc - 1) / kc,
                               scratchCount: kc * chunkColumns + mr * nr + 64) { p, chunk, _, scratch in
            let packedB = scratch, tile = scratch + roundUp(kc * chunkColumns, 16)
            let pc = p * kc, kcNow = min(kc, op.k - pc)
            let j0 = chunk * chunkColumns, nc = min(op.n, j0 + chunkColumns) - j0
            if packingBlock == nil { packPanelsOfB(op, k0: pc, kc: kcNow, j0: j0, nc: nc, nr: nr, into: packedB) }
            var ic = 0
            while ic < op.m {
                let mc = min(mcMax, op.m - ic)
                runRowBlock(op, block, a: packed.panels(row: ic, depth: pc, depthCount: kcNow), i0: ic, mc: mc,
                            pc: pc, kc: kcNow, j0: j0, nc: nc, packedB: packedB, packing: ic == 0 ? packingBlock : nil,
                            tile: tile)
                ic += mc
            }
        }
    }

    /// Runs rows `i0..<i0+mc` (their packed panels `a`) with `block` against depth block `pc..<pc+kc`, columns
    /// `j0..<j0+nc`, of `B`: already packed in `packedB`, or, given `packing` (the first row block of a `B` block,
    /// ``packingTiles(_:_:)``), packed into `packedB` by these tiles as they multiply. `C` is loaded unless this is a
    /// fresh product's first depth block; the epilogue runs after the last.
    @inline(__always)
    static func runRowBlock(_ op: GEMMOperands, _ block: GEMMBlockFunction, a: UnsafePointer<Float>, i0: Int, mc: Int,
                            pc: Int, kc: Int, j0: Int, nc: Int, packedB: UnsafeMutablePointer<Float>,
                            packing: GEMMPackingBlockFunction?, tile: UnsafeMutablePointer<Float>) {
        let loadC = op.accumulate || pc > 0, c = op.c + i0 * op.ldc + j0
        let epilogue = pc + kc == op.k && !op.epilogue.isNone ? op.epilogue.offset(row: i0, column: j0) : nil
        if let packing {
            packing(kc, a, mc, op.b + pc * op.ldb + j0, op.ldb, nc, packedB, c, op.ldc, loadC, epilogue, tile)
        } else {
            block(kc, a, mc, packedB, nc, c, op.ldc, loadC, epilogue, tile)
        }
    }

    /// The block loop that packs a plain `B` in the first row block's tiles as they multiply, where the kernel has one
    /// (C AVX-512), there are at least 8 row tiles to share that tile's wait on memory and B's rows lie at most 16 KB
    /// apart: the tile reads 128 bytes per row, so farther apart every row is a TLB miss the prefetch cannot hide
    /// (N = 10816 and 43264 ran 10–50 % slower that way, N = 676 and 2704 4–11 % faster; docs/performance.md,
    /// eighteenth session). `nil`: pack in a separate pass (always with LADON_GEMM_PACKING_TILES=0, for experiments).
    static func packingTiles(_ op: GEMMOperands, _ blocking: GEMMBlocking) -> GEMMPackingBlockFunction? {
        op.im2col == nil && !op.transposeB && op.m >= 8 * blocking.mr && op.ldb <= 4096 && GEMMBlocking.packingTiles
            ? blocking.kernel.packingBlockFunction : nil
    }

    /// Packs a block of `B` into panels: from the matrix, or straight from the input image (im2col).
    @inline(__always)
    static func packPanelsOfB(_ op: GEMMOperands, k0: Int, kc: Int, j0: Int, nc: Int, nr: Int,
                              into dst: UnsafeMutablePointer<Float>) {
        if let im2col = op.im2col {
            im2col.pack(k0: k0, kc: kc, j0: op.im2colColumn + j0, nc: nc, nr: nr, into: dst)
        } else {
            packB(op, k0: k0, kc: kc, j0: j0, nc: nc, nr: nr, into: dst)
        }
    }

    @inline(__always)
    static func roundUp(_ x: Int, _ multiple: Int) -> Int { (x + multiple - 1) / multiple * multiple }
}

/// Cache sizes of this machine, read once.
enum CacheInfo {
    /// Bytes of one core's L2 cache (`sysconf(_SC_LEVEL2_CACHE_SIZE)` on Linux, `hw.l2cachesize` on macOS);
    /// 512 KB when the system does not say.
    static let level2Bytes: Int = {
        #if os(Linux)
        let size = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
        #elseif os(macOS)
        var size = 0, length = MemoryLayout<Int>.size
        if sysctlbyname("hw.l2cachesize", &size, &length, nil, 0) != 0 { size = 0 }
        #else
        let size = 0
        #endif
        return size >= 64 << 10 ? min(size, 64 << 20) : 512 << 10
    }()
}

/// Register and cache blocking of the GEMM: a micro-kernel plus cache block sizes.
struct GEMMBlocking: Sendable, Equatable {
    /// The micro-kernel computing each `mr×nr` tile.
    var kernel: GEMMKernel
    /// Micro-tile rows (broadcast `A` values) and columns (one or two vectors).
    var mr: Int, nr: Int
    /// Depth of a packed block (`KC×NR` of `B` stays in L1), rows of a packed `A` block (`MC×KC`, L2),
    /// columns of a packed `B` block (`KC×NC`, L3).
    var kc: Int, mc: Int, nc: Int
    /// Columns of a packed `B` block when all of `M` fits one `MC` block (`KC×NCsmall` stays in L2).
    var ncSmall: Int

    /// The 12×32 tile (24 vector accumulators) rather than the 6×16 one (6 accumulators).
    var wide: Bool { mr == 12 }

    /// Whether a tile of at most `nr / 2` valid columns runs a half-width kernel (the C AVX-512 one's 16-column
    /// variants), so that it costs half a tile.
    var hasHalfWidthTiles: Bool {
        #if arch(x86_64) && (os(Linux) || os(macOS))
        kernel == .avx512
        #else
        false
        #endif
    }

    /// 12×32 with 24 accumulators: needs 32 vector registers of `GEMMVector` width (AVX-512 zmm).
    static let wide = GEMMBlocking(kernel: .swift12x32, mr: 12, nr: 2 * GEMMVector.scalarCount, kc: 256, mc: 144,
                                   nc: 2048, ncSmall: 256)
    /// 6×16 with 6 accumulators (12 ymm on AVX2, 24 q-registers on NEON); the BLIS Haswell shape.
    static let narrow = GEMMBlocking(kernel: .swift6x16, mr: 6, nr: GEMMVector.scalarCount, kc: 256, mc: 168,
                                     nc: 4080, ncSmall: 256)

    /// The blocking of `kernel`: the 12×32 kernels share ``wide``'s block sizes, the 6×16 ones ``narrow``'s.
    init(_ kernel: GEMMKernel) {
        self = kernel.isWide ? .wide : .narrow
        self.kernel = kernel
        // Experiments only: LADON_GEMM_BLOCKING="kc,mc,nc" (a value below one tile, or unreadable, keeps the default;
        // mc and nc round down to whole tiles).
        if let text = ProcessInfo.processInfo.environment["LADON_GEMM_BLOCKING"] {
            let v = text.split(separator: ",").map { Int($0) ?? 0 }
            if v.count == 3 {
                if v[0] >= 1 { kc = v[0] }
                if v[1] >= mr { mc = v[1] / mr * mr }
                if v[2] >= nr { nc = v[2] / nr * nr; ncSmall = nc }
            }
        }
    }

    private init(kernel: GEMMKernel, mr: Int, nr: Int, kc: Int, mc: Int, nc: Int, ncSmall: Int) {
        self.kernel = kernel
        (self.mr, self.nr, self.kc, self.mc, self.nc, self.ncSmall) = (mr, nr, kc, mc, nc, ncSmall)
    }

    /// The depth of the blocks a `k`-deep product is split into: at most `kc`, and even (e.g. k = 300 → 2×150,
    /// not 256 + 44, which would leave a thin remainder block). Packed weights use the same split.
    func depthBlock(_ k: Int) -> Int {
        let blocks = max(1, (k + kc - 1) / kc)
        return max(1, (k + blocks - 1) / blocks)
    }

    /// Experiments only: `LADON_GEMM_PACKING_TILES=0` packs a plain `B` in a separate pass even where the kernel's
    /// first row tiles could pack it (``GEMMKernel/packingBlockFunction``).
    static let packingTiles = ProcessInfo.processInfo.environment["LADON_GEMM_PACKING_TILES"] != "0"

    /// Row tiles per chunk of a narrow row split handed out from both ends (``Kernels/gemmRowChunks``): 48 rows
    /// (4 tiles of 12, 8 of 6; on the AVX2 kernel 8 six-row tiles ran 1.01–1.07× the fixed halves, 4 tiles 0.98–1.15×).
    /// `0`: the fixed halves.
    var rowChunkTiles: Int { Self.rowChunkRows > 0 ? max(1, Self.rowChunkRows / mr) : 0 }

    /// Column tiles per chunk of a narrow column split handed out from both ends (``Kernels/gemmColumnChunks``):
    /// 64 columns (2 tiles of 32, 4 of 16; on the AVX2 kernel 4 tiles ran 1.00–1.14× the fixed halves, 2 tiles
    /// 1.00–1.07×). `0`: the fixed halves.
    var columnChunkTiles: Int { Self.columnChunkColumns > 0 ? max(1, Self.columnChunkColumns / nr) : 0 }

    /// Experiments: `LADON_GEMM_ROW_CHUNK=n` rows per chunk (``rowChunkTiles``), `0` or less for the fixed halves.
    static let rowChunkRows = ProcessInfo.processInfo.environment["LADON_GEMM_ROW_CHUNK"].flatMap { Int($0) } ?? 48

    /// Experiments: `LADON_GEMM_COLUMN_CHUNK=n` columns per chunk (``columnChunkTiles``), `0` or less for the fixed halves.
    static let columnChunkColumns =
        ProcessInfo.processInfo.environment["LADON_GEMM_COLUMN_CHUNK"].flatMap { Int($0) } ?? 64

    /// Experiments only: `LADON_GEMM_ORDER=columns` or `depth` forces the prepacked loop order.
    static let loopOrder = ProcessInfo.processInfo.environment["LADON_GEMM_ORDER"]

    /// The blocking of ``GEMMKernel/selected``, the kernel this process runs.
    static let preferred = GEMMBlocking(GEMMKernel.selected)
}

/// What to apply to `C` after the last `K` block: `C = relu?(C + bias[row] + residual)`.
/// Pointers are relative to the first element of the `C` they come with.
struct GEMMEpilogue {
    /// One value per row of `C`.
    var bias: UnsafePointer<Float>?
    /// Same shape as `C`, leading dimension `ldr`.
    var residual: UnsafePointer<Float>?
    var ldr: Int
    var relu: Bool

    static var none: GEMMEpilogue { GEMMEpilogue(bias: nil, residual: nil, ldr: 0, relu: false) }

    var isNone: Bool { bias == nil && residual == nil && !relu }

    /// `v` (an element of `C` at `row`, `column`) with the epilogue applied in the micro-kernels' order:
    /// `+ bias[row]`, `+ residual`, then ReLU as `v > 0 ? v : 0` (NaN and −0 become 0).
    @inline(__always)
    func apply(_ v: Float, row: Int, column: Int) -> Float {
        var v = v
        if let bias { v += bias[row] }
        if let residual { v += residual[row * ldr + column] }
        return relu ? (v > 0 ? v : 0) : v
    }

    /// The epilogue for the sub-matrix of `C` starting at (`row`, `column`).
    func offset(row: Int, column: Int) -> GEMMEpilogue {
        GEMMEpilogue(bias: bias.map { $0 + row }, residual: residual.map { $0 + row * ldr + column },
                     ldr: ldr, relu: relu)
    }
}

/// One GEMM problem (or a part of one), with raw operand pointers.
struct GEMMOperands {
    var m: Int, n: Int, k: Int
    var a: UnsafePointer<Float>, lda: Int, transposeA: Bool
    var b: UnsafePointer<Float>, ldb: Int, transposeB: Bool
    var c: UnsafeMutablePointer<Float>, ldc: Int
    var accumulate: Bool
    var epilogue: GEMMEpilogue
    /// `A` already in panels (prepacked weights); `a` is then not read.
    var packedA: PackedPanels? = nil
    /// `B` is the im2col matrix of a convolution input, packed straight from the image; `b` is then not read.
    var im2col: Im2colPanels? = nil
    /// The first column of this (sub-)problem within `im2col`'s matrix.
    var im2colColumn = 0

    /// The sub-problem computing rows `range` of `C`.
    func rows(_ range: Range<Int>) -> GEMMOperands {
        var sub = self
        sub.m = range.count
        sub.a = transposeA ? a + range.lowerBound : a + range.lowerBound * lda
        sub.packedA = packedA?.offset(rows: range.lowerBound)
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
        sub.im2colColumn += range.lowerBound
        sub.epilogue = epilogue.offset(row: 0, column: range.lowerBound)
        return sub
    }
}
