// A fully connected layer that owns its weights.

/// `y = x·Wᵀ + b` (PyTorch `nn.Linear`), with an optional fused activation.
package struct Linear: Sendable {
    /// `[out, in]`.
    package let weight: Tensor
    package let bias: [Float]?
    package let activation: Activation

    package init(weight: Tensor, bias: [Float]?, activation: Activation = .none) {
        precondition(weight.rank == 2)
        self.weight = weight
        self.bias = bias
        self.activation = activation
    }

    /// Loads `weight` `[outFeatures, inFeatures]` and `bias` from `scope`.
    package init(weights scope: WeightScope, inFeatures: Int, outFeatures: Int, hasBias: Bool = true,
                activation: Activation = .none) throws(LadonError) {
        let w = try scope.tensor("weight", shape: [outFeatures, inFeatures])
        let b = hasBias ? try scope.tensor("bias", shape: [outFeatures]).scalars : nil
        self.init(weight: w, bias: b, activation: activation)
    }

    package var inFeatures: Int { weight.shape[1] }
    package var outFeatures: Int { weight.shape[0] }

    /// `x: [N, in]` → `[N, out]`.
    package func callAsFunction(_ x: Tensor) -> Tensor {
        Kernels.linear(x, weight: weight, bias: bias, activation: activation)
    }
}
