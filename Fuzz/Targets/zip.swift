// Fuzz target: ZipArchive(data:) (end record, zip64, central directory, local headers) and reading every entry.
import Foundation
import LadonCheckpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let zip = try? ZipArchive(data: Data(bytes: data, count: size), source: "fuzz") else { return 0 }
    var total = 0
    for entry in zip.entries {
        if let bytes = try? zip.bytes(entry.name, verifyCRC: true) { total += bytes.count }
    }
    // Entries never share bytes, so reading them all touches each byte at most once.
    precondition(total <= size, "zip entries overlap: \(total) bytes read from \(size)")
    return 0
}
