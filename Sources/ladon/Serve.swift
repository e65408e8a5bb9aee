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

    @OptionGroup var options: ModelOptions

    @Option(help: "Address to listen on (use 0.0.0.0 to accept other machines).")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 picks a free one).")
    var port = 7474

    func run() async throws {
        let server = try options.load { try ServerHalf(path: $0) }
        let host = self.host, path = try ModelLocator.resolve(options.model)
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

    @OptionGroup var options: ModelOptions

    func run() async throws {
        let parts = server.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw ValidationError("--server must be HOST:PORT, got \(server)")
        }
        let device = try options.load { try DeviceHalf(path: $0) }
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
