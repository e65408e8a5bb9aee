// COCO box evaluation equal to pycocotools 2.0.x (`COCOeval` with iouType "bbox", after `COCO.loadRes`).
//
// The steps and their order of floating-point operations follow cocoeval.py and maskApi.c's `bbIou`, so the 12
// summary numbers come out bit for bit. pycocotools builds a dict per (image, category, area range); here the ground
// truth and the detections are grouped once into flat arrays indexed by (category, image), and each detection's
// match at the 10 IoU thresholds is kept as two bit masks per area range.

import Foundation

/// pycocotools' default box parameters (`Params.setDetParams`).
public enum COCOEvalParameters {
    /// `np.linspace(.5, .95, 10)`: 0.5, 0.55, …, 0.8999999999999999, 0.95.
    public static let iouThresholds = linspace(0.5, 0.95, count: 10)
    /// `np.linspace(0, 1, 101)`: the 101 recall points of the interpolated precision.
    public static let recallThresholds = linspace(0, 1, count: 101)
    /// The detections kept per image, as in `maxDets`.
    public static let maxDetections = [1, 10, 100]
    /// `areaRng` with `areaRngLbl`; both ends inclusive.
    public static let areaRanges: [(label: String, lower: Double, upper: Double)] = [
        ("all", 0, 1e10), ("small", 0, 32 * 32), ("medium", 32 * 32, 96 * 96), ("large", 96 * 96, 1e10),
    ]

    /// numpy's `linspace(start, stop, count)` with the endpoint: `start + i·step` for `i < count − 1`, then `stop`.
    static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
        let step = (stop - start) / Double(count - 1)
        return (0..<count).map { $0 == count - 1 ? stop : Double($0) * step + start }
    }
}

/// Evaluates box detections against a COCO ground truth, as pycocotools' `COCOeval(gt, gt.loadRes(dets), "bbox")`.
public struct COCOEvaluator: Sendable {
    public let groundTruth: COCOGroundTruth

    public init(groundTruth: COCOGroundTruth) {
        self.groundTruth = groundTruth
    }

    /// Runs `evaluate`, `accumulate` and `summarize`.
    ///
    /// - Parameters:
    ///   - detections: results in list order (the order decides ties between equal scores, as `loadRes` ids do).
    ///     Detections for categories that the ground truth does not list, or for images not evaluated, are ignored.
    ///   - imageIDs: the images evaluated (`params.imgIds`), e.g. those actually run; duplicates and order do not
    ///     matter. Nil evaluates every image of the ground truth.
    /// - Throws: `EvalError.unknownImage` when a detection or an image id is not in the ground truth (`loadRes`
    ///   refuses such results), `EvalError.invalidDetection` for a non-finite box or score.
    public func evaluate(_ detections: [COCODetection], imageIDs: [Int]? = nil) throws(EvalError) -> COCOEvaluation {
        for (n, d) in detections.enumerated() {
            guard groundTruth.containsImage(id: d.imageID) else {
                throw .unknownImage(id: d.imageID, context: "detection \(n)")
            }
            guard [d.bbox.x, d.bbox.y, d.bbox.width, d.bbox.height, d.score].allSatisfy(\.isFinite) else {
                throw .invalidDetection(index: n, reason: "box and score must be finite")
            }
        }
        let images = Array(Set(imageIDs ?? groundTruth.imageIDs)).sorted()
        for id in images where !groundTruth.containsImage(id: id) {
            throw .unknownImage(id: id, context: "the evaluated image list")
        }
        var run = EvaluationRun(groundTruth: groundTruth, detections: detections, imageIDs: images)
        run.evaluateImages()
        return run.accumulate()
    }
}

