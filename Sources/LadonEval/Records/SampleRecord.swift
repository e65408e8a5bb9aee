// One evaluated sample as a JSON line under `--output`: enough to recompute every metric exactly (`ladon eval merge`).

/// The per-sample record of `ladon eval`. Fields are filled per task; absent ones are omitted from the JSON.
public struct SampleRecord: Codable, Sendable, Equatable {
    /// Position in the dataset order (before `--limit` and `--shard`).
    public var index: Int
    /// The sample's name: path relative to the ImageNet root, COCO `file_name`, or VOC image id.
    public var id: String
    /// Bytes of the entropy-coded string (the SC2 data size).
    public var bytes: Int?
    /// Original image size (before any evaluation preprocessing).
    public var height: Int?, width: Int?
    /// Latent height and width (sc2bench pickles them with the string).
    public var latentHeight: Int?, latentWidth: Int?

    /// ImageNet: the target class and the five best predicted classes, best first.
    public var label: Int?
    public var top5: [Int]?

    /// COCO: the image id and its detections as `[category_id, x, y, w, h, score]` (N/A categories dropped).
    public var imageID: Int?
    public var detections: [[Double]]?

    /// VOC: this image's confusion-matrix cells as `[target, prediction, count]`.
    public var confusion: [[Int64]]?

    /// Why the sample could not be evaluated (corrupt image, missing file); metrics leave it out.
    public var error: Failure?

    public struct Failure: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    public init(index: Int, id: String) {
        self.index = index
        self.id = id
    }
}
