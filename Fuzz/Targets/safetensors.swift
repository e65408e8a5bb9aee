// Fuzz target: SafeTensorsFile(data:) (header JSON, shapes, offsets) and reading every tensor, copied and in place.
import Foundation
import LadonCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let file = try? SafeTensorsFile(data: Data(bytes: data, count: size), source: "fuzz") else { return 0 }
    for name in file.names {
        guard let entry = try? file.entry(name) else { continue }
        switch entry.dtype {
        case .f16, .bf16, .f32, .f64:
            if let t = try? file.tensor(name) { precondition(t.count == entry.elementCount) }
            // The copy-free read the convolution loader uses: every value read where it lies (or converted).
            if entry.elementCount > 0, let sum = try? file.withFloats(name, shape: entry.shape, { values in
                precondition(values.count == entry.elementCount)
                return values.reduce(Float(0), +)
            }) { _ = sum }
        default:
            if let v = try? file.integers(name) { precondition(v.count == entry.elementCount) }
        }
        _ = try? file.rawBytes(name)
    }
    _ = try? LadonWeightsFormat.config(of: file)
    return 0
}
