// Fuzz target: the restricted pickle machine, with torch's storage persistent ids resolved to fake storages.
import LadonCheckpoint
import LadonCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let value = try? PickleMachine.load(bytes, source: "fuzz") { pid throws(LadonError) in
        guard let parts = pid.elements, parts.count >= 5, case .global(let m, let n) = parts[1],
              let dtype = TorchDType(global: m, name: n), let count = parts[4].intValue, (0...(1 << 20)).contains(count) else {
            throw .checkpoint(file: "fuzz", .malformedPersistentID(detail: "not a fuzz storage id"))
        }
        return .storage(TorchStorageRef(key: parts[2].stringValue ?? "0", dtype: dtype, elementCount: count,
                                        location: parts[3].stringValue ?? ""))
    }
    if let value {
        _ = value.kindName
        _ = value["model"]?.dictItems?.count
    }
    return 0
}
