// `ladon serve` / `ladon send`: the two halves on two machines, over TCP (length-prefixed packets, JSON answers).
import ArgumentParser
import EdgeSplit
import Foundation
import LadonCore
import LadonImage

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Server half over TCP: decode latent packets from devices and answer with the results as JSON.",
        discussion: "Frames are a 4-byte big-endian length and a packet (docs/wire-format.md); each gets one JSON answer.")

    @Option(help: "Model file (default: $LADON_MODEL, then \(ModelLocator.defaultPath)).")
    var model: String?

    @Option(help: "Address to listen on (use 0.0.0.0 to accept other machines).")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 picks a free one).")
    var port = 7474

    @Option(help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    func run() async throws {
        if let threads { Kernels.threadCount = max(1, threads) }
        let path = try ModelLocator.resolve(model)
        let server = try ServerHalf(path: path)
        let host = self.host
        try await EdgeServer(server: server, host: host, port: port).run { bound in
            FileHandle.standardError.write(Data("ladon: serving \(path) on \(host):\(bound)\n".utf8))
        }
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Device half over TCP: encode images and send them to `ladon serve`; prints the answers (JSON lines).")

    @Argument(help: "JPEG or PNG images.")
    var images: [String]

    @Option(help: "Server address as HOST:PORT.")
    var server = "127.0.0.1:7474"

    @Option(help: "Model file (the one the server runs; default: $LADON_MODEL, then \(ModelLocator.defaultPath)).")
    var model: String?

    func run() async throws {
        let parts = server.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw ValidationError("--server must be HOST:PORT, got \(server)")
        }
        let device = try DeviceHalf(path: try ModelLocator.resolve(model))
        var packets: [LatentPacket] = []
        for image in images {
            packets.append(try device.encode(try ImageDecoder.decode(contentsOf: image).toTensor()))
        }
        let answers = try await EdgeClient.send(packets, host: String(parts[0]), port: port)
        let encoder = InferenceSummary.jsonEncoder()
        var failed = false
        for (image, var answer) in zip(images, answers) {
            answer.result?.file = image
            failed = failed || answer.status != "ok"
            print(String(decoding: try encoder.encode(answer), as: UTF8.self))
        }
        if failed { throw ExitCode(1) }
    }
}
