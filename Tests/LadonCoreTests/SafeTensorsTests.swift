// The safetensors reader and writer: round trips, a file from the Python library, and damaged files.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite("SafeTensors")
struct SafeTensorsTests {
    /// A safetensors image with the given header text (declared length overridable) and data bytes.
    static func image(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
        let text = Array(header.utf8)
        var length = (declaredLength ?? UInt64(text.count)).littleEndian
        var out = Data()
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(contentsOf: text)
        out.append(contentsOf: data)
        return out
    }

    /// Opens `data` and returns the `.weights` message it must fail with.
    static func weightsError(_ data: Data, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            let file = try SafeTensorsFile(data: data, source: "test.safetensors")
            Issue.record("expected a weights error, opened \(file.names)", sourceLocation: sourceLocation)
        } catch {
            if case .weights = error { return error.description }
            Issue.record("expected .weights, got \(error)", sourceLocation: sourceLocation)
        }
        return ""
    }

    static func bitsEqual(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    }

    // MARK: - Round trip and the Python file

    @Test("Writer -> reader round trip keeps names, dtypes, shapes, values and metadata; no gaps")
    func roundTrip() throws {
        var rng = SplitMix64(seed: 11)
        let a = Tensor.random([2, 3, 5], using: &rng)
        let scalar = Tensor(shape: [], scalars: [4.25])
        var writer = SafeTensorsWriter()
        writer.metadata = ["model": "ladon \"test\"", "unicode": "é✓"]
        writer.add("bytes", dtype: .u8, shape: [3], bytes: [1, 2, 250])          // odd size first
        writer.add("encoder.conv.weight", a)
        writer.add("ids", int32: [-5, 0, 7, Int32.max], shape: [2, 2])
        writer.add("half", dtype: .f16, shape: [2], bytes: [0x00, 0x3C, 0x00, 0xC0])  // 1.0, -2.0
        writer.add("wide", dtype: .i64, shape: [1], bytes: withUnsafeBytes(of: Int64(-(1 << 40)).littleEndian) { Array($0) })
        writer.add("scalar", scalar)
        writer.add("empty", Tensor(shape: [0, 4]))
        let file = try SafeTensorsFile(data: writer.serialized())

        #expect(file.metadata == ["model": "ladon \"test\"", "unicode": "é✓"])
        #expect(file.names == ["bytes", "empty", "encoder.conv.weight", "half", "ids", "scalar", "wide"])
        #expect(try file.tensor("encoder.conv.weight", shape: [2, 3, 5]) == a)
        #expect(try file.tensor("scalar").shape == [])
        #expect(try file.tensor("scalar").scalars == [4.25])
        #expect(try file.tensor("empty").shape == [0, 4])
        #expect(try file.integers("bytes") == [1, 2, 250])
        #expect(try file.integerTensor("ids") == (shape: [2, 2], values: [-5, 0, 7, Int(Int32.max)]))
        #expect(try file.tensor("half").scalars == [1, -2])
        #expect(try file.integers("wide") == [-(1 << 40)])

        // Like the Python library: back to back from offset 0, each tensor aligned to its element size.
        let byOffset = file.entries.values.sorted { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        var next = 0
        for e in byOffset {
            #expect(e.dataRange.lowerBound == next, "\(e.name) starts at \(e.dataRange.lowerBound), expected \(next)")
            #expect(e.dataRange.lowerBound % e.dtype.size == 0, "\(e.name) misaligned")
            next = e.dataRange.upperBound
        }
        let data = writer.serialized()
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
        #expect(data.count == 8 + headerLength + next, "no trailing bytes")
    }

    /// A read drops the tensor's file pages from the process (`MADV_DONTNEED`) but not from the page cache, and a tensor
    /// read again, from a file (its pages fault back in) or from bytes in memory (left alone), has the same values:
    /// matrices of several pages, plain and packed reads.
    @Test("Tensors read twice keep their values; the file stays in the page cache")
    func readsKeepFileAndValues() throws {
        var rng = SplitMix64(seed: 12)
        let big = Tensor.random([96, 2048], using: &rng), other = Tensor.random([64, 1024], using: &rng)
        var writer = SafeTensorsWriter()
        writer.add("big", big)
        writer.add("other", other)
        let data = writer.serialized()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-pages-\(UUID().uuidString).safetensors").path
        try data.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        for file in [try SafeTensorsFile(path: path), try SafeTensorsFile(data: data)] {
            for _ in 0..<2 {
                #expect(try file.tensor("big", shape: [96, 2048]) == big, "\(file.source)")
                #expect(try file.packedMatrix("other", shape: [64, 1024]).unpacked() == other.scalars, "\(file.source)")
            }
        }
        #if os(Linux)
        // Every page of the file is still cached after the reads: mincore on a fresh mapping of it.
        let fd = open(path, O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        let base = try #require(mmap(nil, data.count, PROT_READ, MAP_PRIVATE, fd, 0))
        defer { munmap(base, data.count) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var resident = [UInt8](repeating: 0, count: (data.count + page - 1) / page)
        #expect(mincore(base, data.count, &resident) == 0)
        #expect(resident.allSatisfy { $0 & 1 == 1 }, "\(resident.filter { $0 & 1 == 0 }.count) of \(resident.count) pages evicted")
        #endif
    }

    @Test("A file written by the Python safetensors library: F32, F16, BF16, F64, I8, U8, I32, I64, BOOL")
    func pythonFile() throws {
        let file = try Fixtures.safetensors("python_dtypes.safetensors")
        #expect(file.metadata["format"] == "pt")
        #expect(try file.tensor("float32", shape: [2, 3, 4]).scalars == (0..<24).map { Float($0) / 8 - 1 })
        for name in ["float16", "bfloat16", "float64"] {
            let converted = try file.tensor(name)
            let torch = try file.tensor(name + ".as_f32")
            #expect(converted.shape == torch.shape)
            #expect(Self.bitsEqual(converted.scalars, torch.scalars), "\(name): \(converted.scalars) vs torch \(torch.scalars)")
        }
        let half = try file.tensor("float16").scalars
        #expect(half[0] == 0 && half[1].sign == .minus && half[2] == 1 && half[3] == -2.5 && half[6] == 65504)
        #expect(half[8] == Float(sign: .plus, exponent: -24, significand: 1), "smallest f16 subnormal")
        #expect(half[10] == .infinity && half[11] == -.infinity && half[12].isNaN)
        #expect(try file.integerTensor("int32") == (shape: [2, 3], values: [0, 1, -1, 2_147_483_647, -2_147_483_648, 42]))
        #expect(try file.integers("int64") == [0, -1, (1 << 40) + 3, -(1 << 53), 7])
        #expect(try file.integers("uint8") == [0, 1, 128, 255])
        #expect(try file.integers("int8") == [-128, -1, 0, 127])
        #expect(try file.integers("bool") == [1, 0, 1])
        #expect(try file.tensor("int8").scalars == [-128, -1, 0, 127])
        #expect(try file.tensor("scalar").scalars == [3.5])
        #expect(try file.tensor("empty", shape: [0, 3]).count == 0)
        let scope = WeightScope(file: file).scope("nested").scope("module")
        #expect(try scope.tensor("weight", shape: [2, 2]).scalars == [1, 1, 1, 1])
        #expect(try file.entry("int64").dtype == .i64)
    }

    // MARK: - Lookups

    @Test("Wrong shape -> .shapeMismatch naming the tensor and both shapes")
    func shapeMismatch() throws {
        let file = try Fixtures.safetensors("python_dtypes.safetensors")
        #expect(throws: LadonError.shapeMismatch(name: "float32", expected: [3, 2, 4], actual: [2, 3, 4])) {
            try file.tensor("float32", shape: [3, 2, 4])
        }
        #expect(throws: LadonError.shapeMismatch(name: "nested.module.weight", expected: [2, 2, 1], actual: [2, 2])) {
            try WeightScope(file: file).scope("nested.module").tensor("weight", shape: [2, 2, 1])
        }
        let text = LadonError.shapeMismatch(name: "float32", expected: [3, 2, 4], actual: [2, 3, 4]).description
        #expect(text.contains("float32") && text.contains("[3, 2, 4]") && text.contains("[2, 3, 4]"))
    }

    @Test("Missing tensor -> .missingTensor naming it and the file")
    func missingTensor() throws {
        let file = try Fixtures.safetensors("python_dtypes.safetensors")
        #expect(throws: LadonError.missingTensor(name: "decoder.weight", file: file.source)) { try file.tensor("decoder.weight") }
        #expect(throws: LadonError.missingTensor(name: "nested.module.bias", file: file.source)) {
            try WeightScope(file: file).scope("nested").scope("module").tensor("bias", shape: [2])
        }
        #expect(LadonError.missingTensor(name: "x.y", file: "m.safetensors").description.contains("'x.y'"))
    }

    @Test("Integer reads of floating tensors are errors, not empty arrays")
    func integerOfFloat() throws {
        let file = try Fixtures.safetensors("python_dtypes.safetensors")
        #expect(throws: LadonError.self) { try file.integers("float32") }
        #expect(throws: LadonError.self) { try file.integerTensor("bfloat16") }
    }

    @Test("A missing file is a .weights error")
    func missingFile() {
        #expect(throws: LadonError.self) { try SafeTensorsFile(path: "/nonexistent/ladon/weights.safetensors") }
    }

    // MARK: - Damaged files

    static let good = #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    @Test("Header length: shorter than 8 bytes, zero, beyond the file, beyond the 100 MB limit, UInt64.max")
    func headerLength() {
        #expect(Self.weightsError(Data([1, 0, 0])).contains("too short"))
        #expect(Self.weightsError(Data()).contains("too short"))
        #expect(Self.weightsError(Self.image("", declaredLength: 0)).contains("header length 0"))
        #expect(Self.weightsError(Self.image(Self.good, data: Array(repeating: 0, count: 8), declaredLength: 500)).contains("header length 500"))
        #expect(!Self.weightsError(Self.image(Self.good, declaredLength: 200_000_000)).isEmpty)
        #expect(!Self.weightsError(Self.image(Self.good, declaredLength: .max)).isEmpty)
    }

    @Test("Header that is not a JSON object", arguments: ["hello, world", "[1, 2, 3]", "\"text\"", "{\"t\": ", "{}}"])
    func notJSON(header: String) {
        #expect(Self.weightsError(Self.image(header)).contains("not a JSON object"))
    }

    @Test("Header bytes that are not UTF-8")
    func notUTF8() {
        var data = Self.image(Self.good, data: Array(repeating: 0, count: 8))
        data[10] = 0xFF
        #expect(!Self.weightsError(data).isEmpty)
    }

    @Test("Malformed entries, wrong dtype strings, bad metadata", arguments: [
        (#"{"t":{"shape":[2],"data_offsets":[0,8]}}"#, "malformed"),
        (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}"#, "malformed"),
        (#"{"t":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}"#, "malformed"),
        (#"{"t":[1,2]}"#, "malformed"),
        (#"{"t":{"dtype":"float32","shape":[2],"data_offsets":[0,8]}}"#, "unsupported dtype float32"),
        (#"{"t":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,8]}}"#, "unsupported dtype F8_E4M3"),
        (#"{"t":{"dtype":7,"shape":[2],"data_offsets":[0,8]}}"#, "malformed"),
        (#"{"__metadata__":[1],"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, "__metadata__"),
        (#"{"__metadata__":{"k":1},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, "metadata 'k'"),
    ])
    func malformed(header: String, expected: String) {
        let message = Self.weightsError(Self.image(header, data: Array(repeating: 0, count: 8)))
        #expect(message.contains(expected), "\(message)")
    }

    @Test("Offsets out of range, reversed, negative, fractional, boolean; byte counts not matching shapes", arguments: [
        (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}"#, "outside"),
        (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, "outside"),
        (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#, "outside"),
        (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0.5,8]}}"#, "outside"),
        (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[false,8]}}"#, "outside"),
        (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}"#, "outside"),
        (#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, "needs 4"),
        (#"{"t":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}"#, "needs 16"),
        (#"{"t":{"dtype":"F32","shape":[2,1],"data_offsets":[0,4]}}"#, "needs 8"),
    ])
    func badOffsets(header: String, expected: String) {
        let message = Self.weightsError(Self.image(header, data: Array(repeating: 0, count: 8)))
        #expect(message.contains(expected), "\(message)")
    }

    @Test("Overlapping tensors are refused; adjacent and empty ones are fine")
    func overlap() throws {
        let overlapping = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(Self.weightsError(Self.image(overlapping, data: Array(repeating: 0, count: 8))).contains("overlap"))
        let same = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#
        #expect(Self.weightsError(Self.image(same, data: Array(repeating: 0, count: 8))).contains("overlap"))
        let inside = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#
        #expect(Self.weightsError(Self.image(inside, data: Array(repeating: 0, count: 8))).contains("overlap"))
        let fine = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        let file = try SafeTensorsFile(data: Self.image(fine, data: [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40]))
        #expect(try file.tensor("a").scalars == [1] && file.tensor("b").scalars == [2])
    }

    @Test("Shapes that overflow, are negative, fractional or boolean", arguments: [
        #"{"t":{"dtype":"F32","shape":[2147483647,2147483647,2147483647,2147483647],"data_offsets":[0,8]}}"#,
        #"{"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
        #"{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
        #"{"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#,
        #"{"t":{"dtype":"F32","shape":[true,2],"data_offsets":[0,8]}}"#,
        #"{"t":{"dtype":"F32","shape":[1e300],"data_offsets":[0,8]}}"#,
        #"{"t":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#,
    ])
    func badShapes(header: String) {
        let message = Self.weightsError(Self.image(header, data: Array(repeating: 0, count: 8)))
        #expect(message.contains("shape"), "\(message)")
    }

    @Test("Truncated files: inside the data, inside the header, inside the length")
    func truncated() throws {
        let full = try Fixtures.bytes("python_dtypes.safetensors")
        let headerLength = full.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        for cut in [full.count - 1, full.count - 100, 8 + headerLength + 1, 8 + headerLength, 8 + headerLength / 2, 5] {
            #expect(!Self.weightsError(Data(full.prefix(cut))).isEmpty, "cut at \(cut)")
        }
    }

    @Test("Random damage to a real file never crashes: it opens and reads, or throws LadonError")
    func fuzz() throws {
        let full = try Fixtures.bytes("python_dtypes.safetensors")
        var rng = SplitMix64(seed: 99)
        var opened = 0, refused = 0
        for _ in 0..<300 {
            var damaged = full
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let position = Int.random(in: 0..<min(damaged.count, 700), using: &rng)   // mostly the header
                damaged[position] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            }
            do {
                let file = try SafeTensorsFile(data: Data(damaged))
                for name in file.names {
                    let t = try file.tensor(name)
                    #expect(t.count == file.entries[name]!.elementCount)
                }
                opened += 1
            } catch {
                refused += 1
            }
        }
        #expect(opened + refused == 300)
        print("safetensors fuzz: \(opened) opened, \(refused) refused")
    }
}
