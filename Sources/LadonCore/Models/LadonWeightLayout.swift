// The exact tensor names and shapes of a converted Ladon weights file, derived from a model config.

/// One tensor a Ladon weights file must hold.
public struct LadonTensorSpec: Sendable, Equatable {
    /// Output name, e.g. `shared_body.layer2.0.conv1.weight`.
    public let name: String
    /// Expected shape; `-1` matches any extent in `1 ... maxFreeExtent` (only the CDF width of `_quantized_cdf`).
    public let shape: [Int]
    /// Largest extent a free (`-1`) dimension matches: 65537, the longest CDF the entropy coder accepts
    /// (`EntropyTables`), so a hostile `_quantized_cdf` cannot claim a width in the trillions.
    public static let maxFreeExtent = 65_537
    /// Stored as Int32 (the entropy coder's `_offset`, `_quantized_cdf`, `_cdf_length`) instead of Float32.
    public let isInteger: Bool
    /// The part of the model the tensor belongs to.
    public let group: LadonWeightLayout.Group

    /// Whether `actual` fits this spec's shape.
    public func matches(_ actual: [Int]) -> Bool {
        actual.count == shape.count && zip(actual, shape).allSatisfy { $1 == -1 ? (1...Self.maxFreeExtent).contains($0) : $0 == $1 }
    }
}

/// Tensor names and shapes of the Ladon runtime module's state dict (docs/weights-format.md), without
/// `num_batches_tracked`, the aux classifier, and the `shared_body.entropy_bottleneck` alias.
///
/// Naming: `encoder.encoder.{0..4}`, `encoder.entropy_bottleneck.{matrices,biases,factors}.{i}` (CompressAI >= 1.2.7
/// names), `shared_body.decoder.{0..4}`, `shared_body.layer{2,3,4}.{b}.…`, `classification_head.fc`,
/// `detection_head.{fpn,rpn.head,roi_heads.box_head,roi_heads.box_predictor}`, `segmentation_head.classifier`.
public enum LadonWeightLayout {
    /// The parts of the model tensors are grouped by in summaries; the raw values are the names `ladon convert`
    /// prints.
    public enum Group: String, Codable, Sendable, CaseIterable {
        case encoder, entropyBottleneck = "entropy_bottleneck", decoder, layer2, layer3, layer4
        case classificationHead = "classification_head", detectionHead = "detection_head"
        case segmentationHead = "segmentation_head"

        /// Body stage `i` (0 = layer2).
        static func stage(_ i: Int) -> Group { [.layer2, .layer3, .layer4][i] }
    }

    /// Body groups shared by all heads (taken from one checkpoint).
    public static let sharedGroups: [Group] = [.encoder, .entropyBottleneck, .decoder, .layer2, .layer3, .layer4]

    /// Every tensor for `config`, heads included only where the config has them, in a stable order.
    public static func specs(for config: LadonModelConfig) -> [LadonTensorSpec] {
        sharedSpecs(for: config) + headSpecs(for: config)
    }

