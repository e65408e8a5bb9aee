// Reads and writes `.safetensors` files: 8-byte little-endian header length, JSON header, raw data.
import Foundation

/// Element types a safetensors file may hold that Ladon can read.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i8 = "I8", u8 = "U8", i16 = "I16", i32 = "I32", i64 = "I64", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .i8, .u8, .bool: return 1
        case .f16, .bf16, .i16: return 2
        case .f32, .i32: return 4
        case .f64, .i64: return 8
        }
    }
}

/// Where one tensor lives in a safetensors file.
public struct SafeTensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range inside the data section (after the header).
    public let dataRange: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped `.safetensors` file.
///
/// The header is validated completely on open (length, JSON, dtypes, shapes, offsets inside the file, byte
/// counts matching shapes), so later reads cannot go out of bounds. Tensors are converted to `Float` on read.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Largest header accepted (the format's own limit is 100 MB).
    public static let maxHeaderBytes = 100_000_000

    /// A label for messages (the file path, or what the caller passed).
    public let source: String
    /// The `__metadata__` string map (empty if absent).
    public let metadata: [String: String]
    /// Tensor entries by name.
    public let entries: [String: SafeTensorsEntry]
    private let data: Data
    private let dataStart: Int
    /// Whether `data` maps the file (its pages can be dropped and re-read) rather than holding bytes in memory.
    private let fileMapping: Bool

    /// Deepest JSON nesting accepted in a header (a valid header nests 3 deep).
    public static let maxHeaderDepth = 16

    /// The deepest `[`/`{` nesting of JSON text, skipping strings (a linear scan; no parsing).
    static func jsonNestingDepth(_ json: Data) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for b in json {
            if inString {
                if escaped { escaped = false } else if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
                continue
            }
            switch b {
            case 0x22: inString = true
            case 0x5B, 0x7B: depth += 1; deepest = max(deepest, depth)
            case 0x5D, 0x7D: depth -= 1
            default: break
            }
        }
        return deepest
    }

    /// Largest rank accepted (weights have at most 4 dimensions; torch's limit is 64).
    public static let maxRank = 64

    /// Memory-maps and validates the file at `path`. Only regular files are read (a FIFO or `/dev/zero` would
    /// otherwise be read until memory runs out).
    public convenience init(path: String) throws(LadonError) {
        let data: Data
        do {
            data = try UntrustedFile.read(path, maxBytes: UntrustedFile.maxMappedBytes, allowStreams: false)
        } catch {
            throw .weights(file: path, .unreadable(reason: error.reason))
        }
        try self.init(data: data, source: path, fileMapping: true)
    }

    /// Validates an in-memory safetensors image.
    public convenience init(data: Data, source: String = "<memory>") throws(LadonError) {
        try self.init(data: data, source: source, fileMapping: false)
    }

    /// `fileMapping`: `data` is a private read-only mapping of a file (``UntrustedFile/read(_:maxBytes:allowStreams:)``
    /// on a regular file), whose pages may be dropped from this process once copied (``releasePages(_:)``).
    private init(data: Data, source: String, fileMapping: Bool) throws(LadonError) {
        self.source = source
        self.data = data
        self.fileMapping = fileMapping
        guard data.count >= 8 else {
            throw .weights(file: source, .tooShort(bytes: data.count))
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
        guard headerLength >= 2, headerLength <= UInt64(Self.maxHeaderBytes),
              headerLength <= UInt64(data.count - 8) else {
            throw .weights(file: source, .invalidHeaderLength(headerLength, fileBytes: data.count))
        }
        let headerData = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + 8 + Int(headerLength)))
        // A safetensors header nests 3 deep; refuse deep nesting before a recursive JSON parser sees it.
        guard Self.jsonNestingDepth(headerData) <= Self.maxHeaderDepth else {
            throw .weights(file: source, .malformedHeader(detail: "the header's JSON is nested deeper than \(Self.maxHeaderDepth)"))
        }
        guard let object = try? JSONSerialization.jsonObject(with: headerData),
              let header = object as? [String: Any] else {
            throw .weights(file: source, .malformedHeader(detail: "the header is not a JSON object"))
        }
        dataStart = 8 + Int(headerLength)
        let dataSize = data.count - dataStart
        var meta: [String: String] = [:]
        var entries: [String: SafeTensorsEntry] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw .weights(file: source, .malformedHeader(detail: "__metadata__ is not an object"))
                }
                for (k, v) in m {
                    guard let s = v as? String else { throw .weights(file: source, .malformedMetadata(key: k, expected: "a string")) }
                    meta[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtypeName = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any],
                  let offsetsAny = info["data_offsets"] as? [Any], offsetsAny.count == 2 else {
                throw .weights(file: source, .malformedHeader(detail: "tensor '\(name)' has a malformed header entry"))
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw .weights(file: source, .unsupportedDType(tensor: name, dtype: dtypeName))
            }
            guard shapeAny.count <= Self.maxRank else {
                throw .weights(file: source, .tooManyDimensions(tensor: name, rank: shapeAny.count, limit: Self.maxRank))
            }
            var shape: [Int] = []
            var count = 1
            for d in shapeAny {
                guard let n = jsonInteger(d), n >= 0, n <= Int(Int32.max) else {
                    throw .weights(file: source, .invalidShape(tensor: name, shape: "\(shapeAny)"))
                }
                shape.append(n)
                let (product, overflow) = count.multipliedReportingOverflow(by: n)
                guard !overflow, product <= dataSize else {
                    throw .weights(file: source, .dataOutOfBounds(tensor: name, detail: "shape \(shape) is larger than the file"))
                }
                count = product
            }
            guard let begin = jsonInteger(offsetsAny[0]),
                  let end = jsonInteger(offsetsAny[1]),
                  begin >= 0, end >= begin, end <= dataSize else {
                throw .weights(file: source, .dataOutOfBounds(tensor: name, detail: "data offsets \(offsetsAny) lie outside the \(dataSize)-byte data section"))
            }
            guard end - begin == count * dtype.size else {
                throw .weights(file: source, .byteCountMismatch(tensor: name, bytes: end - begin, needed: count * dtype.size, shape: shape, dtype: dtypeName))
            }
            entries[name] = SafeTensorsEntry(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
        }
        // Tensors must not share bytes. (Gaps and trailing bytes are tolerated: the Python library refuses
        // them, but they cannot make a read go wrong, and older SafeTensorsWriter files padded tensors.)
        let ordered = entries.values.sorted { ($0.dataRange.lowerBound, $0.dataRange.upperBound, $0.name)
            < ($1.dataRange.lowerBound, $1.dataRange.upperBound, $1.name) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.dataRange.upperBound > b.dataRange.lowerBound {
            throw .weights(file: source, .overlappingTensors(a.name, a.dataRange, b.name, b.dataRange))
        }
        self.metadata = meta
        self.entries = entries
    }

    /// All tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// The entry for `name`, or a `.missingTensor` error.
    public func entry(_ name: String) throws(LadonError) -> SafeTensorsEntry {
        guard let e = entries[name] else { throw .missingTensor(name: name, file: source) }
        return e
    }

    /// Reads a tensor as `Float`, converting from any floating or integer dtype.
    public func tensor(_ name: String) throws(LadonError) -> Tensor {
        let e = try entry(name)
        return Tensor(shape: e.shape, scalars: floats(e))
    }

    /// Reads a tensor and checks its shape.
    public func tensor(_ name: String, shape expected: [Int]) throws(LadonError) -> Tensor {
        let e = try entry(name)
        guard e.shape == expected else { throw .shapeMismatch(name: name, expected: expected, actual: e.shape) }
        return Tensor(shape: e.shape, scalars: floats(e))
    }

    /// Reads a matrix tensor (`shape`, rank 2) packed for the GEMM: an aligned F32 tensor is packed straight from
    /// the file's bytes, so a large layer (the box head's 51 MB) is not copied once more before packing.
    package func packedMatrix(_ name: String, shape expected: [Int]) throws(LadonError) -> PackedMatrix {
        precondition(expected.count == 2, "packedMatrix: \(name) is not a matrix")
        return try withFloats(name, shape: expected) { values in
            PackedMatrix(values.baseAddress!, rows: expected[0], columns: expected[1], lda: expected[1])
        }
    }

    /// Calls `body` with a non-empty tensor's values (row-major, `shape` checked) as `Float`: straight from the file's
    /// bytes when they are aligned little-endian F32 (then dropped from this process, as after a copy), else from a
    /// converted copy. For weights that are repacked at once (convolutions, linear layers), which need no copy of their own.
    package func withFloats<R>(_ name: String, shape expected: [Int],
                               _ body: (UnsafeBufferPointer<Float>) -> R) throws(LadonError) -> R {
        let e = try entry(name)
        guard e.shape == expected else { throw .shapeMismatch(name: name, expected: expected, actual: e.shape) }
        precondition(e.elementCount > 0, "withFloats: \(name) is empty")
        if e.dtype == .f32 && Int(littleEndian: 1) == 1 {
            let direct = withBytes(e) { raw -> R? in
                guard let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 else { return nil }
                defer { releasePages(raw) }
                return body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: e.elementCount))
            }
            if let result = direct ?? nil { return result }
        }
        return floats(e).withUnsafeBufferPointer(body)
    }

    /// Reads an integer tensor (I8…I64, U8, BOOL) as `Int`. Floating tensors are an error.
    public func integers(_ name: String) throws(LadonError) -> [Int] {
        let e = try entry(name)
        switch e.dtype {
        case .f16, .bf16, .f32, .f64:
            throw .weights(file: source, .notIntegerTensor(tensor: name, dtype: e.dtype.rawValue))
        default: break
        }
        let n = e.elementCount
        return withBytes(e) { raw in
            switch e.dtype {
            case .i8: return (0..<n).map { Int(raw.load(fromByteOffset: $0, as: Int8.self)) }
            case .u8, .bool: return (0..<n).map { Int(raw.load(fromByteOffset: $0, as: UInt8.self)) }
            case .i16: return (0..<n).map { Int(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
            case .i32: return (0..<n).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            case .i64: return (0..<n).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
            case .f16, .bf16, .f32, .f64: return []
            }
        } ?? []
    }

    /// Reads an integer tensor with its shape. Floating tensors are an error.
    public func integerTensor(_ name: String) throws(LadonError) -> (shape: [Int], values: [Int]) {
        let values = try integers(name)
        return (try entry(name).shape, values)
    }

    /// The raw little-endian bytes of a tensor.
    public func rawBytes(_ name: String) throws(LadonError) -> [UInt8] {
        let e = try entry(name)
        return withBytes(e) { [UInt8]($0) } ?? []
    }

    private func withBytes<R>(_ e: SafeTensorsEntry, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        data.withUnsafeBytes { all -> R? in
            let slice = UnsafeRawBufferPointer(rebasing: all[(dataStart + e.dataRange.lowerBound)..<(dataStart + e.dataRange.upperBound)])
            return body(slice)
        }
    }

    /// Drops the file pages lying wholly inside `raw` from this process once they have been copied, so a model's peak
    /// memory is its weights, not its weights plus the whole mapped file. `MADV_DONTNEED` on a private, never-written
    /// file mapping only unmaps them: they stay in the page cache (the next process that loads the model reads them
    /// from memory, not from disk; the earlier `MADV_PAGEOUT` evicted the whole file from the cache at every load), and
    /// a later read faults them back in from it. Only for a file mapping: on bytes held in memory it would zero them.
    /// Linux only; elsewhere nothing happens.
    private func releasePages(_ raw: UnsafeRawBufferPointer) {
        #if os(Linux)
        guard fileMapping, let base = raw.baseAddress, raw.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let start = (Int(bitPattern: base) + page - 1) / page * page
        let end = (Int(bitPattern: base) + raw.count) / page * page
        guard end > start, let pointer = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(pointer, end - start, Int32(MADV_DONTNEED))
        #endif
    }

    private func floats(_ e: SafeTensorsEntry) -> [Float] {
        let n = e.elementCount
        defer { _ = withBytes(e) { releasePages($0) } }
        return withBytes(e) { raw -> [Float] in
            switch e.dtype {
            case .f32:
                return [Float](unsafeUninitializedCapacity: n) { buf, count in
                    if n > 0 { memcpy(buf.baseAddress!, raw.baseAddress!, n * 4) }
                    count = n
                }
            case .f16: return (0..<n).map { Float(float16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            case .bf16: return (0..<n).map { Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
            case .f64: return (0..<n).map { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
            case .i8: return (0..<n).map { Float(raw.load(fromByteOffset: $0, as: Int8.self)) }
            case .u8, .bool: return (0..<n).map { Float(raw.load(fromByteOffset: $0, as: UInt8.self)) }
            case .i16: return (0..<n).map { Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
            case .i32: return (0..<n).map { Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            case .i64: return (0..<n).map { Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
            }
        } ?? []
    }
}

/// Reading files that readers of untrusted input open by path (weights, checkpoints, images).
package enum UntrustedFile {
    /// Why a file could not be read.
    package struct Failure: Error, Sendable { package let reason: String }

    /// Regular files are memory-mapped, so their size costs address space only: 64 GiB.
    package static let maxMappedBytes = 1 << 36

    /// Reads `path`: a regular file is memory-mapped after its size is checked against `maxBytes`; anything else
    /// (a FIFO, a character device such as `/dev/zero`) is refused, or with `allowStreams` read up to `maxBytes`
    /// and refused beyond, so no reader can be made to read forever.
    package static func read(_ path: String, maxBytes: Int, allowStreams: Bool) throws(Failure) -> Data {
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
            throw Failure(reason: error.localizedDescription)
        }
        let type = attributes[.type] as? FileAttributeType
        if type == .typeDirectory { throw Failure(reason: "it is a directory") }
        if type == .typeRegular { return try map(path, maxBytes: maxBytes) }
        guard allowStreams else { throw Failure(reason: "it is not a regular file") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure(reason: "it cannot be opened") }
        defer { try? handle.close() }
        let data: Data
        do { data = try handle.read(upToCount: maxBytes + 1) ?? Data() } catch {
            throw Failure(reason: error.localizedDescription)
        }
        guard data.count <= maxBytes else { throw Failure(reason: "it is longer than the \(maxBytes) bytes accepted") }
        return data
    }
}

extension UntrustedFile {
    /// A regular file mapped private and read-only (`mmap`), unmapped when the last copy of the `Data` goes: its size
    /// costs address space only, and ``SafeTensorsFile`` may drop its pages once copied. The size is the open file's
    /// own (`fstat`), checked against `maxBytes`.
    static func map(_ path: String, maxBytes: Int) throws(Failure) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure(reason: String(cString: strerror(errno))) }
        let size = Int(info.st_size)
        guard size <= maxBytes else { throw Failure(reason: "it is \(size) bytes, more than the \(maxBytes) accepted") }
        guard size > 0 else { return Data() }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw Failure(reason: "it cannot be mapped: \(String(cString: strerror(errno)))")
        }
        return Data(bytesNoCopy: base, count: size, deallocator: .custom { pointer, count in _ = munmap(pointer, count) })
    }
}

/// A JSON integer as `Int`, or `nil` for booleans, fractions, exponent forms and out-of-range values
/// (`NSNumber.intValue` would turn `true` into 1, `1.5` into 1 and `1e30` into garbage).
private func jsonInteger(_ value: Any) -> Int? {
    guard let number = value as? NSNumber else { return nil }
    switch String(cString: number.objCType) {
    case "s", "i", "l", "q", "S", "I", "L", "Q": return value as? Int   // `as? Int` refuses values above Int.max
    default: return nil                                                 // "c" (Bool), "f", "d"
    }
}

extension Float {
    /// Converts IEEE half-precision bits (portable: no dependency on `Float16` availability).
    package init(float16Bits h: UInt16) {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa * 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            self = sign != 0 ? -magnitude : magnitude
        } else if exponent == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
        }
    }
}

/// Builds a `.safetensors` file in memory, laid out like the Python `safetensors` library does: the header
/// padded with spaces to a multiple of 8, then the tensors back to back (no gaps: the Python library
/// refuses files with holes), largest element size first and then by name, so every tensor is aligned to
/// its element size.
public struct SafeTensorsWriter {
    /// Name, dtype, shape and index into `payloads`, in insertion order.
    private var header: [(String, SafeTensorsDType, [Int], Int)] = []
    private var payloads: [[UInt8]] = []
    /// String metadata stored under `__metadata__`.
    public var metadata: [String: String] = [:]

    public init() {}

    /// Appends a Float32 tensor.
    public mutating func add(_ name: String, _ tensor: Tensor) {
        add(name, dtype: .f32, shape: tensor.shape, bytes: tensor.scalars.withUnsafeBytes { [UInt8]($0) })
    }

    /// Appends an Int32 tensor.
    public mutating func add(_ name: String, int32 values: [Int32], shape: [Int]) {
        precondition(shape.reduce(1, *) == values.count)
        add(name, dtype: .i32, shape: shape, bytes: values.map { $0.littleEndian }.withUnsafeBytes { [UInt8]($0) })
    }

    /// Appends raw little-endian bytes of the given dtype.
    public mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
        precondition(shape.reduce(1, *) * dtype.size == bytes.count, "byte count does not match shape for \(name)")
        precondition(!header.contains { $0.0 == name }, "duplicate tensor \(name)")
        header.append((name, dtype, shape, payloads.count))
        payloads.append(bytes)
    }

    /// The complete file image.
    public func serialized() -> Data {
        var json = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(Self.jsonString($0)):\(Self.jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        let ordered = header.sorted { ($0.1.size, $1.0) > ($1.1.size, $0.0) }
        var payload: [UInt8] = []
        for (name, dtype, shape, index) in ordered {
            let start = payload.count
            payload.append(contentsOf: payloads[index])
            let end = payload.count
            parts.append("\(Self.jsonString(name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(start),\(end)]}")
        }
        json += parts.joined(separator: ",") + "}"
        var headerBytes = Array(json.utf8)
        while (headerBytes.count + 8) % 8 != 0 { headerBytes.append(0x20) }
        var out = Data()
        var length = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        out.append(contentsOf: payload)
        return out
    }

    /// `s` as a JSON string literal (quotes included; `/` left unescaped), as every header of the package writes it.
    package static func jsonString(_ s: String) -> String {
        // A one-element array of a string always serialises; strip the brackets.
        let data = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }
}
