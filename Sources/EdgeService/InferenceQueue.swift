// Admission control: a fixed pool of inference workers off the event loops, fed by a bounded queue.
import Foundation

/// Runs model work on `workers` dedicated threads (never on SwiftNIO's event loops or the cooperative pool),
/// with at most `capacity` jobs waiting. A full queue refuses at once; a job whose client has gone, or whose
/// deadline passed while it waited, is dropped when its turn comes instead of being computed for nobody.
final class InferenceQueue: @unchecked Sendable {
    /// Why a job did not run.
    enum Refusal: Error, Equatable {
        case full, clientGone, deadlineExceeded, shuttingDown
    }

    /// How long a job waited and ran.
    struct Timing: Sendable {
        var queued: Duration
        var compute: Duration
    }

    private struct Job {
        let enqueued: ContinuousClock.Instant
        let deadline: ContinuousClock.Instant
        let clientGone: @Sendable () -> Bool
        /// Runs the work, or reports why it was dropped.
        let execute: (_ refusal: Refusal?, _ queued: Duration) -> Void
    }

    let workers: Int
    let capacity: Int
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var running = 0
    private var stopped = false
    private let observer: @Sendable (_ depth: Int, _ running: Int) -> Void
    private let onDrop: @Sendable (Refusal) -> Void

    /// - Parameters:
    ///   - observer: called with (queue depth, jobs running) whenever either changes (for gauges).
    ///   - onDrop: called for each job dropped at its turn.
    init(workers: Int, capacity: Int, observer: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
         onDrop: @escaping @Sendable (Refusal) -> Void = { _ in }) {
        precondition(workers >= 1 && capacity >= 0)
        self.workers = workers
        self.capacity = capacity
        self.observer = observer
        self.onDrop = onDrop
        for i in 0..<workers {
            let thread = Thread { [self] in workerLoop() }
            thread.name = "ladon-inference-\(i)"
            thread.stackSize = 16 << 20
            thread.start()
        }
    }

    /// Jobs waiting (not yet running).
    var depth: Int { condition.lock(); defer { condition.unlock() }; return jobs.count - head }
    /// Whether a new job would be refused now.
    var isFull: Bool { condition.lock(); defer { condition.unlock() }; return stopped || jobs.count - head + running >= capacity + workers }

    /// Queues `work` and waits for it. Refuses at once when every worker is busy and `capacity` jobs wait.
    func run<T: Sendable>(deadline: ContinuousClock.Instant, clientGone: @escaping @Sendable () -> Bool,
                          _ work: @escaping @Sendable () -> T) async -> Result<(T, Timing), Refusal> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<(T, Timing), Refusal>, Never>) in
            condition.lock()
            guard !stopped, jobs.count - head + running < capacity + workers else {
                let refusal: Refusal = stopped ? .shuttingDown : .full
                condition.unlock()
                continuation.resume(returning: .failure(refusal))
                return
            }
            jobs.append(Job(enqueued: .now, deadline: deadline, clientGone: clientGone) { refusal, queued in
                if let refusal {
                    continuation.resume(returning: .failure(refusal))
                    return
                }
                let start = ContinuousClock.now
                let value = work()
                continuation.resume(returning: .success((value, Timing(queued: queued, compute: .now - start))))
            })
            let (d, r) = (jobs.count - head, running)
            condition.signal()
            condition.unlock()
            observer(d, r)
        }
    }

    /// Lets queued jobs finish, then ends the workers; later `run` calls are refused.
    func shutdown() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func workerLoop() {
        while true {
            condition.lock()
            while head == jobs.count && !stopped { condition.wait() }
            if head == jobs.count {  // stopped and drained
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 64 && head * 2 > jobs.count {  // compact now and then
                jobs.removeFirst(head)
                head = 0
            }
            running += 1
            let (d, r) = (jobs.count - head, running)
            condition.unlock()
            observer(d, r)

            let now = ContinuousClock.now
            let refusal: Refusal? = job.clientGone() ? .clientGone : (now > job.deadline ? .deadlineExceeded : nil)
            if let refusal { onDrop(refusal) }
            job.execute(refusal, now - job.enqueued)

            condition.lock()
            running -= 1
            let (d2, r2) = (jobs.count - head, running)
            condition.unlock()
            observer(d2, r2)
        }
    }
}
