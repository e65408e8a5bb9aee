// Assembles the three per-task Ladon checkpoints into one validated set of runtime tensors.
import Foundation
import LadonCore

/// One tensor of a converted model: Float32 or Int32 little-endian bytes.
public struct ConvertedTensor: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    /// `.f32` or `.i32`.
    public let dtype: SafeTensorsDType
    public let bytes: [UInt8]
    /// Summary group (see ``LadonTensorSpec/group``).
    public let group: LadonWeightLayout.Group
}

/// How far one checkpoint's copy of a shared-body group differs from the copy that was kept.
public struct SharedBodyDifference: Sendable, Equatable {
    /// What kind of tensors a row covers.
    public enum Kind: String, Sendable {
        /// Learned parameters (conv weights, GDN, BN affine, entropy model parameters).
        case parameters
        /// BatchNorm `running_mean` / `running_var`.
        case runningStatistics = "running-stats"
        /// The entropy coder's integer tables `_offset`, `_quantized_cdf`, `_cdf_length`.
        case entropyTables = "entropy-tables"
    }
    /// The checkpoint compared.
    public let slot: CheckpointSlot
    /// The checkpoint the shared body was taken from.
    public let reference: CheckpointSlot
    public let group: LadonWeightLayout.Group
    public let kind: Kind
    /// Tensors compared (same name and shape in both).
    public var compared = 0
    /// Of those, how many differ at all.
    public var differing = 0
    /// Largest |a - b| over all compared elements.
    public var maxAbsDifference = 0.0
    /// Names missing from the compared checkpoint or of another shape there.
    public var incomparable: [String] = []
}

/// The result of ``LadonConverter/convert(_:sharedBodyFrom:)``.
public struct LadonConversion: Sendable {
    /// The config, restricted to the heads that were converted.
    public let config: LadonModelConfig
    /// Tensors in ``LadonWeightLayout`` order.
    public let tensors: [ConvertedTensor]
    /// Checkpoints given, in load order.
    public let slots: [CheckpointSlot]
    /// Where the encoder, entropy bottleneck, decoder and layer2–4 come from.
    public let sharedBodyFrom: CheckpointSlot
    /// Shared-body comparison of every other checkpoint against `sharedBodyFrom`.
    public let differences: [SharedBodyDifference]
    /// Source keys deliberately left out, per checkpoint (`num_batches_tracked`, `aux_classifier.*`).
    public let dropped: [CheckpointSlot: [String]]
    /// Things worth telling the user (unknown keys, empty CDF tables).
    public let warnings: [String]

    /// Tensor count per group, in layout order.
    public var groupCounts: [(group: LadonWeightLayout.Group, count: Int)] {
        var out: [(LadonWeightLayout.Group, Int)] = []
        for t in tensors {
            if let i = out.firstIndex(where: { $0.0 == t.group }) { out[i].1 += 1 } else { out.append((t.group, 1)) }
        }
        return out.map { (group: $0.0, count: $0.1) }
    }

    /// SHA-256 over the tensors sorted by name: for each, `name 0x00 dtype 0x00 shape(comma-joined) 0x00`,
    /// the byte count as 8-byte little-endian, then the bytes. Metadata does not enter it.
    public let fingerprint: String

    init(config: LadonModelConfig, tensors: [ConvertedTensor], slots: [CheckpointSlot], sharedBodyFrom: CheckpointSlot,
         differences: [SharedBodyDifference], dropped: [CheckpointSlot: [String]], warnings: [String]) {
        self.config = config
        self.tensors = tensors
        self.slots = slots
        self.sharedBodyFrom = sharedBodyFrom
        self.differences = differences
        self.dropped = dropped
        self.warnings = warnings
        self.fingerprint = Self.fingerprint(tensors.map { ($0.name, $0.dtype.rawValue, $0.shape, $0.bytes) })
    }

    /// The fingerprint rule over raw `(name, dtype, shape, bytes)` records (``LadonWeightsFormat/fingerprint(_:)``).
    public static func fingerprint(_ records: [(String, String, [Int], [UInt8])]) -> String {
        LadonWeightsFormat.fingerprint(records)
    }
}

