// The blocked GEMM against the Double reference on odd shapes, transposes, leading dimensions and threads.
import Testing
import LadonTestSupport
@testable import LadonCore

/// One GEMM case with padded leading dimensions: computes the reference once, then checks the optimised
/// kernel for each (forced micro-kernel or `nil` = public entry point, threads) variant, including that
/// the padding columns of C are left untouched.
private func checkGEMM(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, accumulate: Bool,
                       threads: Int, pad: Int, seed: UInt64, blocking: GEMMBlocking? = nil,
                       variants: [(GEMMBlocking?, Int)]? = nil,
                       sourceLocation: SourceLocation = #_sourceLocation) {
    var rng = SplitMix64(seed: seed)
    let lda = (transposeA ? m : k) + pad, ldb = (transposeB ? k : n) + pad, ldc = n + pad
    let aRows = transposeA ? k : m, bRows = transposeB ? n : k
    let a = (0..<max(aRows * lda, 1)).map { _ in Float.random(in: -1...1, using: &rng) }
    let b = (0..<max(bRows * ldb, 1)).map { _ in Float.random(in: -1...1, using: &rng) }
    var c0 = (0..<max(m * ldc, 1)).map { _ in Float.random(in: -1...1, using: &rng) }
    // Padding columns of C hold a sentinel that must survive.
    for i in 0..<m { for j in n..<ldc { c0[i * ldc + j] = 12345 } }
    var expected = c0
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            expected.withUnsafeMutableBufferPointer { cp in
                Kernels.gemmReference(m: m, n: n, k: k, a: ap.baseAddress!, lda: lda, transposeA: transposeA,
                                      b: bp.baseAddress!, ldb: ldb, transposeB: transposeB,
                                      c: cp.baseAddress!, ldc: ldc, accumulate: accumulate)
            }
        }
    }
    for (blocking, threads) in variants ?? [(blocking, threads)] {
        var actual = c0
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                actual.withUnsafeMutableBufferPointer { cp in
                    if let blocking {
                        // A forced micro-kernel, and threads even for tiny products.
                        let op = GEMMOperands(m: m, n: n, k: k, a: ap.baseAddress!, lda: lda, transposeA: transposeA,
                                              b: bp.baseAddress!, ldb: ldb, transposeB: transposeB,
                                              c: cp.baseAddress!, ldc: ldc, accumulate: accumulate, epilogue: .none)
                        Kernels.gemmBlocked(op, threads: threads, blocking: blocking, parallelFlops: 0)
                    } else {
                        Kernels.gemm(m: m, n: n, k: k, a: ap.baseAddress!, lda: lda, transposeA: transposeA,
                                     b: bp.baseAddress!, ldb: ldb, transposeB: transposeB,
                                     c: cp.baseAddress!, ldc: ldc, accumulate: accumulate, threads: threads)
                    }
                }
            }
        }
        let tolerance: Float = 1e-6 * Float(k) + 1e-6
        var worst: Float = 0, firstBad = ""
        for i in 0..<m {
            for j in 0..<ldc {
                let d = abs(actual[i * ldc + j] - expected[i * ldc + j])
                if !(d <= tolerance) {
                    if firstBad.isEmpty { firstBad = "(\(i),\(j)) \(actual[i * ldc + j]) vs \(expected[i * ldc + j])" }
                    worst = d.isNaN ? .nan : max(worst, d)
                }
            }
        }
        #expect(firstBad.isEmpty,
                "\(blocking.map { $0.kernel.rawValue } ?? "public") m \(m) n \(n) k \(k) tA \(transposeA) tB \(transposeB) acc \(accumulate) threads \(threads): max diff \(worst), first \(firstBad)",
                sourceLocation: sourceLocation)
    }
}

@Suite struct GEMMTests {
    static let sizes = [1, 2, 3, 5, 7, 11, 12, 13, 17, 31, 32, 33, 47, 61, 64, 67]
    /// Every micro-kernel this CPU runs (on an AVX-512 machine: both Swift kernels and both C ones).
    static let kernels = GEMMKernel.allCases.filter(\.isSupported).map(GEMMBlocking.init)

