// The kernels' fork-join helper on its spinning pool and on the Dispatch fallback (busy pool, nested splits,
// more parts than processors, concurrent callers).
import Foundation
import Testing
@testable import LadonCore

@Suite struct WorkSplitTests {
    /// Runs `forEachPart(parts)` and returns how many times each part ran.
    private func counts(_ parts: Int) -> [Int] {
        var hits = [Int](repeating: 0, count: parts)
        hits.withUnsafeMutableBufferPointer { h in
            let base = h.baseAddress!
            WorkSplit.forEachPart(parts) { part in base[part] += 1 }  // parts write disjoint elements
        }
        return hits
    }

    @Test func everyPartRunsOnce() {
        // 2 … 4 parts (the pool on a machine with that many processors), 9 and 65 (more than processors or
        // than the pool's 63 workers: Dispatch).
        for parts in [0, 1, 2, 3, 4, 9, 65] {
            for _ in 0..<50 { #expect(counts(parts) == [Int](repeating: 1, count: parts), "parts \(parts)") }
        }
    }

    /// A part that splits again finds the pool busy (its own caller holds it) and runs its parts on Dispatch.
    @Test func nestedSplitsRunEveryPart() {
        let outer = 2, inner = 3
        var hits = [Int](repeating: 0, count: outer * inner)
        hits.withUnsafeMutableBufferPointer { h in
            let base = h.baseAddress!
            WorkSplit.forEachPart(outer) { o in
                WorkSplit.forEachPart(inner) { i in base[o * inner + i] += 1 }
            }
        }
        #expect(hits == [Int](repeating: 1, count: outer * inner))
    }

    /// Threads that split at the same time (a server's concurrent requests): one holds the pool, the others fall back,
    /// and every caller's parts all run, once, before its call returns.
    @Test func concurrentCallersEachGetTheirParts() {
        let callers = 4, rounds = 200
        let failures = LockedInt(0)
        DispatchQueue.concurrentPerform(iterations: callers) { _ in
            for round in 0..<rounds {
                let parts = 2 + round % 3
                if counts(parts) != [Int](repeating: 1, count: parts) { failures.value += 1 }
            }
        }
        #expect(failures.value == 0)
    }

    /// Work split over parts gives the serial result, with the parts' writes visible to the caller after the join.
    @Test func partsWritesAreVisibleAfterTheJoin() {
        let count = 100_003
        var values = [Int](repeating: 0, count: count)
        for parts in [2, 3] {
            values.withUnsafeMutableBufferPointer { v in
                let base = v.baseAddress!
                WorkSplit.forEachPart(parts) { part in
                    for i in stride(from: count * part / parts, to: count * (part + 1) / parts, by: 1) { base[i] = i &* 7 + part }
                }
            }
            #expect(values.enumerated().allSatisfy { i, x in x == i &* 7 + (0..<parts).first { i < count * ($0 + 1) / parts }! })
        }
    }
}
