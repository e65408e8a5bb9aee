// CompressAI's EntropyBottleneck (factorized prior): quantise, rANS-code and decode latents, byte-exact.
import CLadonKernels

/// A compressed latent: one rANS string per batch sample plus the shape the strings do not carry.
public struct CompressedLatent: Sendable, Equatable {
    /// One independent CompressAI rANS string per sample, in batch order.
    public let strings: [[UInt8]]
    /// Channels, height and width of every sample (the strings hold no shape).
    public let channels: Int
    public let height: Int
    public let width: Int

    /// Wraps strings received together with their latent shape.
    public init(strings: [[UInt8]], channels: Int, height: Int, width: Int) {
        self.strings = strings
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// The latent shape `[N, C, H, W]`.
    public var shape: [Int] { [strings.count, channels, height, width] }
    /// Total payload bytes over all samples (the data-size metric, without any framing).
    public var byteCount: Int { strings.reduce(0) { $0 + $1.count } }
    /// Payload bits per latent element.
    public var bitsPerSymbol: Double {
        let n = shape.reduce(1, *)
        return n == 0 ? 0 : 8 * Double(byteCount) / Double(n)
    }
}

/// CompressAI's `EntropyBottleneck` at inference: byte-identical to `compress` / `decompress` of CompressAI 1.2.8
/// (and every release since 1.0, whose bitstream is unchanged) given the same tables.
///
/// - Quantisation: `symbol = roundHalfToEven(Float(y) - median[c])`, exactly `torch.round(x - medians)`.
/// - Coding: 64-bit-state rANS with 16-bit probabilities (ryg_rans `rans64`), escape symbol + 4-bit bypass
///   chunks outside the table range, symbols in channel → row → column order, one string per sample.
/// - Decoding returns `Float(symbol) + median[c]`, like `dequantize`.
///
/// Hardening, where CompressAI crashes, hangs or reads out of bounds:
/// - NaN and ±infinity in a latent are rejected with ``LadonError/invalidInput(_:)``.
/// - Finite values whose symbol lies outside the codable range (`symbol - offset` in
///   `-2^27 ... escape + 2^27 - 1`, about |y - median| > 1.3e8) are clamped to it; CompressAI hangs on them.
/// - Empty latents code to the 8-byte initial state `00 00 00 80 00 00 00 00`.
/// - Decoding checks every read and accepts only streams an encoder can produce: length a multiple of 4 and
///   at least 8, initial state in `[2^31, 2^63)`, escape payloads of at most 7 nibbles without a leading zero,
///   and at the end state `2^31` with every word consumed. Anything else is ``LadonError/entropy(_:)``,
///   so truncation, trailing bytes, a wrong shape or wrong tables are (almost always) detected. No loop runs
///   longer than the CDF row or the number of symbols.
public struct EntropyBottleneck: Sendable, Equatable {
    /// The median of each channel (`quantiles[:, 0, 1]`): the quantisation centre.
    public let medians: [Float]
    /// The coding tables.
    public let tables: EntropyTables

    /// Number of latent channels.
    public var channels: Int { tables.channels }

    /// Builds a bottleneck from explicit tables (e.g. `_offset`, `_cdf_length`, `_quantized_cdf` rows).
    public init(medians: [Float], offsets: [Int32], cdfLengths: [Int32], cdfs: [[Int32]]) throws(LadonError) {
        try self.init(medians: medians, tables: EntropyTables(offsets: offsets, cdfLengths: cdfLengths, cdfs: cdfs))
    }

    /// Builds a bottleneck from medians and validated tables.
    public init(medians: [Float], tables: EntropyTables) throws(LadonError) {
        guard medians.count == tables.channels else {
            throw .entropy(.medianCountMismatch(medians: medians.count, channels: tables.channels))
        }
        if let c = medians.firstIndex(where: { !$0.isFinite }) {
            throw .entropy(.invalidMedian(channel: c, value: medians[c]))
        }
        self.medians = medians
        self.tables = tables
    }

