// A bounds-checked reader of the zip container `torch.save` writes (stored entries, zip64 records).
import Foundation
import LadonCore

/// One file inside a ``ZipArchive``.
package struct ZipEntry: Sendable, Equatable {
    /// The entry's path inside the archive (e.g. `archive/data/0`).
    package let name: String
    /// 0 = stored, 8 = deflate, others are unsupported.
    package let method: UInt16
    /// CRC-32 recorded in the central directory.
    package let crc32: UInt32
    package let compressedSize: Int
    package let uncompressedSize: Int
    /// Byte range of the entry's (stored) data inside the archive.
    package let dataRange: Range<Int>
}

/// A read-only zip archive over an in-memory or memory-mapped byte image.
///
/// Every offset and size read from the file is checked against the file's extent before use, so a damaged or
/// hostile archive gives a `LadonError.checkpoint` error, never an out-of-bounds read. Only STORED entries can
/// be read (that is all `torch.save` writes); a DEFLATE entry gives a clear error. Like CPython's `zipfile`,
/// entries whose local header and data overlap another entry's (a "zip bomb" that makes thousands of entries
/// share one data range, so reading or checksumming them all costs far more than the file's size) and entries
/// whose local header names another file are refused: reading every entry touches each byte at most once.
package final class ZipArchive: @unchecked Sendable {
    /// Most entries accepted (a Ladon checkpoint has a few hundred).
    package static let maxEntries = 1_000_000

    /// A label for messages (usually the file path).
    package let source: String
    /// Entries in central-directory order.
    package let entries: [ZipEntry]
    private let index: [String: Int]
    private let data: Data

    /// Memory-maps the archive at `path`.
    package convenience init(path: String) throws(LadonError) {
        let data: Data
        do {
            data = try UntrustedFile.read(path, maxBytes: UntrustedFile.maxMappedBytes, allowStreams: false)
        } catch {
            throw .checkpoint(file: path, .unreadable(reason: error.reason))
        }
        try self.init(data: data, source: path)
    }

    /// Parses the central directory of an archive image.
    package init(data: Data, source: String = "<memory>") throws(LadonError) {
        self.source = source
        self.data = data
        let parsed = try withRawBytes(data) { (raw: UnsafeRawBufferPointer) throws(LadonError) -> [ZipEntry] in
            try ZipParser(bytes: raw, source: source).parse()
        }
        var index: [String: Int] = [:]
        for (i, e) in parsed.enumerated() {
            guard index[e.name] == nil else { throw .checkpoint(file: source, .duplicateZipEntry(e.name)) }
            index[e.name] = i
        }
        self.entries = parsed
        self.index = index
    }

    /// Whether the archive holds an entry with this exact name.
    package func contains(_ name: String) -> Bool { index[name] != nil }

    /// The entry called `name`, or an error naming it.
    package func entry(_ name: String) throws(LadonError) -> ZipEntry {
        guard let i = index[name] else { throw .checkpoint(file: source, .missingZipEntry(name)) }
        return entries[i]
    }

    /// Calls `body` with the stored bytes of `entry`; optionally checks the CRC-32 first.
    package func withBytes<R>(of entry: ZipEntry, verifyCRC: Bool = false,
                             _ body: (UnsafeRawBufferPointer) throws(LadonError) -> R) throws(LadonError) -> R {
        guard entry.method == 0 else {
            throw .checkpoint(file: source, .compressedZipEntry(entry.name, method: UInt16(truncatingIfNeeded: entry.method)))
        }
        return try withRawBytes(data) { (all: UnsafeRawBufferPointer) throws(LadonError) -> R in
            let bytes = UnsafeRawBufferPointer(rebasing: all[entry.dataRange])
            if verifyCRC {
                let actual = CRC32.checksum(bytes)
                guard actual == entry.crc32 else {
                    throw .checkpoint(file: source, .checksumMismatch(entry: entry.name, stored: entry.crc32, computed: actual))
                }
            }
            return try body(bytes)
        }
    }

    /// A copy of the stored bytes of the entry called `name`.
    package func bytes(_ name: String, verifyCRC: Bool = true) throws(LadonError) -> [UInt8] {
        try withBytes(of: entry(name), verifyCRC: verifyCRC) { (b: UnsafeRawBufferPointer) throws(LadonError) -> [UInt8] in [UInt8](b) }
    }
}