/// The accumulated evaluation (`COCOeval.eval`) and its 12 summary numbers (`COCOeval.stats`).
public struct COCOEvaluation: Sendable {
    /// The evaluated image ids, sorted.
    public let imageIDs: [Int]
    /// The category ids, sorted: every category the ground truth lists.
    public let categoryIDs: [Int]
    /// `eval['precision']`, `[T, R, K, A, M]` row-major (IoU threshold, recall point, category, area range, maxDets);
    /// −1 where the category has no GT in that area range.
    public let precision: [Double]
    /// `eval['recall']`, `[T, K, A, M]` row-major; −1 where there is no GT.
    public let recall: [Double]

    private static let t = COCOEvalParameters.iouThresholds.count
    private static let r = COCOEvalParameters.recallThresholds.count
    private static let a = COCOEvalParameters.areaRanges.count
    private static let m = COCOEvalParameters.maxDetections.count

    init(imageIDs: [Int], categoryIDs: [Int], precision: [Double], recall: [Double]) {
        self.imageIDs = imageIDs
        self.categoryIDs = categoryIDs
        self.precision = precision
        self.recall = recall
    }

    /// An element of ``precision``.
    public func precision(iou t: Int, recall r: Int, category k: Int, area a: Int, maxDets m: Int) -> Double {
        precision[(((t * Self.r + r) * categoryIDs.count + k) * Self.a + a) * Self.m + m]
    }

    /// An element of ``recall``.
    public func recall(iou t: Int, category k: Int, area a: Int, maxDets m: Int) -> Double {
        recall[((t * categoryIDs.count + k) * Self.a + a) * Self.m + m]
    }

    /// The mean of the precision entries above −1 over the IoU thresholds `ious`, every recall point and the
    /// categories `categories`, as `np.mean(s[s > -1])` computes it (numpy's pairwise sum, in C order); −1 if none.
    public func meanPrecision(ious: [Int]? = nil, categories: [Int]? = nil,
                              area a: Int = 0, maxDets m: Int = 2) -> Double {
        var values: [Double] = []
        for t in ious ?? Array(0..<Self.t) {
            for r in 0..<Self.r {
                for k in categories ?? Array(categoryIDs.indices) {
                    let value = precision(iou: t, recall: r, category: k, area: a, maxDets: m)
                    if value > -1 { values.append(value) }
                }
            }
        }
        return Self.numpyMean(values)
    }

    /// The mean of the recall entries above −1, as ``meanPrecision(ious:categories:area:maxDets:)``.
    public func meanRecall(ious: [Int]? = nil, categories: [Int]? = nil,
                           area a: Int = 0, maxDets m: Int = 2) -> Double {
        var values: [Double] = []
        for t in ious ?? Array(0..<Self.t) {
            for k in categories ?? Array(categoryIDs.indices) {
                let value = recall(iou: t, category: k, area: a, maxDets: m)
                if value > -1 { values.append(value) }
            }
        }
        return Self.numpyMean(values)
    }

    /// `COCOeval.stats`: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.
    public var stats: [Double] {
        Self.summaries.map { summarize($0) }
    }

