// `ladon bench`: stage timings on this machine and end-to-end latency against link rate for the three scenarios.
import ArgumentParser
import EdgeSplit
import Foundation
import LadonCore
import LadonEval
import LadonImage

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time every stage on this machine and model latency against bandwidth: local computing, full offloading, split computing.",
        discussion: """
            Each image runs --warmup untimed and --runs timed passes of every stage (--timing isolated: each stage \
            --warmup then --runs times on its own before the next). The latency model (README, \
            "Latency against bandwidth") uses the stage medians: transfer = 8 x bytes / rate; device stages are \
            multiplied by --device-slowdown; offloading and split add --rtt once.
            """)

    @Argument(help: "JPEG or PNG images to measure on (at least one); a folder adds its images recursively, `-` reads paths from stdin, @FILE from a list file.")
    var images: [String] = []

    @Option(help: "Link rates, comma-separated, decimal SI units bps/kbps/Mbps/Gbps.")
    var rates = "37.5kbps,250kbps,1Mbps,5Mbps,50Mbps"

    @Option(help: "Heads that count in the latency: all, classification, detection or segmentation (default: all).",
            transform: oneOf("--task"))
    var task: BenchTasks = .all

    @Option(name: .customLong("device-slowdown"), help: "How many times slower the device is than this machine (device stages are multiplied by it).")
    var deviceSlowdown = 1.0

    @Option(help: "Round-trip time in milliseconds, added once to full offloading and split computing.")
    var rtt = 0.0

    @Option(name: .customLong("response-bytes"), help: "Bytes of the answer sent back, counted at the link rate in both offloading scenarios (0: not counted).")
    var responseBytes = 0

    @Option(name: .customLong("jpeg-quality"), help: "Quality of the JPEG sent in full offloading (1...100).")
    var jpegQuality = StageBenchmark.defaultJPEGQuality

    @Option(help: "Untimed passes per image before timing.")
    var warmup = 2

    @Option(help: "Timed passes per image.")
    var runs = 10

    @Option(help: "pipeline: whole passes, each stage with the caches the stage before it left, as `ladon infer` and the service run them; isolated: each stage rerun on its own before the next (warm caches), as single-stage benchmarks such as ONNX Runtime's time a model part (default: pipeline).",
            transform: oneOf("--timing"))
    var timing: StageTiming = .pipeline

    @Option(name: .customLong("device-power"), help: "Device power in watts while computing (with --radio-power: report a modelled device energy, E = P x t).")
    var devicePower: Double?

    @Option(name: .customLong("radio-power"), help: "Radio power in watts while sending (with --device-power).")
    var radioPower: Double?

    @Flag(help: "Print one JSON object (README, \"Latency against bandwidth\") instead of the tables.")
    var json = false

    @Option(help: "Write a chart of latency against rate (SVG).")
    var plot: String?

    @OptionGroup var options: ModelOptions

    @Option(name: .customLong("pixel-limit"), help: "Refuse images with more pixels than this (default \(ImageDecoder.devicePixelLimit)).")
    var pixelLimit = ImageDecoder.devicePixelLimit

    func validate() throws {
        do { _ = try DataRate.list(parsing: rates) } catch { throw ValidationError("--rates: \(error.description)") }
        guard deviceSlowdown.isFinite, deviceSlowdown > 0 else { throw ValidationError("--device-slowdown must be above 0") }
        guard rtt.isFinite, rtt >= 0 else { throw ValidationError("--rtt must be 0 or more milliseconds") }
        guard responseBytes >= 0 else { throw ValidationError("--response-bytes must be 0 or more") }
        guard (1...100).contains(jpegQuality) else { throw ValidationError("--jpeg-quality must be in 1...100") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard (devicePower == nil) == (radioPower == nil) else {
            throw ValidationError("give both --device-power and --radio-power, or neither")
        }
        for watts in [devicePower, radioPower].compactMap({ $0 }) where !(watts.isFinite && watts >= 0) {
            throw ValidationError("power figures must be 0 or more watts")
        }
        guard pixelLimit >= 1 else { throw ValidationError("--pixel-limit must be at least 1") }
    }

    func run() throws {
        let rateList = try DataRate.list(parsing: rates)
        let paths = try Inputs.expand(images, extensions: Inputs.imageExtensions)
        guard !paths.isEmpty else {
            throw CLIError("give at least one JPEG or PNG image to measure on (sizes and times depend on the image)", status: .usage)
        }
        let model = try options.load { try LadonModel(path: $0) }
        let modelPath = try ModelLocator.resolve(options.model)
        var decoded: [(file: String, image: RGBImage)] = []
        for path in paths {
            do { decoded.append((path, try ImageDecoder.decode(contentsOf: path, pixelLimit: pixelLimit))) } catch {
                throw CLIError("\(path): \(error)", status: .inputFailed)
            }
        }
        let benchmark = StageBenchmark(warmupRuns: warmup, timedRuns: runs, jpegQuality: jpegQuality, timing: timing)
        let measurement = try benchmark.measure(model: model, images: decoded) { LatentPacket($0).serialized().count }
        let latency = LatencyModel(profile: measurement.profile, tasks: task, deviceSlowdown: deviceSlowdown,
                                   roundTrip: rtt / 1000, responseBytes: Double(responseBytes))
        let power = devicePower.flatMap { d in radioPower.map { PowerModel(deviceWatts: d, radioWatts: $0) } }
        let context = BenchReport.Context(modelPath: modelPath, fingerprint: model.fingerprint, threads: Kernels.threadCount,
                                          jpegQuality: jpegQuality, warmupRuns: warmup, timedRuns: runs,
                                          gemmKernel: Kernels.gemmKernelName, timing: timing)
        let report = BenchReport(context: context, measurement: measurement, model: latency, rates: rateList, power: power)
        if let plot {
            do { try report.chart().render().write(toFile: plot, atomically: true, encoding: .utf8) } catch {
                throw CLIError("cannot write the chart to \(plot): \(error.localizedDescription)")
            }
        }
        print(json ? report.json() : report.text() + (plot.map { "\nChart: \($0)" } ?? ""))
    }
}
