// The kernels' one fork-join helper: splits work over the threads `--threads` / `Kernels.threadCount` allows.
import CLadonKernels
import Dispatch
import Synchronization

/// Fork-join parallelism for every kernel (GEMM, convolutions, RoIAlign, resize, pooling, elementwise).
///
/// Work is split into disjoint parts that run concurrently and are joined before the call returns, so the closures
/// may capture pointers and other non-`Sendable` state: no part outlives the call, and parts never write the same
/// memory. The number of threads is the caller's `threads:` argument or ``Kernels/threadCount``; small jobs stay
/// on the calling thread.
enum WorkSplit {
    /// Calls `body(part)` for every `part` in `0..<parts`, concurrently when `parts > 1`. The caller sizes `parts`
    /// (at most its thread count) and maps each part to its share of the work.
    static func forEachPart(_ parts: Int, _ body: (Int) -> Void) {
        guard parts > 1 else {
            if parts == 1 { body(0) }
            return
        }
        // The kernels' spinning pool; when another job holds it (a server's concurrent request, a nested split),
        // Dispatch's pool, whose sleeping threads take tens of microseconds to wake.
        withoutActuallyEscaping(body) { body in
            var task = body
            let ran = withUnsafeMutablePointer(to: &task) { pointer in
                cladon_pool_run(parts, { context, part in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(part)
                }, pointer)
            }
            if ran { return }
            let sendable = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { sendable.value($0) }
        }
    }

    /// Calls `body(range)` for consecutive chunks of `chunk` items covering `0..<count` (the last may be shorter), on
    /// `parts` threads that each take the next chunk not yet taken until none is left. Unlike a fixed share per thread,
    /// a thread that the machine slows down (another tenant on a shared host, a vCPU descheduled for milliseconds) hands
    /// its remaining chunks to the others instead of holding up the join. Every item is computed the same way whichever
    /// thread takes it, so results do not depend on the schedule.
    static func forEachChunk(_ count: Int, chunk: Int, parts: Int, _ body: (Range<Int>) -> Void) {
        forEachWorker(count, chunk: chunk, parts: parts) { take in
            while let range = take() { body(range) }
        }
    }

    /// ``forEachChunk(_:chunk:parts:_:)`` with about `chunksPerPart` chunks per thread: the smaller the chunks, the
    /// less a thread the host slows down holds up the join, the more often threads come back for work.
    static func forEachChunk(_ count: Int, chunksPerPart: Int, parts: Int, _ body: (Range<Int>) -> Void) {
        let split = max(1, chunksPerPart * parts)
        forEachChunk(count, chunk: (count + split - 1) / split, parts: parts, body)
    }

    /// ``forEachChunk(_:chunk:parts:_:)`` for work that needs per-thread setup (a scratch buffer): `body` runs once
    /// per worker thread with `take`, which returns the next chunk not yet taken by any worker, `nil` once none is
    /// left. With one worker `take` returns `0..<count` once.
    static func forEachWorker(_ count: Int, chunk: Int, parts: Int, _ body: (_ take: () -> Range<Int>?) -> Void) {
        let size = max(1, chunk), chunks = (count + size - 1) / size
        let workers = min(parts, chunks)
        guard workers > 1 else {
            guard count > 0 else { return }
            var taken = false
            body {
                defer { taken = true }
                return taken ? nil : 0..<count
            }
            return
        }
        let next = Atomic<Int>(0)
        forEachPart(workers) { _ in
            body {
                let c = next.wrappingAdd(1, ordering: .relaxed).oldValue
                return c < chunks ? c * size..<min(count, (c + 1) * size) : nil
            }
        }
    }

    /// Calls `body(range)` for disjoint, contiguous ranges covering `0..<count`: one range per thread (`threads`,
    /// or ``Kernels/threadCount``) when `work` (an estimate in elementary operations) is at least `minimumWork`,
    /// else one range on the calling thread.
    static func forEachRange(_ count: Int, work: Int, minimumWork: Int = 1 << 18, threads: Int? = nil,
                             _ body: (Range<Int>) -> Void) {
        let workers = workers(count, work: work, minimumWork: minimumWork, threads: threads)
        guard workers > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        forEachPart(workers) { w in
            let lo = count * w / workers, hi = count * (w + 1) / workers
            if lo < hi { body(lo..<hi) }
        }
    }

    /// ``forEachRange(_:work:minimumWork:threads:_:)``'s choice of threads, with the items in about `chunksPerPart`
    /// chunks per thread taken as threads come free (``forEachChunk(_:chunksPerPart:parts:_:)``) instead of one fixed
    /// range each.
    static func forEachChunk(_ count: Int, work: Int, minimumWork: Int = 1 << 18, threads: Int? = nil,
                             chunksPerPart: Int, _ body: (Range<Int>) -> Void) {
        forEachChunk(count, chunksPerPart: chunksPerPart,
                     parts: workers(count, work: work, minimumWork: minimumWork, threads: threads), body)
    }

