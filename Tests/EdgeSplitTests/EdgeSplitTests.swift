// The device/server split and its packet format: round trips, equality with the one-process model, bad packets.
import Foundation
import Testing
@testable import EdgeSplit
@testable import LadonCore
import LadonTestSupport

@Suite struct EdgeSplitTests {
    func samplePacket() -> LatentPacket {
        LatentPacket(modelID: Array(0..<16), originalHeight: 480, originalWidth: 640, resizedHeight: 312, resizedWidth: 416,
                     paddedHeight: 320, paddedWidth: 416, latentChannels: 24, latentHeight: 79, latentWidth: 103,
                     payload: [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func packetRoundTrips() throws {
        let p = samplePacket()
        #expect(try LatentPacket(bytes: p.serialized()) == p)
    }

    @Test func damagedPacketsAreRefusedWithReasons() {
        let bytes = samplePacket().serialized()
        #expect(throws: PacketError.truncated(expected: LatentPacket.headerSize, actual: 10)) { try LatentPacket(bytes: Array(bytes[0..<10])) }
        #expect(throws: PacketError.truncated(expected: bytes.count, actual: bytes.count - 1)) { try LatentPacket(bytes: Array(bytes.dropLast())) }
        var magic = bytes; magic[0] = 0x58
        #expect(throws: PacketError.notAPacket) { try LatentPacket(bytes: magic) }
        var version = bytes; version[4] = 9
        #expect(throws: PacketError.unsupportedVersion(9)) { try LatentPacket(bytes: version) }
        // Every single-bit flip in the body is caught by the checksum or a field check, never a crash.
        for i in 8..<bytes.count {
            var flipped = bytes
            flipped[i] ^= 0x10
            #expect(throws: PacketError.self) { try LatentPacket(bytes: flipped) }
        }
        #expect(throws: PacketError.self) { try LatentPacket(bytes: bytes + [0]) }
    }

    func tinyImage() throws -> Tensor { try TinyModel.image() }

    @Test func splitHalvesEqualTheWholeModel() throws {
        let reference = try SafeTensorsFile(path: TinyModel.casePath)
        let image = try reference.tensor("image")
        let device = try DeviceHalf(path: TinyModel.path)
        let server = try ServerHalf(path: TinyModel.path)
        let wire = LatentPacket(try device.encode(image)).serialized()
        let result = try server.run(try LatentPacket(bytes: wire).encodedImage)
        let whole = try LadonModel(path: TinyModel.path).infer(image)
        #expect(result.compressed == whole.compressed)
        #expect(result.compressed == (try reference.rawBytes("compressed")))
        #expect(result.classificationLogits == whole.classificationLogits)
        #expect(result.segmentation?.mask == whole.segmentation?.mask)
        #expect(result.geometry == whole.geometry)
        #expect(result.detections.map(\.score) == whole.detections.map(\.score))
    }

    @Test func deviceFileHoldsOnlyTheEncoderAndMakesTheSamePackets() throws {
        let stamped = try TinyModel.copy(fingerprint: String(repeating: "5a", count: 32))
        let file = try LadonModelFile(path: stamped)
        let path = Scratch.path("device.safetensors")
        try file.deviceFile().write(to: URL(fileURLWithPath: path))
        let deviceFile = try LadonModelFile(path: path)
        #expect(deviceFile.kind == .device)
        #expect(deviceFile.file.names.allSatisfy { $0.hasPrefix("encoder.") })
        #expect(deviceFile.modelID == file.modelID)
        #expect(deviceFile.encoderSize == file.encoderSize)
        let image = try tinyImage()
        #expect(try DeviceHalf(modelFile: deviceFile).encode(image) == (try DeviceHalf(modelFile: file).encode(image)))
        // The server half needs the whole model and says so.
        do {
            _ = try ServerHalf(modelFile: deviceFile)
            Issue.record("a device file must not load as a server half")
        } catch {
            #expect("\(error)".contains("device file"))
        }
    }

    @Test func rgbPixelsEncodeLikeTheTensor() throws {
        let device = try DeviceHalf(path: TinyModel.path)
        let (w, h) = (37, 23)
        let pixels = (0..<(w * h * 3)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let tensor = try Tensor(rgb8: pixels, width: w, height: h)
        #expect(tensor.shape == [1, 3, h, w])
        #expect(tensor.scalars[1] == Float(pixels[3]) / 255 && tensor.scalars[w * h] == Float(pixels[1]) / 255)
        #expect(try device.encode(rgb: pixels, width: w, height: h) == (try device.encode(tensor)))
        #expect(throws: LadonError.self) { try device.encode(rgb: pixels, width: w, height: h + 1) }
        #expect(throws: LadonError.self) { try device.encode(rgb: [], width: Int.max, height: 3) }
    }

    @Test func serverRefusesPacketsForAnotherModelOrShape() throws {
        let server = try ServerHalf(path: TinyModel.path)
        let device = try DeviceHalf(path: TinyModel.path)
        var packet = try device.encode(try tinyImage())
        // A server whose weights carry a fingerprint refuses a packet stamped by another model, without naming its own.
        let stamped = try TinyModel.copy(fingerprint: String(repeating: "5a", count: 32))
        let stampedServer = try ServerHalf(path: stamped)
        #expect(stampedServer.modelID == [UInt8](repeating: 0x5a, count: 16))
        var foreign = packet
        foreign.modelID = [UInt8](repeating: 0xAB, count: 16)
        #expect(throws: LadonError.wrongModel(packetModel: String(repeating: "ab", count: 16))) { try stampedServer.run(foreign) }
        do { try stampedServer.check(foreign) } catch { #expect(!"\(error)".contains("5a5a")) }
        foreign.modelID = stampedServer.modelID
        #expect(try stampedServer.run(foreign).compressed == packet.bytes)
        packet.latentChannels = 24
        #expect(throws: LadonError.self) { try server.run(packet) }
        packet.latentChannels = 4
        packet.latentHeight += 1
        #expect(throws: LadonError.self) { try server.run(packet) }
        packet.latentHeight -= 1
        packet.bytes = Array(packet.bytes.prefix(12))
        #expect(throws: LadonError.self) { try server.run(packet) }
    }

    @Test func forgedGeometryIsRefusedBeforeAnyWork() throws {
        let server = try ServerHalf(path: TinyModel.path)
        let good = try DeviceHalf(path: TinyModel.path).encode(try tinyImage())
        var forged: [EncodedImage] = []
        var huge = good  // the measured attack: a huge original size with the real latent
        huge.geometry.originalHeight = 65536; huge.geometry.originalWidth = 65536
        forged.append(huge)
        var big = good  // padded 4x the model's maximum, latent to match
        big.geometry.paddedHeight *= 4; big.geometry.paddedWidth *= 4
        big.latentHeight = big.geometry.paddedHeight / 4 - 1; big.latentWidth = big.geometry.paddedWidth / 4 - 1
        forged.append(big)
        var resized = good  // resized size not the one the preprocessing gives
        resized.geometry.resizedWidth -= 1
        forged.append(resized)
        var zero = good
        zero.geometry.originalWidth = 0
        forged.append(zero)
        var thin = good  // 1 x 10000 cannot be resized to the model's size
        thin.geometry.originalHeight = 1; thin.geometry.originalWidth = 10_000
        forged.append(thin)
        for (k, e) in forged.enumerated() {
            #expect(throws: LadonError.self, "case \(k)") { try server.check(e) }
        }
        // A consistent but large original size is accepted, and its counts come without a full-size mask.
        var large = good
        let g = large.geometry
        let scale = 100
        large.geometry.originalHeight = g.originalHeight * scale; large.geometry.originalWidth = g.originalWidth * scale
        if let expected = server.expectedGeometry(originalHeight: large.geometry.originalHeight, originalWidth: large.geometry.originalWidth),
           expected.geometry == large.geometry {
            let result = try server.run(large)
            let summary = InferenceSummary(file: "x", result: result, labels: server.labels, includeLogits: false, maskAtOriginalSize: true)
            #expect(summary.segmentation!.classPixels.values.reduce(0, +) == large.geometry.originalHeight * large.geometry.originalWidth)
        }
    }

    @Test func classCountsWithMultiplicitiesEqualTheMaterialisedMask() throws {
        let mask: [Int32] = (0..<63).map { (i: Int) -> Int32 in Int32((i * 7 + i / 5) % 4) }
        let seg = SegmentationResult(logits: Tensor(shape: [1, 4, 7, 9]), mask: mask)
        for (rh, rw, h, w) in [(7, 9, 7, 9), (5, 8, 13, 17), (7, 9, 3, 4), (6, 9, 100, 1), (1, 1, 5, 5)] {
            let full = seg.mask(resampledFrom: rh, rw, toHeight: h, width: w)
            var expected: [Int32: Int] = [:]
            for id in full { expected[id, default: 0] += 1 }
            #expect(seg.classCounts(resampledFrom: rh, rw, toHeight: h, width: w) == expected, "\(rh)x\(rw) -> \(h)x\(w)")
            #expect(seg.classIDBytes(resampledFrom: rh, rw, toHeight: h, width: w) == full.map { UInt8($0) })
        }
    }
}