    /// The encoder, entropy bottleneck, decoder and layer2–4.
    public static func sharedSpecs(for config: LadonModelConfig) -> [LadonTensorSpec] {
        var out: [LadonTensorSpec] = []
        func add(_ group: Group, _ name: String, _ shape: [Int], integer: Bool = false) {
            out.append(LadonTensorSpec(name: name, shape: shape, isInteger: integer, group: group))
        }
        func gdn(_ group: Group, _ prefix: String, _ c: Int) {
            add(group, prefix + ".beta", [c])
            add(group, prefix + ".gamma", [c, c])
            for p in ["beta_reparam", "gamma_reparam"] {
                add(group, "\(prefix).\(p).pedestal", [1])
                add(group, "\(prefix).\(p).lower_bound.bound", [1])
            }
        }
        let e = config.encoderChannels
        add(.encoder, "encoder.encoder.0.weight", [e[1], e[0], 5, 5])
        gdn(.encoder, "encoder.encoder.1", e[1])
        add(.encoder, "encoder.encoder.2.weight", [e[2], e[1], 5, 5])
        gdn(.encoder, "encoder.encoder.3", e[2])
        add(.encoder, "encoder.encoder.4.weight", [e[3], e[2], 2, 2])

        let c = config.bottleneckChannels
        let eb = "encoder.entropy_bottleneck"
        let dims = [1] + config.entropyBottleneck.filters + [1]
        for i in 0..<(dims.count - 1) { add(.entropyBottleneck, "\(eb).matrices.\(i)", [c, dims[i + 1], dims[i]]) }
        for i in 0..<(dims.count - 1) { add(.entropyBottleneck, "\(eb).biases.\(i)", [c, dims[i + 1], 1]) }
        for i in 0..<(dims.count - 2) { add(.entropyBottleneck, "\(eb).factors.\(i)", [c, dims[i + 1], 1]) }
        add(.entropyBottleneck, "\(eb).quantiles", [c, 1, 3])
        add(.entropyBottleneck, "\(eb)._offset", [c], integer: true)
        add(.entropyBottleneck, "\(eb)._quantized_cdf", [c, -1], integer: true)
        add(.entropyBottleneck, "\(eb)._cdf_length", [c], integer: true)
        add(.entropyBottleneck, "\(eb).target", [3])
        add(.entropyBottleneck, "\(eb).likelihood_lower_bound.bound", [1])

        let d = config.decoderChannels
        add(.decoder, "shared_body.decoder.0.weight", [d[1], d[0], 2, 2])
        gdn(.decoder, "shared_body.decoder.1", d[1])
        add(.decoder, "shared_body.decoder.2.weight", [d[2], d[1], 2, 2])
        gdn(.decoder, "shared_body.decoder.3", d[2])
        add(.decoder, "shared_body.decoder.4.weight", [d[3], d[2], 2, 2])

        var inChannels = d[3]
        for (s, (blocks, planes)) in zip(config.body.blocks, config.body.planes).enumerated() {
            let group = Group.stage(s), stage = "shared_body.layer\(s + 2)"
            let outChannels = planes * config.body.expansion
            func bn(_ prefix: String, _ n: Int) {
                for p in ["weight", "bias", "running_mean", "running_var"] { add(group, "\(prefix).\(p)", [n]) }
            }
            for b in 0..<blocks {
                let blockIn = b == 0 ? inChannels : outChannels, block = "\(stage).\(b)"
                add(group, "\(block).conv1.weight", [planes, blockIn, 1, 1]); bn("\(block).bn1", planes)
                switch config.body.kind {
                case .resnest269e:
                    // timm SplitAttn: grouped 3×3 (groups = radix), bn0, fc1 (+bias), bn1, fc2 (+bias).
                    let radix = ResNeStBottleneckBlock.resnest269eRadix
                    let attention = ResNeStBottleneckBlock.attentionChannels(planes: planes, radix: radix)
                    add(group, "\(block).conv2.conv.weight", [radix * planes, planes / radix, 3, 3])
                    bn("\(block).conv2.bn0", radix * planes)
                    add(group, "\(block).conv2.fc1.weight", [attention, planes, 1, 1])
                    add(group, "\(block).conv2.fc1.bias", [attention])
                    bn("\(block).conv2.bn1", attention)
                    add(group, "\(block).conv2.fc2.weight", [radix * planes, attention, 1, 1])
                    add(group, "\(block).conv2.fc2.bias", [radix * planes])
                    add(group, "\(block).conv3.weight", [outChannels, planes, 1, 1]); bn("\(block).bn3", outChannels)
                    if b == 0 {
                        // downsample.0 is the average pool (no tensors).
                        add(group, "\(stage).0.downsample.1.weight", [outChannels, blockIn, 1, 1])
                        bn("\(stage).0.downsample.2", outChannels)
                    }
                case .resnet50, nil:
                    add(group, "\(block).conv2.weight", [planes, planes, 3, 3]); bn("\(block).bn2", planes)
                    add(group, "\(block).conv3.weight", [outChannels, planes, 1, 1]); bn("\(block).bn3", outChannels)
                    if b == 0 {
                        add(group, "\(stage).0.downsample.0.weight", [outChannels, blockIn, 1, 1])
                        bn("\(stage).0.downsample.1", outChannels)
                    }
                }
            }
            inChannels = outChannels
        }
        return out
    }

