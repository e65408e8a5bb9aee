// Hostile checkpoints and zip archives (docs/security.md): each is built here, small, and must give a clear error
// promptly and without a large allocation, while the matching control still reads.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore
@testable import LadonCheckpoint

/// Writes pickle opcode streams (protocol 2) for tests.
struct PickleWriter {
    var bytes: [UInt8] = [0x80, 0x02]

    mutating func op(_ code: UInt8) { bytes.append(code) }
    mutating func mark() { op(0x28) }
    mutating func none() { op(0x4E) }
    mutating func tuple() { op(0x74) }
    mutating func reduce() { op(0x52) }
    mutating func stop() { op(0x2E) }
    mutating func int(_ v: Int) {
        if (0..<256).contains(v) { bytes += [0x4B, UInt8(v)]; return }
        bytes += [0x8A, 8] + (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }  // LONG1, 8 bytes
    }
    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        bytes += [0x58] + (0..<4).map { UInt8((u.count >> (8 * $0)) & 0xFF) } + u
    }
    mutating func global(_ module: String, _ name: String) { bytes += [0x63] + Array("\(module)\n\(name)\n".utf8) }
    mutating func put(_ i: UInt8) { bytes += [0x71, i] }
    mutating func get(_ i: UInt8) { bytes += [0x68, i] }
    /// `('storage', torch.FloatStorage, key, 'cpu', numel)` + BINPERSID.
    mutating func storage(key: String, numel: Int) {
        mark(); string("storage"); global("torch", "FloatStorage"); string(key); string("cpu"); int(numel); tuple()
        op(0x51)
    }
    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
    mutating func tensor(key: String, numel: Int, offset: Int = 0, size: [Int], stride: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        mark()
        storage(key: key, numel: numel)
        int(offset)
        mark(); for s in size { int(s) }; tuple()
        mark(); for s in stride { int(s) }; tuple()
        op(0x89)
        global("collections", "OrderedDict"); op(0x29); reduce()
        tuple()
        reduce()
    }
}

/// A `torch.save` archive (`h/data.pkl`, `h/data/<key>`) around a state-dict pickle.
private func torchArchive(_ pickle: [UInt8], storages: [String: [UInt8]]) -> Data {
    var items = [TestZipBuilder.Item(name: "h/data.pkl", data: pickle), .init(name: "h/byteorder", data: Array("little".utf8))]
    for (key, bytes) in storages.sorted(by: { $0.key < $1.key }) { items.append(.init(name: "h/data/\(key)", data: bytes)) }
    return Data(TestZipBuilder(items: items).build())
}

/// `{name: tensor}` as a pickle.
private func stateDict(_ name: String, numel: Int, size: [Int], stride: [Int]) -> [UInt8] {
    var p = PickleWriter()
    p.op(0x7D); p.mark(); p.string(name); p.tensor(key: "0", numel: numel, size: size, stride: stride); p.op(0x75); p.stop()
    return p.bytes
}

/// One central-directory record of a hand-laid zip: `name` in the directory, pointing at `localOffset`.
private struct RawZipEntry { var name: String; var localOffset: Int; var size: Int; var crc: UInt32 }