/// Builds Ladon runtime weights from per-task checkpoints, as the reference runtime assembles them
/// (docs/weights-format.md, "Tensor names" and the shared-body rule): the shared body from the last checkpoint in the load order classification →
/// detection → segmentation (so segmentation wins) unless chosen explicitly, `fc` from classification,
/// FPN/RPN/RoI heads from detection, the DeepLab head from segmentation. Every tensor is checked against
/// ``LadonWeightLayout`` for the config, so a missing tensor, a wrong shape or a checkpoint given for the
/// wrong task is an error that names it.
public struct LadonConverter: Sendable {
    public let config: LadonModelConfig

    public init(config: LadonModelConfig = .resnet50) throws(LadonError) {
        try config.validate()
        self.config = config
    }

    /// Converts the given checkpoints (at least one). Each must be of the task its key says.
    public func convert(_ checkpoints: [CheckpointSlot: TorchCheckpoint],
                        sharedBodyFrom: CheckpointSlot? = nil) throws(LadonError) -> LadonConversion {
        let slots = checkpoints.keys.sorted()
        guard let last = slots.last else { throw .checkpoint(file: nil, .noCheckpoints) }
        let bodySlot = sharedBodyFrom ?? last
        guard checkpoints[bodySlot] != nil else {
            throw .checkpoint(file: nil, .missingBodyCheckpoint(slot: bodySlot.rawValue))
        }
        var outputConfig = config
        if checkpoints[.classification] == nil { outputConfig.classification = nil }
        if checkpoints[.detection] == nil { outputConfig.detection = nil }
        if checkpoints[.segmentation] == nil { outputConfig.segmentation = nil }
        for slot in slots where !outputConfig.heads.contains(slot.rawValue) {
            throw .config(.unexpectedHead(model: config.architecture, head: slot.rawValue))
        }

        // Map every checkpoint's keys; check each file is the task it was given for.
        var maps: [CheckpointSlot: [String: String]] = [:]  // output name -> source key
        var dropped: [CheckpointSlot: [String]] = [:]
        var warnings: [String] = []
        for slot in slots {
            let ckpt = checkpoints[slot]!
            let keys = ckpt.names
            if let detected = LadonKeyMapping.detectSlot(keys), detected != slot {
                throw .checkpoint(file: ckpt.source, .wrongSlot(given: slot.rawValue, detected: detected.rawValue, keys: LadonKeyMapping.describe(keys)))
            }
            var map: [String: String] = [:], unknown: [String] = []
            for key in keys {
                switch LadonKeyMapping.role(of: key, in: slot) {
                case .sharedBody(let out), .head(let out):
                    guard map[out] == nil else { throw .checkpoint(file: ckpt.source, .keyCollision(map[out]!, key, target: out)) }
                    map[out] = key
                case .dropped: dropped[slot, default: []].append(key)
                case .unknown: unknown.append(key)
                }
            }
            guard !map.isEmpty else {
                throw .checkpoint(file: ckpt.source, .noLadonTensors(slot: slot.rawValue, keys: LadonKeyMapping.describe(keys)))
            }
            if !unknown.isEmpty {
                warnings.append("\(ckpt.source): \(unknown.count) unknown keys ignored (\(unknown.prefix(4).joined(separator: ", "))\(unknown.count > 4 ? ", …" : ""))")
            }
            maps[slot] = map
        }

        let bodyCkpt = checkpoints[bodySlot]!
        try checkBodyKind(bodyCkpt, map: maps[bodySlot]!)
        let sharedSpecs = LadonWeightLayout.sharedSpecs(for: outputConfig)
        let headSpecs = LadonWeightLayout.headSpecs(for: outputConfig)
        var tensors: [ConvertedTensor] = []
        for spec in sharedSpecs {
            tensors.append(try read(spec, from: bodyCkpt, map: maps[bodySlot]!, warnings: &warnings))
        }
        fillEmptyEntropyTables(&tensors, bodySlot: bodySlot, checkpoints: checkpoints, maps: maps, warnings: &warnings)
        for spec in headSpecs {
            let slot = spec.group == .classificationHead ? CheckpointSlot.classification
                : spec.group == .detectionHead ? .detection : .segmentation
            tensors.append(try read(spec, from: checkpoints[slot]!, map: maps[slot]!, warnings: &warnings))
        }
        // Anything mapped into a used part but not in the layout means the config does not describe the file.
        let expected = Set((sharedSpecs + headSpecs).map(\.name))
        for slot in slots {
            for (out, key) in maps[slot]!.sorted(by: { $0.key < $1.key }) where !expected.contains(out) {
                let isBody = out.hasPrefix("encoder.") || out.hasPrefix("shared_body.")
                if isBody && slot != bodySlot { continue }
                throw .checkpoint(file: checkpoints[slot]!.source, .unknownCheckpointKey(key: key, mapped: out, architecture: config.architecture))
            }
        }
        let differences = try compare(sharedSpecs, kept: tensors, bodySlot: bodySlot, checkpoints: checkpoints, maps: maps)
        return LadonConversion(config: outputConfig, tensors: tensors, slots: slots, sharedBodyFrom: bodySlot,
                               differences: differences, dropped: dropped, warnings: warnings)
    }

