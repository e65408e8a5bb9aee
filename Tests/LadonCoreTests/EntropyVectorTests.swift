// CompressAI 1.2.8 vectors: tables, quantisation, bytes and decoded values must match exactly, both directions.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore

/// Reads the little-endian `.npy` files of the CompressAI vectors (`<f4` and `<i4`, C order).
enum NPY {
    struct Array {
        var shape: [Int]
        var floats: [Float] = []
        var ints: [Int32] = []
    }

    static func load(_ name: String) throws -> Array {
        let bytes = try Fixtures.bytes("compressai/\(name)")
        #expect(bytes.count > 10 && bytes[0] == 0x93 && String(decoding: bytes[1..<6], as: UTF8.self) == "NUMPY")
        let major = bytes[6]
        let headerLength = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
            : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        let headerStart = major == 1 ? 10 : 12
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        #expect(header.contains("'fortran_order': False"))
        let shapeText = header.components(separatedBy: "'shape': (")[1].components(separatedBy: ")")[0]
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let data = Swift.Array(bytes[(headerStart + headerLength)...])
        #expect(data.count == 4 * count)
        var result = Array(shape: shape)
        data.withUnsafeBytes { raw in
            if header.contains("'<f4'") {
                result.floats = (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            } else {
                #expect(header.contains("'<i4'"))
                result.ints = (0..<count).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            }
        }
        return result
    }
}

/// The vector model and cases shared by the entropy tests.
enum CompressAIVectors {
    static let cases: [(name: String, shape: [Int])] = [
        ("main_1x24x26x26", [1, 24, 26, 26]),
        ("batch2_2x24x26x26", [2, 24, 26, 26]),
        ("tiny_1x24x1x1", [1, 24, 1, 1]),
        ("large_1x24x104x104", [1, 24, 104, 104]),
    ]

    static func state() throws -> SafeTensorsFile { try Fixtures.safetensors("compressai/eb_state.safetensors") }
    static func bottleneck() throws -> EntropyBottleneck { try EntropyBottleneck(weights: WeightScope(file: state())) }

