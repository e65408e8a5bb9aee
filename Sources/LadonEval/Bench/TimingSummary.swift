// Median and 90th percentile of repeated measurements.

/// The median and 90th percentile of a set of samples (timings in seconds, or byte counts).
///
/// Percentiles interpolate linearly between the closest ranks, as NumPy's default `percentile` does:
/// the q-th percentile of sorted samples `s[0…n−1]` is `s[i] + (s[i+1] − s[i])·f` where `i + f = q/100 · (n − 1)`.
public struct TimingSummary: Sendable, Equatable, Codable {
    /// How many samples were summarised.
    public let count: Int
    public let median: Double
    public let p90: Double

    /// Summarises `samples` (at least one).
    public init(_ samples: [Double]) {
        precondition(!samples.isEmpty, "a summary needs at least one sample")
        let sorted = samples.sorted()
        count = sorted.count
        median = Self.percentile(50, ofSorted: sorted)
        p90 = Self.percentile(90, ofSorted: sorted)
    }

    /// The `q`-th percentile (0…100) of ascending `sorted` samples, linearly interpolated.
    public static func percentile(_ q: Double, ofSorted sorted: [Double]) -> Double {
        precondition(!sorted.isEmpty && (0...100).contains(q))
        let position = q / 100 * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let fraction = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }
}
