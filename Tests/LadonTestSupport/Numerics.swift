// Seeded random numbers and tolerance checks, shared by the test targets.
import Testing
import LadonCore

/// SplitMix64: a tiny, seedable generator so every random test is reproducible.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Checks `actual` against `expected` with a tolerance relative to the expected values' scale:
/// `|a - e| <= atol + rtol * max|e|`. Prints the first mismatches side by side.
public func expectClose(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-4, atol: Float = 1e-5,
                 _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.shape == expected.shape else {
        Issue.record("\(label): shape \(actual.shape) != expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    let scale = expected.maxAbs
    let tolerance = atol + rtol * scale
    var bad: [String] = []
    var worst: Float = 0
    for i in 0..<actual.count {
        let d = abs(actual.scalars[i] - expected.scalars[i])
        if !(d <= tolerance) {
            if bad.count < 5 { bad.append("[\(i)] \(actual.scalars[i]) vs \(expected.scalars[i])") }
            worst = d.isNaN ? .nan : max(worst, d)
        }
    }
    if !bad.isEmpty {
        Issue.record("\(label): max diff \(worst) > tol \(tolerance) (scale \(scale)); first: \(bad.joined(separator: "; "))",
                     sourceLocation: sourceLocation)
    }
}
