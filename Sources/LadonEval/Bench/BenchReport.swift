// The output of `ladon bench`: the stage table, the latency table, the JSON object and the latency chart.
import Foundation

/// Stage measurements plus the latency model at a list of rates, written as text, JSON or an SVG chart.
public struct BenchReport: Sendable {
    /// What was measured, for the header and the JSON `model`/`settings` fields.
    public struct Context: Sendable {
        public var modelPath: String
        public var fingerprint: String?
        public var threads: Int
        public var jpegQuality: Int
        public var warmupRuns: Int
        public var timedRuns: Int
        /// The GEMM kernel path that ran (`Kernels.gemmKernelName`, e.g. `avx2-6x16`), so figures say which it was.
        public var gemmKernel: String?
        /// Whole passes or each stage on its own (``StageTiming``).
        public var timing: StageTiming

        public init(modelPath: String, fingerprint: String?, threads: Int, jpegQuality: Int, warmupRuns: Int, timedRuns: Int,
                    gemmKernel: String? = nil, timing: StageTiming = .pipeline) {
            self.gemmKernel = gemmKernel
            self.timing = timing
            self.modelPath = modelPath
            self.fingerprint = fingerprint
            self.threads = threads
            self.jpegQuality = jpegQuality
            self.warmupRuns = warmupRuns
            self.timedRuns = timedRuns
        }
    }

    public var context: Context
    public var measurement: StageBenchmark.Measurement
    public var model: LatencyModel
    public private(set) var rates: [DataRate]
    /// Power figures from the user; without them no energy is reported.
    public var power: PowerModel?

    /// `rates` must not be empty; they are kept sorted.
    public init(context: Context, measurement: StageBenchmark.Measurement, model: LatencyModel, rates: [DataRate],
                power: PowerModel? = nil) {
        precondition(!rates.isEmpty, "a report needs at least one rate")
        self.context = context
        self.measurement = measurement
        self.model = model
        self.rates = rates.sorted()
        self.power = power
    }

    /// The pairs whose crossover is reported: split against each alternative, then offloading against local.
    public static let comparedPairs: [(LatencyScenario, LatencyScenario)] = [(.split, .offloading), (.split, .local), (.offloading, .local)]

    /// Where `a` beats `b`, as a sentence: "split computing beats full offloading below 1.39 Mbps".
    public static func sentence(_ a: LatencyScenario, _ b: LatencyScenario, _ c: Crossover) -> String {
        let head = "\(a.title) beats \(b.title)"
        switch c {
        case .always: return "\(head) at every rate"
        case .never: return "\(a.title) never beats \(b.title)"
        case .below(let r): return "\(head) below \(r)"
        case .above(let r): return "\(head) above \(r)"
        }
    }

    // MARK: Text

    /// The readable report: stage medians and p90s, sizes, the latency table with its parts, the crossovers.
    public func text() -> String {
        let c = context, p = model.profile
        let imageCount = measurement.images.count
        var out = "ladon bench: \((c.modelPath as NSString).lastPathComponent), \(imageCount) image\(imageCount == 1 ? "" : "s"), "
            + "\(c.warmupRuns) warm-up + \(c.timedRuns) timed runs "
            + (c.timing == .isolated ? "of each stage on its own (warm caches)" : "each")
            + ", \(c.threads) thread\(c.threads == 1 ? "" : "s")"
            + (c.gemmKernel.map { ", GEMM kernel \($0)" } ?? "") + "\n\n"
        out += pad("Stage (this machine)", 30) + lpad("median ms", 11) + lpad("p90 ms", 11) + "\n"
        for stage in BenchStage.allCases {
            let name = "  " + pad(stage.side.rawValue, 8) + stage.title + (stage == .jpegEncode || stage == .jpegDecode ? " (q\(c.jpegQuality))" : "")
            if let s = measurement.stages[stage] {
                out += pad(name, 30) + lpad(ms(s.median), 11) + lpad(ms(s.p90), 11) + "\n"
            } else {
                out += pad(name, 30) + lpad("no head", 11) + "\n"
            }
        }
        out += "(full offloading runs preprocess and encoder on the server too, at the same times)\n"
        out += "\nBytes sent (median over images): compressed string \(Int(sizeMedian(\.compressedBytes))), "
            + "LDNP packet \(Int(p.packetBytes)), JPEG at quality \(c.jpegQuality) \(Int(p.jpegBytes)); "
            + (model.responseBytes > 0 ? "response \(Int(model.responseBytes)) counted in both offloading scenarios\n"
                                       : "response not counted\n")
        out += "\nLatency model (README, \"Latency against bandwidth\"): heads \(model.tasks.rawValue), device slowdown "
            + "\(String(format: "%g", model.deviceSlowdown))x, RTT \(ms(model.roundTrip)) ms"
            + (power.map { String(format: ", power %g W device / %g W radio (energy = P x t, a model)", $0.deviceWatts, $0.radioWatts) } ?? "") + "\n"
        var header = lpad("rate", 11) + "  " + pad("scenario", 17) + lpad("device ms", 11) + lpad("transfer ms", 13)
            + lpad("RTT ms", 9) + lpad("server ms", 11) + lpad("total ms", 12)
        if power != nil { header += lpad("device J", 11) }
        out += header + "\n"
        for rate in rates {
            let fastest = model.fastest(at: rate)
            for (i, scenario) in LatencyScenario.allCases.enumerated() {
                let b = model.breakdown(scenario, at: rate)
                var line = lpad(i == 0 ? rate.description : "", 11) + "  " + pad(scenario.title, 17) + lpad(ms(b.device), 11)
                    + lpad(ms(b.transfer), 13) + lpad(ms(b.roundTrip), 9) + lpad(ms(b.server), 11) + lpad(ms(b.total), 12)
                if let power { line += lpad(String(format: "%.4f", power.deviceJoules(b)), 11) }
                out += line + (scenario == fastest ? "  *" : "") + "\n"
            }
        }
        out += "(* fastest at that rate)\n\n"
        for (a, b) in Self.comparedPairs {
            out += Self.sentence(a, b, model.crossover(a, beats: b)) + ".\n"
        }
        return out
    }

