// Prometheus metrics of the edge service, recorded through swift-metrics into a per-service registry.
import CoreMetrics
import Prometheus

/// Counters, gauges and latency histograms of one ``EdgeService`` (`GET /metrics`). Each service owns its
/// registry, so several services in one process (tests, embedding) do not mix their numbers.
final class ServiceMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let queueDepth: CoreMetrics.Gauge
    private let running: CoreMetrics.Gauge
    private let bytesIn: CoreMetrics.Counter
    private let bytesOut: CoreMetrics.Counter

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        let buckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                   .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                   .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30)]
        factory.defaultDurationHistogramBuckets = buckets
        self.factory = factory
        queueDepth = CoreMetrics.Gauge(label: "ladon_queue_depth", factory: factory)
        running = CoreMetrics.Gauge(label: "ladon_inflight_requests", factory: factory)
        bytesIn = CoreMetrics.Counter(label: "ladon_request_bytes_total", factory: factory)
        bytesOut = CoreMetrics.Counter(label: "ladon_response_bytes_total", factory: factory)
        queueDepth.record(0)
        running.record(0)
    }

    /// One finished request.
    func request(route: String, status: Int, seconds: Double, bytesIn inBytes: Int, bytesOut outBytes: Int) {
        CoreMetrics.Counter(label: "ladon_http_requests_total", dimensions: [("route", route), ("status", String(status))],
                            factory: factory).increment()
        CoreMetrics.Timer(label: "ladon_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            .recordNanoseconds(Int64(seconds * 1e9))
        bytesIn.increment(by: inBytes)
        bytesOut.increment(by: outBytes)
    }

    /// Time spent in a stage: `queue`, `compute`, or one of the model's (`decompress`, `decoder+body`, …).
    func stage(_ name: String, seconds: Double) {
        CoreMetrics.Timer(label: "ladon_stage_duration_seconds", dimensions: [("stage", name)], factory: factory)
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    /// A job refused or dropped by admission control (`queue_full`, `client_gone`, `deadline`, `shutting_down`).
    func refused(_ reason: String) {
        CoreMetrics.Counter(label: "ladon_refused_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// How long the start-up warm-up took (``EdgeService/Configuration/warmupPasses``).
    func warmup(seconds: Double) {
        CoreMetrics.Gauge(label: "ladon_warmup_seconds", factory: factory).record(seconds)
    }

    func queue(depth: Int, running jobs: Int) {
        queueDepth.record(depth)
        running.record(jobs)
    }

    /// The Prometheus text exposition.
    func exposition() -> [UInt8] { registry.emitToBuffer() }
}
