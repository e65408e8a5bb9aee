// `ladon report`: rate–accuracy over several evaluations (one per β model), as a table and SVG charts.
import ArgumentParser
import Foundation
import LadonEval

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tabulate and chart data size against accuracy over several `ladon eval` results (one per β).",
        discussion: "Each input is an `--output` folder (its summary.json) or a file saved from `ladon eval --json`.")

    @Argument(help: "Result folders or summary JSON files.")
    var results: [String]

    @Option(help: "Write an SVG chart per task: FILE.svg for one task, FILE-TASK.svg for several.")
    var plot: String?

    @Option(help: "Show the paper's published points for this variant (resnet50 or resnest269e) beside yours.")
    var paper: String?

    @Flag(help: "Print the entries as JSON instead of a table.")
    var json = false

    func validate() throws {
        if let paper, !["resnet50", "resnest269e"].contains(paper) {
            throw ValidationError("--paper must be resnet50 or resnest269e")
        }
    }

    func run() throws {
        var entries: [RateAccuracyReport.Entry] = []
        for path in results {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw CLIError("\(path) does not exist") }
            let file = isDir.boolValue ? (path as NSString).appendingPathComponent("summary.json") : path
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CLIError("\(file) is missing: run `ladon eval … --output \(path)` to the end (or `ladon eval merge --output`) first")
            }
            do {
                entries.append(.init(label: ((path as NSString).lastPathComponent as NSString).deletingPathExtension,
                                     summary: try JSONDecoder().decode(EvalSummary.self, from: data)))
            } catch { throw CLIError("\(file) is not an evaluation summary: \(error)") }
        }
        let report = RateAccuracyReport(entries: entries, paperVariant: paper)
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try e.encode(entries.map(\.summary)), as: UTF8.self))
        } else {
            print(report.table())
        }
        guard let plot else { return }
        let tasks = report.tasks
        for task in tasks {
            let path = tasks.count == 1 ? plot
                : ((plot as NSString).deletingPathExtension + "-\(task.rawValue).svg")
            do { try report.chart(for: task).render().write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw CLIError("cannot write \(path): \(error.localizedDescription)")
            }
            FileHandle.standardError.write(Data("Wrote \(path)\n".utf8))
        }
    }
}
