// LadonConverter on tiny-width per-task checkpoints built from the real modules, and the full-size layout.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore
@testable import LadonCheckpoint

private func ckpt(_ name: String) throws -> TorchCheckpoint {
    try TorchCheckpoint(path: Fixtures.url("checkpoints/\(name)").path)
}

private func tinyConfig() throws -> LadonModelConfig {
    try LadonModelConfig.decode(json: Data(Fixtures.bytes("checkpoints/ladon_tiny_config.json")), source: "tiny config")
}

private func allThree() throws -> [CheckpointSlot: TorchCheckpoint] {
    [.classification: try ckpt("ladon_tiny_cls.pt"), .detection: try ckpt("ladon_tiny_det.pt"),
     .segmentation: try ckpt("ladon_tiny_seg.pt")]
}

private func conversionError(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

@Suite struct ConverterTests {
    @Test func convertsAllThreeLikeTheReferenceRuntime() throws {
        let converter = try LadonConverter(config: tinyConfig())
        let c = try converter.convert(allThree())
        let expected = try Fixtures.safetensors("checkpoints/ladon_tiny_expected.safetensors")
        #expect(c.sharedBodyFrom == .segmentation)
        #expect(Set(c.tensors.map(\.name)) == Set(expected.names))
        #expect(c.tensors.map(\.name) == LadonWeightLayout.specs(for: converter.config).map(\.name))
        for t in c.tensors {
            let e = try expected.entry(t.name)
            #expect(t.shape == e.shape, "\(t.name)")
            if t.dtype == .i32 {
                #expect(e.dtype == .i32, "\(t.name)")
                #expect(t.bytes == (try expected.rawBytes(t.name)), "\(t.name)")
            } else {
                #expect(t.bytes == (try expected.rawBytes(t.name)), "\(t.name)")
            }
        }
        #expect(c.groupCounts.map(\.group.rawValue) == ["encoder", "entropy_bottleneck", "decoder", "layer2", "layer3", "layer4",
                                               "classification_head", "detection_head", "segmentation_head"])
        #expect(c.groupCounts.first { $0.group == .entropyBottleneck }?.count == 20)
        #expect(c.dropped[.segmentation]?.contains("aux_classifier.4.bias") == true)
        #expect(c.dropped[.classification]?.contains("layer2.0.bn1.num_batches_tracked") == true)
        #expect(c.warnings.isEmpty, "\(c.warnings)")
    }

    @Test func reportsSharedBodyDifferences() throws {
        let c = try LadonConverter(config: tinyConfig()).convert(allThree())
        // Parameters are identical in all three files; running statistics were perturbed in det and seg.
        for d in c.differences {
            #expect(d.reference == .segmentation)
            #expect(d.incomparable.isEmpty)
            switch d.kind {
            case .parameters, .entropyTables: #expect(d.maxAbsDifference == 0, "\(d.slot) \(d.group) \(d.kind)")
            case .runningStatistics:
                #expect([.layer2, .layer3, .layer4].contains(d.group))
                #expect(d.maxAbsDifference > 0.01 && d.maxAbsDifference < 0.07, "\(d.slot) \(d.group): \(d.maxAbsDifference)")
                #expect(d.differing == d.compared && d.compared > 0)
            }
        }
        #expect(Set(c.differences.map(\.slot)) == [.classification, .detection])
    }

    @Test func sharedBodyChoiceFollowsTheOption() throws {
        let files = try allThree()
        let fromCls = try LadonConverter(config: tinyConfig()).convert(files, sharedBodyFrom: .classification)
        let cls = files[.classification]!, seg = files[.segmentation]!
        let name = "shared_body.layer3.0.bn2.running_mean"
        let kept = fromCls.tensors.first { $0.name == name }!
        let clsValues = try cls.floatTensor("layer3.0.bn2.running_mean").scalars
        #expect(kept.bytes == clsValues.withUnsafeBytes { [UInt8]($0) })
        #expect(try seg.floatTensor("backbone.layer3.0.bn2.running_mean").scalars != clsValues)
        #expect(fromCls.fingerprint != (try LadonConverter(config: tinyConfig()).convert(files).fingerprint))
    }

    @Test func partialConversions() throws {
        let converter = try LadonConverter(config: tinyConfig())
        let clsOnly = try converter.convert([.classification: ckpt("ladon_tiny_cls.pt")])
        #expect(clsOnly.config.heads == ["classification"])
        #expect(clsOnly.sharedBodyFrom == .classification)
        #expect(!clsOnly.tensors.contains { $0.group == .detectionHead || $0.group == .segmentationHead })
        #expect(clsOnly.tensors.contains { $0.name == "encoder.entropy_bottleneck.matrices.0" })  // from _matrix0
        let detOnly = try converter.convert([.detection: ckpt("ladon_tiny_det.pt")])
        #expect(detOnly.tensors.contains { $0.name == "detection_head.fpn.inner_blocks.3.0.weight" })  // old name
        #expect(detOnly.tensors.contains { $0.name == "detection_head.rpn.head.conv.0.0.bias" })
        #expect(conversionError { _ = try converter.convert([:]) }?.contains("no checkpoint given") == true)
        #expect(conversionError { _ = try converter.convert([.classification: ckpt("ladon_tiny_cls.pt")], sharedBodyFrom: .segmentation) }?
            .contains("none was given") == true)
    }

    @Test func wrongInputsAreClearErrors() throws {
        let converter = try LadonConverter(config: tinyConfig())
        let wrongSlot = conversionError { _ = try converter.convert([.classification: ckpt("ladon_tiny_det.pt")]) }
        #expect(wrongSlot?.contains("ladon_tiny_det.pt was given as the classification checkpoint but looks like a detection checkpoint") == true)
        let badShape = conversionError { _ = try converter.convert([.classification: ckpt("ladon_tiny_cls_badshape.pt")]) }
        #expect(badShape?.contains("shared_body.layer3.0.conv2.weight") == true)
        #expect(badShape?.contains("[4, 4, 1, 3], expected [4, 4, 3, 3]") == true)
        // The tiny files against the full-size config: the bottleneck width gives it away.
        let full = try LadonConverter(config: .resnet50)
        let width = conversionError { _ = try full.convert([.segmentation: ckpt("ladon_tiny_seg.pt")]) }
        #expect(width?.contains("bottleneck has 2 channels") == true)
        // A config with fewer blocks than the file: the extra block is named.
        var fewer = try tinyConfig()
        fewer.body.blocks = [1, 1, 1]
        let extra = conversionError { _ = try LadonConverter(config: fewer).convert([.classification: ckpt("ladon_tiny_cls.pt")]) }
        #expect(extra?.contains("layer2.1.") == true)
        // A config with a head the file set cannot provide a tensor for.
        var more = try tinyConfig()
        more.body.blocks = [3, 1, 1]
        let missing = conversionError { _ = try LadonConverter(config: more).convert([.classification: ckpt("ladon_tiny_cls.pt")]) }
        #expect(missing?.contains("shared_body.layer2.2.conv1.weight") == true)
        // Not a Ladon checkpoint at all.
        let foreign = conversionError { _ = try converter.convert([.classification: ckpt("torch_various.pt")]) }
        #expect(foreign?.contains("no Ladon classification tensors") == true)
    }

    @Test func keyMappingNormalisesOldNames() {
        #expect(LadonKeyMapping.role(of: "bottleneck_layer.entropy_bottleneck._matrix4", in: .classification)
                == .sharedBody("encoder.entropy_bottleneck.matrices.4"))
        #expect(LadonKeyMapping.role(of: "backbone.body.bottleneck_layer.entropy_bottleneck._factor0", in: .detection)
                == .sharedBody("encoder.entropy_bottleneck.factors.0"))
        #expect(LadonKeyMapping.role(of: "backbone.bottleneck_layer.entropy_bottleneck._bias2", in: .segmentation)
                == .sharedBody("encoder.entropy_bottleneck.biases.2"))
        #expect(LadonKeyMapping.role(of: "backbone.fpn.layer_blocks.2.weight", in: .detection)
                == .head("detection_head.fpn.layer_blocks.2.0.weight"))
        #expect(LadonKeyMapping.role(of: "backbone.fpn.inner_blocks.1.0.bias", in: .detection)
                == .head("detection_head.fpn.inner_blocks.1.0.bias"))
        #expect(LadonKeyMapping.role(of: "rpn.head.conv.weight", in: .detection) == .head("detection_head.rpn.head.conv.0.0.weight"))
        #expect(LadonKeyMapping.role(of: "backbone.bottleneck_layer.decoder.4.weight", in: .segmentation)
                == .sharedBody("shared_body.decoder.4.weight"))
        #expect(LadonKeyMapping.role(of: "bottleneck_layer.encoder.1.gamma", in: .classification) == .sharedBody("encoder.encoder.1.gamma"))
        if case .dropped = LadonKeyMapping.role(of: "aux_classifier.0.weight", in: .segmentation) {} else { Issue.record("aux kept") }
        if case .dropped = LadonKeyMapping.role(of: "layer2.0.bn1.num_batches_tracked", in: .classification) {} else { Issue.record("nbt kept") }
        #expect(LadonKeyMapping.role(of: "fc.weight", in: .detection) == .unknown)
    }

    /// The Swift layout for the ResNet-50 config equals the real sc2bench/torchvision state dicts, mapped.
    @Test func fullSizeLayoutMatchesTheRealModules() throws {
        let json = try JSONSerialization.jsonObject(with: Data(Fixtures.bytes("checkpoints/ladon_resnet50_keys.json"))) as! [String: [[Any]]]
        var mapped: [String: [Int]] = [:]
        var counts: [String: Int] = [:]
        for slot in CheckpointSlot.allCases {
            let rows = json[slot.rawValue]!
            counts[slot.rawValue] = rows.count
            #expect(LadonKeyMapping.detectSlot(rows.map { $0[0] as! String }) == slot)
            for row in rows {
                let name = row[0] as! String, shape = row[1] as! [Int]
                switch LadonKeyMapping.role(of: name, in: slot) {
                case .sharedBody(let out):
                    if let previous = mapped[out] { #expect(previous == shape, "\(out)") }
                    mapped[out] = shape
                case .head(let out): mapped[out] = shape
                case .dropped: break
                case .unknown: Issue.record("unknown key \(name) in \(slot)")
                }
            }
        }
        #expect(counts == ["classification": 304, "detection": 332, "segmentation": 354])
        let specs = LadonWeightLayout.specs(for: .resnet50)
        #expect(specs.count == 329)
        #expect(Set(specs.map(\.name)) == Set(mapped.keys))
        for spec in specs {
            #expect(spec.matches(mapped[spec.name] ?? []), "\(spec.name): \(mapped[spec.name] ?? []) vs \(spec.shape)")
        }
        #expect(specs.first { $0.name == "shared_body.layer4.0.downsample.0.weight" }?.shape == [2048, 1024, 1, 1])
        #expect(specs.first { $0.name == "detection_head.roi_heads.box_head.fc6.weight" }?.shape == [1024, 12544])
    }

    @Test func weightsFileRoundTrip() throws {
        let files = try allThree()
        let c = try LadonConverter(config: tinyConfig()).convert(files)
        let sources = files.keys.sorted().map { LadonWeightsFormat.Source(slot: $0, fileName: "\($0.shortName).pt", sha256: String(repeating: "ab", count: 32)) }
        let data = LadonWeightsFormat.serialize(c, sources: sources)
        let file = try SafeTensorsFile(data: data, source: "converted")
        let info = try LadonModelFile(file: file)
        #expect(info.config == c.config)
        #expect(info.kind == .full)
        #expect(info.sharedBodyFrom == "segmentation")
        #expect(info.fingerprint == c.fingerprint)
        #expect(try LadonWeightsFormat.fingerprint(of: file) == c.fingerprint)
        let classes = try info.classLists()
        #expect(classes["imagenet"]?.count == 1000 && classes["coco"]?.count == 91 && classes["voc"]?.count == 21)
        #expect(classes["coco"]?[1] == "person")
        #expect(file.metadata["format"] == "ladon-swift-weights" && file.metadata["format_version"] == "1")
        #expect(file.metadata["source.detection.file"] == "det.pt")
        #expect(file.metadata["source.segmentation.sha256"]?.count == 64)
        #expect(file.names.count == c.tensors.count)
        // The safetensors specification wants the tensors packed back to back, starting 8-byte aligned.
        let ranges = c.tensors.map { file.entries[$0.name]!.dataRange }
        #expect(ranges.first?.lowerBound == 0)
        #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        #expect((data.count - ranges.last!.upperBound) % 8 == 0)
        // Writing to disk gives the same bytes.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-convert-\(UUID().uuidString).safetensors").path
        try LadonWeightsFormat.write(c, sources: sources, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == data)
        #expect(try file.integerTensor("encoder.entropy_bottleneck._offset").shape == [2])
        expectClose(try file.tensor("classification_head.fc.bias"), try files[.classification]!.floatTensor("fc.bias"), rtol: 0, atol: 0)
        // A file that is not a Ladon weights file is refused.
        #expect(throws: LadonError.self) { try LadonModelFile(file: Fixtures.safetensors("checkpoints/torch_various_expected.safetensors")) }
    }

    @Test func shippedConfigIsTheBuiltInDefault() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shipped = try LadonModelConfig.load(path: root.appendingPathComponent("Configs/ladon-resnet50.json").path)
        #expect(shipped == .resnet50)
        #expect(try LadonModelConfig.decode(json: Data(LadonModelConfig.resnet50.jsonString().utf8)) == .resnet50)
        var bad = LadonModelConfig.resnet50
        bad.body.name = "resnext50"
        #expect(throws: LadonError.self) { try bad.validate() }
        bad = .resnet50
        bad.encoderChannels = [3, 96, 48, 32]
        #expect(throws: LadonError.self) { try bad.validate() }
    }

    @Test func sha256OfFileMatchesPython() throws {
        // hashlib.sha256(open('torch_legacy.pt','rb').read()) is checked against the in-memory digest of the same bytes.
        let path = Fixtures.url("checkpoints/torch_legacy.pt").path
        #expect(try LadonWeightsFormat.sha256(ofFile: path) == SHA256.hash(Fixtures.bytes("checkpoints/torch_legacy.pt")).hexString)
    }
}
