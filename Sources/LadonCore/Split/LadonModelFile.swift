// The one loader of Ladon weights files: opens the file and checks format, version, config and kind, once.
import Foundation

/// An opened and checked Ladon weights file (docs/weights-format.md): a whole model from `ladon convert`, or the
/// device half alone from `ladon split`. ``DeviceHalf``, ``ServerHalf`` and ``LadonModel`` all load through it,
/// so every loader applies the same checks and reports them the same way.
public struct LadonModelFile: Sendable {
    /// What a weights file holds.
    public enum Kind: String, Sendable {
        /// Every tensor: encoder, entropy bottleneck, decoder, body and heads (`ladon convert`).
        case full
        /// Encoder and entropy-bottleneck tables only (`ladon split --device`): what a device needs.
        case device
    }

    public let file: SafeTensorsFile
    public let config: LadonModelConfig
    public let kind: Kind
    /// The `fingerprint` metadata (hex SHA-256 of the whole model's tensors), if present. A device file carries
    /// the fingerprint of the model it was split from, so its packets match that model's server.
    public let fingerprint: String?

    /// Opens `path` (memory-mapped) and checks it.
    public init(path: String, config: LadonModelConfig? = nil) throws(LadonError) {
        try self.init(file: try SafeTensorsFile(path: path), config: config)
    }

    /// Checks an opened file. A file without the `format` marker is accepted only with an explicit config (a bare
    /// safetensors file of the documented names); one with a different marker or version is refused.
    public init(file: SafeTensorsFile, config explicitConfig: LadonModelConfig? = nil) throws(LadonError) {
        let m = file.metadata
        switch m["format"] {
        case LadonWeightsFormat.format?:
            guard m["format_version"] == nil || m["format_version"] == LadonWeightsFormat.version else {
                throw .weights(file: file.source, .unsupportedFormatVersion(found: m["format_version"]!, supported: LadonWeightsFormat.version))
            }
        case nil where explicitConfig != nil:
            break
        case let other:
            throw .weights(file: file.source, .notLadonFile(format: other))
        }
        if let c = explicitConfig {
            try c.validate()
            config = c
        } else {
            config = try LadonWeightsFormat.config(of: file)
        }
        guard let kind = Kind(rawValue: m["kind"] ?? Kind.full.rawValue) else {
            throw .weights(file: file.source, .unknownKind(m["kind"]!))
        }
        if let fp = m["fingerprint"] {
            guard fp.count == 64, fp.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                throw .weights(file: file.source, .malformedFingerprint(String(fp.prefix(80))))
            }
        }
        self.file = file
        self.kind = kind
        self.fingerprint = m["fingerprint"]
    }

    /// The 16-byte model id carried in packets: the first half of the fingerprint, or zeros without one.
    public var modelID: [UInt8] { Self.modelID(fingerprint: fingerprint) }

    /// The first 16 bytes of a hex fingerprint, or 16 zeros when there is none.
    public static func modelID(fingerprint: String?) -> [UInt8] {
        guard let hex = fingerprint.map({ Array($0.utf8) }), hex.count >= 32 else { return [UInt8](repeating: 0, count: 16) }
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return 0
            }
        }
        return (0..<16).map { nibble(hex[2 * $0]) << 4 | nibble(hex[2 * $0 + 1]) }
    }

    /// Which checkpoint the shared body came from (`shared_body_from` metadata), if recorded.
    public var sharedBodyFrom: String? { file.metadata["shared_body_from"] }

    /// The label lists stored in the file (`classes.<key>` metadata), by key (`imagenet`, `coco`, `voc`).
    public func classLists() throws(LadonError) -> [String: [String]] { try LadonWeightsFormat.classLists(of: file) }

    /// The root scope for building layers.
    var root: WeightScope { WeightScope(file: file) }

    /// The tensors a device file keeps: the encoder and the entropy bottleneck (weights and tables).
    public static let devicePrefixes = ["encoder.encoder.", "encoder.entropy_bottleneck."]

    /// The device half of this file as a safetensors image: encoder, entropy-bottleneck tables, config,
    /// class-free metadata and the whole model's fingerprint (`ladon split --device`).
    public func deviceFile() throws(LadonError) -> Data {
        var writer = SafeTensorsWriter()
        for key in ["format", "format_version", "architecture", "config", "fingerprint"] {
            if let v = file.metadata[key] { writer.metadata[key] = v }
        }
        writer.metadata["format"] = LadonWeightsFormat.format
        writer.metadata["format_version"] = LadonWeightsFormat.version
        writer.metadata["config"] = config.jsonString()
        writer.metadata["kind"] = Kind.device.rawValue
        var kept = 0
        for name in file.names where Self.devicePrefixes.contains(where: name.hasPrefix) {
            let e = try file.entry(name)
            writer.add(name, dtype: e.dtype, shape: e.shape, bytes: try file.rawBytes(name))
            kept += 1
        }
        guard kept > 0 else { throw .weights(file: file.source, .noEncoderTensors) }
        return writer.serialized()
    }
}

/// The SC2 "encoder size": what the device half's tensors take, counted as sc2bench's `analyze_model_size` counts a
/// state dict (elements × dtype size, buffers and entropy tables included).
public struct EncoderSize: Codable, Sendable, Equatable {
    /// The encoder's convolutions and GDN layers (`encoder.encoder.*`).
    public var encoderBytes: Int
    /// Of ``encoderBytes``, the parameters only: convolution weights and biases, GDN beta and gamma (not GDN's
    /// reparametrisation buffers).
    public var parameterBytes: Int
    /// The entropy bottleneck: density parameters, quantiles and CDF tables (`encoder.entropy_bottleneck.*`).
    public var entropyBottleneckBytes: Int
    public var totalBytes: Int { encoderBytes + entropyBottleneckBytes }
    public var totalBits: Int { 8 * totalBytes }

    enum CodingKeys: String, CodingKey { case encoderBytes, parameterBytes, entropyBottleneckBytes, totalBytes, totalBits }

    public init(encoderBytes: Int, parameterBytes: Int, entropyBottleneckBytes: Int) {
        self.encoderBytes = encoderBytes
        self.parameterBytes = parameterBytes
        self.entropyBottleneckBytes = entropyBottleneckBytes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        encoderBytes = try c.decode(Int.self, forKey: .encoderBytes)
        parameterBytes = try c.decodeIfPresent(Int.self, forKey: .parameterBytes) ?? encoderBytes
        entropyBottleneckBytes = try c.decode(Int.self, forKey: .entropyBottleneckBytes)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(encoderBytes, forKey: .encoderBytes)
        try c.encode(parameterBytes, forKey: .parameterBytes)
        try c.encode(entropyBottleneckBytes, forKey: .entropyBottleneckBytes)
        try c.encode(totalBytes, forKey: .totalBytes)
        try c.encode(totalBits, forKey: .totalBits)
    }
}

extension LadonModelFile {
    /// The encoder size of this file's device half.
    public var encoderSize: EncoderSize {
        var sizes = [0, 0], parameters = 0
        for (name, e) in file.entries {
            for (k, prefix) in Self.devicePrefixes.enumerated() where name.hasPrefix(prefix) {
                sizes[k] += e.dataRange.count
            }
            if name.hasPrefix(Self.devicePrefixes[0]) && !name.contains("_reparam") { parameters += e.dataRange.count }
        }
        return EncoderSize(encoderBytes: sizes[0], parameterBytes: parameters, entropyBottleneckBytes: sizes[1])
    }
}
