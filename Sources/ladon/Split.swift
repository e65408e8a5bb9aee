// `ladon encode` / `ladon decode`: the device half and the server half as two commands, joined by a packet file.
import ArgumentParser
import EdgeSplit
import Foundation
import LadonCore
import LadonImage

struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Device half: encode an image into a latent packet (header + CompressAI bytes, docs/wire-format.md).",
        discussion: "Reads only the encoder's weights. Send the packet to the server any way you like and run `ladon decode` there.")

    @Argument(help: "A JPEG or PNG image.")
    var image: String

    @Option(name: .shortAndLong, help: "Packet file to write.")
    var output: String

    @OptionGroup var options: ModelOptions

    func run() throws {
        let device = try options.load { try DeviceHalf(path: $0) }
        let rgb = try ImageDecoder.decode(contentsOf: image)
        let packet = try device.encode(rgb.toTensor())
        let bytes = packet.serialized()
        try Data(bytes).write(to: URL(fileURLWithPath: output))
        print("\(image): \(rgb.width)x\(rgb.height) → latent \(packet.latentChannels)x\(packet.latentHeight)x\(packet.latentWidth), \(packet.payload.count) bytes coded, \(bytes.count) bytes in \(output)")
    }
}

struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Server half: decode a latent packet and run the classification, detection and segmentation heads.")

    @Argument(help: "Packet files written by `ladon encode`.")
    var packets: [String]

    @OptionGroup var options: ModelOptions

    @Flag(help: "Print one JSON object per packet (the fields of `ladon infer --json`).")
    var json = false

    @Option(name: .customLong("top-k"), help: "Number of classes to show in text output (JSON always lists the top 5).")
    var topK = 5

    @Flag(help: "Include all classification logits in the JSON output.")
    var logits = false

    @Option(name: .customLong("detection-threshold"), help: "Show detections with at least this score in text output (JSON lists all).")
    var detectionThreshold: Float = 0.5

    @Option(name: .customLong("mask-size"), help: "Size of --mask and of the class-pixel counts: original or padded.")
    var maskSize: MaskSize = .original

    @Option(help: "Write the segmentation class-id mask as an 8-bit PNG (one packet only).")
    var mask: String?

    func validate() throws {
        if mask != nil && packets.count > 1 { throw ValidationError("--mask takes one packet") }
    }

    func run() throws {
        let server = try options.load { try ServerHalf(path: $0) }
        var failed = 0
        for file in packets {
            do {
                guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
                let result = try server.run(try LatentPacket(bytes: [UInt8](data)))
                let report = InferenceReport(file: file, result: result, model: server.model, topK: max(1, topK),
                                             includeLogits: logits, maskSize: maskSize,
                                             detectionThreshold: detectionThreshold)
                if let mask, let seg = result.segmentation {
                    let (w, h, ids) = report.maskPixels(seg, geometry: result.geometry)
                    try PNGEncoder.writeGray(width: w, height: h, pixels: ids.map { UInt8(clamping: $0) }, to: mask)
                }
                print(json ? report.json() : report.text())
            } catch {
                failed += 1
                FileHandle.standardError.write(Data("ladon: \(file): \(error)\n".utf8))
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
