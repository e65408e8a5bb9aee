// Hardening: non-finite and extreme latents, and damaged, foreign or mis-shaped byte strings.
import Testing
import LadonTestSupport
@testable import LadonCore
import CLadonKernels

@Suite struct EntropyHardeningTests {
    static func mainVector() throws -> (EntropyBottleneck, Tensor, [UInt8]) {
        let eb = try CompressAIVectors.bottleneck()
        let input = try NPY.load("main_1x24x26x26.input.npy")
        return (eb, Tensor(shape: input.shape, scalars: input.floats), try Fixtures.bytes("compressai/main_1x24x26x26.string0.bin"))
    }

    func expectEntropyError(_ body: () throws -> Any, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try body()
            Issue.record("\(label): accepted", sourceLocation: sourceLocation)
        } catch let error as LadonError {
            guard case .entropy = error else { Issue.record("\(label): \(error)", sourceLocation: sourceLocation); return }
        } catch {
            Issue.record("\(label): untyped \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func nonFiniteLatentsAreRejectedWithTheirPosition() throws {
        let (eb, latent, _) = try Self.mainVector()
        for bad in [Float.nan, .infinity, -.infinity, Float(bitPattern: 0x7FC0_0001)] {
            var x = latent
            x[0, 5, 7, 9] = bad
            do {
                _ = try eb.compress(x)
                Issue.record("\(bad) accepted by compress")
            } catch {
                guard case .invalidInput(.nonFiniteLatent(let index)) = error else { Issue.record("\(error)"); continue }
                #expect(index == [0, 5, 7, 9])
                #expect(error.description.contains("[0, 5, 7, 9]"), "\(error)")
            }
            #expect(throws: LadonError.invalidInput(.nonFiniteLatent(index: [0, 5, 7, 9]))) {
                try eb.quantize(x)
            }
        }
    }

    @Test func extremeFiniteValuesAreClampedToTheCodableRange() throws {
        let (eb, _, _) = try Self.mainVector()
        let extremes: [Float] = [1e30, -1e30, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 3e9, -3e9,
                                 1.34e8, -1.34e8, 1.3e8, -1.3e8, 2.5, -2.5, 0, -0.0, .leastNonzeroMagnitude]
        let c = 3
        var x = Tensor(shape: [1, 24, 1, extremes.count])
        for (i, v) in extremes.enumerated() { x[0, c, 0, i] = v }
        let symbols = try eb.quantize(x)
        let codable = eb.tables.codableSymbols(c)
        let median = eb.medians[c]
        for (i, v) in extremes.enumerated() {
            let s = symbols[c * extremes.count + i]
            #expect(codable.contains(s))
            let exact = Double((v - median).rounded(.toNearestOrEven))
            let expected = min(max(exact, Double(codable.lowerBound)), Double(codable.upperBound))
            #expect(Double(s) == expected, "\(v) -> \(s)")
        }
        let strings = try eb.compress(x)
        let indexes = RandomEntropy.indexes(channels: 24, planeSize: extremes.count)
        #expect(strings[0] == (try RANSEncoderReference(tables: eb.tables).encode(symbols, indexes: indexes)))
        let decoded = try eb.decompress(strings, height: 1, width: extremes.count)
        #expect(decoded == (try eb.dequantize(symbols, shape: x.shape)))
    }

