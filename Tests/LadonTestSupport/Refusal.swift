// Checks that hostile input is refused with a clear error, promptly.
import Foundation
import Testing

/// The CPU seconds (of the calling thread, ``threadCPUSeconds()``) a refusal may take: what it guards against
/// (quadratic work, unbounded reads) took 20+ s, and other load on the machine does not count.
public let promptly: Double = 2

/// Runs `body`, expecting an error whose text contains `needle`, within `seconds` of CPU time.
public func expectRefused(_ needle: String, within seconds: Double = promptly, sourceLocation: SourceLocation = #_sourceLocation,
                          _ body: () throws -> Void) {
    let start = threadCPUSeconds()
    do {
        try body()
        Issue.record("expected an error containing '\(needle)', got success", sourceLocation: sourceLocation)
    } catch {
        #expect("\(error)".contains(needle), "\(error)", sourceLocation: sourceLocation)
    }
    let used = threadCPUSeconds() - start
    #expect(used < seconds, "took \(used) CPU s", sourceLocation: sourceLocation)
}

/// Runs `body`, expecting it to return within `seconds` of CPU time.
public func timed<R>(_ seconds: Double = promptly, sourceLocation: SourceLocation = #_sourceLocation,
                     _ body: () throws -> R) rethrows -> R {
    let start = threadCPUSeconds()
    let r = try body()
    let used = threadCPUSeconds() - start
    #expect(used < seconds, "took \(used) CPU s", sourceLocation: sourceLocation)
    return r
}
