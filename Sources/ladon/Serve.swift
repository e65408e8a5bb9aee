// `ladon serve` / `ladon send`: the two halves on two machines, over HTTP (docs/deployment.md).
import ArgumentParser
import EdgeService
import EdgeSplit
import Foundation
import LadonCore
import LadonImage
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Server half as an HTTP service: POST latent packets to /v1/infer, get the three tasks as JSON.",
        discussion: """
            Routes: POST /v1/infer (body: a latent packet), POST /v1/infer-image (body: JPEG/PNG, both halves on the
            server), GET /v1/model, /healthz, /readyz, /metrics (Prometheus). SIGTERM/SIGINT stop accepting, finish the
            requests in flight (up to --drain-timeout) and exit 0. Plain HTTP: put TLS in a reverse proxy
            (docs/deployment.md).
            """)

    @OptionGroup var options: ModelOptions

    @Option(help: "Address to listen on (0.0.0.0 accepts other machines).")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 picks a free one).")
    var port = 8080

    @Option(help: "Inference workers (each runs one request at a time).")
    var workers = 1

    @Option(name: .customLong("io-threads"), help: "Event-loop threads for HTTP.")
    var ioThreads = 1

    @Option(help: "Requests that may wait for a worker; more are answered 503 with Retry-After.")
    var queue = 8

    @Option(name: .customLong("max-body"), help: "Largest request body in bytes.")
    var maxBody = 4 << 20

    @Option(name: .customLong("max-image-pixels"), help: "Largest image /v1/infer-image decodes, in pixels (about 30 bytes each at the peak).")
    var maxImagePixels = 32_000_000

    @Option(name: .customLong("max-packet-pixels"), help: "Largest original image size a packet may claim, in pixels.")
    var maxPacketPixels = ServerHalf.defaultMaxOriginalPixels

    @Option(name: .customLong("max-connections"), help: "Open connections served at once.")
    var maxConnections = 256

    @Option(name: .customLong("read-timeout"), help: "Seconds a request's head and body may take to arrive.")
    var readTimeout = 15.0

    @Option(name: .customLong("idle-timeout"), help: "Seconds an idle keep-alive connection stays open.")
    var idleTimeout = 60.0

    @Option(help: "Seconds a request may wait for a worker before it is answered 503.")
    var deadline = 30.0

    @Option(name: .customLong("drain-timeout"), help: "Seconds SIGTERM waits for requests in flight.")
    var drainTimeout = 30.0

    @Option(name: .customLong("token-file"), help: "File holding a bearer token that /v1/* requests must send.")
    var tokenFile: String?

    @Option(help: "Passes of a synthetic photo each worker runs before the port opens, so the first request is not slower (0 skips).")
    var warmup = 1

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default: info).",
            transform: oneOf("--log-level"))
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard workers >= 1, ioThreads >= 1, queue >= 0, maxBody >= 1024, maxImagePixels >= 1, maxPacketPixels >= 1, maxConnections >= 1, warmup >= 0 else {
            throw ValidationError("--workers, --io-threads, --max-connections must be ≥ 1, --queue and --warmup ≥ 0, --max-body ≥ 1024")
        }
        guard [readTimeout, idleTimeout, deadline, drainTimeout].allSatisfy({ $0 > 0 && $0 < 86_400 }) else {
            throw ValidationError("timeouts must be between 0 and 86400 seconds")
        }
    }

    func run() async throws {
        var config = EdgeService.Configuration(host: host, port: port)
        config.workers = workers
        config.ioThreads = ioThreads
        config.queue = queue
        config.maxBody = maxBody
        config.maxImagePixels = maxImagePixels
        config.maxConnections = maxConnections
        config.maxPacketPixels = maxPacketPixels
        config.readTimeout = .milliseconds(Int64(readTimeout * 1000))
        config.idleTimeout = .milliseconds(Int64(idleTimeout * 1000))
        config.deadline = .milliseconds(Int64(deadline * 1000))
        config.drainTimeout = .milliseconds(Int64(drainTimeout * 1000))
        config.logLevel = logLevel
        config.token = try tokenFile.map(readToken)
        config.warmupPasses = warmup
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let finalConfig = config
        let path = try ModelLocator.resolve(options.model)
        let service = try options.load { try EdgeService(modelPath: $0, configuration: finalConfig) }
        let host = self.host
        try await service.run { bound in
            let authority = EdgeAPI.authority(host: host, port: bound)
            FileHandle.standardError.write(Data("ladon: serving \(path) on http://\(authority) (model \(service.model.modelId))\n".utf8))
        }
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Device half over HTTP: encode images here, post the packets to `ladon serve`, print the answers as JSON lines.",
        discussion: "Each line: file, status, encodeMs, packetBytes, roundTripMs, serverTiming (ms by stage) and the result (the fields of `ladon infer --json`) or the error.")

    @Argument(help: "JPEG or PNG images.")
    var images: [String]

    @Option(help: "Server URL.")
    var server = "http://127.0.0.1:8080"

    @Option(help: "Requests in flight at once.")
    var concurrency = 1

    @Option(name: .customLong("token-file"), help: "File holding the server's bearer token.")
    var tokenFile: String?

    @Option(name: .customLong("pixel-limit"), help: "Refuse images with more pixels than this (default \(ImageDecoder.devicePixelLimit)).")
    var pixelLimit = ImageDecoder.devicePixelLimit

    @OptionGroup var options: ModelOptions

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard pixelLimit >= 1 else { throw ValidationError("--pixel-limit must be at least 1") }
        guard let url = URL(string: server), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw ValidationError("--server must be a URL like http://HOST:PORT, got \(server)")
        }
    }

    struct Line: Encodable {
        enum Status: String, Encodable { case ok, error }
        var file: String
        var status: Status
        var encodeMs: Double?
        var packetBytes: Int?
        var roundTripMs: Double?
        var serverTiming: [String: Double]?
        var result: InferenceSummary?
        var error: APIErrorBody.Detail?
    }

    func run() async throws {
        let device = try options.load { try DeviceHalf(path: $0) }
        let client = EdgeClient(server: URL(string: server)!, token: try tokenFile.map(readToken))
        let encoder = InferenceSummary.jsonEncoder()
        var failed = 0, unreachable = 0
        // Bounded fan-out: at most `concurrency` images encoded and in flight; answers print in input order.
        try await withThrowingTaskGroup(of: (Int, Line).self) { group in
            var next = 0, printed = 0
            var pending: [Int: Line] = [:]
            func start() {
                guard next < images.count else { return }
                let (index, file) = (next, images[next])
                next += 1
                let limit = pixelLimit
                group.addTask { (index, await Self.send(file, device: device, client: client, pixelLimit: limit)) }
            }
            for _ in 0..<concurrency { start() }
            while let (index, line) = try await group.next() {
                pending[index] = line
                while let ready = pending.removeValue(forKey: printed) {
                    if ready.status != .ok { failed += 1 }
                    if ready.error?.code == "transport" { unreachable += 1 }
                    print(String(decoding: try encoder.encode(ready), as: UTF8.self))
                    printed += 1
                }
                start()
            }
        }
        if unreachable > 0 { throw ExitCode(ExitStatus.server.rawValue) }
        if failed > 0 { throw ExitCode(ExitStatus.inputFailed.rawValue) }
    }

    static func send(_ file: String, device: DeviceHalf, client: EdgeClient, pixelLimit: Int) async -> Line {
        let start = ContinuousClock.now
        let packet: LatentPacket
        do {
            let rgb = try ImageDecoder.decode(contentsOf: file, pixelLimit: pixelLimit)
            packet = LatentPacket(try device.encode(rgb: rgb.pixels, width: rgb.width, height: rgb.height))
        } catch {
            return Line(file: file, status: .error, error: .init(code: "encode_failed", message: "\(error)"))
        }
        let d = ContinuousClock.now - start
        let encodeMs = (d.seconds * 100_000).rounded() / 100
        let bytes = packet.serialized().count
        do {
            var answer = try await client.infer(packet)
            answer.result.file = file
            return Line(file: file, status: .ok, encodeMs: encodeMs, packetBytes: bytes,
                        roundTripMs: (answer.roundTrip * 100_000).rounded() / 100,
                        serverTiming: answer.serverTiming, result: answer.result)
        } catch {
            let detail: APIErrorBody.Detail
            if case .server(_, let code, let message, _) = error { detail = .init(code: code, message: message) } else {
                detail = .init(code: "transport", message: "\(error)")
            }
            return Line(file: file, status: .error, encodeMs: encodeMs, packetBytes: bytes, error: detail)
        }
    }
}

/// The bearer token in a `--token-file` (surrounding whitespace removed; an empty file is an error).
func readToken(_ path: String) throws -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("cannot read --token-file \(path)") }
    let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !token.isEmpty else { throw CLIError("--token-file \(path) is empty") }
    return token
}
