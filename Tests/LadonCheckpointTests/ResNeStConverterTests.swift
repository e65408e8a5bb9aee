// LadonConverter on ResNeSt-269e per-task checkpoints saved by torch.save from the real sc2bench / timm modules
// (Scripts/make_resnest_fixtures.py), the converted model's body, and the full-size key layout.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore
@testable import LadonCheckpoint

@Suite struct ResNeStConverterTests {
    static func ckpt(_ name: String) throws -> TorchCheckpoint {
        try TorchCheckpoint(path: Fixtures.url("checkpoints/\(name)").path)
    }

    static func tinyConfig() throws -> LadonModelConfig {
        try LadonModelConfig.decode(json: Data(Fixtures.bytes("checkpoints/ladon_resnest_tiny_config.json")), source: "tiny config")
    }

    static func allThree() throws -> [CheckpointSlot: TorchCheckpoint] {
        [.classification: try ckpt("ladon_resnest_tiny_cls.pt"), .detection: try ckpt("ladon_resnest_tiny_det.pt"),
         .segmentation: try ckpt("ladon_resnest_tiny_seg.pt")]
    }

    static func error(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return "\(error)" }
    }

    @Test func convertsAllThreeWithTimmNames() throws {
        let converter = try LadonConverter(config: Self.tinyConfig())
        let c = try converter.convert(Self.allThree())
        let expected = try Fixtures.safetensors("checkpoints/ladon_resnest_tiny_expected.safetensors")
        #expect(c.sharedBodyFrom == .segmentation)
        #expect(Set(c.tensors.map(\.name)) == Set(expected.names.filter { !$0.hasPrefix("check.") }))
        for t in c.tensors {
            #expect(t.shape == (try expected.entry(t.name)).shape, "\(t.name)")
            #expect(t.bytes == (try expected.rawBytes(t.name)), "\(t.name)")
        }
        #expect(c.tensors.contains { $0.name == "shared_body.layer2.0.conv2.fc2.bias" })
        #expect(c.tensors.contains { $0.name == "shared_body.layer4.0.downsample.2.running_var" })
        // det's body was trained with FrozenBatchNorm2d: no num_batches_tracked there, and BN equal to cls.
        #expect(c.dropped[.detection]?.contains { $0.hasSuffix("num_batches_tracked") } != true)
        #expect(c.dropped[.classification]?.contains("layer2.0.conv2.bn0.num_batches_tracked") == true)
        for d in c.differences where d.kind == .runningStatistics {
            #expect(d.maxAbsDifference > 0 && d.maxAbsDifference < 0.06, "\(d.slot) \(d.group)")  // seg drifted
        }
        for d in c.differences where d.kind == .parameters { #expect(d.maxAbsDifference == 0, "\(d.slot) \(d.group)") }
        // cls was saved before update(): its empty tables cannot be compared, the kept ones come from seg.
        #expect(c.differences.contains { $0.slot == .classification && $0.kind == .entropyTables && !$0.incomparable.isEmpty })
        #expect(c.warnings.isEmpty, "\(c.warnings)")
    }

    @Test func emptyEntropyTablesAreTakenFromAnotherCheckpoint() throws {
        let converter = try LadonConverter(config: Self.tinyConfig())
        let files = try Self.allThree()
        // Body from cls (empty tables): the tables come from det, whose entropy model is the same, and a warning says so.
        let c = try converter.convert([.classification: files[.classification]!, .detection: files[.detection]!],
                                      sharedBodyFrom: .classification)
        let det = files[.detection]!
        for (name, key) in [("_offset", "_offset"), ("_quantized_cdf", "_quantized_cdf"), ("_cdf_length", "_cdf_length")] {
            let kept = try #require(c.tensors.first { $0.name == "encoder.entropy_bottleneck.\(name)" })
            let values = try det.int32Values("backbone.body.bottleneck_layer.entropy_bottleneck.\(key)")
            #expect(!values.isEmpty && kept.bytes == values.map(\.littleEndian).withUnsafeBytes { [UInt8]($0) }, "\(name)")
        }
        #expect(c.warnings.count == 1)
        #expect(c.warnings.first?.contains("took them from") == true && c.warnings.first?.contains("ladon_resnest_tiny_det.pt") == true)
        // cls alone: nothing to take them from, so they are rebuilt as CompressAI's update() builds them, which
        // here gives exactly the tables CompressAI stored in det (same entropy model); a warning says so.
        let alone = try converter.convert([.classification: files[.classification]!])
        for name in ["_offset", "_quantized_cdf", "_cdf_length"] {
            let rebuilt = try #require(alone.tensors.first { $0.name == "encoder.entropy_bottleneck.\(name)" })
            let stored = try #require(c.tensors.first { $0.name == rebuilt.name })
            #expect(rebuilt.shape == stored.shape && rebuilt.bytes == stored.bytes, "\(name)")
        }
        #expect(alone.warnings.count == 1 && alone.warnings[0].contains("rebuilt them from the entropy model"))
        let data = LadonWeightsFormat.serialize(alone, sources: [])
        #expect(try LadonModel(file: SafeTensorsFile(data: data, source: "cls only")).entropyBottleneck.channels == 2)
    }

    @Test func convertedModelRunsTheSegBody() throws {
        let c = try LadonConverter(config: Self.tinyConfig()).convert(Self.allThree())
        let data = LadonWeightsFormat.serialize(c, sources: [])
        let model = try LadonModel(file: SafeTensorsFile(data: data, source: "converted"))
        #expect(model.config.body.kind == .resnest269e)
        let expected = try Fixtures.safetensors("checkpoints/ladon_resnest_tiny_expected.safetensors")
        let features = model.features(try expected.tensor("check.latent_hat"))
        expectClose(features.decoder, try expected.tensor("check.decoder"), rtol: 1e-5, atol: 1e-6, "decoder")
        for (k, name) in ["layer2", "layer3", "layer4"].enumerated() {
            expectClose(features.layers[k], try expected.tensor("check.\(name)"), rtol: 1e-5, atol: 1e-6, name)
        }
    }

    @Test func bodyKindMismatchesNameTheBackbone() throws {
        let resnest = try LadonConverter(config: Self.tinyConfig())
        let plain = Self.error { _ = try resnest.convert([.classification: Self.ckpt("ladon_tiny_cls.pt")]) }
        #expect(plain?.contains("is a ResNet bottleneck block") == true && plain?.contains("--backbone resnet50") == true)
        var resnetConfig = try Self.tinyConfig()
        resnetConfig.body.name = "resnet50"
        let split = Self.error { _ = try LadonConverter(config: resnetConfig).convert([.segmentation: Self.ckpt("ladon_resnest_tiny_seg.pt")]) }
        #expect(split?.contains("split-attention block") == true && split?.contains("--backbone resnest269e") == true)
        // A full-size ResNet-50 config on a 2-channel file: the width is named.
        let width = Self.error { _ = try LadonConverter(config: .resnest269e).convert([.segmentation: Self.ckpt("ladon_resnest_tiny_seg.pt")]) }
        #expect(width?.contains("bottleneck has 2 channels") == true)
    }

    /// The Swift layout for the full-size ResNeSt-269e config equals the real per-task state dicts, mapped
    /// (names and shapes digested by the fixture script).
    @Test func fullSizeLayoutMatchesTheRealModules() throws {
        struct Keys: Decodable { var stateDictEntries: [String: Int]; var convertedTensors: Int; var bodyParameters: Int; var sha256: String }
        let keys = try JSONDecoder().decode(Keys.self, from: Data(Fixtures.bytes("checkpoints/ladon_resnest269e_keys.json")))
        #expect(keys.stateDictEntries == ["classification": 2392, "detection": 2073, "segmentation": 2442])
        let specs = LadonWeightLayout.specs(for: .resnest269e)
        #expect(specs.count == keys.convertedTensors)
        let lines = specs.map { "\($0.name) \($0.shape.map(String.init).joined(separator: ","))" }.sorted()
        #expect(SHA256.hash(Array(lines.joined(separator: "\n").utf8)).hexString == keys.sha256)
    }
}
