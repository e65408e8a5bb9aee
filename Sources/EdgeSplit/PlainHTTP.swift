// One HTTP/1.1 exchange over a plain TCP socket, for `http://` servers on Linux: swift-corelibs-foundation's URLSession
// busy-waits there while an answer is pending (about one core of CPU for the whole wait: 0.73–0.90 CPU-seconds over
// a one-second inference, most of it in the kernel), which a battery-powered device pays for every packet and which,
// on a machine shared with the server, took half of the server's cores.
import Foundation
#if canImport(Glibc)
import Glibc
private let systemConnect = Glibc.connect
#elseif canImport(Darwin)
import Darwin
private let systemConnect = Darwin.connect
#endif

/// A blocking HTTP/1.1 client for one request per connection (`Connection: close`): `poll` waits for the socket with
/// the time left before the deadline, so waiting costs no CPU. Answers with `Content-Length`, chunked bodies and bodies
/// up to the close are read; anything malformed, larger than `maxResponseBytes` or later than the deadline is an error.
enum PlainHTTP {
    /// What the server answered.
    struct Response {
        var status: Int
        /// Header fields in order, names as sent.
        var headers: [(name: String, value: String)]
        var body: Data

        /// The first field named `name` (case-insensitive).
        func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
    }

    /// Why an exchange failed: a message for ``EdgeClientError/transport(_:)`` or ``EdgeClientError/badResponse(_:)``.
    enum Failure: Error {
        case transport(String)
        case badResponse(String)
    }

    /// Largest answer read (the biggest real one, a JSON result with a base64 mask of a large image, is a few MB).
    static let defaultMaxResponseBytes = 64 << 20
    /// Largest status line plus header block.
    static let maxHeaderBytes = 64 << 10

    /// Sends `method` `url` with `headers` (plus `Host`, `Content-Length` and `Connection: close`) and `body`, and
    /// reads the whole answer, all within `timeout` seconds.
    static func exchange(_ method: String, _ url: URL, headers: [(String, String)], body: Data,
                         timeout: TimeInterval, maxResponseBytes: Int = defaultMaxResponseBytes) throws(Failure) -> Response {
        guard url.scheme?.lowercased() == "http", let host = url.host, !host.isEmpty else {
            throw .transport("only http:// URLs with a host are sent over a plain socket: \(url.absoluteString)")
        }
        for (name, value) in headers where (name + value).contains(where: { $0 == "\r" || $0 == "\n" }) || name.isEmpty {
            throw .transport("header \(name.debugDescription) has a line break in it or no name")
        }
        let port = url.port ?? 80
        let deadline = ContinuousClock.now + .milliseconds(Int64(max(0, timeout) * 1000))
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let fd = try connect(host: bare, port: port, deadline: deadline)
        defer { close(fd) }
        let components = URLComponents(url: url, resolvingAgainstBaseURL: true)
        let path = components?.percentEncodedPath ?? ""
        let target = (path.isEmpty ? "/" : path) + (components?.percentEncodedQuery.map { "?" + $0 } ?? "")
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(EdgeAPI.authority(host: bare, port: url.port))\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        try write(fd, Data(head.utf8) + body, deadline: deadline)
        let raw = try readToClose(fd, deadline: deadline, limit: maxResponseBytes + maxHeaderBytes)
        return try parse(raw, maxBodyBytes: maxResponseBytes)
    }

    // MARK: Socket

    /// Milliseconds left before `deadline` for `poll`, or a timeout failure.
    private static func millisecondsLeft(_ deadline: ContinuousClock.Instant, _ doing: String) throws(Failure) -> Int32 {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { throw .transport("timed out \(doing)") }
        let ms = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1
        return Int32(clamping: ms)
    }

