// The result directory of one run: `run.json` plus `records.jsonl`, appended as samples finish, so an
// interrupted evaluation resumes where it stopped.
import Foundation

/// A result directory (`--output DIR`).
///
/// Records are appended one JSON line at a time and flushed, so after a crash or Ctrl-C at most the last line is
/// incomplete; reopening drops it and keeps everything before it.
public final class RecordStore: @unchecked Sendable {
    public let directory: String
    public let run: EvalRun
    /// Records already in the directory when it was opened (resumed work), in file order.
    public let existing: [SampleRecord]

    private let handle: FileHandle
    private let lock = NSLock()
    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    public static let runFile = "run.json"
    public static let recordsFile = "records.jsonl"

    /// Opens `directory` for `run`, creating it if needed. A directory from another run (different task, model,
    /// dataset, limit or shard) is refused rather than mixed.
    public init(directory: String, run: EvalRun) throws(EvalError) {
        self.directory = directory
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .io("cannot create the output folder \(directory): \(error.localizedDescription)")
        }
        let runPath = (directory as NSString).appendingPathComponent(Self.runFile)
        let recordsPath = (directory as NSString).appendingPathComponent(Self.recordsFile)
        if fm.fileExists(atPath: runPath) {
            let previous = try Self.readRun(runPath)
            if let why = run.conflicts(with: previous, ignoringShard: false) {
                throw .mismatch("\(directory) holds another run (\(why)); use a new --output folder or remove it")
            }
        }
        do {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try e.encode(run).write(to: URL(fileURLWithPath: runPath), options: .atomic)
        } catch { throw .io("cannot write \(runPath): \(error.localizedDescription)") }
        self.run = run
        let (records, goodLength) = try Self.readRecords(recordsPath)
        existing = records
        if !fm.fileExists(atPath: recordsPath) { _ = fm.createFile(atPath: recordsPath, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: recordsPath) else { throw .io("cannot open \(recordsPath) for writing") }
        do {
            try h.truncate(atOffset: UInt64(goodLength))  // drops a line cut off by an interruption
            try h.seekToEnd()
        } catch { throw .io("cannot prepare \(recordsPath): \(error.localizedDescription)") }
        handle = h
    }

    deinit { try? handle.close() }

    /// Appends one record and flushes it to the file.
    public func append(_ record: SampleRecord) throws(EvalError) {
        let line: Data
        do { line = try encoder.encode(record) + Data("\n".utf8) } catch { throw .io("cannot encode record \(record.index): \(error)") }
        lock.lock()
        defer { lock.unlock() }
        do { try handle.write(contentsOf: line) } catch { throw .io("cannot write to \(directory): \(error.localizedDescription)") }
    }

    /// Reads a finished (or interrupted) result directory.
    public static func load(_ directory: String) throws(EvalError) -> (run: EvalRun, records: [SampleRecord]) {
        let run = try readRun((directory as NSString).appendingPathComponent(runFile))
        let (records, _) = try readRecords((directory as NSString).appendingPathComponent(recordsFile))
        return (run, records)
    }

    static func readRun(_ path: String) throws(EvalError) -> EvalRun {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .badRecord("\(path) is missing: is this a `ladon eval --output` folder?")
        }
        do { return try JSONDecoder().decode(EvalRun.self, from: data) } catch {
            throw .badRecord("\(path) is not a run description: \(error)")
        }
    }

    /// The records of a JSONL file and the byte length of its complete lines. Only the last line may be damaged
    /// (an interrupted write); damage anywhere else is an error.
    static func readRecords(_ path: String) throws(EvalError) -> ([SampleRecord], Int) {
        guard let data = FileManager.default.contents(atPath: path) else { return ([], 0) }
        let bytes = [UInt8](data)
        var records: [SampleRecord] = []
        var start = 0, lineNumber = 0
        let decoder = JSONDecoder()
        while start < bytes.count {
            lineNumber += 1
            guard let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else { break }  // cut-off last line
            let line = Data(bytes[start..<newline])
            do { records.append(try decoder.decode(SampleRecord.self, from: line)) } catch {
                if newline + 1 >= bytes.count { break }
                throw .badRecord("\(path) line \(lineNumber) is not a record (\(error)); the file is damaged")
            }
            start = newline + 1
        }
        return (records, start)
    }
}
