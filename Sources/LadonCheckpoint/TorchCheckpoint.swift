// Opens a `torch.save` file (zip + pickle + raw storages) and exposes its state dict as typed tensors.
import Foundation
import LadonCore

/// A PyTorch checkpoint written by `torch.save` (the zip format of torch >= 1.6), read without Python.
///
/// The pickle is decoded by `PickleMachine` (nothing is executed); tensors are strided views of storage
/// records, validated on open, and materialised on demand as `Float` or integers, honouring strides and
/// storage offsets. The state dict is the top-level dict if its values are tensors, else `ckpt["model"]`
/// (torchdistill's layout `{'model', 'optimizer', 'lr_scheduler', 'best_value', 'args'}`), else
/// `ckpt["state_dict"]`.
///
/// ```swift
/// let ckpt = try TorchCheckpoint(path: "cls.pt")
/// let w = try ckpt.floatTensor("fc.weight")          // Tensor, Float32, contiguous
/// let cdf = try ckpt.int32Values("bottleneck_layer.entropy_bottleneck._quantized_cdf")
/// ```
public final class TorchCheckpoint: @unchecked Sendable {
    /// A label for messages (the file path).
    public let source: String
    /// The whole decoded pickle (the object passed to `torch.save`).
    package let root: PickleValue
    /// Where the state dict was found: `""` (top level), `"model"` or `"state_dict"`.
    public let stateDictKey: String
    /// State-dict tensor names in file order.
    public let names: [String]
    /// State-dict entries whose value is not a tensor (skipped), e.g. `_extra_state`.
    public let skippedNames: [String]
    private let tensors: [String: TorchTensorRef]
    private let archive: ZipArchive
    private let recordPrefix: String

    /// First bytes of the legacy (pre-1.6, non-zip) format: PROTO 2, LONG1 with the torch magic number.
    static let legacyMagic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    /// Memory-maps and decodes the checkpoint at `path`. With `verifyChecksums`, the CRC-32 of the pickle and of
    /// every referenced storage record is checked on open (one pass over the file).
    public convenience init(path: String, verifyChecksums: Bool = true) throws(LadonError) {
        let data: Data
        do {
            data = try UntrustedFile.read(path, maxBytes: UntrustedFile.maxMappedBytes, allowStreams: false)
        } catch {
            throw .checkpoint(file: path, .unreadable(reason: error.reason))
        }
        try self.init(data: data, source: path, verifyChecksums: verifyChecksums)
    }

    /// Decodes a checkpoint image in memory.
    public init(data: Data, source: String = "<memory>", verifyChecksums: Bool = true) throws(LadonError) {
        self.source = source
        if data.count >= Self.legacyMagic.count, Array(data.prefix(Self.legacyMagic.count)) == Self.legacyMagic {
            throw .checkpoint(file: source, .legacyFormat)
        }
        let archive: ZipArchive
        do {
            archive = try ZipArchive(data: data, source: source)
        } catch {
            throw .checkpoint(file: source, .notTorchZip(reason: "\(error)"))
        }
        self.archive = archive
        let pickles = archive.entries.filter { $0.name.hasSuffix("data.pkl") && $0.name.split(separator: "/").count == 2 }
        guard let pickleEntry = pickles.first else {
            if archive.entries.contains(where: { $0.name.hasSuffix("constants.pkl") }) {
                throw .checkpoint(file: source, .torchScript)
            }
            throw .checkpoint(file: source, .noDataPickle)
        }
        guard pickles.count == 1 else { throw .checkpoint(file: source, .multipleDataPickles(pickles.count)) }
        let prefix = String(pickleEntry.name.dropLast("data.pkl".count))
        self.recordPrefix = prefix
        if archive.contains(prefix + "byteorder") {
            let order = String(decoding: try archive.bytes(prefix + "byteorder"), as: UTF8.self)
            guard order == "little" else {
                throw .checkpoint(file: source, .unsupportedByteOrder(order))
            }
        }
        guard pickleEntry.uncompressedSize <= PickleMachine.maxBytes else {
            throw .checkpoint(file: source, .pickleTooLarge(bytes: pickleEntry.uncompressedSize, limit: PickleMachine.maxBytes))
        }
        let pickleBytes = try archive.bytes(pickleEntry.name, verifyCRC: verifyChecksums)
        let root = try PickleMachine.load(pickleBytes, source: "\(source) (\(pickleEntry.name))") { pid throws(LadonError) in
            .storage(try Self.resolveStorage(pid, archive: archive, prefix: prefix, source: source))
        }
        self.root = root

        let (key, dict) = try Self.findStateDict(root, source: source)
        self.stateDictKey = key
        var names: [String] = [], skipped: [String] = [], tensors: [String: TorchTensorRef] = [:]
        for item in dict {
            guard case .string(let name) = item.key else {
                throw .checkpoint(file: source, .nonStringKey(kind: item.key.kindName))
            }
            guard case .tensor(let t) = item.value else { skipped.append(name); continue }
            guard tensors[name] == nil else { throw .checkpoint(file: source, .duplicateKey(name)) }
            tensors[name] = t
            names.append(name)
        }
        self.names = names
        self.skippedNames = skipped
        self.tensors = tensors
        if verifyChecksums {
            let keys = Set(tensors.values.map(\.storage.key))
            for k in keys.sorted() {
                _ = try archive.withBytes(of: archive.entry(prefix + "data/" + k), verifyCRC: true) { (_: UnsafeRawBufferPointer) throws(LadonError) in 0 }
            }
        }
    }

