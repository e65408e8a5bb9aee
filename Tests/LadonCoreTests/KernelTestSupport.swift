// Helpers shared by the kernel test suites: fixture access, exact and per-element comparisons.
import LadonTestSupport
import Testing
@testable import LadonCore

/// Golden kernel fixtures written by `Scripts/make_kernel_fixtures.py`.
struct KernelFixture {
    let file: SafeTensorsFile
    init(_ name: String) throws { file = try Fixtures.safetensors("kernels/\(name).safetensors") }
    func tensor(_ name: String) throws -> Tensor { try file.tensor(name) }
    func integers(_ name: String) throws -> [Int] { try file.integerTensor(name).values }
}

/// Expects the same shape and bit-identical values (NaN matches NaN).
func expectIdentical(_ actual: Tensor, _ expected: Tensor, _ label: String = "",
                     sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.shape == expected.shape else {
        Issue.record("\(label): shape \(actual.shape) != \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    var mismatches = 0, first = ""
    for i in 0..<actual.count {
        let a = actual.scalars[i], e = expected.scalars[i]
        if a.bitPattern != e.bitPattern && !(a.isNaN && e.isNaN) {
            if mismatches == 0 { first = "[\(i)] \(a) vs \(e)" }
            mismatches += 1
        }
    }
    if mismatches > 0 {
        Issue.record("\(label): \(mismatches) of \(actual.count) differ; first \(first)", sourceLocation: sourceLocation)
    }
}

/// Per-element check `|a − e| ≤ atol + rtol·|e|` (for outputs whose small values matter, like softmax).
func expectElementwiseClose(_ actual: [Float], _ expected: [Float], rtol: Float, atol: Float = 0,
                            _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(label): count \(actual.count) != \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    for i in 0..<actual.count where !(abs(actual[i] - expected[i]) <= atol + rtol * abs(expected[i])) {
        Issue.record("\(label): [\(i)] \(actual[i]) vs \(expected[i])", sourceLocation: sourceLocation)
        return
    }
}

extension SplitMix64 {
    /// A random extent in `range`, for odd-shape sweeps.
    mutating func extent(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}
