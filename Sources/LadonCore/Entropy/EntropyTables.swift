// Validated CompressAI coding tables (offsets, CDF lengths, quantized CDFs) and their precomputed fast forms.
import Foundation

/// Constants of CompressAI's rANS coder (`rans_interface.cpp` + ryg_rans `rans64.h`).
public enum RANSConstants {
    /// Lower bound of the 64-bit state (`RANS64_L`); also the initial encoder state.
    public static let stateLowerBound: UInt64 = 1 << 31
    /// Probability precision: every CDF ends at `1 << precision` = 65536.
    public static let precision: UInt32 = 16
    /// Bits per bypass chunk (`bypass_precision`).
    public static let bypassBits: UInt32 = 4
    /// Largest bypass chunk value (`max_bypass_val`).
    public static let maxBypassValue: UInt32 = 15
    /// Largest escape payload that CompressAI's encoder can write without hanging (raw value < 2^28, so at most
    /// 7 nibbles). Encoders here clamp to it; decoders reject longer payloads.
    public static let maxBypassNibbles: UInt32 = 7
    /// Escape offsets `v = symbol - offset` are codable in `-2^27 ... maxValue + 2^27 - 1`.
    public static let escapeReach: Int32 = 1 << 27
    /// Largest accepted `|offset|`, so symbol arithmetic can never overflow `Int32`.
    public static let maxAbsOffset: Int32 = 1 << 24
    /// The stream of zero symbols: just the initial state, low word first (`00 00 00 80 00 00 00 00`).
    public static let emptyStream: [UInt8] = [0, 0, 0, 0x80, 0, 0, 0, 0]
}

/// The per-channel tables of a CompressAI `EntropyBottleneck`: `_offset`, `_cdf_length`, `_quantized_cdf`.
///
/// Channel `c` codes integer symbols `s`; `v = s - offsets[c]` indexes its CDF. In-range values are
/// `0 ..< cdfLengths[c] - 2`; index `cdfLengths[c] - 2` is the escape symbol, followed by a bypass payload for
/// everything outside the range.
///
/// The tables are validated on creation so that no stream can make the coder misbehave:
/// at least one channel; `3 <= cdfLengths[c] <= 65537`; `cdf[0] == 0`, `cdf[len-1] == 65536`, strictly
/// increasing within `cdfLengths[c]` (entries after it, CompressAI's zero padding, are ignored);
/// `|offsets[c]| <= 2^24`.
public struct EntropyTables: Sendable, Equatable {
    /// Number of channels (rows of `_quantized_cdf`).
    public var channels: Int { offsets.count }
    /// Symbol offset per channel (`_offset`, usually `-minima`).
    public let offsets: [Int32]
    /// CDF length per channel (`_cdf_length`): in-range symbols + escape + 1.
    public let cdfLengths: [Int32]
    /// The CDF rows, trimmed to their `cdfLengths` (`_quantized_cdf` without its zero padding).
    public let cdfs: [[UInt32]]
    /// Precomputed encoder/decoder tables (derived data; excluded from equality).
    let fast: FastRANSTables

    /// Validates and stores tables. `cdfs[c]` may be longer than `cdfLengths[c]` (zero padding is ignored).
    public init(offsets: [Int32], cdfLengths: [Int32], cdfs: [[Int32]]) throws(LadonError) {
        let channels = offsets.count
        guard channels > 0 else {
            throw .entropy(.emptyTables)
        }
        guard cdfLengths.count == channels, cdfs.count == channels else {
            throw .entropy(.tableCountMismatch(offsets: offsets.count, cdfLengths: cdfLengths.count, cdfRows: cdfs.count))
        }
        var rows: [[UInt32]] = []
        rows.reserveCapacity(channels)
        for c in 0..<channels {
            let length = Int(cdfLengths[c])
            let row = cdfs[c]
            guard length >= 3, length <= row.count, length <= 65537 else {
                throw .entropy(.invalidCDF(channel: c, reason: "CDF length \(length) must be in 3...\(min(row.count, 65537)) (row width \(row.count))"))
            }
            guard abs(Int(offsets[c])) <= Int(RANSConstants.maxAbsOffset) else {
                throw .entropy(.invalidCDF(channel: c, reason: "offset \(offsets[c]) is outside ±2^24"))
            }
            guard row[0] == 0, row[length - 1] == 65536 else {
                throw .entropy(.invalidCDF(channel: c, reason: "CDF must start at 0 and end at 65536, got \(row[0]) ... \(row[length - 1])"))
            }
            var trimmed = [UInt32](repeating: 0, count: length)
            for k in 0..<length {
                if k > 0 && row[k] <= row[k - 1] {
                    throw .entropy(.invalidCDF(channel: c, reason: "CDF is not strictly increasing at index \(k) (\(row[k - 1]) then \(row[k]))"))
                }
                trimmed[k] = UInt32(row[k])
            }
            rows.append(trimmed)
        }
        self.offsets = offsets
        self.cdfLengths = cdfLengths
        self.cdfs = rows
        self.fast = FastRANSTables(offsets: offsets, cdfs: rows)
    }

    /// The escape index of channel `c` (`max_value = cdf_length - 2`).
    public func escapeIndex(_ c: Int) -> Int32 { cdfLengths[c] - 2 }

    /// The range of symbols channel `c` can code (in-range symbols plus the escape reach).
    public func codableSymbols(_ c: Int) -> ClosedRange<Int32> {
        let values = codableValues(c)
        return (offsets[c] + values.lowerBound)...(offsets[c] + values.upperBound)
    }