/// `Data.withUnsafeBytes` with a typed error.
func withRawBytes<R>(_ data: Data, _ body: (UnsafeRawBufferPointer) throws(LadonError) -> R) throws(LadonError) -> R {
    let result: Result<R, LadonError> = data.withUnsafeBytes { raw in
        Result { () throws(LadonError) -> R in try body(raw) }
    }
    return try result.get()
}

/// The central-directory walk, over raw bytes.
private struct ZipParser {
    let bytes: UnsafeRawBufferPointer
    let source: String

    func fail(_ message: String) -> LadonError { .checkpoint(file: source, .damagedZip(detail: message)) }

    func u16(_ at: Int) throws(LadonError) -> Int {
        guard at >= 0, at <= bytes.count - 2 else { throw fail("read past the end at offset \(at)") }
        return Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
    }

    func u32(_ at: Int) throws(LadonError) -> UInt32 {
        guard at >= 0, at <= bytes.count - 4 else { throw fail("read past the end at offset \(at)") }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }

    func u64(_ at: Int) throws(LadonError) -> Int {
        guard at >= 0, at <= bytes.count - 8 else { throw fail("read past the end at offset \(at)") }
        let v = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self))
        guard v <= UInt64(Int.max) else { throw fail("64-bit field \(v) at offset \(at) is out of range") }
        return Int(v)
    }

    /// Finds the end-of-central-directory record: the last signature whose comment length reaches the end.
    func findEndRecord() throws(LadonError) -> Int {
        guard bytes.count >= 22 else { throw fail("\(bytes.count) bytes is too short for a zip end record") }
        let lowest = max(0, bytes.count - 22 - 0xFFFF)
        var p = bytes.count - 22
        while p >= lowest {
            if try u32(p) == 0x0605_4b50, try p + 22 + u16(p + 20) == bytes.count { return p }
            p -= 1
        }
        // Accept a record followed by trailing bytes only if nothing better exists.
        p = bytes.count - 22
        while p >= lowest {
            if try u32(p) == 0x0605_4b50 { return p }
            p -= 1
        }
        throw fail("no end-of-central-directory record (the file is truncated or not a zip/torch.save file)")
    }

    func parse() throws(LadonError) -> [ZipEntry] {
        let end = try findEndRecord()
        guard try u16(end + 4) == 0, try u16(end + 6) == 0 else { throw fail("multi-disk archives are not supported") }
        var count = try u16(end + 10)
        var directorySize = Int(try u32(end + 12))
        var directoryOffset = Int(try u32(end + 16))
        // zip64: a locator sits 20 bytes before the end record and points at the zip64 end record.
        if end >= 20, try u32(end - 20) == 0x0706_4b50 {
            let record = try u64(end - 12)
            guard record < end - 20, try u32(record) == 0x0606_4b50 else {
                throw fail("zip64 locator points at offset \(record), which holds no zip64 end record")
            }
            count = try u64(record + 32)
            directorySize = try u64(record + 40)
            directoryOffset = try u64(record + 48)
        } else if count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            throw fail("the end record needs zip64 values but there is no zip64 locator")
        }
        guard count <= ZipArchive.maxEntries else { throw fail("\(count) entries declared, more than the \(ZipArchive.maxEntries) allowed") }
        guard directoryOffset <= bytes.count, directorySize <= bytes.count - directoryOffset,
              directoryOffset + directorySize <= end else {
            throw fail("central directory (offset \(directoryOffset), \(directorySize) bytes) lies outside the file")
        }
        // Each central record is at least 46 bytes: refuse a count the directory cannot hold before reserving for it.
        guard count <= directorySize / 46 else {
            throw fail("\(count) entries declared, but the \(directorySize)-byte central directory holds at most \(directorySize / 46)")
        }
        var entries: [ZipEntry] = []
        entries.reserveCapacity(count)
        var localStarts: [Int] = []
        localStarts.reserveCapacity(count)
        var p = directoryOffset
        let directoryEnd = directoryOffset + directorySize
        for i in 0..<count {
            guard p + 46 <= directoryEnd, try u32(p) == 0x0201_4b50 else {
                throw fail("central directory entry \(i) at offset \(p) has no valid signature")
            }
            let flags = try u16(p + 8)
            let method = UInt16(try u16(p + 10))
            let crc = try u32(p + 16)
            var compressed = Int(try u32(p + 20))
            var uncompressed = Int(try u32(p + 24))
            let nameLength = try u16(p + 28), extraLength = try u16(p + 30), commentLength = try u16(p + 32)
            var localOffset = Int(try u32(p + 42))
            let nameStart = p + 46
            let next = nameStart + nameLength + extraLength + commentLength
            guard next <= directoryEnd else { throw fail("central directory entry \(i) runs past the directory") }
            guard let name = String(bytes: UnsafeRawBufferPointer(rebasing: bytes[nameStart..<(nameStart + nameLength)]), encoding: .utf8) else {
                throw fail("central directory entry \(i) has a name that is not UTF-8")
            }
            guard flags & 1 == 0 else { throw .checkpoint(file: source, .encryptedZipEntry(name)) }
            // zip64 extended information: only the fields saturated in the fixed header, in this order.
            var e = nameStart + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let tag = try u16(e), size = try u16(e + 2)
                guard e + 4 + size <= extraEnd else { throw fail("entry '\(name)' has a malformed extra field") }
                if tag == 0x0001 {
                    var q = e + 4
                    func take() throws(LadonError) -> Int {
                        guard q + 8 <= e + 4 + size else { throw fail("entry '\(name)' has a short zip64 extra field") }
                        defer { q += 8 }
                        return try u64(q)
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try take() }
                    if compressed == 0xFFFF_FFFF { compressed = try take() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try take() }
                }
                e += 4 + size
            }
            guard uncompressed != 0xFFFF_FFFF, compressed != 0xFFFF_FFFF, localOffset != 0xFFFF_FFFF else {
                throw fail("entry '\(name)' needs zip64 sizes but has no zip64 extra field")
            }
            // The local header repeats the name and has its own extra field (torch pads it for alignment).
            guard localOffset <= directoryOffset - 30, try u32(localOffset) == 0x0403_4b50 else {
                throw fail("entry '\(name)' points at offset \(localOffset), which holds no local file header")
            }
            let localNameLength = try u16(localOffset + 26)
            let dataStart = localOffset + 30 + localNameLength + (try u16(localOffset + 28))
            // The local header must name the same file (CPython: "File name in directory ... and header ... differ").
            guard localNameLength == nameLength, localOffset + 30 + nameLength <= directoryOffset,
                  memcmp(bytes.baseAddress! + localOffset + 30, bytes.baseAddress! + nameStart, nameLength) == 0 else {
                throw fail("entry '\(name)': the local header at offset \(localOffset) names another file")
            }
            guard dataStart <= directoryOffset, compressed <= directoryOffset - dataStart else {
                throw fail("entry '\(name)' data (offset \(dataStart), \(compressed) bytes) runs past the file's data area")
            }
            if method == 0, compressed != uncompressed {
                throw fail("stored entry '\(name)' has compressed size \(compressed) != uncompressed size \(uncompressed)")
            }
            entries.append(ZipEntry(name: name, method: method, crc32: crc, compressedSize: compressed,
                                    uncompressedSize: uncompressed, dataRange: dataStart..<(dataStart + compressed)))
            localStarts.append(localOffset)
            p = next
        }
        // No two entries may share bytes: sorted by local header offset, each entry's data ends at or before the
        // next entry's local header (CPython's zipfile: "Overlapped entries").
        let order = entries.indices.sorted { localStarts[$0] < localStarts[$1] }
        for (a, b) in zip(order, order.dropFirst()) where entries[a].dataRange.upperBound > localStarts[b] {
            throw fail("entries '\(entries[a].name)' and '\(entries[b].name)' overlap (a zip bomb or a damaged file)")
        }
        return entries
    }
}
