// Plain reference rANS coder, a line-by-line port of CompressAI's RansEncoder/RansDecoder (used to test the fast one).

/// Reference rANS encoder: CompressAI's `RansEncoder.encode_with_indexes` (BufferedRansEncoder + flush), written
/// plainly with a record list and integer division. Slow; it exists to check ``EntropyTables/encode(_:planeSize:)``.
package struct RANSEncoderReference: Sendable {
    /// The tables symbols are coded with.
    package let tables: EntropyTables

    /// An encoder for `tables`.
    package init(tables: EntropyTables) { self.tables = tables }

    /// Encodes `symbols[i]` with the table of channel `indexes[i]`, in the given order.
    ///
    /// Symbols outside ``EntropyTables/codableSymbols(_:)`` are an error (CompressAI would hang on them).
    package func encode(_ symbols: [Int32], indexes: [Int32]) throws(LadonError) -> [UInt8] {
        guard symbols.count == indexes.count else {
            throw .entropy(.indexCountMismatch(symbols: symbols.count, indexes: indexes.count))
        }
        typealias Record = (start: UInt32, freq: UInt32, bits: UInt32)
        var records: [Record] = []
        records.reserveCapacity(symbols.count)
        for (i, (symbol, index)) in zip(symbols, indexes).enumerated() {
            guard index >= 0, Int(index) < tables.channels else {
                throw .entropy(.indexOutOfRange(index: index, symbol: i, channels: tables.channels))
            }
            let c = Int(index)
            guard tables.codableSymbols(c).contains(symbol) else {
                throw .entropy(.symbolOutOfRange(symbol: symbol, position: i, channel: c, codable: tables.codableSymbols(c)))
            }
            let cdf = tables.cdfs[c]
            let maxValue = tables.escapeIndex(c)
            var value = symbol - tables.offsets[c]
            var raw: UInt32 = 0
            if value < 0 {
                raw = UInt32(-2 * value - 1)
                value = maxValue
            } else if value >= maxValue {
                raw = UInt32(2 * (value - maxValue))
                value = maxValue
            }
            let v = Int(value)
            records.append((cdf[v], cdf[v + 1] - cdf[v], RANSConstants.precision))
            if value == maxValue {
                var nibbles: UInt32 = 0
                while nibbles < 8 && (raw >> (4 * nibbles)) != 0 { nibbles += 1 }
                var count = nibbles
                while count >= RANSConstants.maxBypassValue {
                    records.append((RANSConstants.maxBypassValue, 1, RANSConstants.bypassBits))
                    count -= RANSConstants.maxBypassValue
                }
                records.append((count, 1, RANSConstants.bypassBits))
                for j in 0..<nibbles {
                    records.append(((raw >> (4 * j)) & 15, 1, RANSConstants.bypassBits))
                }
            }
        }
        let lowerBound = RANSConstants.stateLowerBound
        var x = lowerBound
        var emitted: [UInt32] = []
        for record in records.reversed() {
            let freq = UInt64(record.freq)
            let xMax = ((lowerBound >> UInt64(record.bits)) << 32) * freq
            if x >= xMax {
                emitted.append(UInt32(truncatingIfNeeded: x))
                x >>= 32
            }
            x = ((x / freq) << UInt64(record.bits)) + (x % freq) + UInt64(record.start)
        }
        var words: [UInt32] = [UInt32(truncatingIfNeeded: x), UInt32(truncatingIfNeeded: x >> 32)]
        words.append(contentsOf: emitted.reversed())
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 * words.count)
        for w in words {
            for k in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: w >> (8 * UInt32(k)))) }
        }
        return bytes
    }
}

/// Reference rANS decoder: CompressAI's `RansDecoder.decode_with_indexes`, plus the bounds and integrity checks
/// the C++ lacks (see ``EntropyBottleneck`` for the rules). Slow; it exists to check the fast decoder.
package struct RANSDecoderReference: Sendable {
    /// The tables symbols are decoded with.
    package let tables: EntropyTables

    /// A decoder for `tables`.
    package init(tables: EntropyTables) { self.tables = tables }

    /// Decodes one symbol per entry of `indexes` (the channel of each symbol, in coding order).
    package func decode(_ bytes: [UInt8], indexes: [Int32]) throws(LadonError) -> [Int32] {
        try decodeOrFail(bytes, indexes: indexes)
    }

    private func decodeOrFail(_ bytes: [UInt8], indexes: [Int32]) throws(LadonError) -> [Int32] {
        for index in indexes where index < 0 || Int(index) >= tables.channels {
            throw .entropy(.indexOutOfRange(index: index, symbol: nil, channels: tables.channels))
        }
        guard bytes.count % 4 == 0, bytes.count >= 8 else { throw .entropy(.invalidStreamLength(bytes: bytes.count)) }
        var words: [UInt32] = []
        for k in stride(from: 0, to: bytes.count, by: 4) {
            words.append(UInt32(bytes[k]) | UInt32(bytes[k + 1]) << 8 | UInt32(bytes[k + 2]) << 16 | UInt32(bytes[k + 3]) << 24)
        }
        let lowerBound = RANSConstants.stateLowerBound
        var x = UInt64(words[0]) | UInt64(words[1]) << 32
        guard x >= lowerBound, x < 1 << 63 else { throw .entropy(.invalidInitialState(x)) }
        var p = 2
        var symbolIndex = 0
        func renormalize() throws(LadonError) {
            if x < lowerBound {
                guard p < words.count else { throw .entropy(.truncatedStream(symbol: symbolIndex)) }
                x = (x << 32) | UInt64(words[p])
                p += 1
            }
        }
        func bits4() throws(LadonError) -> UInt32 {
            let v = UInt32(x & 15)
            x >>= 4
            try renormalize()
            return v
        }
        var out: [Int32] = []
        out.reserveCapacity(indexes.count)
        for (i, index) in indexes.enumerated() {
            symbolIndex = i
            let c = Int(index)
            let cdf = tables.cdfs[c]
            let maxValue = tables.escapeIndex(c)
            let cum = UInt32(x & 0xFFFF)
            var s = 0
            while cdf[s + 1] <= cum { s += 1 }   // terminates: the last entry is 65536 > cum
            let start = UInt64(cdf[s]), freq = UInt64(cdf[s + 1] - cdf[s])
            x = freq * (x >> 16) + (x & 0xFFFF) - start
            try renormalize()
            var value = Int32(s)
            if value == maxValue {
                let nibbles = try bits4()
                guard nibbles <= RANSConstants.maxBypassNibbles else {
                    throw .entropy(.escapeTooLong(symbol: i, nibbles: nibbles))
                }
                var raw: UInt32 = 0
                var last: UInt32 = 0
                for j in 0..<nibbles {
                    last = try bits4()
                    raw |= last << (4 * j)
                }
                guard nibbles == 0 || last != 0 else { throw .entropy(.nonCanonicalEscape(symbol: i)) }
                let half = Int32(raw >> 1)
                value = raw & 1 != 0 ? -half - 1 : half + maxValue
            }
            out.append(value + tables.offsets[c])
        }
        guard x == lowerBound, p == words.count else {
            throw .entropy(.trailingData(finalState: x, unreadWords: words.count - p))
        }
        return out
    }
}
