// `ladon eval`, `ladon eval merge` and `ladon report` end to end on the tiny model and the committed mini datasets
// (Tests/LadonEvalTests/Fixtures: an ImageFolder, a VOCdevkit and a COCO folder).
import Foundation
import LadonTestSupport
import Testing

@Suite(.serialized) struct EvalCommandTests {
    static let model = LadonCLI.fixture("Tests/LadonCoreTests/Fixtures/model/tiny_model.safetensors")
    static let fixtures = "Tests/LadonEvalTests/Fixtures/"
    static let imagenet = LadonCLI.fixture(fixtures + "imagefolder")
    static let voc = LadonCLI.fixture(fixtures + "vocdevkit/VOC2012")

    static func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static func metrics(_ o: [String: Any]) -> [String: Double] { o["metrics"] as? [String: Double] ?? [:] }

    @Test func imagenetShardsMergeToTheWholeRunAndResume() throws {
        let whole = LadonCLI.temporary("whole")
        let r = try LadonCLI.run(["eval", "imagenet", "--root", Self.imagenet, "--model", Self.model, "--json",
                                  "--output", whole, "--jobs", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try Self.json(r.stdout)
        #expect(o["task"] as? String == "imagenet" && o["images"] as? Int == 5)
        let m = Self.metrics(o)
        #expect(Set(m.keys) == ["top1", "top5"] && (0...100).contains(m["top1"] ?? -1) && m["top1"]! <= m["top5"]!)
        let data = try #require(o["dataSize"] as? [String: Any])
        #expect(data["samples"] as? Int == 5 && (data["sc2benchMeanKB"] as? Double ?? 0) > (data["meanKB"] as? Double ?? 0))
        #expect(((o["encoderSize"] as? [String: Any])?["totalBits"] as? Int ?? 0) > 0)
        let records = try String(contentsOfFile: whole + "/records.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(records.count == 5)
        #expect(FileManager.default.fileExists(atPath: whole + "/summary.json"))

        // Running again resumes: nothing is evaluated twice and the figures are the same.
        let again = try LadonCLI.run(["eval", "imagenet", "--root", Self.imagenet, "--model", Self.model, "--json", "--output", whole])
        #expect(again.status == 0 && again.stderr.contains("Resuming: 5 samples"))
        #expect(Self.metrics(try Self.json(again.stdout)) == m)
        #expect(try String(contentsOfFile: whole + "/records.jsonl", encoding: .utf8).split(separator: "\n").count == 5)

        // Two shards merged give exactly the whole run's figures.
        var shardDirs: [String] = []
        for i in 0..<2 {
            let dir = LadonCLI.temporary("shard\(i)")
            shardDirs.append(dir)
            let s = try LadonCLI.run(["eval", "imagenet", "--root", Self.imagenet, "--model", Self.model, "--json",
                                      "--output", dir, "--shard", "\(i)/2"])
            #expect(s.status == 0, "\(s.stderr)")
            #expect(try Self.json(s.stdout)["images"] as? Int == (i == 0 ? 3 : 2))
        }
        let partial = try LadonCLI.run(["eval", "merge", shardDirs[0], "--json"])
        #expect(try Self.json(partial.stdout)["missing"] as? Int == 2)
        let merged = try LadonCLI.run(["eval", "merge", "--json"] + shardDirs)
        #expect(merged.status == 0, "\(merged.stderr)")
        let mo = try Self.json(merged.stdout)
        #expect(Self.metrics(mo) == m && mo["missing"] as? Int == 0)
        #expect((mo["dataSize"] as? [String: Any])?["meanKB"] as? Double == data["meanKB"] as? Double)

        // A folder of another run is refused, and so is a different limit in the same folder.
        let other = try LadonCLI.run(["eval", "imagenet", "--root", Self.imagenet, "--model", Self.model, "--output", whole, "--limit", "2"])
        #expect(other.status == 2 && other.stderr.contains("another run"))
        let mixed = try LadonCLI.run(["eval", "merge", whole, LadonCLI.temporary("nothing")])
        #expect(mixed.status == 2 && mixed.stderr.contains("run.json"))
    }

    @Test func vocAndCOCOReportTheirMetricsAndFailuresAreRecorded() throws {
        let v = try LadonCLI.run(["eval", "voc", "--root", Self.voc, "--model", Self.model, "--json", "--limit", "2"])
        #expect(v.status == 0, "\(v.stderr)")
        let vo = try Self.json(v.stdout)
        #expect(vo["images"] as? Int == 2 && Set(Self.metrics(vo).keys) == ["mIoU", "pixelAccuracy"])
        #expect((0...100).contains(Self.metrics(vo)["mIoU"] ?? -1))

        let results = LadonCLI.temporary("results.json")
        let c = try LadonCLI.run(["eval", "coco", "--images", LadonCLI.fixture(Self.fixtures + "coco/images"),
                                  "--annotations", LadonCLI.fixture(Self.fixtures + "coco/instances.json"),
                                  "--model", Self.model, "--json", "--results-json", results])
        #expect(c.status == 0, "\(c.stderr)")
        let co = try Self.json(c.stdout)
        #expect(Set(Self.metrics(co).keys) == ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"])
        let list = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: results))) as? [[String: Any]])
        #expect(!list.isEmpty && list.allSatisfy { ($0["bbox"] as? [Double])?.count == 4 && $0["category_id"] is Int })

