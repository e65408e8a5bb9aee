// What can go wrong in an evaluation, with the file, field or record at fault and what to do about it.

/// Why a dataset, an annotation or results file, a result folder or an evaluation request was refused.
public enum EvalError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read.
    case unreadableFile(path: String, reason: String)
    /// The bytes are not JSON; `line` and `column` are 1-based.
    case invalidJSON(line: Int, column: Int, reason: String)
    /// The JSON is well formed but a field is missing or wrong; `path` names it, e.g. `annotations[12].bbox`.
    case invalidField(path: String, reason: String)
    /// A detection or an evaluated image names an image id that the ground truth does not have.
    case unknownImage(id: Int, context: String)
    /// A detection cannot be evaluated (a non-finite box or score); `index` is its position in the list.
    case invalidDetection(index: Int, reason: String)
    /// The dataset folder does not have the expected layout (ImageFolder, VOCdevkit, COCO images).
    case badDataset(String)
    /// A per-sample record or run description under `--output` is damaged or inconsistent.
    case badRecord(String)
    /// Result folders that cannot be combined (different task, model, dataset or settings).
    case mismatch(String)
    /// A file could not be written.
    case io(String)
    /// A command-line value is out of range (`--shard`, `--rates`, …).
    case badArgument(String)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason): "cannot read \(path): \(reason)"
        case .invalidJSON(let line, let column, let reason): "invalid JSON at line \(line), column \(column): \(reason)"
        case .invalidField(let path, let reason): "\(path): \(reason)"
        case .unknownImage(let id, let context): "\(context) names image id \(id), which is not in the ground truth"
        case .invalidDetection(let index, let reason): "detection \(index): \(reason)"
        case .badDataset(let m): "dataset: \(m)"
        case .badRecord(let m): "records: \(m)"
        case .mismatch(let m): "cannot combine results: \(m)"
        case .io(let m): m
        case .badArgument(let m): m
        }
    }
}
