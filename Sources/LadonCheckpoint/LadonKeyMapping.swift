// Maps per-task checkpoint keys (sc2bench/torchvision state dicts) to the Ladon runtime's tensor names.
import LadonCore

/// Which per-task checkpoint a file is.
public enum CheckpointSlot: String, CaseIterable, Sendable, Comparable {
    case classification, detection, segmentation

    /// `cls`, `det`, `seg`.
    public var shortName: String {
        switch self {
        case .classification: return "cls"
        case .detection: return "det"
        case .segmentation: return "seg"
        }
    }

    /// Accepts `cls|det|seg` or the full name.
    public init?(name: String) {
        guard let s = CheckpointSlot.allCases.first(where: { $0.shortName == name || $0.rawValue == name }) else { return nil }
        self = s
    }

    /// Reference load order: classification, detection, segmentation (the last one loaded wins).
    public static func < (a: CheckpointSlot, b: CheckpointSlot) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The key mapping of the reference runtime (`ladon_splittable_resnet`; docs/weights-format.md), plus normalisation of
/// old key spellings: CompressAI < 1.2.7 `_matrix{i}`/`_bias{i}`/`_factor{i}`, torchvision < 0.13
/// `fpn.inner_blocks.{i}.weight` and `rpn.head.conv.weight`.
public enum LadonKeyMapping {
    /// What the converter does with one checkpoint key.
    public enum Role: Sendable, Equatable {
        /// Part of the encoder / entropy bottleneck / decoder / layer2–4; the output name.
        case sharedBody(String)
        /// Part of this slot's head; the output name.
        case head(String)
        /// Deliberately not converted (reason given).
        case dropped(String)
        /// Not a key any Ladon checkpoint has.
        case unknown
    }

    /// The role of `key` in a checkpoint of kind `slot`.
    public static func role(of key: String, in slot: CheckpointSlot) -> Role {
        if key.hasSuffix("num_batches_tracked") { return .dropped("BatchNorm counter, unused at inference") }
        switch slot {
        case .classification:
            if key.hasPrefix("fc.") { return .head("classification_head." + key) }
            return body(key)
        case .detection:
            if let rest = key.dropPrefix("backbone.body.") { return body(rest) }
            if let rest = key.dropPrefix("backbone.fpn.") { return .head("detection_head.fpn." + fpn(rest)) }
            if let rest = key.dropPrefix("rpn.head.") { return .head("detection_head.rpn.head." + rpnHead(rest)) }
            if let rest = key.dropPrefix("roi_heads.") { return .head("detection_head.roi_heads." + rest) }
            return .unknown
        case .segmentation:
            if key.hasPrefix("aux_classifier.") { return .dropped("auxiliary FCN head, unused at inference") }
            if key.hasPrefix("classifier.") { return .head("segmentation_head." + key) }
            if let rest = key.dropPrefix("backbone.") { return body(rest) }
            return .unknown
        }
    }

    /// Shared-body key relative to the backbone (`bottleneck_layer.*`, `layer{2,3,4}.*`).
    static func body(_ key: String) -> Role {
        if let rest = key.dropPrefix("bottleneck_layer.encoder.") { return .sharedBody("encoder.encoder." + rest) }
        if let rest = key.dropPrefix("bottleneck_layer.decoder.") { return .sharedBody("shared_body.decoder." + rest) }
        if let rest = key.dropPrefix("bottleneck_layer.entropy_bottleneck.") {
            return .sharedBody("encoder.entropy_bottleneck." + entropyBottleneck(rest))
        }
        for stage in ["layer2.", "layer3.", "layer4."] where key.hasPrefix(stage) { return .sharedBody("shared_body." + key) }
        return .unknown
    }

    /// `_matrix3` → `matrices.3`, `_bias0` → `biases.0`, `_factor2` → `factors.2`; other names unchanged.
    public static func entropyBottleneck(_ name: String) -> String {
        for (old, new) in [("_matrix", "matrices."), ("_bias", "biases."), ("_factor", "factors.")] {
            if let digits = name.dropPrefix(old), !digits.isEmpty, digits.allSatisfy(\.isASCIIDigitCharacter) { return new + digits }
        }
        return name
    }

    /// `inner_blocks.2.weight` → `inner_blocks.2.0.weight` (torchvision < 0.13); new names unchanged.
    public static func fpn(_ name: String) -> String {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0] == "inner_blocks" || parts[0] == "layer_blocks",
           parts[1].allSatisfy(\.isASCIIDigitCharacter), parts[2] == "weight" || parts[2] == "bias" {
            return "\(parts[0]).\(parts[1]).0.\(parts[2])"
        }
        return name
    }

    /// `conv.weight` → `conv.0.0.weight` (torchvision < 0.13); new names unchanged.
    public static func rpnHead(_ name: String) -> String {
        name == "conv.weight" || name == "conv.bias" ? "conv.0.0." + name.dropFirst("conv.".count) : name
    }

    /// Guesses which task a checkpoint belongs to from its key prefixes; nil if ambiguous or unknown.
    public static func detectSlot(_ keys: [String]) -> CheckpointSlot? {
        let det = keys.contains { $0.hasPrefix("backbone.body.") || $0.hasPrefix("rpn.") || $0.hasPrefix("roi_heads.") || $0.hasPrefix("backbone.fpn.") }
        let seg = keys.contains { $0.hasPrefix("classifier.") || $0.hasPrefix("aux_classifier.")
            || ($0.hasPrefix("backbone.") && !$0.hasPrefix("backbone.body.") && !$0.hasPrefix("backbone.fpn.")) }
        let cls = keys.contains { $0.hasPrefix("bottleneck_layer.") || $0.hasPrefix("fc.") || $0.hasPrefix("layer4.") }
        let hits = [(CheckpointSlot.classification, cls), (.detection, det), (.segmentation, seg)].filter(\.1)
        return hits.count == 1 ? hits[0].0 : nil
    }

    /// A short description of a checkpoint's key prefixes, for messages.
    static func describe(_ keys: [String]) -> String {
        var prefixes: [String] = []
        for k in keys {
            let parts = k.split(separator: ".")
            let p = parts.count > 2 && parts[0] == "backbone" ? "\(parts[0]).\(parts[1]).*" : "\(parts.first ?? "").*"
            if !prefixes.contains(p) { prefixes.append(p) }
        }
        return prefixes.prefix(8).joined(separator: ", ")
    }
}

extension String {
    /// The remainder after `prefix`, or nil if the string does not start with it.
    func dropPrefix(_ prefix: String) -> String? { hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil }
}

extension Character {
    var isASCIIDigitCharacter: Bool { ("0"..."9").contains(self) }
}
