// The device → server message: one image's entropy-coded latent plus what the server needs to decode it.
import Foundation
import LadonCore

/// What the device sends to the server for one image (docs/wire-format.md): the wire form of an
/// ``LadonCore/EncodedImage``.
///
/// The payload is CompressAI's exact byte string; the header adds what CompressAI leaves out of band:
/// the latent shape, the image geometry (for box rescaling and masks) and the model fingerprint, so a
/// server refuses a packet made by a different model instead of decoding garbage.
public struct LatentPacket: Sendable, Equatable {
    /// `LDNP`.
    public static let magic: [UInt8] = Array("LDNP".utf8)
    public static let version: UInt8 = 1
    /// Fixed header size in bytes (see docs/wire-format.md).
    public static let headerSize = 4 + 1 + 3 + 16 + 6 * 4 + 3 * 4 + 4 + 4
    /// Largest payload accepted. A 416×416 latent codes to well under 1 MB (254,616 symbols at a few bits each);
    /// 16 MiB bounds hostile input without refusing any real packet.
    public static let maxPayload = 16 << 20
    /// Largest whole packet (header + largest payload + CRC).
    public static var maxSize: Int { headerSize + maxPayload }

    /// First 16 bytes of the model fingerprint (sha256 of the weights), or zeros when unknown.
    public var modelID: [UInt8]
    public var originalHeight: Int, originalWidth: Int
    public var resizedHeight: Int, resizedWidth: Int
    public var paddedHeight: Int, paddedWidth: Int
    public var latentChannels: Int, latentHeight: Int, latentWidth: Int
    /// The entropy-coded latent.
    public var payload: [UInt8]

    public init(modelID: [UInt8], originalHeight: Int, originalWidth: Int, resizedHeight: Int, resizedWidth: Int,
                paddedHeight: Int, paddedWidth: Int, latentChannels: Int, latentHeight: Int, latentWidth: Int,
                payload: [UInt8]) {
        precondition(modelID.count == 16, "modelID must be 16 bytes")
        self.modelID = modelID
        self.originalHeight = originalHeight; self.originalWidth = originalWidth
        self.resizedHeight = resizedHeight; self.resizedWidth = resizedWidth
        self.paddedHeight = paddedHeight; self.paddedWidth = paddedWidth
        self.latentChannels = latentChannels; self.latentHeight = latentHeight; self.latentWidth = latentWidth
        self.payload = payload
    }

    /// The wire form of a device half's output.
    public init(_ e: EncodedImage) {
        self.init(modelID: e.modelID, originalHeight: e.geometry.originalHeight, originalWidth: e.geometry.originalWidth,
                  resizedHeight: e.geometry.resizedHeight, resizedWidth: e.geometry.resizedWidth,
                  paddedHeight: e.geometry.paddedHeight, paddedWidth: e.geometry.paddedWidth,
                  latentChannels: e.latentChannels, latentHeight: e.latentHeight, latentWidth: e.latentWidth,
                  payload: e.bytes)
    }

    /// What the server half runs on (``ServerHalf/run(_:)`` checks it against the model).
    public var encodedImage: EncodedImage {
        EncodedImage(modelID: modelID,
                     geometry: ImageGeometry(originalHeight: originalHeight, originalWidth: originalWidth,
                                             resizedHeight: resizedHeight, resizedWidth: resizedWidth,
                                             paddedHeight: paddedHeight, paddedWidth: paddedWidth),
                     latentChannels: latentChannels, latentHeight: latentHeight, latentWidth: latentWidth,
                     bytes: payload)
    }

    /// Reads a packet file, reading at most ``maxSize`` + 1 bytes (so `/dev/zero` or a huge file is refused at
    /// once instead of being read whole).
    public init(contentsOf path: String) throws(PacketError) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw .unreadable(path) }
        defer { try? handle.close() }
        let data: Data?
        do { data = try handle.read(upToCount: Self.maxSize + 1) } catch { throw .unreadable(path) }
        let bytes = [UInt8](data ?? Data())
        guard bytes.count <= Self.maxSize else {
            throw .invalidField("\(path) is larger than the largest packet (\(Self.maxSize) bytes)")
        }
        try self.init(bytes: bytes)
    }

    /// Serialises the packet (little-endian integers, CRC-32 over everything before it).
    public func serialized() -> [UInt8] {
        var out = Self.magic
        out.append(Self.version)
        out.append(contentsOf: [0, 0, 0])
        out.append(contentsOf: modelID)
        for v in [originalHeight, originalWidth, resizedHeight, resizedWidth, paddedHeight, paddedWidth,
                  latentChannels, latentHeight, latentWidth, payload.count] {
            out.append(contentsOf: withUnsafeBytes(of: UInt32(v).littleEndian, Array.init))
        }
        out.append(contentsOf: payload)
        out.append(contentsOf: withUnsafeBytes(of: CRC32.checksum(out).littleEndian, Array.init))
        return out
    }

    /// Parses and validates a packet; every field is checked before use.
    public init(bytes: [UInt8]) throws(PacketError) {
        guard bytes.count >= Self.headerSize else { throw .truncated(expected: Self.headerSize, actual: bytes.count) }
        guard Array(bytes[0..<4]) == Self.magic else { throw .notAPacket }
        guard bytes[4] == Self.version else { throw .unsupportedVersion(bytes[4]) }
        func u32(_ at: Int) -> Int {
            Int(UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24)
        }
        let fields = (0..<10).map { u32(24 + 4 * $0) }
        let payloadLength = fields[9]
        guard payloadLength <= Self.maxPayload else { throw .invalidField("payload length \(payloadLength) exceeds \(Self.maxPayload)") }
        let total = Self.headerSize + payloadLength
        guard bytes.count >= total else { throw .truncated(expected: total, actual: bytes.count) }
        guard bytes.count == total else { throw .invalidField("\(bytes.count - total) trailing bytes after the packet") }
        let stored = UInt32(u32(total - 4))
        guard CRC32.checksum(Array(bytes[0..<(total - 4)])) == stored else { throw .checksumMismatch }
        let sizes = Array(fields[0..<9])
        guard sizes.allSatisfy({ $0 <= 1 << 16 }) else { throw .invalidField("image or latent size out of range: \(sizes)") }
        guard sizes[6] > 0 else { throw .invalidField("latent has no channels") }
        self.init(modelID: Array(bytes[8..<24]), originalHeight: sizes[0], originalWidth: sizes[1],
                  resizedHeight: sizes[2], resizedWidth: sizes[3], paddedHeight: sizes[4], paddedWidth: sizes[5],
                  latentChannels: sizes[6], latentHeight: sizes[7], latentWidth: sizes[8],
                  payload: Array(bytes[(Self.headerSize - 4)..<(total - 4)]))
    }
}

/// Why a packet was refused.
public enum PacketError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(expected: Int, actual: Int)
    case notAPacket
    case unsupportedVersion(UInt8)
    case invalidField(String)
    case checksumMismatch
    case unreadable(String)

    public var description: String {
        switch self {
        case .truncated(let e, let a): return "packet truncated: \(a) bytes, need \(e)"
        case .notAPacket: return "not a Ladon latent packet (bad magic); was it written by `ladon encode`?"
        case .unsupportedVersion(let v): return "packet version \(v) is not supported (this build reads version \(LatentPacket.version))"
        case .invalidField(let m): return "invalid packet: \(m)"
        case .checksumMismatch: return "packet checksum mismatch: the packet was damaged in transit"
        case .unreadable(let path): return "cannot read packet file \(path)"
        }
    }
}

