// Fuzz target: TorchCheckpoint(data:) (zip + pickle + storages, CRCs checked) and materialising every tensor.
import Foundation
import LadonCheckpoint
import LadonCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let ckpt = try? TorchCheckpoint(data: Data(bytes: data, count: size), source: "fuzz") else { return 0 }
    for name in ckpt.names {
        guard let ref = try? ckpt.tensorRef(name) else { continue }
        _ = ref.isContiguous
        if ref.dtype.isFloatingPoint {
            if let t = try? ckpt.floatTensor(name) { precondition(t.count == ref.elementCount) }
        } else {
            _ = try? ckpt.int64Values(name)
            _ = try? ckpt.int32Values(name)
        }
    }
    return 0
}
