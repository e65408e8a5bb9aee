// What the device half produces for one image and the server half consumes.

/// One image after the device half: CompressAI's entropy-coded latent plus what the server needs to decode it
/// and map results back to the image (geometry, latent shape, the model's id). `EdgeSplit.LatentPacket` is its
/// wire form.
public struct EncodedImage: Sendable, Equatable {
    /// The first 16 bytes of the model fingerprint (``LadonModelFile/modelID``), or zeros when unknown.
    public var modelID: [UInt8]
    /// Original, resized and padded sizes (``Preprocessor/geometry(height:width:)`` of the original size).
    public var geometry: ImageGeometry
    public var latentChannels: Int, latentHeight: Int, latentWidth: Int
    /// Exactly CompressAI's `EntropyBottleneck.compress` string for the latent.
    public var bytes: [UInt8]

    public init(modelID: [UInt8], geometry: ImageGeometry, latentChannels: Int, latentHeight: Int, latentWidth: Int,
                bytes: [UInt8]) {
        self.modelID = modelID
        self.geometry = geometry
        self.latentChannels = latentChannels
        self.latentHeight = latentHeight
        self.latentWidth = latentWidth
        self.bytes = bytes
    }
}