        // A broken image is a failed sample: recorded with its error, left out, exit status 1.
        let root = LadonCLI.temporary("imagefolder")
        try FileManager.default.copyItem(atPath: Self.imagenet, toPath: root)
        try Data("not a jpeg".utf8).write(to: URL(fileURLWithPath: root + "/n01440764/a.JPEG"))
        let out = LadonCLI.temporary("broken")
        let b = try LadonCLI.run(["eval", "imagenet", "--root", root, "--model", Self.model, "--json", "--output", out])
        #expect(b.status == 1)
        let bo = try Self.json(b.stdout)
        #expect(bo["images"] as? Int == 4 && bo["failed"] as? Int == 1)
        #expect(try String(contentsOfFile: out + "/records.jsonl", encoding: .utf8).contains("\"bad_image\""))

        let missing = try LadonCLI.run(["eval", "voc", "--root", LadonCLI.temporary("nowhere"), "--model", Self.model])
        #expect(missing.status == 2 && missing.stderr.contains("ImageSets/Segmentation/val.txt"))
    }

    @Test func reportTabulatesAndChartsSeveralResults() throws {
        var dirs: [String] = []
        for limit in [3, 5] {
            let dir = LadonCLI.temporary("run\(limit)")
            dirs.append(dir)
            let r = try LadonCLI.run(["eval", "imagenet", "--root", Self.imagenet, "--model", Self.model,
                                      "--output", dir, "--limit", "\(limit)"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let svg = LadonCLI.temporary("rate.svg")
        let r = try LadonCLI.run(["report", "--plot", svg, "--paper", "resnet50"] + dirs)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("### imagenet") && r.stdout.contains("| paper resnet50 | 1.28 |"))
        #expect(r.stdout.contains("run3 |") && r.stdout.contains("run5 |"))
        let chart = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(chart.hasPrefix("<?xml") || chart.hasPrefix("<svg"))
        #expect(chart.contains("ladon-swift (measured)") && chart.contains("paper, resnet50"))
        let bad = try LadonCLI.run(["report", LadonCLI.temporary("none")])
        #expect(bad.status == 2)
    }

    @Test func benchMeasuresStagesAndModelsLatencyAgainstRate() throws {
        let svg = LadonCLI.temporary("bench.svg")
        let r = try LadonCLI.run(["bench", "--json", "--runs", "2", "--warmup", "0", "--device-slowdown", "10",
                                  "--rates", "37.5kbps,1Mbps,50Mbps", "--plot", svg, "--model", Self.model,
                                  LadonCLI.fixture("Scripts/data/chelsea_small.png")])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try Self.json(r.stdout)
        #expect((o["stages"] as? [Any])?.count == 10)
        let latency = try #require(o["latency"] as? [[String: Any]])
        #expect(latency.count == 3)
        // Transfer time is 8 · bytes / rate, shown explicitly per scenario.
        for row in latency {
            let rate = try #require(row["bitsPerSecond"] as? Double)
            let split = try #require(row["split"] as? [String: Double])
            #expect(abs(split["transferMs"]! - 8000 * split["bytesSent"]! / rate) < 1e-6)
            #expect(abs(split["totalMs"]! - split["deviceMs"]! - split["transferMs"]! - split["serverMs"]! - split["rttMs"]!) < 1e-6)
            let local = try #require(row["local"] as? [String: Double])
            #expect(local["transferMs"] == 0 && local["bytesSent"] == 0)
        }
        let chart = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(chart.contains("<svg") && chart.contains("split computing"))
        let noImage = try LadonCLI.run(["bench", "--model", Self.model])
        #expect(noImage.status == 64)
        let badRate = try LadonCLI.run(["bench", "--rates", "5MB/s", "--model", Self.model, LadonCLI.fixture("Scripts/data/chelsea_small.png")])
        #expect(badRate.status == 64)
    }

    /// `--timing isolated` reruns each stage on its own: every stage has --runs samples per image, on the same bytes
    /// as whole passes produce.
    @Test func benchTimesEachStageOnItsOwnWhenIsolated() throws {
        let image = LadonCLI.fixture("Scripts/data/chelsea_small.png")
        func bench(_ timing: String) throws -> [String: Any] {
            let r = try LadonCLI.run(["bench", "--json", "--timing", timing, "--runs", "3", "--warmup", "1",
                                      "--model", Self.model, image, image])
            #expect(r.status == 0, "\(r.stderr)")
            return try Self.json(r.stdout)
        }
        let isolated = try bench("isolated"), pipeline = try bench("pipeline")
        #expect((isolated["settings"] as? [String: Any])?["timing"] as? String == "isolated")
        #expect((pipeline["settings"] as? [String: Any])?["timing"] as? String == "pipeline")
        let stages = try #require(isolated["stages"] as? [[String: Any]])
        #expect(stages.count == 10)
        for stage in stages { #expect(stage["samples"] as? Int == 6, "\(stage)") }
        #expect(isolated["bytes"] as? [String: Double] == pipeline["bytes"] as? [String: Double])
        let text = try LadonCLI.run(["bench", "--timing", "isolated", "--runs", "1", "--warmup", "0", "--model", Self.model, image])
        #expect(text.status == 0 && text.stdout.contains("timed runs of each stage on its own (warm caches)"))
        let bad = try LadonCLI.run(["bench", "--timing", "hot", "--model", Self.model, image])
        #expect(bad.status == 64 && bad.stderr.contains("--timing must be one of pipeline, isolated"))
        let badTask = try LadonCLI.run(["bench", "--task", "depth", "--model", Self.model, image])
        #expect(badTask.status == 64 && badTask.stderr.contains("--task must be one of all, classification, detection, segmentation"))
    }
}
