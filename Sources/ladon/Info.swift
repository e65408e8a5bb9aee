// `ladon info`: what a weights file holds, for people (text) and tools (--json).
import ArgumentParser
import Foundation
import LadonCore

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a weights file: kind, architecture, heads and classes, fingerprint, sources, encoder size, config.")

    @Argument(help: "A model file from `ladon convert` or a device file from `ladon split`.")
    var model: String

    @Flag(help: "Print one JSON object.")
    var json = false

    struct Source: Encodable { var slot: String, file: String, sha256: String }
    struct Head: Encodable { var name: String, classes: Int, classList: String }
    /// The SC2 encoder size under the conventions sc2bench's `analyze_model_size` admits (docs/evaluation.md).
    struct EncoderSizes: Encodable {
        /// Convolution and GDN parameters only (weights, biases, beta, gamma of `encoder.encoder.*`).
        var encoderParameterBytes: Int
        /// Every encoder tensor in the file (`encoder.encoder.*`, GDN's effective parameters included).
        var encoderBytes: Int
        /// The entropy bottleneck's tensors: density MLP, quantiles and CDF tables.
        var entropyBottleneckBytes: Int
        var totalBytes: Int
        var totalBits: Int
        var totalMiB: Double
        var totalMB: Double
    }
    struct Report: Encodable {
        var file: String
        var kind: String
        var architecture: String
        var formatVersion: String?
        var fingerprint: String?
        var modelId: String
        var beta: String?
        var sharedBodyFrom: String?
        var heads: [Head]
        var sources: [Source]
        var tensors: Int
        var fileBytes: Int
        var encoderSize: EncoderSizes
        var latentChannels: Int
        var preprocessing: LadonModelConfig.Preprocessing
        var config: LadonModelConfig
    }

    func run() throws {
        let f: LadonModelFile
        do { f = try LadonModelFile(path: model) } catch { throw CLIError("cannot load model \(model): \(error)", status: .model) }
        let m = f.file.metadata
        // A device file keeps the whole model's config but none of the heads' weights.
        var heads: [Head] = []
        if f.kind == .full, let c = f.config.classification { heads.append(Head(name: "classification", classes: c.numClasses, classList: c.classList)) }
        if f.kind == .full, let d = f.config.detection { heads.append(Head(name: "detection", classes: d.numClasses, classList: d.classList)) }
        if f.kind == .full, let s = f.config.segmentation { heads.append(Head(name: "segmentation", classes: s.numClasses, classList: s.classList)) }
        let sources = ["classification", "detection", "segmentation"].compactMap { slot -> Source? in
            guard let file = m["source.\(slot).file"] else { return nil }
            return Source(slot: slot, file: file, sha256: m["source.\(slot).sha256"] ?? "")
        }
        let size = f.encoderSize
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: model)[.size] as? Int) ?? 0
        let report = Report(
            file: model, kind: f.kind.rawValue, architecture: f.config.architecture, formatVersion: m["format_version"],
            fingerprint: f.fingerprint, modelId: f.modelID.hexString, beta: m["beta"], sharedBodyFrom: f.sharedBodyFrom,
            heads: heads, sources: sources, tensors: f.file.entries.count, fileBytes: fileBytes,
            encoderSize: EncoderSizes(encoderParameterBytes: size.parameterBytes, encoderBytes: size.encoderBytes,
                                      entropyBottleneckBytes: size.entropyBottleneckBytes, totalBytes: size.totalBytes,
                                      totalBits: size.totalBits, totalMiB: Double(size.totalBytes) / 1_048_576,
                                      totalMB: Double(size.totalBytes) / 1_000_000),
            latentChannels: f.config.bottleneckChannels, preprocessing: f.config.preprocessing, config: f.config)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        var lines = [
            "\(model): \(report.kind) model, \(report.architecture), \(report.tensors) tensors, \(fileBytes) bytes",
            "fingerprint: \(report.fingerprint ?? "none") (packets carry \(report.modelId))",
        ]
        if let beta = report.beta { lines.append("beta: \(beta)") }
        lines.append("heads: " + (heads.isEmpty ? "none (device file)" : heads.map { "\($0.name) (\($0.classes) \($0.classList) classes)" }.joined(separator: ", ")))
        if let body = report.sharedBodyFrom { lines.append("shared body from: \(body)") }
        for s in sources { lines.append("source \(s.slot): \(s.file) sha256 \(s.sha256)") }
        let e = report.encoderSize
        lines.append("encoder size: \(e.totalBytes) bytes = \(e.totalBits) bits = \(String(format: "%.4f", e.totalMiB)) MiB = \(String(format: "%.4f", e.totalMB)) MB")
        lines.append("  encoder conv+GDN parameters \(e.encoderParameterBytes) B, all encoder tensors \(e.encoderBytes) B, entropy bottleneck \(e.entropyBottleneckBytes) B")
        let p = report.preprocessing
        lines.append("latent: \(report.latentChannels) channels; preprocessing: resize \(p.minSize)–\(p.maxSize) (\(p.resizeRule)), pad to a multiple of \(p.sizeDivisible)")
        print(lines.joined(separator: "\n"))
    }
}
