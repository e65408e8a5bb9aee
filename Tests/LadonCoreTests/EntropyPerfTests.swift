// Throughput of the entropy coder on a Ladon-sized latent (1×24×103×103). Prints figures; asserts no timings.
//
//   swift test -c release --filter EntropyPerf
//
// Scripts/compressai_vectors/bench_compressai.py times CompressAI on the same latent (same generator, same
// tables) and prints the same checksum, so the two can be compared line by line.
import Foundation
import LadonTestSupport
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite(.enabled(if: PerfGate.enabled, Comment(rawValue: PerfGate.reason)))
struct EntropyPerfTests {
    init() { PerfGate.announce() }

    /// Gaussian latent around each channel's median, σ = (quantile range) / 40 (≈ 3.3 bits/symbol with the vector
    /// model, like make_vectors.py's benchmark). SplitMix64 + Box–Muller in Double, so Python can rebuild it.
    static func latent(_ eb: EntropyBottleneck, quantiles: Tensor, height: Int, width: Int, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        var x = Tensor(shape: [1, eb.channels, height, width])
        let plane = height * width
        for c in 0..<eb.channels {
            let low = quantiles.scalars[3 * c], median = quantiles.scalars[3 * c + 1], high = quantiles.scalars[3 * c + 2]
            let sigma = ((median - low) + (high - median)) / 40
            for i in 0..<plane {
                let u1 = Double(rng.next() >> 11) * 0x1p-53, u2 = Double(rng.next() >> 11) * 0x1p-53
                let z = (-2 * log(1 - u1)).squareRoot() * cos(2 * Double.pi * u2)
                x.scalars[c * plane + i] = Float(z) * sigma + median
            }
        }
        return x
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }

    /// Median wall time of `runs` calls, in seconds, after `warmup` calls.
    static func median(runs: Int, warmup: Int = 3, _ body: () throws -> Void) rethrows -> Double {
        for _ in 0..<warmup { try body() }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        }
        return times.sorted()[runs / 2]
    }

    static func line(_ label: String, symbols: Int, bytes: Int, seconds: Double) -> String {
        String(format: "%@ %8.3f ms  %7.1f Msym/s  %6.1f MB/s", label.padding(toLength: 30, withPad: " ", startingAt: 0),
               seconds * 1e3, Double(symbols) / seconds / 1e6, Double(bytes) / seconds / 1e6)
    }

    @Test func coderThroughput() throws {
        let file = try CompressAIVectors.state()
        let eb = try EntropyBottleneck(weights: WeightScope(file: file))
        let quantiles = try file.tensor("quantiles")
        let (h, w) = (103, 103)
        let x = Self.latent(eb, quantiles: quantiles, height: h, width: w, seed: 20240601)
        let n = x.count
        let strings = try eb.compress(x)
        let bytes = strings[0].count
        let symbols = try eb.quantize(x)
        let indexes = RandomEntropy.indexes(channels: eb.channels, planeSize: h * w)
        #expect(try RANSEncoderReference(tables: eb.tables).encode(symbols, indexes: indexes) == strings[0])
        #expect(try eb.decompress(strings, height: h, width: w) == (try eb.dequantize(symbols, shape: x.shape)))

        var lines = ["entropy coder, latent 1x24x\(h)x\(w): \(n) symbols -> \(bytes) bytes, "
                     + String(format: "%.3f bits/symbol", 8 * Double(bytes) / Double(n))
                     + String(format: ", fnv1a %016llx", Self.fnv1a(strings[0]))]
        let runs = 41
        var sink = 0
        let compress = try Self.median(runs: runs) { sink &+= try eb.compress(x)[0].count }
        let decompress = try Self.median(runs: runs) { sink &+= try eb.decompress(strings, height: h, width: w).count }
        let encode = try Self.median(runs: runs) { sink &+= try eb.tables.encode(symbols, planeSize: h * w).count }
        let decode = try Self.median(runs: runs) { sink &+= try eb.tables.decode(strings[0], planeSize: h * w).count }
        let quantize = try Self.median(runs: runs) { sink &+= try eb.quantize(x).count }
        let referenceEncode = try Self.median(runs: 5, warmup: 1) { sink &+= try RANSEncoderReference(tables: eb.tables).encode(symbols, indexes: indexes).count }
        let referenceDecode = try Self.median(runs: 5, warmup: 1) { sink &+= try RANSDecoderReference(tables: eb.tables).decode(strings[0], indexes: indexes).count }
        lines.append(Self.line("compress (quantize+encode)", symbols: n, bytes: bytes, seconds: compress))
        lines.append(Self.line("decompress (decode+dequant)", symbols: n, bytes: bytes, seconds: decompress))
        lines.append(Self.line("encode symbols (fast)", symbols: n, bytes: bytes, seconds: encode))
        lines.append(Self.line("decode symbols (fast)", symbols: n, bytes: bytes, seconds: decode))
        lines.append(Self.line("quantize only", symbols: n, bytes: bytes, seconds: quantize))
        lines.append(Self.line("encode symbols (reference)", symbols: n, bytes: bytes, seconds: referenceEncode))
        lines.append(Self.line("decode symbols (reference)", symbols: n, bytes: bytes, seconds: referenceDecode))
        print(lines.joined(separator: "\n") + "\n(medians of \(runs) runs; MB = 1e6 compressed bytes; sink \(sink % 10))")
    }
}
