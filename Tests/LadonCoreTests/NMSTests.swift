// NMS, batched NMS and top-k selection against torchvision fixtures and brute-force references.
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct NMSTests {
    static func boxes(_ t: Tensor) -> [Box] {
        (0..<t.shape[0]).map { Box(x1: t[$0, 0], y1: t[$0, 1], x2: t[$0, 2], y2: t[$0, 3]) }
    }

    static func randomBoxes(_ n: Int, span: Float, size: Float, using rng: inout SplitMix64) -> [Box] {
        (0..<n).map { _ in
            let x = Float.random(in: 0...span, using: &rng), y = Float.random(in: 0...span, using: &rng)
            return Box(x1: x, y1: y, x2: x + Float.random(in: 0...size, using: &rng),
                       y2: y + Float.random(in: 0...size, using: &rng))
        }
    }

    @Test func matchesTorchvisionOnThousandsOfBoxes() throws {
        let f = try Fixtures.safetensors("detection_nms.safetensors")
        let b = Self.boxes(try f.tensor("large.boxes")), s = try f.tensor("large.scores").scalars
        for (thr, key) in [(Float(0.5), "large.keep_5"), (0.7, "large.keep_7")] {
            let expected = try f.integers(key)
            let kept = Kernels.nms(boxes: b, scores: s, iouThreshold: thr)
            #expect(kept == expected, "threshold \(thr): \(kept.count) kept vs \(expected.count)")
            #expect(Kernels.nmsReference(boxes: b, scores: s, iouThreshold: thr) == expected)
        }
    }

    @Test func tiesAreVisitedInIndexOrderLikeTorchvision() throws {
        let f = try Fixtures.safetensors("detection_nms.safetensors")
        let b = Self.boxes(try f.tensor("ties.boxes")), s = try f.tensor("ties.scores").scalars
        #expect(Set(s).count <= 10)  // the case really has ties
        #expect(Kernels.nms(boxes: b, scores: s, iouThreshold: 0.5) == (try f.integers("ties.keep_5")))
    }

    @Test func identicalAndZeroAreaBoxes() throws {
        let f = try Fixtures.safetensors("detection_nms.safetensors")
        let b = Self.boxes(try f.tensor("special.boxes")), s = try f.tensor("special.scores").scalars
        for (thr, key) in [(Float(0), "special.keep_0"), (0.3, "special.keep_3"), (0.5, "special.keep_5")] {
            #expect(Kernels.nms(boxes: b, scores: s, iouThreshold: thr) == (try f.integers(key)), "threshold \(thr)")
        }
        // Identical boxes with equal scores: the lower index survives. Zero-area duplicates never suppress.
        let same = [Box](repeating: Box(x1: 1, y1: 1, x2: 5, y2: 5), count: 3)
        #expect(Kernels.nms(boxes: same, scores: [0.5, 0.5, 0.5], iouThreshold: 0.5) == [0])
        let empty = [Box](repeating: Box(x1: 2, y1: 2, x2: 2, y2: 7), count: 3)
        #expect(Kernels.nms(boxes: empty, scores: [0.1, 0.3, 0.2], iouThreshold: 0.5) == [1, 2, 0])
        #expect(Kernels.nms(boxes: [], scores: [], iouThreshold: 0.5).isEmpty)
    }

    @Test func batchedMatchesTorchvisionBothPaths() throws {
        let f = try Fixtures.safetensors("detection_nms.safetensors")
        for name in ["batched_large", "batched_small"] {
            let b = Self.boxes(try f.tensor("\(name).boxes")), s = try f.tensor("\(name).scores").scalars
            let g = try f.integers("\(name).groups")
            #expect(Kernels.batchedNMS(boxes: b, scores: s, groups: g, iouThreshold: 0.5)
                    == (try f.integers("\(name).keep_5")), "\(name)")
        }
    }

    @Test func batchedEqualsPerGroupReference() {
        var rng = SplitMix64(seed: 3)
        for trial in 0..<20 {
            let n = Int.random(in: 0...400, using: &rng)
            let b = Self.randomBoxes(n, span: 80, size: 40, using: &rng)
            // Coarse scores so ties occur.
            let s = (0..<n).map { _ in Float(Int.random(in: 0..<25, using: &rng)) / 25 }
            let g = (0..<n).map { _ in Int.random(in: 0..<4, using: &rng) }
            let thr = Float.random(in: 0.2...0.8, using: &rng)
            var expected: [Int] = []
            for group in Set(g) {
                let members = (0..<n).filter { g[$0] == group }
                let kept = Kernels.nmsReference(boxes: members.map { b[$0] }, scores: members.map { s[$0] }, iouThreshold: thr)
                expected += kept.map { members[$0] }
            }
            expected.sort { Kernels.scoreBefore(s[$0], $0, s[$1], $1) }
            #expect(Kernels.batchedNMS(boxes: b, scores: s, groups: g, iouThreshold: thr) == expected, "trial \(trial)")
        }
    }

    @Test func fastEqualsBruteForceOnRandomCases() {
        var rng = SplitMix64(seed: 9)
        for trial in 0..<30 {
            let n = Int.random(in: 1...600, using: &rng)
            var b = Self.randomBoxes(n, span: 50, size: 30, using: &rng)
            // Sprinkle duplicates and degenerate boxes.
            for _ in 0..<(n / 10) { b[Int.random(in: 0..<n, using: &rng)] = b[Int.random(in: 0..<n, using: &rng)] }
            for _ in 0..<(n / 20) { let i = Int.random(in: 0..<n, using: &rng); b[i].x2 = b[i].x1 }
            let s = (0..<n).map { _ in Float(Int.random(in: 0..<50, using: &rng)) / 50 }
            let thr = [0, 0.3, 0.5, 0.7, 1][trial % 5] as Float
            #expect(Kernels.nms(boxes: b, scores: s, iouThreshold: thr)
                    == Kernels.nmsReference(boxes: b, scores: s, iouThreshold: thr), "trial \(trial)")
        }
    }

    @Test func nanScoresSortFirstAndNeverCrash() {
        let b = [Box(x1: 0, y1: 0, x2: 10, y2: 10), Box(x1: 1, y1: 1, x2: 11, y2: 11), Box(x1: 50, y1: 50, x2: 60, y2: 60)]
        #expect(Kernels.nms(boxes: b, scores: [0.9, .nan, 0.1], iouThreshold: 0.5) == [1, 2])
        let nanBox = [Box(x1: .nan, y1: 0, x2: 10, y2: 10), Box(x1: 0, y1: 0, x2: 10, y2: 10)]
        #expect(Kernels.nms(boxes: nanBox, scores: [0.9, 0.8], iouThreshold: 0.5) == [0, 1])
    }

    @Test func topKMatchesFullSortWithTiesAndNaN() {
        var rng = SplitMix64(seed: 5)
        for trial in 0..<40 {
            let n = Int.random(in: 0...3000, using: &rng)
            var v = (0..<n).map { _ in Float(Int.random(in: -40...40, using: &rng)) / 8 }
            if n > 3 && trial % 4 == 0 { v[1] = .nan; v[n - 1] = -.infinity; v[2] = .infinity }
            let k = Int.random(in: 0...(n + 5), using: &rng)
            let expected = Array(v.indices.sorted { Kernels.scoreBefore(v[$0], $0, v[$1], $1) }.prefix(k))
            #expect(Kernels.topK(v, k: k).map(\.index) == expected, "trial \(trial) n \(n) k \(k)")
        }
    }

    @Test func boxHelpers() {
        let a = Box(x1: 0, y1: 0, x2: 10, y2: 10), b = Box(x1: 5, y1: 0, x2: 15, y2: 10)
        #expect(a.area == 100)
        #expect(a.iou(b) == Float(50) / Float(150))
        #expect(Box(x1: -3, y1: 2, x2: 500, y2: 90).clipped(height: 80, width: 100) == Box(x1: 0, y1: 2, x2: 100, y2: 80))
        #expect(Kernels.removeSmallBoxes([a, Box(x1: 0, y1: 0, x2: 1e-4, y2: 5)], minSize: 1e-3) == [0])
        // decode_single with zero deltas returns the reference box; large dw is clamped at log(1000/16).
        let coder = BoxCoder(weights: (10, 10, 5, 5))
        #expect(coder.decode(0, 0, 0, 0, reference: a) == a)
        let wide = coder.decode(0, 0, 1000, 0, reference: a)
        #expect(abs(wide.width - 10 * 62.5) < 1e-3)
    }
}
