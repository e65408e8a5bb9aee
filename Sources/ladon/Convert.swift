// `ladon convert`: per-task PyTorch checkpoints → one Ladon safetensors weights file.
import ArgumentParser
import Foundation
import LadonCheckpoint
import LadonCore

struct Convert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert the Ladon per-task PyTorch checkpoints (.pt) into one safetensors weights file.",
        discussion: """
            Reads torch.save files directly (no Python). The shared body (encoder, entropy bottleneck, decoder, \
            layer2-4) comes from the last checkpoint in the order classification, detection, segmentation, as the \
            reference runtime loads them, unless --shared-body-from says otherwise. Any subset of the three files \
            may be given; missing heads are left out. See docs/weights-format.md.
            """)

    @Option(name: .customLong("release"), help: "The official release, unpacked (a folder holding …/resource/ckpt/…): finds the three files for --beta by their release names.")
    var release: String?

    @Option(help: "β of the release checkpoints to convert, e.g. 1.28 (with --release; stored in the weights metadata).")
    var beta: String?

    @Option(help: "Backbone of the checkpoints: resnet50 or resnest269e (picks the built-in config and, with --release, the file names).")
    var backbone = "resnet50"

    @Option(name: .customLong("classification"), help: "Classification checkpoint (splittable_resnet50 ... _from_resnet50.pt).")
    var classification: String?

    @Option(name: .customLong("detection"), help: "Detection checkpoint (faster_rcnn_splittable_resnet50 ... _fpn.pt).")
    var detection: String?

    @Option(name: .customLong("segmentation"), help: "Segmentation checkpoint (deeplabv3_splittable_resnet50 ... .pt).")
    var segmentation: String?

    @Option(name: .shortAndLong, help: "Output weights file (.safetensors); its folder is created if needed. Default: \(ModelLocator.defaultPath).")
    var output: String?

    @Option(name: .customLong("shared-body-from"), help: "Take the shared body from cls, det or seg (default: the last given).")
    var sharedBodyFrom: String?

    @Option(name: .long, help: "Model config JSON (default: the built-in config of --backbone, Configs/ladon-<backbone>.json).")
    var config: String?

    @Flag(name: .customLong("no-verify-crc"), help: "Skip the CRC-32 check of the checkpoint records.")
    var noVerifyCRC = false

    @Flag(help: "Print the summary as one JSON object (progress goes to stderr).")
    var json = false

    func validate() throws {
        guard LadonModelConfig.builtIn(backbone: backbone) != nil else {
            throw ValidationError("--backbone must be resnet50 or resnest269e, not '\(backbone)'")
        }
        if release != nil {
            guard let beta, Double(beta) != nil else { throw ValidationError("--release needs --beta, e.g. --beta 1.28") }
        } else if beta != nil {
            throw ValidationError("--beta goes with --release")
        }
    }

    /// The release file names of one β (release `wacv2025` of yoshitomo-matsubara/ladon-multi-task-sc2). The
    /// segmentation file is saved as `…_two_stages.pt` by the per-task configs; the runtime configs name it without.
    static func releaseNames(backbone b: String, beta: String) -> [(CheckpointSlot, [String])] {
        [(.classification, ["ilsvrc2012-splittable_\(b)-fp-beta\(beta)_from_\(b).pt"]),
         (.detection, ["coco2017-faster_rcnn_splittable_\(b)-fp-beta\(beta)_fpn.pt"]),
         (.segmentation, ["pascal_voc2012-deeplabv3_splittable_\(b)-fp-beta\(beta)_two_stages.pt",
                          "pascal_voc2012-deeplabv3_splittable_\(b)-fp-beta\(beta).pt"])]
    }

    /// Finds the release files under `root` (bounded walk); a zip archive there must be unpacked first.
    func findRelease(_ root: String, beta: String) throws -> [CheckpointSlot: String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else { throw CLIError("--release \(root) does not exist") }
        guard isDirectory.boolValue else {
            throw CLIError("--release \(root) is a file; unpack the release zip files first (unzip -d DIR FILE.zip) and pass the folder")
        }
        let wanted = Self.releaseNames(backbone: backbone, beta: beta)
        var found: [CheckpointSlot: String] = [:]
        var zips: [String] = []
        let walker = FileManager.default.enumerator(atPath: root)
        var seen = 0
        while let relative = walker?.nextObject() as? String, seen < 200_000 {
            seen += 1
            let name = (relative as NSString).lastPathComponent
            if name.hasSuffix(".zip") { zips.append(relative) }
            for (slot, names) in wanted where found[slot] == nil || names.first == name {
                if names.contains(name) { found[slot] = (root as NSString).appendingPathComponent(relative) }
            }
        }
        let missing = wanted.filter { found[$0.0] == nil }
        if !missing.isEmpty {
            var message = "--release \(root) has no " + missing.map { $0.1.joined(separator: " or ") }.joined(separator: ", ")
            if !zips.isEmpty { message += "; it holds zip files (\(zips.prefix(3).joined(separator: ", "))): unpack them first (unzip -d DIR FILE.zip)" }
            throw CLIError(message)
        }
        return found
    }

    /// One progress line: to stdout, or to stderr with --json.
    func progress(_ line: String) {
        if json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
    }

    func run() async throws {
        var paths: [CheckpointSlot: String] = [:]
        if let release, let beta { paths = try findRelease(release, beta: beta) }
        for (slot, path) in [(CheckpointSlot.classification, classification), (.detection, detection), (.segmentation, segmentation)] {
            if let path { paths[slot] = path }
        }
        let given = paths.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        guard !given.isEmpty else {
            throw ValidationError("give --release DIR --beta B, or at least one of --classification, --detection, --segmentation")
        }
        var bodySlot: CheckpointSlot?
        if let name = sharedBodyFrom {
            guard let s = CheckpointSlot(name: name) else { throw ValidationError("--shared-body-from must be cls, det or seg, not '\(name)'") }
            bodySlot = s
        }
        let output = self.output ?? ModelLocator.defaultPath
        let modelConfig = try config.map { try LadonModelConfig.load(path: $0) } ?? LadonModelConfig.builtIn(backbone: backbone)!
        let converter = try LadonConverter(config: modelConfig)

        let start = ContinuousClock.now
        var checkpoints: [CheckpointSlot: TorchCheckpoint] = [:]
        var sources: [LadonWeightsFormat.Source] = []
        var sourceBytes: [CheckpointSlot: Int] = [:]
        for (slot, path) in given {
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            let bytes = (try? FileManager.default.attributesOfItem(atPath: resolved)[.size] as? Int) ?? 0
            sourceBytes[slot] = bytes
            progress("reading \(slot.rawValue): \(path) (\(String(format: "%.1f", Double(bytes) / 1_048_576)) MiB)…")
            let ckpt = try TorchCheckpoint(path: path, verifyChecksums: !noVerifyCRC)
            checkpoints[slot] = ckpt
            let sha = try LadonWeightsFormat.sha256(ofFile: path)
            sources.append(.init(slot: slot, fileName: URL(fileURLWithPath: path).lastPathComponent, sha256: sha))
            progress("  \(ckpt.names.count) tensors (state dict at \(ckpt.stateDictKey.isEmpty ? "top level" : "'\(ckpt.stateDictKey)'")), sha256 \(sha.prefix(16))…")
        }
        progress("mapping and checking \(given.count) checkpoint(s)…")
        let conversion = try converter.convert(checkpoints, sharedBodyFrom: bodySlot)
        // The default model location (~/.local/share/ladon) does not exist on a fresh machine.
        let directory = URL(fileURLWithPath: output).deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw CLIError("cannot create \(directory.path) for --output: \(error.localizedDescription)")
        }
        var extra: [String: String] = [:]
        if release != nil { extra["variant"] = backbone }
        if let beta { extra["beta"] = beta }
        progress("writing \(output)…")
        try LadonWeightsFormat.write(conversion, sources: sources, extra: extra, to: output)
        let seconds = (ContinuousClock.now - start).seconds
        let bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        if json {
            let summary = Summary(output: output, bytes: bytes, seconds: seconds, tensors: conversion.tensors.count,
                                  sharedBodyFrom: conversion.sharedBodyFrom.rawValue, fingerprint: conversion.fingerprint,
                                  variant: extra["variant"], beta: extra["beta"],
                                  sources: sources.map { .init(slot: $0.slot.rawValue, file: $0.fileName, sha256: $0.sha256,
                                                               bytes: sourceBytes[$0.slot] ?? 0) },
                                  warnings: conversion.warnings)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            printSummary(conversion, output: output, bytes: bytes, seconds: seconds)
        }
    }

    struct Summary: Encodable {
        struct Source: Encodable { var slot: String, file: String, sha256: String, bytes: Int }
        var output: String
        var bytes: Int
        var seconds: Double
        var tensors: Int
        var sharedBodyFrom: String
        var fingerprint: String
        var variant: String?
        var beta: String?
        var sources: [Source]
        var warnings: [String]
    }

    private func printSummary(_ c: LadonConversion, output: String, bytes: Int, seconds: Double) {
        print("\nwrote \(output): \(c.tensors.count) tensors, \(String(format: "%.1f", Double(bytes) / 1_048_576)) MiB in \(String(format: "%.2f", seconds)) s")
        print("shared body from: \(c.sharedBodyFrom.rawValue)")
        print("tensors per group:")
        for (group, count) in c.groupCounts { print("  \(group.rawValue.padding(toLength: 20, withPad: " ", startingAt: 0)) \(count)") }
        for (slot, keys) in c.dropped.sorted(by: { $0.key < $1.key }) {
            let counters = keys.filter { $0.hasSuffix("num_batches_tracked") }.count
            let aux = keys.count - counters
            print("dropped from \(slot.rawValue): \(counters) num_batches_tracked\(aux > 0 ? ", \(aux) aux_classifier" : "")")
        }
        if !c.differences.isEmpty {
            print("shared body vs \(c.sharedBodyFrom.rawValue) (max |difference|, tensors differing/compared):")
            for d in c.differences {
                let extra = d.incomparable.isEmpty ? "" : ", \(d.incomparable.count) missing or reshaped"
                print("  \(d.slot.shortName) \(d.group.rawValue.padding(toLength: 19, withPad: " ", startingAt: 0)) \(d.kind.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0)) \(String(format: "%.6g", d.maxAbsDifference))  (\(d.differing)/\(d.compared)\(extra))")
            }
        }
        for w in c.warnings { print("warning: \(w)") }
        print("fingerprint: \(c.fingerprint)")
    }
}
