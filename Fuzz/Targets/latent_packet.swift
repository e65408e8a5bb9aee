// Fuzz target: EdgeSplit.LatentPacket(bytes:), the packet header parser (docs/wire-format.md).
import EdgeSplit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let packet = try? LatentPacket(bytes: bytes) {
        // Whatever parses must serialise back to the same bytes.
        precondition(packet.serialized() == bytes, "LatentPacket round trip differs")
    }
    return 0
}