    /// Turns a persistent id `('storage', StorageType, key, location, numel)` into a checked storage reference.
    static func resolveStorage(_ pid: PickleValue, archive: ZipArchive, prefix: String, source: String) throws(LadonError) -> TorchStorageRef {
        guard let parts = pid.elements, parts.count >= 5, parts[0].stringValue == "storage" else {
            throw .checkpoint(file: source, .malformedPersistentID(detail: "persistent id is not ('storage', type, key, location, numel)"))
        }
        guard case .global(let module, let name) = parts[1], let dtype = TorchDType(global: module, name: name) else {
            throw .checkpoint(file: source, .unsupportedStorageType(parts[1].kindName))
        }
        guard let key = parts[2].stringValue ?? parts[2].intValue.map(String.init), let count = parts[4].intValue, count >= 0 else {
            throw .checkpoint(file: source, .malformedPersistentID(detail: "storage persistent id has a malformed key or element count"))
        }
        let record = prefix + "data/" + key
        guard archive.contains(record) else {
            throw .checkpoint(file: source, .missingStorageRecord(key: key, record: record))
        }
        let entry = try archive.entry(record)
        let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, needed <= entry.uncompressedSize else {
            throw .checkpoint(file: source, .storageTooSmall(key: key, declared: count, dtype: dtype.rawValue, bytes: entry.uncompressedSize))
        }
        return TorchStorageRef(key: key, dtype: dtype, elementCount: count, location: parts[3].stringValue ?? "")
    }

    private static func findStateDict(_ root: PickleValue, source: String) throws(LadonError) -> (String, [PickleDictItem]) {
        func tensorDict(_ v: PickleValue?) -> [PickleDictItem]? {
            guard let items = v?.dictItems, items.contains(where: { if case .tensor = $0.value { return true }; return false }) else { return nil }
            return items
        }
        if let items = tensorDict(root) { return ("", items) }
        for key in ["model", "state_dict", "model_state_dict"] {
            if let items = tensorDict(root[key]) { return (key, items) }
        }
        let keys = root.dictItems?.compactMap { $0.key.stringValue } ?? []
        throw .checkpoint(file: source, .noStateDict(topLevel: root.kindName, keys: Array(keys.prefix(12))))
    }

    /// The tensor reference for `name`.
    package func tensorRef(_ name: String) throws(LadonError) -> TorchTensorRef {
        guard let t = tensors[name] else { throw .missingTensor(name: name, file: source) }
        return t
    }

    /// Whether the state dict holds a tensor called `name`.
    public func contains(_ name: String) -> Bool { tensors[name] != nil }

    /// Reads a floating (or integer) tensor as contiguous `Float32`.
    public func floatTensor(_ name: String) throws(LadonError) -> Tensor {
        let ref = try tensorRef(name)
        return Tensor(shape: ref.shape, scalars: try floats(ref))
    }

