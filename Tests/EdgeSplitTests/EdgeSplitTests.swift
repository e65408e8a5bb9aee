// The device/server split and its packet format: round trips, equality with the one-process model, bad packets.
import Foundation
import Testing
@testable import EdgeSplit
@testable import LadonCore

/// The tiny model fixture of LadonCoreTests, reached through the source tree (this target has no resources).
enum TinyModel {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("LadonCoreTests/Fixtures/model/tiny_model.safetensors").path
    static let casePath = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("tiny_case0.safetensors").path
}

/// Writes a copy of the tiny model with a `fingerprint` metadata entry and returns its path.
func fingerprintedCopy(fingerprint: String) throws -> String {
    let file = try SafeTensorsFile(path: TinyModel.path)
    var writer = SafeTensorsWriter()
    writer.metadata = file.metadata
    writer.metadata["fingerprint"] = fingerprint
    for name in file.names {
        let e = try file.entry(name)
        writer.add(name, dtype: e.dtype, shape: e.shape, bytes: try file.rawBytes(name))
    }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-fp-\(UUID().uuidString).safetensors").path
    try writer.serialized().write(to: URL(fileURLWithPath: path))
    return path
}

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

    @Test func splitHalvesEqualTheWholeModel() throws {
        let reference = try SafeTensorsFile(path: TinyModel.casePath)
        let image = try reference.tensor("image")
        let device = try DeviceHalf(path: TinyModel.path)
        let server = try ServerHalf(path: TinyModel.path)
        let packet = try device.encode(image)
        let wire = packet.serialized()
        let result = try server.run(try LatentPacket(bytes: wire))
        let whole = try server.model.infer(image)
        #expect(result.compressed == whole.compressed)
        #expect(result.compressed == (try reference.rawBytes("compressed")))
        #expect(result.classificationLogits == whole.classificationLogits)
        #expect(result.segmentation?.mask == whole.segmentation?.mask)
        #expect(result.geometry == whole.geometry)
    }

    @Test func serverRefusesPacketsForAnotherModelOrShape() throws {
        let server = try ServerHalf(path: TinyModel.path)
        let device = try DeviceHalf(path: TinyModel.path)
        let image = try SafeTensorsFile(path: TinyModel.casePath).tensor("image")
        var packet = try device.encode(image)
        // A server whose weights carry a fingerprint refuses a packet stamped by another model.
        let stamped = try fingerprintedCopy(fingerprint: String(repeating: "5a", count: 32))
        let stampedServer = try ServerHalf(path: stamped)
        #expect(stampedServer.modelID == [UInt8](repeating: 0x5a, count: 16))
        var foreign = packet
        foreign.modelID = [UInt8](repeating: 0xAB, count: 16)
        #expect(throws: PacketError.wrongModel(expected: String(repeating: "5a", count: 16), actual: String(repeating: "ab", count: 16))) {
            try stampedServer.run(foreign)
        }
        foreign.modelID = stampedServer.modelID
        #expect(try stampedServer.run(foreign).compressed == packet.payload)
        packet.latentChannels = 24
        #expect(throws: PacketError.self) { try server.run(packet) }
        packet.latentChannels = 4
        packet.latentHeight += 1
        #expect(throws: PacketError.self) { try server.run(packet) }
        packet.latentHeight -= 1
        packet.payload = Array(packet.payload.prefix(12))
        #expect(throws: (any Error).self) { try server.run(packet) }
    }
}
