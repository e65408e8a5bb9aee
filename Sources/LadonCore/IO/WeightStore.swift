// Hierarchical, scoped lookup of model weights by name.

/// A view of a safetensors file under a name prefix: `store.scope("encoder").scope("0").tensor("weight")`
/// reads `encoder.0.weight`. Errors name the full tensor path.
public struct WeightScope: Sendable {
    /// The file the weights come from.
    public let file: SafeTensorsFile
    /// The dotted prefix of this scope ("" at the root).
    public let prefix: String

    public init(file: SafeTensorsFile, prefix: String = "") {
        self.file = file
        self.prefix = prefix
    }

    /// A child scope.
    public func scope(_ name: String) -> WeightScope {
        WeightScope(file: file, prefix: path(name))
    }

    /// The full dotted name of `name` inside this scope.
    public func path(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

    /// Whether the tensor exists.
    public func contains(_ name: String) -> Bool { file.entries[path(name)] != nil }

    /// Reads a tensor, checking its shape.
    public func tensor(_ name: String, shape: [Int]) throws(LadonError) -> Tensor {
        try file.tensor(path(name), shape: shape)
    }

    /// Reads a tensor of any shape.
    public func tensor(_ name: String) throws(LadonError) -> Tensor {
        try file.tensor(path(name))
    }

    /// Reads an integer tensor.
    public func integers(_ name: String) throws(LadonError) -> (shape: [Int], values: [Int]) {
        try file.integerTensor(path(name))
    }
}
