// Convolution weights packed once for the GEMM algorithms (pointwise and im2col), with the tap-pruned
// variants that dilated convolutions on small maps need, packed on first use and kept.
import Foundation

/// The `[outC × inC·kH·kW]` weight matrix of a one-group convolution as prepacked GEMM panels.
///
/// When some kernel taps read only padding for a given input size (dilation 24/36 on a 13×13 map), the
/// im2col algorithm drops them from the reduction; the matching packed matrix (fewer columns) is built from
/// the full one the first time that tap set occurs and cached (a handful of input sizes in practice).
///
/// Dilated convolutions are packed per kernel tap instead (``perTap``): on small maps most of their taps read
/// padding for most outputs (rate 12 on 13×13: 85 % of the im2col matrix is zero), so ``Kernels/conv2dTapwise``
/// multiplies each tap only over the outputs where it reads the image.
package final class PackedConvWeights: @unchecked Sendable {
    package let parameters: Conv2dParameters
    /// All taps as one `[outC × inC·kH·kW]` matrix (undilated convolutions), or `nil`.
    package let full: PackedMatrix?
    /// One `[outC × inC]` matrix per tap, row-major over (ky, kx) (dilated convolutions), or empty.
    package let perTap: [PackedMatrix]
    private let lock = NSLock()
    private var pruned: [PrunedTaps: PackedMatrix] = [:]
    private var winogradCache: WinogradWeights?

    /// The Winograd-transformed weights
    /// (``Kernels/conv2dWinograd(_:weights:padding:bias:activation:residual:threads:)``), made from the packed ones on
    /// first use and kept: only layers that run on maps large enough hold them (at 416², layer2 and layer3's 3×3
    /// convolutions: 24 MB beside their 14 MB of packed weights; the decoder's two 2×2 ones: 7 MB).
    func winograd() -> WinogradWeights {
        lock.lock()
        defer { lock.unlock() }
        if let cached = winogradCache { return cached }
        let made = WinogradWeights(unpacked())
        winogradCache = made
        return made
    }

    /// Packs `weight` (`parameters.weightShape`, one group) for ``GEMMBlocking/preferred``.
    package init(_ weight: Tensor, _ parameters: Conv2dParameters) {
        precondition(weight.shape == parameters.weightShape, "PackedConvWeights: \(weight.shape) != \(parameters.weightShape)")
        self.parameters = parameters
        (full, perTap) = weight.withUnsafeBufferPointer { Self.pack($0, parameters, outputScale: nil) }
    }

    /// Packs the `[outC, inC, kH, kW]` values at `weight` (one group), each output channel's multiplied by
    /// `outputScale[oc]` when given (a BatchNorm folded in while packing: the same products as folding first).
    package init(_ weight: UnsafeBufferPointer<Float>, _ parameters: Conv2dParameters, outputScale: [Float]? = nil) {
        self.parameters = parameters
        (full, perTap) = Self.pack(weight, parameters, outputScale: outputScale)
    }

    /// The packed matrices of ``init(_:_:outputScale:)``: all taps as one, or one per tap for a dilated convolution.
    private static func pack(_ weight: UnsafeBufferPointer<Float>, _ p: Conv2dParameters,
                             outputScale: [Float]?) -> (full: PackedMatrix?, perTap: [PackedMatrix]) {
        precondition(p.groups == 1, "PackedConvWeights: grouped convolutions keep plain weights")
        let taps = p.kernelHeight * p.kernelWidth, pairs = p.outChannels * p.inChannels
        precondition(weight.count == pairs * taps, "PackedConvWeights: \(weight.count) values for \(p.weightShape)")
        precondition(outputScale == nil || outputScale!.count == p.outChannels, "PackedConvWeights: scale count != outC")
        guard let src = weight.baseAddress else { preconditionFailure("PackedConvWeights: no weights") }
        if (p.dilationHeight > 1 && p.kernelHeight > 1) || (p.dilationWidth > 1 && p.kernelWidth > 1) {
            // `[outC·inC, taps]` → `[taps, outC·inC]` one output channel at a time (its inC·taps values stay in L2;
            // a gather per tap read all the weights once per tap), one tap's run after another (nine write streams
            // at once would sit outC·inC floats apart, in the same L1 sets); then each tap's matrix packed.
            let split = [Float](unsafeUninitializedCapacity: taps * pairs) { buffer, count in
                guard let dst = buffer.baseAddress else { count = 0; return }
                for oc in 0..<p.outChannels {
                    let j0 = oc * p.inChannels, j1 = j0 + p.inChannels
                    for tap in 0..<taps {
                        let out = dst + tap * pairs
                        if let s = outputScale?[oc] {
                            for j in j0..<j1 { out[j] = src[j * taps + tap] * s }
                        } else {
                            for j in j0..<j1 { out[j] = src[j * taps + tap] }
                        }
                    }
                }
                count = taps * pairs
            }
            return (nil, split.withUnsafeBufferPointer { s in
                (0..<taps).map { tap in
                    PackedMatrix(s.baseAddress! + tap * pairs, rows: p.outChannels, columns: p.inChannels, lda: p.inChannels)
                }
            })
        }
        var matrix = PackedMatrix(src, rows: p.outChannels, columns: p.inChannels * taps, lda: p.inChannels * taps)
        if let outputScale { matrix.scaleRows(by: outputScale) }
        return (matrix, [])
    }

    /// The weights as `[outC, inC, kH, kW]`.
    package func unpacked() -> Tensor {
        if let full { return Tensor(shape: parameters.weightShape, scalars: full.unpacked()) }
        let p = parameters, taps = perTap.count
        var w = [Float](repeating: 0, count: p.outChannels * p.inChannels * taps)
        for (tap, matrix) in perTap.enumerated() {
            let values = matrix.unpacked()
            for oc in 0..<p.outChannels {
                for ic in 0..<p.inChannels { w[(oc * p.inChannels + ic) * taps + tap] = values[oc * p.inChannels + ic] }
            }
        }
        return Tensor(shape: p.weightShape, scalars: w)
    }

    /// The packed matrix for the kept taps (`full` when none is dropped); undilated layers only.
    func matrix(for taps: Im2colTaps) -> PackedMatrix {
        let p = parameters
        guard let full else { preconditionFailure("PackedConvWeights: a dilated layer is packed per tap") }
        if taps.ky.count == p.kernelHeight && taps.kx.count == p.kernelWidth { return full }
        let key = PrunedTaps(ky: taps.ky, kx: taps.kx)
        lock.lock()
        if let cached = pruned[key] { lock.unlock(); return cached }
        lock.unlock()
        // Column (icg, a, b) of the pruned matrix is column (icg, ky[a], kx[b]) of the full one.
        let k = p.inChannels * taps.ky.count * taps.kx.count
        var compact = [Float](repeating: 0, count: p.outChannels * k)
        for oc in 0..<p.outChannels {
            var o = oc * k
            for icg in 0..<p.inChannels {
                for y in taps.ky {
                    for x in taps.kx {
                        compact[o] = full.element(oc, (icg * p.kernelHeight + y) * p.kernelWidth + x)
                        o += 1
                    }
                }
            }
        }
        let matrix = compact.withUnsafeBufferPointer {
            PackedMatrix($0.baseAddress!, rows: p.outChannels, columns: k, lda: k)
        }
        lock.lock()
        pruned[key] = matrix
        lock.unlock()
        return matrix
    }
}

/// The kernel rows and columns kept for one input size.
struct PrunedTaps: Hashable {
    let ky: [Int], kx: [Int]
}
