// Fuzz target: the rANS decoder with CompressAI's real tables (Tests/LadonCoreTests/Fixtures/compressai/eb_state).
// Input: byte 0 → latent height 1...64, byte 1 → width 1...64, byte 2 → 1 or 2 strings (split at byte 3),
// the rest → the strings.
import Foundation
import LadonCore

let bottleneck: EntropyBottleneck = {
    let root = ProcessInfo.processInfo.environment["LADON_FUZZ_ROOT"] ?? FileManager.default.currentDirectoryPath
    let path = root + "/Tests/LadonCoreTests/Fixtures/compressai/eb_state.safetensors"
    do {
        return try EntropyBottleneck(weights: WeightScope(file: SafeTensorsFile(path: path)))
    } catch {
        fatalError("cannot load \(path): \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 4 else { return 0 }
    let b = UnsafeBufferPointer(start: data, count: size)
    let height = 1 + Int(b[0]) % 64, width = 1 + Int(b[1]) % 64
    let rest = Array(b[4...])
    var strings = [rest]
    if b[2] & 1 == 1 {
        let cut = min(Int(b[3]) * rest.count / 255, rest.count)
        strings = [Array(rest[..<cut]), Array(rest[cut...])]
    }
    if let latent = try? bottleneck.decompress(strings, height: height, width: width) {
        precondition(latent.shape == [strings.count, bottleneck.channels, height, width])
        // Whatever decodes must re-encode without trapping (large escaped symbols lose precision as Float, so the
        // round trip is not exact in general).
        _ = try? bottleneck.compress(latent)
    }
    return 0
}
