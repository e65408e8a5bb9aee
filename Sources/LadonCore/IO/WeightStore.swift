// Hierarchical, scoped lookup of model weights by name.

/// A view of a safetensors file under a name prefix: `store.scope("encoder").scope("0").tensor("weight")`
/// reads `encoder.0.weight`. Errors name the full tensor path.
package struct WeightScope: Sendable {
    /// The file the weights come from.
    package let file: SafeTensorsFile
    /// The dotted prefix of this scope ("" at the root).
    package let prefix: String

    package init(file: SafeTensorsFile, prefix: String = "") {
        self.file = file
        self.prefix = prefix
    }

    /// A child scope.
    package func scope(_ name: String) -> WeightScope {
        WeightScope(file: file, prefix: path(name))
    }

    /// The full dotted name of `name` inside this scope.
    package func path(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

    /// Whether the tensor exists.
    package func contains(_ name: String) -> Bool { file.entries[path(name)] != nil }

    /// Reads a tensor, checking its shape.
    package func tensor(_ name: String, shape: [Int]) throws(LadonError) -> Tensor {
        try file.tensor(path(name), shape: shape)
    }

    /// Reads a tensor of any shape.
    package func tensor(_ name: String) throws(LadonError) -> Tensor {
        try file.tensor(path(name))
    }

    /// Reads a `[rows, columns]` tensor packed for the GEMM (see ``SafeTensorsFile/packedMatrix(_:shape:)``).
    package func packedMatrix(_ name: String, shape: [Int]) throws(LadonError) -> PackedMatrix {
        try file.packedMatrix(path(name), shape: shape)
    }

    /// A tensor's values without a copy of their own where the file allows (see
    /// ``SafeTensorsFile/withFloats(_:shape:_:)``).
    package func withFloats<R>(_ name: String, shape: [Int], _ body: (UnsafeBufferPointer<Float>) -> R) throws(LadonError) -> R {
        try file.withFloats(path(name), shape: shape, body)
    }

    /// Reads an integer tensor.
    package func integers(_ name: String) throws(LadonError) -> (shape: [Int], values: [Int]) {
        try file.integerTensor(path(name))
    }
}