    static func manifest() throws -> [String: Any] {
        let data = Data(try Fixtures.bytes("compressai/manifest.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// The state dict with the pre-1.2.7 key names (`_matrixN`, `_biasN`, `_factorN`) under a module prefix.
    static func oldKeyState(prefix: String) throws -> SafeTensorsFile {
        let file = try state()
        var writer = SafeTensorsWriter()
        for name in file.names {
            var renamed = name
            for (new, old) in [("matrices.", "_matrix"), ("biases.", "_bias"), ("factors.", "_factor")] where name.hasPrefix(new) {
                renamed = old + name.dropFirst(new.count)
            }
            let entry = try file.entry(name)
            writer.add(prefix + "." + renamed, dtype: entry.dtype, shape: entry.shape, bytes: try file.rawBytes(name))
        }
        return try SafeTensorsFile(data: writer.serialized(), source: "old-keys")
    }
}

@Suite struct EntropyVectorTests {
    @Test func tablesLoadAsStored() throws {
        let eb = try CompressAIVectors.bottleneck()
        let manifest = try CompressAIVectors.manifest()["entropy_bottleneck"] as! [String: Any]
        #expect(eb.channels == 24)
        #expect(eb.medians == (manifest["medians"] as! [NSNumber]).map { $0.floatValue })
        #expect(eb.tables.offsets == (manifest["offset"] as! [NSNumber]).map { $0.int32Value })
        #expect(eb.tables.cdfLengths == (manifest["cdf_length"] as! [NSNumber]).map { $0.int32Value })
        let stored = try CompressAIVectors.state().integers("_quantized_cdf")
        for c in 0..<24 {
            let row = stored[(c * 171)..<(c * 171 + Int(eb.tables.cdfLengths[c]))].map { UInt32($0) }
            #expect(eb.tables.cdfs[c] == row)
        }
        #expect(EntropyBottleneck.hasStoredTables(WeightScope(file: try CompressAIVectors.state())))
    }

    @Test func oldKeyNamesAndPrefixLoadTheSameTables() throws {
        let file = try CompressAIVectors.oldKeyState(prefix: "encoder.entropy_bottleneck")
        #expect(file.entries["encoder.entropy_bottleneck._matrix0"] != nil)
        let scope = WeightScope(file: file).scope("encoder").scope("entropy_bottleneck")
        let eb = try EntropyBottleneck(weights: scope)
        #expect(eb == (try CompressAIVectors.bottleneck()), "tables differ")
        let rebuilt = try EntropyBottleneck(rebuildingTablesFrom: scope)
        #expect(rebuilt.tables.cdfs == eb.tables.cdfs, "rebuilt table differs")
    }

    @Test(arguments: CompressAIVectors.cases.map(\.name))
    func vectorMatchesBothDirections(_ name: String) throws {
        let shape = CompressAIVectors.cases.first { $0.name == name }!.shape
        let eb = try CompressAIVectors.bottleneck()
        let input = try NPY.load("\(name).input.npy")
        let symbols = try NPY.load("\(name).symbols.npy")
        let decompressed = try NPY.load("\(name).decompressed.npy")
        #expect(input.shape == shape && symbols.shape == shape && decompressed.shape == shape)
        let strings = try (0..<shape[0]).map { try Fixtures.bytes("compressai/\(name).string\($0).bin") }
        let latent = Tensor(shape: shape, scalars: input.floats)

        // Quantisation: round half to even of (y - median).
        #expect(try eb.quantize(latent) == symbols.ints)

        // Encode: identical bytes, one string per sample, from the fast and the reference coder.
        let compressed = try eb.compress(latent)
        #expect(compressed.count == shape[0])
        for k in 0..<shape[0] { #expect(compressed[k] == strings[k], "sample \(k): \(compressed[k].count) vs \(strings[k].count) bytes") }
        let plane = shape[2] * shape[3]
        let perSample = 24 * plane
        let indexes = (0..<perSample).map { Int32($0 / plane) }
        for k in 0..<shape[0] {
            let sampleSymbols = Array(symbols.ints[(k * perSample)..<((k + 1) * perSample)])
            #expect(try RANSEncoderReference(tables: eb.tables).encode(sampleSymbols, indexes: indexes) == strings[k])
            #expect(try eb.tables.encode(sampleSymbols, planeSize: plane) == strings[k])
            #expect(try RANSDecoderReference(tables: eb.tables).decode(strings[k], indexes: indexes) == sampleSymbols)
            #expect(try eb.tables.decode(strings[k], planeSize: plane) == sampleSymbols)
        }

        // Decode: the same Float32 bits as CompressAI's decompress (symbol + median).
        let decoded = try eb.decompress(strings, height: shape[2], width: shape[3])
        #expect(decoded.shape == shape)
        #expect(decoded.scalars.map(\.bitPattern) == decompressed.floats.map(\.bitPattern))
        #expect(try eb.dequantize(symbols.ints, shape: shape).scalars.map(\.bitPattern) == decompressed.floats.map(\.bitPattern))

        let latentValue = try eb.compressLatent(latent)
        #expect(latentValue.shape == shape)
        #expect(latentValue.byteCount == strings.reduce(0) { $0 + $1.count })
        #expect(try eb.decompress(latentValue) == decoded)
    }

    @Test func mainVectorSizeAndEscapes() throws {
        let eb = try CompressAIVectors.bottleneck()
        let input = try NPY.load("main_1x24x26x26.input.npy")
        let symbols = try eb.quantize(Tensor(shape: input.shape, scalars: input.floats))
        let escapes = symbols.enumerated().filter { i, s in
            let c = (i / 676) % 24
            let v = s - eb.tables.offsets[c]
            return v < 0 || v >= eb.tables.escapeIndex(c)
        }.count
        #expect(escapes == 57)   // manifest: 57 escapes, payloads up to 7 nibbles
        #expect(try eb.compress(Tensor(shape: input.shape, scalars: input.floats))[0].count == 8636)
    }

    @Test func pmfToQuantizedCDFMatchesCompressAI() throws {
        let data = Data(try Fixtures.bytes("compressai/pmf_to_quantized_cdf_cases.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let cases = json["cases"] as! [[String: Any]]
        #expect(cases.count == 60)
        for (k, item) in cases.enumerated() {
            let pmf = (item["pmf_float32"] as! [NSNumber]).map { Float($0.doubleValue) }
            let expected = (item["cdf"] as! [NSNumber]).map { $0.uint32Value }
            #expect(try EntropyTables.pmfToQuantizedCDF(pmf) == expected, "case \(k)")
        }
    }

    @Test func rebuiltTablesEqualTheStoredTables() throws {
        let scope = WeightScope(file: try CompressAIVectors.state())
        let rebuilt = try EntropyBottleneck(rebuildingTablesFrom: scope)
        let stored = try CompressAIVectors.bottleneck()
        #expect(rebuilt.medians == stored.medians)
        #expect(rebuilt.tables.offsets == stored.tables.offsets)
        #expect(rebuilt.tables.cdfLengths == stored.tables.cdfLengths)
        for c in 0..<24 {
            let diff = zip(rebuilt.tables.cdfs[c], stored.tables.cdfs[c]).filter { $0 != $1 }.count
            #expect(diff == 0, "channel \(c): \(diff) entries differ")
        }
    }

    @Test func emptyTablesAreAClearErrorAndCanBeRebuilt() throws {
        let file = try CompressAIVectors.state()
        var writer = SafeTensorsWriter()
        for name in file.names {
            let entry = try file.entry(name)
            if ["_offset", "_cdf_length", "_quantized_cdf"].contains(name) {
                writer.add("eb." + name, int32: [], shape: [0])
            } else {
                writer.add("eb." + name, dtype: entry.dtype, shape: entry.shape, bytes: try file.rawBytes(name))
            }
        }
        let scope = WeightScope(file: try SafeTensorsFile(data: writer.serialized())).scope("eb")
        #expect(!EntropyBottleneck.hasStoredTables(scope))
        do {
            _ = try EntropyBottleneck(weights: scope)
            Issue.record("empty tables were accepted")
        } catch {
            guard case .entropy(.tablesNotBuilt(let tensor)) = error else { Issue.record("wrong error \(error)"); return }
            #expect(tensor == "eb._offset")
            #expect(error.description.contains("update()") && error.description.contains("rebuildingTablesFrom"))
        }
        let rebuilt = try EntropyBottleneck(rebuildingTablesFrom: scope)
        #expect(rebuilt.tables.cdfs == (try CompressAIVectors.bottleneck()).tables.cdfs, "rebuilt table differs")
    }
}
