// The Ladon weights file: a safetensors file with documented names and `__metadata__` (docs/weights-format.md).
import Foundation

/// Metadata keys and helpers of the `ladon-swift-weights` file format.
public enum LadonWeightsFormat {
    /// Value of the `format` metadata key.
    public static let format = "ladon-swift-weights"
    /// Value of the `format_version` metadata key.
    public static let version = "1"

    /// A checkpoint a weights file was converted from.
    public struct Source: Sendable, Equatable {
        public let slot: CheckpointSlot
        /// File name (no directories).
        public let fileName: String
        /// SHA-256 of the whole checkpoint file, lower-case hex.
        public let sha256: String
        public init(slot: CheckpointSlot, fileName: String, sha256: String) {
            self.slot = slot
            self.fileName = fileName
            self.sha256 = sha256
        }
    }

    /// The `__metadata__` map for a conversion.
    ///
    /// Keys: `format`, `format_version`, `architecture`, `config` (JSON), `classes.<list>` (JSON array of labels for
    /// every head present), `source.<slot>.file`, `source.<slot>.sha256`, `shared_body_from`, `fingerprint`.
    public static func metadata(for conversion: LadonConversion, sources: [Source]) -> [String: String] {
        var m: [String: String] = [
            "format": format,
            "format_version": version,
            "architecture": conversion.config.architecture,
            "config": conversion.config.jsonString(),
            "shared_body_from": conversion.sharedBodyFrom.rawValue,
            "fingerprint": conversion.fingerprint,
        ]
        let lists = [conversion.config.classification?.classList, conversion.config.detection?.classList,
                     conversion.config.segmentation?.classList].compactMap { $0 }
        for key in lists {
            if let labels = LadonLabels.list(key) { m["classes.\(key)"] = jsonArray(labels) }
        }
        for s in sources {
            m["source.\(s.slot.rawValue).file"] = s.fileName
            m["source.\(s.slot.rawValue).sha256"] = s.sha256
        }
        return m
    }

    /// The complete safetensors image of a conversion (tensors packed back to back in layout order, as the
    /// safetensors specification requires; the header is space-padded so the data starts 8-byte aligned).
    public static func serialize(_ conversion: LadonConversion, sources: [Source]) -> Data {
        var out = Data(header(conversion, sources: sources))
        for t in conversion.tensors { out.append(contentsOf: t.bytes) }
        return out
    }

    /// Writes the weights file to `path` (through a temporary file renamed into place), tensor by tensor.
    public static func write(_ conversion: LadonConversion, sources: [Source], to path: String) throws(LadonError) {
        let temporary = path + ".partial"
        let fm = FileManager.default
        guard fm.createFile(atPath: temporary, contents: nil), let handle = FileHandle(forWritingAtPath: temporary) else {
            throw .weights("cannot create \(temporary)")
        }
        do {
            try handle.write(contentsOf: header(conversion, sources: sources))
            for t in conversion.tensors { try handle.write(contentsOf: t.bytes) }
            try handle.close()
            if fm.fileExists(atPath: path) { try fm.removeItem(atPath: path) }
            try fm.moveItem(atPath: temporary, toPath: path)
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw .weights("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// The 8-byte length and the JSON header.
    static func header(_ conversion: LadonConversion, sources: [Source]) -> [UInt8] {
        let meta = metadata(for: conversion, sources: sources)
        var parts = ["\"__metadata__\":{" + meta.keys.sorted().map { "\(jsonString($0)):\(jsonString(meta[$0]!))" }.joined(separator: ",") + "}"]
        var offset = 0
        for t in conversion.tensors {
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
            offset += t.bytes.count
        }
        var json = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        return (0..<8).map { UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64($0))) } + json
    }

    private static func jsonString(_ s: String) -> String {
        // A one-element array of a string always serialises; strip the brackets.
        let text = String(decoding: try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes]), as: UTF8.self)
        return String(text.dropFirst().dropLast())
    }

    /// SHA-256 of a file's bytes (memory-mapped), lower-case hex.
    public static func sha256(ofFile path: String) throws(LadonError) -> String {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw .weights("cannot read \(path): \(error.localizedDescription)")
        }
        return data.withUnsafeBytes { SHA256.hash($0) }.hexString
    }

    /// Reads back what a weights file says about itself, checking the format markers.
    public struct Info: Sendable {
        public let config: LadonModelConfig
        public let sharedBodyFrom: String?
        public let fingerprint: String?
        /// Label lists by key (`imagenet`, `coco`, `voc`).
        public let classes: [String: [String]]

        public init(_ file: SafeTensorsFile) throws(LadonError) {
            let m = file.metadata
            guard m["format"] == LadonWeightsFormat.format else {
                throw .weights("\(file.source) is not a Ladon weights file (metadata format = \(m["format"] ?? "absent")); convert the checkpoints with `ladon convert`")
            }
            guard m["format_version"] == LadonWeightsFormat.version else {
                throw .weights("\(file.source) has format_version \(m["format_version"] ?? "absent"); this build reads version \(LadonWeightsFormat.version)")
            }
            config = try LadonWeightsFormat.config(of: file)
            sharedBodyFrom = m["shared_body_from"]
            fingerprint = m["fingerprint"]
            classes = try LadonWeightsFormat.classLists(of: file)
        }
    }

    /// The model config stored in a weights file's `config` metadata.
    public static func config(of file: SafeTensorsFile) throws(LadonError) -> LadonModelConfig {
        guard let json = file.metadata["config"] else {
            throw .weights("\(file.source) has no 'config' metadata; pass a config (Configs/ladon-resnet50.json) or convert the checkpoints with `ladon convert`")
        }
        return try LadonModelConfig.decode(json: Data(json.utf8), source: "\(file.source) metadata 'config'")
    }

    /// The `classes.<key>` label lists of a weights file's metadata, by key (`imagenet`, `coco`, `voc`).
    public static func classLists(of file: SafeTensorsFile) throws(LadonError) -> [String: [String]] {
        var classes: [String: [String]] = [:]
        for (k, v) in file.metadata where k.hasPrefix("classes.") {
            guard let list = try? JSONSerialization.jsonObject(with: Data(v.utf8)) as? [String] else {
                throw .weights("\(file.source): metadata \(k) is not a JSON array of strings")
            }
            classes[String(k.dropFirst("classes.".count))] = list
        }
        return classes
    }

    /// Recomputes the fingerprint of a weights file from its tensors (see ``LadonConversion/fingerprint``).
    public static func fingerprint(of file: SafeTensorsFile) throws(LadonError) -> String {
        var records: [(String, String, [Int], [UInt8])] = []
        for name in file.names {
            let e = try file.entry(name)
            records.append((name, e.dtype.rawValue, e.shape, try file.rawBytes(name)))
        }
        return LadonConversion.fingerprint(records)
    }

    private static func jsonArray(_ strings: [String]) -> String {
        // Arrays of strings always serialise.
        String(decoding: try! JSONSerialization.data(withJSONObject: strings, options: [.withoutEscapingSlashes]), as: UTF8.self)
    }
}
