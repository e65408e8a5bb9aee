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

    @Option(name: .customLong("classification"), help: "Classification checkpoint (splittable_resnet50 ... _from_resnet50.pt).")
    var classification: String?

    @Option(name: .customLong("detection"), help: "Detection checkpoint (faster_rcnn_splittable_resnet50 ... _fpn.pt).")
    var detection: String?

    @Option(name: .customLong("segmentation"), help: "Segmentation checkpoint (deeplabv3_splittable_resnet50 ... .pt).")
    var segmentation: String?

    @Option(name: .shortAndLong, help: "Output weights file (.safetensors).")
    var output: String

    @Option(name: .customLong("shared-body-from"), help: "Take the shared body from cls, det or seg (default: the last given).")
    var sharedBodyFrom: String?

    @Option(name: .long, help: "Model config JSON (default: the built-in ladon-resnet50 config, Configs/ladon-resnet50.json).")
    var config: String?

    @Flag(name: .customLong("no-verify-crc"), help: "Skip the CRC-32 check of the checkpoint records.")
    var noVerifyCRC = false

    func run() async throws {
        let given: [(CheckpointSlot, String)] = [(.classification, classification), (.detection, detection),
                                                 (.segmentation, segmentation)].compactMap { s, p in p.map { (s, $0) } }
        guard !given.isEmpty else {
            throw ValidationError("give at least one of --classification, --detection, --segmentation")
        }
        var bodySlot: CheckpointSlot?
        if let name = sharedBodyFrom {
            guard let s = CheckpointSlot(name: name) else { throw ValidationError("--shared-body-from must be cls, det or seg, not '\(name)'") }
            bodySlot = s
        }
        let modelConfig = try config.map { try LadonModelConfig.load(path: $0) } ?? .resnet50
        let converter = try LadonConverter(config: modelConfig)

        let clock = ContinuousClock()
        let start = clock.now
        var checkpoints: [CheckpointSlot: TorchCheckpoint] = [:]
        var sources: [LadonWeightsFormat.Source] = []
        for (slot, path) in given {
            let ckpt = try TorchCheckpoint(path: path, verifyChecksums: !noVerifyCRC)
            checkpoints[slot] = ckpt
            let sha = try LadonWeightsFormat.sha256(ofFile: path)
            sources.append(.init(slot: slot, fileName: URL(fileURLWithPath: path).lastPathComponent, sha256: sha))
            print("read \(slot.rawValue): \(path) — \(ckpt.names.count) tensors (state dict at \(ckpt.stateDictKey.isEmpty ? "top level" : "'\(ckpt.stateDictKey)'")), sha256 \(sha.prefix(16))…")
        }
        let conversion = try converter.convert(checkpoints, sharedBodyFrom: bodySlot)
        // The default model location (~/.local/share/ladon) does not exist on a fresh machine.
        let directory = URL(fileURLWithPath: output).deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw CLIError("cannot create \(directory.path) for --output: \(error.localizedDescription)")
        }
        try LadonWeightsFormat.write(conversion, sources: sources, to: output)
        let elapsed = clock.now - start
        let seconds = elapsed.seconds
        let bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        printSummary(conversion, bytes: bytes, seconds: seconds)
    }

    private func printSummary(_ c: LadonConversion, bytes: Int, seconds: Double) {
        print("\nwrote \(output): \(c.tensors.count) tensors, \(String(format: "%.1f", Double(bytes) / 1_048_576)) MiB in \(String(format: "%.2f", seconds)) s")
        print("shared body from: \(c.sharedBodyFrom.rawValue)")
        print("tensors per group:")
        for (group, count) in c.groupCounts { print("  \(group.padding(toLength: 20, withPad: " ", startingAt: 0)) \(count)") }
        for (slot, keys) in c.dropped.sorted(by: { $0.key < $1.key }) {
            let counters = keys.filter { $0.hasSuffix("num_batches_tracked") }.count
            let aux = keys.count - counters
            print("dropped from \(slot.rawValue): \(counters) num_batches_tracked\(aux > 0 ? ", \(aux) aux_classifier" : "")")
        }
        if !c.differences.isEmpty {
            print("shared body vs \(c.sharedBodyFrom.rawValue) (max |difference|, tensors differing/compared):")
            for d in c.differences {
                let extra = d.incomparable.isEmpty ? "" : ", \(d.incomparable.count) missing or reshaped"
                print("  \(d.slot.shortName) \(d.group.padding(toLength: 19, withPad: " ", startingAt: 0)) \(d.kind.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0)) \(String(format: "%.6g", d.maxAbsDifference))  (\(d.differing)/\(d.compared)\(extra))")
            }
        }
        for w in c.warnings { print("warning: \(w)") }
        print("fingerprint: \(c.fingerprint)")
    }
}
