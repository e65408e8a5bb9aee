// Writing a conversion as a Ladon weights file (the reading side is LadonCore's LadonWeightsFormat).
import Foundation
import LadonCore

extension LadonWeightsFormat {
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
    /// `extra` adds keys such as `variant` and `beta` (from `ladon convert --release`); it cannot override the others.
    public static func metadata(for conversion: LadonConversion, sources: [Source],
                                extra: [String: String] = [:]) -> [String: String] {
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
        for (k, v) in extra where m[k] == nil { m[k] = v }
        return m
    }

    /// The complete safetensors image of a conversion (tensors packed back to back in layout order, as the
    /// safetensors specification requires; the header is space-padded so the data starts 8-byte aligned).
    public static func serialize(_ conversion: LadonConversion, sources: [Source], extra: [String: String] = [:]) -> Data {
        var out = Data(header(conversion, sources: sources, extra: extra))
        for t in conversion.tensors { out.append(contentsOf: t.bytes) }
        return out
    }

    /// Writes the weights file to `path` (through a temporary file renamed into place), tensor by tensor.
    public static func write(_ conversion: LadonConversion, sources: [Source], extra: [String: String] = [:],
                             to path: String) throws(LadonError) {
        let temporary = path + ".partial"
        let fm = FileManager.default
        guard fm.createFile(atPath: temporary, contents: nil), let handle = FileHandle(forWritingAtPath: temporary) else {
            throw .weights(file: temporary, .unwritable(reason: "the file cannot be created"))
        }
        do {
            try handle.write(contentsOf: header(conversion, sources: sources, extra: extra))
            for t in conversion.tensors { try handle.write(contentsOf: t.bytes) }
            try handle.close()
            if fm.fileExists(atPath: path) { try fm.removeItem(atPath: path) }
            try fm.moveItem(atPath: temporary, toPath: path)
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw .weights(file: path, .unwritable(reason: error.localizedDescription))
        }
    }

    /// The 8-byte length and the JSON header.
    static func header(_ conversion: LadonConversion, sources: [Source], extra: [String: String] = [:]) -> [UInt8] {
        let meta = metadata(for: conversion, sources: sources, extra: extra)
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

    static func jsonString(_ s: String) -> String { SafeTensorsWriter.jsonString(s) }

    static func jsonArray(_ strings: [String]) -> String {
        // Arrays of strings always serialise.
        String(decoding: try! JSONSerialization.data(withJSONObject: strings, options: [.withoutEscapingSlashes]), as: UTF8.self)
    }
}
