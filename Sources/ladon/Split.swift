// `ladon encode` / `ladon decode` / `ladon split`: the device half and the server half as separate commands.
import ArgumentParser
import EdgeSplit
import Foundation
import LadonCore
import LadonImage

struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Device half: encode images into latent packets (header + CompressAI bytes, docs/wire-format.md).",
        discussion: "Reads only the encoder's weights (a whole model file or a device file from `ladon split`). Send the packet to the server any way you like and run `ladon decode` there, or post it to `ladon serve`.")

    @Argument(help: "JPEG or PNG images; a folder adds its images recursively, `-` reads paths from stdin, @FILE from a list file.")
    var images: [String]

    @Option(name: .shortAndLong, help: "Packet file to write (one image).")
    var output: String?

    @Option(name: .customLong("output-dir"), help: "Write every image's packet here as STEM.ldnp.")
    var outputDir: String?

    @Flag(help: "Print one JSON object per image: file, image size, latent shape, payload and packet bytes, packet path, stage timings.")
    var json = false

    @OptionGroup var options: ModelOptions

    @Option(name: .customLong("pixel-limit"), help: "Refuse images with more pixels than this (default \(ImageDecoder.devicePixelLimit), at most about \((ImageDecoder.devicePixelLimit * ImageDecoder.peakBytesPerPixel) >> 20) MiB at the peak).")
    var pixelLimit = ImageDecoder.devicePixelLimit

    func validate() throws {
        guard pixelLimit >= 1 else { throw ValidationError("--pixel-limit must be at least 1") }
        guard (output == nil) != (outputDir == nil) else { throw ValidationError("give -o FILE (one image) or --output-dir DIR") }
    }

    struct Line: Encodable {
        struct Size: Encodable { var width: Int, height: Int }
        struct Latent: Encodable { var channels: Int, height: Int, width: Int }
        var file: String
        var image: Size
        var latent: Latent
        var payloadBytes: Int
        var packetBytes: Int
        var packet: String
        /// `decodeMs`, `preprocessMs`, `encoderMs`, `compressMs`: the keys of `ladon infer --json`'s timings.
        var timings: [String: Double]
    }

    func run() throws {
        let paths = try Inputs.expand(images, extensions: Inputs.imageExtensions)
        guard !paths.isEmpty else { throw CLIError("no images to encode", status: .inputFailed) }
        if output != nil && paths.count > 1 { throw ValidationError("-o takes one image; use --output-dir for several") }
        let device = try options.load { try DeviceHalf(path: $0) }
        var folder = try outputDir.map { try OutputFolder($0) }
        var failed = 0
        for image in paths {
            do {
                let target = output ?? folder!.path(folder!.stem(for: image), ".ldnp")
                var stopwatch = Stopwatch()
                let rgb = try stopwatch.time("decode") { () throws(ImageError) in
                    try ImageDecoder.decode(contentsOf: image, pixelLimit: pixelLimit)
                }
                let packet = LatentPacket(try device.encode(rgb: rgb.pixels, width: rgb.width, height: rgb.height,
                                                            stopwatch: &stopwatch))
                let bytes = packet.serialized()
                try Data(bytes).write(to: URL(fileURLWithPath: target))
                if json {
                    let line = Line(file: image, image: .init(width: rgb.width, height: rgb.height),
                                    latent: .init(channels: packet.latentChannels, height: packet.latentHeight, width: packet.latentWidth),
                                    payloadBytes: packet.payload.count, packetBytes: bytes.count, packet: target,
                                    timings: InferenceSummary.milliseconds(stopwatch.laps))
                    print(String(decoding: try InferenceSummary.jsonEncoder().encode(line), as: UTF8.self))
                } else {
                    print("\(image): \(rgb.width)x\(rgb.height) → latent \(packet.latentChannels)x\(packet.latentHeight)x\(packet.latentWidth), \(packet.payload.count) bytes coded, \(bytes.count) bytes in \(target)")
                }
            } catch {
                failed += 1
                reportFailure(image, error, json: json)
            }
        }
        if failed > 0 { throw ExitCode(ExitStatus.inputFailed.rawValue) }
    }
}

struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Server half: decode a latent packet and run the classification, detection and segmentation heads.")

    @Argument(help: "Packet files written by `ladon encode`; a folder adds its .ldnp files recursively, `-` reads paths from stdin, @FILE from a list file.")
    var packets: [String]

    @OptionGroup var options: ModelOptions

    @Flag(help: "Print one JSON object per packet (the fields of `ladon infer --json`).")
    var json = false

    @OptionGroup var shown: ReportOptions

    @Option(help: "Write the segmentation class-id mask as an 8-bit PNG (one packet only).")
    var mask: String?

    func validate() throws {
        if mask != nil && packets.count > 1 { throw ValidationError("--mask takes one packet") }
    }

    func run() throws {
        let paths = try Inputs.expand(packets, extensions: Inputs.packetExtensions)
        guard !paths.isEmpty else { throw CLIError("no packets to decode", status: .inputFailed) }
        if mask != nil && paths.count > 1 { throw ValidationError("--mask takes one packet") }
        let server = try options.load { try ServerHalf(path: $0) }
        var failed = 0
        for file in paths {
            do {
                let result = try server.run(try LatentPacket(contentsOf: file).encodedImage)
                let report = InferenceReport(file: file, result: result, model: server, topK: shown.topK,
                                             includeLogits: shown.logits, maskSize: shown.maskSize,
                                             detectionThreshold: shown.detectionThreshold)
                if let mask, let seg = result.segmentation {
                    let (w, h, ids) = report.maskPixels(seg, geometry: result.geometry)
                    try PNGEncoder.writeGray(width: w, height: h, pixels: ids.map { UInt8(clamping: $0) }, to: mask)
                }
                print(json ? report.json() : report.text())
            } catch {
                failed += 1
                reportFailure(file, error, json: json)
            }
        }
        if failed > 0 { throw ExitCode(ExitStatus.inputFailed.rawValue) }
    }
}

struct SplitModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Write the device half of a model: encoder, entropy-bottleneck tables, config and fingerprint.",
        discussion: "The device file is all a device needs to run `ladon encode` / `ladon send` (the SC2 \"encoder size\"); its packets match the server that loads the whole model.")

    @Argument(help: "A whole model file from `ladon convert`.")
    var model: String

    @Option(name: .customLong("device"), help: "Device file to write (.safetensors).")
    var devicePath: String

    func run() throws {
        let file: LadonModelFile
        do { file = try LadonModelFile(path: model) } catch { throw CLIError("cannot load model \(model): \(error)", status: .model) }
        let data = try file.deviceFile()
        try data.write(to: URL(fileURLWithPath: devicePath), options: .atomic)
        // Check what was written loads as a device half with the same id.
        let device = try DeviceHalf(path: devicePath)
        guard device.modelID == file.modelID else { throw CLIError("the device file's model id does not match \(model)") }
        let size = file.encoderSize
        print("""
            \(devicePath): \(data.count) bytes (device half of \(model), model id \(file.modelID.hexString))
            encoder size: \(size.totalBytes) bytes = \(size.totalBits) bits = \(String(format: "%.4f", Double(size.totalBytes) / 1_048_576)) MiB (encoder \(size.encoderBytes) B + entropy bottleneck \(size.entropyBottleneckBytes) B)
            """)
    }
}
