// The edge service: the server half of a Ladon model behind HTTP, with admission control, logs and metrics.
import EdgeSplit
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import Hummingbird
import HummingbirdCore
import LadonCore
import LadonImage
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// `ladon serve` as a library: an HTTP/1.1 server (Hummingbird) answering latent packets from devices with the
/// three tasks' results. Routes, status codes and error codes are in docs/deployment.md and docs/openapi.yaml.
///
/// ```swift
/// let service = try EdgeService(modelPath: "model.safetensors", configuration: .init(port: 8080))
/// try await service.run()          // warms up, serves until SIGTERM/SIGINT, then drains in-flight requests
/// ```
public final class EdgeService: Sendable {
    /// Everything `ladon serve` can set.
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0 picks a free port (reported to `run(onBound:)`).
        public var port = 8080
        /// Inference threads. Each runs one request at a time with the kernels' own threads.
        public var workers = 1
        /// Event-loop threads for HTTP. One is plenty for packets of tens of KB and keeps a flood of cheap answers
        /// (503s, 4xx) from taking more than one core away from inference.
        public var ioThreads = 1
        /// Requests that may wait for a worker; one more is answered 503 at once.
        public var queue = 8
        /// Largest request body, bytes.
        public var maxBody = 4 << 20
        /// Largest image `POST /v1/infer-image` decodes, in pixels: 32 MP, about 1 GB at the peak
        /// (`ImageDecoder.peakBytesPerPixel`) per request in flight; above the device side's 24 MP.
        public var maxImagePixels = 32_000_000
        /// Largest original size a packet may claim, in pixels.
        public var maxPacketPixels = ServerHalf.defaultMaxOriginalPixels
        /// Open connections accepted at once; more wait in the kernel's backlog.
        public var maxConnections = 256
        /// A request's head and body must arrive within this.
        public var readTimeout: Duration = .seconds(15)
        /// A connection with no request for this long is closed.
        public var idleTimeout: Duration = .seconds(60)
        /// A request still queued after this is answered 503 instead of computed.
        public var deadline: Duration = .seconds(30)
        /// How long SIGTERM waits for in-flight requests before giving up.
        public var drainTimeout: Duration = .seconds(30)
        /// `Authorization: Bearer <token>` required on `/v1/*` when set.
        public var token: String?
        /// Passes of a synthetic photo through both halves that every worker runs before the port opens, so the first
        /// real request does not pay for first-touch memory (50–70 ms more on the full-size model). 0 skips them.
        public var warmupPasses = 1
        public var logLevel: Logger.Level = .info