    /// `first()` and `second()` on two threads when `threads` (or ``Kernels/threadCount``) allows two, else one after
    /// the other on the calling thread; both results. For two independent pieces of sequential work of similar size
    /// (the server half's body and its heads, read and packed at load).
    static func both<A, B>(threads: Int? = nil, _ first: () -> A, _ second: () -> B) -> (A, B) {
        guard Kernels.resolvedThreads(threads) > 1 else { return (first(), second()) }
        var a: A?, b: B?
        forEachPart(2) { part in
            if part == 0 { a = first() } else { b = second() }
        }
        return (a!, b!)
    }

    /// Threads for `count` items of `work` elementary operations in all: one per thread (`threads`, or
    /// ``Kernels/threadCount``), at most one per item, when `work` is at least `minimumWork`; else one.
    private static func workers(_ count: Int, work: Int, minimumWork: Int, threads: Int?) -> Int {
        work >= minimumWork ? min(Kernels.resolvedThreads(threads), count) : 1
    }
}

/// Chunks of a product handed out per depth block to two threads, one taking them from the first chunk up, the other
/// from the last down, so that a thread the host slows down for a spell takes fewer chunks at every depth block
/// instead of holding up the join, while each chunk mostly stays with one thread (and its part of `C` in that
/// thread's cache) from one depth block to the next. A chunk's depth blocks run in order: ``take(depthBlock:fromEnd:)``
/// returns a chunk only once its previous depth block is finished, waiting (rarely, and only for a chunk the other
/// thread is running) when it is not. Nothing waits on a chunk no running thread has taken, so two parts run one after
/// the other (Dispatch's fallback) finish too. Make it, share it with both parts, ``release()`` it after the join.
struct DepthChunkSchedule: @unchecked Sendable {
    let chunks: Int, depthBlocks: Int
    /// Per depth block, the chunks not yet taken (`first | end << 32`); then per chunk, its depth blocks finished.
    private let state: UnsafeMutablePointer<Atomic<Int>>

    init(chunks: Int, depthBlocks: Int) {
        precondition(chunks > 0 && chunks < 1 << 31 && depthBlocks > 0, "DepthChunkSchedule: \(chunks) chunks")
        (self.chunks, self.depthBlocks) = (chunks, depthBlocks)
        state = .allocate(capacity: depthBlocks + chunks)
        for p in 0..<depthBlocks { (state + p).initialize(to: Atomic(chunks << 32)) }
        for i in 0..<chunks { (state + depthBlocks + i).initialize(to: Atomic(0)) }
    }

    func release() {
        state.deinitialize(count: depthBlocks + chunks)
        state.deallocate()
    }

    /// The next chunk of depth block `p` not yet taken, from the front (or, `fromEnd`, the back), once its depth
    /// block `p − 1` is finished; `nil` when every chunk of `p` is taken.
    func take(depthBlock p: Int, fromEnd: Bool) -> Int? {
        var range = state[p].load(ordering: .relaxed)
        while true {
            let (first, end) = (range & 0xFFFF_FFFF, range >> 32)
            guard first < end else { return nil }
            let next = fromEnd ? first | (end - 1) << 32 : (first + 1) | end << 32
            let (exchanged, original) = state[p].compareExchange(expected: range, desired: next, ordering: .relaxed)
            if exchanged {
                let chunk = fromEnd ? end - 1 : first
                while state[depthBlocks + chunk].load(ordering: .acquiring) < p { cladon_cpu_relax() }
                return chunk
            }
            range = original
        }
    }

    /// Marks depth block `p` of `chunk` finished (its writes visible to whichever thread takes the chunk next).
    func finish(_ chunk: Int, depthBlock p: Int) {
        state[depthBlocks + chunk].store(p + 1, ordering: .releasing)
    }

    /// Runs `chunks` chunks of `depthBlocks` depth blocks on two threads: each thread gets a scratch buffer of
    /// `scratchCount` floats, then at every depth block takes the chunks left (the caller's part from the front, the
    /// worker's from the back) and calls `body(depthBlock, chunk, firstTaken, scratch)`, where `firstTaken` says that
    /// this is the first chunk the thread takes in that depth block (to pack what its chunks share). Each chunk's
    /// depth blocks run in order, whichever thread takes them.
    static func run(chunks: Int, depthBlocks: Int, scratchCount: Int,
                    _ body: (_ depthBlock: Int, _ chunk: Int, _ firstTaken: Bool,
                             _ scratch: UnsafeMutablePointer<Float>) -> Void) {
        let schedule = DepthChunkSchedule(chunks: chunks, depthBlocks: depthBlocks)
        defer { schedule.release() }
        WorkSplit.forEachPart(2) { part in
            KernelScratch.shared.withBuffer(count: scratchCount) { scratch in
                for p in 0..<depthBlocks {
                    var firstTaken = true
                    while let chunk = schedule.take(depthBlock: p, fromEnd: part == 1) {
                        body(p, chunk, firstTaken, scratch)
                        firstTaken = false
                        schedule.finish(chunk, depthBlock: p)
                    }
                }
            }
        }
    }
}

/// Carries the join-bounded closure of ``WorkSplit`` into Dispatch's `@Sendable` one.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
