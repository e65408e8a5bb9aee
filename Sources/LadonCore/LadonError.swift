// The error type of the library: every failure names what was wrong and, where it helps, what to do.

/// Errors thrown by LadonCore. Each case carries enough context to say what went wrong and where.
public enum LadonError: Error, Equatable, Sendable {
    /// A weights file or a tensor in it is unusable (bad header, offsets out of range, wrong dtype...).
    case weights(String)
    /// A named tensor is missing from a weights file.
    case missingTensor(name: String, file: String)
    /// A named tensor has the wrong shape.
    case shapeMismatch(name: String, expected: [Int], actual: [Int])
    /// An entropy-coded stream or latent is invalid.
    case entropy(String)
    /// A model configuration is invalid.
    case config(String)
    /// An input (image, tensor) is unusable.
    case invalidInput(String)
    /// A PyTorch checkpoint cannot be read or mapped.
    case checkpoint(String)
    /// An encoded image (packet) was made by another model: `packetModel` is the id it carries (the server's own
    /// id is deliberately not part of the error; servers publish it separately).
    case wrongModel(packetModel: String)
    /// An encoded image's sizes do not follow from its original size under this model's preprocessing.
    case geometry(String)
}

extension LadonError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .weights(let m): return "weights: \(m)"
        case .missingTensor(let name, let file):
            return "weights: tensor '\(name)' is missing from \(file); convert the checkpoints again with `ladon convert`"
        case .shapeMismatch(let name, let expected, let actual):
            return "weights: tensor '\(name)' has shape \(actual), expected \(expected)"
        case .entropy(let m): return "entropy coding: \(m)"
        case .config(let m): return "config: \(m)"
        case .invalidInput(let m): return "input: \(m)"
        case .checkpoint(let m): return "checkpoint: \(m)"
        case .wrongModel(let id):
            return "packet was made by model \(id), not by the model this server runs; encode with the same converted weights (or the device file split from them) that the server loads"
        case .geometry(let m): return "packet geometry: \(m)"
        }
    }
}
