// Wall-clock timing of named stages, and the one Duration-to-seconds conversion.

/// Wall-clock timing of named stages.
public struct Stopwatch: Sendable {
    public private(set) var laps: [(stage: String, seconds: Double)] = []
    private let clock = ContinuousClock()

    public init() {}

    /// Runs `body` and records its duration under `stage`.
    public mutating func time<T, E: Error>(_ stage: String, _ body: () throws(E) -> T) throws(E) -> T {
        let start = clock.now
        let value = try body()
        let d = clock.now - start
        laps.append((stage, d.seconds))
        return value
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