    /// The elements of a tensor as `Float`, row-major.
    package func floats(_ ref: TorchTensorRef) throws(LadonError) -> [Float] {
        switch ref.dtype {
        case .float32 where ref.isContiguous:
            return try withStorage(ref) { raw in
                [Float](unsafeUninitializedCapacity: ref.elementCount) { buf, count in
                    let n = ref.elementCount
                    if n > 0 { memcpy(buf.baseAddress!, raw.baseAddress! + 4 * ref.storageOffset, 4 * n) }
                    count = n
                }
            }
        case .float32: return try gather(ref) { raw, i in Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .float16: return try gather(ref) { raw, i in Float(float16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .bfloat16: return try gather(ref) { raw, i in Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
        case .float64: return try gather(ref) { raw, i in Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        default: return try int64s(ref).map { Float($0) }
        }
    }

    /// Reads an integer tensor as `Int64` (floating tensors are an error).
    public func int64Values(_ name: String) throws(LadonError) -> [Int64] { try int64s(try tensorRef(name)) }

    /// Reads an integer tensor as `Int32`; values outside the Int32 range are an error.
    public func int32Values(_ name: String) throws(LadonError) -> [Int32] {
        var out: [Int32] = []
        for v in try int64Values(name) {
            guard let narrow = Int32(exactly: v) else { throw .checkpoint(file: source, .valueOutOfRange(tensor: name, value: v)) }
            out.append(narrow)
        }
        return out
    }

    /// The elements of an integer tensor, row-major.
    package func int64s(_ ref: TorchTensorRef) throws(LadonError) -> [Int64] {
        switch ref.dtype {
        case .int64: return try gather(ref) { raw, i in Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .int32: return try gather(ref) { raw, i in Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        case .int16: return try gather(ref) { raw, i in Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
        case .int8: return try gather(ref) { raw, i in Int64(raw.load(fromByteOffset: i, as: Int8.self)) }
        case .uint8, .bool: return try gather(ref) { raw, i in Int64(raw.load(fromByteOffset: i, as: UInt8.self)) }
        case .float32, .float16, .bfloat16, .float64:
            throw .checkpoint(file: source, .notIntegerStorage(key: ref.storage.key, dtype: ref.dtype.rawValue))
        }
    }

    private func withStorage<R>(_ ref: TorchTensorRef, _ body: (UnsafeRawBufferPointer) -> R) throws(LadonError) -> R {
        let entry = try archive.entry(recordPrefix + "data/" + ref.storage.key)
        // resolveStorage checked elementCount * size <= record size, and TorchTensorRef checked the view's extent.
        let (bytes, overflow) = ref.storage.elementCount.multipliedReportingOverflow(by: ref.dtype.size)
        guard !overflow, bytes <= entry.uncompressedSize, ref.elementCount <= TorchTensorRef.maxElements else {
            throw .checkpoint(file: source, .storageTooSmall(key: ref.storage.key, declared: ref.storage.elementCount, dtype: ref.dtype.rawValue, bytes: entry.uncompressedSize))
        }
        return try archive.withBytes(of: entry) { (raw: UnsafeRawBufferPointer) throws(LadonError) -> R in body(raw) }
    }

    /// Walks the view in row-major order, reading storage element `i` with `read`.
    private func gather<T>(_ ref: TorchTensorRef, _ read: (UnsafeRawBufferPointer, Int) -> T) throws(LadonError) -> [T] {
        try withStorage(ref) { raw in
            let n = ref.elementCount
            var out: [T] = []
            out.reserveCapacity(n)
            guard n > 0 else { return out }
            let rank = ref.shape.count
            var index = [Int](repeating: 0, count: rank)
            var offset = ref.storageOffset
            for _ in 0..<n {
                out.append(read(raw, offset))
                var d = rank - 1
                while d >= 0 {
                    index[d] += 1
                    offset += ref.strides[d]
                    if index[d] < ref.shape[d] { break }
                    offset -= ref.strides[d] * ref.shape[d]
                    index[d] = 0
                    d -= 1
                }
            }
            return out
        }
    }
}
