// Optional rebuild of the coding tables from the learned density: CompressAI's update() and pmf_to_quantized_cdf.
import Foundation

extension EntropyTables {
    /// CompressAI's `pmf_to_quantized_cdf(pmf, precision)` (`cpp_exts/ops/ops.cpp`), bit for bit: scale and round
    /// (half away from zero), renormalise to the exact total with integer division, prefix-sum, force the last entry
    /// to `1 << precision`, then give every zero-width interval one unit stolen from the smallest interval wider
    /// than 1 (the first such on ties).
    ///
    /// Returns `pmf.count + 1` entries. Negative or non-finite probabilities, an all-zero pmf, and inputs the C++
    /// cannot handle (overflowing totals, more intervals than units) are errors.
    package static func pmfToQuantizedCDF(_ pmf: [Float], precision: Int = 16) throws(LadonError) -> [UInt32] {
        guard (1...24).contains(precision) else { throw .entropy(.invalidPMF(reason: "precision \(precision) must be in 1...24")) }
        let one = UInt64(1) << UInt64(precision)
        guard !pmf.isEmpty, UInt64(pmf.count) <= one else {
            throw .entropy(.invalidPMF(reason: "a pmf of \(pmf.count) entries cannot be quantised to \(one) units"))
        }
        var cdf = [UInt64](repeating: 0, count: pmf.count + 1)
        var total: UInt64 = 0
        for (i, p) in pmf.enumerated() {
            guard p >= 0, p.isFinite else { throw .entropy(.invalidPMF(reason: "pmf entry \(i) is \(p); probabilities must be finite and >= 0")) }
            let scaled = (p * Float(one)).rounded(.toNearestOrAwayFromZero)   // std::round of a float product
            guard scaled < 4_294_967_296 else { throw .entropy(.invalidPMF(reason: "pmf entry \(i) = \(p) is far above 1")) }
            cdf[i + 1] = UInt64(scaled)
            total += cdf[i + 1]
        }
        guard total > 0 else { throw .entropy(.invalidPMF(reason: "the pmf sums to zero")) }
        guard total <= UInt64(Int32.max) else { throw .entropy(.invalidPMF(reason: "the pmf sums to \(total) units, beyond the C++ int accumulator")) }
        for i in 0..<cdf.count { cdf[i] = one * cdf[i] / total }
        for i in 1..<cdf.count { cdf[i] += cdf[i - 1] }
        cdf[cdf.count - 1] = one
        let intervals = pmf.count
        for i in 0..<intervals where cdf[i] == cdf[i + 1] {
            var bestFreq = UInt64(UInt32.max), bestSteal = -1
            for j in 0..<intervals {
                let freq = cdf[j + 1] - cdf[j]
                if freq > 1 && freq < bestFreq {
                    bestFreq = freq
                    bestSteal = j
                }
            }
            guard bestSteal >= 0 else { throw .entropy(.invalidPMF(reason: "no interval can spare a unit for interval \(i)")) }
            if bestSteal < i {
                for j in (bestSteal + 1)...i { cdf[j] -= 1 }
            } else {
                for j in (i + 1)...bestSteal { cdf[j] += 1 }
            }
        }
        return cdf.map { UInt32($0) }
    }
}

/// The factorized density of an `EntropyBottleneck`: per channel a tiny MLP whose output is the logit of the CDF.
struct FactorizedDensity {
    struct Layer {
        var matrix: [Float]   // softplus applied, [C, out, in]
        var bias: [Float]     // [C, out]
        var factor: [Float]?  // tanh applied, [C, out]; nil for the last layer
        var inputs: Int
        var outputs: Int
    }
    let channels: Int
    let layers: [Layer]

    /// Loads `matrices.N`/`biases.N`/`factors.N` (CompressAI >= 1.2.7) or `_matrixN`/`_biasN`/`_factorN` (older).
    init(weights: WeightScope, channels: Int) throws(LadonError) {
        func name(_ new: String, _ old: String, _ i: Int) -> String {
            weights.contains("\(new).\(i)") ? "\(new).\(i)" : "\(old)\(i)"
        }
        var count = 0
        while weights.contains("matrices.\(count)") || weights.contains("_matrix\(count)") { count += 1 }
        guard count >= 1 else {
            throw .missingTensor(name: weights.path("matrices.0"), file: weights.file.source)
        }
        var layers: [Layer] = []
        var inputs = 1
        for i in 0..<count {
            let m = try weights.tensor(name("matrices", "_matrix", i))
            guard m.rank == 3, m.shape[0] == channels, m.shape[2] == inputs,
                  i < count - 1 || m.shape[1] == 1 else {
                throw .shapeMismatch(name: weights.path(name("matrices", "_matrix", i)),
                                     expected: [channels, i < count - 1 ? m.shape.count > 1 ? m.shape[1] : 3 : 1, inputs], actual: m.shape)
            }
            let outputs = m.shape[1]
            let b = try weights.tensor(name("biases", "_bias", i), shape: [channels, outputs, 1])
            var factor: [Float]?
            if i < count - 1 {
                factor = try weights.tensor(name("factors", "_factor", i), shape: [channels, outputs, 1]).scalars.map(Self.tanhF)
            }
            layers.append(Layer(matrix: m.scalars.map(Self.softplus), bias: b.scalars, factor: factor,
                                inputs: inputs, outputs: outputs))
            inputs = outputs
        }
        self.channels = channels
        self.layers = layers
    }

