// Helpers of LadonCoreTests: random tensors and the fixture folder (seeded random numbers, tolerance checks and
// fixture loading are in LadonTestSupport).
import Foundation
import Testing
@testable import LadonCore
import LadonTestSupport

extension Tensor {
    /// Uniform random values in `range`.
    static func random(_ shape: [Int], in range: ClosedRange<Float> = -1...1,
                       using rng: inout SplitMix64) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: range, using: &rng) })
    }
}

/// The committed fixtures of this target (`Fixtures/`).
let Fixtures = FixtureFolder(bundle: .module)