    /// Waits until `fd` is ready for `events` or the deadline passes.
    private static func wait(_ fd: Int32, _ events: Int16, _ deadline: ContinuousClock.Instant, _ doing: String) throws(Failure) {
        while true {
            var p = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&p, 1, try millisecondsLeft(deadline, doing))
            if n > 0 { return }
            if n < 0 && errno != EINTR { throw .transport("\(doing): \(String(cString: strerror(errno)))") }
        }
    }

    /// A connected, non-blocking TCP socket to the first address of `host` that answers before the deadline.
    private static func connect(host: String, port: Int, deadline: ContinuousClock.Instant) throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw .transport("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let a = entry {
            entry = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            #if canImport(Darwin)
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            if systemConnect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
            if errno == EINPROGRESS {
                do throws(Failure) {
                    try wait(fd, Int16(POLLOUT), deadline, "connecting to \(host):\(port)")
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0 { return fd }
                    lastError = String(cString: strerror(error))
                } catch {
                    close(fd)
                    throw error
                }
            } else {
                lastError = String(cString: strerror(errno))
            }
            close(fd)
        }
        throw .transport("cannot connect to \(host):\(port): \(lastError)")
    }

    private static func write(_ fd: Int32, _ data: Data, deadline: ContinuousClock.Instant) throws(Failure) {
        #if canImport(Glibc)
        let flags = Int32(MSG_NOSIGNAL)
        #else
        let flags: Int32 = 0
        #endif
        let result: Failure? = data.withUnsafeBytes { raw -> Failure? in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, flags)
                if n > 0 { sent += n; continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    do throws(Failure) { try wait(fd, Int16(POLLOUT), deadline, "sending the request") } catch { return error }
                    continue
                }
                return .transport("sending the request: \(String(cString: strerror(errno)))")
            }
            return nil
        }
        if let result { throw result }
    }

    /// What the server sends until the answer is complete (its `Content-Length` or last chunk read) or the server
    /// closes the connection (it should after answering `Connection: close`; one that keeps it open is not waited for).
    private static func readToClose(_ fd: Int32, deadline: ContinuousClock.Instant, limit: Int) throws(Failure) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n == 0 { return out }
            if n > 0 {
                out.append(contentsOf: chunk[0..<n])
                if out.count > limit { throw .badResponse("the answer is longer than \(limit) bytes") }
                if isComplete(out) { return out }
                continue
            }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                try wait(fd, Int16(POLLIN), deadline, "waiting for the answer")
                continue
            }
            throw .transport("reading the answer: \(String(cString: strerror(errno)))")
        }
    }

    // MARK: Parsing

    /// Whether `raw` holds a whole answer whose end does not depend on the connection closing: a header with a valid
    /// `Content-Length` and that many bytes after it, or a chunked body up to its last chunk (or a body ``parse(_:maxBodyBytes:)``
    /// will refuse anyway).
    static func isComplete(_ raw: [UInt8]) -> Bool {
        guard let end = raw.firstRange(of: [13, 10, 13, 10] as [UInt8]) else { return false }
        let head = String(decoding: raw[..<end.lowerBound], as: UTF8.self).lowercased()
        let fields = head.components(separatedBy: "\r\n").dropFirst()
        func field(_ name: String) -> String? {
            fields.first { $0.hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
        }
        if let coding = field("transfer-encoding"), coding.contains("chunked") {
            do throws(Failure) {
                _ = try dechunk(raw[end.upperBound...], maxBodyBytes: Int.max)
                return true
            } catch {
                if case .badResponse(let message) = error, message.hasPrefix("truncated") { return false }
                return true
            }
        }
        if let length = field("content-length").flatMap({ Int($0) }) { return raw.count - end.upperBound >= length }
        return false
    }

    /// The status, header fields and body of a whole HTTP/1.1 answer (the connection closed after it).
    static func parse(_ raw: [UInt8], maxBodyBytes: Int = defaultMaxResponseBytes) throws(Failure) -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = raw.firstRange(of: separator), end.lowerBound <= maxHeaderBytes else {
            throw raw.count > maxHeaderBytes ? .badResponse("the answer's header is longer than \(maxHeaderBytes) bytes")
                                             : .badResponse("the connection closed before the answer's header ended")
        }
        let lines = String(decoding: raw[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]),
              (100...599).contains(status) else {
            throw .badResponse("not an HTTP/1.x status line: \(lines[0].prefix(80))")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw .badResponse("malformed header line: \(line.prefix(80))") }
            headers.append((String(line[..<colon]).trimmingCharacters(in: .whitespaces),
                            String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
        }
        var response = Response(status: status, headers: headers, body: Data())
        let rest = raw[end.upperBound...]
        if let coding = response.header("Transfer-Encoding"), coding.lowercased().contains("chunked") {
            response.body = try dechunk(rest, maxBodyBytes: maxBodyBytes)
        } else if let lengthText = response.header("Content-Length") {
            guard let length = Int(lengthText), length >= 0, length <= maxBodyBytes else {
                throw .badResponse("bad Content-Length: \(lengthText.prefix(40))")
            }
            guard rest.count >= length else {
                throw .badResponse("the connection closed after \(rest.count) of the answer's \(length) bytes")
            }
            response.body = Data(rest.prefix(length))
        } else {
            guard rest.count <= maxBodyBytes else { throw .badResponse("the answer is longer than \(maxBodyBytes) bytes") }
            response.body = Data(rest)
        }
        return response
    }

    /// A chunked body: hexadecimal sizes (extensions after `;` ignored), each chunk followed by CRLF, ended by a zero
    /// size (trailer fields ignored).
    private static func dechunk(_ bytes: ArraySlice<UInt8>, maxBodyBytes: Int) throws(Failure) -> Data {
        var body = Data()
        var at = bytes.startIndex
        let crlf: [UInt8] = [13, 10]
        while true {
            guard let lineEnd = bytes[at...].firstRange(of: crlf) else { throw .badResponse("truncated chunked body") }
            let sizeText = String(decoding: bytes[at..<lineEnd.lowerBound], as: UTF8.self)
                .split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard !sizeText.isEmpty, sizeText.count <= 16, let size = Int(sizeText, radix: 16), size >= 0 else {
                throw .badResponse("bad chunk size: \(sizeText.prefix(20))")
            }
            at = lineEnd.upperBound
            if size == 0 { return body }
            guard size <= maxBodyBytes - body.count else { throw .badResponse("the answer is longer than \(maxBodyBytes) bytes") }
            guard bytes.endIndex - at - 2 >= size else { throw .badResponse("truncated chunked body") }
            body.append(contentsOf: bytes[at..<at + size])
            at += size
            guard bytes[at] == 13, bytes[at + 1] == 10 else { throw .badResponse("a chunk not followed by CRLF") }
            at += 2
        }
    }
}