        public init(host: String = "127.0.0.1", port: Int = 8080) {
            self.host = host
            self.port = port
        }
    }

    public let configuration: Configuration
    let server: ServerHalf
    /// The encoder, for `POST /v1/infer-image` (full offloading).
    let device: DeviceHalf
    let description_: ModelDescription
    let metrics = ServiceMetrics()
    let queue: InferenceQueue
    let logger: Logger
    let startedDraining = NIOLockedValueBox(false)
    let runningGroup = NIOLockedValueBox<ServiceGroup?>(nil)
    /// `shutdown()` came before the server ran (during the warm-up): `run` returns instead of serving.
    let shutdownBeforeServing = NIOLockedValueBox(false)

    /// Loads the whole model from `modelPath` (one loader, one validation) and prepares the workers.
    public convenience init(modelPath: String, configuration: Configuration, logger: Logger? = nil) throws(LadonError) {
        let file = try LadonModelFile(path: modelPath)
        try self.init(modelFile: file, configuration: configuration, logger: logger)
    }

    public init(modelFile: LadonModelFile, configuration: Configuration, logger: Logger? = nil) throws(LadonError) {
        var server = try ServerHalf(modelFile: modelFile)
        server.maxOriginalPixels = configuration.maxPacketPixels
        self.server = server
        device = try DeviceHalf(modelFile: modelFile)
        self.configuration = configuration
        var log = logger ?? Logger(label: "ladon.serve")
        log.logLevel = configuration.logLevel
        self.logger = log
        var classes: [String: [String]] = [:]
        if let c = server.config.classification { classes[c.classList] = server.labels.imagenet }
        if let d = server.config.detection { classes[d.classList] = server.labels.coco }
        if let s = server.config.segmentation { classes[s.classList] = server.labels.voc }
        description_ = ModelDescription(fingerprint: server.fingerprint, modelId: server.modelID.hexString,
                                        architecture: server.config.architecture, heads: server.config.heads,
                                        classes: classes, encoderSize: modelFile.encoderSize, config: server.config)
        let metrics = self.metrics
        queue = InferenceQueue(workers: max(1, configuration.workers), capacity: max(0, configuration.queue),
                               observer: { metrics.queue(depth: $0, running: $1) },
                               onDrop: { metrics.refused($0 == .clientGone ? "client_gone" : "deadline") })
    }

    /// The model this service runs (`GET /v1/model`).
    public var model: ModelDescription { description_ }

    /// Warms the workers up (``Configuration/warmupPasses``), then serves until a graceful-shutdown signal (or the
    /// task's cancellation): then stops accepting, lets in-flight requests finish within `drainTimeout`, and returns.
    /// `onBound` receives the bound port once the server listens, after the warm-up.
    public func run(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
                    onBound: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let config = configuration
        await warmUp()
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: max(1, config.ioThreads))
        Self.lowerPriority(of: eventLoops)
        let app = Application(
            router: makeRouter(),
            server: .http1(configuration: .init(additionalChannelHandlers: [
                ConnectionTimeoutHandler(readTimeout: .nanoseconds(Int64(config.readTimeout.seconds * 1e9)),
                                         idleTimeout: .nanoseconds(Int64(config.idleTimeout.seconds * 1e9)))
            ])),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "ladon/\(LadonVersion.current)",
                                 availableConnectionsDelegate: MaximumAvailableConnections(config.maxConnections)),
            onServerRunning: { channel in onBound(channel.localAddress?.port ?? config.port) },
            eventLoopGroupProvider: .shared(eventLoops),
            logger: logger)
        // Services shut down in reverse order: the watcher first marks the service as draining (/readyz → 503).
        let watcher = DrainWatcher(draining: startedDraining, logger: logger)
        var groupConfig = ServiceGroupConfiguration(
            services: [.init(service: app), .init(service: watcher, successTerminationBehavior: .ignore)],
            gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        groupConfig.maximumGracefulShutdownDuration = config.drainTimeout
        let group = ServiceGroup(configuration: groupConfig)
        // Registered under the lock `shutdown()` takes, so a shutdown asked for during the warm-up is never lost.
        let serving = runningGroup.withLockedValue { running -> Bool in
            if shutdownBeforeServing.withLockedValue({ $0 }) { return false }
            running = group
            return true
        }
        defer {
            runningGroup.withLockedValue { $0 = nil }
            queue.shutdown()
        }
        do {
            if serving { try await group.run() }
        } catch {
            try? await eventLoops.shutdownGracefully()
            throw error
        }
        try await eventLoops.shutdownGracefully()
        logger.notice(serving ? "stopped" : "stopped before serving: shutdown was asked for during the warm-up")
    }

    /// Starts a graceful shutdown of a running service, as SIGTERM does: stop accepting, finish the requests in
    /// flight, then `run` returns. Asked for before the server listens (during the warm-up), `run` returns without
    /// serving.
    public func shutdown() async {
        let group = runningGroup.withLockedValue { running -> ServiceGroup? in
            if running == nil { shutdownBeforeServing.withLockedValue { $0 = true } }
            return running
        }
        await group?.triggerGracefulShutdown()
    }
}

extension EdgeService {
    /// What ``warmUp()`` did.
    struct WarmupReport: Equatable {
        /// Passes run, over all workers.
        var passes = 0
        /// Passes that threw (logged; the service starts anyway), and the first error.
        var failures = 0
        var firstError: String?
        var seconds = 0.0
    }