    // MARK: JSON

    /// The `--json` object (README, "Latency against bandwidth"): model, settings, images, bytes, stages (ms),
    /// latency per rate with each scenario's parts, crossovers, and power only when given.
    public struct JSONObject: Sendable, Encodable {
        public struct Model: Sendable, Encodable { public var path: String; public var fingerprint: String? }
        public struct Settings: Sendable, Encodable {
            public var tasks: String
            public var deviceSlowdown: Double
            public var rttMs: Double
            public var responseBytes: Double
            public var jpegQuality: Int
            public var warmupRuns: Int
            public var timedRuns: Int
            public var threads: Int
            public var gemmKernel: String?
            /// `pipeline` or `isolated` (``StageTiming``).
            public var timing: String
        }
        public struct Stage: Sendable, Encodable {
            public var name: String, side: String
            public var medianMs: Double, p90Ms: Double
            public var samples: Int
        }
        public struct Bytes: Sendable, Encodable { public var compressed: Double, packet: Double, jpeg: Double, response: Double }
        public struct Scenario: Sendable, Encodable {
            public var deviceMs: Double, transferMs: Double, rttMs: Double, serverMs: Double, totalMs: Double
            public var bytesSent: Double
            public var deviceEnergyJ: Double?
        }
        public struct Rate: Sendable, Encodable {
            public var rate: String
            public var bitsPerSecond: Double
            public var fastest: String
            public var local: Scenario, offloading: Scenario, split: Scenario
        }
        public struct CrossoverEntry: Sendable, Encodable {
            public var scenario: String, versus: String
            /// `always`, `never`, `below` or `above`.
            public var wins: String
            public var bitsPerSecond: Double?
            public var rate: String?
        }
        public struct Power: Sendable, Encodable {
            public var deviceW: Double, radioW: Double
            public var model: String
        }
        public var model: Model
        public var settings: Settings
        public var images: [StageBenchmark.ImageSizes]
        public var bytes: Bytes
        public var stages: [Stage]
        public var latency: [Rate]
        public var crossovers: [CrossoverEntry]
        public var power: Power?
    }

