// The device's HTTP client for the edge service: posts latent packets, reads results and errors.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LadonCore

/// Talks to `ladon serve` over HTTP: on Linux `http://` over a plain socket (``PlainHTTP``), otherwise with Foundation's
/// `URLSession` (no other dependency, so it builds for iOS).
///
/// ```swift
/// let client = EdgeClient(server: URL(string: "http://edge.local:8080")!)
/// let answer = try await client.infer(LatentPacket(try device.encode(rgb: pixels, width: w, height: h)))
/// answer.result.classification?.top5; answer.serverTiming["compute"]
/// ```
public struct EdgeClient: Sendable {
    public let server: URL
    /// Sent as `Authorization: Bearer <token>` when the server was started with `--token-file`.
    public var token: String?
    /// Seconds to wait for an answer.
    public var timeout: TimeInterval

    public init(server: URL, token: String? = nil, timeout: TimeInterval = 60) {
        self.server = server
        self.token = token
        self.timeout = timeout
    }

    /// One answer of the server.
    public struct Answer: Sendable {
        public var result: InferenceSummary
        /// The `Server-Timing` header: metric name → milliseconds (`queue`, `compute`, and the model's stages).
        public var serverTiming: [String: Double]
        /// Seconds from sending the request to having read the whole answer.
        public var roundTrip: Double
        public var requestBytes: Int
    }

    /// Posts a packet to `/v1/infer`. `mask: true` asks for the class-id mask as a base64 PNG.
    public func infer(_ packet: LatentPacket, mask: Bool = false) async throws(EdgeClientError) -> Answer {
        try await post(path: EdgeAPI.inferPath + (mask ? "?mask=png" : ""), body: packet.serialized(),
                       contentType: EdgeAPI.packetContentType)
    }

    /// Posts an encoded image (JPEG or PNG bytes) to `/v1/infer-image`: both halves run on the server.
    public func inferImage(_ bytes: [UInt8], contentType: String = "application/octet-stream",
                           mask: Bool = false) async throws(EdgeClientError) -> Answer {
        try await post(path: EdgeAPI.inferImagePath + (mask ? "?mask=png" : ""), body: bytes, contentType: contentType)
    }

    /// `GET /v1/model`.
    public func model() async throws(EdgeClientError) -> ModelDescription {
        let (data, _) = try await send(request(path: EdgeAPI.modelPath, method: "GET"))
        return try decode(ModelDescription.self, data)
    }

    // MARK: Plumbing

    private func post(path: String, body: [UInt8], contentType: String) async throws(EdgeClientError) -> Answer {
        var req = request(path: path, method: "POST")
        req.setValue(contentType, forHTTPHeaderField: "Content-Type")
        req.httpBody = Data(body)
        let start = ContinuousClock.now
        let (data, serverTiming) = try await send(req)
        let elapsed = ContinuousClock.now - start
        let summary = try decode(InferenceSummary.self, data)
        return Answer(result: summary, serverTiming: Self.parseServerTiming(serverTiming), roundTrip: elapsed.seconds,
                      requestBytes: body.count)
    }

    private func request(path: String, method: String) -> URLRequest {
        var req = URLRequest(url: URL(string: path, relativeTo: server)!.absoluteURL, timeoutInterval: timeout)
        req.httpMethod = method
        if let token { req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return req
    }

    /// The body and `Server-Timing` header of a 2xx answer to `req`; any other status is ``EdgeClientError/server``.
    private func send(_ req: URLRequest) async throws(EdgeClientError) -> (Data, serverTiming: String?) {
        let (status, data, header) = try await exchange(req)
        guard (200..<300).contains(status) else {
            let body = try? InferenceSummary.jsonDecoder().decode(APIErrorBody.self, from: data)
            throw .server(status: status, code: body?.error.code ?? "http_\(status)",
                          message: body?.error.message ?? String(decoding: data.prefix(200), as: UTF8.self),
                          retryAfter: header("Retry-After").flatMap { Int($0) })
        }
        return (data, header("Server-Timing"))
    }

    /// Status, body and a header lookup for `req`. On Linux an `http://` request goes over ``PlainHTTP`` on a thread of
    /// its own (swift-corelibs-foundation's URLSession busy-waits for the answer: about a core for the whole wait);
    /// `https://`, and every request on Apple platforms, over `URLSession`.
    private func exchange(_ req: URLRequest) async throws(EdgeClientError) -> (Int, Data, (String) -> String?) {
        let what = "\(req.httpMethod ?? "") \(req.url?.absoluteString ?? "")"
        #if os(Linux)
        if let url = req.url, url.scheme?.lowercased() == "http" {
            let headers = (req.allHTTPHeaderFields ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            let (method, body, timeout) = (req.httpMethod ?? "GET", req.httpBody ?? Data(), req.timeoutInterval)
            let result: Result<PlainHTTP.Response, PlainHTTP.Failure> = await withCheckedContinuation { done in
                Thread.detachNewThread {
                    done.resume(returning: Result { () throws(PlainHTTP.Failure) in
                        try PlainHTTP.exchange(method, url, headers: headers, body: body, timeout: timeout)
                    })
                }
            }
            switch result {
            case .success(let r): return (r.status, r.body, { r.header($0) })
            case .failure(.transport(let m)): throw .transport("\(what): \(m)")
            case .failure(.badResponse(let m)): throw .badResponse(m)
            }
        }
        #endif
        let data: Data, response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: req)
        } catch {
            throw .transport("\(what): \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else { throw .badResponse("not an HTTP response") }
        return (http.statusCode, data, { http.value(forHTTPHeaderField: $0) })
    }

    private func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws(EdgeClientError) -> T {
        do { return try InferenceSummary.jsonDecoder().decode(type, from: data) } catch {
            throw .badResponse("cannot read the server's \(type) JSON: \(error)")
        }
    }

    /// Parses `Server-Timing: queue;dur=1.2, compute;dur=640.1` into name → milliseconds.
    public static func parseServerTiming(_ header: String?) -> [String: Double] {
        var out: [String: Double] = [:]
        for metric in (header ?? "").split(separator: ",") {
            let parts = metric.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let name = parts.first, !name.isEmpty else { continue }
            for p in parts.dropFirst() where p.hasPrefix("dur=") { out[name] = Double(p.dropFirst(4)) }
        }
        return out
    }
}

/// Why a request to the edge service failed.
public enum EdgeClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered with an error status and body (`code` as in docs/deployment.md).
    case server(status: Int, code: String, message: String, retryAfter: Int?)
    /// No answer: connection refused, reset, timed out.
    case transport(String)
    /// An answer that is not what the API promises.
    case badResponse(String)

    public var description: String {
        switch self {
        case .server(let status, let code, let message, let retryAfter):
            return "server answered \(status) \(code): \(message)" + (retryAfter.map { " (retry after \($0) s)" } ?? "")
        case .transport(let m): return "cannot reach the server: \(m)"
        case .badResponse(let m): return "unreadable answer: \(m)"
        }
    }
}
