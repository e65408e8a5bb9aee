// A plain TCP client for loopback HTTP tests: requests URLSession will not send (abrupt disconnects, broken HTTP),
// and every request of a test that must not use FoundationNetworking on Linux. A URLSession that is created and
// invalidated per test races its DispatchSource teardown against libcurl's socket close there (the
// swift-corelibs-foundation `_MultiHandle` crash family: a fault in libdispatch's `_dispatch_event_loop_drain`),
// which crashed a whole `swift test` run once on an AVX-512 session machine.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// One blocking TCP connection to `127.0.0.1:port`.
public struct RawHTTPConnection {
    public let fd: Int32

    /// Connects, with a receive timeout of `timeoutSeconds` (generous: in a full parallel `swift test` on 2 cores a
    /// service suite took 171 s against 3.3 s alone, and a half-closed request's answer once took over 20 s).
    public init(port: Int, timeoutSeconds: Int = 90) throws {
        #if canImport(Glibc)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            _ = closeSocket(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    public func send(_ bytes: [UInt8]) {
        #if canImport(Glibc)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        #else
        _ = bytes.withUnsafeBytes { Darwin.send(fd, $0.baseAddress, $0.count, 0) }
        #endif
    }

    /// Everything until the server closes (or the receive timeout).
    public func readAll() -> String {
        var out = [UInt8](), buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Closes with a reset (SO_LINGER 0), as a client that crashed or timed out hard.
    public func reset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        _ = closeSocket(fd)
    }

    public func halfClose() { shutdown(fd, Int32(SHUT_WR)) }
    public func close() { _ = closeSocket(fd) }

    /// A `POST` with `Connection: close`, so the answer ends where the server closes.
    public static func post(_ path: String, body: [UInt8], contentType: String) -> [UInt8] {
        Array("POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body
    }

    /// A `GET` with `Connection: close`.
    public static func get(_ path: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
    }

    /// Sends `request` on a new connection and reads the whole answer: its status code (0 when there was no status
    /// line) and its body. Blocking: call it off the cooperative pool for requests that take long.
    public static func exchange(port: Int, _ request: [UInt8], timeoutSeconds: Int = 90) throws -> (status: Int, body: String) {
        let connection = try RawHTTPConnection(port: port, timeoutSeconds: timeoutSeconds)
        defer { connection.close() }
        connection.send(request)
        let answer = connection.readAll()
        let status = answer.split(separator: "\r\n", maxSplits: 1).first
            .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
        let body = answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) } ?? ""
        return (status, body)
    }
}

private func closeSocket(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    Glibc.close(fd)
    #else
    Darwin.close(fd)
    #endif
}