    /// Loads the stored tables of a CompressAI `EntropyBottleneck` from `weights`, the module's scope
    /// (e.g. `"encoder.entropy_bottleneck"`): `quantiles`, `_offset`, `_cdf_length`, `_quantized_cdf`.
    ///
    /// The tables are used exactly as stored, never recomputed. A checkpoint saved before `update()` has empty
    /// tables; that is an ``LadonError/entropy(_:)`` error that says so. ``init(rebuildingTablesFrom:)`` can
    /// build them, with a compatibility caveat.
    package init(weights: WeightScope) throws(LadonError) {
        let medians = try Self.loadMedians(weights)
        var ints: [[Int]] = []
        for name in ["_offset", "_cdf_length", "_quantized_cdf"] {
            let (_, values) = try weights.integers(name)
            if values.isEmpty {
                throw .entropy(.tablesNotBuilt(tensor: weights.path(name)))
            }
            ints.append(values)
        }
        let (cdfShape, _) = try weights.integers("_quantized_cdf")
        let channels = medians.count
        guard ints[0].count == channels, ints[1].count == channels, cdfShape.count == 2, cdfShape[0] == channels else {
            throw .entropy(.tableShapeMismatch(scope: weights.prefix, channels: channels, offsets: ints[0].count, cdfLengths: ints[1].count, cdfShape: cdfShape))
        }
        let width = cdfShape[1]
        func int32(_ v: Int, _ name: String) throws(LadonError) -> Int32 {
            guard let r = Int32(exactly: v) else { throw .entropy(.valueOutOfRange(tensor: weights.path(name), value: v)) }
            return r
        }
        var offsets: [Int32] = [], lengths: [Int32] = [], rows: [[Int32]] = []
        for c in 0..<channels {
            offsets.append(try int32(ints[0][c], "_offset"))
            lengths.append(try int32(ints[1][c], "_cdf_length"))
            var row: [Int32] = []
            for v in ints[2][(c * width)..<((c + 1) * width)] { row.append(try int32(v, "_quantized_cdf")) }
            rows.append(row)
        }
        try self.init(medians: medians, offsets: offsets, cdfLengths: lengths, cdfs: rows)
    }

    /// Whether `weights` holds non-empty coding tables (`_offset`, `_cdf_length`, `_quantized_cdf`).
    package static func hasStoredTables(_ weights: WeightScope) -> Bool {
        ["_offset", "_cdf_length", "_quantized_cdf"].allSatisfy {
            (weights.file.entries[weights.path($0)]?.elementCount ?? 0) > 0
        }
    }

    static func loadMedians(_ weights: WeightScope) throws(LadonError) -> [Float] {
        let quantiles = try weights.tensor("quantiles")
        guard quantiles.rank >= 2, quantiles.shape.last == 3, quantiles.count == 3 * quantiles.shape[0],
              quantiles.shape[0] > 0 else {
            throw .shapeMismatch(name: weights.path("quantiles"), expected: [quantiles.shape.first ?? 0, 1, 3], actual: quantiles.shape)
        }
        return (0..<quantiles.shape[0]).map { quantiles.scalars[3 * $0 + 1] }
    }

    // MARK: - Quantisation

    /// `roundHalfToEven(y - median)` per element of an `[N, C, H, W]` latent, clamped to the codable range.
    /// NaN or infinite elements are an ``LadonError/invalidInput(_:)`` error.
    public func quantize(_ latent: Tensor) throws(LadonError) -> [Int32] {
        let (n, _, h, w) = try checkLatent(latent)
        let plane = h * w
        var out = [Int32](repeating: 0, count: latent.count)
        try out.withUnsafeMutableBufferPointer { (buffer) throws(LadonError) in
            for sample in 0..<n {
                let dst = buffer.baseAddress! + sample * channels * plane
                _ = try quantizeSample(latent, sample: sample, into: dst)
                for c in 0..<channels {
                    let offset = tables.offsets[c]
                    for i in (c * plane)..<((c + 1) * plane) { dst[i] = dst[i] &+ offset }
                }
            }
        }
        return out
    }