    /// The vectorised C quantiser, at every CPU level this machine runs (baseline, AVX2, AVX-512), against the plain
    /// Swift loop beside it: ties, clamps, signed zeros and subnormals, on odd plane sizes (vector tails).
    @Test func quantizeKernelMatchesTheReferenceAtEveryLevel() throws {
        let (eb, _, _) = try Self.mainVector()
        var random = SplitMix64(seed: 11)
        let special: [Float] = [0.5, -0.5, 1.5, -1.5, 2.5, 1e30, -1e30, .greatestFiniteMagnitude, 3e9, -3e9, 1.34e8,
                                -1.34e8, 0, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 8388607.5, -8388609]
        for width in [1, 7, 8, 15, 16, 17, 33, 103] {
            var x = Tensor(shape: [2, 24, 3, width])
            for i in 0..<x.count {
                x.scalars[i] = i % 5 == 0 ? special[i % special.count] : Float.random(in: -40...40, using: &random).rounded() / 2
            }
            let plane = 3 * width
            for sample in 0..<2 {
                for c in 0..<24 {
                    var expected = [Int32](repeating: 0, count: plane)
                    let expectedEscapes = expected.withUnsafeMutableBufferPointer {
                        eb.quantizeReference(x, sample: sample, channel: c, into: $0.baseAddress!)
                    }
                    let (escape, values) = (eb.tables.escapeIndex(c), eb.tables.codableValues(c))
                    for level: Int32 in [1, 2, 3] {
                        var got = [Int32](repeating: -7, count: plane)
                        var nonFinite = true
                        let escapes = got.withUnsafeMutableBufferPointer { out in
                            x.withUnsafeBufferPointer { src in
                                cladon_quantize_plane(level, out.baseAddress!, src.baseAddress! + (sample * 24 + c) * plane,
                                                      plane, eb.medians[c], eb.tables.offsets[c],
                                                      values.lowerBound, values.upperBound, UInt32(escape), &nonFinite)
                            }
                        }
                        #expect(got == expected, "width \(width), sample \(sample), channel \(c), level \(level)")
                        #expect(escapes == expectedEscapes && !nonFinite, "width \(width), channel \(c), level \(level)")
                    }
                }
            }
        }
        // A NaN or infinity anywhere in a plane, including its vector tail, is reported.
        for position in [0, 5, 16, 30] {
            var x = Tensor(shape: [1, 24, 1, 31])
            x[0, 0, 0, position] = .nan
            for level: Int32 in [1, 2, 3] {
                var out = [Int32](repeating: 0, count: 31)
                var nonFinite = false
                _ = x.withUnsafeBufferPointer { src in
                    cladon_quantize_plane(level, &out, src.baseAddress!, 31, 0, 0, -5, 5, 3, &nonFinite)
                }
                #expect(nonFinite, "NaN at \(position), level \(level)")
            }
        }
    }

    @Test func malformedLengthsAndStatesAreTypedErrors() throws {
        let (eb, _, bytes) = try Self.mainVector()
        for length in [0, 1, 4, 7, 9, 10, 11] {
            expectEntropyError({ try eb.decompress([Array(bytes.prefix(length))], height: 26, width: 26) }, "length \(length)")
        }
        expectEntropyError({ try eb.decompress([bytes + [0]], height: 26, width: 26) }, "one extra byte")
        expectEntropyError({ try eb.decompress([bytes + [1, 2, 3, 4]], height: 26, width: 26) }, "trailing word")
        expectEntropyError({ try eb.decompress([bytes + bytes], height: 26, width: 26) }, "doubled")
        expectEntropyError({ try eb.decompress([Array(bytes.dropLast(4))], height: 26, width: 26) }, "truncated by a word")
        expectEntropyError({ try eb.decompress([Array(bytes.prefix(bytes.count / 2))], height: 26, width: 26) }, "truncated by half")
        var low = bytes
        low[3] = 0x7F; low[4] = 0; low[5] = 0; low[6] = 0; low[7] = 0   // state < 2^31
        expectEntropyError({ try eb.decompress([low], height: 26, width: 26) }, "state below 2^31")
        var high = bytes
        high[7] = 0x80   // state >= 2^63
        expectEntropyError({ try eb.decompress([high], height: 26, width: 26) }, "state above 2^63")
        expectEntropyError({ try eb.decompress([RANSConstants.emptyStream], height: 1, width: 1) }, "empty stream for 24 symbols")
    }

