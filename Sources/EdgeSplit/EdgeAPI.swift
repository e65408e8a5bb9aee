// The HTTP API's JSON shapes, shared by the edge service and its clients (docs/openapi.yaml).
import Foundation
import LadonCore

/// The HTTP API between a device and the edge service (`ladon serve`); every route is in docs/openapi.yaml.
public enum EdgeAPI {
    /// `Content-Type` of a latent packet body.
    public static let packetContentType = "application/vnd.ladon.packet"
    /// Server half on one packet: 200 with an ``InferenceSummary``.
    public static let inferPath = "/v1/infer"
    /// Both halves on the server (full offloading): body = a JPEG or PNG.
    public static let inferImagePath = "/v1/infer-image"
    /// ``ModelDescription`` of the loaded model.
    public static let modelPath = "/v1/model"

    /// `host[:port]` as a URL or a `Host` field writes it: an IPv6 address in brackets.
    package static func authority(host: String, port: Int?) -> String {
        let name = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return port.map { "\(name):\($0)" } ?? name
    }
}

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
public struct APIErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        /// A stable, machine-readable code (docs/deployment.md lists them with their HTTP status).
        public var code: String
        /// What was wrong and what to do, for people.
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }
    public var error: Detail

    public init(code: String, message: String) { error = Detail(code: code, message: message) }
}

/// What `GET /v1/model` answers: enough for a device to check it holds the matching encoder.
public struct ModelDescription: Codable, Sendable, Equatable {
    /// Hex SHA-256 of the whole model's tensors (the `fingerprint` metadata), if the file has one.
    public var fingerprint: String?
    /// The 16-byte id packets carry, hex (the fingerprint's first half, or zeros).
    public var modelId: String
    public var architecture: String
    /// Heads present: `classification`, `detection`, `segmentation`.
    public var heads: [String]
    /// Class names per head's list (`imagenet`, `coco`, `voc`).
    public var classes: [String: [String]]
    /// The SC2 encoder size of the device half.
    public var encoderSize: EncoderSize
    public var config: LadonModelConfig

    public init(fingerprint: String?, modelId: String, architecture: String, heads: [String],
                classes: [String: [String]], encoderSize: EncoderSize, config: LadonModelConfig) {
        self.fingerprint = fingerprint
        self.modelId = modelId
        self.architecture = architecture
        self.heads = heads
        self.classes = classes
        self.encoderSize = encoderSize
        self.config = config
    }
}