    /// Runs ``Configuration/warmupPasses`` passes of ``warmupImage`` through the device and server halves on every
    /// worker at once, as requests would run, so the heap has grown to what inference needs and the kernels' threads
    /// have started before the first request. Not counted in the request metrics; its time is `ladon_warmup_seconds`.
    @discardableResult
    func warmUp() async -> WarmupReport {
        let passes = configuration.warmupPasses
        guard passes > 0 else { return WarmupReport() }
        let (device, server) = (self.device, self.server)
        let (width, height) = (640, 480)
        let image = Self.warmupImage(width: width, height: height)
        let start = ContinuousClock.now
        var report = await withTaskGroup(of: WarmupReport.self) { group in
            for _ in 0..<queue.workers {
                group.addTask {
                    let outcome = await self.queue.run(deadline: .now + .seconds(3600), clientGone: { false }) { () -> WarmupReport in
                        var done = WarmupReport()
                        for _ in 0..<passes {
                            do {
                                _ = try server.run(try device.encode(rgb: image, width: width, height: height))
                            } catch {
                                done.failures += 1
                                done.firstError = done.firstError ?? "\(error)"
                            }
                            done.passes += 1
                        }
                        return done
                    }
                    return (try? outcome.get().0) ?? WarmupReport()
                }
            }
            return await group.reduce(into: WarmupReport()) {
                $0.passes += $1.passes
                $0.failures += $1.failures
                $0.firstError = $0.firstError ?? $1.firstError
            }
        }
        report.seconds = (ContinuousClock.now - start).seconds
        metrics.warmup(seconds: report.seconds)
        if report.failures > 0 || report.passes < passes * queue.workers {
            logger.warning("warm-up: \(report.failures) of \(report.passes) passes failed (\(report.firstError ?? "a worker refused it")); the first requests may be slower")
        } else {
            logger.info("warmed up", metadata: ["passes": "\(report.passes)", "workers": "\(queue.workers)",
                                                "ms": "\(String(format: "%.0f", report.seconds * 1000))"])
        }
        return report
    }

    /// A deterministic RGB photo stand-in (interleaved bytes): gradients, a checkerboard of 24-pixel cells and
    /// hash noise, so the encoder's latent is busy and the detection head sees many proposals, as with real photos.
    static func warmupImage(width: Int, height: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                var h = UInt32(truncatingIfNeeded: x &* 73_856_093 ^ y &* 19_349_663)
                h = (h ^ (h >> 13)) &* 0x5bd1_e995
                let noise = Int(h >> 27)  // 0...31
                let cell = ((x / 24) ^ (y / 24)) & 1 == 0 ? 60 : 0
                let i = (y * width + x) * 3
                pixels[i] = UInt8(truncatingIfNeeded: (x * 255 / width + cell + noise) & 255)
                pixels[i + 1] = UInt8(truncatingIfNeeded: (y * 255 / height + noise * 2) & 255)
                pixels[i + 2] = UInt8(truncatingIfNeeded: ((x + y) * 255 / (width + height) + 120 - cell) & 255)
            }
        }
        return pixels
    }

    /// Runs the event loops at a lower scheduling priority (nice +10) than the inference workers, so a flood of
    /// cheap requests (503s, 4xx) slows the refusals rather than the inference (Linux; a thread may always lower
    /// its own priority).
    static func lowerPriority(of group: MultiThreadedEventLoopGroup) {
        #if os(Linux)
        for loop in group.makeIterator() {
            // On Linux, PRIO_PROCESS with who = 0 sets the calling thread's nice value only.
            loop.execute { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10) }
        }
        #endif
    }
}

/// Marks the service as draining when a graceful shutdown starts.
struct DrainWatcher: Service {
    let draining: NIOLockedValueBox<Bool>
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        draining.withLockedValue { $0 = true }
        logger.notice("shutting down: no new connections; finishing the requests in flight")
    }
}

extension Duration {
    var milliseconds: Double { seconds * 1000 }
}
