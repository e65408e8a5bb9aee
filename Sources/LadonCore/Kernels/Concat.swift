// Channel concatenation of NCHW tensors (torch.cat(xs, dim=1)).

extension Kernels {
    /// Concatenates NCHW tensors along the channel dimension, as `torch.cat(xs, dim=1)`.
    ///
    /// - Precondition: `xs` is non-empty and all tensors share `N`, `H` and `W`.
    package static func concatChannels(_ xs: [Tensor]) -> Tensor {
        let (n, hw, channels) = checkConcat(xs)
        let total = channels.reduce(0, +)
        let first = xs[0]
        return Tensor(shape: [n, total, first.h, first.w], unsafeUninitialized: { out in
            guard let dst = out.baseAddress else { return }
            var offset = 0
            for (x, c) in zip(xs, channels) {
                x.withUnsafeBufferPointer { xp in
                    guard let src = xp.baseAddress else { return }
                    let block = c * hw
                    for b in 0..<n {
                        (dst + (b * total + offset) * hw).update(from: src + b * block, count: block)
                    }
                }
                offset += c
            }
        })
    }

    /// Plain reference for ``concatChannels(_:)``.
    package static func concatChannelsReference(_ xs: [Tensor]) -> Tensor {
        let (n, hw, channels) = checkConcat(xs)
        let total = channels.reduce(0, +)
        var out = Tensor(shape: [n, total, xs[0].h, xs[0].w])
        var offset = 0
        for (x, c) in zip(xs, channels) {
            for b in 0..<n {
                for ch in 0..<c {
                    for p in 0..<hw { out.scalars[((b * total) + offset + ch) * hw + p] = x.scalars[(b * c + ch) * hw + p] }
                }
            }
            offset += c
        }
        return out
    }

    private static func checkConcat(_ xs: [Tensor]) -> (n: Int, hw: Int, channels: [Int]) {
        precondition(!xs.isEmpty, "concatChannels: no tensors")
        precondition(xs.allSatisfy { $0.rank == 4 }, "concatChannels: expected NCHW tensors, got \(xs.map(\.shape))")
        let f = xs[0]
        precondition(xs.allSatisfy { $0.n == f.n && $0.h == f.h && $0.w == f.w },
                     "concatChannels: N, H, W differ: \(xs.map(\.shape))")
        return (f.n, f.h * f.w, xs.map(\.c))
    }
}
