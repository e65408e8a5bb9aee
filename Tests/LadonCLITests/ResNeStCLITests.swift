// `ladon convert --backbone resnest269e` on ResNeSt checkpoints in the release layout, then `ladon infer` on the result.
import Foundation
import Testing

@Suite(.serialized) struct ResNeStCLITests {
    static let checkpoints = "Tests/LadonCheckpointTests/Fixtures/checkpoints/"

    @Test func convertsTheResNeStReleaseFilesByName() throws {
        let release = LadonCLI.temporary("resnest-release")
        let names = [("ilsvrc2012", "ladon_resnest_tiny_cls.pt", "ilsvrc2012-splittable_resnest269e-fp-beta5.12_from_resnest269e.pt"),
                     ("coco2017", "ladon_resnest_tiny_det.pt", "coco2017-faster_rcnn_splittable_resnest269e-fp-beta5.12_fpn.pt"),
                     ("pascal_voc2012", "ladon_resnest_tiny_seg.pt", "pascal_voc2012-deeplabv3_splittable_resnest269e-fp-beta5.12_two_stages.pt")]
        for (task, fixture, name) in names {
            let folder = "\(release)/resource/ckpt/\(task)/ladon"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: LadonCLI.fixture(Self.checkpoints + fixture), toPath: "\(folder)/\(name)")
        }
        let out = LadonCLI.temporary("resnest.safetensors")
        let config = LadonCLI.fixture(Self.checkpoints + "ladon_resnest_tiny_config.json")
        let c = try LadonCLI.run(["convert", "--release", release, "--beta", "5.12", "--backbone", "resnest269e", "--json",
                                  "--config", config, "--output", out])
        #expect(c.status == 0, "\(c.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(c.stdout.utf8)) as? [String: Any])
        #expect(summary["variant"] as? String == "resnest269e" && summary["beta"] as? String == "5.12")
        #expect((summary["warnings"] as? [String])?.isEmpty == true)
        let r = try LadonCLI.run(["infer", "--json", "--model", out, LadonCLI.fixture(LadonCLITests.image)])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"classification\""))
        // The classification file alone: its empty entropy tables are rebuilt, and the warning says so.
        let alone = try LadonCLI.run(["convert", "--classification", LadonCLI.fixture(Self.checkpoints + "ladon_resnest_tiny_cls.pt"),
                                      "--config", config, "--output", LadonCLI.temporary("resnest-cls.safetensors")])
        #expect(alone.status == 0, "\(alone.stderr)")
        #expect(alone.stdout.contains("rebuilt them from the entropy model"), "\(alone.stdout)")
    }

    @Test func theOtherBackboneIsNamed() throws {
        // ResNeSt files under the (full-size) ResNet-50 config, and ResNet-50 files under the ResNeSt config.
        let resnest = try LadonCLI.run(["convert", "--classification", LadonCLI.fixture(Self.checkpoints + "ladon_resnest_tiny_cls.pt"),
                                        "--output", LadonCLI.temporary("x.safetensors")])
        #expect(resnest.status != 0 && resnest.stderr.contains("bottleneck has 2 channels"), "\(resnest.stderr)")
        var config = try String(contentsOfFile: LadonCLI.fixture(Self.checkpoints + "ladon_resnest_tiny_config.json"), encoding: .utf8)
        config = config.replacingOccurrences(of: "\"resnest269e\"", with: "\"resnet50\"")
        let path = LadonCLI.temporary("tiny-resnet50-body.json")
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let split = try LadonCLI.run(["convert", "--segmentation", LadonCLI.fixture(Self.checkpoints + "ladon_resnest_tiny_seg.pt"),
                                      "--config", path, "--output", LadonCLI.temporary("y.safetensors")])
        #expect(split.status != 0 && split.stderr.contains("--backbone resnest269e"), "\(split.stderr)")
        let unknown = try LadonCLI.run(["convert", "--backbone", "resnet101", "--classification", "x.pt"])
        #expect(unknown.status != 0 && unknown.stderr.contains("resnet50 or resnest269e"), "\(unknown.stderr)")
    }
}
