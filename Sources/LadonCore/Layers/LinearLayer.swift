// A fully connected layer that owns its weights.

/// `y = x·Wᵀ + b` (PyTorch `nn.Linear`), with an optional fused activation.
package struct Linear: Sendable {
    /// `[out, in]` packed once at load as the `A` operand of `y·ᵀ = W·xᵀ` (the only copy kept).
    package let packedWeight: PackedMatrix
    package let bias: [Float]?
    package let activation: Activation

    package init(weight: Tensor, bias: [Float]?, activation: Activation = .none) {
        precondition(weight.rank == 2)
        precondition(bias == nil || bias!.count == weight.shape[0], "bias count != out features")
        self.packedWeight = PackedMatrix(weight)
        self.bias = bias
        self.activation = activation
    }

    /// `[out, in]` (unpacked on each access).
    package var weight: Tensor { Tensor(shape: [outFeatures, inFeatures], scalars: packedWeight.unpacked()) }

    /// Loads `weight` `[outFeatures, inFeatures]` and `bias` from `scope`.
    package init(weights scope: WeightScope, inFeatures: Int, outFeatures: Int, hasBias: Bool = true,
                activation: Activation = .none) throws(LadonError) {
        packedWeight = try scope.packedMatrix("weight", shape: [outFeatures, inFeatures])
        bias = hasBias ? try scope.tensor("bias", shape: [outFeatures]).scalars : nil
        self.activation = activation
    }

    package var inFeatures: Int { packedWeight.columns }
    package var outFeatures: Int { packedWeight.rows }

    /// `x: [N, in]` → `[N, out]`.
    package func callAsFunction(_ x: Tensor) -> Tensor {
        Kernels.linear(x, packed: packedWeight, bias: bias, activation: activation)
    }
}