    /// Rejects a body of another kind than the configured one early, with a message that says what the file is
    /// and which backbone converts it.
    private func checkBodyKind(_ ckpt: TorchCheckpoint, map: [String: String]) throws(LadonError) {
        let hints = [LadonModelConfig.resnet50, .resnest269e].map { ($0.bottleneckChannels, $0.body.name) }
        if let key = map["encoder.encoder.4.weight"], let ref = try? ckpt.tensorRef(key), let latent = ref.shape.first,
           latent != config.bottleneckChannels {
            throw .checkpoint(file: ckpt.source, .bottleneckChannels(found: latent, expected: config.bottleneckChannels, architecture: config.architecture,
                                                                     otherBackbone: hints.first { $0.0 == latent }?.1))
        }
        let splitAttention = map.values.sorted().first { $0.contains(".conv2.conv.") || $0.contains(".conv2.fc1.") }
        let plainBottleneck = map.values.sorted().first { $0.hasSuffix(".conv2.weight") }
        switch config.body.kind {
        case .resnet50?:
            if let key = splitAttention {
                throw .checkpoint(file: ckpt.source, .wrongBackbone(key: key, block: "ResNeSt split-attention", architecture: config.architecture,
                                                                     body: "resnet50", convertWith: "resnest269e"))
            }
        case .resnest269e?:
            if let key = plainBottleneck {
                throw .checkpoint(file: ckpt.source, .wrongBackbone(key: key, block: "ResNet bottleneck", architecture: config.architecture,
                                                                     body: "resnest269e", convertWith: "resnet50"))
            }
        case nil:
            break
        }
    }

