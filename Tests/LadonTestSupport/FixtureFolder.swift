// Committed fixtures a test target carries as resources (`resources: [.copy("Fixtures")]`).
import Foundation
import LadonCore

/// The `Fixtures` folder of a test target's resource bundle.
public struct FixtureFolder: Sendable {
    let bundle: Bundle

    /// The folder in `bundle` (a target passes its `Bundle.module`).
    public init(bundle: Bundle) { self.bundle = bundle }

    public func url(_ name: String) -> URL {
        bundle.url(forResource: "Fixtures/\(name)", withExtension: nil)!
    }
    public func exists(_ name: String) -> Bool {
        bundle.url(forResource: "Fixtures/\(name)", withExtension: nil) != nil
    }
    public func safetensors(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: url(name).path)
    }
    public func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(name)))
    }
}
