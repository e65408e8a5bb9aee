// What an evaluation run is (task, model, dataset, selection), stored as `run.json` beside its records.
import Foundation
import LadonCore

/// The identity and settings of one `ladon eval` run. Two runs with equal ``RunIdentity`` can share records
/// (resuming) or be merged (shards).
public struct EvalRun: Codable, Sendable, Equatable {
    public var task: EvalTask
    /// `ladon` version that wrote the run.
    public var version: String
    public var model: ModelInfo
    public var dataset: DatasetInfo
    /// `--limit`: only the first `limit` samples of the dataset order, or nil for all.
    public var limit: Int?
    public var shard: Shard
    /// The preprocessing applied before the model, in words (for the reader of the results).
    public var preprocessing: String

    public struct ModelInfo: Codable, Sendable, Equatable {
        public var path: String
        public var fingerprint: String?
        public var beta: String?
        public var encoderSize: EncoderSize
        public init(path: String, fingerprint: String?, beta: String?, encoderSize: EncoderSize) {
            self.path = path
            self.fingerprint = fingerprint
            self.beta = beta
            self.encoderSize = encoderSize
        }
    }

    public struct DatasetInfo: Codable, Sendable, Equatable {
        /// The images root (ImageNet val folder, COCO images folder, VOC2012 folder).
        public var root: String
        /// COCO: the instances JSON.
        public var annotations: String?
        /// VOC: the image set (`val`).
        public var split: String?
        /// Samples in the whole dataset.
        public var samples: Int
        public init(root: String, annotations: String? = nil, split: String? = nil, samples: Int) {
            self.root = root
            self.annotations = annotations
            self.split = split
            self.samples = samples
        }
    }

    public init(task: EvalTask, version: String = LadonVersion.current, model: ModelInfo, dataset: DatasetInfo,
                limit: Int?, shard: Shard, preprocessing: String) {
        self.task = task
        self.version = version
        self.model = model
        self.dataset = dataset
        self.limit = limit
        self.shard = shard
        self.preprocessing = preprocessing
    }

    /// Samples after `--limit`, before sharding.
    public var selectedCount: Int { min(limit ?? dataset.samples, dataset.samples) }

    /// Dataset indices this run evaluates.
    public var indices: [Int] { shard.indices(of: selectedCount) }

    /// What must agree for records to belong together: task, model fingerprint, dataset and selection.
    public func conflicts(with other: EvalRun, ignoringShard: Bool) -> String? {
        if task != other.task { return "task \(task.rawValue) vs \(other.task.rawValue)" }
        if model.fingerprint != other.model.fingerprint {
            return "model fingerprint \(model.fingerprint ?? "none") vs \(other.model.fingerprint ?? "none")"
        }
        if dataset.samples != other.dataset.samples || dataset.split != other.dataset.split {
            return "dataset (\(dataset.samples) samples, split \(dataset.split ?? "-")) vs (\(other.dataset.samples), \(other.dataset.split ?? "-"))"
        }
        if selectedCount != other.selectedCount { return "--limit \(selectedCount) vs \(other.selectedCount) samples" }
        if !ignoringShard && shard != other.shard { return "--shard \(shard) vs \(other.shard)" }
        return nil
    }
}

/// `--shard I/N`: sample `k` of the selection belongs to shard `k mod N` (interleaved, so shards stay balanced
/// when image sizes drift along the dataset order).
public struct Shard: Codable, Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public static let whole = Shard(index: 0, count: 1)

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// Parses `I/N` with `0 ≤ I < N`.
    public init(parsing text: String) throws(EvalError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (0..<n).contains(i) else {
            throw .badArgument("--shard must be I/N with 0 ≤ I < N (e.g. 0/4 … 3/4), got \(text)")
        }
        self.init(index: i, count: n)
    }

    public func indices(of total: Int) -> [Int] { Array(stride(from: index, to: total, by: count)) }

    public var description: String { "\(index)/\(count)" }
}