    /// The heads present in `config`.
    public static func headSpecs(for config: LadonModelConfig) -> [LadonTensorSpec] {
        var out: [LadonTensorSpec] = []
        func add(_ group: Group, _ name: String, _ shape: [Int]) {
            out.append(LadonTensorSpec(name: name, shape: shape, isInteger: false, group: group))
        }
        let stages = config.stageChannels
        if let cls = config.classification {
            add(.classificationHead, "classification_head.fc.weight", [cls.numClasses, stages[2]])
            add(.classificationHead, "classification_head.fc.bias", [cls.numClasses])
        }
        if let det = config.detection {
            let g = Group.detectionHead, f = det.fpnChannels, a = det.aspectRatios.count
            let fpnIn = [config.decoderChannels[3]] + stages
            for (i, c) in fpnIn.enumerated() {
                add(g, "detection_head.fpn.inner_blocks.\(i).0.weight", [f, c, 1, 1])
                add(g, "detection_head.fpn.inner_blocks.\(i).0.bias", [f])
            }
            for i in fpnIn.indices {
                add(g, "detection_head.fpn.layer_blocks.\(i).0.weight", [f, f, 3, 3])
                add(g, "detection_head.fpn.layer_blocks.\(i).0.bias", [f])
            }
            add(g, "detection_head.rpn.head.conv.0.0.weight", [f, f, 3, 3])
            add(g, "detection_head.rpn.head.conv.0.0.bias", [f])
            add(g, "detection_head.rpn.head.cls_logits.weight", [a, f, 1, 1])
            add(g, "detection_head.rpn.head.cls_logits.bias", [a])
            add(g, "detection_head.rpn.head.bbox_pred.weight", [4 * a, f, 1, 1])
            add(g, "detection_head.rpn.head.bbox_pred.bias", [4 * a])
            let r = det.representationSize, pooled = f * det.roiOutputSize * det.roiOutputSize
            add(g, "detection_head.roi_heads.box_head.fc6.weight", [r, pooled])
            add(g, "detection_head.roi_heads.box_head.fc6.bias", [r])
            add(g, "detection_head.roi_heads.box_head.fc7.weight", [r, r])
            add(g, "detection_head.roi_heads.box_head.fc7.bias", [r])
            add(g, "detection_head.roi_heads.box_predictor.cls_score.weight", [det.numClasses, r])
            add(g, "detection_head.roi_heads.box_predictor.cls_score.bias", [det.numClasses])
            add(g, "detection_head.roi_heads.box_predictor.bbox_pred.weight", [4 * det.numClasses, r])
            add(g, "detection_head.roi_heads.box_predictor.bbox_pred.bias", [4 * det.numClasses])
        }
        if let seg = config.segmentation {
            let g = Group.segmentationHead, p = "segmentation_head.classifier", a = seg.asppChannels, inC = stages[2]
            func bn(_ prefix: String) {
                for n in ["weight", "bias", "running_mean", "running_var"] { add(g, "\(prefix).\(n)", [a]) }
            }
            add(g, "\(p).0.convs.0.0.weight", [a, inC, 1, 1]); bn("\(p).0.convs.0.1")
            for i in 1...seg.asppRates.count {
                add(g, "\(p).0.convs.\(i).0.weight", [a, inC, 3, 3]); bn("\(p).0.convs.\(i).1")
            }
            let pool = seg.asppRates.count + 1
            add(g, "\(p).0.convs.\(pool).1.weight", [a, inC, 1, 1]); bn("\(p).0.convs.\(pool).2")
            add(g, "\(p).0.project.0.weight", [a, a * (seg.asppRates.count + 2), 1, 1]); bn("\(p).0.project.1")
            add(g, "\(p).1.weight", [a, a, 3, 3]); bn("\(p).2")
            add(g, "\(p).4.weight", [seg.numClasses, a, 1, 1])
            add(g, "\(p).4.bias", [seg.numClasses])
        }
        return out
    }
}
