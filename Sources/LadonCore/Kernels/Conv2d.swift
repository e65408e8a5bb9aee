// Convolution dispatch: picks an algorithm per shape; tests and benchmarks can force one.

/// The convolution algorithms, selectable for tests and benchmarks.
package enum Conv2dAlgorithm: String, Sendable, CaseIterable {
    /// Choose per shape (see ``Kernels/conv2dAlgorithm(for:)``).
    case automatic
    /// ``Kernels/conv2dReference(_:weight:bias:_:activation:residual:)``.
    case reference
    /// 1×1, no padding, one group: a GEMM over the channel dimension (the input is subsampled first
    /// when strided). Other shapes fall back to ``im2col``.
    case pointwise
    /// im2col + GEMM, tiled over output rows to bound the buffer; handles every shape.
    case im2col
    /// Direct convolution (no im2col buffer): a register-blocked 6-channel × 16-column kernel over a
    /// padded, stride-phase-split copy of the input; handles every shape.
    case direct
}

extension Kernels {
    /// `out = activation(conv(input, weight) + bias + residual)`, NCHW.
    ///
    /// - Parameters:
    ///   - input: `[N, inC, H, W]`.
    ///   - weight: `[outC, inC/groups, kH, kW]`.
    ///   - bias: `outC` values or `nil`.
    ///   - p: stride, padding, dilation and groups.
    ///   - activation: applied last (`.none` or `.relu`).
    ///   - residual: optional `[N, outC, P, Q]` tensor added before the activation (ResNet shortcut).
    ///   - algorithm: `.automatic` picks per shape.
    ///   - threads: worker threads (default ``threadCount``).
    package static func conv2d(_ input: Tensor, weight: Tensor, bias: [Float]?, _ p: Conv2dParameters,
                              activation: Activation = .none, residual: Tensor? = nil,
                              algorithm: Conv2dAlgorithm = .automatic, threads: Int? = nil) -> Tensor {
        conv2d(input, weight: weight, bias: bias, p, activation: activation, residual: residual,
               algorithm: algorithm, threads: threads, im2colBudget: im2colBudget)
    }

    /// The same convolution with weights prepacked for the GEMM (a one-group layer whose `.automatic`
    /// algorithm is `.pointwise` or `.im2col`); `p` is `packed.parameters`.
    /// `borderedPlanes: false` keeps the unbordered im2col packing (tests compare the two; results are identical).
    package static func conv2d(_ input: Tensor, packed: PackedConvWeights, bias: [Float]?,
                              activation: Activation = .none, residual: Tensor? = nil, threads: Int? = nil,
                              im2colBudget: Int = im2colBudget, borderedPlanes: Bool = true) -> Tensor {
        let algorithm = conv2dAlgorithm(for: packed.parameters)
        precondition(algorithm == .pointwise || algorithm == .im2col, "conv2d: packed weights need a GEMM algorithm")
        if input.rank == 4, input.c == packed.parameters.inChannels,
           usesWinograd(packed.parameters, height: input.h, width: input.w) {
            return conv2dWinograd(input, weights: packed.winograd(), padding: packed.parameters.paddingHeight, bias: bias,
                                  activation: activation, residual: residual, threads: threads)
        }
        return conv2d(input, weight: Tensor(shape: [0]), bias: bias, packed.parameters, activation: activation,
                      residual: residual, algorithm: algorithm, threads: threads, im2colBudget: im2colBudget,
                      packed: packed, borderedPlanes: borderedPlanes)
    }

    /// ``conv2d(_:packed:bias:activation:residual:threads:im2colBudget:borderedPlanes:)`` with the result written over
    /// `residual`, for a ResNet shortcut that is not needed afterwards. A fresh output block is often cold in cache
    /// (every store then fetches its line from memory first), while the shortcut was just read: conv3 of a layer2
    /// block writes 5.5 MB. Only where each output element is made by one store that first reads the same element of
    /// the residual: a stride-1 1×1 convolution whose GEMM runs a single depth block (`inChannels` at most the
    /// blocking's `KC`, so no partial sums are stored before the residual is added). Same values as the out-of-place
    /// call. When `residual`'s storage is shared it is copied first (copy on write), so other holders never see the
    /// change.
    /// - Returns: `false`, with `residual` untouched, when the convolution does not qualify.
    package static func conv2dAddingInPlace(_ input: Tensor, packed: PackedConvWeights, bias: [Float]?,
                                           activation: Activation, residual: inout Tensor, threads: Int? = nil) -> Bool {
        let p = packed.parameters
        guard isPointwise(p), p.strideHeight == 1, p.strideWidth == 1, packed.full != nil,
              GEMMBlocking.preferred.depthBlock(p.inChannels) == p.inChannels,
              input.rank == 4, input.c == p.inChannels, input.count > 0,
              residual.shape == [input.n, p.outChannels, input.h, input.w] else { return false }
        precondition(bias == nil || bias!.count == p.outChannels, "conv2d: bias count != \(p.outChannels)")
        residual.withUnsafeMutableBufferPointer { shortcut in
            runConv(input, weight: Tensor(shape: [0]), bias: bias, p, oh: input.h, ow: input.w, activation: activation,
                    residual: UnsafePointer(shortcut.baseAddress!), output: shortcut.baseAddress!, algorithm: .pointwise,
                    threads: resolvedThreads(threads), im2colBudget: im2colBudget, packed: packed)
        }
        return true
    }

