// Checks that hostile input is refused with a clear error, promptly.
import Foundation
import Testing

/// A bound generous enough for a loaded machine running the suite in parallel; what it guards against (quadratic
/// work, unbounded reads) takes minutes, not seconds.
public let promptly: Double = 10

/// Runs `body`, expecting an error whose text contains `needle`, within `seconds`.
public func expectRefused(_ needle: String, within seconds: Double = promptly, sourceLocation: SourceLocation = #_sourceLocation,
                          _ body: () throws -> Void) {
    let start = Date()
    do {
        try body()
        Issue.record("expected an error containing '\(needle)', got success", sourceLocation: sourceLocation)
    } catch {
        #expect("\(error)".contains(needle), "\(error)", sourceLocation: sourceLocation)
    }
    let elapsed = Date().timeIntervalSince(start)
    #expect(elapsed < seconds, "took \(elapsed) s", sourceLocation: sourceLocation)
}

/// Runs `body`, expecting it to return within `seconds`.
public func timed<R>(_ seconds: Double = promptly, sourceLocation: SourceLocation = #_sourceLocation,
                     _ body: () throws -> R) rethrows -> R {
    let start = Date()
    let r = try body()
    let elapsed = Date().timeIntervalSince(start)
    #expect(elapsed < seconds, "took \(elapsed) s", sourceLocation: sourceLocation)
    return r
}
