// swift-tools-version: 6.1
// Ladon for Swift: split-computing inference (encoder on the device, decoder + heads on the server).
import PackageDescription

// CPU tuning, root builds only.
//
// The hot kernels are written with `SIMD16<Float>` and fused multiply-add. Without a CPU target, swiftc
// compiles for baseline x86-64 and every lane of `addingProduct` becomes an `fmaf` libcall (30x slower).
// `unsafeFlags` would fix that but SwiftPM refuses to build a package *consumed by version* that carries them.
// So the flags are added only when this manifest is evaluated as the root package (its directory is not a
// SwiftPM/Xcode dependency checkout) and `LADON_PORTABLE` is not set. Dependents get a clean manifest and
// the portable code path (`acc + a * b`, which vectorises without FMA); see docs/performance.md.
let isDependencyCheckout = Context.packageDirectory.contains("/checkouts/")
    || Context.packageDirectory.contains("/SourcePackages/")
let tuneForHost = !isDependencyCheckout && Context.environment["LADON_PORTABLE"] == nil
let kernelSettings: [SwiftSetting] = tuneForHost
    ? [.unsafeFlags(["-target-cpu", "native"]), .define("LADON_FMA")]
    : []

let package = Package(
    name: "ladon-swift",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "LadonCore", targets: ["LadonCore"]),
        .library(name: "LadonImage", targets: ["LadonImage"]),
        .library(name: "EdgeSplit", targets: ["EdgeSplit"]),
        .executable(name: "ladon", targets: ["ladon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // Tensors, kernels, layers, the Ladon model, the entropy coder, weight files. Pure Swift.
        .target(name: "LadonCore", swiftSettings: kernelSettings),
        // JPEG/PNG decoding and PNG encoding over the system libjpeg-turbo and libpng.
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"]), .brew(["jpeg-turbo"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng16",
                       providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        .target(name: "LadonImage", dependencies: ["LadonCore", "CTurboJPEG", "CPNG"]),
        // Splits the model at the bottleneck into device and server halves, and carries packets between them.
        .target(name: "EdgeSplit", dependencies: [
            "LadonCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ], swiftSettings: kernelSettings),
        // The command-line tool: parses, calls the libraries, formats.
        .executableTarget(name: "ladon", dependencies: [
            "LadonCore", "LadonImage", "EdgeSplit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "LadonCoreTests", dependencies: ["LadonCore"],
                    resources: [.copy("Fixtures")], swiftSettings: kernelSettings),
        .testTarget(name: "LadonImageTests", dependencies: ["LadonImage", "LadonCore"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "EdgeSplitTests", dependencies: ["EdgeSplit", "LadonCore"]),
        // Runs the built `ladon` executable end to end.
        .testTarget(name: "LadonCLITests", dependencies: ["ladon"]),
    ],
    swiftLanguageModes: [.v6]
)