    /// ``conv2d(_:weight:bias:_:activation:residual:algorithm:threads:)`` with an explicit im2col buffer
    /// bound in floats (tests lower it to exercise the row tiling), and optionally prepacked weights (then
    /// `weight` is not read).
    static func conv2d(_ input: Tensor, weight: Tensor, bias: [Float]?, _ p: Conv2dParameters,
                       activation: Activation, residual: Tensor?, algorithm: Conv2dAlgorithm, threads: Int?,
                       im2colBudget: Int, packed: PackedConvWeights? = nil, borderedPlanes: Bool = true,
                       thenGDN gdn: GDN? = nil) -> Tensor {
        precondition(input.rank == 4 && input.c == p.inChannels, "conv2d: input \(input.shape) does not match \(p)")
        precondition(packed != nil || weight.shape == p.weightShape, "conv2d: weight \(weight.shape) != \(p.weightShape)")
        precondition(bias == nil || bias!.count == p.outChannels, "conv2d: bias count != \(p.outChannels)")
        let (n, h, w) = (input.n, input.h, input.w)
        let (oh, ow) = (max(p.outputHeight(h), 0), max(p.outputWidth(w), 0))
        let outShape = [n, p.outChannels, oh, ow]
        if let r = residual { precondition(r.shape == outShape, "conv2d: residual \(r.shape) != \(outShape)") }
        var chosen = algorithm == .automatic ? conv2dAlgorithm(for: p) : algorithm
        if chosen == .reference {
            return conv2dReference(input, weight: weight, bias: bias, p, activation: activation, residual: residual)
        }
        if chosen == .pointwise && !isPointwise(p) { chosen = .im2col }
        if n == 0 || oh == 0 || ow == 0 || h == 0 || w == 0 {
            // No output, or an empty input: the output is the epilogue applied to zero sums.
            return Tensor(shape: outShape, unsafeUninitialized: { out in
                for i in 0..<out.count {
                    let oc = (i / max(oh * ow, 1)) % p.outChannels
                    out[i] = activation.apply((bias?[oc] ?? 0) + (residual?.scalars[i] ?? 0))
                }
            })
        }
        let workers = resolvedThreads(threads)
        return Tensor(shape: outShape, unsafeUninitialized: { out in
            (residual ?? Tensor(shape: [0])).withUnsafeBufferPointer { rv in
                runConv(input, weight: weight, bias: bias, p, oh: oh, ow: ow, activation: activation,
                        residual: residual == nil ? nil : rv.baseAddress, output: out.baseAddress!, algorithm: chosen,
                        threads: workers, im2colBudget: im2colBudget, packed: packed, borderedPlanes: borderedPlanes,
                        gdn: gdn)
            }
        })
    }