    /// Replaces empty entropy tables of the kept body (a checkpoint saved before CompressAI's `update()`, as the
    /// ResNeSt-269e β = 0.32/1.28/5.12 classification files probably are) by those of another given checkpoint
    /// whose entropy-model parameters are bit-identical (the bottleneck is frozen after stage 1, so the detection
    /// and segmentation files qualify), or else rebuilds them from the entropy model; says which in a warning.
    private func fillEmptyEntropyTables(_ tensors: inout [ConvertedTensor], bodySlot: CheckpointSlot,
                                        checkpoints: [CheckpointSlot: TorchCheckpoint], maps: [CheckpointSlot: [String: String]],
                                        warnings: inout [String]) {
        let specs = LadonWeightLayout.sharedSpecs(for: config).filter { $0.group == .entropyBottleneck }
        let tables = specs.filter(\.isInteger), parameters = specs.filter { !$0.isInteger }
        guard tables.contains(where: { spec in tensors.contains { $0.name == spec.name && $0.shape.reduce(1, *) == 0 } }) else { return }
        let bodySource = checkpoints[bodySlot]!.source
        for slot in checkpoints.keys.sorted() where slot != bodySlot {
            let ckpt = checkpoints[slot]!, map = maps[slot]!
            var candidate: [ConvertedTensor] = []
            var scratch: [String] = []
            do {
                for spec in tables { candidate.append(try read(spec, from: ckpt, map: map, warnings: &scratch)) }
                guard scratch.isEmpty, candidate.allSatisfy({ $0.shape.reduce(1, *) > 0 }) else { continue }
                var sameModel = true
                for spec in parameters where sameModel {
                    let theirs = try read(spec, from: ckpt, map: map, warnings: &scratch)
                    sameModel = tensors.first { $0.name == spec.name } == theirs
                }
                guard sameModel else { continue }
            } catch {
                continue
            }
            for t in candidate {
                if let i = tensors.firstIndex(where: { $0.name == t.name }) { tensors[i] = t }
            }
            warnings.removeAll { $0.hasPrefix("\(bodySource): ") && $0.contains("is empty (entropy model saved before update())") }
            warnings.append("\(bodySource): the entropy tables (_offset, _quantized_cdf, _cdf_length) are empty (saved before update()); took them from \(ckpt.source), whose entropy model parameters are identical")
            return
        }
        do {
            try rebuildEntropyTables(&tensors, source: bodySource)
        } catch {
            warnings.append("\(bodySource): rebuilding the empty entropy tables failed (\(error)); they stay empty and the runtime will refuse them")
            return
        }
        warnings.removeAll { $0.hasPrefix("\(bodySource): ") && $0.contains("is empty (entropy model saved before update())") }
        warnings.append("\(bodySource): the entropy tables (_offset, _quantized_cdf, _cdf_length) are empty (saved before update()) and no other checkpoint given has them; rebuilt them from the entropy model as CompressAI 1.2.8's update() does (EntropyBottleneck(rebuildingTablesFrom:)). Streams coded with rebuilt tables may not decode with another installation's tables; convert with the detection or segmentation file to take its tables instead")
    }

    /// Replaces the entropy tables by ones rebuilt from the converted entropy-model parameters.
    private func rebuildEntropyTables(_ tensors: inout [ConvertedTensor], source: String) throws(LadonError) {
        let prefix = "encoder.entropy_bottleneck."
        var writer = SafeTensorsWriter()
        for t in tensors where t.name.hasPrefix(prefix) && t.dtype == .f32 {
            writer.add(String(t.name.dropFirst(prefix.count)), dtype: .f32, shape: t.shape, bytes: t.bytes)
        }
        let file = try SafeTensorsFile(data: writer.serialized(), source: "\(source) entropy model")
        let tables = try EntropyBottleneck(rebuildingTablesFrom: WeightScope(file: file)).tables
        let width = Int(tables.cdfLengths.max() ?? 0)
        var cdf: [Int32] = []
        for (row, length) in zip(tables.cdfs, tables.cdfLengths) {
            let used = row.prefix(Int(length)).map { Int32(bitPattern: $0) }
            cdf += used + [Int32](repeating: 0, count: width - used.count)
        }
        let rebuilt: [String: ([Int], [Int32])] = [
            prefix + "_offset": ([tables.channels], tables.offsets),
            prefix + "_cdf_length": ([tables.channels], tables.cdfLengths),
            prefix + "_quantized_cdf": ([tables.channels, width], cdf),
        ]
        for (i, t) in tensors.enumerated() {
            guard let (shape, values) = rebuilt[t.name] else { continue }
            tensors[i] = ConvertedTensor(name: t.name, shape: shape, dtype: .i32,
                                         bytes: values.map(\.littleEndian).withUnsafeBytes { [UInt8]($0) }, group: t.group)
        }
    }

