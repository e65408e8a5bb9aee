// Faster R-CNN box branch: multi-scale RoIAlign, TwoMLPHead, FastRCNNPredictor and test-time post-processing.
import Foundation

/// How `MultiScaleRoIAlign` gets its per-level spatial scales.
package enum PoolerScales: Sendable, Equatable {
    /// torchvision's `_setup_scales` on this image: `2^round(log2(feature height / image height))` per level,
    /// using the unpadded resized height. (torchvision caches the scales of the first image it sees; for
    /// ordinary aspect ratios they are 1/4, 1/8, 1/16, … whatever the image.)
    case inferred
    /// Fixed scales, one per pooled level (e.g. `[0.25, 0.125, 0.0625]`).
    case fixed([Float])
}

/// torchvision's `MultiScaleRoIAlign` + `LevelMapper` over a chosen set of FPN outputs.
package struct MultiScaleRoIAlign: Sendable, Equatable {
    /// Indices of the pooled FPN outputs (0 = P2 …), in pyramid order.
    package var levels: [Int]
    package var outputSize: Int = 7
    package var samplingRatio: Int = 2
    package var canonicalScale: Float = 224
    package var canonicalLevel: Int = 4
    package var scales: PoolerScales = .inferred

    package init(levels: [Int]) { self.levels = levels }

    /// The spatial scale of every pooled level for an image of unpadded height `imageHeight`.
    package func spatialScales(featureHeights: [Int], imageHeight: Int) -> [Float] {
        switch scales {
        case .fixed(let s): return s
        case .inferred:
            return featureHeights.map { h in
                // float(s1) / float(s2) in double, then torch.tensor(...) (float32) .log2().round() (half-to-even).
                let approx = Float(Double(h) / Double(imageHeight))
                return Float(pow(2.0, Double(log2(approx).rounded(.toNearestOrEven))))
            }
        }
    }

    /// `(k_min, k_max)` from the first and last scale: `-log2(scale)`, truncated to Int.
    package static func levelRange(_ scales: [Float]) -> (min: Int, max: Int) {
        func level(_ s: Float) -> Int {
            let v = -log2(s)
            return v.isFinite ? Int(v) : 0
        }
        return (level(scales.first ?? 1), level(scales.last ?? 1))
    }

    /// LevelMapper: `floor(canonicalLevel + log2(sqrt(area) / canonicalScale) + 1e-6)` clamped to `[kMin, kMax]`,
    /// minus `kMin`, all in float32. A box with NaN level (negative or NaN area) maps to `nil` and pools zeros,
    /// as in torchvision (its NaN level never equals a level index).
    package func level(of box: Box, kMin: Int, kMax: Int) -> Int? {
        let s = box.area.squareRoot()
        let target = (Float(canonicalLevel) + log2(s / canonicalScale) + Float(1e-6)).rounded(.down)
        if target.isNaN { return nil }
        return Int(min(max(target, Float(kMin)), Float(kMax))) - kMin
    }

    /// Pools every box from its level: `fpn[levels[l]]` with `spatialScales[l]`. Returns `[R, C, P, P]` and the
    /// level index (into `levels`, `nil` = not pooled, zeros) of every box.
    package func callAsFunction(fpn: [Tensor], boxes: [Box], imageHeight: Int) -> (features: Tensor, levels: [Int?]) {
        let maps = levels.map { fpn[$0] }
        let channels = maps[0].c
        let scale = spatialScales(featureHeights: maps.map(\.h), imageHeight: imageHeight)
        let (kMin, kMax) = Self.levelRange(scale)
        let assigned = boxes.map { level(of: $0, kMin: kMin, kMax: kMax) }
        let pooledLevels = min(maps.count, scale.count)
        // Not zero-filled first (50 MB for 1000 RoIs of 256 channels): `roiAlign` writes every value of its rows, and
        // the rows no level pools are zeroed here.
        let out = Tensor(shape: [boxes.count, channels, outputSize, outputSize], unsafeUninitialized: { op in
            guard let base = op.baseAddress else { return }
            let rowSize = channels * outputSize * outputSize
            for (row, l) in assigned.enumerated() where (l ?? pooledLevels) >= pooledLevels {
                (base + row * rowSize).initialize(repeating: 0, count: rowSize)
            }
            for (l, map) in maps.enumerated() where l < pooledLevels {
                let rows = assigned.indices.filter { assigned[$0] == l }
                if rows.isEmpty { continue }
                Kernels.roiAlign(into: base, rows: rows, feature: map, boxes: rows.map { boxes[$0] },
                                 spatialScale: scale[l], outputSize: outputSize, samplingRatio: samplingRatio,
                                 aligned: false)
            }
        })
        return (out, assigned)
    }
}