    @Test func wrongShapeOrTablesAreDetected() throws {
        let (eb, _, bytes) = try Self.mainVector()
        for (h, w) in [(26, 25), (25, 26), (27, 26), (1, 26), (26 * 26, 1 + 1), (13, 52 + 1)] {
            expectEntropyError({ try eb.decompress([bytes], height: h, width: w) }, "shape \(h)×\(w)")
        }
        // 13×52 has the same element count: the symbols come back (same order), only the shape differs.
        #expect(try eb.decompress([bytes], height: 13, width: 52).scalars == (try eb.decompress([bytes], height: 26, width: 26)).scalars)
        // The same stream against other tables: the rebuilt tables of a reshuffled model.
        var rng = SplitMix64(seed: 11)
        let other = try EntropyBottleneck(medians: eb.medians, tables: RandomEntropy.tables(channels: 24, using: &rng))
        expectEntropyError({ try other.decompress([bytes], height: 26, width: 26) }, "random tables")
        let reversed = try EntropyBottleneck(medians: eb.medians.reversed(), offsets: eb.tables.offsets.reversed(),
                                             cdfLengths: eb.tables.cdfLengths.reversed(),
                                             cdfs: eb.tables.cdfs.reversed().map { $0.map { Int32($0) } })
        expectEntropyError({ try reversed.decompress([bytes], height: 26, width: 26) }, "channels reversed")
        // Too few channels for the stream.
        let first = try EntropyBottleneck(medians: [eb.medians[0]], offsets: [eb.tables.offsets[0]],
                                          cdfLengths: [eb.tables.cdfLengths[0]], cdfs: [eb.tables.cdfs[0].map { Int32($0) }])
        expectEntropyError({ try first.decompress([bytes], height: 26, width: 26) }, "one channel")
        #expect(throws: LadonError.self) { try eb.decompress(CompressedLatent(strings: [bytes], channels: 1, height: 26, width: 26)) }
        #expect(throws: LadonError.self) { try eb.compress(Tensor(shape: [1, 23, 2, 2])) }
        #expect(throws: LadonError.self) { try eb.compress(Tensor(shape: [24, 2, 2])) }
    }

    @Test func absurdSizesFailBeforeAllocating() throws {
        let (eb, _, bytes) = try Self.mainVector()
        expectEntropyError({ try eb.decompress([bytes], height: 1 << 20, width: 1 << 20) }, "2^40 per channel")
        expectEntropyError({ try eb.decompress([bytes], height: Int.max, width: 2) }, "overflow")
        expectEntropyError({ try eb.decompress([bytes], height: -1, width: 26) }, "negative")
        expectEntropyError({ try eb.tables.decode(bytes, planeSize: -5) }, "negative plane")
        expectEntropyError({ try eb.tables.decode(bytes, planeSize: Int.max / 2) }, "huge plane")
    }

    /// Flips single bits; each result must be rejected, or be the canonical stream of what it decodes to (bits
    /// inside an escape's bypass payload are raw, so flipping them yields another valid value). Fast and reference
    /// decoders must agree.
    static func flipBits(_ bytes: [UInt8], _ bits: [Int], tables: EntropyTables, planeSize: Int) -> (rejected: Int, accepted: Int) {
        var rejected = 0, accepted = 0
        let indexes = RandomEntropy.indexes(channels: tables.channels, planeSize: planeSize)
        for bit in bits {
            var flipped = bytes
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            let fast = try? tables.decode(flipped, planeSize: planeSize)
            #expect(fast == (try? RANSDecoderReference(tables: tables).decode(flipped, indexes: indexes)), "bit \(bit)")
            if let fast {
                #expect((try? tables.encode(fast, planeSize: planeSize)) == flipped, "bit \(bit)")
                accepted += 1
            } else {
                rejected += 1
            }
        }
        return (rejected, accepted)
    }

    @Test func singleBitFlipsAreErrorsOrCanonicalStreams() throws {
        let eb = try CompressAIVectors.bottleneck()
        // The tiny vector is mostly escapes: many of its bits are raw bypass payload.
        let tiny = try Fixtures.bytes("compressai/tiny_1x24x1x1.string0.bin")
        let all = Self.flipBits(tiny, Array(0..<(8 * tiny.count)), tables: eb.tables, planeSize: 1)
        #expect(all.rejected + all.accepted == 8 * tiny.count && all.rejected > 8 * tiny.count / 2)
        // The main vector is ordinary rANS data: almost every flip breaks the final-state check.
        let main = try Fixtures.bytes("compressai/main_1x24x26x26.string0.bin")
        var rng = SplitMix64(seed: 99)
        let bits = (0..<100).map { _ in Int(rng.next() % UInt64(8 * main.count)) }
        let sampled = Self.flipBits(main, bits, tables: eb.tables, planeSize: 26 * 26)
        print("bit flips: tiny \(all.rejected) rejected / \(all.accepted) canonical; main \(sampled.rejected) / \(sampled.accepted)")
        #expect(sampled.rejected >= 94)
    }
}
