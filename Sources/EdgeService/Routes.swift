// The HTTP routes of the edge service and the middleware around them (errors, access log, metrics).
import EdgeSplit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import LadonCore
import LadonImage
import Logging
import NIOCore

/// The request context: Hummingbird's core storage plus the connection, so queued work can see that its
/// client has gone.
struct EdgeRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// An error answer: status, stable code, message (`{"error": {"code", "message"}}`).
struct ServiceError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var retryAfter: Int? = nil

    static func badPacket(_ m: String) -> ServiceError { .init(status: .badRequest, code: "bad_packet", message: m) }
}

extension HTTPField.Name {
    static let serverTiming = HTTPField.Name("Server-Timing")!
    static let requestID = HTTPField.Name("X-Request-Id")!
}

extension EdgeService {
    /// Every route and the methods it takes (a known path with another method answers 405 with `Allow`).
    static let routes: [String: [HTTPRequest.Method]] = [
        "/healthz": [.get, .head], "/readyz": [.get, .head], "/metrics": [.get, .head],
        EdgeAPI.modelPath: [.get, .head], EdgeAPI.inferPath: [.post], EdgeAPI.inferImagePath: [.post],
    ]

    func makeRouter() -> Router<EdgeRequestContext> {
        let router = Router(context: EdgeRequestContext.self)
        router.add(middleware: AccessMiddleware(service: self))
        router.get("/healthz") { _, _ in Self.json(#"{"status":"ok"}"#) }
        router.get("/readyz") { _, _ in try self.ready() }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: self.metrics.exposition())))
        }
        router.get(RouterPath(EdgeAPI.modelPath)) { request, _ in
            try self.authorize(request)
            return try Self.json(self.model)
        }
        router.post(RouterPath(EdgeAPI.inferPath)) { request, context in try await self.inferPacket(request, context) }
        router.post(RouterPath(EdgeAPI.inferImagePath)) { request, context in try await self.inferImage(request, context) }
        return router
    }

    // MARK: Handlers

    func ready() throws -> Response {
        if startedDraining.withLockedValue({ $0 }) {
            throw ServiceError(status: .serviceUnavailable, code: "shutting_down", message: "the server is shutting down")
        }
        if queue.isFull {
            throw ServiceError(status: .serviceUnavailable, code: "busy", message: "every worker is busy and the queue is full", retryAfter: 1)
        }
        return Self.json(#"{"status":"ready"}"#)
    }

    func inferPacket(_ request: Request, _ context: EdgeRequestContext) async throws -> Response {
        let (body, withMask) = try await admit(request, contentTypes: [EdgeAPI.packetContentType, "application/octet-stream"])
        let packet: LatentPacket
        do { packet = try LatentPacket(bytes: body) } catch { throw ServiceError.badPacket("\(error)") }
        let encoded = packet.encodedImage
        do { try server.check(encoded) } catch { throw Self.serviceError(error) }
        let server = self.server
        return try await compute(context, file: "packet", mask: withMask) { () throws(ServiceError) in
            do { return try server.run(encoded) } catch { throw Self.serviceError(error) }
        }
    }

    func inferImage(_ request: Request, _ context: EdgeRequestContext) async throws -> Response {
        let (body, withMask) = try await admit(request, contentTypes: ["image/jpeg", "image/png", "application/octet-stream"])
        let limit = configuration.maxImagePixels
        let device = self.device
        let server = self.server
        return try await compute(context, file: "image", mask: withMask) { () throws(ServiceError) in
            var stopwatch = Stopwatch()
            let rgb: RGBImage
            do {
                rgb = try stopwatch.time("decode") { () throws(ImageError) in try ImageDecoder.decode(bytes: body, pixelLimit: limit) }
            } catch let error as ImageError {
                if case .tooLarge = error {
                    throw ServiceError(status: .contentTooLarge, code: "image_too_large", message: "\(error)")
                }
                throw ServiceError(status: .badRequest, code: "bad_image", message: "\(error)")
            } catch {
                throw ServiceError(status: .badRequest, code: "bad_image", message: "\(error)")
            }
            do {
                let encoded = try device.encode(rgb: rgb.pixels, width: rgb.width, height: rgb.height, stopwatch: &stopwatch)
                var result = try server.run(encoded)
                result.timings.insert(contentsOf: stopwatch.laps, at: 0)
                return result
            } catch {
                throw Self.serviceError(error)
            }
        }
    }

    /// Queues the model work, waits for it and answers with the summary JSON (and the mask when asked).
    func compute(_ context: EdgeRequestContext, file: String, mask: Bool,
                 _ work: @escaping @Sendable () throws(ServiceError) -> LadonResult) async throws -> Response {
        let channel = context.channel
        let labels = server.labels
        let outcome = await queue.run(deadline: .now + configuration.deadline, clientGone: { !channel.isActive }) {
            () -> Result<(InferenceSummary, [(String, Double)]), ServiceError> in
            do {
                let result = try work()
                var summary = InferenceSummary(file: file, result: result, labels: labels, includeLogits: false,
                                               maskAtOriginalSize: true)
                if mask, let seg = result.segmentation {
                    let g = result.geometry
                    let pixels = seg.classIDBytes(resampledFrom: g.resizedHeight, g.resizedWidth,
                                                  toHeight: g.originalHeight, width: g.originalWidth)
                    let png = try PNGEncoder.encodeGray(width: g.originalWidth, height: g.originalHeight, pixels: pixels)
                    summary.segmentation?.maskPng = Data(png).base64EncodedString()
                }
                return .success((summary, result.timings.map { ($0.stage, $0.seconds) }))
            } catch let error as ServiceError {
                return .failure(error)
            } catch {
                return .failure(ServiceError(status: .internalServerError, code: "internal", message: "\(error)"))
            }
        }
        switch outcome {
        case .failure(let refusal):
            switch refusal {
            case .full:
                metrics.refused("queue_full")
                throw busy
            case .shuttingDown:
                metrics.refused("shutting_down")
                throw ServiceError(status: .serviceUnavailable, code: "shutting_down", message: "the server is shutting down", retryAfter: 5)
            case .deadlineExceeded:
                throw ServiceError(status: .serviceUnavailable, code: "deadline_exceeded",
                                   message: "the request waited longer than the \(Int(configuration.deadline.seconds)) s deadline for a worker",
                                   retryAfter: 1)
            case .clientGone:
                throw ServiceError(status: .init(code: 499, reasonPhrase: "Client Closed Request"), code: "client_gone",
                                   message: "the client disconnected before its turn")
            }
        case .success(let (answer, timing)):
            metrics.stage("queue", seconds: timing.queued.seconds)
            metrics.stage("compute", seconds: timing.compute.seconds)
            switch answer {
            case .failure(let error):
                throw error
            case .success(let (summary, stages)):
                for (stage, seconds) in stages { metrics.stage(stage, seconds: seconds) }
                var response = try Self.json(summary)
                let items = [("queue", timing.queued.milliseconds), ("compute", timing.compute.milliseconds)]
                    + stages.map { ($0.0, $0.1 * 1000) }
                response.headers[.serverTiming] = items.map { String(format: "%@;dur=%.2f", $0.0, $0.1) }.joined(separator: ", ")
                return response
            }
        }
    }

    // MARK: Checks

    var busy: ServiceError {
        ServiceError(status: .serviceUnavailable, code: "busy",
                     message: "all \(queue.workers) workers are busy and \(queue.capacity) requests are waiting; retry later",
                     retryAfter: 1)
    }

    /// Answers 503 before reading the body when the queue is already full, so refusals stay cheap under a flood.
    /// (The queue can still fill between this check and `compute`, which then refuses the same way.)
    func refuseIfFull() throws {
        if queue.isFull {
            metrics.refused("queue_full")
            throw busy
        }
    }

    func authorize(_ request: Request) throws {
        guard let token = configuration.token else { return }
        let given = request.headers[.authorization] ?? ""
        let expected = "Bearer " + token
        // Constant time in the token's length.
        let a = Array(given.utf8), b = Array(expected.utf8)
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<b.count { diff |= (i < a.count ? a[i] : 0) ^ b[i] }
        guard diff == 0 else {
            throw ServiceError(status: .unauthorized, code: "unauthorized",
                               message: "missing or wrong bearer token (send Authorization: Bearer <token>)")
        }
    }

    func requireContentType(_ request: Request, _ allowed: [String]) throws {
        let type = (request.headers[.contentType] ?? "").split(separator: ";").first
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard allowed.contains(type) else {
            throw ServiceError(status: .unsupportedMediaType, code: "unsupported_media_type",
                               message: "Content-Type '\(type)' is not accepted here; send one of \(allowed.joined(separator: ", "))")
        }
    }

    /// What both inference routes check before any work, in order: token, content type, the `mask` parameter,
    /// room in the queue (503 before reading the body), then the body within `maxBody`. Returns the body and
    /// whether the mask was asked for.
    func admit(_ request: Request, contentTypes: [String]) async throws -> (body: [UInt8], mask: Bool) {
        try authorize(request)
        try requireContentType(request, contentTypes)
        let mask = request.uri.queryParameters["mask"].map(String.init)
        if let mask, mask != "png" {
            throw ServiceError(status: .badRequest, code: "bad_parameter", message: "mask=\(mask) is not supported; use mask=png")
        }
        try refuseIfFull()
        return (try await readBody(request), mask != nil)
    }

    /// The body, refusing anything over `maxBody` (by its Content-Length at once, or while reading).
    func readBody(_ request: Request) async throws -> [UInt8] {
        let limit = configuration.maxBody
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw ServiceError(status: .contentTooLarge, code: "too_large", message: "body of \(length) bytes exceeds the \(limit)-byte limit")
        }
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Array(buffer: buffer)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw ServiceError(status: .contentTooLarge, code: "too_large", message: "body exceeds the \(limit)-byte limit")
        }
    }

    static func serviceError(_ error: any Error) -> ServiceError {
        if let e = error as? ServiceError { return e }
        guard let error = error as? LadonError else {
            return ServiceError(status: .internalServerError, code: "internal", message: "\(error)")
        }
        switch error {
        case .wrongModel:
            return ServiceError(status: .conflict, code: "wrong_model", message: "\(error)")
        case .geometry, .entropy, .invalidInput:
            return .badPacket("\(error)")
        default:
            return ServiceError(status: .internalServerError, code: "internal", message: "\(error)")
        }
    }

    // MARK: JSON

    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try InferenceSummary.jsonEncoder().encode(value)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func errorResponse(_ e: ServiceError) -> Response {
        var response = (try? json(APIErrorBody(code: e.code, message: e.message), status: e.status))
            ?? json(#"{"error":{"code":"internal","message":"encoding failed"}}"#, status: .internalServerError)
        if let retry = e.retryAfter { response.headers[.retryAfter] = String(retry) }
        return response
    }
}

