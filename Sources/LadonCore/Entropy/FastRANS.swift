// The fast rANS coder: reciprocal encoder tables, bucketed decoder lookup, words written backwards into one buffer.

extension EntropyTables {
    /// Encodes one sample of symbols laid out channel-major (`planeSize` symbols per channel, `channels` planes),
    /// producing exactly CompressAI's bytes. Symbols outside ``codableSymbols(_:)`` are an error.
    package func encode(_ symbols: [Int32], planeSize: Int) throws(LadonError) -> [UInt8] {
        guard planeSize >= 0, symbols.count == channels * planeSize else {
            throw .entropy(.planeMismatch(symbols: symbols.count, channels: channels, planeSize: planeSize))
        }
        var values = [Int32](repeating: 0, count: symbols.count)
        var escapes = 0
        for c in 0..<channels {
            let codable = codableSymbols(c)
            let offset = offsets[c], escape = UInt32(escapeIndex(c))
            for i in (c * planeSize)..<((c + 1) * planeSize) {
                let s = symbols[i]
                guard codable.contains(s) else {
                    throw .entropy(.symbolOutOfRange(symbol: s, position: i, channel: c, codable: codable))
                }
                let v = s - offset
                values[i] = v
                if UInt32(bitPattern: v) >= escape { escapes += 1 }
            }
        }
        return values.withUnsafeBufferPointer { fast.encode(values: $0.baseAddress, planeSize: planeSize, escapes: escapes) }
    }

    /// Decodes one sample of `channels * planeSize` symbols (channel-major), the inverse of ``encode(_:planeSize:)``.
    /// Any byte string gives either the encoded symbols or a typed error.
    package func decode(_ bytes: [UInt8], planeSize: Int) throws(LadonError) -> [Int32] {
        let (count, overflow) = channels.multipliedReportingOverflow(by: planeSize)
        guard planeSize >= 0, !overflow else { throw .entropy(.invalidPlaneSize(planeSize)) }
        var out = [Int32](repeating: 0, count: count)
        let result = out.withUnsafeMutableBufferPointer { buffer in
            bytes.withUnsafeBytes { raw in
                Result { () throws(LadonError) in
                    try fast.decode(raw, planeSize: planeSize, into: buffer.baseAddress)
                }
            }
        }
        if case .failure(let failure) = result { throw failure }
        return out
    }
}

extension FastRANSTables {
    var channels: Int { offsets.count }

    /// Encodes `values[c * planeSize + i] = symbol - offset[c]`, each already inside the codable range.
    /// `escapes` counts the values outside `0 ..< escape[c]` (it sizes the output buffer).
    func encode(values: UnsafePointer<Int32>?, planeSize: Int, escapes: Int) -> [UInt8] {
        let symbolCount = channels * planeSize
        // At most one word per put: one put per symbol, at most 1 + 1 + 7 more per escape, plus the final state.
        let capacity = 2 + symbolCount + 8 * escapes
        let buffer = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        var ptr = buffer + capacity
        var x = RANSConstants.stateLowerBound
        if symbolCount > 0, let values {
            for c in stride(from: channels - 1, through: 0, by: -1) {
                let table = UnsafePointer(encSymbols.baseAddress! + (cdfBase[c] - c))
                let escape = escape[c]
                let row = values + c * planeSize
                var i = planeSize
                while i > 0 {
                    i -= 1
                    let v = row[i]
                    if UInt32(bitPattern: v) < UInt32(escape) {
                        Self.put(&x, &ptr, table + Int(v))
                    } else {
                        // Returned, not `inout`: a state whose address went to a call would live on the stack, and
                        // its store and reload would join every symbol's dependency chain (1.9x the time).
                        (x, ptr) = Self.putEscape(v, escape: escape, table: table, state: x, ptr: ptr)
                    }
                }
            }
        }
        ptr -= 2
        ptr[0] = UInt32(truncatingIfNeeded: x).littleEndian
        ptr[1] = UInt32(truncatingIfNeeded: x >> 32).littleEndian
        let wordCount = buffer + capacity - ptr
        return [UInt8](unsafeUninitializedCapacity: 4 * wordCount) { bytes, initialized in
            UnsafeMutableRawPointer(bytes.baseAddress!).copyMemory(from: ptr, byteCount: 4 * wordCount)
            initialized = 4 * wordCount
        }
    }

    /// `Rans64EncPutSymbol` with scale 16.
    @inline(__always)
    static func put(_ x: inout UInt64, _ ptr: inout UnsafeMutablePointer<UInt32>, _ symbol: UnsafePointer<RANSEncSymbol>) {
        var state = x
        if state >= symbol.pointee.xMax {
            ptr -= 1
            ptr.pointee = UInt32(truncatingIfNeeded: state).littleEndian
            state >>= 32
        }
        // `&>>`: `rcpShift` is below 16, so no over-shift branch.
        let q = state.multipliedFullWidth(by: symbol.pointee.rcpFreq).high &>> UInt64(symbol.pointee.rcpShift)
        x = state &+ UInt64(symbol.pointee.bias) &+ q &* UInt64(symbol.pointee.cmplFreq)
    }

    /// `Rans64EncPutBits(x, nibble, 4)`.
    @inline(__always)
    static func putNibble(_ x: inout UInt64, _ ptr: inout UnsafeMutablePointer<UInt32>, _ nibble: UInt32) {
        if x >= 1 << 59 {
            ptr -= 1
            ptr.pointee = UInt32(truncatingIfNeeded: x).littleEndian
            x >>= 32
        }
        x = (x << 4) | UInt64(nibble)
    }

