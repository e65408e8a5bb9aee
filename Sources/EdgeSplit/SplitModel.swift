// The two halves of a Ladon model: what runs on the device and what runs on the edge server.
import Foundation
import LadonCore

/// 16 bytes identifying a model file: the first half of its `fingerprint` metadata (hex sha256), or zeros.
func modelID(fingerprint: String?) -> [UInt8] {
    guard let hex = fingerprint, hex.count >= 32 else { return [UInt8](repeating: 0, count: 16) }
    let chars = Array(hex.utf8)
    return (0..<16).map { i in
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return 0
            }
        }
        return nibble(chars[2 * i]) << 4 | nibble(chars[2 * i + 1])
    }
}

/// The device half: preprocessing, the encoder and the entropy coder. It reads only the encoder's tensors
/// from the (memory-mapped) model file, about 0.5 MB for ResNet-50 Ladon.
public struct DeviceHalf: Sendable {
    public let config: LadonModelConfig
    public let preprocessor: Preprocessor
    public let encoder: LadonEncoder
    public let entropyBottleneck: EntropyBottleneck
    public let modelID: [UInt8]

    /// Loads the device half from a converted model file.
    public init(path: String) throws(LadonError) {
        let file = try SafeTensorsFile(path: path)
        let config = try LadonWeightsFormat.config(of: file)
        let root = WeightScope(file: file)
        self.config = config
        self.preprocessor = try Preprocessor(config.preprocessing)
        self.encoder = try LadonEncoder(weights: root.scope("encoder.encoder"), channels: config.encoderChannels)
        self.entropyBottleneck = try EntropyBottleneck(weights: root.scope("encoder.entropy_bottleneck"))
        self.modelID = EdgeSplit.modelID(fingerprint: file.metadata["fingerprint"])
    }

    /// Preprocesses, encodes and entropy-codes one RGB image tensor `[1, 3, H, W]` in [0, 1].
    public func encode(_ image: Tensor) throws(LadonError) -> LatentPacket {
        let input = try preprocessor(image)
        let latent = encoder(input.tensor)
        let strings = try entropyBottleneck.compress(latent)
        return LatentPacket(modelID: modelID, originalHeight: input.originalHeight, originalWidth: input.originalWidth,
                            resizedHeight: input.resizedHeight, resizedWidth: input.resizedWidth,
                            paddedHeight: input.paddedHeight, paddedWidth: input.paddedWidth,
                            latentChannels: latent.c, latentHeight: latent.h, latentWidth: latent.w,
                            payload: strings[0])
    }
}

/// The server half: entropy decoding, the decoder, the shared body and the three heads.
public struct ServerHalf: Sendable {
    public let model: LadonModel
    public let modelID: [UInt8]

    public init(path: String) throws(LadonError) {
        self.init(model: try LadonModel(path: path))
    }

    public init(model: LadonModel) {
        self.model = model
        self.modelID = EdgeSplit.modelID(fingerprint: model.fingerprint)
    }

    /// Decodes a packet and runs every head. Refuses packets from another model or with impossible shapes.
    public func run(_ packet: LatentPacket) throws -> LadonResult {
        let zero = [UInt8](repeating: 0, count: 16)
        if packet.modelID != zero, modelID != zero, packet.modelID != modelID {
            throw PacketError.wrongModel(expected: modelID.hexString, actual: packet.modelID.hexString)
        }
        let config = model.config
        guard packet.latentChannels == config.bottleneckChannels else {
            throw PacketError.invalidField("latent has \(packet.latentChannels) channels, this model codes \(config.bottleneckChannels)")
        }
        // The latent size follows from the padded size: encoder = (P/4 − 1) per side.
        guard packet.paddedHeight % config.preprocessing.sizeDivisible == 0, packet.paddedWidth % config.preprocessing.sizeDivisible == 0,
              packet.paddedHeight > 0, packet.paddedWidth > 0,
              packet.latentHeight == packet.paddedHeight / 4 - 1, packet.latentWidth == packet.paddedWidth / 4 - 1,
              packet.paddedHeight <= 4 * config.preprocessing.maxSize, packet.paddedWidth <= 4 * config.preprocessing.maxSize,
              packet.resizedHeight <= packet.paddedHeight, packet.resizedWidth <= packet.paddedWidth,
              packet.resizedHeight > 0, packet.resizedWidth > 0, packet.originalHeight > 0, packet.originalWidth > 0 else {
            throw PacketError.invalidField("inconsistent geometry: padded \(packet.paddedWidth)x\(packet.paddedHeight), latent \(packet.latentWidth)x\(packet.latentHeight), resized \(packet.resizedWidth)x\(packet.resizedHeight)")
        }
        let geometry = ImageGeometry(originalHeight: packet.originalHeight, originalWidth: packet.originalWidth,
                                     resizedHeight: packet.resizedHeight, resizedWidth: packet.resizedWidth,
                                     paddedHeight: packet.paddedHeight, paddedWidth: packet.paddedWidth)
        return try model.serve(packet.payload, latentHeight: packet.latentHeight, latentWidth: packet.latentWidth,
                               geometry: geometry)
    }
}
