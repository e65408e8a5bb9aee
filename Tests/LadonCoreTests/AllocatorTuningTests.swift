// AllocatorTuning as the test process applies it at start (Tests/CLadonTestAllocator), the way `ladon` does.
import CLadonTestAllocator
import Foundation
import Testing

@Suite struct AllocatorTuningTests {
    /// A big tensor freed and allocated again on a thread other than the main one, while another big one stays alive
    /// (as on the edge service's inference worker), gets the same pages back. In a per-thread arena the second block
    /// does not fit the arena's first 64 MB heap, goes to a heap of its own that glibc unmaps once it is empty, and
    /// was faulted in afresh each time (7,680 pages of 30 MB).
    @Test func bigBlocksAreReusedOffTheMainThread() {
        #if os(Linux)
        #expect(cladon_test_allocator_tuned())
        #expect(cladon_test_thread_minor_faults() >= 0, "getrusage(RUSAGE_THREAD) is unavailable")
        let faults = FaultCounts()
        let done = DispatchSemaphore(value: 0)
        let worker = Thread {
            let held = [Float](repeating: 2, count: 10 << 20)  // 40 MB
            for i in 0..<4 {
                let before = cladon_test_thread_minor_faults()
                var block = [Float](repeating: 1, count: 30 << 18)  // 30 MB
                block[i] += held[i]
                withExtendedLifetime(block) {}
                faults.values[i] = cladon_test_thread_minor_faults() - before
            }
            withExtendedLifetime(held) {}
            done.signal()
        }
        worker.start()
        done.wait()
        let again = faults.values.dropFirst()
        #expect(again.allSatisfy { $0 >= 0 && $0 < 500 }, "page faults per 30 MB block after the first: \(again)")
        #endif
    }
}

/// Written by the worker thread, read after it has signalled.
private final class FaultCounts: @unchecked Sendable {
    var values = [Int](repeating: 0, count: 4)
}