    // Transcendentals are evaluated in Double and rounded once to Float32 (correctly rounded, bar double
    // rounding). torch's vectorised float kernels are close to correctly rounded; glibc's tanhf/log1pf are not,
    // and with them one channel of the test model's table differs from the one CompressAI stored.

    /// `F.softplus` (beta 1, threshold 20).
    static func softplus(_ x: Float) -> Float { x > 20 ? x : Float(log1p(exp(Double(x)))) }
    static func sigmoid(_ x: Float) -> Float { Float(1 / (1 + exp(-Double(x)))) }
    static func tanhF(_ x: Float) -> Float { Float(tanh(Double(x))) }

    /// `_logits_cumulative` for one channel and one input, in Float32 with torch's operation order.
    func logitsCumulative(_ value: Float, channel c: Int) -> Float {
        var h: [Float] = [value]
        for layer in layers {
            var next = [Float](repeating: 0, count: layer.outputs)
            for o in 0..<layer.outputs {
                var acc: Float = 0
                for k in 0..<layer.inputs {
                    acc += layer.matrix[(c * layer.outputs + o) * layer.inputs + k] * h[k]
                }
                var y = acc + layer.bias[c * layer.outputs + o]
                if let factor = layer.factor { y += factor[c * layer.outputs + o] * Self.tanhF(y) }
                next[o] = y
            }
            h = next
        }
        return h[0]
    }
}

extension EntropyBottleneck {
    /// Builds the coding tables from the learned density, as CompressAI's `EntropyBottleneck.update(force=True)`
    /// (>= 1.2.5 formula: `pmf = sigmoid(upper) - sigmoid(lower)`, upper tail taken at the longest channel's last
    /// sample), then `pmf_to_quantized_cdf` at precision 16.
    ///
    /// Use this only for a checkpoint saved without tables. The result depends on Float32 rounding in the
    /// density MLP: it matches CompressAI 1.2.8 on the test model, but CompressAI <= 1.2.4 computes the pmf
    /// differently, and other builds can round differently, so **streams coded with rebuilt tables may not decode
    /// with another installation's tables**. Ship the tables with the checkpoint whenever possible.
    package init(rebuildingTablesFrom weights: WeightScope) throws(LadonError) {
        let quantiles = try weights.tensor("quantiles")
        let medians = try Self.loadMedians(weights)
        let channels = medians.count
        let density = try FactorizedDensity(weights: weights, channels: channels)
        var minima: [Int32] = [], lengths: [Int] = [], starts: [Float] = []
        for c in 0..<channels {
            let low = quantiles.scalars[3 * c], median = quantiles.scalars[3 * c + 1], high = quantiles.scalars[3 * c + 2]
            let below = (median - low).rounded(.up), above = (high - median).rounded(.up)
            guard below.isFinite, above.isFinite, below < 65536, above < 65536 else {
                throw .entropy(.unusableQuantiles(channel: c, low: low, median: median, high: high))
            }
            let lo = max(0, Int32(below)), hi = max(0, Int32(above))
            guard Int(lo) + Int(hi) + 1 <= 65535 else { throw .entropy(.tooManySymbols(channel: c, count: Int(lo) + Int(hi) + 1)) }
            minima.append(lo)
            lengths.append(Int(lo) + Int(hi) + 1)
            starts.append(median - Float(lo))
        }
        let maxLength = lengths.max()!
        var offsets: [Int32] = [], cdfLengths: [Int32] = [], rows: [[Int32]] = []
        for c in 0..<channels {
            var pmf: [Float] = []
            var firstLower: Float = 0
            for k in 0..<lengths[c] {
                let sample = Float(k) + starts[c]
                let lower = density.logitsCumulative(sample - 0.5, channel: c)
                let upper = density.logitsCumulative(sample + 0.5, channel: c)
                if k == 0 { firstLower = lower }
                pmf.append(FactorizedDensity.sigmoid(upper) - FactorizedDensity.sigmoid(lower))
            }
            // Quirk kept from CompressAI: the upper tail uses the last sample of the longest channel.
            let lastUpper = density.logitsCumulative(Float(maxLength - 1) + starts[c] + 0.5, channel: c)
            let tail = FactorizedDensity.sigmoid(firstLower) + FactorizedDensity.sigmoid(-lastUpper)
            pmf.append(tail)
            let cdf = try EntropyTables.pmfToQuantizedCDF(pmf, precision: 16)
            offsets.append(-minima[c])
            cdfLengths.append(Int32(cdf.count))
            rows.append(cdf.map { Int32($0) })
        }
        try self.init(medians: medians, offsets: offsets, cdfLengths: cdfLengths, cdfs: rows)
    }
}