/// Lays out a zip from raw local-header bytes and central records (for overlap and name-mismatch attacks).
private func rawZip(body: [UInt8], entries: [RawZipEntry]) -> Data {
    var out = body
    func le16(_ v: Int) { out += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    func le32(_ v: Int) { for i in 0..<4 { out.append(UInt8((v >> (8 * i)) & 0xFF)) } }
    let cd = out.count
    for e in entries {
        let name = Array(e.name.utf8)
        le32(0x0201_4b50); le16(20); le16(20); le16(0); le16(0); le32(0); le32(Int(e.crc)); le32(e.size); le32(e.size)
        le16(name.count); le16(0); le16(0); le16(0); le16(0); le32(0); le32(e.localOffset)
        out += name
    }
    let size = out.count - cd
    le32(0x0605_4b50); le16(0); le16(0); le16(entries.count); le16(entries.count); le32(size); le32(cd); le16(0)
    return Data(out)
}

private func localHeader(_ name: String, data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    func le16(_ v: Int) { out += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    func le32(_ v: Int) { for i in 0..<4 { out.append(UInt8((v >> (8 * i)) & 0xFF)) } }
    let n = Array(name.utf8)
    le32(0x0403_4b50); le16(20); le16(0); le16(0); le32(0); le32(Int(CRC32.checksum(data))); le32(data.count); le32(data.count)
    le16(n.count); le16(0)
    return out + n + data
}

@Suite struct HostileCheckpointTests {
    // MARK: Checkpoints: views, recursion, quadratic work

    @Test func strideZeroViewClaimingTrillionsOfElementsIsRefusedOnOpen() throws {
        // The 4 KB attack: _quantized_cdf of size (24, 1.1e12), stride (0, 0), over a 1-element storage.
        let name = "bottleneck_layer.entropy_bottleneck._quantized_cdf"
        let hostile = torchArchive(stateDict(name, numel: 1, size: [24, 1_100_000_000_000], stride: [0, 0]),
                                   storages: ["0": [0, 0, 0, 0]])
        #expect(hostile.count < 4096)
        expectRefused("elements") { _ = try TorchCheckpoint(data: hostile, source: "stride0.pt") }
        // Modest broadcasting (stride-0 over a small storage, as torch's expand() saves it) still reads.
        let control = torchArchive(stateDict("w", numel: 1, size: [4, 3], stride: [0, 0]), storages: ["0": [0, 0, 0x80, 0x3F]])
        let ckpt = try TorchCheckpoint(data: control, source: "expand.pt")
        #expect(try ckpt.floatTensor("w").scalars == [Float](repeating: 1, count: 12))
        // Broadcasting beyond the allowance over a small storage is refused too.
        let wide = torchArchive(stateDict("w", numel: 1, size: [2048, 2048], stride: [0, 0]), storages: ["0": [0, 0, 0x80, 0x3F]])
        expectRefused("repeat") { _ = try TorchCheckpoint(data: wide, source: "wide.pt") }
    }

    @Test func contiguityOfEmptyViewsWithHugeSizesDoesNotOverflow() throws {
        let storage = TorchStorageRef(key: "0", dtype: .float32, elementCount: 1, location: "cpu")
        // Passes validation (no element is addressed), then isContiguous multiplied the sizes and trapped.
        let empty = try TorchTensorRef(storage: storage, storageOffset: 0, shape: [0, 1 << 40, 1 << 40], strides: [1, 1, 1])
        #expect(empty.elementCount == 0)
        #expect(empty.isContiguous)
        let other = try TorchTensorRef(storage: storage, storageOffset: 0, shape: [0, 1 << 62, 4], strides: [0, 0, 7])
        _ = other.isContiguous
        #expect(throws: LadonError.self) {
            try TorchTensorRef(storage: storage, storageOffset: 0, shape: [Int](repeating: 1, count: 65), strides: [Int](repeating: 0, count: 65))
        }
    }

    @Test func nestedRebuildFromTypeChainsHitTheDepthCap() throws {
        // _rebuild_from_type_v2(_rebuild_from_type_v2, None, (_rebuild_from_type_v2, None, (...), None), None) 100,000
        // levels deep (600 KB): apply() recursed once per level and overflowed the stack.
        func chain(_ levels: Int) -> [UInt8] {
            var p = PickleWriter()
            p.global("torch._tensor", "_rebuild_from_type_v2"); p.put(0)
            p.global("builtins", "set"); p.put(1); p.op(0x30)  // POP: keep the reduce callable only
            for _ in 0..<levels { p.mark(); p.get(0); p.none() }
            p.mark(); p.get(1); p.none(); p.op(0x29); p.none(); p.tuple()   // innermost: set()
            for _ in 0..<levels { p.none(); p.tuple() }
            p.reduce(); p.stop()
            return p.bytes
        }
        let deep = chain(100_000)
        expectRefused("nested deeper") { _ = try PickleMachine.load(deep, source: "deep") }
        // A short chain is unwrapped to the inner call.
        #expect(try PickleMachine.load(chain(3), source: "short") == .set([]))
    }

    @Test func rebuildCallsWithLargeSharedArgumentsAreLinear() throws {
        // 28,000 tensor rebuilds whose extra argument is one shared 20,000-element list (380 KB): value() converted
        // every argument with a fresh cache, 5.6e8 conversions (20 s).
        var p = PickleWriter()
        p.op(0x5D); p.put(0); p.mark(); for _ in 0..<20_000 { p.int(1) }; p.op(0x65); p.op(0x30)   // L = [1] * 20000
        p.none(); p.op(0x51); p.put(1); p.op(0x30)                                                   // storage
        p.global("torch._utils", "_rebuild_tensor_v2"); p.put(2); p.op(0x30)
        p.op(0x5D); p.mark()
        for _ in 0..<28_000 { p.get(2); p.mark(); p.get(1); p.int(0); p.op(0x29); p.op(0x29); p.get(0); p.tuple(); p.reduce() }
        p.op(0x65); p.stop()
        let storage = TorchStorageRef(key: "0", dtype: .float32, elementCount: 1, location: "cpu")
        let value = try timed {
            try PickleMachine.load(p.bytes, source: "shared") { _ throws(LadonError) in .storage(storage) }
        }
        #expect(value.elements?.count == 28_000)
    }

    @Test func repeatedConversionOfSharedStructureHitsTheWorkBudget() {
        // The same big persistent id resolved over and over, and set(L) applied over and over: either would be
        // quadratic; both are charged to the linear work budget.
        var persid = PickleWriter()
        persid.op(0x5D); persid.put(0); persid.mark(); for _ in 0..<20_000 { persid.int(1) }; persid.op(0x65)
        persid.op(0x5D); persid.mark()
        for _ in 0..<20_000 { persid.get(0); persid.op(0x51) }
        persid.op(0x65); persid.stop()
        expectRefused("object-reference copies") {
            _ = try PickleMachine.load(persid.bytes, source: "persid") { _ throws(LadonError) in .none }
        }
        var sets = PickleWriter()
        sets.op(0x5D); sets.put(0); sets.mark(); for _ in 0..<20_000 { sets.int(1) }; sets.op(0x65); sets.op(0x30)
        sets.global("builtins", "set"); sets.put(1); sets.op(0x30)
        sets.op(0x5D); sets.mark()
        for _ in 0..<20_000 { sets.get(1); sets.get(0); sets.op(0x85); sets.reduce() }
        sets.op(0x65); sets.stop()
        expectRefused("object-reference copies") { _ = try PickleMachine.load(sets.bytes, source: "sets") }
    }

    @Test func oversizedPickleIsRefusedBeforeDecoding() {
        let big = [UInt8](repeating: 0x4E, count: PickleMachine.maxBytes + 1)
        expectRefused("more than the") { _ = try PickleMachine.load(big, source: "big") }
    }

    // MARK: Zip archives

    @Test func overlappingZipEntriesAreRefused() throws {
        // 200 central records for one local header: 200 names over one data range (the 4000-entry, 31 GiB-of-hashing
        // attack in small). The local header names only the first.
        let data = [UInt8](repeating: 7, count: 65_536)
        let body = localHeader("a/data/0", data: data)
        let crc = CRC32.checksum(data)
        let shared = (0..<200).map { RawZipEntry(name: $0 == 0 ? "a/data/0" : "a/data/\($0)", localOffset: 0, size: data.count, crc: crc) }
        expectRefused("names another file") { _ = try ZipArchive(data: rawZip(body: body, entries: shared), source: "shared.zip") }
        // Entries with matching names whose ranges nest: the outer entry's data holds the inner entry.
        let inner = localHeader("b", data: [1, 2, 3])
        let outer = localHeader("a", data: inner)
        let nested = [RawZipEntry(name: "a", localOffset: 0, size: inner.count, crc: CRC32.checksum(inner)),
                      RawZipEntry(name: "b", localOffset: 31, size: 3, crc: CRC32.checksum([1, 2, 3]))]
        expectRefused("overlap") { _ = try ZipArchive(data: rawZip(body: outer, entries: nested), source: "nested.zip") }
        // Two records for the same local header with the same name: a duplicate or an overlap, never read twice.
        let twice = [RawZipEntry(name: "a/data/0", localOffset: 0, size: data.count, crc: crc),
                     RawZipEntry(name: "a/data/0", localOffset: 0, size: data.count, crc: crc)]
        expectRefused("a/data/0") { _ = try ZipArchive(data: rawZip(body: body, entries: twice), source: "twice.zip") }
        // Control: the same entries laid out one after another read.
        let a = localHeader("a", data: [1]), b = localHeader("b", data: [2, 3])
        let ok = try ZipArchive(data: rawZip(body: a + b, entries: [RawZipEntry(name: "a", localOffset: 0, size: 1, crc: CRC32.checksum([1])),
                                                                   RawZipEntry(name: "b", localOffset: a.count, size: 2, crc: CRC32.checksum([2, 3]))]))
        #expect(try ok.bytes("b") == [2, 3])
    }

    @Test func entryCountLargerThanTheDirectoryIsRefused() {
        // An end record declaring 65,534 entries over an empty directory.
        var bytes: [UInt8] = [0x50, 0x4B, 0x05, 0x06, 0, 0, 0, 0, 0xFE, 0xFF, 0xFE, 0xFF]
        bytes += [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        expectRefused("entries declared") { _ = try ZipArchive(data: Data(bytes), source: "count.zip") }
    }

    @Test func nonRegularFilesAreNotReadForever() {
        expectRefused("not a regular file") { _ = try TorchCheckpoint(path: "/dev/zero") }
        expectRefused("not a regular file") { _ = try ZipArchive(path: "/dev/zero") }
    }
}
