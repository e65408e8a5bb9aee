// The detection head stage by stage against torchvision's Faster R-CNN modules (fixture: small random widths).
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct DetectionHeadTests {
    static let file = "detection_head.safetensors"

    /// The fixture's widths and its two configurations ("default": P2–P4, canonical 224; "levels": P2–P5,
    /// canonical 40, smaller top-n), see Scripts/make_detection_fixtures.py.
    static func config(_ name: String) -> DetectionHeadConfig {
        var c = DetectionHeadConfig.ladon
        c.inChannels = [8, 16, 32, 64]
        c.fpnChannels = 16
        c.representationSize = 32
        if name == "levels" {
            c.roiLevels = [0, 1, 2, 3]
            c.canonicalScale = 40
            c.proposals.preNMSTopN = 500
            c.proposals.postNMSTopN = 300
            c.postprocess.detectionsPerImage = 40
        }
        return c
    }

    struct Setup {
        let file: SafeTensorsFile
        let head: DetectionHead
        let features: [Tensor]
        let padded: (h: Int, w: Int), image: (h: Int, w: Int), original: (h: Int, w: Int)

        init(_ name: String) throws {
            let f = try Fixtures.safetensors(DetectionHeadTests.file)
            func size(_ key: String) -> (h: Int, w: Int) {
                let v = f.metadata[key]!.split(separator: ",").map { Int($0)! }
                return (v[0], v[1])
            }
            file = f
            head = try DetectionHead(weights: WeightScope(file: f, prefix: "detection_head"),
                                     config: DetectionHeadTests.config(name))
            features = try (0..<4).map { try f.tensor("input.\($0)") }
            padded = size("padded")
            image = size("image")
            original = size("original")
        }

        func trace() throws -> DetectionTrace {
            try head.trace(features: features, paddedSize: padded, imageSize: image, originalSize: original)
        }
    }

    static func boxTensor(_ boxes: [Box]) -> Tensor {
        Tensor(shape: [boxes.count, 4], scalars: boxes.flatMap { [$0.x1, $0.y1, $0.x2, $0.y2] })
    }

    static func rows(_ t: Tensor, _ rows: [Int]) -> Tensor {
        let per = t.count / max(t.shape[0], 1)
        return Tensor(shape: [rows.count] + t.shape.dropFirst(), scalars: rows.flatMap { t.scalars[($0 * per)..<(($0 + 1) * per)] })
    }

    @Test func sharedStagesMatchTorchvision() throws {
        let s = try Setup("default")
        let t = try s.trace()
        #expect(t.fpn.count == 5)
        for i in 0..<5 { expectClose(t.fpn[i], try s.file.tensor("common.fpn.\(i)"), rtol: 1e-5, atol: 1e-5, "fpn \(i)") }
        let anchors = try s.file.integers("common.anchors").map(Float.init)
        #expect(Self.boxTensor(t.anchors).scalars == anchors, "anchors")
        expectClose(Tensor(shape: [t.objectness.count], scalars: t.objectness), try s.file.tensor("common.objectness"),
                    rtol: 1e-5, atol: 1e-5, "objectness")
        expectClose(Tensor(shape: [t.deltas.count / 4, 4], scalars: t.deltas), try s.file.tensor("common.deltas"),
                    rtol: 1e-5, atol: 1e-5, "deltas")
    }

    @Test(arguments: ["default", "levels"])
    func proposalsAndDetectionsMatchTorchvision(_ name: String) throws {
        let s = try Setup(name)
        let t = try s.trace()
        let f = s.file
        // Proposals: same count and order, boxes and scores within float32 noise.
        let proposals = try f.tensor("\(name).proposals")
        #expect(t.proposals.count == proposals.shape[0])
        expectClose(Self.boxTensor(t.proposals), proposals, rtol: 1e-6, atol: 1e-4, "\(name) proposals")
        expectClose(Tensor(shape: [t.proposalScores.count], scalars: t.proposalScores),
                    try f.tensor("\(name).proposal_scores"), rtol: 0, atol: 1e-5, "\(name) proposal scores")
        // Level assignment of every proposal and the per-RoI stages on the dumped rows.
        #expect(t.proposalLevels.map { $0 ?? -1 } == (try f.integers("\(name).roi_levels")))
        let rows = try f.integers("\(name).roi_rows")
        expectClose(Self.rows(t.roiFeatures, rows), try f.tensor("\(name).roi_features"), rtol: 1e-5, atol: 1e-5, "\(name) roi")
        expectClose(Self.rows(t.boxFeatures, rows), try f.tensor("\(name).box_features"), rtol: 1e-5, atol: 1e-5, "\(name) fc7")
        expectClose(Self.rows(t.classLogits, rows), try f.tensor("\(name).class_logits"), rtol: 1e-5, atol: 1e-5, "\(name) logits")
        expectClose(Self.rows(t.boxRegression, rows), try f.tensor("\(name).box_regression"), rtol: 1e-5, atol: 1e-5,
                    "\(name) regression")
        // Detections: same count, identical labels, boxes and scores within tolerance.
        let labels = try f.integers("\(name).det_labels")
        #expect(t.detections.count == labels.count)
        #expect(t.detections.map(\.label) == labels)
        expectClose(Tensor(shape: [t.detections.count], scalars: t.detections.map(\.score)), try f.tensor("\(name).det_scores"),
                    rtol: 0, atol: 1e-5, "\(name) scores")
        // Decoding multiplies the proposal's float32 noise by exp(dh) (up to 62.5), hence 1e-5 relative here.
        expectClose(Self.boxTensor(t.resizedDetections.map(\.box)), try f.tensor("\(name).det_boxes_resized"),
                    rtol: 1e-5, atol: 1e-4, "\(name) boxes (resized)")
        expectClose(Self.boxTensor(t.detections.map(\.box)), try f.tensor("\(name).det_boxes"),
                    rtol: 1e-5, atol: 4e-4, "\(name) boxes")
        let direct = try s.head(features: s.features, paddedSize: s.padded, imageSize: s.image, originalSize: s.original)
        #expect(direct == t.detections)
        #expect(t.timings.total > 0)
    }

    /// The RoI stage in isolation (torchvision's own proposals and FPN maps in), so a failure points at the pooler.
    @Test(arguments: ["default", "levels"])
    func multiScaleRoIAlignOnTorchvisionProposals(_ name: String) throws {
        let s = try Setup(name)
        let fpn = try (0..<5).map { try s.file.tensor("common.fpn.\($0)") }
        let proposals = NMSTests.boxes(try s.file.tensor("\(name).proposals"))
        let (features, levels) = s.head.pooler(fpn: fpn, boxes: proposals, imageHeight: s.image.h)
        #expect(levels.map { $0 ?? -1 } == (try s.file.integers("\(name).roi_levels")))
        expectClose(Self.rows(features, try s.file.integers("\(name).roi_rows")), try s.file.tensor("\(name).roi_features"),
                    rtol: 0, atol: 2e-6, "\(name) pooled")
        let scales = s.head.pooler.spatialScales(featureHeights: s.head.config.roiLevels.map { fpn[$0].h },
                                                 imageHeight: s.image.h)
        #expect(scales == Array([Float(0.25), 0.125, 0.0625, 0.03125].prefix(s.head.config.roiLevels.count)))
    }

    /// The pooled features are written without a zero fill first: every row is written, a box no level pools (NaN
    /// area) gets zeros, and each row equals pooling that box alone into a zeroed buffer, on a heap left full of NaNs.
    @Test func pooledRowsAreAllWrittenWithoutAZeroFill() {
        var rng = SplitMix64(seed: 48)
        let pooler = MultiScaleRoIAlign(levels: [0, 1, 2, 3])
        let (channels, image) = (8, 64)
        let fpn = [16, 8, 4, 2].map { Tensor.random([1, channels, $0, $0], using: &rng) }
        var boxes = (0..<5).map { i -> Box in
            let size = Float(4 << i)
            return Box(x1: 1, y1: 2, x2: 1 + size, y2: 2 + size * 0.75)
        }
        boxes.insert(Box(x1: .nan, y1: 0, x2: 5, y2: 5), at: 2)
        boxes.append(Box(x1: 30, y1: 30, x2: 30, y2: 30))  // zero area
        let rowSize = channels * 49
        for _ in 0..<3 {
            // Leave freed NaNs where the pooled rows will likely be allocated.
            do { let dirty = [Float](repeating: .nan, count: boxes.count * rowSize); _ = dirty.count }
            let (features, levels) = pooler(fpn: fpn, boxes: boxes, imageHeight: image)
            #expect(levels[2] == nil && features.scalars.allSatisfy(\.isFinite))
            #expect(features.scalars[(2 * rowSize)..<(3 * rowSize)].allSatisfy { $0 == 0 })
            let scales = pooler.spatialScales(featureHeights: fpn.map(\.h), imageHeight: image)
            for (row, level) in levels.enumerated() {
                guard let level else { continue }
                var alone = [Float](repeating: 0, count: rowSize)
                alone.withUnsafeMutableBufferPointer {
                    Kernels.roiAlign(into: $0.baseAddress!, rows: [0], feature: fpn[level], boxes: [boxes[row]],
                                     spatialScale: scales[level], outputSize: 7, samplingRatio: 2, aligned: false)
                }
                #expect(Array(features.scalars[(row * rowSize)..<((row + 1) * rowSize)]) == alone, "row \(row)")
            }
        }
    }

    /// torchvision's `_setup_scales` (height only, unpadded H'), incl. flat images where it stops giving 1/4.
    @Test func poolerScalesAreInferredLikeTorchvision() throws {
        let f = try Fixtures.safetensors(Self.file)
        let heights = try f.integers("scales.image_heights")
        let expected = try f.tensor("scales.values"), levels = try f.integers("scales.levels")
        let pooler = MultiScaleRoIAlign(levels: [0, 1, 2, 3])
        for (i, h) in heights.enumerated() {
            let padded = (h + 31) / 32 * 32
            let scales = pooler.spatialScales(featureHeights: [4, 8, 16, 32].map { padded / $0 }, imageHeight: h)
            #expect(scales == Array(expected.scalars[(4 * i)..<(4 * i + 4)]), "height \(h)")
            let range = MultiScaleRoIAlign.levelRange(scales)
            #expect([range.min, range.max] == Array(levels[(2 * i)..<(2 * i + 2)]), "height \(h)")
        }
        var fixed = MultiScaleRoIAlign(levels: [0, 1, 2])
        fixed.scales = .fixed([0.25, 0.125, 0.0625])
        #expect(fixed.spatialScales(featureHeights: [2, 1, 1], imageHeight: 5) == [0.25, 0.125, 0.0625])
    }

    @Test func anchorsFollowTorchvisionConstants() {
        let g = AnchorGenerator(sizes: [32, 64, 128, 256, 512], aspectRatios: [0.5, 1, 2])
        let expected: [[Float]] = [
            [-23, -11, 23, 11, -16, -16, 16, 16, -11, -23, 11, 23],
            [-45, -23, 45, 23, -32, -32, 32, 32, -23, -45, 23, 45],
            [-91, -45, 91, 45, -64, -64, 64, 64, -45, -91, 45, 91],
            [-181, -91, 181, 91, -128, -128, 128, 128, -91, -181, 91, 181],
            [-362, -181, 362, 181, -256, -256, 256, 256, -181, -362, 181, 362],
        ]
        for l in 0..<5 { #expect(g.cellAnchors[l].flatMap { [$0.x1, $0.y1, $0.x2, $0.y2] } == expected[l]) }
        // The pool level at 416: 7×7 grid, stride 416 / 7 = 59 (not 64).
        let stride = AnchorGenerator.stride(paddedSize: (416, 416), gridSize: (7, 7))
        #expect(stride.y == 59 && stride.x == 59)
        let pool = g.anchors(level: 4, gridSize: (7, 7), paddedSize: (416, 416))
        #expect(pool.count == 147)
        #expect(pool[3 * 8 + 1] == Box(x1: 59 - 256, y1: 59 - 256, x2: 59 + 256, y2: 59 + 256))
    }

    @Test func fpnResamplingHelpers() {
        var rng = SplitMix64(seed: 2)
        let x = Tensor.random([1, 2, 3, 5], using: &rng)
        // The FPN's nearest rule (non-2× sizes): src = min(floor(dst · in/out), in − 1).
        let up = Kernels.upsampleNearest(x, outputHeight: 7, outputWidth: 10)
        for c in 0..<2 { for y in 0..<7 { for xx in 0..<10 {
            let sy = min(Int((Float(y) * (Float(3) / 7)).rounded(.down)), 2), sx = xx / 2
            #expect(up[0, c, y, xx] == x[0, c, sy, sx])
        } } }
        let pooled = fpnLastLevelMaxPool(x)
        #expect(pooled.shape == [1, 2, 2, 3])
        #expect(pooled[0, 1, 1, 2] == x[0, 1, 2, 4])
    }

    @Test func emptyAndNaNInputsDoNotCrash() throws {
        let s = try Setup("default")
        var config = Self.config("default")
        config.proposals.scoreThreshold = 2  // no sigmoid score passes: zero proposals flow through every stage
        let strict = try DetectionHead(weights: WeightScope(file: s.file, prefix: "detection_head"), config: config)
        let t = try strict.trace(features: s.features, paddedSize: s.padded, imageSize: s.image, originalSize: s.original)
        #expect(t.proposals.isEmpty && t.detections.isEmpty)
        #expect(t.roiFeatures.shape == [0, 16, 7, 7] && t.classLogits.shape == [0, 91])
        var poisoned = s.features
        poisoned[3] = Tensor(shape: poisoned[3].shape, repeating: .nan)
        // NaN inputs must not crash or leak NaN boxes/scores. (torch would give no detections; the shared ReLU
        // epilogue maps NaN to 0, so the RPN may still propose from its biases here.)
        let detections = try s.head(features: poisoned, paddedSize: s.padded, imageSize: s.image, originalSize: s.original)
        #expect(detections.allSatisfy { $0.score.isFinite && $0.box.x1.isFinite && $0.box.y2.isFinite })
    }

    @Test func badInputsThrowTypedErrors() throws {
        let s = try Setup("default")
        #expect(throws: LadonError.self) {
            try s.head(features: Array(s.features.prefix(3)), paddedSize: s.padded, imageSize: s.image, originalSize: s.original)
        }
        var wrong = s.features
        wrong[1] = Tensor(shape: [1, 3, 16, 12])
        #expect(throws: LadonError.self) {
            try s.head(features: wrong, paddedSize: s.padded, imageSize: s.image, originalSize: s.original)
        }
        #expect(throws: LadonError.self) {
            try s.head(features: s.features, paddedSize: s.padded, imageSize: (200, 90), originalSize: s.original)
        }
        #expect(throws: LadonError.self) {
            try s.head(features: s.features, paddedSize: s.padded, imageSize: s.image, originalSize: (0, 5))
        }
        var config = Self.config("default")
        config.roiLevels = [2, 1]
        #expect(throws: LadonError.self) {
            _ = try DetectionHead(weights: WeightScope(file: s.file, prefix: "detection_head"), config: config)
        }
        // Full-width config against the small weights: a shape mismatch, not a crash.
        #expect(throws: LadonError.self) {
            _ = try DetectionHead(weights: WeightScope(file: s.file, prefix: "detection_head"), config: .ladon)
        }
        #expect(throws: LadonError.self) {
            _ = try DetectionHead(weights: WeightScope(file: s.file, prefix: "nothing_here"), config: Self.config("default"))
        }
    }
}
