// A tiny fork-join helper: splits kernel work over at most two threads.
import Dispatch
import Foundation

/// Fork-join parallelism for the non-GEMM kernels. Work is split into contiguous ranges, one per worker;
/// small jobs run inline on the caller's thread. The cap of two workers matches the deployment target
/// (two cores). Kernels that call `gemm` do not use it (`gemm` has its own threads).
enum WorkSplit {
    /// Most workers a kernel uses: ``Kernels/threadCount`` capped at 2, or `LADON_KERNEL_THREADS` (1...16)
    /// from the environment, for measurements.
    static var maxWorkers: Int { environmentWorkers ?? min(2, Kernels.threadCount) }

    private static let environmentWorkers: Int? = {
        guard let text = ProcessInfo.processInfo.environment["LADON_KERNEL_THREADS"], let n = Int(text) else { return nil }
        return min(max(n, 1), 16)
    }()

    /// Calls `body(range)` for disjoint ranges covering `0..<count`, on up to ``maxWorkers`` threads when
    /// `work` (an estimate in elementary operations) is at least `minimumWork`.
    static func forEachRange(_ count: Int, work: Int, minimumWork: Int = 1 << 18,
                             _ body: (Range<Int>) -> Void) {
        let workers = work >= minimumWork ? min(maxWorkers, count) : 1
        guard workers > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        // The ranges are disjoint, so workers never write the same memory; the box only carries the
        // (non-Sendable) closure across the fork and the join guarantees it outlives the workers.
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = count * w / workers, hi = count * (w + 1) / workers
                if lo < hi { task.value(lo..<hi) }
            }
        }
    }
}

/// Carries a value the compiler cannot prove Sendable across a fork-join boundary.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
