// Shared test helpers: seeded random numbers, random tensors, fixtures, tolerance checks.
import Foundation
import Testing
@testable import LadonCore

/// SplitMix64: a tiny, seedable generator so every random test is reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Tensor {
    /// Uniform random values in `range`.
    static func random(_ shape: [Int], in range: ClosedRange<Float> = -1...1,
                       using rng: inout SplitMix64) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: range, using: &rng) })
    }
}

/// Loads committed fixtures from `Tests/LadonCoreTests/Fixtures`.
enum Fixtures {
    static func url(_ name: String) -> URL {
        Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!
    }
    static func exists(_ name: String) -> Bool {
        Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil) != nil
    }
    static func safetensors(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: url(name).path)
    }
    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(name)))
    }
}

/// Checks `actual` against `expected` with a tolerance relative to the expected values' scale:
/// `|a - e| <= atol + rtol * max|e|`. Prints the first mismatches side by side.
func expectClose(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-4, atol: Float = 1e-5,
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
