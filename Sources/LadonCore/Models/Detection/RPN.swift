// Region proposal network (torchvision `RPNHead` + `RegionProposalNetwork.filter_proposals`, test time).
import Foundation

/// torchvision's `RPNHead`: a shared 3×3 convolution + ReLU, then 1×1 objectness (A) and box-delta (4A) heads.
package struct RPNHead: Sendable {
    package let conv: Conv2d
    package let clsLogits: Conv2d
    package let bboxPred: Conv2d

    /// Loads `conv.0.0`, `cls_logits` and `bbox_pred` (weights and biases) from `scope` (at `rpn.head`).
    package init(weights scope: WeightScope, channels: Int, anchorsPerLocation a: Int) throws(LadonError) {
        conv = try Conv2d(weights: scope.scope("conv.0.0"),
                          parameters: Conv2dParameters(inChannels: channels, outChannels: channels, kernelSize: 3, padding: 1),
                          hasBias: true, activation: .relu)
        clsLogits = try Conv2d(weights: scope.scope("cls_logits"),
                               parameters: Conv2dParameters(inChannels: channels, outChannels: a, kernelSize: 1),
                               hasBias: true)
        bboxPred = try Conv2d(weights: scope.scope("bbox_pred"),
                              parameters: Conv2dParameters(inChannels: channels, outChannels: 4 * a, kernelSize: 1),
                              hasBias: true)
    }

    /// One level `[1, C, H, W]` → objectness logits `[1, A, H, W]` and deltas `[1, 4A, H, W]`.
    package func callAsFunction(_ x: Tensor) -> (objectness: Tensor, deltas: Tensor) {
        let t = conv(x)
        return (clsLogits(t), bboxPred(t))
    }

    /// Objectness `[1, A, H, W]` in anchor order (y, x, a): `out[(y·W + x)·A + a] = in[a, y, x]`.
    package static func flattenObjectness(_ t: Tensor) -> [Float] {
        let (a, h, w) = (t.c, t.h, t.w)
        var out = [Float](repeating: 0, count: a * h * w)
        for k in 0..<a { for p in 0..<(h * w) { out[p * a + k] = t.scalars[k * h * w + p] } }
        return out
    }

    /// Deltas `[1, 4A, H, W]` (channel = anchor·4 + coordinate) in anchor order, 4 per anchor.
    package static func flattenDeltas(_ t: Tensor) -> [Float] {
        let (c4, h, w) = (t.c, t.h, t.w)
        var out = [Float](repeating: 0, count: c4 * h * w)
        for ch in 0..<c4 { for p in 0..<(h * w) { out[p * c4 + ch] = t.scalars[ch * h * w + p] } }
        return out
    }
}

/// The test-time proposal filter of torchvision's `RegionProposalNetwork` (`filter_proposals`).
///
/// Per level: top-`preNMSTopN` anchors by objectness **logit** (ties: lower anchor index first; NaN largest, as
/// `torch.topk`), decoded with weights (1,1,1,1); then over the kept anchors: `sigmoid` → clip to the unpadded
/// image → drop boxes with a side `< minSize` → keep `score >= scoreThreshold` → NMS per level at `nmsThreshold`
/// → the first `postNMSTopN` by score.
package struct ProposalFilter: Sendable, Equatable {
    package var preNMSTopN: Int = 1000
    package var postNMSTopN: Int = 1000
    package var nmsThreshold: Float = 0.7
    package var scoreThreshold: Float = 0.0
    package var minSize: Float = 1e-3
    package var coder = BoxCoder(weights: (1, 1, 1, 1))

    package init() {}

    /// - Parameters:
    ///   - objectness: per level, logits in anchor order.
    ///   - deltas: per level, 4 deltas per anchor.
    ///   - anchors: per level, the anchors.
    ///   - imageSize: the unpadded resized image size used for clipping.
    /// - Returns: proposals and their sigmoid scores, by decreasing score.
    package func callAsFunction(objectness: [[Float]], deltas: [[Float]], anchors: [[Box]],
                               imageSize: (height: Int, width: Int)) -> (boxes: [Box], scores: [Float]) {
        var boxes: [Box] = [], scores: [Float] = [], levels: [Int] = []
        for level in objectness.indices {
            let logits = objectness[level]
            precondition(anchors[level].count == logits.count && deltas[level].count == 4 * logits.count)
            for (i, _) in Kernels.topK(logits, k: min(preNMSTopN, logits.count)) {
                let d = 4 * i
                let box = coder.decode(deltas[level][d], deltas[level][d + 1], deltas[level][d + 2],
                                       deltas[level][d + 3], reference: anchors[level][i])
                    .clipped(height: imageSize.height, width: imageSize.width)
                let score = 1 / (1 + Foundation.exp(-logits[i]))
                guard box.isAtLeast(minSize), score >= scoreThreshold else { continue }
                boxes.append(box)
                scores.append(score)
                levels.append(level)
            }
        }
        let keep = Kernels.batchedNMS(boxes: boxes, scores: scores, groups: levels, iouThreshold: nmsThreshold)
            .prefix(max(postNMSTopN, 0))
        return (keep.map { boxes[$0] }, keep.map { scores[$0] })
    }

}