    /// ``codableSymbols(_:)`` less the channel's offset: the coder's values `symbol - offset[c]`, escapes included.
    public func codableValues(_ c: Int) -> ClosedRange<Int32> {
        -RANSConstants.escapeReach...(escapeIndex(c) + RANSConstants.escapeReach - 1)
    }

    /// Equal when offsets, CDF lengths and (trimmed) CDFs are equal.
    public static func == (a: EntropyTables, b: EntropyTables) -> Bool {
        a.offsets == b.offsets && a.cdfLengths == b.cdfLengths && a.cdfs == b.cdfs
    }
}

/// One encoder entry: ryg_rans' `Rans64EncSymbol` (division by `freq` replaced by a reciprocal multiply).
struct RANSEncSymbol: Sendable {
    /// Renormalise (emit a word) when the state is at least this.
    var xMax: UInt64
    /// Fixed-point reciprocal of `freq`.
    var rcpFreq: UInt64
    /// `start`, or `start + 65535` when `freq == 1`.
    var bias: UInt32
    /// `65536 - freq`.
    var cmplFreq: UInt32
    /// Shift after the high multiply.
    var rcpShift: UInt32
    var unused: UInt32 = 0

    /// `Rans64EncSymbolInit(start, freq, 16)`.
    init(start: UInt32, freq: UInt32) {
        let scaleBits: UInt32 = 16
        xMax = ((RANSConstants.stateLowerBound >> UInt64(scaleBits)) << 32) * UInt64(freq)
        cmplFreq = (1 << scaleBits) - freq
        if freq < 2 {
            rcpFreq = ~0
            rcpShift = 0
            bias = start + (1 << scaleBits) - 1
        } else {
            var shift: UInt32 = 0
            while freq > (1 << shift) { shift += 1 }
            // ((1 << (shift + 63)) + freq - 1) / freq, as two 64:64 divisions.
            let f = UInt64(freq)
            var x0 = f - 1
            let x1 = UInt64(1) << UInt64(shift + 31)
            let t1 = x1 / f
            x0 += (x1 % f) << 32
            let t0 = x0 / f
            rcpFreq = t0 &+ (t1 << 32)
            rcpShift = shift - 1
            bias = start
        }
    }
}

/// Flattened, precomputed tables for the fast coder. Immutable after creation; owns its memory so the hot loops
/// work on plain pointers.
final class FastRANSTables: @unchecked Sendable {
    /// Decoder bucket: `cum >> bucketShift` indexes the bucket tables (2048 buckets of 32 per channel).
    static let bucketShift: UInt32 = 5
    static let bucketsPerChannel = 65536 >> 5

    /// All channels' trimmed CDFs back to back; `cdfBase[c]` is channel c's first entry.
    let cdf: UnsafeMutableBufferPointer<UInt32>
    let cdfBase: [Int]
    /// Encoder entries, one per CDF interval, back to back; channel c starts at `cdfBase[c] - c`.
    let encSymbols: UnsafeMutableBufferPointer<RANSEncSymbol>
    /// Escape index per channel.
    let escape: [Int32]
    let offsets: [Int32]
    /// For each channel and bucket b: the largest interval index s with `cdf[s] <= b << bucketShift`.
    let buckets: UnsafeMutableBufferPointer<UInt16>
    /// For each channel and bucket: `start | freq << 16` of the one interval covering the whole bucket, or 0 when
    /// an interval boundary falls inside the bucket (then search `cdf` from `buckets`).
    let bucketIntervals: UnsafeMutableBufferPointer<UInt32>
    /// Fewest bits any in-range symbol of any channel costs (`log2(65536 / max freq)`, minus a margin), for the
    /// "stream too short for that many symbols" guard.
    let minBitsPerSymbol: Double

    init(offsets: [Int32], cdfs: [[UInt32]]) {
        let total = cdfs.reduce(0) { $0 + $1.count }
        cdf = .allocate(capacity: total)
        encSymbols = .allocate(capacity: total - cdfs.count)
        buckets = .allocate(capacity: cdfs.count * Self.bucketsPerChannel)
        bucketIntervals = .allocate(capacity: cdfs.count * Self.bucketsPerChannel)
        var base: [Int] = []
        var maxFreq: UInt32 = 1
        var k = 0
        for (c, row) in cdfs.enumerated() {
            base.append(k)
            for s in 0..<row.count {
                cdf[k + s] = row[s]
                guard s + 1 < row.count else { continue }
                let freq = row[s + 1] - row[s]
                maxFreq = max(maxFreq, freq)
                encSymbols[k - c + s] = RANSEncSymbol(start: row[s], freq: freq)
            }
            k += row.count
            var s = 0
            for b in 0..<Self.bucketsPerChannel {
                let cum = UInt32(b) << Self.bucketShift
                while row[s + 1] <= cum { s += 1 }
                buckets[c * Self.bucketsPerChannel + b] = UInt16(s)
                let whole = row[s + 1] >= cum + (1 << Self.bucketShift)
                bucketIntervals[c * Self.bucketsPerChannel + b] = whole ? row[s] | (row[s + 1] - row[s]) << 16 : 0
            }
        }
        self.cdfBase = base
        self.escape = cdfs.map { Int32($0.count - 2) }
        self.offsets = offsets
        self.minBitsPerSymbol = max(0, log2(65536.0 / Double(maxFreq)) - 1e-4)
    }

    deinit {
        cdf.deallocate()
        encSymbols.deallocate()
        buckets.deallocate()
        bucketIntervals.deallocate()
    }
}