    /// ``stats`` by the names of `EvalTask.coco.metricNames`.
    public var metrics: [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(EvalTask.coco.metricNames, stats))
    }

    /// The 12 lines pycocotools' `summarize()` prints.
    public var summary: String {
        zip(Self.summaries, stats).map { line, value in
            let iou = line.iouThreshold.map { String(format: "%0.2f", $0) } ?? String(
                format: "%0.2f:%0.2f", COCOEvalParameters.iouThresholds.first!, COCOEvalParameters.iouThresholds.last!)
            let area = COCOEvalParameters.areaRanges[line.area].label
            return " " + (line.precision ? "Average Precision  (AP)" : "Average Recall     (AR)")
                + " @[ IoU=" + iou.padding(toLength: 9, withPad: " ", startingAt: 0)
                + " | area=" + String(repeating: " ", count: max(0, 6 - area.count)) + area
                + " | maxDets=" + String(format: "%3d", COCOEvalParameters.maxDetections[line.maxDets])
                + " ] = " + String(format: "%0.3f", value)
        }.joined(separator: "\n")
    }

    private struct SummaryLine {
        var precision: Bool
        var iouThreshold: Double?
        var area: Int
        var maxDets: Int
    }

    // `_summarizeDets`, in order.
    private static let summaries: [SummaryLine] = [
        SummaryLine(precision: true, iouThreshold: nil, area: 0, maxDets: 2),
        SummaryLine(precision: true, iouThreshold: 0.5, area: 0, maxDets: 2),
        SummaryLine(precision: true, iouThreshold: 0.75, area: 0, maxDets: 2),
        SummaryLine(precision: true, iouThreshold: nil, area: 1, maxDets: 2),
        SummaryLine(precision: true, iouThreshold: nil, area: 2, maxDets: 2),
        SummaryLine(precision: true, iouThreshold: nil, area: 3, maxDets: 2),
        SummaryLine(precision: false, iouThreshold: nil, area: 0, maxDets: 0),
        SummaryLine(precision: false, iouThreshold: nil, area: 0, maxDets: 1),
        SummaryLine(precision: false, iouThreshold: nil, area: 0, maxDets: 2),
        SummaryLine(precision: false, iouThreshold: nil, area: 1, maxDets: 2),
        SummaryLine(precision: false, iouThreshold: nil, area: 2, maxDets: 2),
        SummaryLine(precision: false, iouThreshold: nil, area: 3, maxDets: 2),
    ]

    private func summarize(_ line: SummaryLine) -> Double {
        // `np.where(iouThr == p.iouThrs)`: exact equality, which holds for 0.5 and 0.75.
        let ious = line.iouThreshold.map { threshold in
            COCOEvalParameters.iouThresholds.indices.filter { COCOEvalParameters.iouThresholds[$0] == threshold }
        }
        return line.precision ? meanPrecision(ious: ious, area: line.area, maxDets: line.maxDets)
                              : meanRecall(ious: ious, area: line.area, maxDets: line.maxDets)
    }

    /// `np.mean` of a float64 vector, or −1 when empty. numpy's reduction walks the array in chunks of its buffer
    /// size (8192 elements), sums each chunk pairwise and adds the chunk sums in order; then it divides by the count.
    static func numpyMean(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return -1 }
        let bufferSize = 8192
        let sum = values.withUnsafeBufferPointer { buffer in
            var sum = 0.0
            for start in stride(from: 0, to: buffer.count, by: bufferSize) {
                sum += pairwiseSum(buffer.baseAddress! + start, min(bufferSize, buffer.count - start))
            }
            return sum
        }
        return sum / Double(values.count)
    }

    /// `DOUBLE_pairwise_sum` of numpy's loops_utils.h.
    static func pairwiseSum(_ a: UnsafePointer<Double>, _ n: Int) -> Double {
        if n < 8 {
            var sum = 0.0
            for i in 0..<n { sum += a[i] }
            return sum
        }
        if n <= 128 {
            var r = (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
            var i = 8
            while i < n - n % 8 {
                r.0 += a[i]; r.1 += a[i + 1]; r.2 += a[i + 2]; r.3 += a[i + 3]
                r.4 += a[i + 4]; r.5 += a[i + 5]; r.6 += a[i + 6]; r.7 += a[i + 7]
                i += 8
            }
            var sum = ((r.0 + r.1) + (r.2 + r.3)) + ((r.4 + r.5) + (r.6 + r.7))
            while i < n {
                sum += a[i]
                i += 1
            }
            return sum
        }
        var half = n / 2
        half -= half % 8
        return pairwiseSum(a, half) + pairwiseSum(a + half, n - half)
    }
}

