// Timings of the non-GEMM kernels at Ladon's shapes (printed, never asserted).
// Run: swift test -c release --filter KernelPerf
import Foundation
import LadonTestSupport
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite(.serialized, .enabled(if: PerfGate.enabled, Comment(rawValue: PerfGate.reason)))
struct KernelPerfTests {
    init() { PerfGate.announce() }

    /// Median wall time in milliseconds of `runs` calls after one warm-up call.
    static func medianMilliseconds(runs: Int, _ body: () -> Void) -> Double {
        body()
        let clock = ContinuousClock()
        var times: [Double] = []
        for _ in 0..<runs {
            let d = clock.measure(body)
            times.append(d.seconds * 1e3)
        }
        return times.sorted()[times.count / 2]
    }

    static func report(_ label: String, _ ms: Double, _ extra: String = "") {
        print("[perf] \(label.padding(toLength: 44, withPad: " ", startingAt: 0)) \(String(format: "%9.3f", ms)) ms  \(extra)")
    }

    @Test func gdn() {
        var rng = SplitMix64(seed: 1)
        // The four GDN1 layers of Ladon's bottleneck at a 416×416 input.
        for (label, c, h, w, inverse) in [("GDN(96) 208x208", 96, 208, 208, false), ("GDN(48) 104x104", 48, 104, 104, false),
                                          ("IGDN(512) 104x104", 512, 104, 104, true), ("IGDN(256) 103x103", 256, 103, 103, true)] {
            let x = Tensor.random([1, c, h, w], in: -2...2, using: &rng)
            let beta = (0..<c).map { _ in Float.random(in: 0.5...1.5, using: &rng) }
            let gamma = Tensor.random([c, c], in: 0...0.1, using: &rng)
            var checksum: Float = 0
            let packed = PackedMatrix(gamma)  // as the layer holds it
            let ms = Self.medianMilliseconds(runs: c >= 256 ? 5 : 9) {
                checksum += Kernels.gdn(x, beta: beta, gamma: gamma, inverse: inverse, packedGamma: packed)
                    .scalars[c * h * w / 2]
            }
            let gmac = Double(c * c * h * w) / 1e9
            Self.report(label, ms, String(format: "%.2f GMAC, %.1f GFLOP/s (checksum %g)", gmac, 2 * gmac / (ms / 1e3), checksum))
            // The bare GEMM of the same size, for the share of the fused |x| / epilogue passes.
            let absx = Tensor(shape: x.shape, scalars: x.scalars.map(abs))
            var norm = [Float](repeating: 0, count: c * h * w)
            let gemmMs = Self.medianMilliseconds(runs: c >= 256 ? 5 : 9) {
                gamma.withUnsafeBufferPointer { g in
                    absx.withUnsafeBufferPointer { a in
                        norm.withUnsafeMutableBufferPointer { n in
                            Kernels.gemm(m: c, n: h * w, k: c, a: g.baseAddress!, lda: c, b: a.baseAddress!, ldb: h * w,
                                         c: n.baseAddress!, ldc: h * w)
                        }
                    }
                }
            }
            Self.report("  gemm \(c)x\(h * w)x\(c) alone (1 call)", gemmMs, String(format: "%.1f GFLOP/s", 2 * gmac / (gemmMs / 1e3)))
        }
    }

    @Test func resize() {
        var rng = SplitMix64(seed: 2)
        let logits = Tensor.random([1, 21, 13, 13], using: &rng)
        var sink: Float = 0
        let up = Self.medianMilliseconds(runs: 15) {
            sink += Kernels.resizeBilinear(logits, outputHeight: 416, outputWidth: 416).scalars[1000]
        }
        Self.report("bilinear 21x13x13 -> 416x416", up, "(sink \(sink))")
        let image = Tensor.random([1, 3, 480, 640], using: &rng)
        let down = Self.medianMilliseconds(runs: 15) {
            sink += Kernels.resizeBilinear(image, scaleFactor: Double(Float(416) / 640)).scalars[1000]
        }
        Self.report("bilinear 3x480x640 -> 3x312x416", down)
        let fpn = Tensor.random([1, 256, 26, 26], using: &rng)
        let nearest = Self.medianMilliseconds(runs: 15) {
            sink += Kernels.upsampleNearest(fpn, outputHeight: 52, outputWidth: 52).scalars[1000]
        }
        Self.report("nearest 256x26x26 -> 52x52", nearest)
    }

