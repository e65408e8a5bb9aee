// Classification read-outs: softmax, channel-wise argmax and top-k selection.
import Foundation

extension Kernels {
    // MARK: - Softmax

    /// Softmax of a vector, as `torch.softmax`: `exp(x − max x) / Σ exp(x − max x)`.
    ///
    /// The sum is accumulated in Double and the result scaled by the float reciprocal of it, like ATen's
    /// `_vec_softmax_lastdim`; ATen's vectorised `exp` differs from `expf` by an ulp or so, so results agree
    /// with PyTorch to a few ulps. A NaN input, or a vector of only −∞, gives all NaN (as PyTorch).
    package static func softmax(_ x: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                guard let src = xp.baseAddress, let dst = op.baseAddress else { return }
                softmaxRow(src, dst, count: x.count)
            }
        }
        return out
    }

    /// Row-wise softmax over the last dimension (rows of a `[N, K]` tensor, or any rank ≥ 1).
    package static func softmax(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1, "softmax: needs a tensor of rank ≥ 1")
        let k = x.shape[x.rank - 1]
        let rows = k == 0 ? 0 : x.count / k
        return Tensor(shape: x.shape, unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xp in
                guard let src = xp.baseAddress, let dst = out.baseAddress else { return }
                for r in 0..<rows { softmaxRow(src + r * k, dst + r * k, count: k) }
            }
        })
    }

    /// Plain reference for ``softmax(_:)-([Float])``, entirely in Double.
    package static func softmaxReference(_ x: [Float]) -> [Float] {
        guard let m = x.map(Double.init).reduce(nil, { (acc: Double?, v) in
            guard let a = acc else { return v }
            return a.isNaN || v.isNaN ? .nan : Swift.max(a, v)
        }) else { return [] }
        let e = x.map { Foundation.exp(Double($0) - m) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }

    /// One softmax row: `exp(x − max)`, summed in Double, then each multiplied by `Float(1 / sum)`.
    ///
    /// PyTorch's CPU kernel sums the exponentials in float32 over SIMD lanes with a vectorised `exp`, an order no
    /// scalar loop reproduces bit for bit. Against `torch.softmax` on random rows (200 each of 7, 21, 91 and 1000
    /// logits, PyTorch 2.x, one thread) the Double sum stays within 4–9 ulp, a float32 running sum within 2–52 ulp;
    /// so this is the one softmax of the package (classification probabilities and the detection head).
    static func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        var m = src[0]
        for i in 1..<count where !(src[i] <= m) { m = src[i].isNaN || m.isNaN ? .nan : src[i] }
        var sum = 0.0
        for i in 0..<count {
            let e = Foundation.exp(src[i] - m)
            dst[i] = e
            sum += Double(e)
        }
        let inv = 1 / Float(sum)
        for i in 0..<count { dst[i] *= inv }
    }

    // MARK: - Argmax over channels

    /// The channel index of the maximum at every pixel of an NCHW tensor (`torch.argmax(x, dim=1)`), as
    /// `N·H·W` Int32 values in row-major `[N, H, W]` order.
    ///
    /// Ties go to the lowest channel. NaN counts as larger than every number (as `torch.argmax`): the first
    /// NaN channel of a pixel wins.
    package static func argmaxChannels(_ x: Tensor) -> [Int32] {
        precondition(x.rank == 4 && x.c >= 1, "argmaxChannels: expected NCHW with C ≥ 1, got \(x.shape)")
        let (n, c, hw) = (x.n, x.c, x.h * x.w)
        let tile = 2048   // pixels per pass: long runs per channel plane keep the prefetchers streaming
        var best = [Float](repeating: 0, count: tile)
        return [Int32](unsafeUninitializedCapacity: n * hw) { out, initialized in
            x.withUnsafeBufferPointer { xp in
                best.withUnsafeMutableBufferPointer { bp in
                    guard let src = xp.baseAddress, let bestp = bp.baseAddress, let idxp = out.baseAddress else { return }
                    for b in 0..<n {
                        var p0 = 0
                        while p0 < hw {
                            let width = Swift.min(tile, hw - p0)
                            argmaxTile(src + b * c * hw + p0, planeStride: hw, channels: c, width: width,
                                       best: bestp, index: idxp + b * hw + p0)
                            p0 += width
                        }
                    }
                }
            }
            initialized = n * hw
        }
    }

    /// Channel-outer argmax over `width` pixels: SIMD16 compare-and-select per channel plane.
    private static func argmaxTile(_ src: UnsafePointer<Float>, planeStride: Int, channels: Int, width: Int,
                                   best: UnsafeMutablePointer<Float>, index: UnsafeMutablePointer<Int32>) {
        typealias Indices = SIMD16<Int32>
        let lanes = Lanes.scalarCount, blocks = width / lanes
        for i in 0..<width { best[i] = src[i]; index[i] = 0 }
        let bestRaw = UnsafeMutableRawPointer(best), indexRaw = UnsafeMutableRawPointer(index)
        for ch in 1..<max(channels, 1) {
            let plane = src + ch * planeStride
            let planeRaw = UnsafeRawPointer(plane)
            let chosen = Indices(repeating: Int32(ch))
            for blk in 0..<blocks {
                let o = blk * lanes * 4
                let v = planeRaw.loadUnaligned(fromByteOffset: o, as: Lanes.self)
                let m = bestRaw.loadUnaligned(fromByteOffset: o, as: Lanes.self)
                let take = (v .> m) .| ((v .!= v) .& (m .== m))
                bestRaw.storeBytes(of: m.replacing(with: v, where: take), toByteOffset: o, as: Lanes.self)
                let idx = indexRaw.loadUnaligned(fromByteOffset: o, as: Indices.self)
                indexRaw.storeBytes(of: idx.replacing(with: chosen, where: take), toByteOffset: o, as: Indices.self)
            }
            for i in (blocks * lanes)..<width {
                let v = plane[i], m = best[i]
                if v > m || (v.isNaN && !m.isNaN) { best[i] = v; index[i] = Int32(ch) }
            }
        }
    }

    /// Plain reference for ``argmaxChannels(_:)``.
    package static func argmaxChannelsReference(_ x: Tensor) -> [Int32] {
        precondition(x.rank == 4 && x.c >= 1, "argmaxChannels: expected NCHW with C ≥ 1, got \(x.shape)")
        let (n, c, hw) = (x.n, x.c, x.h * x.w)
        var out = [Int32](repeating: 0, count: n * hw)
        for b in 0..<n {
            for p in 0..<hw {
                var bi = 0
                var bv = x.scalars[b * c * hw + p]
                for ch in 1..<c {
                    let v = x.scalars[(b * c + ch) * hw + p]
                    if bv.isNaN { break }
                    if v > bv || v.isNaN { bv = v; bi = ch }
                }
                out[b * hw + p] = Int32(bi)
            }
        }
        return out
    }

    // MARK: - Top-k

    /// The `k` largest values with their indices, in descending order; equal values are ordered by lower
    /// index first. NaN ranks above every number (as `torch.topk`). `k` larger than `x.count` returns all
    /// elements.
    ///
    /// Each value becomes one distinct 64-bit key (its order-preserving bit pattern above the reversed index), a
    /// quickselect moves the `k` largest keys to the front in `O(n)`, and only those are sorted: the RPN takes
    /// the best 1000 of ~130,000 anchors per image this way.
    package static func topK(_ x: [Float], k: Int) -> [(index: Int, value: Float)] {
        precondition(k >= 0, "topK: k must be non-negative, got \(k)")
        let k = min(k, x.count)
        if k == 0 { return [] }
        precondition(x.count <= Int(UInt32.max), "topK: at most 2^32 − 1 values")
        var keys = x.enumerated().map { i, v -> UInt64 in
            (UInt64(orderKey(v)) << 32) | UInt64(UInt32.max - UInt32(truncatingIfNeeded: i))
        }
        if k < keys.count { selectLargest(&keys, k) }
        return keys[0..<k].sorted(by: >).map { key in
            let i = Int(UInt32.max - UInt32(truncatingIfNeeded: key))
            return (index: i, value: x[i])
        }
    }

    /// Monotone map of a float to an unsigned key; every NaN maps to the maximum.
    @inline(__always) static func orderKey(_ v: Float) -> UInt32 {
        if v.isNaN { return .max }
        let bits = v.bitPattern
        return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
    }

    /// Moves the `k` largest (distinct) keys to the front, in any order (quickselect, median of three).
    static func selectLargest(_ keys: inout [UInt64], _ k: Int) {
        var lo = 0, hi = keys.count - 1
        keys.withUnsafeMutableBufferPointer { a in
            while lo < hi {
                let mid = lo + (hi - lo) / 2
                if a[mid] > a[lo] { a.swapAt(mid, lo) }
                if a[hi] > a[lo] { a.swapAt(hi, lo) }
                if a[mid] > a[hi] { a.swapAt(mid, hi) }
                let pivot = a[hi]          // median of the three
                var store = lo
                for j in lo..<hi where a[j] > pivot {
                    a.swapAt(j, store)
                    store += 1
                }
                a.swapAt(store, hi)        // a[lo..<store] > pivot = a[store] > a[store+1...hi]
                if store == k - 1 || store == k { return }
                if store > k { hi = store - 1 } else { lo = store + 1 }
            }
        }
    }

    /// Plain reference for ``topK(_:k:)``: a full stable sort.
    package static func topKReference(_ x: [Float], k: Int) -> [(index: Int, value: Float)] {
        let order = x.indices.sorted { a, b in
            let va = x[a], vb = x[b]
            if va.isNaN || vb.isNaN { return va.isNaN && (!vb.isNaN || a < b) }
            return va > vb || (va == vb && a < b)
        }
        return order.prefix(max(0, k)).map { (index: $0, value: x[$0]) }
    }
}