/// The working state of one evaluation: pycocotools' `_prepare`, `evaluate` and `accumulate`.
private struct EvaluationRun {
    let groundTruth: COCOGroundTruth
    let detections: [COCODetection]
    let imageIDs: [Int]
    let categoryIDs: [Int]
    let thresholds = COCOEvalParameters.iouThresholds
    let maxDetections = COCOEvalParameters.maxDetections
    let areaRanges = COCOEvalParameters.areaRanges

    /// GT of cell `k·I + i` (category k, image i), in file order:
    /// `groundTruth.annotations[gtIndex[gtStart[cell]..<gtStart[cell + 1]]]`.
    var gtStart: [Int] = []
    var gtIndex: [Int] = []
    /// Detections of each cell by decreasing score (stable), at most `maxDets[-1]`: `detections[slotDetection[…]]`.
    /// Slots of a category are laid out image after image, so slot order is pycocotools' concatenation order.
    var slotStart: [Int] = []
    var slotDetection: [Int] = []
    var slotScore: [Double] = []
    /// Per area range and slot: bit t is set when the detection is a true (resp. false) positive at threshold t,
    /// i.e. `dtm != 0 && !dtIg` (resp. `dtm == 0 && !dtIg`) in `accumulate`.
    var truePositive: [[UInt16]] = []
    var falsePositive: [[UInt16]] = []
    /// Non-ignored GT per category and area range (`npig`).
    var relevantGT: [Int] = []
    /// Whether the cell has any GT or detection (pycocotools' `evaluateImg` does not return None).
    var hasEntries: [Bool] = []

    init(groundTruth: COCOGroundTruth, detections: [COCODetection], imageIDs: [Int]) {
        self.groundTruth = groundTruth
        self.detections = detections
        self.imageIDs = imageIDs
        self.categoryIDs = groundTruth.categoryIDs
    }

    /// Groups ids into cells with a counting sort that keeps the list order inside each cell.
    private func group(count: Int, cellOf: (Int) -> Int?) -> (start: [Int], members: [Int]) {
        let cells = categoryIDs.count * imageIDs.count
        var start = [Int](repeating: 0, count: cells + 1)
        var cellOfMember = [Int](repeating: -1, count: count)
        for n in 0..<count {
            if let cell = cellOf(n) {
                cellOfMember[n] = cell
                start[cell + 1] += 1
            }
        }
        for cell in 0..<cells { start[cell + 1] += start[cell] }
        var fill = start
        var members = [Int](repeating: 0, count: start[cells])
        for n in 0..<count where cellOfMember[n] >= 0 {
            members[fill[cellOfMember[n]]] = n
            fill[cellOfMember[n]] += 1
        }
        return (start, members)
    }

