// Result folders: resuming after an interruption, refusing another run's folder, shards and datasets.
import Foundation
import LadonCore
import LadonTestSupport
import Testing
@testable import LadonEval

@Suite struct RecordStoreTests {
    static func run(limit: Int? = nil, shard: Shard = .whole, fingerprint: String = "f1") -> EvalRun {
        EvalRun(task: .imagenet,
                model: .init(path: "m", fingerprint: fingerprint, beta: "1.28",
                             encoderSize: EncoderSize(encoderBytes: 100, parameterBytes: 90, entropyBottleneckBytes: 10)),
                dataset: .init(root: "/data", samples: 10), limit: limit, shard: shard, preprocessing: "test")
    }

    static func record(_ i: Int) -> SampleRecord {
        var r = SampleRecord(index: i, id: "img\(i)")
        r.bytes = 100 + i
        r.height = 4; r.width = 4; r.latentHeight = 1; r.latentWidth = 1
        r.label = i % 3
        r.top5 = [i % 3, 0, 1, 2, 4]
        return r
    }

    @Test func resumesAfterAnInterruptedWriteAndSkipsDoneSamples() throws {
        let dir = Scratch.path("eval-out")
        let run = Self.run()
        do {
            let store = try RecordStore(directory: dir, run: run)
            for i in [0, 1, 2] { try store.append(Self.record(i)) }
        }
        // An interrupted append leaves half a line.
        let recordsPath = (dir as NSString).appendingPathComponent(RecordStore.recordsFile)
        let h = try #require(FileHandle(forWritingAtPath: recordsPath))
        try h.seekToEnd()
        try h.write(contentsOf: Data(#"{"index":3,"id":"im"#.utf8))
        try h.close()

        let store = try RecordStore(directory: dir, run: run)
        #expect(store.existing.map(\.index) == [0, 1, 2])
        let evaluated = Counter()
        let all = try EvalRunner.run(indices: run.indices, jobs: 3, store: store) { i in
            evaluated.add(i)
            return Self.record(i)
        }
        #expect(all.map(\.index) == Array(0..<10))
        #expect(evaluated.values.sorted() == Array(3..<10))
        let (loadedRun, loaded) = try RecordStore.load(dir)
        #expect(loadedRun == run && Set(loaded.map(\.index)) == Set(0..<10) && loaded.count == 10)
    }

    @Test func refusesAFolderOfAnotherRunAndDamagedRecords() throws {
        let dir = Scratch.path("eval-out")
        _ = try RecordStore(directory: dir, run: Self.run())
        #expect(throws: EvalError.self) { try RecordStore(directory: dir, run: Self.run(fingerprint: "other")) }
        #expect(throws: EvalError.self) { try RecordStore(directory: dir, run: Self.run(limit: 5)) }
        let recordsPath = (dir as NSString).appendingPathComponent(RecordStore.recordsFile)
        try Data("{\"index\":0,\"id\":\"a\"}\nnot json\n{\"index\":1,\"id\":\"b\"}\n".utf8).write(to: URL(fileURLWithPath: recordsPath))
        #expect(throws: EvalError.self) { try RecordStore.load(dir) }
    }

    @Test func shardsPartitionTheSelection() throws {
        let run = Self.run(limit: 7)
        let shards = (0..<3).map { Self.run(limit: 7, shard: Shard(index: $0, count: 3)).indices }
        #expect(shards.flatMap { $0 }.sorted() == run.indices && run.indices == Array(0..<7))
        #expect(shards[1] == [1, 4])
        for bad in ["3/3", "-1/2", "1", "a/b", "0/0", "1/2/3"] { #expect(throws: EvalError.self) { try Shard(parsing: bad) } }
        #expect(try Shard(parsing: "2/5") == Shard(index: 2, count: 5))
        #expect(Self.run(shard: Shard(index: 1, count: 2)).conflicts(with: Self.run(), ignoringShard: true) == nil)
    }

    @Test func imageFolderOrderIsTorchvisions() throws {
        let root = try #require(Bundle.module.url(forResource: "Fixtures/imagefolder", withExtension: nil)).path
        let d = try ImageFolderDataset(root: root)
        #expect(d.classes == ["n01440764", "n02102040", "n02979186"])
        let names = d.samples.map { String($0.path.dropFirst(root.count + 1)) }
        #expect(names == ["n01440764/a.JPEG", "n01440764/b.jpg", "n02102040/c.png", "n02102040/sub/d.jpeg", "n02979186/e.JPEG"])
        #expect(d.samples.map(\.label) == [0, 0, 1, 1, 2])
        #expect(codePointLess("B", "a") && codePointLess("Z", "_") && !codePointLess("b", "B"))
        #expect(throws: EvalError.self) { try ImageFolderDataset(root: Scratch.path("missing")) }
    }

    @Test func vocListsTheSplitAndNamesAMissingOne() throws {
        let root = try #require(Bundle.module.url(forResource: "Fixtures/vocdevkit/VOC2012", withExtension: nil)).path
        let d = try VOCSegmentationDataset(root: root)
        #expect(d.ids == ["2007_000000", "2007_000001", "2007_000002"])
        #expect(FileManager.default.fileExists(atPath: d.imagePath(d.ids[0])) && FileManager.default.fileExists(atPath: d.maskPath(d.ids[2])))
        #expect(throws: EvalError.self) { try VOCSegmentationDataset(root: root, split: "train") }
    }

    @Test func progressLineShowsCountRateAndETA() {
        let line = ProgressBar.line(label: "imagenet", done: 50, total: 200, newSinceStart: 50, elapsed: 10)
        #expect(line.contains("50/200") && line.contains("5.0 img/s") && line.contains("ETA 30s"))
        #expect(ProgressBar.duration(3725) == "1h02m" && ProgressBar.duration(.nan) == "--")
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Int] = []
    func add(_ v: Int) { lock.lock(); values.append(v); lock.unlock() }
}
