// Seeded fuzzing of the decoder and the latent path: any input gives the right answer or a typed error.
//
// The default run is bounded (a few seconds). For a longer run:
//   LADON_FUZZ_ITERATIONS=2000000 swift test -c release --filter EntropyFuzzTests
// (LADON_FUZZ_SEED picks another seed.)
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct EntropyFuzzTests {
    static var iterations: Int {
        ProcessInfo.processInfo.environment["LADON_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 3000
    }
    static var seed: UInt64 {
        ProcessInfo.processInfo.environment["LADON_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0xF0CA_CC1A
    }

    enum Mutation: CaseIterable { case none, flipBits, truncate, append, randomBytes, overwriteWord, splice, otherShape, otherTables }

    /// Decodes `bytes` with the fast and the reference decoder. Both must agree; an accepted stream must be
    /// exactly what the encoder writes for the decoded symbols.
    static func check(_ bytes: [UInt8], tables: EntropyTables, planeSize: Int) -> (accepted: Bool, symbols: [Int32]?) {
        var fast: [Int32]?
        do {
            fast = try tables.decode(bytes, planeSize: planeSize)
        } catch {
            guard case .entropy = error else {
                Issue.record("non-entropy error \(error)")
                return (false, nil)
            }
        }
        let indexes = RandomEntropy.indexes(channels: tables.channels, planeSize: planeSize)
        let reference = try? RANSDecoderReference(tables: tables).decode(bytes, indexes: indexes)
        #expect(fast == reference, "fast and reference decoders disagree on \(bytes.count) bytes")
        if let fast {
            #expect((try? tables.encode(fast, planeSize: planeSize)) == bytes, "accepted a non-canonical stream")
        }
        return (fast != nil, fast)
    }

    @Test func decoderGivesTheRightAnswerOrATypedError() throws {
        var rng = SplitMix64(seed: Self.seed)
        let pool = try (0..<8).map { _ in try RandomEntropy.tables(channels: 1 + Int(rng.next() % 4), using: &rng) }
        var counts: [String: (tried: Int, accepted: Int)] = [:]
        let started = Date()
        for _ in 0..<Self.iterations {
            let tables = pool[Int(rng.next() % UInt64(pool.count))]
            let plane = Int(rng.next() % 40)
            let symbols = RandomEntropy.symbols(tables, planeSize: plane, using: &rng)
            let bytes = try tables.encode(symbols, planeSize: plane)
            let mutation = Mutation.allCases[Int(rng.next() % UInt64(Mutation.allCases.count))]
            var input = bytes, decodeTables = tables, decodePlane = plane
            switch mutation {
            case .none: break
            case .flipBits:
                for _ in 0...(rng.next() % 3) {
                    let bit = Int(rng.next() % UInt64(8 * input.count))
                    input[bit / 8] ^= 1 << UInt8(bit % 8)
                }
            case .truncate: input = Array(input.prefix(Int(rng.next() % UInt64(input.count))))
            case .append: input += (0..<(1 + rng.next() % 9)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case .randomBytes: input = (0..<(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case .overwriteWord:
                let w = Int(rng.next() % UInt64(input.count / 4))
                for k in 0..<4 { input[4 * w + k] = UInt8(truncatingIfNeeded: rng.next()) }
            case .splice:
                let other = try tables.encode(RandomEntropy.symbols(tables, planeSize: plane, using: &rng), planeSize: plane)
                input = Array(input.prefix(4 * Int(rng.next() % UInt64(input.count / 4 + 1)))) + other.suffix(4 * Int(rng.next() % UInt64(other.count / 4 + 1)))
            case .otherShape: decodePlane = max(0, plane + Int(rng.next() % 5) - 2)
            case .otherTables: decodeTables = pool[Int(rng.next() % UInt64(pool.count))]
            }
            let (accepted, decoded) = Self.check(input, tables: decodeTables, planeSize: decodePlane)
            if mutation == .none { #expect(decoded == symbols) }
            if input == bytes && decodeTables == tables && decodePlane == plane { #expect(decoded == symbols) }
            let key = "\(mutation)"
            counts[key, default: (0, 0)].tried += 1
            if accepted { counts[key, default: (0, 0)].accepted += 1 }
        }
        let total = counts.values.reduce(0) { $0 + $1.tried }
        #expect(total == Self.iterations)
        let summary = counts.keys.sorted().map { "\($0) \(counts[$0]!.tried)/\(counts[$0]!.accepted) ok" }.joined(separator: ", ")
        print("entropy fuzz: \(total) inputs in \(String(format: "%.1f", Date().timeIntervalSince(started))) s, seed \(Self.seed): \(summary)")
    }

    @Test func latentPathRoundTripsOrRejects() throws {
        var rng = SplitMix64(seed: Self.seed ^ 0xA5A5)
        let eb = try CompressAIVectors.bottleneck()
        let specials: [Float] = [.nan, .infinity, -.infinity, 1e30, -1e30, 3e9, -1.4e8, 0.5, -0.5, 1.5, 2.5]
        for _ in 0..<max(20, Self.iterations / 100) {
            let shape = [1 + Int(rng.next() % 2), 24, Int(rng.next() % 4), Int(rng.next() % 5)]
            var x = Tensor.random(shape, in: -20...20, using: &rng)
            var nonFinite = false
            for _ in 0..<(rng.next() % 3) where x.count > 0 {
                let v = specials[Int(rng.next() % UInt64(specials.count))]
                x.scalars[Int(rng.next() % UInt64(x.count))] = v
            }
            nonFinite = x.scalars.contains { !$0.isFinite }
            do {
                let strings = try eb.compress(x)
                #expect(!nonFinite)
                let back = try eb.decompress(strings, height: shape[2], width: shape[3])
                #expect(back == (try eb.dequantize(eb.quantize(x), shape: shape)))
            } catch {
                guard case .invalidInput = error else { Issue.record("\(error)"); continue }
                #expect(nonFinite)
            }
        }
    }
}
