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

    /// `both` returns each closure's own result, each closure run once, on one thread or two, with kernel splits
    /// inside either side (as the server half's load packs weights) still running every part.
    @Test(arguments: [1, 2])
    func bothRunsEachSideOnce(threads: Int) {
        for _ in 0..<50 {
            let (left, right) = WorkSplit.both(threads: threads, { () -> [Int] in
                var hits = [Int](repeating: 0, count: 3)
                hits.withUnsafeMutableBufferPointer { h in
                    let base = h.baseAddress!
                    WorkSplit.forEachPart(3) { base[$0] += 1 }
                }
                return hits
            }, { "second" })
            #expect(left == [1, 1, 1] && right == "second", "threads \(threads)")
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

    /// `forEachChunk` hands out every item exactly once, in ranges of `chunk` items (the last one shorter) that start on
    /// chunk boundaries, whatever the number of threads.
    @Test func chunksCoverEveryItemOnce() {
        for (count, chunk, parts) in [(0, 3, 2), (1, 3, 2), (10, 3, 2), (12, 3, 2), (17, 1, 3), (5, 8, 4), (100, 7, 2),
                                      (9, 0, 2)] {
            let size = max(1, chunk)
            let ranges = runChunks(count, chunk: chunk, parts: parts) { _ in }.map(\.range)
            let expected = stride(from: 0, to: count, by: size).map { $0..<min(count, $0 + size) }
            // One range covering everything when there is a single chunk or a single thread.
            let serial = count > 0 && (count <= size || parts <= 1) ? [0..<count] : expected
            #expect(ranges.sorted { $0.lowerBound < $1.lowerBound } == serial, "count \(count) chunk \(chunk) parts \(parts)")
        }
    }

    /// A thread held up on one chunk (a descheduled vCPU) leaves every other chunk to the other thread, where a fixed
    /// half per thread would have kept it waiting for nine more.
    @Test func aSlowThreadHandsItsChunksOver() {
        let runs = runChunks(20, chunk: 1, parts: 2) { range in
            if range.lowerBound == 0 { Thread.sleep(forTimeInterval: 0.05) }
        }
        let slow = runs.first { $0.range == 0..<1 }!.thread
        let threads = Set(runs.map(\.thread))
        // (On a machine where both parts ran on one thread there is nothing to hand over.)
        if threads.count > 1 { #expect(runs.filter { $0.thread == slow }.count == 1) }
        #expect(runs.count == 20)
    }

    /// `forEachWorker` runs its body once per worker thread (at most `parts` times, once when there is one chunk or
    /// one thread, never for no items), and the chunks its workers take cover every item exactly once.
    @Test func workersTakeEveryChunkOnce() {
        for (count, chunk, parts) in [(0, 1, 2), (1, 1, 2), (10, 3, 2), (17, 1, 3), (100, 7, 2), (9, 0, 4)] {
            let lock = NSLock()
            var workers = 0, ranges: [Range<Int>] = []
            WorkSplit.forEachWorker(count, chunk: chunk, parts: parts) { take in
                lock.withLock { workers += 1 }
                while let range = take() { lock.withLock { ranges.append(range) } }
                #expect(take() == nil, "take() after the last chunk")
            }
            let size = max(1, chunk), chunks = (count + size - 1) / size
            #expect(workers == min(parts, chunks), "count \(count) chunk \(chunk) parts \(parts)")
            let items = ranges.flatMap { Array($0) }.sorted()
            #expect(items == Array(0..<count), "count \(count) chunk \(chunk) parts \(parts)")
        }
    }

    /// Runs `forEachChunk` and records each range with the thread that ran it.
    private func runChunks(_ count: Int, chunk: Int, parts: Int,
                           _ work: (Range<Int>) -> Void) -> [(range: Range<Int>, thread: ObjectIdentifier)] {
        let lock = NSLock()
        var runs: [(range: Range<Int>, thread: ObjectIdentifier)] = []
        WorkSplit.forEachChunk(count, chunk: chunk, parts: parts) { range in
            work(range)
            let thread = ObjectIdentifier(Thread.current)
            lock.lock(); runs.append((range, thread)); lock.unlock()
        }
        return runs
    }
}
