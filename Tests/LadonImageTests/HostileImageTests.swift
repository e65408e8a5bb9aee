// Hostile images (docs/security.md): huge declared sizes, scan floods, endless files. Each gives a clear error
// within 2 s of CPU time and before any large allocation; the untouched fixtures still decode.
import Foundation
import LadonCore
import LadonTestSupport
import Testing
@testable import LadonImage

private func timedError(_ seconds: Double = 2, sourceLocation: SourceLocation = #_sourceLocation,
                        _ body: () throws(ImageError) -> RGBImage) -> ImageError? {
    let start = threadCPUSeconds()
    let e = imageError(body, sourceLocation: sourceLocation)
    let used = threadCPUSeconds() - start
    #expect(used < seconds, "took \(used) CPU s", sourceLocation: sourceLocation)
    return e
}

/// The JPEG with the frame header (SOF0/SOF2) patched to `width × height`.
private func withJPEGSize(_ jpeg: [UInt8], width: Int, height: Int) -> [UInt8] {
    var out = jpeg
    let sof = (2..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && (jpeg[$0 + 1] == 0xC0 || jpeg[$0 + 1] == 0xC2) }!
    out[sof + 5] = UInt8(height >> 8); out[sof + 6] = UInt8(height & 0xFF)
    out[sof + 7] = UInt8(width >> 8); out[sof + 8] = UInt8(width & 0xFF)
    return out
}

/// The PNG with IHDR patched to `width × height` (CRC recomputed, so only the pixel limit can stop it).
private func withPNGSize(_ png: [UInt8], width: Int, height: Int) -> [UInt8] {
    var out = png
    for i in 0..<4 {
        out[16 + i] = UInt8((width >> (8 * (3 - i))) & 0xFF)
        out[20 + i] = UInt8((height >> (8 * (3 - i))) & 0xFF)
    }
    let crc = CRC32.checksum(Array(out[12..<29]))
    for i in 0..<4 { out[29 + i] = UInt8((crc >> (8 * UInt32(3 - i))) & 0xFF) }
    return out
}

/// A progressive JPEG whose first scan is repeated `scans` times.
private func scanFlood(_ jpeg: [UInt8], scans: Int) -> [UInt8] {
    let sos = DamagedImageTests.startOfScan(jpeg)
    // The first scan: SOS segment plus entropy-coded data up to the next marker.
    var end = sos + 2 + (Int(jpeg[sos + 2]) << 8 | Int(jpeg[sos + 3]))
    while !(jpeg[end] == 0xFF && jpeg[end + 1] != 0x00 && !(0xD0...0xD7).contains(jpeg[end + 1])) { end += 1 }
    var out = Array(jpeg[..<sos])
    for _ in 0..<scans { out += jpeg[sos..<end] }
    return out + [0xFF, 0xD9]
}

@Suite("Hostile images")
struct HostileImageTests {
    @Test("A JPEG or PNG declaring 10000x10000 is refused at the device limit before decoding")
    func hugeDeclaredSizes() throws {
        let jpeg = withJPEGSize(try ImageFixtures.bytes("rocket_420.jpg"), width: 10_000, height: 10_000)
        #expect(timedError { () throws(ImageError) in try ImageDecoder.decode(bytes: jpeg, pixelLimit: ImageDecoder.devicePixelLimit) }
                == .tooLarge(width: 10_000, height: 10_000, limit: ImageDecoder.devicePixelLimit))
        let png = withPNGSize(try ImageFixtures.bytes("astronaut_rgb.png"), width: 10_000, height: 10_000)
        #expect(timedError { () throws(ImageError) in try ImageDecoder.decode(bytes: png, pixelLimit: ImageDecoder.devicePixelLimit) }
                == .tooLarge(width: 10_000, height: 10_000, limit: ImageDecoder.devicePixelLimit))
        // Controls: the untouched files decode at the device limit.
        #expect(try ImageDecoder.decode(bytes: try ImageFixtures.bytes("rocket_420.jpg"), pixelLimit: ImageDecoder.devicePixelLimit).width == 63)
        #expect(try ImageDecoder.decode(bytes: try ImageFixtures.bytes("astronaut_rgb.png"), pixelLimit: ImageDecoder.devicePixelLimit).width == 32)
    }

    @Test("The pixel limit follows a memory budget; the device default is below the server's")
    func limitsFollowMemory() {
        #expect(ImageDecoder.devicePixelLimit < ImageDecoder.defaultPixelLimit)
        #expect(ImageDecoder.devicePixelLimit * ImageDecoder.peakBytesPerPixel < 1 << 30)
        #expect(ImageDecoder.pixelLimit(memoryBudget: 3 << 30) >= ImageDecoder.defaultPixelLimit)
        #expect(ImageDecoder.pixelLimit(memoryBudget: -1) == 0)
    }

    @Test("A progressive JPEG with 500 scans is refused before decoding, even within the pixel limit")
    func scanFloodIsRefused() throws {
        let progressive = try ImageFixtures.bytes("chelsea_progressive.jpg")
        #expect(progressive.withUnsafeBufferPointer { JPEGDecoder.scanCount($0) } < ImageDecoder.maxJPEGScans)
        let flood = withJPEGSize(scanFlood(progressive, scans: 500), width: 10_000, height: 10_000)
        let e = timedError { () throws(ImageError) in try ImageDecoder.decode(bytes: flood, pixelLimit: ImageDecoder.defaultPixelLimit) }
        if case .corrupt(.jpeg, let message)? = e { #expect(message.contains("500 scans")) } else { Issue.record("got \(String(describing: e))") }
        // At the limit the scans are decoded (and this repeated scan is then refused by libjpeg itself).
        let atLimit = scanFlood(progressive, scans: ImageDecoder.maxJPEGScans)
        #expect(atLimit.withUnsafeBufferPointer { JPEGDecoder.scanCount($0) } == ImageDecoder.maxJPEGScans)
        do { _ = try ImageDecoder.decode(bytes: atLimit) } catch { #expect(!"\(error)".contains("scans, more than")) }
        // Control: the real progressive file decodes.
        #expect(try ImageDecoder.decode(bytes: progressive).width > 0)
    }

    @Test("Reading an image from /dev/zero stops at the file size limit")
    func endlessFile() {
        let e = timedError { () throws(ImageError) in try ImageDecoder.decode(contentsOf: "/dev/zero", maxFileBytes: 1 << 20) }
        if case .unreadable(let path, let reason)? = e {
            #expect(path == "/dev/zero" && reason.contains("longer than"))
        } else {
            Issue.record("got \(String(describing: e))")
        }
    }
}
