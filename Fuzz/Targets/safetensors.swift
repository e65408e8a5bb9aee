// Fuzz target: SafeTensorsFile(data:) (header JSON, shapes, offsets) and reading every tensor.
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
        default:
            if let v = try? file.integers(name) { precondition(v.count == entry.elementCount) }
        }
        _ = try? file.rawBytes(name)
    }
    _ = try? LadonWeightsFormat.config(of: file)
    return 0
}
