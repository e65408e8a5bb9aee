// Batch inputs and outputs shared by infer, encode, decode and send: path lists, output folders, JSON error lines.
import EdgeSplit
import Foundation
import LadonCore
import LadonImage

enum Inputs {
    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]
    static let packetExtensions: Set<String> = ["ldnp"]

    /// Expands the command line's inputs, in order: `-` reads paths from standard input (one per line), `@FILE`
    /// reads them from a list file, a directory contributes its files with `extensions` recursively (sorted), any
    /// other argument is a path as is. 50,000 paths fit where the argument limit would not.
    static func expand(_ arguments: [String], extensions: Set<String>) throws -> [String] {
        var out: [String] = []
        for argument in arguments {
            if argument == "-" {
                while let line = readLine() { out += listed(line) }
            } else if argument.hasPrefix("@") {
                let list = String(argument.dropFirst())
                guard let text = try? String(contentsOfFile: list, encoding: .utf8) else {
                    throw CLIError("cannot read the list file \(list)", status: .failed)
                }
                for line in text.split(whereSeparator: \.isNewline) { out += listed(String(line)) }
            } else if isDirectory(argument) {
                out += try files(under: argument, extensions: extensions)
            } else {
                out.append(argument)
            }
        }
        return out
    }

    private static func listed(_ line: String) -> [String] {
        let path = line.trimmingCharacters(in: .whitespaces)
        return path.isEmpty || path.hasPrefix("#") ? [] : [path]
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private static func files(under root: String, extensions: Set<String>) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { throw CLIError("cannot list \(root)") }
        var found: [String] = []
        while let relative = walker.nextObject() as? String {
            if extensions.contains((relative as NSString).pathExtension.lowercased()) {
                found.append((root as NSString).appendingPathComponent(relative))
            }
        }
        return found.sorted()
    }
}

/// Names per-input output files in one folder: `<stem><suffix>`, with `-2`, `-3`… when two inputs share a stem.
struct OutputFolder {
    let directory: String
    private var used: [String: Int] = [:]

    init(_ directory: String) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw CLIError("cannot create --output-dir \(directory): \(error.localizedDescription)")
        }
        self.directory = directory
    }

    /// The stem for one input (call once per input).
    mutating func stem(for input: String) -> String {
        let base = ((input as NSString).lastPathComponent as NSString).deletingPathExtension
        let n = used[base, default: 0] + 1
        used[base] = n
        return n == 1 ? base : "\(base)-\(n)"
    }

    func path(_ stem: String, _ suffix: String) -> String { (directory as NSString).appendingPathComponent(stem + suffix) }
}

/// The JSON line printed for an input that failed (`--json`): `{"file", "error": {"code", "message"}}`.
struct FailureLine: Encodable {
    var file: String
    var error: APIErrorBody.Detail

    init(file: String, error: any Error) {
        self.file = file
        let code: String
        switch error {
        case is ImageError: code = "bad_image"
        case is PacketError: code = "bad_packet"
        case LadonError.wrongModel: code = "wrong_model"
        case is LadonError: code = "bad_input"
        default: code = "failed"
        }
        self.error = .init(code: code, message: "\(error)")
    }

    func json() -> String {
        String(decoding: (try? InferenceSummary.jsonEncoder().encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// Reports one failed input: always on stderr, and as a JSON line on stdout with `--json`.
func reportFailure(_ file: String, _ error: any Error, json: Bool) {
    FileHandle.standardError.write(Data("ladon: \(file): \(error)\n".utf8))
    if json { print(FailureLine(file: file, error: error).json()) }
}
