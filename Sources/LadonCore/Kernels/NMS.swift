// Non-maximum suppression with torchvision's semantics: greedy, score-ordered, suppress IoU > threshold.

extension Kernels {
    /// Greedy non-maximum suppression (torchvision `ops.nms`, CPU kernel).
    ///
    /// Boxes are visited by decreasing score; a visited box that is not suppressed is kept and suppresses every
    /// later box whose IoU with it is **strictly** greater than `iouThreshold`. IoU uses torchvision's float32
    /// arithmetic (areas `(x2−x1)(y2−y1)`, no `+1`; `inter / (area_i + area_j − inter)`), so two zero-area
    /// boxes (`0/0 = NaN`) never suppress each other.
    ///
    /// Tie order: equal scores are visited in increasing index order (a stable sort), which is what
    /// torchvision's CPU kernel does (`scores.sort(stable=True, descending=True)`); NaN scores sort first,
    /// as in `torch.sort`. The comparison is done in float32; for the thresholds used here (0.5, 0.7) that
    /// equals torchvision's comparison against the double threshold.
    ///
    /// - Returns: indices of the kept boxes, by decreasing score.
    package static func nms(boxes: [Box], scores: [Float], iouThreshold: Float) -> [Int] {
        precondition(boxes.count == scores.count, "nms: \(boxes.count) boxes, \(scores.count) scores")
        let order = scoreOrder(scores, Array(boxes.indices))
        return suppress(boxes: boxes, order: order, iouThreshold: iouThreshold)
    }

    /// Non-maximum suppression applied independently within each group (class or level).
    ///
    /// Exact per-group NMS: the result equals running ``nms(boxes:scores:iouThreshold:)`` on every group
    /// separately and merging the kept indices by decreasing score (ties: lower index first). torchvision's
    /// `batched_nms` gets the same set either this way (`_batched_nms_vanilla`, used on CPU above 4,000
    /// coordinates) or with the coordinate-offset trick (every box shifted by `group · (max coordinate + 1)`
    /// so that groups cannot overlap, then one NMS); the shifted float32 coordinates can round IoU values
    /// differently by an ulp or so, which only matters for pairs sitting exactly at the threshold.
    package static func batchedNMS(boxes: [Box], scores: [Float], groups: [Int], iouThreshold: Float) -> [Int] {
        precondition(boxes.count == scores.count && boxes.count == groups.count,
                     "batchedNMS: \(boxes.count) boxes, \(scores.count) scores, \(groups.count) groups")
        let order = scoreOrder(scores, Array(boxes.indices))
        // Split the global order by group: each group's list is already in score order.
        var members: [Int: [Int]] = [:]
        for i in order { members[groups[i], default: []].append(i) }
        var kept = [Bool](repeating: false, count: boxes.count)
        for (_, list) in members {
            for i in suppress(boxes: boxes, order: list, iouThreshold: iouThreshold) { kept[i] = true }
        }
        return order.filter { kept[$0] }
    }

    /// Plain O(n²) NMS straight from the definition (test oracle): repeatedly take the best remaining box
    /// (highest score, lowest index on ties), keep it, drop every remaining box with IoU above the threshold.
    package static func nmsReference(boxes: [Box], scores: [Float], iouThreshold: Float) -> [Int] {
        precondition(boxes.count == scores.count)
        var remaining = Array(boxes.indices)
        var keep: [Int] = []
        while !remaining.isEmpty {
            var best = 0
            for k in 1..<remaining.count where scoreBefore(scores[remaining[k]], remaining[k],
                                                         scores[remaining[best]], remaining[best]) {
                best = k
            }
            let i = remaining.remove(at: best)
            keep.append(i)
            remaining.removeAll { boxes[i].iou(boxes[$0]) > iouThreshold }
        }
        return keep
    }

    /// `indices` sorted by decreasing score, ties by increasing index, NaN first.
    static func scoreOrder(_ scores: [Float], _ indices: [Int]) -> [Int] {
        indices.sorted { scoreBefore(scores[$0], $0, scores[$1], $1) }
    }

    /// Strict weak order: NaN before numbers, then larger score first, then lower index first.
    @inline(__always)
    static func scoreBefore(_ a: Float, _ ia: Int, _ b: Float, _ ib: Int) -> Bool {
        if a.isNaN || b.isNaN {
            if a.isNaN != b.isNaN { return a.isNaN }
            return ia < ib
        }
        return a > b || (a == b && ia < ib)
    }

    /// Greedy suppression over `order` (already sorted by score); returns kept indices in that order.
    /// Coordinates and areas are gathered into contiguous arrays once; the inner loop allocates nothing.
    static func suppress(boxes: [Box], order: [Int], iouThreshold: Float) -> [Int] {
        let n = order.count
        if n == 0 { return [] }
        var x1 = [Float](repeating: 0, count: n), y1 = x1, x2 = x1, y2 = x1, area = x1
        for (k, i) in order.enumerated() {
            let b = boxes[i]
            x1[k] = b.x1; y1[k] = b.y1; x2[k] = b.x2; y2[k] = b.y2
            area[k] = b.area
        }
        var suppressed = [Bool](repeating: false, count: n)
        var keep: [Int] = []
        keep.reserveCapacity(min(n, 1024))
        // With a threshold ≥ 0, a pair without overlap (IoU 0, or NaN for two empty boxes) is never suppressed.
        let skipDisjoint = iouThreshold >= 0
        x1.withUnsafeBufferPointer { x1p in
        y1.withUnsafeBufferPointer { y1p in
        x2.withUnsafeBufferPointer { x2p in
        y2.withUnsafeBufferPointer { y2p in
        area.withUnsafeBufferPointer { ap in
        suppressed.withUnsafeMutableBufferPointer { sp in
            for i in 0..<n where !sp[i] {
                keep.append(order[i])
                let (ix1, iy1, ix2, iy2, iarea) = (x1p[i], y1p[i], x2p[i], y2p[i], ap[i])
                var j = i + 1
                while j < n {
                    if !sp[j] {
                        let w = max(Float(0), min(ix2, x2p[j]) - max(ix1, x1p[j]))
                        let h = max(Float(0), min(iy2, y2p[j]) - max(iy1, y1p[j]))
                        let inter = w * h
                        if (inter > 0 || !skipDisjoint) && inter / (iarea + ap[j] - inter) > iouThreshold {
                            sp[j] = true
                        }
                    }
                    j += 1
                }
            }
        }}}}}}
        return keep
    }
}