    @Test func poolingAndPointwise() {
        var rng = SplitMix64(seed: 3)
        let stem = Tensor.random([1, 64, 208, 208], using: &rng)
        var sink: Float = 0
        Self.report("maxPool 3x3 s2 p1, 64x208x208", Self.medianMilliseconds(runs: 15) {
            sink += Kernels.maxPool2d(stem, kernelSize: 3, stride: 2, padding: 1).scalars[7]
        })
        let c5 = Tensor.random([1, 2048, 13, 13], using: &rng)
        Self.report("global avg pool 2048x13x13", Self.medianMilliseconds(runs: 15) {
            sink += Kernels.globalAveragePool(c5).scalars[7]
        })
        let a = Tensor.random([1, 256, 104, 104], using: &rng), b = Tensor.random([1, 256, 104, 104], using: &rng)
        Self.report("addRelu 256x104x104 (includes a copy)", Self.medianMilliseconds(runs: 15) {
            var t = a
            Kernels.addRelu(&t, b)
            sink += t.scalars[9]
        })
        let seg = Tensor.random([1, 21, 416, 416], using: &rng)
        Self.report("argmax over 21 channels, 416x416", Self.medianMilliseconds(runs: 15) {
            sink += Float(Kernels.argmaxChannels(seg)[5])
        })
        let scores = (0..<159_882).map { _ in Float.random(in: 0...1, using: &rng) }
        Self.report("topK 1000 of 159882", Self.medianMilliseconds(runs: 15) {
            sink += Kernels.topK(scores, k: 1000)[0].value
        }, "(sink \(sink))")
    }

    /// The Winograd input transform of one chunk of tile rows, every channel on one thread, at each build the CPU runs
    /// (3 AVX-512, 2 AVX2, 1 baseline), then the output transform of as many tiles: the FPN's 3×3 convolutions on the
    /// 104 × 104 detection map (F(2×2, 3×3), 256 channels) and the decoder's 2×2 ones (F(3×3, 2×2), 512 channels at
    /// 104², padding 0; 256 at 103², padding 1).
    @Test func winogradTransforms() {
        var rng = SplitMix64(seed: 6)
        for (label, m, padding, c, size) in [("F(2,3) 256ch 104x104", 2, 1, 256, 104), ("F(3,2) 512ch 104x104 p0", 3, 0, 512, 104),
                                             ("F(3,2) 256ch 103x103 p1", 3, 1, 256, 103)] {
            let r = 4 - m, out = size + 2 * padding - r + 1
            let tw = (out + m - 1) / m
            // The chunk of tile rows conv2dWinograd takes, channels in = out.
            let rows = Kernels.winogradChunkRows(tileRows: tw, tilesPerRow: tw, inChannels: c, outChannels: c), tiles = rows * tw
            let geometry = WinogradGeometry(m: m, padding: padding, h: size, w: size, oh: out, ow: out, tw: tw)
            let x = Tensor.random([c, size, size], using: &rng)
            let xiStride = Kernels.winogradPlaneStride(c * tiles)
            var v = [Float](repeating: 0, count: 16 * xiStride)
            var scratch = [Float](repeating: 0, count: geometry.rowBufferCount)
            for level: Int32 in [3, 2, 1] {
                let ms = Self.medianMilliseconds(runs: 21) {
                    x.withUnsafeBufferPointer { xp in
                        v.withUnsafeMutableBufferPointer { vp in
                            for ic in 0..<c {
                                geometry.inputTransform(xp.baseAddress! + ic * size * size, tileRows: 0..<rows,
                                                        into: vp.baseAddress! + ic * tiles, xiStride: xiStride,
                                                        rows: &scratch, level: level)
                            }
                        }
                    }
                }
                let bytes = Double(16 * c * tiles * 4)
                Self.report("winograd input \(label), level \(level)", ms,
                            String(format: "%d tile rows, %.1f GB/s written (v %g)", rows, bytes / ms / 1e6, v[xiStride + 7]))
            }
            // The output transform of as many tiles (+ bias, + residual, ReLU), channels out = in.
            var y = Tensor(shape: [c, out, out])
            let residual = Tensor.random([c, out, out], using: &rng)
            for level: Int32 in [3, 2, 1] {
                let ms = Self.medianMilliseconds(runs: 21) {
                    v.withUnsafeBufferPointer { vp in
                        residual.withUnsafeBufferPointer { rp in
                            y.withUnsafeMutableBufferPointer { yp in
                                for oc in 0..<c {
                                    geometry.outputTransform(vp.baseAddress! + oc * tiles, xiStride: xiStride, tileRows: 0..<rows,
                                                             bias: 0.5, residual: rp.baseAddress! + oc * out * out, relu: true,
                                                             into: yp.baseAddress! + oc * out * out, level: level)
                                }
                            }
                        }
                    }
                }
                Self.report("winograd output \(label), level \(level)", ms, "\(rows) tile rows (y \(y.scalars[out + 3]))")
            }
        }
    }

