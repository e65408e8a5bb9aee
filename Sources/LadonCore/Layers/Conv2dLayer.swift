// A convolution layer that owns its weights, with BatchNorm folded in at load time.

/// A 2-D convolution with optional bias, folded eval-mode BatchNorm and a fused activation.
package struct Conv2d: Sendable {
    package let parameters: Conv2dParameters
    /// `outC` values (present whenever the source had a bias or a BatchNorm).
    package let bias: [Float]?
    package let activation: Activation
    /// The weights in the form the layer's algorithm reads: GEMM panels packed once at load for the
    /// pointwise and im2col algorithms (one group), the plain tensor otherwise. Only one copy is kept.
    let storage: Storage

    enum Storage: Sendable {
        case plain(Tensor)
        case packed(PackedConvWeights)
    }

    /// `[outC, inC/groups, kH, kW]`, with any BatchNorm already folded in (unpacked on each access when
    /// the layer keeps packed weights).
    package var weight: Tensor {
        switch storage {
        case .plain(let w): w
        case .packed(let packed): packed.unpacked()
        }
    }

    package init(parameters: Conv2dParameters, weight: Tensor, bias: [Float]?, activation: Activation = .none) {
        precondition(weight.shape == parameters.weightShape, "weight \(weight.shape) != \(parameters.weightShape)")
        precondition(bias == nil || bias!.count == parameters.outChannels, "bias count != outChannels")
        self.parameters = parameters
        self.bias = bias
        self.activation = activation
        let algorithm = Kernels.conv2dAlgorithm(for: parameters)
        if parameters.groups == 1 && (algorithm == .pointwise || algorithm == .im2col) {
            storage = .packed(PackedConvWeights(weight, parameters))
        } else {
            storage = .plain(weight)
        }
    }

    /// Loads `weight` (and `bias` when `hasBias`) from `scope`, then folds the BatchNorm at `batchNorm`
    /// (`weight`, `bias`, `running_mean`, `running_var`; eval mode, `eps`) into them.
    package init(weights scope: WeightScope, parameters: Conv2dParameters, hasBias: Bool,
                batchNorm: WeightScope? = nil, epsilon: Float = 1e-5,
                activation: Activation = .none) throws(LadonError) {
        let loaded = try scope.tensor("weight", shape: parameters.weightShape)
        let b: [Float]? = hasBias ? try scope.tensor("bias", shape: [parameters.outChannels]).scalars : nil
        guard let bn = batchNorm else {
            self.init(parameters: parameters, weight: loaded, bias: b, activation: activation)
            return
        }
        let norm = try BatchNorm2d(weights: bn, channels: parameters.outChannels, epsilon: epsilon)
        // The loaded copy is scaled where it lies (no second copy of the weights).
        let (w, folded) = norm.fold(weight: consume loaded, bias: b)
        self.init(parameters: parameters, weight: w, bias: folded, activation: activation)
    }

    /// `gdn(self(x))`, with the GDN applied to each tile of the output as the direct path finishes it (in cache)
    /// when it can (``Kernels/directCanFuse(_:_:)``: the encoder's conv → GDN pairs on the C tiles, AVX2 or AVX-512); the
    /// same values either way.
    package func callAsFunction(_ x: Tensor, thenGDN gdn: GDN) -> Tensor {
        guard case .plain(let w) = storage, Kernels.conv2dAlgorithm(for: parameters) == .direct,
              Kernels.directCanFuse(parameters, gdn) else { return gdn(self(x)) }
        return Kernels.conv2d(x, weight: w, bias: bias, parameters, activation: activation, residual: nil,
                              algorithm: .direct, threads: nil, im2colBudget: Kernels.im2colBudget, thenGDN: gdn)
    }

    /// `self(x, residual: residual)`, written over `residual`'s storage when the convolution allows it
    /// (``Kernels/conv2dAddingInPlace(_:packed:bias:activation:residual:threads:)``: a 1×1 layer of at most `KC` input
    /// channels, as conv3 of ResNet-50's layer2 and layer3 blocks), which spares a fresh, cache-cold output block.
    /// Pass the shortcut with `consume` (it is not needed afterwards); a shortcut still held elsewhere is copied
    /// first, so the result is the same either way.
    package func callAsFunction(_ x: Tensor, residualInPlace residual: consuming Tensor) -> Tensor {
        var out = consume residual
        if case .packed(let packed) = storage,
           Kernels.conv2dAddingInPlace(x, packed: packed, bias: bias, activation: activation, residual: &out) {
            return out
        }
        return self(x, residual: out)
    }

    /// Applies the convolution; `residual` (same shape as the output) is added before the activation.
    package func callAsFunction(_ x: Tensor, residual: Tensor? = nil,
                               algorithm: Conv2dAlgorithm = .automatic) -> Tensor {
        if case .packed(let packed) = storage, algorithm == .automatic {
            return Kernels.conv2d(x, packed: packed, bias: bias, activation: activation, residual: residual)
        }
        return Kernels.conv2d(x, weight: weight, bias: bias, parameters, activation: activation,
                              residual: residual, algorithm: algorithm)
    }
}

/// Eval-mode BatchNorm2d statistics, used to fold the normalisation into the preceding convolution.
package struct BatchNorm2d: Sendable {
    /// Per-channel multiplier `weight / sqrt(running_var + eps)`.
    package let scale: [Float]
    /// Per-channel offset `bias − running_mean · scale`.
    package let shift: [Float]

    package init(weights bn: WeightScope, channels: Int, epsilon: Float = 1e-5) throws(LadonError) {
        let gamma = try bn.tensor("weight", shape: [channels]).scalars
        let beta = try bn.tensor("bias", shape: [channels]).scalars
        let mean = try bn.tensor("running_mean", shape: [channels]).scalars
        let variance = try bn.tensor("running_var", shape: [channels]).scalars
        var scale = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        for i in 0..<channels {
            // PyTorch evaluates (x − mean) / sqrt(var + eps) · weight + bias in float32.
            scale[i] = gamma[i] / (variance[i] + epsilon).squareRoot()
            shift[i] = beta[i] - mean[i] * scale[i]
        }
        self.scale = scale
        self.shift = shift
    }

    /// Returns `(weight · scale[oc], bias · scale + shift)` for a convolution with `outC` leading dimension.
    /// A weight passed with `consume` and held nowhere else is scaled in place.
    package func fold(weight: consuming Tensor, bias: [Float]?) -> (Tensor, [Float]) {
        let outC = weight.shape[0]
        precondition(outC == scale.count, "BatchNorm has \(scale.count) channels, conv has \(outC)")
        let per = weight.count / max(outC, 1)
        var w = consume weight
        var b = [Float](repeating: 0, count: outC)
        w.scalars.withUnsafeMutableBufferPointer { values in
            for oc in 0..<outC {
                let s = scale[oc]
                for i in oc * per..<(oc + 1) * per { values[i] *= s }
                b[oc] = (bias?[oc] ?? 0) * s + shift[oc]
            }
        }
        return (w, b)
    }
}
