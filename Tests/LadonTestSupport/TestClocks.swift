// Test timing helpers. PerfGate: the benchmark suites run when asked for by name (`swift test --filter Perf`)
// or with LADON_PERF=1, and a plain `swift test` (and CI's `swift test --skip Perf`) skips them.
// threadCPUSeconds: the clock of the hostile-input hang guards.
import Foundation

public enum PerfGate {
    /// True when the test process was started with a `--filter` naming a Perf suite, or with `LADON_PERF` set.
    public static let enabled: Bool = {
        if ProcessInfo.processInfo.environment["LADON_PERF"] != nil { return true }
        return filters(CommandLine.arguments).contains { $0.contains("Perf") }
    }()

    public static let reason = "benchmarks run with `swift test -c release --filter Perf` (or LADON_PERF=1)"

    /// The values of `--filter X` and `--filter=X` in a test process's arguments.
    public static func filters(_ arguments: [String]) -> [String] {
        var out: [String] = []
        for (i, a) in arguments.enumerated() {
            if a == "--filter", i + 1 < arguments.count { out.append(arguments[i + 1]) }
            if a.hasPrefix("--filter=") { out.append(String(a.dropFirst("--filter=".count))) }
        }
        return out
    }

    /// Prints, once per process, how the benchmarks were built: a debug build's figures say nothing about speed.
    public static func announce() {
        _ = announcement
    }

    private static let announcement: Void = {
        #if DEBUG
        print("warning: the benchmarks are running in a debug build; their figures are not representative. "
            + "Run `swift test -c release --filter Perf` (add --no-parallel so suites do not share the cores).")
        #else
        print("Benchmarks: release build, \(ProcessInfo.processInfo.activeProcessorCount) cores.")
        #endif
    }()
}

/// CPU seconds used by the calling thread. The hang guards of the hostile-input tests bound the work a hostile
/// file causes (the quadratic cases they guard against took 20+ s), not speed, so other load on a shared machine
/// must not count: wall time would.
public func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
