// The device half of a Ladon model: preprocessing, the encoder, quantisation and entropy coding.

/// What runs on the weak device: GeneralizedRCNNTransform preprocessing, the learned encoder and CompressAI's
/// entropy coder. It needs only the encoder's tensors (about 0.5 MB for ResNet-50 Ladon): load it from a whole
/// model file or from the device file that `ladon split --device` writes.
///
/// ```swift
/// let device = try DeviceHalf(path: "ladon-device.safetensors")
/// let encoded = try device.encode(rgb: pixels, width: w, height: h)   // 8-bit RGB, row-major
/// ```
public struct DeviceHalf: Sendable {
    public let config: LadonModelConfig
    public let preprocessor: Preprocessor
    public let encoder: LadonEncoder
    public let entropyBottleneck: EntropyBottleneck
    /// The whole model's fingerprint (a device file carries the one of the model it was split from).
    public let fingerprint: String?
    /// 16 bytes stamped into every packet so the server can refuse packets made by another model.
    public let modelID: [UInt8]

    /// Loads the device half from a whole model file or a device file.
    public init(path: String) throws(LadonError) {
        try self.init(modelFile: try LadonModelFile(path: path))
    }

    /// Builds the device half from an opened, checked weights file (either kind).
    public init(modelFile f: LadonModelFile) throws(LadonError) {
        config = f.config
        preprocessor = try Preprocessor(f.config.preprocessing)
        encoder = try LadonEncoder(weights: f.root.scope("encoder.encoder"), channels: f.config.encoderChannels)
        entropyBottleneck = try EntropyBottleneck(weights: f.root.scope("encoder.entropy_bottleneck"))
        guard entropyBottleneck.channels == f.config.bottleneckChannels else {
            throw .weights(file: f.file.source, .bottleneckChannelMismatch(tables: entropyBottleneck.channels, config: f.config.bottleneckChannels))
        }
        fingerprint = f.fingerprint
        modelID = f.modelID
    }

    /// Normalise, resize and pad an RGB image tensor `[1, 3, H, W]` in [0, 1].
    public func preprocess(_ image: Tensor) throws(LadonError) -> PreprocessedImage {
        try preprocessor(image)
    }

    /// Normalise, resize and pad 8-bit RGB pixels (row-major, 3 bytes per pixel): the same tensor as
    /// ``preprocess(_:)`` of `Tensor(rgb8:width:height:)`, without the full-size `Float` copy
    /// (``Preprocessor/callAsFunction(rgb8:width:height:)``).
    public func preprocess(rgb pixels: [UInt8], width: Int, height: Int) throws(LadonError) -> PreprocessedImage {
        try preprocessor(rgb8: pixels, width: width, height: height)
    }

    /// The encoder: padded input → latent `[1, C, H/4 − 1, W/4 − 1]` (before quantisation).
    public func encode(_ input: PreprocessedImage) -> Tensor {
        encoder(input.tensor)
    }

    /// Entropy-codes a latent (one sample) into CompressAI's byte string.
    public func compress(_ latent: Tensor) throws(LadonError) -> [UInt8] {
        let strings = try entropyBottleneck.compress(latent)
        guard strings.count == 1 else { throw .invalidInput(.batchSize(strings.count)) }
        return strings[0]
    }

    /// The whole device half on an RGB image tensor `[1, 3, H, W]` in [0, 1], timing each stage into `stopwatch`.
    public func encode(_ image: Tensor, stopwatch: inout Stopwatch) throws(LadonError) -> EncodedImage {
        let input = try stopwatch.time("preprocess") { () throws(LadonError) in try preprocess(image) }
        return try encode(preprocessed: input, stopwatch: &stopwatch)
    }

    /// Encoder and entropy coding of a preprocessed image, timed into `stopwatch`.
    private func encode(preprocessed input: PreprocessedImage, stopwatch: inout Stopwatch) throws(LadonError) -> EncodedImage {
        let latent = stopwatch.time("encoder") { encode(input) }
        let bytes = try stopwatch.time("compress") { () throws(LadonError) in try compress(latent) }
        return EncodedImage(modelID: modelID, geometry: ImageGeometry(input), latentChannels: latent.c,
                            latentHeight: latent.h, latentWidth: latent.w, bytes: bytes)
    }

    /// The whole device half on an RGB image tensor `[1, 3, H, W]` in [0, 1].
    public func encode(_ image: Tensor) throws(LadonError) -> EncodedImage {
        var stopwatch = Stopwatch()
        return try encode(image, stopwatch: &stopwatch)
    }

    /// The whole device half on 8-bit RGB pixels (row-major, 3 bytes per pixel, no padding between rows), as a
    /// camera or an image decoder delivers them, timing each stage into `stopwatch`. Values become `v / 255`,
    /// exactly torchvision's `to_tensor`; the same result as ``encode(_:stopwatch:)`` on that tensor, without making it.
    public func encode(rgb pixels: [UInt8], width: Int, height: Int,
                       stopwatch: inout Stopwatch) throws(LadonError) -> EncodedImage {
        let input = try stopwatch.time("preprocess") { () throws(LadonError) in
            try preprocess(rgb: pixels, width: width, height: height)
        }
        return try encode(preprocessed: input, stopwatch: &stopwatch)
    }

    /// ``encode(rgb:width:height:stopwatch:)`` without the timings.
    public func encode(rgb pixels: [UInt8], width: Int, height: Int) throws(LadonError) -> EncodedImage {
        var stopwatch = Stopwatch()
        return try encode(rgb: pixels, width: width, height: height, stopwatch: &stopwatch)
    }
}
