// The edge server over a real TCP connection on loopback: results equal the in-process server half; bad input
// gets an error response or a closed connection, never a crash, and the server keeps serving.
import Foundation
import NIOCore
import Testing
@testable import EdgeSplit
@testable import LadonCore

@Suite(.serialized) struct EdgeServerTests {
    /// Runs `body` against a server on 127.0.0.1 with an OS-assigned port, then stops the server.
    func withServer(_ body: @Sendable (Int) async throws -> Void) async throws {
        let server = EdgeServer(server: try ServerHalf(path: TinyModel.path), port: 0)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run(onBound: { continuation.yield($0); continuation.finish() }) }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await body(port)
            group.cancelAll()
        }
    }

    func packet() throws -> LatentPacket {
        let image = try SafeTensorsFile(path: TinyModel.casePath).tensor("image")
        return try DeviceHalf(path: TinyModel.path).encode(image)
    }

    @Test func resultsOverTCPEqualTheInProcessServerHalf() async throws {
        let packet = try packet()
        let local = try ServerHalf(path: TinyModel.path)
        let expected = try local.run(packet)
        try await withServer { port in
            let responses = try await EdgeClient.send([packet, packet], host: "127.0.0.1", port: port)
            #expect(responses.count == 2)
            for r in responses {
                #expect(r.status == "ok", "\(r.error ?? "")")
                let result = try #require(r.result)
                #expect(result.compressedSha256 == SHA256.hash(expected.compressed).hexString)
                #expect(result.detection.count == expected.detections.count)
                #expect(result.classification?.top5.map(\.index) ==
                        InferenceSummary.topClasses(expected.classificationLogits!, k: 5, labels: local.model.labels.imagenet).map(\.index))
                #expect(result.latent.channels == 4 && result.image.width == 75)
            }
        }
    }

    @Test func badPacketsGetErrorsAndTheConnectionStaysUsable() async throws {
        let good = try packet().serialized()
        var flipped = good
        flipped[flipped.count / 2] ^= 0x01
        let damaged = flipped
        try await withServer { port in
            let responses = try await EdgeClient.sendFrames([[1, 2, 3], damaged, good], host: "127.0.0.1", port: port)
            #expect(responses.map(\.status) == ["error", "error", "ok"])
            #expect(responses[0].error?.contains("truncated") == true)
            #expect(responses[1].error?.contains("checksum") == true)
        }
    }

    @Test func oversizedFramesCloseOnlyThatConnection() async throws {
        let good = try packet().serialized()
        try await withServer { port in
            // A hostile length prefix (4 GiB) must not make the server allocate it: the connection is closed
            // without an answer, and the next connection is served normally.
            let hostile = try await rawExchange(port: port, bytes: [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
            #expect(hostile.isEmpty)
            let after = try await EdgeClient.sendFrames([good], host: "127.0.0.1", port: port)
            #expect(after.first?.status == "ok")
        }
    }

    /// Writes raw bytes on a fresh connection and returns whatever comes back before the server closes it.
    func rawExchange(port: Int, bytes: [UInt8]) async throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? Array(buffer[0..<n]) : []
    }
}