    /// `Float(symbol) + median[c]` for symbols laid out as `shape` (`[N, C, H, W]`).
    public func dequantize(_ symbols: [Int32], shape: [Int]) throws(LadonError) -> Tensor {
        guard shape.count == 4, shape[1] == channels, shape.allSatisfy({ $0 >= 0 }),
              shape.reduce(1, *) == symbols.count else {
            throw .entropy(.dequantizeShapeMismatch(symbols: symbols.count, shape: shape, channels: channels))
        }
        let plane = shape[2] * shape[3]
        return Tensor(shape: shape) { out in
            for i in 0..<symbols.count {
                out[i] = Float(symbols[i]) + medians[(i / max(plane, 1)) % channels]
            }
        }
    }

    /// Writes `symbol - offset[c]` (clamped to the codable range) for one sample and counts escapes, one channel plane
    /// at a time with the vectorised C kernel (``quantizeReference(_:sample:channel:into:)``'s results).
    private func quantizeSample(_ latent: Tensor, sample: Int, into dst: UnsafeMutablePointer<Int32>) throws(LadonError) -> Int {
        let plane = latent.shape[2] * latent.shape[3]
        var escapes = 0
        var badChannel = -1
        latent.withUnsafeBufferPointer { src in
            guard let base = src.baseAddress.map({ $0 + sample * channels * plane }) else { return }
            for c in 0..<channels {
                let values = tables.codableValues(c)
                var nonFinite = false
                escapes += cladon_quantize_plane(0, dst + c * plane, base + c * plane, plane, medians[c], tables.offsets[c],
                                                 values.lowerBound, values.upperBound, UInt32(tables.escapeIndex(c)),
                                                 &nonFinite)
                if nonFinite {
                    badChannel = c
                    return
                }
            }
        }
        if badChannel >= 0 { try throwNonFinite(latent, sample: sample, channel: badChannel) }
        return escapes
    }

    /// The plain element-by-element quantisation of one channel plane that ``quantizeSample(_:sample:into:)``'s C kernel
    /// reproduces (kept beside it for tests): returns the escape count, or `nil` when a value is NaN or infinite.
    package func quantizeReference(_ latent: Tensor, sample: Int, channel c: Int,
                                   into out: UnsafeMutablePointer<Int32>) -> Int? {
        let plane = latent.shape[2] * latent.shape[3]
        return latent.withUnsafeBufferPointer { src -> Int? in
            guard let base = src.baseAddress else { return 0 }
            let row = base + (sample * channels + c) * plane
            let median = medians[c], offset = tables.offsets[c], escape = tables.escapeIndex(c)
            let values = tables.codableValues(c)
            var count = 0
            for i in 0..<plane {
                let y = row[i]
                guard y.isFinite else { return nil }
                // Clamp in Float first (±2^29 is exact and beyond any codable symbol), then in Int32.
                let d = (y - median).rounded(.toNearestOrEven)
                let r = min(max(d, -536_870_912), 536_870_912)
                let v = min(max(Int32(r) &- offset, values.lowerBound), values.upperBound)
                out[i] = v
                count &+= UInt32(bitPattern: v) >= UInt32(escape) ? 1 : 0
            }
            return count
        }
    }

    /// The error for the first NaN or infinite value of channel `c` of `sample`, with its `[n, c, y, x]` index.
    private func throwNonFinite(_ latent: Tensor, sample: Int, channel c: Int) throws(LadonError) {
        let (plane, hw) = (latent.shape[2] * latent.shape[3], latent.shape[3])
        let rest = latent.withUnsafeBufferPointer { src in
            (0..<plane).first { !src[(sample * channels + c) * plane + $0].isFinite } ?? 0
        }
        throw .invalidInput(.nonFiniteLatent(index: [sample, c, rest / max(hw, 1), rest % max(hw, 1)]))
    }

