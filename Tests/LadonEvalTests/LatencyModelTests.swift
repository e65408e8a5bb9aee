// The latency model of `ladon bench` on hand-computed numbers, rate parsing, and the report built from them.
import Foundation
import Testing
@testable import LadonEval

@Suite struct LatencyModelTests {
    /// Stage times (s) and sizes (B) chosen so every figure below can be checked by hand.
    static let profile = StageProfile(preprocess: 0.010, encoder: 0.020, entropyEncode: 0.005, jpegEncode: 0.004,
                                      jpegDecode: 0.003, entropyDecode: 0.006, decoderBody: 0.100,
                                      classificationHead: 0.010, detectionHead: 0.200, segmentationHead: 0.050,
                                      packetBytes: 1_000, jpegBytes: 50_000)
    // Device 10x slower, 20 ms round trip:
    //   local      = 10 · (0.010 + 0.020 + 0.100 + 0.260)                                        = 3.9 s
    //   offloading = 10 · 0.004 + 0.020 + (0.003 + 0.010 + 0.020 + 0.100 + 0.260) + 8·50000 / r  = 0.453 s + 400000 / r
    //   split      = 10 · 0.035 + 0.020 + (0.006 + 0.100 + 0.260)             + 8·1000 / r      = 0.736 s + 8000 / r
    static let model = LatencyModel(profile: profile, tasks: .all, deviceSlowdown: 10, roundTrip: 0.020)

    static func rate(_ bps: Double) throws -> DataRate { try DataRate(bitsPerSecond: bps) }

    @Test func scenariosAddTheirPartsAsDocumented() throws {
        let r = try Self.rate(1e6)
        let local = Self.model.breakdown(.local, at: r)
        #expect(abs(local.device - 3.9) < 1e-12 && local.transfer == 0 && local.roundTrip == 0 && local.server == 0)
        let offloading = Self.model.breakdown(.offloading, at: r)
        #expect(abs(offloading.device - 0.04) < 1e-12)
        #expect(abs(offloading.transfer - 0.4) < 1e-12)
        #expect(abs(offloading.server - 0.393) < 1e-12)
        #expect(abs(offloading.total - 0.853) < 1e-12)
        let split = Self.model.breakdown(.split, at: r)
        #expect(abs(split.device - 0.35) < 1e-12 && abs(split.transfer - 0.008) < 1e-12)
        #expect(abs(split.server - 0.366) < 1e-12 && split.roundTrip == 0.020)
        #expect(abs(split.total - 0.744) < 1e-12)
        #expect(Self.model.fastest(at: r) == .split)
        // At 50 Mbps the JPEG costs 8 ms and offloading wins; at 1 kbps nothing beats local computing.
        #expect(abs(Self.model.latency(.offloading, at: try Self.rate(50e6)) - 0.461) < 1e-12)
        #expect(Self.model.fastest(at: try Self.rate(50e6)) == .offloading)
        #expect(Self.model.fastest(at: try Self.rate(1e3)) == .local)
    }

    /// Pipeline timing runs whole passes (the first `warmupRuns` untimed); isolated timing runs one pass in which every
    /// stage runs its warm-up and timed runs before the next stage.
    @Test func stageTimingPlansThePassesAndReruns() {
        let pipeline = StageBenchmark(warmupRuns: 2, timedRuns: 5).runPlan
        #expect(pipeline.passes == 7 && pipeline.untimedPasses == 2)
        #expect(pipeline.reruns.warmup == 0 && pipeline.reruns.timed == 1)
        let isolated = StageBenchmark(warmupRuns: 2, timedRuns: 5, timing: .isolated).runPlan
        #expect(isolated.passes == 1 && isolated.untimedPasses == 0)
        #expect(isolated.reruns.warmup == 2 && isolated.reruns.timed == 5)
    }

    @Test func crossoversAreTheRatesWhereLatenciesMeet() throws {
        // split < offloading ⟺ 0.736 + 8000/r < 0.453 + 400000/r ⟺ r < 392000 / 0.283
        guard case .below(let vsOffloading) = Self.model.crossover(.split, beats: .offloading) else {
            Issue.record("split should beat offloading below a rate"); return
        }
        #expect(abs(vsOffloading.bitsPerSecond - 392_000 / 0.283) < 1e-6)
        // split < local ⟺ 0.736 + 8000/r < 3.9 ⟺ r > 8000 / 3.164
        guard case .above(let vsLocal) = Self.model.crossover(.split, beats: .local) else {
            Issue.record("split should beat local above a rate"); return
        }
        #expect(abs(vsLocal.bitsPerSecond - 8_000 / 3.164) < 1e-9)
        // At the crossover the two latencies are equal; either side the winner changes.
        for (a, b, r) in [(LatencyScenario.split, LatencyScenario.offloading, vsOffloading), (.split, .local, vsLocal)] {
            #expect(abs(Self.model.latency(a, at: r) - Self.model.latency(b, at: r)) < 1e-9)
        }
        #expect(Self.model.latency(.split, at: try Self.rate(vsOffloading.bitsPerSecond * 0.99)) < Self.model.latency(.offloading, at: try Self.rate(vsOffloading.bitsPerSecond * 0.99)))
        #expect(Self.model.latency(.split, at: try Self.rate(vsOffloading.bitsPerSecond * 1.01)) > Self.model.latency(.offloading, at: try Self.rate(vsOffloading.bitsPerSecond * 1.01)))
        // The reverse comparisons mirror them.
        #expect(Self.model.crossover(.offloading, beats: .split) == .above(vsOffloading))
        #expect(Self.model.crossover(.local, beats: .split) == .below(vsLocal))
    }

