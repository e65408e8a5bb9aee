// Evaluates samples on several threads, appending each record as it finishes and reporting progress.
import Foundation

/// Runs `evaluate` over dataset indices with `jobs` concurrent workers.
public enum EvalRunner {
    /// Evaluates every index in `indices` that `store` does not already hold, and returns all records of the
    /// run (resumed ones included) sorted by index.
    ///
    /// - Parameters:
    ///   - jobs: images evaluated at once (each on its own thread).
    ///   - store: where records are appended as they finish (nil: keep them in memory only).
    ///   - progress: called after each sample with (done, total) — done counts resumed samples too.
    ///   - evaluate: builds one sample's record; it reports failures in the record's `error`, it does not throw.
    public static func run(indices: [Int], jobs: Int, store: RecordStore?,
                           progress: (@Sendable (Int, Int) -> Void)? = nil,
                           evaluate: @escaping @Sendable (Int) -> SampleRecord) throws(EvalError) -> [SampleRecord] {
        let wanted = Set(indices)
        var byIndex: [Int: SampleRecord] = [:]
        for r in store?.existing ?? [] where wanted.contains(r.index) { byIndex[r.index] = r }
        let todo = indices.filter { byIndex[$0] == nil }
        let state = RunState(done: byIndex.count)
        let total = indices.count
        progress?(byIndex.count, total)
        let workers = max(1, min(jobs, todo.count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while let position = state.next(limit: todo.count) {
                let record = evaluate(todo[position])
                if let store { do throws(EvalError) { try store.append(record) } catch { state.fail(error) } }
                let done = state.finish(record)
                progress?(done, total)
            }
        }
        if let error = state.error { throw error }
        for r in state.records { byIndex[r.index] = r }
        return byIndex.values.sorted { $0.index < $1.index }
    }
}

/// Work queue and results shared by the workers.
private final class RunState: @unchecked Sendable {
    private let lock = NSLock()
    private var cursor = 0
    private var done: Int
    private(set) var records: [SampleRecord] = []
    private(set) var error: EvalError?

    init(done: Int) { self.done = done }

    /// The next position to evaluate, or nil when all are taken or a write failed.
    func next(limit: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard error == nil, cursor < limit else { return nil }
        cursor += 1
        return cursor - 1
    }

    func finish(_ r: SampleRecord) -> Int {
        lock.lock(); defer { lock.unlock() }
        records.append(r)
        done += 1
        return done
    }

    func fail(_ e: EvalError) {
        lock.lock(); defer { lock.unlock() }
        if error == nil { error = e }
    }
}

/// A one-line progress bar on standard error (`n/N`, rate, ETA), drawn only when standard error is a terminal.
public final class ProgressBar: @unchecked Sendable {
    private let lock = NSLock()
    private let start = Date()
    private let label: String
    private var startDone: Int?
    private var lastDraw = Date.distantPast
    public let enabled: Bool

    public init(label: String, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.enabled = enabled
    }

    /// Redraws at most ten times a second, and always at the end.
    public func update(done: Int, total: Int) {
        guard enabled else { return }
        lock.lock(); defer { lock.unlock() }
        if startDone == nil { startDone = done }
        let now = Date()
        guard done == total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let line = Self.line(label: label, done: done, total: total, newSinceStart: done - (startDone ?? 0),
                             elapsed: now.timeIntervalSince(start))
        FileHandle.standardError.write(Data(("\r" + line + (done == total ? "\n" : "")).utf8))
    }

    /// `label [#####-----] 120/5000 3.2 img/s ETA 25m24s`.
    static func line(label: String, done: Int, total: Int, newSinceStart: Int, elapsed: Double) -> String {
        let width = 24
        let filled = total == 0 ? width : min(width, width * done / max(total, 1))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let rate = elapsed > 0 ? Double(newSinceStart) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : .nan
        return "\(label) [\(bar)] \(done)/\(total) \(String(format: "%.1f", rate)) img/s ETA \(duration(eta))"
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "--" }
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(String(format: "%02d", t / 60 % 60))m" : t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
    }
}
