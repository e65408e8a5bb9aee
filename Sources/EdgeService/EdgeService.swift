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
/// try await service.run()          // until SIGTERM/SIGINT, then drains in-flight requests
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

    /// Serves until a graceful-shutdown signal (or the task's cancellation): then stops accepting, lets in-flight
    /// requests finish within `drainTimeout`, and returns. `onBound` receives the bound port.
    public func run(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
                    onBound: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let config = configuration
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
        runningGroup.withLockedValue { $0 = group }
        defer {
            runningGroup.withLockedValue { $0 = nil }
            queue.shutdown()
        }
        do {
            try await group.run()
        } catch {
            try? await eventLoops.shutdownGracefully()
            throw error
        }
        try await eventLoops.shutdownGracefully()
        logger.notice("stopped")
    }

    /// Starts a graceful shutdown of a running service, as SIGTERM does: stop accepting, finish the requests in
    /// flight, then `run` returns.
    public func shutdown() async {
        await runningGroup.withLockedValue { $0 }?.triggerGracefulShutdown()
    }
}

extension EdgeService {
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