/// Around every route: turns errors into JSON answers, adds the request id, writes one access-log line and
/// records the request metrics.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = EdgeRequestContext
    let service: EdgeService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let id = request.headers[.requestID].map { String($0.prefix(64)) } ?? context.id
        var response: Response
        var errorCode: String?
        do {
            response = try await next(request, context)
        } catch let error as ServiceError {
            response = EdgeService.errorResponse(error)
            errorCode = error.code
        } catch let error as HTTPError where error.status == .notFound && EdgeService.routes[request.uri.path] != nil {
            let allowed = EdgeService.routes[request.uri.path]!
            response = EdgeService.errorResponse(ServiceError(
                status: .methodNotAllowed, code: "method_not_allowed",
                message: "\(request.uri.path) takes \(allowed.map(\.rawValue).joined(separator: ", ")), not \(request.method)"))
            response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            errorCode = "method_not_allowed"
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found"
                : error.status == .methodNotAllowed ? "method_not_allowed"
                : error.status == .contentTooLarge ? "too_large" : "http_\(error.status.code)"
            let message = error.status == .notFound
                ? "no route \(request.method) \(request.uri.path); see docs/openapi.yaml" : (error.body ?? error.status.reasonPhrase)
            response = EdgeService.errorResponse(ServiceError(status: error.status, code: code, message: message))
            errorCode = code
        } catch {
            response = EdgeService.errorResponse(ServiceError(status: .internalServerError, code: "internal", message: "\(error)"))
            errorCode = "internal"
        }
        response.headers[.requestID] = id
        // Known paths by name (405s included); anything else as one label, so scanners cannot grow the metrics.
        let path = request.uri.path
        let route = EdgeService.routes[path] != nil ? path : "unmatched"
        let seconds = (ContinuousClock.now - start).seconds
        let bytesIn = request.headers[.contentLength].flatMap { Int($0) } ?? 0
        let bytesOut = response.body.contentLength ?? 0
        service.metrics.request(route: route, status: response.status.code, seconds: seconds, bytesIn: bytesIn, bytesOut: bytesOut)
        let timing = EdgeClient.parseServerTiming(response.headers[.serverTiming])
        var meta: Logger.Metadata = [
            "id": "\(id)", "method": "\(request.method)", "route": "\(route)", "status": "\(response.status.code)",
            "bytes_in": "\(bytesIn)", "bytes_out": "\(bytesOut)",
            "queue_ms": "\(String(format: "%.1f", timing["queue"] ?? 0))",
            "compute_ms": "\(String(format: "%.1f", timing["compute"] ?? 0))",
            "total_ms": "\(String(format: "%.1f", seconds * 1000))",
        ]
        if let errorCode { meta["error"] = "\(errorCode)" }
        service.logger.info("request", metadata: meta)
        return response
    }
}
