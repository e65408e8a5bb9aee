// The whole Ladon model: its device half and its server half, loaded from one file.

/// The Ladon model: a ``DeviceHalf`` (preprocessing, encoder, quantisation, entropy coding) and a ``ServerHalf``
/// (entropy decoding, decoder, body, heads), loaded from one weights file through one loader
/// (``LadonModelFile``). ``infer(_:)`` is literally the server half run on the device half's output.
///
/// ```swift
/// let model = try LadonModel(path: "ladon-resnet50-beta1.28.safetensors")
/// let result = try model.infer(imageTensor)          // [1, 3, H, W] RGB in [0, 1]
/// let encoded = try model.device.encode(imageTensor) // …or the halves on two machines
/// let same = try model.server.run(encoded)
/// ```
public struct LadonModel: Sendable {
    public let device: DeviceHalf
    public let server: ServerHalf

    /// Loads a converted model file; the config comes from the file's metadata unless given.
    public init(path: String, config: LadonModelConfig? = nil) throws(LadonError) {
        try self.init(modelFile: try LadonModelFile(path: path, config: config))
    }

    /// Builds the model from an opened weights file.
    public init(file: SafeTensorsFile, config: LadonModelConfig? = nil) throws(LadonError) {
        try self.init(modelFile: try LadonModelFile(file: file, config: config))
    }

    /// Builds both halves from one checked file.
    public init(modelFile: LadonModelFile) throws(LadonError) {
        device = try DeviceHalf(modelFile: modelFile)
        server = try ServerHalf(modelFile: modelFile)
    }

    public var config: LadonModelConfig { server.config }
    public var labels: ClassLabels { server.labels }
    /// The weights file's `fingerprint` metadata, if any.
    public var fingerprint: String? { server.fingerprint }
    public var entropyBottleneck: EntropyBottleneck { device.entropyBottleneck }
    public var classificationHead: ClassificationHead? { server.classificationHead }
    public var segmentationHead: SegmentationHead? { server.segmentationHead }
    package var detectionHead: DetectionHead? { server.detectionHead }

    // MARK: Stages (the halves' own, for stage-by-stage checks)

    public func preprocess(_ image: Tensor) throws(LadonError) -> PreprocessedImage { try device.preprocess(image) }
    public func encode(_ input: PreprocessedImage) -> Tensor { device.encode(input) }
    public func compress(_ latent: Tensor) throws(LadonError) -> [UInt8] { try device.compress(latent) }
    public func decompress(_ bytes: [UInt8], height: Int, width: Int) throws(LadonError) -> Tensor {
        try server.decompress(bytes, height: height, width: width)
    }
    public func features(_ latentHat: Tensor) -> SharedFeatures { server.features(latentHat) }
    public func classify(_ features: SharedFeatures) -> Tensor? { server.classify(features) }
    public func segment(_ features: SharedFeatures, paddedHeight: Int, paddedWidth: Int) -> SegmentationResult? {
        server.segment(features, paddedHeight: paddedHeight, paddedWidth: paddedWidth)
    }
    public func detect(_ features: SharedFeatures, geometry: ImageGeometry) throws(LadonError) -> [Detection] {
        try server.detect(features, geometry: geometry)
    }

    /// Runs the whole pipeline on one image: the server half on the device half's output, with the real
    /// bitstream in between. Timings list the device stages, then the server stages.
    public func infer(_ image: Tensor) throws(LadonError) -> LadonResult {
        try run { (stopwatch) throws(LadonError) in try device.encode(image, stopwatch: &stopwatch) }
    }

    /// ``infer(_:)`` on 8-bit RGB pixels (row-major, 3 bytes per pixel): the same result, preprocessed without a
    /// full-size `Float` copy (``DeviceHalf/encode(rgb:width:height:stopwatch:)``).
    public func infer(rgb pixels: [UInt8], width: Int, height: Int) throws(LadonError) -> LadonResult {
        try run { (stopwatch) throws(LadonError) in
            try device.encode(rgb: pixels, width: width, height: height, stopwatch: &stopwatch)
        }
    }

    /// The server half on what `encode` (a device-half entry, timing into the stopwatch) makes; the device
    /// stages' timings first.
    private func run(_ encode: (inout Stopwatch) throws(LadonError) -> EncodedImage) throws(LadonError) -> LadonResult {
        var stopwatch = Stopwatch()
        let encoded = try encode(&stopwatch)
        var result = try server.run(encoded)
        result.timings.insert(contentsOf: stopwatch.laps, at: 0)
        return result
    }
}

