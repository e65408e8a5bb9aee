// The fast rANS coder against the plain reference on random tables and odd shapes; table validation; edge cases.
import Testing
import LadonTestSupport
@testable import LadonCore

/// Random but valid coding tables and symbols for property tests.
enum RandomEntropy {
    /// A table set with `channels` rows of mixed lengths (3 ... ~300), zero-padded to a common width.
    static func tables(channels: Int, using rng: inout SplitMix64) throws -> EntropyTables {
        var offsets: [Int32] = [], lengths: [Int32] = [], rows: [[Int32]] = []
        for _ in 0..<channels {
            let inRange = [1, 1, 2, 5, 17, 60, 150, 298][Int(rng.next() % 8)]
            var pmf: [Float] = (0..<inRange).map { _ in
                rng.next() % 5 == 0 ? 0 : Float.random(in: 0...1, using: &rng) * Float.random(in: 0...1, using: &rng)
            }
            pmf[Int(rng.next() % UInt64(inRange))] += 0.5   // at least one non-zero bin
            pmf.append(rng.next() % 3 == 0 ? 0 : Float.random(in: 0...0.01, using: &rng))   // tail mass
            let cdf = try EntropyTables.pmfToQuantizedCDF(pmf)
            offsets.append(-Int32(rng.next() % UInt64(inRange + 3)) + Int32(rng.next() % 3))
            lengths.append(Int32(cdf.count))
            rows.append(cdf.map { Int32($0) })
        }
        let width = rows.map(\.count).max()! + Int(rng.next() % 3)
        rows = rows.map { $0 + [Int32](repeating: 0, count: width - $0.count) }
        return try EntropyTables(offsets: offsets, cdfLengths: lengths, cdfs: rows)
    }

    /// Symbols for one sample: mostly in range, some escapes of every payload length, some codable extremes.
    static func symbols(_ tables: EntropyTables, planeSize: Int, using rng: inout SplitMix64) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(tables.channels * planeSize)
        for c in 0..<tables.channels {
            let offset = tables.offsets[c], escape = tables.escapeIndex(c)
            let codable = tables.codableSymbols(c)
            for _ in 0..<planeSize {
                switch rng.next() % 40 {
                case 0: out.append(Bool.random(using: &rng) ? codable.lowerBound : codable.upperBound)
                case 1, 2:
                    let nibbles = Int(rng.next() % 8)   // raw payload of 0...7 nibbles
                    let raw = nibbles == 0 ? 0 : Int32.random(in: (1 << (4 * (nibbles - 1)))..<(1 << (4 * nibbles)), using: &rng)
                    out.append(raw & 1 != 0 ? offset - 1 - (raw >> 1) : offset + escape + (raw >> 1))
                case 3: out.append(offset + escape)   // escape with raw 0
                default: out.append(offset + Int32.random(in: 0..<escape, using: &rng))
                }
            }
        }
        return out
    }

    static func indexes(channels: Int, planeSize: Int) -> [Int32] {
        (0..<(channels * planeSize)).map { Int32($0 / planeSize) }
    }
}

@Suite struct RANSCoderTests {
    @Test func fastCoderMatchesReferenceOnRandomTablesAndOddShapes() throws {
        var rng = SplitMix64(seed: 0x5EED_0001)
        for trial in 0..<150 {
            let channels = 1 + Int(rng.next() % 5)
            let tables = try RandomEntropy.tables(channels: channels, using: &rng)
            let plane = [0, 1, 2, 3, 5, 7, 31, 64, 97, 211][trial % 10]
            let symbols = RandomEntropy.symbols(tables, planeSize: plane, using: &rng)
            let indexes = RandomEntropy.indexes(channels: channels, planeSize: plane)
            let reference = try RANSEncoderReference(tables: tables).encode(symbols, indexes: indexes)
            let fast = try tables.encode(symbols, planeSize: plane)
            #expect(fast == reference, "trial \(trial): \(channels)×\(plane)")
            #expect(try tables.decode(fast, planeSize: plane) == symbols, "trial \(trial)")
            #expect(try RANSDecoderReference(tables: tables).decode(fast, indexes: indexes) == symbols, "trial \(trial)")
        }
    }