    public var jsonObject: JSONObject {
        let c = context, p = model.profile
        func scenario(_ s: LatencyScenario, _ rate: DataRate) -> JSONObject.Scenario {
            let b = model.breakdown(s, at: rate)
            return .init(deviceMs: 1000 * b.device, transferMs: 1000 * b.transfer, rttMs: 1000 * b.roundTrip,
                         serverMs: 1000 * b.server, totalMs: 1000 * b.total, bytesSent: b.bytes,
                         deviceEnergyJ: power?.deviceJoules(b))
        }
        let stages = BenchStage.allCases.compactMap { stage in
            measurement.stages[stage].map {
                JSONObject.Stage(name: stage.rawValue, side: stage.side.rawValue, medianMs: 1000 * $0.median,
                                 p90Ms: 1000 * $0.p90, samples: $0.count)
            }
        }
        let crossovers = Self.comparedPairs.map { a, b in
            let c = model.crossover(a, beats: b)
            var entry = JSONObject.CrossoverEntry(scenario: a.rawValue, versus: b.rawValue, wins: "", bitsPerSecond: nil, rate: nil)
            switch c {
            case .always: entry.wins = "always"
            case .never: entry.wins = "never"
            case .below(let r), .above(let r):
                entry.wins = c == .below(r) ? "below" : "above"
                entry.bitsPerSecond = r.bitsPerSecond
                entry.rate = r.description
            }
            return entry
        }
        return JSONObject(
            model: .init(path: c.modelPath, fingerprint: c.fingerprint),
            settings: .init(tasks: model.tasks.rawValue, deviceSlowdown: model.deviceSlowdown, rttMs: 1000 * model.roundTrip,
                            responseBytes: model.responseBytes, jpegQuality: c.jpegQuality, warmupRuns: c.warmupRuns,
                            timedRuns: c.timedRuns, threads: c.threads, gemmKernel: c.gemmKernel,
                            timing: c.timing.rawValue),
            images: measurement.images,
            bytes: .init(compressed: sizeMedian(\.compressedBytes), packet: p.packetBytes, jpeg: p.jpegBytes,
                         response: model.responseBytes),
            stages: stages,
            latency: rates.map { r in
                .init(rate: r.description, bitsPerSecond: r.bitsPerSecond, fastest: model.fastest(at: r).rawValue,
                      local: scenario(.local, r), offloading: scenario(.offloading, r), split: scenario(.split, r))
            },
            crossovers: crossovers,
            power: power.map { .init(deviceW: $0.deviceWatts, radioW: $0.radioWatts,
                                     model: "E = deviceW x device compute time + radioW x transfer time") })
    }

    /// ``jsonObject`` as one line of JSON with sorted keys.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(jsonObject), as: UTF8.self)
    }

    // MARK: Chart

    /// Latency against rate in the spirit of the paper's Figure 5: log-log axes, one curve per scenario (the
    /// model evaluated between the rates), markers at the requested rates, the split crossovers as guides.
    /// Rates range over the requested ones and any split crossover within two decades of them.
    public func chart() -> SVGChart {
        let guides = [(LatencyScenario.split, LatencyScenario.offloading), (.split, .local)].compactMap { a, b -> SVGChart.Guide? in
            switch model.crossover(a, beats: b) {
            case .below(let r), .above(let r):
                // Crossovers within two decades of the requested rates widen the axis; farther ones are left out.
                let inView = r.bitsPerSecond >= rates[0].bitsPerSecond / 100 && r.bitsPerSecond <= rates[rates.count - 1].bitsPerSecond * 100
                let side = model.crossover(a, beats: b) == .below(r) ? "below" : "above"
                return inView ? SVGChart.Guide(x: r.bitsPerSecond, label: "\(a.rawValue) beats \(b.rawValue) \(side) \(r)") : nil
            case .always, .never: return nil
            }
        }
        let low = min(rates[0].bitsPerSecond, guides.map(\.x).min() ?? .infinity)
        let high = max(rates[rates.count - 1].bitsPerSecond, guides.map(\.x).max() ?? 0)
        let steps = 96
        let curveRates = (0...steps).compactMap { i in
            try? DataRate(bitsPerSecond: low * pow(high / low, Double(i) / Double(steps)))
        }
        let shapes: [LatencyScenario: SVGChart.MarkerShape] = [.local: .square, .offloading: .triangle, .split: .circle]
        let series = LatencyScenario.allCases.map { s in
            SVGChart.Series(label: s.title,
                            line: curveRates.map { .init(x: $0.bitsPerSecond, y: model.latency(s, at: $0)) },
                            markers: rates.map { .init(x: $0.bitsPerSecond, y: model.latency(s, at: $0)) },
                            shape: shapes[s]!)
        }
        let slowdown = model.deviceSlowdown == 1 ? "" : String(format: ", device %gx slower", model.deviceSlowdown)
        return SVGChart(title: "End-to-end latency against data rate (heads: \(model.tasks.rawValue)\(slowdown))",
                        x: .init(title: "Data rate", scale: .log10, tickLabel: { DataRate.format($0) }),
                        y: .init(title: "End-to-end latency [s]", scale: .log10, tickLabel: { String(format: "%g", $0) }),
                        series: series, guides: guides)
    }

    // MARK: Helpers

    private func sizeMedian(_ key: KeyPath<StageBenchmark.ImageSizes, Int>) -> Double {
        TimingSummary(measurement.images.map { Double($0[keyPath: key]) }).median
    }
}

/// Milliseconds with two decimals.
private func ms(_ seconds: Double) -> String { String(format: "%.2f", 1000 * seconds) }
private func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }
private func lpad(_ s: String, _ width: Int) -> String { s.count >= width ? " " + s : String(repeating: " ", count: width - s.count) + s }
