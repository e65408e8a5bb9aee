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
        self.init(parameters: parameters, bias: bias, activation: activation,
                  storage: Self.keepsPacked(parameters) ? .packed(PackedConvWeights(weight, parameters)) : .plain(weight))
    }

    /// Whether the layer's algorithm reads prepacked panels (pointwise and im2col, one group).
    static func keepsPacked(_ parameters: Conv2dParameters) -> Bool {
        let algorithm = Kernels.conv2dAlgorithm(for: parameters)
        return parameters.groups == 1 && (algorithm == .pointwise || algorithm == .im2col)
    }

    /// Loads `weight` (and `bias` when `hasBias`) from `scope`, then folds the BatchNorm at `batchNorm`
    /// (`weight`, `bias`, `running_mean`, `running_var`; eval mode, `eps`) into them. Packed layers are packed
    /// straight from the file's bytes with the BatchNorm's scale applied on the way (no copy of the weights).
    package init(weights scope: WeightScope, parameters: Conv2dParameters, hasBias: Bool,
                batchNorm: WeightScope? = nil, epsilon: Float = 1e-5,
                activation: Activation = .none) throws(LadonError) {
        let p = parameters
        // Read and checked in this order, whatever the layer keeps: weight, bias, BatchNorm.
        let entry = try scope.file.entry(scope.path("weight"))
        guard entry.shape == p.weightShape else {
            throw .shapeMismatch(name: scope.path("weight"), expected: p.weightShape, actual: entry.shape)
        }
        let b: [Float]? = hasBias ? try scope.tensor("bias", shape: [p.outChannels]).scalars : nil
        let norm = try batchNorm.map { bn throws(LadonError) in try BatchNorm2d(weights: bn, channels: p.outChannels, epsilon: epsilon) }
        let storage: Storage
        if Self.keepsPacked(p) {
            storage = .packed(try scope.withFloats("weight", shape: p.weightShape) {
                PackedConvWeights($0, p, outputScale: norm?.scale)
            })
        } else {
            var w = try scope.tensor("weight", shape: p.weightShape)
            // The loaded copy is scaled where it lies (no second copy of the weights).
            if let norm { w = norm.scaled(consume w) }
            storage = .plain(w)
        }
        self.init(parameters: p, bias: norm.map { $0.foldedBias(b) } ?? b, activation: activation, storage: storage)
    }

    private init(parameters: Conv2dParameters, bias: [Float]?, activation: Activation, storage: Storage) {
        self.parameters = parameters
        self.bias = bias
        self.activation = activation
        self.storage = storage
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

    /// `bias · scale + shift` (a missing bias counts as zeros): the bias of the folded convolution.
    package func foldedBias(_ bias: [Float]?) -> [Float] {
        (0..<scale.count).map { oc in (bias?[oc] ?? 0) * scale[oc] + shift[oc] }
    }

    /// Returns `(weight · scale[oc], bias · scale + shift)` for a convolution with `outC` leading dimension.
    /// A weight passed with `consume` and held nowhere else is scaled in place.
    package func fold(weight: consuming Tensor, bias: [Float]?) -> (Tensor, [Float]) {
        (scaled(consume weight), foldedBias(bias))
    }

    /// `weight · scale[oc]` for a convolution with `outC` leading dimension; scaled in place when passed with `consume`
    /// and held nowhere else.
    package func scaled(_ weight: consuming Tensor) -> Tensor {
        let outC = weight.shape[0]
        precondition(outC == scale.count, "BatchNorm has \(scale.count) channels, conv has \(outC)")
        let per = weight.count / max(outC, 1)
        var w = consume weight
        w.scalars.withUnsafeMutableBufferPointer { values in
            for oc in 0..<outC {
                let s = scale[oc]
                for i in oc * per..<(oc + 1) * per { values[i] *= s }
            }
        }
        return w
    }
}