    @Test(arguments: [1, 2], kernels)
    func randomOddShapes(threads: Int, blocking: GEMMBlocking) {
        var rng = SplitMix64(seed: 0x6E33 + UInt64(threads) * 2 + (blocking.wide ? 1 : 0))
        for trial in 0..<60 {
            let m = Self.sizes.randomElement(using: &rng)!
            let n = Self.sizes.randomElement(using: &rng)!
            let k = Self.sizes.randomElement(using: &rng)!
            checkGEMM(m: m, n: n, k: k, transposeA: trial % 4 >= 2, transposeB: trial % 2 == 1,
                      accumulate: trial % 3 == 0, threads: threads, pad: trial % 4 == 0 ? 0 : trial % 5 + 1,
                      seed: rng.next(), blocking: blocking)
        }
    }

    @Test(arguments: [1, 2], kernels)
    func everySizeOnEachAxis(threads: Int, blocking: GEMMBlocking) {
        // Each axis walks 1…67 while the others stay odd, so every edge-tile width and height is hit.
        for s in 1...67 {
            checkGEMM(m: s, n: 37, k: 19, transposeA: false, transposeB: false, accumulate: false,
                      threads: threads, pad: 1, seed: UInt64(s), blocking: blocking)
            checkGEMM(m: 29, n: s, k: 23, transposeA: true, transposeB: false, accumulate: true,
                      threads: threads, pad: 0, seed: UInt64(100 + s), blocking: blocking)
            checkGEMM(m: 14, n: 41, k: s, transposeA: false, transposeB: true, accumulate: false,
                      threads: threads, pad: 3, seed: UInt64(200 + s), blocking: blocking)
        }
    }

    /// Shapes that cross the cache-block boundaries (KC 256, MC 144/168, NC 2048/4080) and both thread
    /// splits, through the public entry point (default kernel) and every forced kernel, 1 and 2 threads.
    @Test func multipleBlocks() {
        let cases: [(Int, Int, Int)] = [(150, 40, 300), (13, 4100, 5), (40, 2177, 70),
                                        (7, 9, 600), (175, 33, 513)]
        let variants: [(GEMMBlocking?, Int)] = [(nil, 1), (nil, 2)] + Self.kernels.flatMap { [($0, 1), ($0, 2)] }
        for (i, (m, n, k)) in cases.enumerated() {
            for (tA, tB) in [(false, false), (true, true), (true, false), (false, true)] {
                checkGEMM(m: m, n: n, k: k, transposeA: tA, transposeB: tB, accumulate: i % 2 == 0,
                          threads: 1, pad: 2, seed: UInt64(1000 + i), variants: variants)
            }
        }
    }

    @Test func zeroSizes() {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        var c: [Float] = [9, 9, 9, 9]
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    // m or n = 0: nothing is written.
                    Kernels.gemm(m: 0, n: 2, k: 2, a: ap.baseAddress!, lda: 2, b: bp.baseAddress!, ldb: 2,
                                 c: cp.baseAddress!, ldc: 2)
                    Kernels.gemm(m: 2, n: 0, k: 2, a: ap.baseAddress!, lda: 2, b: bp.baseAddress!, ldb: 2,
                                 c: cp.baseAddress!, ldc: 2)
                }
            }
        }
        #expect(c == [9, 9, 9, 9])
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    // k = 0 with accumulate keeps C; without it C becomes the empty product, 0.
                    Kernels.gemm(m: 2, n: 2, k: 0, a: ap.baseAddress!, lda: 2, b: bp.baseAddress!, ldb: 2,
                                 c: cp.baseAddress!, ldc: 2, accumulate: true)
                }
            }
        }
        #expect(c == [9, 9, 9, 9])
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    Kernels.gemm(m: 2, n: 1, k: 0, a: ap.baseAddress!, lda: 2, b: bp.baseAddress!, ldb: 2,
                                 c: cp.baseAddress!, ldc: 2)
                }
            }
        }
        #expect(c == [0, 9, 0, 9])
    }

    /// Reads the thread setting without changing it (tests run in parallel; `--threads` is the CLI's to set).
    @Test func threadCountSetting() {
        #expect(Kernels.threadCount >= 1)
        #expect(Kernels.resolvedThreads(nil) == Kernels.threadCount)
        #expect(Kernels.resolvedThreads(0) == 1 && Kernels.resolvedThreads(-3) == 1 && Kernels.resolvedThreads(3) == 3)
    }
}