    private func read(_ spec: LadonTensorSpec, from ckpt: TorchCheckpoint, map: [String: String],
                      warnings: inout [String]) throws(LadonError) -> ConvertedTensor {
        guard let key = map[spec.name] else {
            throw .missingTensor(name: "\(spec.name) (source key for '\(spec.name)' not found)", file: ckpt.source)
        }
        let ref = try ckpt.tensorRef(key)
        let isEntropyTable = spec.isInteger
        if isEntropyTable && ref.elementCount == 0 {
            warnings.append("\(ckpt.source): '\(key)' is empty (entropy model saved before update())")
        } else if !spec.matches(ref.shape) {
            throw .shapeMismatch(name: "\(spec.name) (from \(ckpt.source): \(key))",
                                 expected: spec.shape.map { $0 == -1 ? 0 : $0 }, actual: ref.shape)
        }
        if spec.isInteger {
            guard !ref.dtype.isFloatingPoint else {
                throw .checkpoint(file: ckpt.source, .wrongDType(tensor: key, dtype: ref.dtype.rawValue, expected: "integer"))
            }
            let values = try ckpt.int32Values(key)
            return ConvertedTensor(name: spec.name, shape: ref.shape, dtype: .i32,
                                   bytes: values.map(\.littleEndian).withUnsafeBytes { [UInt8]($0) }, group: spec.group)
        }
        guard ref.dtype.isFloatingPoint else {
            throw .checkpoint(file: ckpt.source, .wrongDType(tensor: key, dtype: ref.dtype.rawValue, expected: "floating-point"))
        }
        let values = try ckpt.floats(ref)
        return ConvertedTensor(name: spec.name, shape: ref.shape, dtype: .f32,
                               bytes: values.withUnsafeBytes { [UInt8]($0) }, group: spec.group)
    }

    private func compare(_ specs: [LadonTensorSpec], kept: [ConvertedTensor], bodySlot: CheckpointSlot,
                         checkpoints: [CheckpointSlot: TorchCheckpoint],
                         maps: [CheckpointSlot: [String: String]]) throws(LadonError) -> [SharedBodyDifference] {
        let keptByName = Dictionary(uniqueKeysWithValues: kept.map { ($0.name, $0) })
        var rows: [SharedBodyDifference] = []
        var rowIndex: [String: Int] = [:]
        for slot in checkpoints.keys.sorted() where slot != bodySlot {
            let ckpt = checkpoints[slot]!
            for spec in specs {
                let kind: SharedBodyDifference.Kind = spec.isInteger ? .entropyTables
                    : spec.name.hasSuffix(".running_mean") || spec.name.hasSuffix(".running_var") ? .runningStatistics : .parameters
                let rowKey = "\(slot.rawValue)/\(spec.group.rawValue)/\(kind.rawValue)"
                let i: Int
                if let existing = rowIndex[rowKey] { i = existing } else {
                    i = rows.count
                    rowIndex[rowKey] = i
                    rows.append(SharedBodyDifference(slot: slot, reference: bodySlot, group: spec.group, kind: kind))
                }
                let mine = keptByName[spec.name]!
                if let key = maps[slot]![spec.name], let ref = try? ckpt.tensorRef(key), ref.shape == mine.shape,
                   ref.dtype.isFloatingPoint != spec.isInteger {
                    let theirs: [Double] = spec.isInteger ? try ckpt.int64s(ref).map(Double.init) : try ckpt.floats(ref).map(Double.init)
                    var worst = 0.0
                    for (a, b) in zip(Self.values(of: mine), theirs) { worst = max(worst, abs(a - b)) }
                    rows[i].compared += 1
                    if worst > 0 { rows[i].differing += 1 }
                    rows[i].maxAbsDifference = max(rows[i].maxAbsDifference, worst)
                } else {
                    rows[i].incomparable.append(spec.name)
                }
            }
        }
        return rows
    }

    private static func values(of t: ConvertedTensor) -> [Double] {
        t.bytes.withUnsafeBytes { raw in
            let n = raw.count / 4
            return t.dtype == .i32
                ? (0..<n).map { Double(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
                : (0..<n).map { Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))) }
        }
    }
}
