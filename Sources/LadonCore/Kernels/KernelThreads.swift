// Thread-count setting and reusable scratch memory shared by the multi-threaded kernels.
import Dispatch
import Foundation

extension Kernels {
    /// The number of threads the kernels use when a call does not pass `threads:` explicitly.
    ///
    /// Defaults to the active processor count (at least 1). Setting it affects later calls from every
    /// thread; tests that need a fixed count should pass `threads:` to the kernel instead.
    public static var threadCount: Int {
        get { threadSetting.value }
        set { threadSetting.value = max(1, newValue) }
    }

    private static let threadSetting = LockedInt(max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// `requested` (or ``threadCount``) clamped to at least 1.
    @usableFromInline
    static func resolvedThreads(_ requested: Int?) -> Int { max(1, requested ?? threadCount) }
}

/// An `Int` behind a lock (the platform floor, macOS 14, predates `Synchronization.Mutex`).
final class LockedInt: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Int
    init(_ value: Int) { stored = value }
    var value: Int {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}

/// A small pool of 64-byte-aligned float buffers, so hot kernels do not page-fault fresh memory per call.
/// Buffers are handed out exclusively and returned by ``withBuffer(count:_:)``.
final class KernelScratch: @unchecked Sendable {
    static let shared = KernelScratch()

    private let lock = NSLock()
    private var free: [(pointer: UnsafeMutablePointer<Float>, count: Int)] = []
    /// The pool keeps at most this many floats cached (64 MiB); larger leftovers are released.
    private let cachedLimit = 16 << 20

    /// Calls `body` with an exclusive buffer of at least `count` floats (contents undefined).
    func withBuffer<R>(count: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        let buffer = acquire(max(count, 16))
        defer { release(buffer) }
        return body(buffer.pointer)
    }

    private func acquire(_ count: Int) -> (pointer: UnsafeMutablePointer<Float>, count: Int) {
        lock.lock()
        // Smallest cached buffer that fits.
        var best: Int?
        for (i, entry) in free.enumerated() where entry.count >= count {
            if best == nil || entry.count < free[best!].count { best = i }
        }
        if let i = best {
            let entry = free.remove(at: i)
            lock.unlock()
            return entry
        }
        lock.unlock()
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        return (raw.bindMemory(to: Float.self, capacity: count), count)
    }

    private func release(_ entry: (pointer: UnsafeMutablePointer<Float>, count: Int)) {
        lock.lock()
        free.append(entry)
        var evicted: [UnsafeMutablePointer<Float>] = []
        // Drop the smallest buffers first while over the limit (large ones are the expensive ones to fault in).
        while free.count > 1, free.reduce(0, { $0 + $1.count }) > cachedLimit || free.count > 8 {
            let i = free.indices.min { free[$0].count < free[$1].count }!
            evicted.append(free.remove(at: i).pointer)
        }
        lock.unlock()
        for p in evicted { UnsafeMutableRawPointer(p).deallocate() }
    }
}

