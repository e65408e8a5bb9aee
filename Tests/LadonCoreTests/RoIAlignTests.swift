// RoIAlign against torchvision.ops.roi_align fixtures and against the plain per-sample reference.
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct RoIAlignTests {
    @Test(arguments: [("s025_p7_r2", Float(0.25), 7, 2, false), ("s1_p7_r2", 1.0, 7, 2, false),
                      ("s05_p3_r0", 0.5, 3, 0, false), ("s025_p5_r3_aligned", 0.25, 5, 3, true)])
    func matchesTorchvision(_ name: String, _ scale: Float, _ size: Int, _ ratio: Int, _ aligned: Bool) throws {
        let f = try Fixtures.safetensors("detection_roialign.safetensors")
        let feature = try f.tensor("feature")
        let boxes = NMSTests.boxes(try f.tensor("boxes"))
        let expected = try f.tensor("out.\(name)")
        for layout in [RoIAlignLayout.planar, .channelsLast, .automatic] {
            let fast = Kernels.roiAlign(feature, boxes: boxes, spatialScale: scale, outputSize: size,
                                        samplingRatio: ratio, aligned: aligned, layout: layout)
            expectClose(fast, expected, rtol: 0, atol: 2e-6, "\(name) \(layout)")
        }
        let reference = Kernels.roiAlignReference(feature, boxes: boxes, spatialScale: scale, outputSize: size,
                                                  samplingRatio: ratio, aligned: aligned)
        expectClose(reference, expected, rtol: 0, atol: 2e-6, "\(name) reference")
    }

    @Test func fastEqualsReferenceOnOddShapes() {
        var rng = SplitMix64(seed: 21)
        for (c, h, w) in [(1, 1, 1), (3, 5, 9), (7, 17, 4), (2, 2, 31), (37, 6, 5)] {
            let feature = Tensor.random([1, c, h, w], using: &rng)
            // 40 boxes (two threads), some far outside, some tiny, some inverted.
            let boxes = (0..<40).map { _ -> Box in
                let x = Float.random(in: -20...Float(4 * w + 10), using: &rng)
                let y = Float.random(in: -20...Float(4 * h + 10), using: &rng)
                return Box(x1: x, y1: y, x2: x + Float.random(in: -2...Float(3 * w), using: &rng),
                           y2: y + Float.random(in: -2...Float(3 * h), using: &rng))
            }
            for (scale, size, ratio) in [(Float(0.25), 7, 2), (0.5, 2, 0), (1, 3, 1)] {
                let reference = Kernels.roiAlignReference(feature, boxes: boxes, spatialScale: scale, outputSize: size,
                                                          samplingRatio: ratio)
                let planar = Kernels.roiAlign(feature, boxes: boxes, spatialScale: scale, outputSize: size,
                                              samplingRatio: ratio, aligned: false, layout: .planar)
                let channelsLast = Kernels.roiAlign(feature, boxes: boxes, spatialScale: scale, outputSize: size,
                                                    samplingRatio: ratio, aligned: false, layout: .channelsLast)
                expectClose(planar, reference, rtol: 0, atol: 1e-6, "\(c)x\(h)x\(w) s\(scale) p\(size) r\(ratio)")
                #expect(channelsLast == planar, "layouts differ: \(c)x\(h)x\(w) s\(scale) p\(size) r\(ratio)")
            }
        }
    }

    /// The channels-last C kernel at every instruction set this CPU runs, on channel counts that take its
    /// 128-channel blocks, 16-channel blocks and scalar tail: bit-identical to the planar loop.
    @Test func channelsLastKernelAtEveryLevel() {
        var rng = SplitMix64(seed: 22)
        for (c, h, w) in [(256, 13, 11), (150, 9, 20), (17, 5, 6)] {
            let feature = Tensor.random([1, c, h, w], using: &rng)
            let boxes = (0..<9).map { _ -> Box in
                let x = Float.random(in: -10...Float(4 * w), using: &rng)
                let y = Float.random(in: -10...Float(4 * h), using: &rng)
                return Box(x1: x, y1: y, x2: x + Float.random(in: 0...Float(3 * w), using: &rng),
                           y2: y + Float.random(in: 0...Float(3 * h), using: &rng))
            }
            for (scale, size, ratio) in [(Float(0.25), 7, 2), (0.5, 3, 0)] {
                let planar = Kernels.roiAlign(feature, boxes: boxes, spatialScale: scale, outputSize: size,
                                              samplingRatio: ratio, aligned: false, layout: .planar)
                for level: Int32 in 1...3 {
                    let fast = Kernels.roiAlign(feature, boxes: boxes, spatialScale: scale, outputSize: size,
                                                samplingRatio: ratio, aligned: false, layout: .channelsLastAtLevel(level))
                    #expect(fast == planar, "level \(level): \(c)x\(h)x\(w) s\(scale) p\(size) r\(ratio)")
                }
            }
        }
    }

    @Test func nanBoxesPoolZerosWithoutCrashing() {
        let feature = Tensor(shape: [1, 2, 4, 4], repeating: 1)
        let out = Kernels.roiAlign(feature, boxes: [Box(x1: .nan, y1: 0, x2: 3, y2: 3),
                                                    Box(x1: 0, y1: 0, x2: .infinity, y2: 3)], spatialScale: 1)
        #expect(out.shape == [2, 2, 7, 7])
        #expect(out.scalars.allSatisfy { $0 == 0 || $0 == 1 })
        #expect(Kernels.roiAlign(feature, boxes: [], spatialScale: 1).shape == [0, 2, 7, 7])
    }
}
