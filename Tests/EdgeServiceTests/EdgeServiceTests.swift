// The HTTP edge service (`ladon serve`) on a real loopback port: answers equal the in-process server half; admission control,
// bad and hostile requests, dropped work of clients that left.
@testable import EdgeService
import EdgeSplit
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
@testable import LadonCore
import LadonTestSupport

/// A running service on a free loopback port; `stop()` cancels it.
struct RunningService {
    let service: EdgeService
    let port: Int
    let task: Task<Void, any Error>
    var url: URL { URL(string: "http://127.0.0.1:\(port)")! }
    var client: EdgeClient { EdgeClient(server: url, timeout: 30) }

    static func start(model: String = TinyModel.path, _ configure: (inout EdgeService.Configuration) -> Void = { _ in }) async throws -> RunningService {
        var config = EdgeService.Configuration(host: "127.0.0.1", port: 0)
        config.logLevel = .warning
        configure(&config)
        let service = try EdgeService(modelPath: model, configuration: config)
        let bound = PortBox()
        let task = Task { try await service.run(gracefulShutdownSignals: []) { bound.set($0) } }
        for _ in 0..<500 where bound.get() == nil { try await Task.sleep(for: .milliseconds(10)) }
        return RunningService(service: service, port: try #require(bound.get()), task: task)
    }

    /// Graceful shutdown, as SIGTERM does; returns how `run` ended.
    @discardableResult
    func stop() async -> Result<Void, any Error> {
        await service.shutdown()
        return await task.result
    }

    /// One raw request with URLSession: status, headers, body.
    func request(_ path: String, method: String = "POST", body: [UInt8]? = nil,
                 contentType: String? = EdgeAPI.packetContentType, headers: [String: String] = [:]) async throws -> (Int, HTTPURLResponse, Data) {
        var req = URLRequest(url: URL(string: path, relativeTo: url)!.absoluteURL, timeoutInterval: 30)
        req.httpMethod = method
        if let body { req.httpBody = Data(body) }
        if let contentType { req.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        for (k, v) in headers { req.setValue(v, forHTTPHeaderField: k) }
        let (data, response) = try await URLSession.shared.data(for: req)
        let http = response as! HTTPURLResponse
        return (http.statusCode, http, data)
    }

    func errorCode(_ data: Data) -> String? { try? JSONDecoder().decode(APIErrorBody.self, from: data).error.code }
}

final class PortBox: @unchecked Sendable {
    private let lock = NSLock()
    private var port: Int?
    func set(_ p: Int) { lock.lock(); port = p; lock.unlock() }
    func get() -> Int? { lock.lock(); defer { lock.unlock() }; return port }
}

/// Polls `condition` every 10 ms until it holds; fails after `timeout` naming `what` was awaited.
func waitUntil(_ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
    let end = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < end else { throw WaitTimeout(what: what) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

struct WaitTimeout: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting until \(what)" }
}

func tinyPacket(model: String = TinyModel.path) throws -> LatentPacket {
    LatentPacket(try DeviceHalf(path: model).encode(try TinyModel.image()))
}

@Suite(.serialized) struct EdgeServiceTests {
    @Test func answersEqualTheInProcessServerHalf() async throws {
        let running = try await RunningService.start()
        defer { Task { await running.stop() } }
        let packet = try tinyPacket()
        let local = try ServerHalf(path: TinyModel.path)
        let expected = InferenceSummary(file: "packet", result: try local.run(packet.encodedImage), labels: local.labels,
                                        includeLogits: false, maskAtOriginalSize: true)
        let answer = try await running.client.infer(packet, mask: true)
        var got = answer.result
        #expect(got.compressedSha256 == expected.compressedSha256)
        #expect(got.classification?.top5 == expected.classification?.top5)
        #expect(got.detection == expected.detection)
        #expect(got.segmentation?.classPixels == expected.segmentation?.classPixels)
        #expect(answer.serverTiming["compute"] != nil && answer.serverTiming["queue"] != nil && answer.serverTiming["decoder+body"] != nil)
        let png = try #require(got.segmentation?.maskPng.flatMap { Data(base64Encoded: $0) })
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        got.timings = expected.timings
        got.segmentation?.maskPng = nil
        #expect(got == expected)
        // The model description matches the file; health, readiness and metrics answer.
        let model = try await running.client.model()
        #expect(model.modelId == local.modelID.hexString && model.heads == local.config.heads && model.encoderSize.totalBytes > 0)
        #expect(try await running.request("/healthz", method: "GET").0 == 200)
        #expect(try await running.request("/readyz", method: "GET").0 == 200)
        let (status, _, metrics) = try await running.request("/metrics", method: "GET")
        let text = String(decoding: metrics, as: UTF8.self)
        #expect(status == 200 && text.contains("ladon_http_requests_total") && text.contains("ladon_stage_duration_seconds"))
        #expect(text.contains(#"route="/v1/infer""#) && text.contains("ladon_queue_depth"))
        // A graceful shutdown ends `run` normally, and the port stops answering.
        let ended = await running.stop()
        #expect((try? ended.get()) != nil, "\(ended)")
        await #expect(throws: (any Error).self) { _ = try await running.request("/healthz", method: "GET") }
    }

    @Test func warmUpRunsEveryWorkerBeforeThePortOpensAndIsNotARequest() async throws {
        // Called directly: every pass of every worker runs the synthetic photo through both halves without an error.
        var config = EdgeService.Configuration(host: "127.0.0.1", port: 0)
        config.workers = 2
        config.warmupPasses = 2
        config.logLevel = .warning
        let service = try EdgeService(modelPath: TinyModel.path, configuration: config)
        let report = await service.warmUp()
        #expect(report.passes == 4 && report.failures == 0 && report.seconds > 0, "\(report)")
        // The photo stand-in is what the device half accepts, and it is busy (not one flat colour).
        let image = EdgeService.warmupImage(width: 640, height: 480)
        #expect(image.count == 640 * 480 * 3 && Set(image).count > 200)
        config.warmupPasses = 0
        #expect(await (try EdgeService(modelPath: TinyModel.path, configuration: config)).warmUp() == .init())

        // Through `run`: the warm-up's time is a gauge, and it counts as no request and no stage.
        let running = try await RunningService.start { $0.warmupPasses = 1 }
        defer { Task { await running.stop() } }
        let metrics = String(decoding: try await running.request("/metrics", method: "GET").2, as: UTF8.self)
        let gauge = try #require(metrics.split(separator: "\n").first { $0.hasPrefix("ladon_warmup_seconds ") })
        #expect((Double(gauge.split(separator: " ")[1]) ?? 0) > 0, "\(gauge)")
        #expect(!metrics.contains("/v1/infer") && !metrics.contains("ladon_stage_duration_seconds"), "\(metrics)")
        let cold = try await RunningService.start { $0.warmupPasses = 0 }
        defer { Task { await cold.stop() } }
        #expect(!String(decoding: try await cold.request("/metrics", method: "GET").2, as: UTF8.self).contains("ladon_warmup_seconds"))

        // A shutdown asked for before the server listens (here: before `run`) ends `run` after the warm-up, unbound.
        let early = try EdgeService(modelPath: TinyModel.path, configuration: config)
        await early.shutdown()
        let bound = PortBox()
        try await early.run(gracefulShutdownSignals: []) { bound.set($0) }
        #expect(bound.get() == nil)
    }

    @Test func badRequestsGetTheRightStatusAndTheServerKeepsServing() async throws {
        let stamp = String(repeating: "5a", count: 32)
        let model = try TinyModel.copy(fingerprint: stamp)
        let running = try await RunningService.start(model: model) { $0.maxBody = 64 << 10 }
        defer { Task { await running.stop() } }
        let good = try tinyPacket(model: model)
        var cases: [(String, [UInt8], String, Int, String)] = []
        cases.append(("garbage", [1, 2, 3], EdgeAPI.packetContentType, 400, "bad_packet"))
        var damaged = good.serialized(); damaged[damaged.count / 2] ^= 0xFF
        cases.append(("damaged", damaged, EdgeAPI.packetContentType, 400, "bad_packet"))
        cases.append(("wrong type", good.serialized(), "text/plain", 415, "unsupported_media_type"))
        cases.append(("too large", [UInt8](repeating: 0, count: 65 << 10), EdgeAPI.packetContentType, 413, "too_large"))
        var foreign = good; foreign.modelID = [UInt8](repeating: 0xAB, count: 16)
        cases.append(("foreign", foreign.serialized(), EdgeAPI.packetContentType, 409, "wrong_model"))
        var huge = good; huge.originalHeight = 65536; huge.originalWidth = 65536  // CRC recomputed by serialized()
        cases.append(("huge original", huge.serialized(), EdgeAPI.packetContentType, 400, "bad_packet"))
        var padded = good; padded.paddedHeight = 256; padded.paddedWidth = 256; padded.latentHeight = 63; padded.latentWidth = 63
        cases.append(("padded 4x", padded.serialized(), EdgeAPI.packetContentType, 400, "bad_packet"))
        cases.append(("bad image", [0xFF, 0xD8, 0xFF, 0x00], "image/jpeg", 400, "bad_image"))
        for (name, body, type, status, code) in cases {
            let path = name == "bad image" ? EdgeAPI.inferImagePath : EdgeAPI.inferPath
            let (s, response, data) = try await running.request(path, body: body, contentType: type)
            #expect(s == status, "\(name): \(String(decoding: data, as: UTF8.self))")
            #expect(running.errorCode(data) == code, "\(name)")
            #expect(response.value(forHTTPHeaderField: "X-Request-Id") != nil)
            if name == "foreign" { #expect(!String(decoding: data, as: UTF8.self).contains("5a5a"), "409 must not echo the server's id") }
        }
        let (notFound, _, nf) = try await running.request("/v2/nothing", method: "GET")
        #expect(notFound == 404 && running.errorCode(nf) == "not_found")
        let (wrongMethod, wm, wmBody) = try await running.request(EdgeAPI.inferPath, method: "GET", contentType: nil)
        #expect(wrongMethod == 405 && running.errorCode(wmBody) == "method_not_allowed" && wm.value(forHTTPHeaderField: "Allow") == "POST")
        // Broken HTTP closes only that connection.
        let raw = try RawHTTPConnection(port: running.port)
        raw.send(Array("POST /v1/infer HTTP/1.1\r\nContent-Length: banana\r\n\r\n".utf8))
        _ = raw.readAll()
        raw.close()
        // Still serving, and the same packet through the full-offloading route gives the same answer.
        let answer = try await running.client.infer(good)
        #expect(answer.result.compressedBytes == good.payload.count)
        let png = try Data(contentsOf: TinyModel.repository.appendingPathComponent("Scripts/data/chelsea_small.png"))
        let offloaded = try await running.client.inferImage([UInt8](png), contentType: "image/png")
        #expect(offloaded.result.image.width == 160 && offloaded.serverTiming["decode"] != nil)
    }

    @Test func bearerTokenIsRequiredWhenConfigured() async throws {
        let running = try await RunningService.start { $0.token = "s3cret" }
        defer { Task { await running.stop() } }
        let body = try tinyPacket().serialized()
        let (noToken, _, data) = try await running.request(EdgeAPI.inferPath, body: body)
        #expect(noToken == 401 && running.errorCode(data) == "unauthorized")
        let (wrong, _, _) = try await running.request(EdgeAPI.inferPath, body: body, headers: ["Authorization": "Bearer s3cres"])
        #expect(wrong == 401)
        let (ok, _, _) = try await running.request(EdgeAPI.inferPath, body: body, headers: ["Authorization": "Bearer s3cret"])
        #expect(ok == 200)
        #expect(try await running.request("/healthz", method: "GET").0 == 200)
        // EdgeClient sends the token, and reports a refusal as the server's status and error code.
        var client = running.client
        let packet = try tinyPacket()
        do throws(EdgeClientError) {
            _ = try await client.infer(packet)
            Issue.record("answered without the token")
        } catch {
            if case .server(let status, let code, _, _) = error {
                #expect(status == 401 && code == "unauthorized")
            } else {
                Issue.record("\(error)")
            }
        }
        client.token = "s3cret"
        #expect(try await client.infer(packet).result.compressedBytes == packet.payload.count)
        #expect(try await client.model().modelId.isEmpty == false)
    }

    @Test func moreClientsThanWorkersAndQueueGetSome503sAndNoWrongAnswer() async throws {
        let model = try TinyModel.copy(size: 512)
        let running = try await RunningService.start(model: model) { $0.workers = 1; $0.queue = 1 }
        defer { Task { await running.stop() } }
        let packet = try tinyPacket(model: model)
        let expected = try ServerHalf(path: model).run(packet.encodedImage)
        let body = packet.serialized()
        let outcomes = try await withThrowingTaskGroup(of: (Int, Data, String?).self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let (s, r, d) = try await running.request(EdgeAPI.inferPath, body: body)
                    return (s, d, r.value(forHTTPHeaderField: "Retry-After"))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let ok = outcomes.filter { $0.0 == 200 }, busy = outcomes.filter { $0.0 == 503 }
        #expect(ok.count + busy.count == 6, "\(outcomes.map(\.0))")
        #expect(ok.count >= 1 && busy.count >= 1, "\(outcomes.map(\.0))")
        #expect(busy.allSatisfy { running.errorCode($0.1) == "busy" && $0.2 == "1" })
        for (_, data, _) in ok {
            let summary = try InferenceSummary.jsonDecoder().decode(InferenceSummary.self, from: data)
            #expect(summary.classification?.top5.map(\.index) == InferenceSummary.topClasses(expected.classificationLogits!, k: 5, labels: []).map(\.index))
            #expect(summary.detection.count == expected.detections.count)
        }
        let metrics = String(decoding: try await running.request("/metrics", method: "GET").2, as: UTF8.self)
        #expect(metrics.contains(#"ladon_refused_total{reason="queue_full"}"#))
    }

    @Test func queuedWorkOfAClientThatLeftIsDropped() async throws {
        let model = try TinyModel.copy(size: 512)
        let running = try await RunningService.start(model: model) { $0.workers = 1; $0.queue = 4 }
        defer { Task { await running.stop() } }
        let body = try tinyPacket(model: model).serialized()
        // A job that holds the only worker until released, so the next request waits in the queue however fast or
        // slow the model runs on this machine.
        let queue = running.service.queue
        let started = PortBox(), release = DispatchSemaphore(value: 0)
        async let blocker = queue.run(deadline: .now + .seconds(60), clientGone: { false }) {
            started.set(1)
            release.wait()
        }
        try await waitUntil("the blocking job runs") { started.get() != nil }
        // A request waits in the queue, and its client resets before its turn.
        let leaver = try RawHTTPConnection(port: running.port)
        leaver.send(RawHTTPConnection.post(EdgeAPI.inferPath, body: body, contentType: EdgeAPI.packetContentType))
        try await waitUntil("the request is queued") { queue.depth == 1 }
        leaver.reset()
        try await Task.sleep(for: .milliseconds(200))  // the reset reaches the server's event loop
        release.signal()
        guard case .success = await blocker else { Issue.record("the blocking job did not run"); return }
        let gone = #"ladon_refused_total{reason="client_gone"} 1"#
        func metrics() async throws -> String {
            String(decoding: try await running.request("/metrics", method: "GET").2, as: UTF8.self)
        }
        try await waitUntil("the queued request is dropped") { try await metrics().contains(gone) }
        #expect(try await !metrics().contains(#"ladon_http_requests_total{route="/v1/infer",status="200"}"#),
                "the dropped request was computed")
        // A client that half-closes after sending still gets its answer.
        let halfClose = try RawHTTPConnection(port: running.port)
        halfClose.send(RawHTTPConnection.post(EdgeAPI.inferPath, body: body, contentType: EdgeAPI.packetContentType))
        halfClose.halfClose()
        let reply = halfClose.readAll()
        halfClose.close()
        #expect(reply.hasPrefix("HTTP/1.1 200"), "\(reply.prefix(200))")
        #expect(try await metrics().contains(gone))
    }

    @Test func stalledConnectionsAreClosedByTheReadTimeout() async throws {
        let running = try await RunningService.start { $0.readTimeout = .milliseconds(300); $0.idleTimeout = .milliseconds(300) }
        defer { Task { await running.stop() } }
        // A partial body that never completes, and a connection that never sends anything.
        let partial = try RawHTTPConnection(port: running.port)
        partial.send(Array("POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: \(EdgeAPI.packetContentType)\r\nContent-Length: 100000\r\n\r\nLDNP".utf8))
        let silent = try RawHTTPConnection(port: running.port)
        let start = ContinuousClock.now
        _ = partial.readAll()
        _ = silent.readAll()
        #expect(ContinuousClock.now - start < .seconds(5))
        partial.close(); silent.close()
        #expect(try await running.request("/healthz", method: "GET").0 == 200)
    }
}
