// Per-stage timings of the full-width detection head on a 416×416 padded image (random in-memory weights).
// Run: swift test -c release --filter DetectionPerf   (LADON_PERF_ITERS sets the repeat count)
import Foundation
import LadonTestSupport
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite(.serialized, .enabled(if: PerfGate.enabled, Comment(rawValue: PerfGate.reason)))
struct DetectionPerfTests {
    init() {
        PerfGate.announce()
    }

    static var iterations: Int { Int(ProcessInfo.processInfo.environment["LADON_PERF_ITERS"] ?? "") ?? 3 }

    /// Full-size weights (FPN 256, representation 1024, 91 classes) under the converter's names, in memory.
    static func weights(using rng: inout SplitMix64) throws -> WeightScope {
        var w = SafeTensorsWriter()
        func add(_ name: String, _ shape: [Int], std: Float) {
            w.add("detection_head." + name, Tensor.random(shape, in: -std...std, using: &rng))
        }
        let c = DetectionHeadConfig.ladon
        for (i, cin) in c.inChannels.enumerated() {
            add("fpn.inner_blocks.\(i).0.weight", [256, cin, 1, 1], std: (3 / Float(cin)).squareRoot())
            add("fpn.inner_blocks.\(i).0.bias", [256], std: 0.1)
            add("fpn.layer_blocks.\(i).0.weight", [256, 256, 3, 3], std: (3 / Float(9 * 256)).squareRoot())
            add("fpn.layer_blocks.\(i).0.bias", [256], std: 0.1)
        }
        add("rpn.head.conv.0.0.weight", [256, 256, 3, 3], std: (6 / Float(9 * 256)).squareRoot())
        add("rpn.head.conv.0.0.bias", [256], std: 0.1)
        add("rpn.head.cls_logits.weight", [3, 256, 1, 1], std: 0.2)
        add("rpn.head.cls_logits.bias", [3], std: 0.1)
        add("rpn.head.bbox_pred.weight", [12, 256, 1, 1], std: 0.02)
        add("rpn.head.bbox_pred.bias", [12], std: 0.01)
        add("roi_heads.box_head.fc6.weight", [1024, 12544], std: (6 / Float(12544)).squareRoot())
        add("roi_heads.box_head.fc6.bias", [1024], std: 0.1)
        add("roi_heads.box_head.fc7.weight", [1024, 1024], std: (6 / Float(1024)).squareRoot())
        add("roi_heads.box_head.fc7.bias", [1024], std: 0.1)
        add("roi_heads.box_predictor.cls_score.weight", [91, 1024], std: 0.2)
        add("roi_heads.box_predictor.cls_score.bias", [91], std: 1)
        add("roi_heads.box_predictor.bbox_pred.weight", [364, 1024], std: 0.05)
        add("roi_heads.box_predictor.bbox_pred.bias", [364], std: 0.1)
        return WeightScope(file: try SafeTensorsFile(data: w.serialized()), prefix: "detection_head")
    }

    static func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
    static func ms(_ s: Double) -> String { String(format: "%8.2f ms", s * 1000) }

    /// CPU seconds used by the whole process (all threads): a load-independent view on a shared machine.
    static func cpuTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static func time(_ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        let d = clock.measure(body)
        return d.seconds
    }

    @Test func fullWidthStages416() throws {
        var rng = SplitMix64(seed: 1)
        let head = try DetectionHead(weights: try Self.weights(using: &rng), config: .ladon)
        let features = [Tensor.random([1, 256, 104, 104], using: &rng), Tensor.random([1, 512, 52, 52], using: &rng),
                        Tensor.random([1, 1024, 26, 26], using: &rng), Tensor.random([1, 2048, 13, 13], using: &rng)]
        var timings: [DetectionTimings] = []
        var trace = DetectionTrace()
        for _ in 0..<Self.iterations {
            trace = try head.trace(features: features, paddedSize: (416, 416), imageSize: (416, 416), originalSize: (480, 640))
            timings.append(trace.timings)
        }
        print("DetectionPerf full head, 416×416 padded, median of \(Self.iterations) (\(trace.proposals.count) proposals, \(trace.detections.count) detections):")
        let stages: [(String, KeyPath<DetectionTimings, Double>)] = [
            ("FPN", \.fpn), ("RPN head", \.rpnHead), ("proposals+NMS", \.proposals), ("RoIAlign", \.roiAlign),
            ("box head", \.boxHead), ("postprocess", \.postprocess), ("total", \.total)]
        for (name, path) in stages { print("  \(name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(Self.ms(Self.median(timings.map { $0[keyPath: path] })))") }
    }

