// Shared by the test targets: the tiny model fixture, copies of it with changed metadata, a scratch folder.
import Foundation
import LadonCore

/// The tiny model fixture of LadonCoreTests, reached through the source tree (the other test targets have no
/// resources of their own).
public enum TinyModel {
    /// The repository root.
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    public static let path = repository.appendingPathComponent("Tests/LadonCoreTests/Fixtures/model/tiny_model.safetensors").path
    /// A reference case of the tiny model (its `image` tensor, PyTorch's outputs).
    public static let casePath = repository.appendingPathComponent("Tests/LadonCoreTests/Fixtures/model/tiny_case0.safetensors").path

    /// The case's input image, `[1, 3, H, W]`.
    public static func image() throws -> Tensor { try SafeTensorsFile(path: casePath).tensor("image") }

    /// A copy of the tiny model whose preprocessing works at `size` (slower requests, for queueing and shutdown
    /// tests) and/or stamped with a fingerprint. Written to the scratch folder; returns its path.
    public static func copy(size: Int? = nil, fingerprint: String? = nil) throws -> String {
        let file = try SafeTensorsFile(path: path)
        var writer = SafeTensorsWriter()
        writer.metadata = file.metadata
        if let fingerprint { writer.metadata["fingerprint"] = fingerprint }
        if let size {
            var config = try LadonWeightsFormat.config(of: file)
            config.preprocessing.minSize = size
            config.preprocessing.maxSize = size
            writer.metadata["config"] = config.jsonString()
        }
        for name in file.names {
            let e = try file.entry(name)
            writer.add(name, dtype: e.dtype, shape: e.shape, bytes: try file.rawBytes(name))
        }
        let out = Scratch.path("model.safetensors")
        try writer.serialized().write(to: URL(fileURLWithPath: out))
        return out
    }
}

/// Files the tests write, in one folder per test process that is removed when the process exits.
public enum Scratch {
    public static let directory: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: Scratch.directory) }
        return dir
    }()

    /// A fresh path in the scratch folder ending in `name`.
    public static func path(_ name: String) -> String { directory.appendingPathComponent("\(UUID().uuidString)-\(name)").path }
}
