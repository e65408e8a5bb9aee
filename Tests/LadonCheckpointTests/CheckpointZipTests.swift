// The zip reader on real torch.save files, hand-built archives (zip64, deflate, encryption) and damaged bytes.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore
@testable import LadonCheckpoint

/// Writes small zip archives for tests: stored entries, optional zip64 records and overrides.
struct TestZipBuilder {
    struct Item { var name: String; var data: [UInt8]; var method: UInt16 = 0; var flags: UInt16 = 0 }
    var items: [Item] = []
    /// Saturate sizes/offsets in the central directory and put the real values in zip64 extra fields.
    var zip64Extras = false
    /// Write a zip64 end record and locator (torch always does).
    var zip64End = false

    func build() -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func le16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func le32(_ v: Int, _ a: inout [UInt8]) { for i in 0..<4 { a.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        func le64(_ v: Int, _ a: inout [UInt8]) { for i in 0..<8 { a.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        for item in items {
            let offset = out.count
            let name = Array(item.name.utf8)
            let crc = Int(CRC32.checksum(item.data))
            le32(0x0403_4b50, &out); le16(20, &out); le16(Int(item.flags), &out); le16(Int(item.method), &out)
            le32(0, &out); le32(crc, &out); le32(item.data.count, &out); le32(item.data.count, &out)
            le16(name.count, &out); le16(0, &out)
            out += name + item.data
            var extra: [UInt8] = []
            if zip64Extras {
                le16(1, &extra); le16(24, &extra)
                le64(item.data.count, &extra); le64(item.data.count, &extra); le64(offset, &extra)
            }
            let size32 = zip64Extras ? 0xFFFF_FFFF : item.data.count
            le32(0x0201_4b50, &central); le16(45, &central); le16(45, &central); le16(Int(item.flags), &central)
            le16(Int(item.method), &central); le32(0, &central); le32(crc, &central)
            le32(size32, &central); le32(size32, &central)
            le16(name.count, &central); le16(extra.count, &central); le16(0, &central); le16(0, &central)
            le16(0, &central); le32(0, &central); le32(zip64Extras ? 0xFFFF_FFFF : offset, &central)
            central += name + extra
        }
        let cdOffset = out.count
        out += central
        if zip64End {
            let record = out.count
            le32(0x0606_4b50, &out); le64(44, &out); le16(45, &out); le16(45, &out); le32(0, &out); le32(0, &out)
            le64(items.count, &out); le64(items.count, &out); le64(central.count, &out); le64(cdOffset, &out)
            le32(0x0706_4b50, &out); le32(0, &out); le64(record, &out); le32(1, &out)
        }
        le32(0x0605_4b50, &out); le16(0, &out); le16(0, &out)
        le16(zip64End ? 0xFFFF : items.count, &out); le16(zip64End ? 0xFFFF : items.count, &out)
        le32(zip64End ? 0xFFFF_FFFF : central.count, &out); le32(zip64End ? 0xFFFF_FFFF : cdOffset, &out); le16(0, &out)
        return out
    }
}

private func open(_ bytes: [UInt8]) throws(LadonError) -> ZipArchive { try ZipArchive(data: Data(bytes), source: "test.zip") }

private func message(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

@Suite struct CheckpointZipTests {
    @Test func readsTorchSaveArchive() throws {
        let zip = try ZipArchive(path: Fixtures.url("checkpoints/torch_various.pt").path)
        #expect(zip.entries.first?.name == "torch_various/data.pkl")
        #expect(zip.contains("torch_various/byteorder"))
        #expect(try zip.bytes("torch_various/byteorder") == Array("little".utf8))
        #expect(zip.entries.allSatisfy { $0.method == 0 })
    }

    @Test func plainAndZip64ArchivesGiveTheSameEntries() throws {
        let items = [TestZipBuilder.Item(name: "a/data.pkl", data: [1, 2, 3]), .init(name: "a/data/0", data: Array(0..<200))]
        for (extras, end) in [(false, false), (true, false), (false, true), (true, true)] {
            let zip = try open(TestZipBuilder(items: items, zip64Extras: extras, zip64End: end).build())
            #expect(zip.entries.map(\.name) == ["a/data.pkl", "a/data/0"])
            #expect(try zip.bytes("a/data/0") == Array(0..<200))
        }
    }

    @Test func deflateAndEncryptionAreClearErrors() throws {
        let deflated = try open(TestZipBuilder(items: [.init(name: "x", data: [1, 2], method: 8)]).build())
        let m = message { _ = try deflated.bytes("x") }
        #expect(m?.contains("DEFLATE") == true)
        let e = message { _ = try open(TestZipBuilder(items: [.init(name: "x", data: [1], flags: 1)]).build()) }
        #expect(e?.contains("encrypted") == true)
    }

    @Test func crcMismatchIsDetected() throws {
        var bytes = TestZipBuilder(items: [.init(name: "x", data: [1, 2, 3, 4])]).build()
        bytes[30 + 1] ^= 0xFF  // first data byte after the 30-byte header and the 1-byte name
        let zip = try open(bytes)
        #expect(message { _ = try zip.bytes("x") }?.contains("CRC-32") == true)
        #expect(try zip.bytes("x", verifyCRC: false) == [0xFE, 2, 3, 4])
    }

    @Test func damagedArchivesGiveTypedErrors() throws {
        let good = try Fixtures.bytes("checkpoints/torch_various.pt")
        #expect(message { _ = try open([]) }?.contains("too short") == true)
        #expect(message { _ = try open(Array(good.prefix(good.count / 2))) } != nil)
        #expect(message { _ = try open(Array(good.dropLast(30))) } != nil)
        // Corrupt the first central-directory signature.
        var corrupt = good
        let cd = (0..<(good.count - 4)).first { good[$0] == 0x50 && good[$0 + 1] == 0x4b && good[$0 + 2] == 1 && good[$0 + 3] == 2 }!
        corrupt[cd] = 0
        #expect(message { _ = try open(corrupt) }?.contains("no valid signature") == true)
        // A local header offset past the directory.
        var offset = good
        for i in 0..<4 { offset[cd + 42 + i] = 0xEE }
        #expect(message { _ = try open(offset) } != nil)
        // Not a zip at all.
        #expect(message { _ = try open(Array(repeating: 0x41, count: 1000)) }?.contains("end-of-central-directory") == true)
    }

    @Test func truncationAtEveryLengthIsADamagedZip() throws {
        let good = TestZipBuilder(items: [.init(name: "a/data.pkl", data: [9, 9]), .init(name: "a/b", data: Array(0..<50))],
                                  zip64Extras: true, zip64End: true).build()
        #expect(try open(good).bytes("a/b") == Array(0..<50))
        // Every cut loses (part of) the end record, so every prefix is refused as damaged, none traps.
        for n in 0..<good.count {
            do {
                _ = try open(Array(good.prefix(n)))
                Issue.record("a zip cut at \(n) of \(good.count) bytes was accepted")
            } catch {
                guard case .checkpoint(file: "test.zip", .damagedZip) = error else { Issue.record("cut at \(n): \(error)"); continue }
            }
        }
    }

    @Test func randomByteFlipsAreRefusedOrReadWhole() throws {
        let good = try Fixtures.bytes("checkpoints/torch_various.pt")
        var rng = SplitMix64(seed: 11)
        var refused = 0, opened = 0
        for _ in 0..<300 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            // Either refused as a damaged checkpoint, or read: then every tensor that reads has all its elements.
            do {
                let ckpt = try TorchCheckpoint(data: Data(bytes), source: "fuzz", verifyChecksums: false)
                opened += 1
                for name in ckpt.names {
                    guard let ref = try? ckpt.tensorRef(name) else { continue }
                    let count = ref.dtype.isFloatingPoint ? (try? ckpt.floats(ref).count) : (try? ckpt.int64s(ref).count)
                    if let count { #expect(count == ref.elementCount, "\(name)") }
                }
            } catch {
                refused += 1
                guard case .checkpoint = error, error.description.contains("fuzz") else { Issue.record("\(error)"); continue }
            }
        }
        // The flips reach both outcomes (otherwise this test would test nothing).
        #expect(refused > 0 && opened > 0, "refused \(refused), opened \(opened)")
    }
}