    /// `_prepare`, `computeIoU` and `evaluateImg` for every (category, area range, image).
    mutating func evaluateImages() {
        let imageCount = imageIDs.count, categoryCount = categoryIDs.count
        let imageIndex = Dictionary(uniqueKeysWithValues: imageIDs.enumerated().map { ($1, $0) })
        let categoryIndex = Dictionary(uniqueKeysWithValues: categoryIDs.enumerated().map { ($1, $0) })
        let annotations = groundTruth.annotations
        let detections = self.detections
        func cell(image: Int, category: Int) -> Int? {
            guard let i = imageIndex[image], let k = categoryIndex[category] else { return nil }
            return k * imageCount + i
        }
        (gtStart, gtIndex) = group(count: annotations.count) {
            cell(image: annotations[$0].imageID, category: annotations[$0].categoryID)
        }
        let (dtStart, dtIndex) = group(count: detections.count) {
            cell(image: detections[$0].imageID, category: detections[$0].categoryID)
        }

        // Sort each cell's detections by decreasing score (mergesort is stable: ties keep list order), keep 100.
        let maxDet = maxDetections.last!
        let cells = categoryCount * imageCount
        slotStart = [Int](repeating: 0, count: cells + 1)
        slotDetection.reserveCapacity(dtIndex.count)
        var cellDetections: [Int] = []
        for cell in 0..<cells {
            cellDetections.removeAll(keepingCapacity: true)
            cellDetections.append(contentsOf: dtIndex[dtStart[cell]..<dtStart[cell + 1]])
            cellDetections.sort { detections[$0].score > detections[$1].score
                || (detections[$0].score == detections[$1].score && $0 < $1) }
            slotDetection.append(contentsOf: cellDetections.prefix(maxDet))
            slotStart[cell + 1] = slotDetection.count
        }
        slotScore = slotDetection.map { detections[$0].score }

        let areaCount = areaRanges.count
        truePositive = Array(repeating: [UInt16](repeating: 0, count: slotDetection.count), count: areaCount)
        falsePositive = truePositive
        relevantGT = [Int](repeating: 0, count: categoryCount * areaCount)
        hasEntries = [Bool](repeating: false, count: cells)

        var ious: [Double] = [], gtIgnored: [Bool] = [], sortedGT: [Int] = [], gtMatched: [Bool] = []
        for k in 0..<categoryCount {
            for i in 0..<imageCount {
                let cell = k * imageCount + i
                let gts = gtIndex[gtStart[cell]..<gtStart[cell + 1]].map { annotations[$0] }
                let slots = slotStart[cell]..<slotStart[cell + 1]
                guard !gts.isEmpty || !slots.isEmpty else { continue }
                hasEntries[cell] = true
                let g = gts.count

                // maskApi.c bbIou: ious[d·G + g] against GT in file order.
                ious.removeAll(keepingCapacity: true)
                for slot in slots {
                    let dt = detections[slotDetection[slot]].bbox
                    let dtArea = dt.width * dt.height
                    for gt in gts {
                        ious.append(Self.boxIoU(dt, dtArea: dtArea, gt.bbox, crowd: gt.isCrowd))
                    }
                }

                for a in 0..<areaCount {
                    let (lower, upper) = (areaRanges[a].lower, areaRanges[a].upper)
                    // `_ignore`, then GT sorted with the ignored last (stable).
                    gtIgnored.removeAll(keepingCapacity: true)
                    for gt in gts { gtIgnored.append(gt.isCrowd || gt.area < lower || gt.area > upper) }
                    sortedGT.removeAll(keepingCapacity: true)
                    sortedGT.append(contentsOf: (0..<g).filter { !gtIgnored[$0] })
                    relevantGT[k * areaCount + a] += sortedGT.count
                    sortedGT.append(contentsOf: (0..<g).filter { gtIgnored[$0] })

                    gtMatched.removeAll(keepingCapacity: true)
                    gtMatched.append(contentsOf: repeatElement(false, count: g))
                    for (t, threshold) in thresholds.enumerated() {
                        for index in 0..<g { gtMatched[index] = false }
                        for (dIndex, slot) in slots.enumerated() {
                            var best = min(threshold, 1 - 1e-10)
                            var match = -1
                            for (position, gIndex) in sortedGT.enumerated() {
                                // a matched GT is skipped unless it is a crowd
                                if gtMatched[position] && !gts[gIndex].isCrowd { continue }
                                // already matched to a regular GT, and only ignored GT remain
                                if match > -1 && !gtIgnored[sortedGT[match]] && gtIgnored[gIndex] { break }
                                let iou = ious[dIndex * g + gIndex]
                                if iou < best { continue }
                                best = iou
                                match = position
                            }
                            var ignored = false, matchedID = 0
                            if match > -1 {
                                gtMatched[match] = true
                                ignored = gtIgnored[sortedGT[match]]
                                matchedID = gts[sortedGT[match]].id
                            }
                            // `dtm` holds the GT id, so a match to id 0 counts as unmatched (as in pycocotools).
                            if matchedID == 0 {
                                let box = detections[slotDetection[slot]].bbox
                                let area = box.width * box.height
                                if area < lower || area > upper { ignored = true }
                            }
                            guard !ignored else { continue }
                            if matchedID != 0 {
                                truePositive[a][slot] |= 1 << t
                            } else {
                                falsePositive[a][slot] |= 1 << t
                            }
                        }
                    }
                }
            }
        }
    }

