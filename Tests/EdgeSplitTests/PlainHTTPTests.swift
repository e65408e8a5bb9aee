// The plain-socket HTTP/1.1 client of EdgeClient on Linux: answer parsing (lengths, chunks, damage) and exchanges with
// small loopback servers that answer in pieces, answer chunked, or never answer. The exchanges against `ladon serve`
// itself are in EdgeServiceTests, which use EdgeClient.
import Foundation
import Testing
@testable import EdgeSplit
import LadonTestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite struct PlainHTTPTests {
    private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func parsesLengthChunkedAndCloseDelimitedAnswers() throws {
        let plain = try PlainHTTP.parse(bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 5\r\n\r\nhello"))
        #expect(plain.status == 200 && String(decoding: plain.body, as: UTF8.self) == "hello")
        #expect(plain.header("Content-Length") == "5" && plain.header("CONTENT-TYPE") == "application/json")
        let chunked = try PlainHTTP.parse(bytes("HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nRetry-After: 1\r\n\r\n"
                                                + "4;ext=1\r\nwiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n"))
        #expect(chunked.status == 503 && chunked.header("retry-after") == "1")
        #expect(String(decoding: chunked.body, as: UTF8.self) == "wikipedia in\r\n\r\nchunks.")
        let toClose = try PlainHTTP.parse(bytes("HTTP/1.0 404 Not Found\r\n\r\nno such path"))
        #expect(toClose.status == 404 && String(decoding: toClose.body, as: UTF8.self) == "no such path")
    }

    @Test(arguments: [
        "",                                                            // nothing
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",                    // the header never ends
        "SSH-2.0-OpenSSH_9.2\r\n\r\n",                                 // not HTTP
        "HTTP/1.1 abc OK\r\n\r\n",                                     // status not a number
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",                    // malformed field
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",          // closed before the body ended
        "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",               // negative length
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",  // length beyond Int
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",  // chunk size not hex
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",                // truncated chunk
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",      // chunk without CRLF
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n",    // absurd chunk size
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7FFFFFFFFFFFFFFF\r\nab",   // Int.max: no overflow
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n7FFFFFFFFFFFFFFE\r\n",
    ])
    func damagedAnswersAreErrors(text: String) {
        #expect(throws: PlainHTTP.Failure.self) { try PlainHTTP.parse(Array(text.utf8)) }
    }

    /// Random damage to valid answers (bytes flipped, cut, repeated, hex digits and lengths swapped in) never traps:
    /// each parses or throws, and whatever `isComplete` says, parsing does not crash either.
    @Test func damagedAnswersNeverTrap() {
        var rng = SplitMix64(seed: 0x4854_5450)
        let valid = [bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer-Timing: compute;dur=1\r\n\r\nhello"),
                     bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n")]
        let inserts = [bytes("FFFFFFFFFFFFFFFF"), bytes("7FFFFFFFFFFFFFFE"), bytes("-1"), bytes("\r\n"), bytes(":"), bytes("99999999999999999999"), [0, 0xFF]]
        for round in 0..<3000 {
            var b = valid[round % 2]
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                guard !b.isEmpty else { break }
                let at = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 4 {
                case 0: b[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: b.removeSubrange(at...)
                case 2: b.insert(contentsOf: inserts[Int(rng.next() % UInt64(inserts.count))], at: at)
                default: b.insert(contentsOf: b[at...].prefix(8), at: at)
                }
            }
            _ = PlainHTTP.isComplete(b)
            _ = try? PlainHTTP.parse(b, maxBodyBytes: 1 << 20)
        }
    }

    @Test func hostFieldBracketsIPv6() {
        #expect(EdgeAPI.authority(host: "edge.local", port: 8080) == "edge.local:8080")
        #expect(EdgeAPI.authority(host: "::1", port: 8080) == "[::1]:8080")
        #expect(EdgeAPI.authority(host: "127.0.0.1", port: nil) == "127.0.0.1")
        let url = URL(string: "http://[::1]:8080/v1/infer")!
        let host = url.host ?? ""
        #expect(EdgeAPI.authority(host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: url.port) == "[::1]:8080")
    }

    @Test func oversizedAnswersAreRefused() {
        let header = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: PlainHTTP.maxHeaderBytes) + "\r\n\r\n"
        #expect(throws: PlainHTTP.Failure.self) { try PlainHTTP.parse(Array(header.utf8)) }
        let body = "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + String(repeating: "b", count: 2000)
        #expect(throws: PlainHTTP.Failure.self) { try PlainHTTP.parse(Array(body.utf8), maxBodyBytes: 1000) }
    }

    #if os(Linux)
    /// A loopback listener; `serve` runs on a thread for each accepted connection with the request bytes read so far.
    final class Listener: @unchecked Sendable {
        let fd: Int32
        let port: Int
        init(_ serve: @escaping @Sendable (Int32) -> Void) throws {
            let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, length) }
            }
            try #require(bound == 0 && listen(sock, 8) == 0)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &length) }
            }
            fd = sock
            port = Int(UInt16(bigEndian: address.sin_port))
            Thread.detachNewThread {
                while true {
                    let client = accept(sock, nil, nil)
                    if client < 0 { return }
                    Thread.detachNewThread { serve(client) }
                }
            }
        }
        deinit { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
    }

    /// Reads a request's head and its `Content-Length` body from `fd`; returns the head.
    static func readRequest(_ fd: Int32) -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { break }
            data += buffer[0..<n]
            if let end = data.firstRange(of: [13, 10, 13, 10]) {
                let head = String(decoding: data[..<end.lowerBound], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if data.count - end.upperBound >= length { return head }
            }
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func send(_ fd: Int32, _ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    @Test func exchangesRequestAndChunkedAnswerInPieces() throws {
        let heads = LockedBox<[String]>([])
        let server = try Listener { fd in
            heads.mutate { $0.append(Self.readRequest(fd)) }
            Self.send(fd, "HTTP/1.1 200 OK\r\nServer-Timing: compute;dur=5\r\nTransfer-Encoding: chunked\r\n\r\n")
            usleep(20_000)
            Self.send(fd, "6\r\n{\"a\":1\r\n")
            usleep(20_000)
            Self.send(fd, "1\r\n}\r\n0\r\n\r\n")
            close(fd)
        }
        let url = URL(string: "http://127.0.0.1:\(server.port)/v1/infer?mask=png")!
        let answer = try PlainHTTP.exchange("POST", url, headers: [("Content-Type", "application/vnd.ladon.packet")],
                                            body: Data([1, 2, 3]), timeout: 10)
        #expect(answer.status == 200 && String(decoding: answer.body, as: UTF8.self) == "{\"a\":1}")
        #expect(answer.header("server-timing") == "compute;dur=5")
        let head = try #require(heads.value.first)
        #expect(head.hasPrefix("POST /v1/infer?mask=png HTTP/1.1\r\n"))
        #expect(head.contains("Host: 127.0.0.1:\(server.port)\r\n") && head.contains("Content-Length: 3\r\n")
                && head.contains("Connection: close") && head.contains("Content-Type: application/vnd.ladon.packet"))
    }

    @Test func completenessDoesNotWaitForTheClose() {
        #expect(PlainHTTP.isComplete(bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")))
        #expect(!PlainHTTP.isComplete(bytes("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok")))
        #expect(PlainHTTP.isComplete(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")))
        #expect(!PlainHTTP.isComplete(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")))
        #expect(!PlainHTTP.isComplete(bytes("HTTP/1.1 200 OK\r\n\r\nuntil the close")))
        #expect(!PlainHTTP.isComplete(bytes("HTTP/1.1 200 OK\r\nContent-Le")))
        #expect(PlainHTTP.isComplete(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7FFFFFFFFFFFFFFF\r\n")) == false)
    }

    /// A server that keeps the connection open after a whole answer: the exchange returns with it, not at the timeout.
    @Test func answerIsReadWithoutWaitingForTheClose() throws {
        let server = try Listener { fd in
            _ = Self.readRequest(fd)
            Self.send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            sleep(5)
            close(fd)
        }
        let start = ContinuousClock.now
        let answer = try PlainHTTP.exchange("GET", URL(string: "http://127.0.0.1:\(server.port)/")!, headers: [], body: Data(),
                                            timeout: 4)
        #expect(answer.status == 200 && answer.body == Data("ok".utf8))
        #expect(ContinuousClock.now - start < .seconds(3))
    }

    /// A server that accepts and never answers: the exchange fails with a transport error once its timeout has passed,
    /// not before. A server that hangs up without answering is a bad answer; an `https://` URL is not for this client.
    @Test func silentClosingAndHttpsServersAreErrors() throws {
        let silent = try Listener { fd in _ = Self.readRequest(fd); sleep(5); close(fd) }
        let start = ContinuousClock.now
        #expect(throws: PlainHTTP.Failure.self) {
            try PlainHTTP.exchange("GET", URL(string: "http://127.0.0.1:\(silent.port)/")!, headers: [], body: Data(), timeout: 0.3)
        }
        #expect(ContinuousClock.now - start >= .milliseconds(300))
        let hangingUp = try Listener { fd in _ = Self.readRequest(fd); close(fd) }
        do {
            _ = try PlainHTTP.exchange("GET", URL(string: "http://127.0.0.1:\(hangingUp.port)/")!, headers: [], body: Data(),
                                       timeout: 5)
            Issue.record("an answer from a server that hung up")
        } catch .badResponse(let message) {
            #expect(message.contains("closed before"))
        } catch {
            Issue.record("\(error)")
        }
        #expect(throws: PlainHTTP.Failure.self) {
            try PlainHTTP.exchange("GET", URL(string: "https://127.0.0.1:\(hangingUp.port)/")!, headers: [], body: Data(), timeout: 1)
        }
        // A header value with a line break (a token file holding two lines) would inject fields: refused before sending.
        #expect(throws: PlainHTTP.Failure.self) {
            try PlainHTTP.exchange("GET", URL(string: "http://127.0.0.1:\(hangingUp.port)/")!,
                                   headers: [("Authorization", "Bearer a\r\nX-Injected: 1")], body: Data(), timeout: 1)
        }
    }
    #endif
}

/// A value behind a lock, for the test servers' threads.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T { lock.lock(); defer { lock.unlock() }; return stored }
    func mutate(_ body: (inout T) -> Void) { lock.lock(); body(&stored); lock.unlock() }
}
