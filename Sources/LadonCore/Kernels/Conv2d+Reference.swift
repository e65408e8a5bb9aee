// Direct 7-loop convolution: the specification and test oracle for every optimised convolution.

extension Kernels {
    /// Reference convolution: `out = activation(conv(input, weight) + bias + residual)`, NCHW, in `Double`.
    package static func conv2dReference(_ input: Tensor, weight: Tensor, bias: [Float]?,
                                       _ p: Conv2dParameters, activation: Activation = .none,
                                       residual: Tensor? = nil) -> Tensor {
        precondition(input.rank == 4 && input.c == p.inChannels, "input \(input.shape) does not match \(p)")
        precondition(weight.shape == p.weightShape, "weight \(weight.shape) != \(p.weightShape)")
        let (n, h, w) = (input.n, input.h, input.w)
        let (oh, ow) = (max(p.outputHeight(h), 0), max(p.outputWidth(w), 0))
        let outShape = [n, p.outChannels, oh, ow]
        if let r = residual { precondition(r.shape == outShape, "residual \(r.shape) != \(outShape)") }
        let cinG = p.inChannels / p.groups, coutG = p.outChannels / p.groups
        var out = Tensor(shape: outShape)
        for b in 0..<n {
            for oc in 0..<p.outChannels {
                let g = oc / coutG
                for y in 0..<oh {
                    for x in 0..<ow {
                        var s: Double = Double(bias?[oc] ?? 0)
                        for icg in 0..<cinG {
                            let ic = g * cinG + icg
                            for ky in 0..<p.kernelHeight {
                                let iy = y * p.strideHeight - p.paddingHeight + ky * p.dilationHeight
                                if iy < 0 || iy >= h { continue }
                                for kx in 0..<p.kernelWidth {
                                    let ix = x * p.strideWidth - p.paddingWidth + kx * p.dilationWidth
                                    if ix < 0 || ix >= w { continue }
                                    let xv = input.scalars[((b * p.inChannels + ic) * h + iy) * w + ix]
                                    let wv = weight.scalars[((oc * cinG + icg) * p.kernelHeight + ky) * p.kernelWidth + kx]
                                    s += Double(xv) * Double(wv)
                                }
                            }
                        }
                        let o = ((b * p.outChannels + oc) * oh + y) * ow + x
                        var v = Float(s)
                        if let r = residual { v += r.scalars[o] }
                        out.scalars[o] = activation.apply(v)
                    }
                }
            }
        }
        return out
    }
}
