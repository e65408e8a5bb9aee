// Which GEMM micro-kernel runs: the Swift ones, or the CLadonKernels ones built for x86-64 CPU features,
// chosen once per process from CPUID (or `LADON_GEMM_KERNEL`).
import Foundation
#if arch(x86_64) && (os(Linux) || os(macOS))
import CLadonKernels
#endif

/// A micro-kernel: one `MR×NR` tile from packed panels, with the contract of ``Kernels/gemmMicroKernel6x16``.
typealias GEMMMicroKernelFunction = (Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
                                     Int, Int, Int, Bool, GEMMEpilogue?, UnsafeMutablePointer<Float>) -> Void

/// Every tile of one block: rows `0..<mc` of packed A panels (`kc` deep, one after another) against columns `0..<nc` of
/// packed B panels, into `C` (leading dimension `ldc`); columns outer, rows inner (each B panel stays in L1 across the
/// rows). The epilogue is relative to the block's first element. Arguments: `kc, a, mc, b, nc, c, ldc, loadC,
/// epilogue, tile`.
typealias GEMMBlockFunction = (Int, UnsafePointer<Float>, Int, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>,
                               Int, Bool, GEMMEpilogue?, UnsafeMutablePointer<Float>) -> Void

/// A block function for a `B` not yet packed: as ``GEMMBlockFunction``, but reading columns `0..<nc` of the row-major
/// `B` (`bSource`, leading dimension `ldb`) and leaving its packed panels in `packedB` as the first row tile of each
/// panel goes. Arguments: `kc, a, mc, bSource, ldb, nc, packedB, c, ldc, loadC, epilogue, tile`.
typealias GEMMPackingBlockFunction = (Int, UnsafePointer<Float>, Int, UnsafePointer<Float>, Int, Int,
                                      UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Bool, GEMMEpilogue?,
                                      UnsafeMutablePointer<Float>) -> Void

/// The GEMM micro-kernels, named as `LADON_GEMM_KERNEL` and ``Kernels/gemmKernelName`` spell them.
enum GEMMKernel: String, CaseIterable, Sendable {
    /// `SIMD16<Float>` Swift, 24 accumulators; fast only in a `LADON_FMA` build on an AVX-512 CPU.
    case swift12x32 = "swift-12x32"
    /// `SIMD16<Float>` Swift, 6 accumulators; fused only in a `LADON_FMA` build.
    case swift6x16 = "swift-6x16"
    #if arch(x86_64) && (os(Linux) || os(macOS))
    /// C with AVX-512F intrinsics (24 zmm accumulators), any build.
    case avx512 = "avx512-12x32"
    /// C with AVX2 + FMA intrinsics (12 ymm accumulators), any build.
    case avx2 = "avx2-6x16"
    #endif

    /// 12×32 tiles rather than 6×16.
    var isWide: Bool {
        switch self {
        case .swift12x32: true
        case .swift6x16: false
        #if arch(x86_64) && (os(Linux) || os(macOS))
        case .avx512: true
        case .avx2: false
        #endif
        }
    }

    /// Whether this CPU can run the kernel.
    var isSupported: Bool {
        switch self {
        case .swift12x32, .swift6x16: true
        #if arch(x86_64) && (os(Linux) || os(macOS))
        case .avx512: CPUFeatures.avx512
        case .avx2: CPUFeatures.avx2FMA
        #endif
        }
    }

    var function: GEMMMicroKernelFunction {
        switch self {
        case .swift12x32: Kernels.gemmMicroKernel12x32
        case .swift6x16: Kernels.gemmMicroKernel6x16
        #if arch(x86_64) && (os(Linux) || os(macOS))
        case .avx512: Kernels.gemmMicroKernel12x32AVX512
        case .avx2: Kernels.gemmMicroKernel6x16AVX2
        #endif
        }
    }

    /// The block loop of ``function``: in C for the C kernels (one call from Swift per block instead of one per tile;
    /// 2 % of the body's time went to those calls on Zen 3), in Swift around the Swift kernels.
    var blockFunction: GEMMBlockFunction {
        switch self {
        #if arch(x86_64) && (os(Linux) || os(macOS))
        case .avx512: Kernels.gemmBlock12x32AVX512
        case .avx2: Kernels.gemmBlock6x16AVX2
        #endif
        default:
            { [function = self.function, mr = isWide ? 12 : 6, nr = isWide ? 32 : 16]
                kc, a, mc, b, nc, c, ldc, loadC, epilogue, tile in
                var jr = 0
                while jr < nc {
                    var ir = 0
                    while ir < mc {
                        function(kc, a + ir * kc, b + jr * kc, c + ir * ldc + jr, ldc, min(mr, mc - ir), min(nr, nc - jr),
                                 loadC, epilogue?.offset(row: ir, column: jr), tile)
                        ir += mr
                    }
                    jr += nr
                }
            }
        }
    }

    /// The block loop that packs a plain (not transposed, not im2col) `B` inside its first row tiles, where there is
    /// one: the C AVX-512 kernel's. On the layer2 shapes with 128 output channels the separate packing pass cost
    /// 6–11 % of the GEMM (a C harness, docs/performance.md, eighteenth session).
    var packingBlockFunction: GEMMPackingBlockFunction? {
        switch self {
        #if arch(x86_64) && (os(Linux) || os(macOS))
        case .avx512: Kernels.gemmBlock12x32PackingBAVX512
        #endif
        default: nil
        }
    }

