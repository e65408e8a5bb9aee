// Channel concatenation against torch.cat and the reference.
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct ConcatTests {
    @Test func matchesPyTorch() throws {
        let f = try KernelFixture("concat")
        let y = Kernels.concatChannels([try f.tensor("x0"), try f.tensor("x1"), try f.tensor("x2")])
        expectIdentical(y, try f.tensor("y"), "cat")
    }

    @Test func matchesReferenceOnOddShapes() {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<10 {
            let (n, h, w) = (rng.extent(1...3), rng.extent(1...9), rng.extent(1...9))
            let xs = (0..<rng.extent(1...4)).map { _ in Tensor.random([n, rng.extent(0...5), h, w], using: &rng) }
            expectIdentical(Kernels.concatChannels(xs), Kernels.concatChannelsReference(xs), "cat \(xs.map(\.shape))")
        }
    }
}
