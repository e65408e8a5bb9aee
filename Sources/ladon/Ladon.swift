// The `ladon` command: a thin front end over LadonCore, LadonImage and EdgeSplit.
import ArgumentParser
import Foundation
import LadonCore
import LadonImage
import LadonEval

@main
struct Ladon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ladon",
        abstract: "Ladon split-computing inference: ImageNet classification, COCO detection and VOC segmentation from one encoder.",
        version: LadonVersion.current,
        subcommands: [Infer.self, Convert.self, Info.self, Encode.self, Decode.self, SplitModel.self, Serve.self, Send.self, Eval.self, Report.self, Bench.self])

    /// Runs the command; errors end it with the exit status of their kind (``ExitStatus``).
    static func main() async {
        AllocatorTuning.keepLargeBlocksForReuse()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            fail(error.description, error.status)
        } catch let error as ImageError {
            fail("\(error)", .inputFailed)
        } catch let error as EvalError {
            fail("\(error)", .failed)
        } catch let error as LadonError {
            fail("\(error)", .failed)
        } catch {
            exit(withError: error)
        }
    }

    static func fail(_ message: String, _ status: ExitStatus) -> Never {
        FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
        Foundation.exit(status.rawValue)
    }
}
