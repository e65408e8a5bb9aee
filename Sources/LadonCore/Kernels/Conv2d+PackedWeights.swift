// Convolution weights packed once for the GEMM algorithms (pointwise and im2col), with the tap-pruned
// variants that dilated convolutions on small maps need, packed on first use and kept.
import Foundation

/// The `[outC × inC·kH·kW]` weight matrix of a one-group convolution as prepacked GEMM panels.
///
/// When some kernel taps read only padding for a given input size (dilation 24/36 on a 13×13 map), the
/// im2col algorithm drops them from the reduction; the matching packed matrix (fewer columns) is built from
/// the full one the first time that tap set occurs and cached (a handful of input sizes in practice).
package final class PackedConvWeights: @unchecked Sendable {
    package let parameters: Conv2dParameters
    /// All taps.
    package let full: PackedMatrix
    private let lock = NSLock()
    private var pruned: [PrunedTaps: PackedMatrix] = [:]

    /// Packs `weight` (`parameters.weightShape`, one group) for ``GEMMBlocking/preferred``.
    package init(_ weight: Tensor, _ parameters: Conv2dParameters) {
        precondition(parameters.groups == 1, "PackedConvWeights: grouped convolutions keep plain weights")
        precondition(weight.shape == parameters.weightShape, "PackedConvWeights: \(weight.shape) != \(parameters.weightShape)")
        self.parameters = parameters
        full = PackedMatrix(weight)
    }

    /// The weights as `[outC, inC, kH, kW]`.
    package func unpacked() -> Tensor { Tensor(shape: parameters.weightShape, scalars: full.unpacked()) }

    /// The packed matrix for the kept taps (`full` when none is dropped).
    func matrix(for taps: Im2colTaps) -> PackedMatrix {
        let p = parameters
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
