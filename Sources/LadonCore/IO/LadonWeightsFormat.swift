// The Ladon weights file: a safetensors file with documented names and `__metadata__` (docs/weights-format.md).
import Foundation

/// Metadata keys and helpers of the `ladon-swift-weights` file format.
public enum LadonWeightsFormat {
    /// Value of the `format` metadata key.
    public static let format = "ladon-swift-weights"
    /// Value of the `format_version` metadata key.
    public static let version = "1"

    /// SHA-256 of a file's bytes (memory-mapped), lower-case hex.
    public static func sha256(ofFile path: String) throws(LadonError) -> String {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw .weights(file: path, .unreadable(reason: error.localizedDescription))
        }
        return data.withUnsafeBytes { SHA256.hash($0) }.hexString
    }

    /// The model config stored in a weights file's `config` metadata.
    public static func config(of file: SafeTensorsFile) throws(LadonError) -> LadonModelConfig {
        guard let json = file.metadata["config"] else {
            throw .weights(file: file.source, .noConfig)
        }
        return try LadonModelConfig.decode(json: Data(json.utf8), source: "\(file.source) metadata 'config'")
    }

    /// The `classes.<key>` label lists of a weights file's metadata, by key (`imagenet`, `coco`, `voc`).
    public static func classLists(of file: SafeTensorsFile) throws(LadonError) -> [String: [String]] {
        var classes: [String: [String]] = [:]
        for (k, v) in file.metadata where k.hasPrefix("classes.") {
            guard let list = try? JSONSerialization.jsonObject(with: Data(v.utf8)) as? [String] else {
                throw .weights(file: file.source, .malformedMetadata(key: k, expected: "a JSON array of strings"))
            }
            classes[String(k.dropFirst("classes.".count))] = list
        }
        return classes
    }

    /// Recomputes the fingerprint of a weights file from its tensors (see ``fingerprint(_:)``).
    public static func fingerprint(of file: SafeTensorsFile) throws(LadonError) -> String {
        var records: [(String, String, [Int], [UInt8])] = []
        for name in file.names {
            let e = try file.entry(name)
            records.append((name, e.dtype.rawValue, e.shape, try file.rawBytes(name)))
        }
        return fingerprint(records)
    }

    /// The fingerprint rule over raw `(name, dtype, shape, bytes)` records: SHA-256 over the records sorted by
    /// name, each as name, dtype and shape (NUL-separated), the byte count (8 bytes LE) and the bytes.
    public static func fingerprint(_ records: [(String, String, [Int], [UInt8])]) -> String {
        var h = SHA256()
        for (name, dtype, shape, bytes) in records.sorted(by: { $0.0 < $1.0 }) {
            h.update(Array(name.utf8) + [0] + Array(dtype.utf8) + [0]
                     + Array(shape.map(String.init).joined(separator: ",").utf8) + [0])
            h.update((0..<8).map { UInt8(truncatingIfNeeded: UInt64(bytes.count) >> (8 * UInt64($0))) })
            h.update(bytes)
        }
        return h.finalize().hexString
    }
}