    /// The fastest kernel for this CPU. On x86-64 the C kernels, in every build (a `LADON_FMA` build too: they are
    /// bit-identical to its Swift ones and prefetch their `C` tile, which Swift cannot express; whole model on
    /// Zen 3, 2 of 3 interleaved runs: 0.90–0.92× the time of `swift-6x16`): AVX-512, else AVX2 + FMA. Elsewhere
    /// (and on x86-64 without AVX2) the Swift 6×16 kernel.
    static var detected: GEMMKernel {
        #if arch(x86_64) && (os(Linux) || os(macOS))
        if CPUFeatures.avx512 { return .avx512 }
        if CPUFeatures.avx2FMA { return .avx2 }
        #endif
        return .swift6x16
    }

    /// The kernel this process runs: `LADON_GEMM_KERNEL` when it names a kernel this CPU supports,
    /// otherwise ``detected``. Read once, at the first GEMM.
    static let selected = choose(forced: ProcessInfo.processInfo.environment["LADON_GEMM_KERNEL"])

    /// The kernel named `forced` when this CPU supports it, otherwise ``detected``.
    static func choose(forced name: String?) -> GEMMKernel {
        if let name, let forced = GEMMKernel(rawValue: name), forced.isSupported { return forced }
        return detected
    }
}

/// Vector extensions of this CPU (and enabled by its OS), from CPUID; `false` off x86-64.
enum CPUFeatures {
    #if arch(x86_64) && (os(Linux) || os(macOS))
    static let avx512 = cladon_cpu_has_avx512f()
    static let avx2FMA = cladon_cpu_has_avx2_fma()
    /// A check build whose AVX-512 code runs emulated on AVX2 + FMA (`Scripts/check/emulated-avx512.sh`).
    static let avx512Emulated = cladon_avx512_is_emulated()
    #else
    static let avx512 = false
    static let avx2FMA = false
    static let avx512Emulated = false
    #endif
}

extension Kernels {
    /// The GEMM micro-kernel this process runs, e.g. `avx512-12x32` or `avx2-6x16` (C kernels for those
    /// x86-64 extensions, picked by CPUID), `swift-12x32` or `swift-6x16` (Swift `SIMD16<Float>` kernels).
    ///
    /// Set `LADON_GEMM_KERNEL` to one of these names before the first GEMM to force it; a name the CPU
    /// cannot run is ignored.
    public static var gemmKernelName: String { GEMMBlocking.preferred.kernel.rawValue }

    #if arch(x86_64) && (os(Linux) || os(macOS))
    /// ``gemmMicroKernel12x32`` in C with AVX-512F; bit-identical to it in a `LADON_FMA` build.
    static func gemmMicroKernel12x32AVX512(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                           _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ rows: Int, _ cols: Int,
                                           _ loadC: Bool, _ epilogue: GEMMEpilogue?,
                                           _ tile: UnsafeMutablePointer<Float>) {
        withCEpilogue(epilogue) { cladon_gemm_12x32_avx512(kc, a, b, c, ldc, rows, cols, loadC, $0, tile) }
    }

    /// ``gemmMicroKernel6x16`` in C with AVX2 + FMA; bit-identical to it in a `LADON_FMA` build.
    static func gemmMicroKernel6x16AVX2(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ rows: Int, _ cols: Int,
                                        _ loadC: Bool, _ epilogue: GEMMEpilogue?,
                                        _ tile: UnsafeMutablePointer<Float>) {
        withCEpilogue(epilogue) { cladon_gemm_6x16_avx2(kc, a, b, c, ldc, rows, cols, loadC, $0, tile) }
    }

    /// The block loop of ``gemmMicroKernel12x32AVX512`` in C.
    static func gemmBlock12x32AVX512(_ kc: Int, _ a: UnsafePointer<Float>, _ mc: Int, _ b: UnsafePointer<Float>, _ nc: Int,
                                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ loadC: Bool,
                                     _ epilogue: GEMMEpilogue?, _ tile: UnsafeMutablePointer<Float>) {
        withCEpilogue(epilogue) { cladon_gemm_block_12x32_avx512(kc, a, mc, b, nc, c, ldc, loadC, $0, tile) }
    }

    /// ``gemmBlock12x32AVX512`` packing `B` as it goes (``GEMMPackingBlockFunction``).
    static func gemmBlock12x32PackingBAVX512(_ kc: Int, _ a: UnsafePointer<Float>, _ mc: Int,
                                             _ bSource: UnsafePointer<Float>, _ ldb: Int, _ nc: Int,
                                             _ packedB: UnsafeMutablePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                             _ ldc: Int, _ loadC: Bool, _ epilogue: GEMMEpilogue?,
                                             _ tile: UnsafeMutablePointer<Float>) {
        withCEpilogue(epilogue) {
            cladon_gemm_block_12x32_packing_b_avx512(kc, a, mc, bSource, ldb, nc, packedB, c, ldc, loadC, $0, tile)
        }
    }

    /// The block loop of ``gemmMicroKernel6x16AVX2`` in C.
    static func gemmBlock6x16AVX2(_ kc: Int, _ a: UnsafePointer<Float>, _ mc: Int, _ b: UnsafePointer<Float>, _ nc: Int,
                                  _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ loadC: Bool,
                                  _ epilogue: GEMMEpilogue?, _ tile: UnsafeMutablePointer<Float>) {
        withCEpilogue(epilogue) { cladon_gemm_block_6x16_avx2(kc, a, mc, b, nc, c, ldc, loadC, $0, tile) }
    }

    /// Calls `body` with `epilogue` as the C kernels take it (`nil` for none).
    @inline(__always)
    static func withCEpilogue(_ epilogue: GEMMEpilogue?, _ body: (UnsafePointer<CLadonEpilogue>?) -> Void) {
        guard let e = epilogue else { return body(nil) }
        var ce = CLadonEpilogue(bias: e.bias, residual: e.residual, ldr: e.ldr, relu: e.relu, gdn: 0)
        body(&ce)
    }
    #endif
}