    /// The classifier (2048 → 1000, 8 MB of packed weights, one input row: a GEMV) with its weights hot in cache
    /// (the call repeated) and cold (64 MB of other memory touched before each call, as after the body in `ladon infer`).
    @Test func classifierGEMV() {
        var rng = SplitMix64(seed: 4)
        let (k, m) = (2048, 1000)
        let layer = Linear(weight: Tensor.random([m, k], in: -0.05...0.05, using: &rng),
                           bias: (0..<m).map { _ in Float.random(in: -1...1, using: &rng) })
        let x = Tensor.random([1, k], using: &rng)
        var sink: Float = 0
        let hot = Self.medianMilliseconds(runs: 31) { sink += layer(x).scalars[3] }
        var evict = [Float](repeating: 1, count: 16 << 20)
        var coldTimes: [Double] = []
        for i in 0..<15 {
            evict.withUnsafeMutableBufferPointer { e in for j in stride(from: i % 16, to: e.count, by: 16) { e[j] += 1 } }
            coldTimes.append(ContinuousClock().measure { sink += layer(x).scalars[3] }.seconds * 1e3)
        }
        let cold = coldTimes.sorted()[coldTimes.count / 2], bytes = Double(m * k * 4)
        Self.report("classifier GEMV 2048->1000, weights hot", hot, String(format: "%.0f GB/s", bytes / hot / 1e6))
        Self.report("classifier GEMV 2048->1000, weights cold", cold,
                    String(format: "%.0f GB/s (sink %g)", bytes / cold / 1e6, sink + evict[5]))
    }

    /// The box head's fc6 (1000 RoIs × 12544 → 1024, ReLU) and fc7 (1024 → 1024): ONNX Runtime runs fc6 at about
    /// 450 GFLOP/s on the Zen 5 machine (`Scripts/bench/ort_layer_profile.py --stage detection`).
    @Test func boxHeadLinear() {
        var rng = SplitMix64(seed: 5)
        let (rois, k, m) = (1000, 12544, 1024)
        let fc6 = Linear(weight: Tensor.random([m, k], in: -0.01...0.01, using: &rng),
                         bias: (0..<m).map { _ in Float.random(in: -1...1, using: &rng) }, activation: .relu)
        let fc7 = Linear(weight: Tensor.random([m, m], in: -0.03...0.03, using: &rng),
                         bias: (0..<m).map { _ in Float.random(in: -1...1, using: &rng) }, activation: .relu)
        let x = Tensor.random([rois, k], using: &rng)
        var hidden = fc6(x)
        let t6 = Self.medianMilliseconds(runs: 7) { hidden = fc6(x) }
        let t7 = Self.medianMilliseconds(runs: 7) { _ = fc7(hidden) }
        Self.report("box head fc6 1000x12544 -> 1024", t6, String(format: "%.0f GFLOP/s", 2.0 * Double(rois * k * m) / t6 / 1e6))
        Self.report("box head fc7 1000x1024 -> 1024", t7, String(format: "%.0f GFLOP/s", 2.0 * Double(rois * m * m) / t7 / 1e6))
    }
}