    @Test func crossoverEdgeCases() throws {
        // With a slow JPEG decode offloading's fixed part is larger too, so split wins at every rate.
        var p = Self.profile
        p.jpegDecode = 1
        let m = LatencyModel(profile: p)
        #expect(m.crossover(.split, beats: .offloading) == .always)
        #expect(m.crossover(.offloading, beats: .split) == .never)
        // Local sends nothing: if its fixed part is no larger, split never beats it.
        var q = Self.profile
        q.entropyDecode = 10
        #expect(LatencyModel(profile: q).crossover(.split, beats: .local) == .never)
        // Equal bytes: decided by the fixed parts alone; a tie is no win.
        #expect(LatencyModel(profile: Self.profile).crossover(.local, beats: .local) == .never)
    }

    @Test func taskSelectionCountsOnlyItsHead() throws {
        let r = try Self.rate(1e6)
        let detection = LatencyModel(profile: Self.profile, tasks: .detection, deviceSlowdown: 10, roundTrip: 0.020)
        #expect(abs(detection.breakdown(.split, at: r).server - (0.006 + 0.100 + 0.200)) < 1e-12)
        let classification = LatencyModel(profile: Self.profile, tasks: .classification)
        #expect(abs(classification.breakdown(.local, at: r).device - (0.010 + 0.020 + 0.100 + 0.010)) < 1e-12)
        #expect(abs(LatencyModel(profile: Self.profile, tasks: .segmentation).breakdown(.offloading, at: r).server
                    - (0.003 + 0.010 + 0.020 + 0.100 + 0.050)) < 1e-12)
    }

    @Test func responseBytesAreSentInBothOffloadingScenarios() throws {
        let m = LatencyModel(profile: Self.profile, responseBytes: 500)
        let r = try Self.rate(8_000)  // 1 ms per byte
        #expect(abs(m.breakdown(.split, at: r).transfer - 1.5) < 1e-12)
        #expect(abs(m.breakdown(.offloading, at: r).transfer - 50.5) < 1e-12)
        #expect(m.breakdown(.local, at: r).transfer == 0)
    }

    @Test func energyIsPowerTimesTime() throws {
        let power = PowerModel(deviceWatts: 2, radioWatts: 0.5)
        let b = Self.model.breakdown(.split, at: try Self.rate(1e6))
        #expect(abs(power.deviceJoules(b) - (2 * 0.35 + 0.5 * 0.008)) < 1e-12)
    }

    // MARK: Rates

    @Test func ratesParseInDecimalSIUnits() throws {
        let rates = try DataRate.list(parsing: "37.5kbps,250kbps,1Mbps,5Mbps,50Mbps")
        #expect(rates.map(\.bitsPerSecond) == [37_500, 250_000, 1e6, 5e6, 50e6])
        #expect(try DataRate(parsing: "2Gbps").bitsPerSecond == 2e9)
        #expect(try DataRate(parsing: " 9600 bps ").bitsPerSecond == 9_600)
        #expect(try DataRate(parsing: "5 mbps").bitsPerSecond == 5e6)
        #expect(try DataRate(parsing: ".5KBPS").bitsPerSecond == 500)
        // Sorted, duplicates dropped.
        #expect(try DataRate.list(parsing: "1Mbps,1000kbps,10kbps").map(\.bitsPerSecond) == [10_000, 1e6])
        #expect(rates.map(\.description) == ["37.5 kbps", "250 kbps", "1 Mbps", "5 Mbps", "50 Mbps"])
    }

    @Test func badRatesAreRefusedWithTheReason() {
        #expect(throws: DataRateError.unknownUnit("5")) { try DataRate(parsing: "5") }
        #expect(throws: DataRateError.unknownUnit("5MB/s")) { try DataRate(parsing: "5MB/s") }
        #expect(throws: DataRateError.notANumber("kbps")) { try DataRate(parsing: "kbps") }
        #expect(throws: DataRateError.notANumber("-5kbps")) { try DataRate(parsing: "-5kbps") }
        #expect(throws: DataRateError.notANumber("1e3bps")) { try DataRate(parsing: "1e3bps") }
        #expect(throws: DataRateError.notANumber("infbps")) { try DataRate(parsing: "infbps") }
        #expect(throws: DataRateError.notANumber("1.2.3Mbps")) { try DataRate(parsing: "1.2.3Mbps") }
        #expect(throws: DataRateError.notPositive("0kbps")) { try DataRate(parsing: "0kbps") }
        #expect(throws: DataRateError.empty) { try DataRate.list(parsing: "") }
        #expect(throws: DataRateError.empty) { try DataRate.list(parsing: "1Mbps,,5Mbps") }
        #expect(throws: DataRateError.notPositive("0.0 bps")) { try DataRate(bitsPerSecond: 0) }
    }

    @Test func summariesInterpolateLikeNumPy() {
        // numpy.percentile([1, 2, 3, 4, 10], [50, 90]) == [3.0, 7.6]
        let s = TimingSummary([10, 1, 4, 2, 3])
        #expect(s.count == 5 && s.median == 3 && abs(s.p90 - 7.6) < 1e-12)
        // numpy.percentile([1, 2, 3, 4], [50, 90]) == [2.5, 3.7]
        let even = TimingSummary([4, 3, 2, 1])
        #expect(even.median == 2.5 && abs(even.p90 - 3.7) < 1e-12)
        #expect(TimingSummary([7]).median == 7 && TimingSummary([7]).p90 == 7)
    }

    // MARK: Report

    static func report(power: PowerModel? = nil) throws -> BenchReport {
        let seconds: [BenchStage: Double] = [.preprocess: 0.010, .encoder: 0.020, .entropyEncode: 0.005, .jpegEncode: 0.004,
                                             .jpegDecode: 0.003, .entropyDecode: 0.006, .decoderBody: 0.100,
                                             .classificationHead: 0.010, .detectionHead: 0.200, .segmentationHead: 0.050]
        let measurement = StageBenchmark.Measurement(
            stages: seconds.mapValues { TimingSummary([$0, $0, $0 * 2]) },
            images: [.init(file: "a.jpg", width: 640, height: 480, compressedBytes: 932, packetBytes: 1_000, jpegBytes: 50_000)])
        #expect(measurement.profile == profile)
        let context = BenchReport.Context(modelPath: "/models/m.safetensors", fingerprint: "abc", threads: 2, jpegQuality: 95,
                                          warmupRuns: 2, timedRuns: 3)
        return BenchReport(context: context, measurement: measurement, model: model,
                           rates: try DataRate.list(parsing: "37.5kbps,1Mbps,50Mbps"), power: power)
    }

    @Test func reportTextShowsStagesTransferAndCrossovers() throws {
        let text = try Self.report().text()
        #expect(text.contains("device  entropy encode"))
        #expect(text.contains("server  detection head"))
        // 1 Mbps split: device 350.00, transfer 8.00, RTT 20.00, server 366.00, total 744.00, fastest.
        #expect(text.contains("split computing       350.00         8.00    20.00     366.00      744.00  *"))
        #expect(text.contains("split computing beats full offloading below 1.39 Mbps."))
        #expect(text.contains("split computing beats local computing above 2.53 kbps."))
        #expect(!text.contains("device J"))
        #expect(try Self.report(power: PowerModel(deviceWatts: 2, radioWatts: 0.5)).text().contains("device J"))
    }

    @Test func reportJSONFollowsTheDocumentedSchema() throws {
        let json = try Self.report().json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["model", "settings", "images", "bytes", "stages", "latency", "crossovers"])
        let latency = try #require(object["latency"] as? [[String: Any]])
        #expect(latency.count == 3)
        let middle = latency[1]
        #expect(middle["bitsPerSecond"] as? Double == 1e6 && middle["fastest"] as? String == "split")
        let split = try #require(middle["split"] as? [String: Double])
        #expect(abs(split["totalMs"]! - 744) < 1e-9 && abs(split["transferMs"]! - 8) < 1e-9 && split["bytesSent"] == 1_000)
        #expect(split["deviceEnergyJ"] == nil)
        let stages = try #require(object["stages"] as? [[String: Any]])
        #expect(stages.count == BenchStage.allCases.count && stages[0]["name"] as? String == "preprocess")
        #expect(abs((stages[0]["p90Ms"] as? Double ?? 0) - 18) < 1e-9)
        let crossovers = try #require(object["crossovers"] as? [[String: Any]])
        #expect(crossovers[0]["wins"] as? String == "below" && crossovers[1]["wins"] as? String == "above")
        let withPower = try #require(try JSONSerialization.jsonObject(
            with: Data(try Self.report(power: PowerModel(deviceWatts: 2, radioWatts: 0.5)).json().utf8)) as? [String: Any])
        #expect(withPower["power"] != nil)
    }

    @Test func chartHasOneCurvePerScenarioAndTheCrossovers() throws {
        let chart = try Self.report().chart()
        #expect(chart.series.map(\.label) == ["local computing", "full offloading", "split computing"])
        #expect(chart.series.allSatisfy { $0.markers.count == 3 })
        #expect(chart.guides.count == 2)
        #expect(abs(chart.guides[0].x - 392_000 / 0.283) < 1e-6 && chart.xAxis.scale == .log10)
    }
}