    /// `bbIou` for one pair: intersection over union, or over the detection's area when the GT is a crowd.
    static func boxIoU(_ dt: COCOBox, dtArea: Double, _ gt: COCOBox, crowd: Bool) -> Double {
        let w = min(dt.width + dt.x, gt.width + gt.x) - max(dt.x, gt.x)
        if w <= 0 { return 0 }
        let h = min(dt.height + dt.y, gt.height + gt.y) - max(dt.y, gt.y)
        if h <= 0 { return 0 }
        let intersection = w * h
        let union = crowd ? dtArea : dtArea + gt.width * gt.height - intersection
        return intersection / union
    }

    /// `accumulate`: precision at the 101 recall points and the final recall, per (threshold, category, area, maxDets).
    func accumulate() -> COCOEvaluation {
        let tCount = thresholds.count, rCount = COCOEvalParameters.recallThresholds.count
        let kCount = categoryIDs.count, aCount = areaRanges.count, mCount = maxDetections.count
        let imageCount = imageIDs.count
        let recallThresholds = COCOEvalParameters.recallThresholds
        var precision = [Double](repeating: -1, count: tCount * rCount * kCount * aCount * mCount)
        var recall = [Double](repeating: -1, count: tCount * kCount * aCount * mCount)
        let epsilon = Double.ulpOfOne    // np.spacing(1)

        var order: [Int] = [], rc: [Double] = [], pr: [Double] = []
        for k in 0..<kCount {
            let cells = (k * imageCount)..<((k + 1) * imageCount)
            guard cells.contains(where: { hasEntries[$0] }) else { continue }
            for (m, maxDet) in maxDetections.enumerated() {
                // The first maxDet detections of every image, in concatenation order, then sorted by decreasing
                // score with a stable sort.
                order.removeAll(keepingCapacity: true)
                for cell in cells {
                    order.append(contentsOf: slotStart[cell]..<min(slotStart[cell] + maxDet, slotStart[cell + 1]))
                }
                order.sort { slotScore[$0] > slotScore[$1] || (slotScore[$0] == slotScore[$1] && $0 < $1) }
                let nd = order.count
                for a in 0..<aCount {
                    let npig = relevantGT[k * aCount + a]
                    guard npig > 0 else { continue }
                    let tps = truePositive[a], fps = falsePositive[a]
                    for t in 0..<tCount {
                        rc.removeAll(keepingCapacity: true)
                        pr.removeAll(keepingCapacity: true)
                        var tp = 0, fp = 0
                        for slot in order {
                            tp += Int(tps[slot] >> t & 1)
                            fp += Int(fps[slot] >> t & 1)
                            rc.append(Double(tp) / Double(npig))
                            pr.append(Double(tp) / (Double(fp) + Double(tp) + epsilon))
                        }
                        recall[((t * kCount + k) * aCount + a) * mCount + m] = nd > 0 ? rc[nd - 1] : 0
                        // the precision envelope: non-increasing from the right
                        if nd > 1 {
                            for i in stride(from: nd - 1, to: 0, by: -1) where pr[i] > pr[i - 1] {
                                pr[i - 1] = pr[i]
                            }
                        }
                        // `np.searchsorted(rc, recThrs, side='left')`; past the end the precision stays 0.
                        var position = 0
                        for r in 0..<rCount {
                            while position < nd && rc[position] < recallThresholds[r] { position += 1 }
                            precision[(((t * rCount + r) * kCount + k) * aCount + a) * mCount + m] =
                                position < nd ? pr[position] : 0
                        }
                    }
                }
            }
        }
        return COCOEvaluation(imageIDs: imageIDs, categoryIDs: categoryIDs, precision: precision, recall: recall)
    }
}