    private func checkLatent(_ latent: Tensor) throws(LadonError) -> (Int, Int, Int, Int) {
        guard latent.rank == 4, latent.shape[1] == channels else {
            throw .shapeMismatch(name: "latent", expected: [latent.shape.first ?? 1, channels, latent.shape.count > 2 ? latent.shape[2] : 0, latent.shape.count > 3 ? latent.shape[3] : 0], actual: latent.shape)
        }
        return (latent.shape[0], latent.shape[1], latent.shape[2], latent.shape[3])
    }

    // MARK: - Coding

    /// Compresses an `[N, C, H, W]` latent into N strings, byte-identical to CompressAI's `compress`.
    public func compress(_ latent: Tensor) throws(LadonError) -> [[UInt8]] {
        let (n, _, h, w) = try checkLatent(latent)
        let count = channels * h * w
        let values = UnsafeMutablePointer<Int32>.allocate(capacity: max(count, 1))
        defer { values.deallocate() }
        var strings: [[UInt8]] = []
        strings.reserveCapacity(n)
        for sample in 0..<n {
            let escapes = try quantizeSample(latent, sample: sample, into: values)
            strings.append(tables.fast.encode(values: values, planeSize: h * w, escapes: escapes))
        }
        return strings
    }

    /// Compresses a latent and keeps its shape with the strings.
    public func compressLatent(_ latent: Tensor) throws(LadonError) -> CompressedLatent {
        let strings = try compress(latent)
        return CompressedLatent(strings: strings, channels: channels, height: latent.shape[2], width: latent.shape[3])
    }

    /// Decompresses N strings of `height × width` latents into an `[N, C, height, width]` tensor of
    /// `Float(symbol) + median`, identical to CompressAI's `decompress(strings, (height, width))`.
    public func decompress(_ strings: [[UInt8]], height: Int, width: Int) throws(LadonError) -> Tensor {
        let (plane, overflow) = height.multipliedReportingOverflow(by: width)
        let (total, overflow2) = plane.multipliedReportingOverflow(by: channels)
        guard height >= 0, width >= 0, !overflow, !overflow2, !total.multipliedReportingOverflow(by: strings.count).overflow else {
            throw .entropy(.invalidLatentSize(height: height, width: width))
        }
        // Reject impossible shapes before allocating the output.
        for (k, s) in strings.enumerated() where Double(total) * tables.fast.minBitsPerSymbol > 32 * Double(s.count / 4) + 64 {
            throw .entropy(.streamTooShort(bytes: strings[k].count, symbols: total))
        }
        let symbols = UnsafeMutablePointer<Int32>.allocate(capacity: max(total, 1))
        defer { symbols.deallocate() }
        var failure: LadonError?
        let out = Tensor(shape: [strings.count, channels, height, width]) { out in
            for (k, string) in strings.enumerated() {
                let result = string.withUnsafeBytes { raw in
                    Result { () throws(LadonError) in try tables.fast.decode(raw, planeSize: plane, into: symbols) }
                }
                if case .failure(let error) = result {
                    // The tensor is thrown away below; Float is a trivial type, so the unwritten rest of the buffer
                    // needs no zero-filling on this failure path.
                    failure = error
                    return
                }
                let dst = out.baseAddress! + k * total
                for c in 0..<channels {
                    let median = medians[c]
                    for i in (c * plane)..<((c + 1) * plane) { dst[i] = Float(symbols[i]) + median }
                }
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Decompresses a ``CompressedLatent``; its channel count must match the tables.
    public func decompress(_ latent: CompressedLatent) throws(LadonError) -> Tensor {
        guard latent.channels == channels else {
            throw .entropy(.latentChannelMismatch(latent: latent.channels, tables: channels))
        }
        return try decompress(latent.strings, height: latent.height, width: latent.width)
    }
}
