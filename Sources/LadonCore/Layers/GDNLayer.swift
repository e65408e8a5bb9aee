// CompressAI's simplified GDN1 / inverse GDN1 layer, reparametrised once at load time.

/// GDN1 (`inverse == false`, encoder) or IGDN1 (`inverse == true`, decoder) from CompressAI.
///
/// The checkpoint stores reparametrised `beta` and `gamma`; the effective values are computed once, in
/// float32, exactly as `NonNegativeParametrizer.forward` does: `max(p, bound)² − pedestal`.
package struct GDN: Sendable {
    package let channels: Int
    package let inverse: Bool
    /// Effective `beta` (C).
    package let beta: [Float]
    /// Effective `gamma` `[C, C]`, row = output channel.
    package let gamma: Tensor
    /// `gamma` packed once for the GEMM (C² floats: small beside the convolutions).
    let packedGamma: PackedMatrix

    package init(beta: [Float], gamma: Tensor, inverse: Bool) {
        precondition(gamma.shape == [beta.count, beta.count])
        self.channels = beta.count
        self.beta = beta
        self.gamma = gamma
        self.packedGamma = PackedMatrix(gamma)
        self.inverse = inverse
    }

    /// Loads `beta`, `gamma` and the four reparametrisation buffers from `scope`.
    package init(weights scope: WeightScope, channels: Int, inverse: Bool) throws(LadonError) {
        let beta = try scope.tensor("beta", shape: [channels]).scalars
        let gamma = try scope.tensor("gamma", shape: [channels, channels])
        let betaPedestal = try Self.scalar(scope, "beta_reparam.pedestal", default: 0x1p-36)
        let betaBound = try Self.scalar(scope, "beta_reparam.lower_bound.bound", default: Float((1e-6 + 0x1p-36).squareRoot()))
        let gammaPedestal = try Self.scalar(scope, "gamma_reparam.pedestal", default: 0x1p-36)
        let gammaBound = try Self.scalar(scope, "gamma_reparam.lower_bound.bound", default: 0x1p-18)
        let effBeta = beta.map { max($0, betaBound) * max($0, betaBound) - betaPedestal }
        let effGamma = Tensor(shape: gamma.shape,
                              scalars: gamma.scalars.map { max($0, gammaBound) * max($0, gammaBound) - gammaPedestal })
        self.init(beta: effBeta, gamma: effGamma, inverse: inverse)
    }

    private static func scalar(_ scope: WeightScope, _ name: String, default value: Float) throws(LadonError) -> Float {
        guard scope.contains(name) else { return value }
        return try scope.tensor(name, shape: [1]).scalars[0]
    }

    /// Applies the layer. Takes `x` by ownership: a temporary (the convolution before it) is normalised in
    /// place; a tensor the caller still holds is copied first.
    package func callAsFunction(_ x: consuming Tensor) -> Tensor {
        var y = x
        Kernels.gdnInPlace(&y, beta: beta, gamma: gamma, inverse: inverse, packedGamma: packedGamma)
        return y
    }
}