    /// An escaped value, in reverse: payload nibbles (most significant first), nibble count, escape symbol. Returns the
    /// new state and write position.
    @inline(never)
    static func putEscape(_ v: Int32, escape: Int32, table: UnsafePointer<RANSEncSymbol>, state: UInt64,
                          ptr: UnsafeMutablePointer<UInt32>) -> (UInt64, UnsafeMutablePointer<UInt32>) {
        var (x, ptr) = (state, ptr)
        let raw: UInt32 = v < 0 ? UInt32(-2 * v - 1) : UInt32(2 * (v - escape))
        var nibbles: UInt32 = 0
        while nibbles < 8 && (raw >> (4 * nibbles)) != 0 { nibbles += 1 }
        var j = nibbles
        while j > 0 {
            j -= 1
            putNibble(&x, &ptr, (raw >> (4 * j)) & 15)
        }
        putNibble(&x, &ptr, nibbles)   // nibbles <= 7 < 15: one count chunk
        put(&x, &ptr, table + Int(escape))
        return (x, ptr)
    }

    /// Decodes `channels * planeSize` symbols from `raw` into `out`, checking every read and the final state.
    func decode(_ raw: UnsafeRawBufferPointer, planeSize: Int, into out: UnsafeMutablePointer<Int32>?) throws(LadonError) {
        let byteCount = raw.count
        guard byteCount % 4 == 0, byteCount >= 8, let base = raw.baseAddress else {
            throw .entropy(.invalidStreamLength(bytes: byteCount))
        }
        let wordCount = byteCount / 4
        let symbolCount = channels * planeSize
        if Double(symbolCount) * minBitsPerSymbol > 32 * Double(wordCount) + 64 {
            throw .entropy(.streamTooShort(bytes: byteCount, symbols: symbolCount))
        }
        @inline(__always) func word(_ p: Int) -> UInt64 {
            UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * p, as: UInt32.self)))
        }
        let lowerBound = RANSConstants.stateLowerBound
        var x = word(0) | word(1) << 32
        guard x >= lowerBound, x < 1 << 63 else { throw .entropy(.invalidInitialState(x)) }
        var p = 2
        if symbolCount > 0, let out {
            for c in 0..<channels {
                let cdf = UnsafePointer(self.cdf.baseAddress! + cdfBase[c])
                let bucket = UnsafePointer(buckets.baseAddress! + c * Self.bucketsPerChannel)
                let whole = UnsafePointer(bucketIntervals.baseAddress! + c * Self.bucketsPerChannel)
                let escape = Int(escape[c])
                let offset = offsets[c]
                let row = out + c * planeSize
                for i in 0..<planeSize {
                    let cum = UInt32(truncatingIfNeeded: x) & 0xFFFF
                    let b = Int(cum >> Self.bucketShift)
                    var s = Int(bucket[b])
                    var interval = whole[b]   // start | freq << 16, or 0 if the bucket holds a boundary
                    if interval == 0 {
                        var next = cdf[s + 1]
                        while next <= cum {   // bounded: cdf ends at 65536 > cum
                            s += 1
                            next = cdf[s + 1]
                        }
                        interval = cdf[s] | (next &- cdf[s]) << 16
                    }
                    x = UInt64(interval >> 16) &* (x >> 16) &+ UInt64(cum &- (interval & 0xFFFF))
                    if x < lowerBound {
                        guard p < wordCount else { throw .entropy(.truncatedStream(symbol: c * planeSize + i)) }
                        x = (x << 32) | word(p)
                        p += 1
                    }
                    if s == escape {
                        let escaped = try Self.decodeEscape(x, p, base, wordCount, escape: Int32(escape), symbol: c * planeSize + i)
                        x = escaped.state
                        p = escaped.position
                        row[i] = escaped.value &+ offset
                    } else {
                        row[i] = Int32(truncatingIfNeeded: s) &+ offset
                    }
                }
            }
        }
        guard x == lowerBound, p == wordCount else { throw .entropy(.trailingData(finalState: x, unreadWords: wordCount - p)) }
    }

    /// The bypass payload after an escape symbol: nibble count (at most 7), then nibbles, least significant first.
    @inline(never)
    static func decodeEscape(_ state: UInt64, _ position: Int, _ base: UnsafeRawPointer, _ wordCount: Int, escape: Int32,
                             symbol: Int) throws(LadonError) -> (value: Int32, state: UInt64, position: Int) {
        var x = state, p = position
        func nibble() throws(LadonError) -> UInt32 {
            let v = UInt32(truncatingIfNeeded: x) & 15
            x >>= 4
            if x < RANSConstants.stateLowerBound {
                guard p < wordCount else { throw .entropy(.truncatedStream(symbol: symbol)) }
                x = (x << 32) | UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * p, as: UInt32.self)))
                p += 1
            }
            return v
        }
        let count = try nibble()
        guard count <= RANSConstants.maxBypassNibbles else { throw .entropy(.escapeTooLong(symbol: symbol, nibbles: count)) }
        var raw: UInt32 = 0
        var last: UInt32 = 0
        for j in 0..<count {
            last = try nibble()
            raw |= last << (4 * j)
        }
        guard count == 0 || last != 0 else { throw .entropy(.nonCanonicalEscape(symbol: symbol)) }
        let half = Int32(raw >> 1)
        return (raw & 1 != 0 ? -half - 1 : half + escape, x, p)
    }
}
