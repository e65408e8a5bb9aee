// SHA-256 and CRC-32 against published test vectors.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        // FIPS 180-2 appendix B / NIST CAVS examples.
        #expect(SHA256.hash([UInt8]()).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash(Array("abc".utf8)).hexString == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hexString
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hash(Array("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8)).hexString
                == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)).hexString
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func paddingBoundaries() {
        // Lengths around the 55/56/64-byte padding edges, checked against Python hashlib.sha256(b'a' * n).
        let expected: [Int: String] = [
            55: "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
            56: "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
            63: "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34",
            64: "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
        ]
        for (n, hex) in expected {
            #expect(SHA256.hash([UInt8](repeating: 0x61, count: n)).hexString == hex, "n = \(n)")
        }
    }

    @Test func incrementalEqualsOneShot() {
        var rng = SplitMix64(seed: 3)
        let bytes = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let oneShot = SHA256.hash(bytes)
        for chunk in [1, 3, 63, 64, 65, 1000] {
            var h = SHA256()
            var i = 0
            while i < bytes.count {
                h.update(bytes[i..<min(i + chunk, bytes.count)])
                i += chunk
            }
            #expect(h.finalize() == oneShot, "chunk \(chunk)")
        }
    }

    @Test func crc32Vectors() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
        // Slicing-by-8 and the byte loop agree on every tail length.
        var rng = SplitMix64(seed: 9)
        let bytes = (0..<40).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for n in 0...bytes.count {
            var crc: UInt32 = 0xFFFF_FFFF
            for b in bytes[0..<n] {
                crc ^= UInt32(b)
                for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
            }
            #expect(CRC32.checksum(Array(bytes[0..<n])) == ~crc, "n = \(n)")
        }
    }
}