/// torchvision's `TwoMLPHead` (`fc6`, `fc7`, each + ReLU) and `FastRCNNPredictor` (`cls_score`, `bbox_pred`).
package struct BoxHead: Sendable {
    package let fc6: Linear
    package let fc7: Linear
    package let clsScore: Linear
    package let bboxPred: Linear

    /// Loads `box_head.fc6/fc7` and `box_predictor.cls_score/bbox_pred` from `scope` (at `roi_heads`).
    package init(weights scope: WeightScope, inFeatures: Int, representationSize: Int, numClasses: Int) throws(LadonError) {
        fc6 = try Linear(weights: scope.scope("box_head.fc6"), inFeatures: inFeatures, outFeatures: representationSize,
                         activation: .relu)
        fc7 = try Linear(weights: scope.scope("box_head.fc7"), inFeatures: representationSize,
                         outFeatures: representationSize, activation: .relu)
        clsScore = try Linear(weights: scope.scope("box_predictor.cls_score"), inFeatures: representationSize,
                              outFeatures: numClasses)
        bboxPred = try Linear(weights: scope.scope("box_predictor.bbox_pred"), inFeatures: representationSize,
                              outFeatures: 4 * numClasses)
    }

    /// `[R, C, P, P]` RoI features (flattened channel-major) → box features `[R, rep]`.
    package func features(_ roi: Tensor) -> Tensor {
        let r = roi.shape[0]
        return fc7(fc6(roi.reshaped([r, r == 0 ? fc6.inFeatures : roi.count / r])))
    }

    /// Box features → class logits `[R, K]` and box regression `[R, 4K]`.
    package func predict(_ features: Tensor) -> (classLogits: Tensor, boxRegression: Tensor) {
        (clsScore(features), bboxPred(features))
    }
}

/// One detected object.
public struct Detection: Sendable, Equatable {
    /// Box in original-image pixels (or, in `DetectionTrace.resizedDetections`, in resized-image pixels).
    public var box: Box
    /// Softmax probability of `label`.
    public var score: Float
    /// COCO category id (1…90); 0 is the background and never reported.
    public var label: Int

    public init(box: Box, score: Float, label: Int) {
        self.box = box
        self.score = score
        self.label = label
    }
}

/// The test-time post-processing of torchvision's `RoIHeads.postprocess_detections`.
///
/// Decode every class's deltas with weights (10,10,5,5) → softmax over the class logits → clip to the unpadded
/// image → drop the background → flatten proposal-major, class-minor → keep `score > scoreThreshold` (strict) →
/// drop boxes with a side `< minSize` → NMS per class at `nmsThreshold` → the first `detectionsPerImage`.
package struct DetectionPostprocess: Sendable, Equatable {
    package var scoreThreshold: Float = 0.05
    package var nmsThreshold: Float = 0.5
    package var minSize: Float = 1e-2
    package var detectionsPerImage: Int = 100
    package var coder = BoxCoder(weights: (10, 10, 5, 5))

    package init() {}

    /// Detections in the resized-image frame, by decreasing score.
    package func callAsFunction(classLogits: Tensor, boxRegression: Tensor, proposals: [Box],
                               imageSize: (height: Int, width: Int)) -> [Detection] {
        let classes = classLogits.shape[1]
        precondition(classLogits.shape[0] == proposals.count && boxRegression.shape == [proposals.count, 4 * classes])
        var boxes: [Box] = [], scores: [Float] = [], labels: [Int] = []
        var probabilities = [Float](repeating: 0, count: classes)
        classLogits.withUnsafeBufferPointer { lp in
            boxRegression.withUnsafeBufferPointer { rp in
                for (i, proposal) in proposals.enumerated() {
                    probabilities.withUnsafeMutableBufferPointer {
                        Kernels.softmaxRow(lp.baseAddress! + i * classes, $0.baseAddress!, count: classes)
                    }
                    for k in 1..<max(classes, 1) where probabilities[k] > scoreThreshold {
                        let d = rp.baseAddress! + (i * classes + k) * 4
                        let box = coder.decode(d[0], d[1], d[2], d[3], reference: proposal)
                            .clipped(height: imageSize.height, width: imageSize.width)
                        guard box.isAtLeast(minSize) else { continue }
                        boxes.append(box)
                        scores.append(probabilities[k])
                        labels.append(k)
                    }
                }
            }
        }
        let keep = Kernels.batchedNMS(boxes: boxes, scores: scores, groups: labels, iouThreshold: nmsThreshold)
            .prefix(max(detectionsPerImage, 0))
        return keep.map { Detection(box: boxes[$0], score: scores[$0], label: labels[$0]) }
    }

    /// Maps resized-frame detections to the original image: `x · (W_orig / W')`, `y · (H_orig / H')`, ratios in
    /// float32 (torchvision `resize_boxes`), no clipping afterwards.
    package static func rescale(_ detections: [Detection], from resized: (height: Int, width: Int),
                               to original: (height: Int, width: Int)) -> [Detection] {
        let ratioH = Float(original.height) / Float(resized.height)
        let ratioW = Float(original.width) / Float(resized.width)
        return detections.map {
            Detection(box: $0.box.scaled(ratioHeight: ratioH, ratioWidth: ratioW), score: $0.score, label: $0.label)
        }
    }
}
