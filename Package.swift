// swift-tools-version: 6.1
// Ladon for Swift: split-computing inference (encoder on the device, decoder + heads on the server).
import PackageDescription

// CPU tuning, root builds only.
//
// The hot kernels are written with `SIMD16<Float>` and fused multiply-add. Without a CPU target, swiftc
// compiles for baseline x86-64 and every lane of `addingProduct` becomes an `fmaf` libcall (30x slower).
// `unsafeFlags` would fix that but SwiftPM refuses to build a package *consumed by version* that carries them.
// So the flags are added only when this manifest is evaluated as the root package (its directory is not a
// SwiftPM/Xcode dependency checkout) and `LADON_PORTABLE` is not set. Dependents get a clean manifest: on
// x86-64 their GEMM runs the CLadonKernels micro-kernels chosen by CPUID (AVX-512 or AVX2 + FMA), their im2col
// packing its AVX-512 / AVX2 builds, and the other kernels the portable code path (`acc + a * b`, which vectorises
// without FMA); see docs/performance.md.
let isDependencyCheckout = Context.packageDirectory.contains("/checkouts/")
    || Context.packageDirectory.contains("/SourcePackages/")
let tuneForHost = !isDependencyCheckout && Context.environment["LADON_PORTABLE"] == nil
let kernelSettings: [SwiftSetting] = tuneForHost
    ? [.unsafeFlags(["-target-cpu", "native"]), .define("LADON_FMA")]
    : []

let package = Package(
    name: "ladon-swift",
    // The device side (LadonCore, EdgeSplit) builds for iOS; the service and the CLI are for servers and desktops.
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .library(name: "LadonCore", targets: ["LadonCore"]),
        .library(name: "LadonCheckpoint", targets: ["LadonCheckpoint"]),
        .library(name: "LadonImage", targets: ["LadonImage"]),
        .library(name: "EdgeSplit", targets: ["EdgeSplit"]),
        .library(name: "EdgeService", targets: ["EdgeService"]),
        .library(name: "LadonEval", targets: ["LadonEval"]),
        .executable(name: "ladon", targets: ["ladon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        // `swift package generate-documentation --target LadonCore` (DocC catalog in Sources/LadonCore/LadonCore.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Tensors, kernels, layers, the Ladon model and its two halves, the entropy coder, weight files, the
        // result schema. Pure Swift, no dependencies: this is what a device links.
        .target(name: "LadonCore", dependencies: ["CLadonKernels"], swiftSettings: kernelSettings),
        // GEMM micro-kernels for x86-64 CPU features (AVX-512, AVX2 + FMA), picked at run time: per-function
        // `target` attributes, no flags, so dependents get them too. Empty on other architectures.
        .target(name: "CLadonKernels"),
        // Reading PyTorch checkpoints (zip, restricted pickle, torch tensors) and converting them to weights files.
        // Its own target so that a device build carries no pickle machine.
        .target(name: "LadonCheckpoint", dependencies: ["LadonCore"]),
        // JPEG/PNG decoding and PNG encoding over the system libjpeg-turbo and libpng.
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"]), .brew(["jpeg-turbo"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng16",
                       providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        // libjpeg's own API (libjpeg62-turbo-dev), with its longjmp errors made return codes, for the JPEGs whose
        // chroma subsampling TurboJPEG 2.1 cannot name (4:1:0 and rarer).
        // (CTurboJPEG only for its pkg-config paths: jpeglib.h and libjpeg sit beside TurboJPEG, e.g. under Homebrew.)
        .target(name: "CLadonJPEG", dependencies: ["CTurboJPEG"], linkerSettings: [.linkedLibrary("jpeg")]),
        .target(name: "LadonImage", dependencies: ["LadonCore", "CTurboJPEG", "CPNG", "CLadonJPEG"]),
        // The packet format between the halves and the HTTP client a device uses (Foundation's URLSession only).
        .target(name: "EdgeSplit", dependencies: ["LadonCore"]),
        // The edge service: the server half behind HTTP (Hummingbird), with admission control, logs and metrics.
        .target(name: "EdgeService", dependencies: [
            "LadonCore", "LadonImage", "EdgeSplit",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        // The SC2 benchmark: datasets (ImageFolder, COCO, VOC), metrics equal to the Python stack (top-k,
        // pycocotools' COCOeval, torchvision's confusion matrix), data/encoder size, rate–accuracy reports and
        // the latency-against-bandwidth model.
        .target(name: "LadonEval", dependencies: ["LadonCore", "LadonImage"]),
        // The command-line tool: parses, calls the libraries, formats.
        .executableTarget(name: "ladon", dependencies: [
            "LadonCore", "LadonCheckpoint", "LadonImage", "EdgeSplit", "EdgeService", "LadonEval",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "LadonCoreTests", dependencies: ["LadonCore", "LadonTestSupport", "CLadonTestAllocator"],
                    resources: [.copy("Fixtures")], swiftSettings: kernelSettings),
        .testTarget(name: "LadonCheckpointTests", dependencies: ["LadonCheckpoint", "LadonCore", "LadonTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LadonImageTests", dependencies: ["LadonImage", "LadonCore", "LadonTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "EdgeSplitTests", dependencies: ["EdgeSplit", "LadonCore", "LadonTestSupport"]),
        .testTarget(name: "EdgeServiceTests", dependencies: ["EdgeService", "EdgeSplit", "LadonCore", "LadonTestSupport"]),
        .testTarget(name: "LadonEvalTests", dependencies: ["LadonEval", "LadonCore", "LadonImage", "LadonTestSupport"],
                    resources: [.copy("Fixtures")]),
        // Runs the built `ladon` executable end to end.
        .testTarget(name: "LadonCLITests", dependencies: ["ladon", "LadonCore", "LadonTestSupport"]),
        // Fixtures and scratch files shared by the test targets (not a product).
        .target(name: "LadonTestSupport", dependencies: ["LadonCore", "CLadonTestAllocator"], path: "Tests/LadonTestSupport"),
        // Sets `ladon`'s malloc settings as the test process starts, before the runner's threads (benchmarks).
        .target(name: "CLadonTestAllocator", dependencies: ["CLadonKernels"], path: "Tests/CLadonTestAllocator"),
    ],
    swiftLanguageModes: [.v6]
)