    @Test func reciprocalEncoderEqualsDivisionForEveryFrequency() {
        // Rans64EncSymbol's reciprocal must give exactly ((x / f) << 16) + x % f + start on every state the
        // encoder can meet after renormalisation: [2^31 or f·2^15, f·2^47).
        var rng = SplitMix64(seed: 7)
        var mismatches = 0
        for freq in UInt32(1)...65535 {
            let start = UInt32(rng.next() % UInt64(65537 - freq))
            let symbol = RANSEncSymbol(start: start, freq: freq)
            let low = min(UInt64(1) << 31, UInt64(freq) << 15), high = (UInt64(freq) << 47) - 1
            for x in [low, low + 1, high, high - 1, UInt64.random(in: low...high, using: &rng), UInt64.random(in: low...high, using: &rng)] {
                let expected = ((x / UInt64(freq)) << 16) + x % UInt64(freq) + UInt64(start)
                let q = x.multipliedFullWidth(by: symbol.rcpFreq).high >> UInt64(symbol.rcpShift)
                let fast = x &+ UInt64(symbol.bias) &+ q &* UInt64(symbol.cmplFreq)
                if fast != expected { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func everyBypassLengthRoundTrips() throws {
        let tables = try EntropyTables(offsets: [-2], cdfLengths: [5], cdfs: [[0, 20000, 40000, 60000, 65536]])
        let escape: Int32 = 3
        var symbols: [Int32] = [-2, -1, 0, -2 + escape]   // in range, then the raw-0 escape
        for nibbles in 1...7 {
            let raw = Int32(1) << (4 * nibbles - 1)   // highest bit of the top nibble
            symbols.append(-2 - 1 - (raw >> 1))        // odd raw: below the range
            symbols.append(-2 + escape + (raw >> 1))   // even raw: above the range
        }
        let codable = tables.codableSymbols(0)
        symbols += [codable.lowerBound, codable.upperBound]
        let indexes = [Int32](repeating: 0, count: symbols.count)
        let bytes = try tables.encode(symbols, planeSize: symbols.count)
        #expect(bytes == (try RANSEncoderReference(tables: tables).encode(symbols, indexes: indexes)))
        #expect(try tables.decode(bytes, planeSize: symbols.count) == symbols)
    }

    @Test func emptyAndSingleSymbolLatents() throws {
        var rng = SplitMix64(seed: 3)
        let tables = try RandomEntropy.tables(channels: 1, using: &rng)
        #expect(try tables.encode([], planeSize: 0) == RANSConstants.emptyStream)
        #expect(RANSConstants.emptyStream == [0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00])
        #expect(try tables.decode(RANSConstants.emptyStream, planeSize: 0) == [])
        #expect(try RANSDecoderReference(tables: tables).decode(RANSConstants.emptyStream, indexes: []) == [])
        for symbol in [tables.offsets[0], tables.offsets[0] + tables.escapeIndex(0), tables.offsets[0] - 1000] {
            let bytes = try tables.encode([symbol], planeSize: 1)
            #expect(bytes == (try RANSEncoderReference(tables: tables).encode([symbol], indexes: [0])))
            #expect(bytes.count >= 8 && bytes.count % 4 == 0)
            #expect(try tables.decode(bytes, planeSize: 1) == [symbol])
        }

        let eb = try EntropyBottleneck(medians: [0.5], tables: tables)
        #expect(try eb.compress(Tensor(shape: [1, 1, 0, 4])) == [RANSConstants.emptyStream])
        #expect(try eb.compress(Tensor(shape: [0, 1, 3, 3])) == [])
        #expect(try eb.decompress([], height: 3, width: 3).shape == [0, 1, 3, 3])
        #expect(try eb.decompress([RANSConstants.emptyStream], height: 0, width: 7).shape == [1, 1, 0, 7])
        let one = Tensor(shape: [1, 1, 1, 1], scalars: [2.5])
        let strings = try eb.compress(one)
        #expect(try eb.decompress(strings, height: 1, width: 1).scalars == [Float(2) + 0.5])   // 2.0 rounds to 2
    }

    @Test func symbolsOutsideTheCodableRangeAreRejected() throws {
        let tables = try EntropyTables(offsets: [-1], cdfLengths: [4], cdfs: [[0, 30000, 60000, 65536]])
        let codable = tables.codableSymbols(0)
        #expect(codable.lowerBound == Int32(-1 - (1 << 27)) && codable.upperBound == Int32(-1 + 2 + (1 << 27) - 1))
        for bad in [codable.lowerBound - 1, codable.upperBound + 1, Int32.min, Int32.max] {
            #expect(throws: LadonError.self) { try tables.encode([bad], planeSize: 1) }
            #expect(throws: LadonError.self) { try RANSEncoderReference(tables: tables).encode([bad], indexes: [0]) }
        }
        #expect(throws: LadonError.self) { try RANSEncoderReference(tables: tables).encode([0], indexes: [1]) }
        #expect(throws: LadonError.self) { try tables.encode([0, 0, 0], planeSize: 2) }
    }

    @Test func invalidTablesAreRejectedAtLoad() {
        let good: [Int32] = [0, 100, 65536]
        func check(_ offsets: [Int32], _ lengths: [Int32], _ rows: [[Int32]], _ label: String) {
            #expect(throws: LadonError.self, "\(label)") { try EntropyTables(offsets: offsets, cdfLengths: lengths, cdfs: rows) }
        }
        check([], [], [], "no channels")
        check([0, 0], [3], [good, good], "count mismatch")
        check([0], [2], [[0, 65536]], "length < 3")
        check([0], [4], [good], "length > row width")
        check([0], [3], [[1, 100, 65536]], "cdf[0] != 0")
        check([0], [3], [[0, 100, 65535]], "last != 65536")
        check([0], [4], [[0, 100, 100, 65536]], "flat interval")
        check([0], [4], [[0, 200, 100, 65536]], "decreasing")
        check([0], [3], [[0, 70000, 65536]], "above 65536")
        check([0], [3], [[0, -5, 65536]], "negative")
        check([Int32(1) << 25], [3], [good], "offset too large")
        check([Int32.min], [3], [good], "offset Int32.min")
        #expect(throws: LadonError.self) { try EntropyBottleneck(medians: [.nan], offsets: [0], cdfLengths: [3], cdfs: [good]) }
        #expect(throws: LadonError.self) { try EntropyBottleneck(medians: [0, 0], offsets: [0], cdfLengths: [3], cdfs: [good]) }
        // Padding after cdf_length is ignored, as in CompressAI.
        #expect(throws: Never.self) { try EntropyTables(offsets: [0], cdfLengths: [3], cdfs: [good + [0, 0, 7]]) }
    }

    @Test func pmfToQuantizedCDFRejectsBadInput() {
        for pmf: [Float] in [[], [0, 0], [-0.1, 1], [.nan, 1], [.infinity, 1], [1e10, 1]] {
            #expect(throws: LadonError.self, "\(pmf)") { try EntropyTables.pmfToQuantizedCDF(pmf) }
        }
        #expect(throws: LadonError.self) { try EntropyTables.pmfToQuantizedCDF([1], precision: 0) }
        // Every interval non-empty, even for zero bins.
        let cdf = try? EntropyTables.pmfToQuantizedCDF([0, 1, 0, 0, 1e-9])
        #expect(cdf == [0, 1, 65533, 65534, 65535, 65536])
    }
}
