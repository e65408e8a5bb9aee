// Decode timings for camera-sized JPEGs (and PNG, toTensor); prints medians, asserts nothing about time.
import Foundation
import LadonTestSupport
import Testing
@testable import LadonImage

@Suite("ImagePerf", .enabled(if: PerfGate.enabled, Comment(rawValue: PerfGate.reason)))
struct ImagePerfTests {
    init() { PerfGate.announce() }

    /// A photo-like synthetic image: smooth gradients, waves and a little noise, so JPEG sizes are realistic.
    static func synthetic(width: Int, height: Int) -> RGBImage {
        var state: UInt64 = 1
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let noise = Double(Int(state >> 60)) - 8
                let fx = Double(x) / Double(width), fy = Double(y) / Double(height)
                let r = 128 + 100 * sin(9 * fx + 3 * fy) + noise
                let g = 120 + 90 * cos(7 * fy - 4 * fx * fy) + noise
                let b = 255 * fx * (1 - fy) + noise
                let i = 3 * (y * width + x)
                pixels[i] = UInt8(max(0, min(255, r)))
                pixels[i + 1] = UInt8(max(0, min(255, g)))
                pixels[i + 2] = UInt8(max(0, min(255, b)))
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    static func medianMilliseconds(runs: Int, _ body: () throws -> Void) rethrows -> Double {
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return times.sorted()[runs / 2]
    }

    @Test("JPEG/PNG decode and toTensor at 640x480 and 1920x1080", arguments: [(640, 480), (1920, 1080)])
    func decodeTimes(size: (Int, Int)) throws {
        let image = Self.synthetic(width: size.0, height: size.1)
        let jpeg = try JPEGEncoder.encode(rgb: image, quality: 90)
        let png = try PNGEncoder.encode(rgb: image)
        var sink = 0
        let jpegMs = try Self.medianMilliseconds(runs: 21) { sink &+= Int(try ImageDecoder.decode(bytes: jpeg).pixels[7]) }
        let pngMs = try Self.medianMilliseconds(runs: 7) { sink &+= Int(try ImageDecoder.decode(bytes: png).pixels[7]) }
        let pngEncodeMs = try Self.medianMilliseconds(runs: 5) { sink &+= try PNGEncoder.encode(rgb: image).count }
        let pngSmallMs = try Self.medianMilliseconds(runs: 3) { sink &+= try PNGEncoder.encode(rgb: image, compression: .small).count }
        let smallKB = try PNGEncoder.encode(rgb: image, compression: .small).count / 1024
        let decoded = try ImageDecoder.decode(bytes: jpeg)
        let tensorMs = Self.medianMilliseconds(runs: 21) { sink &+= (try? decoded.toTensor())?.count ?? 0 }
        print(String(format: "ImagePerf %dx%d: JPEG q90 4:2:0 (%d KB) decode %.2f ms | PNG (%d KB) decode %.2f ms, encode .fast %.2f ms, .small %.2f ms (%d KB) | toTensor %.2f ms [sink %d]",
                     size.0, size.1, jpeg.count / 1024, jpegMs, png.count / 1024, pngMs, pngEncodeMs, pngSmallMs, smallKB,
                     tensorMs, sink & 1))
        #expect(decoded.width == size.0 && decoded.height == size.1)
    }
}
