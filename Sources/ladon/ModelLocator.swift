// Finds the model file: --model, then $LADON_MODEL, then the default location.
import ArgumentParser
import Foundation
import LadonCore

enum ModelLocator {
    /// `$XDG_DATA_HOME/ladon/ladon-resnet50.safetensors`, else `~/.local/share/ladon/ladon-resnet50.safetensors`.
    static var defaultPath: String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".local/share")
        return (base as NSString).appendingPathComponent("ladon/ladon-resnet50.safetensors")
    }

    static let howToGetWeights = """
        No Ladon model file was found. To get one:
          1. Download the official checkpoints (release `wacv2025` of the GitHub repository
             yoshitomo-matsubara/ladon-multi-task-sc2), e.g. for beta = 1.28:
               ilsvrc2012-splittable_resnet50-fp-beta1.28_from_resnet50.pt
               coco2017-faster_rcnn_splittable_resnet50-fp-beta1.28_fpn.pt
               pascal_voc2012-deeplabv3_splittable_resnet50-fp-beta1.28_two_stages.pt
          2. Convert them (no Python needed):
               ladon convert --classification ilsvrc2012-…pt --detection coco2017-…pt \\
                   --segmentation pascal_voc2012-…pt --output \(defaultPath)
          3. Run again, or point to the file with --model PATH or LADON_MODEL=PATH.
        """

    /// Resolves the path or throws a message that says how to get a model.
    static func resolve(_ explicit: String?) throws -> String {
        if let p = explicit {
            guard FileManager.default.fileExists(atPath: p) else {
                throw CLIError("model file \(p) does not exist.\n\n" + howToGetWeights, status: .model)
            }
            return p
        }
        if let p = ProcessInfo.processInfo.environment["LADON_MODEL"], !p.isEmpty {
            guard FileManager.default.fileExists(atPath: p) else {
                throw CLIError("LADON_MODEL points to \(p), which does not exist.\n\n" + howToGetWeights, status: .model)
            }
            return p
        }
        guard FileManager.default.fileExists(atPath: defaultPath) else { throw CLIError(howToGetWeights, status: .model) }
        return defaultPath
    }
}

/// The exit status of `ladon`, one per kind of failure (README, "Exit status").
enum ExitStatus: Int32 {
    case success = 0
    /// Some inputs (images, packets) failed; the others were processed and printed.
    case inputFailed = 1
    /// The command could not do its job (conversion failed, output not writable, …).
    case failed = 2
    /// The model file is missing, unreadable or not a valid Ladon weights file.
    case model = 3
    /// The edge server could not be reached or did not answer.
    case server = 4
    /// The command line is wrong (ArgumentParser's EX_USAGE).
    case usage = 64
}

/// An error whose message is printed as is, with the exit status it ends the command with.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    let status: ExitStatus
    init(_ message: String, status: ExitStatus = .failed) {
        description = message
        self.status = status
    }
}

/// `--model` and `--threads`, shared by every command that runs the model.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model file (.safetensors from `ladon convert`; device and server must use the same file). Default: $LADON_MODEL, then \(ModelLocator.defaultPath).")
    var model: String?

    @Option(help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Applies `--threads`, finds the model file and builds `T` from it; a load failure names the file.
    func load<T>(_ make: (String) throws -> T) throws -> T {
        if let threads { Kernels.threadCount = threads }
        let path = try ModelLocator.resolve(model)
        do { return try make(path) } catch { throw CLIError("cannot load model \(path): \(error)", status: .model) }
    }
}