    /// The RoI stages (no convolutions) on exactly 1000 proposals over random P2–P4 maps, and NMS alone.
    @Test func roiStagesAndNMS() throws {
        var rng = SplitMix64(seed: 2)
        let pooler = MultiScaleRoIAlign(levels: DetectionHeadConfig.ladon.roiLevels)
        let postprocess = DetectionHeadConfig.ladon.postprocess
        let fpn = [104, 52, 26, 13, 7].map { Tensor.random([1, 256, $0, $0], using: &rng) }
        // The RoI stages on exactly 1000 proposals (random boxes inside the image), independent of the RPN's count.
        let proposals = (0..<1000).map { _ -> Box in
            let x = Float.random(in: 0...380, using: &rng), y = Float.random(in: 0...380, using: &rng)
            return Box(x1: x, y1: y, x2: min(416, x + Float.random(in: 4...300, using: &rng)),
                       y2: min(416, y + Float.random(in: 4...300, using: &rng)))
        }
        // Class logits spread like a trained detector's (a few classes above 0.05), small box deltas.
        let logits = Tensor.random([1000, 91], in: -6...6, using: &rng)
        let regression = Tensor.random([1000, 364], in: -1...1, using: &rng)
        var pool: [Double] = [], post: [Double] = []
        var detections: [Detection] = []
        for _ in 0..<Self.iterations {
            pool.append(Self.time { _ = pooler(fpn: fpn, boxes: proposals, imageHeight: 416) })
            post.append(Self.time {
                detections = postprocess(classLogits: logits, boxRegression: regression, proposals: proposals,
                                         imageSize: (416, 416))
            })
        }
        print("DetectionPerf RoI stages on 1000 proposals, median of \(Self.iterations) (\(detections.count) detections):")
        print("  RoIAlign       \(Self.ms(Self.median(pool)))")
        print("  postprocess    \(Self.ms(Self.median(post)))")
        // The two RoIAlign loop orders on P2 alone (all 1000 boxes), and the channels-last transpose by itself.
        for layout in [RoIAlignLayout.planar, .channelsLast] {
            var cpu: [Double] = []
            let t = (0..<Self.iterations).map { _ in
                let c0 = Self.cpuTime()
                defer { cpu.append(Self.cpuTime() - c0) }
                return Self.time { _ = Kernels.roiAlign(fpn[0], boxes: proposals, spatialScale: 0.25, outputSize: 7,
                                                        samplingRatio: 2, aligned: false, layout: layout) }
            }
            print("  RoIAlign P2 \(layout) \(Self.ms(Self.median(t))) (process CPU \(Self.ms(Self.median(cpu))))")
        }
        let transpose = (0..<Self.iterations).map { _ in Self.time { _ = Kernels.channelsLast(fpn[0]) } }
        print("  P2 transpose   \(Self.ms(Self.median(transpose)))")

        // NMS alone on 4,000 clustered boxes (the RPN's worst case: 5 levels × up to 1000).
        let boxes = (0..<4000).map { _ -> Box in
            let x = Float.random(in: 0...380, using: &rng), y = Float.random(in: 0...380, using: &rng)
            return Box(x1: x, y1: y, x2: x + Float.random(in: 8...120, using: &rng), y2: y + Float.random(in: 8...120, using: &rng))
        }
        let scores = (0..<4000).map { _ in Float.random(in: 0...1, using: &rng) }
        let groups = (0..<4000).map { $0 % 5 }
        var kept = 0
        let nms = (0..<Self.iterations).map { _ in
            Self.time { kept = Kernels.batchedNMS(boxes: boxes, scores: scores, groups: groups, iouThreshold: 0.7).count }
        }
        print("DetectionPerf batchedNMS 4000 boxes / 5 groups @0.7: \(Self.ms(Self.median(nms))) (\(kept) kept)")
    }
}