    /// Runs the convolution `chosen` (`.pointwise`, `.direct` or `.im2col`) of a non-empty `input` into `output`
    /// (`[N, outC, oh, ow]`), adding `residual` (which may be `output` itself, see
    /// ``conv2dAddingInPlace(_:packed:bias:activation:residual:threads:)``).
    private static func runConv(_ input: Tensor, weight: Tensor, bias: [Float]?, _ p: Conv2dParameters, oh: Int, ow: Int,
                                activation: Activation, residual: UnsafePointer<Float>?,
                                output: UnsafeMutablePointer<Float>, algorithm chosen: Conv2dAlgorithm, threads: Int,
                                im2colBudget: Int, packed: PackedConvWeights?, borderedPlanes: Bool = true,
                                gdn: GDN? = nil) {
        let biasValues = bias ?? []
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { wt in
                biasValues.withUnsafeBufferPointer { bv in
                    let job = ConvJob(
                        p: p, batch: input.n, h: input.h, w: input.w, oh: oh, ow: ow,
                        input: x.baseAddress!, weight: wt.baseAddress!,
                        bias: bias == nil ? nil : bv.baseAddress, residual: residual,
                        relu: activation == .relu, output: output, threads: threads,
                        im2colBudget: im2colBudget, packed: packed, borderedPlanes: borderedPlanes, gdn: gdn)
                    switch chosen {
                    case .pointwise: conv2dPointwise(job)
                    case .direct: conv2dDirect(job)
                    default: conv2dIm2col(job)
                    }
                }
            }
        }
    }

    /// The algorithm `.automatic` runs for `p`:
    /// - 1×1, no padding, one group → `.pointwise` (one GEMM per image; strided ones subsample first);
    /// - at most 4 input channels per group (the RGB 5×5 stride-2 encoder stem), or at most 24 output
    ///   channels per group (the 48→24 encoder conv), or 48 on the C tile kernels (the 96→48 encoder conv) →
    ///   `.direct`: with so few output rows to amortise it over, packing the im2col matrix costs more than the
    ///   direct kernel loses (measured 1.3–1.4× faster on the first two layers at 416²; the 96→48 layer, 2 threads,
    ///   GEMMPerfTests/encoderLayerTimings: on Zen 3 16.0 ms against 17.3 with im2col, on an AVX-512 Xeon with the
    ///   12×32 direct tiles 12.3–13.7 against 13.4–16.1; the portable Swift tiles keep im2col there);
    /// - everything else → `.im2col` (measured 1.2–2× faster than `.direct` on the ResNet and decoder convs).
    package static func conv2dAlgorithm(for p: Conv2dParameters) -> Conv2dAlgorithm {
        if isPointwise(p) { return .pointwise }
        let directOutputs = directTilesAreC ? 48 : 24
        if p.inChannels / p.groups <= 4 || p.outChannels / p.groups <= directOutputs { return .direct }
        return .im2col
    }

    static func isPointwise(_ p: Conv2dParameters) -> Bool {
        p.kernelHeight == 1 && p.kernelWidth == 1 && p.paddingHeight == 0 && p.paddingWidth == 0 && p.groups == 1
    }

    /// 1×1 convolution as `out[b] = W[outC×inC] · x[b][inC×HW]`, bias/residual/ReLU fused into the GEMM.
    static func conv2dPointwise(_ job: ConvJob) {
        let p = job.p
        if p.strideHeight != 1 || p.strideWidth != 1 {
            // The subsampled input is exactly the 1×1 im2col matrix.
            conv2dIm2col(job)
            return
        }
        let hw = job.h * job.w
        if let packed = job.packed, let full = packed.full {
            for b in 0..<job.batch {
                gemm(packed: full, n: hw, b: job.input + b * p.inChannels * hw, ldb: hw,
                     c: job.output + b * p.outChannels * hw, ldc: hw, epilogue: job.epilogue(batch: b, channel: 0, row: 0),
                     threads: job.threads)
            }
            return
        }
        for b in 0..<job.batch {
            let op = GEMMOperands(
                m: p.outChannels, n: hw, k: p.inChannels, a: job.weight, lda: p.inChannels, transposeA: false,
                b: job.input + b * p.inChannels * hw, ldb: hw, transposeB: false,
                c: job.output + b * p.outChannels * hw, ldc: hw, accumulate: false,
                epilogue: job.epilogue(batch: b, channel: 0, row: 0))
            gemmBlocked(op, threads: job.threads)
        }
    }
}

/// One convolution call's operands as raw pointers (valid for the duration of the call).
struct ConvJob {
    let p: Conv2dParameters
    let batch: Int, h: Int, w: Int, oh: Int, ow: Int
    let input: UnsafePointer<Float>
    let weight: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    let residual: UnsafePointer<Float>?
    let relu: Bool
    let output: UnsafeMutablePointer<Float>
    let threads: Int
    /// Most floats the im2col buffer may hold.
    let im2colBudget: Int
    /// The weights as GEMM panels (then `weight` is not read).
    var packed: PackedConvWeights? = nil
    /// Whether the prepacked im2col path may copy the input into bordered planes (``StridePhases``).
    var borderedPlanes = true
    /// A GDN over all output channels that the direct path applies to each finished tile (``Kernels/conv2dDirect(_:)``
    /// checks ``Kernels/directCanFuse(_:_:)`` first); `nil` for none.
    var gdn: GDN? = nil

    /// The GEMM epilogue for the output block starting at (`batch`, `channel`, output row `row`).
    func epilogue(batch b: Int, channel: Int, row: Int) -> GEMMEpilogue {
        let plane = oh * ow
        return GEMMEpilogue(bias: bias.map { $0 + channel },
                            residual: residual.map { $0 + (b * p.outChannels + channel) * plane + row * ow },
                            ldr: plane, relu: relu)
    }
}
