// The restricted pickle VM on hand-written opcode streams: values, memo, opaque objects, and every failure mode.
import Foundation
import Testing
@testable import LadonCore
@testable import LadonCheckpoint

private func load(_ bytes: [UInt8]) throws(LadonError) -> PickleValue { try PickleMachine.load(bytes, source: "test") }

private func failure(_ bytes: [UInt8]) -> String? {
    do { _ = try load(bytes); return nil } catch { return error.description }
}

/// BINUNICODE 'text'.
private func str(_ s: String) -> [UInt8] {
    let u = Array(s.utf8)
    return [0x58] + (0..<4).map { UInt8((u.count >> (8 * $0)) & 0xFF) } + u
}

@Suite struct CheckpointPickleTests {
    @Test func basicValues() throws {
        // {'a': [1, -2, 300, 70000, None, True, 1.5], 'b': (b'xy', 'é')}
        var p: [UInt8] = [0x80, 0x02, 0x7D, 0x28] + str("a") + [0x5D, 0x28, 0x4B, 1, 0x4A, 0xFE, 0xFF, 0xFF, 0xFF, 0x4D, 0x2C, 0x01]
        p += [0x4A, 0x70, 0x11, 0x01, 0x00, 0x4E, 0x88, 0x47, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0, 0x65]
        p += str("b") + [0x43, 2, 0x78, 0x79] + str("é") + [0x86, 0x75, 0x2E]
        let v = try load(p)
        #expect(v["a"] == .list([.int(1), .int(-2), .int(300), .int(70000), .none, .bool(true), .float(1.5)]))
        #expect(v["b"] == .tuple([.bytes([0x78, 0x79]), .string("é")]))
    }

    @Test func longIntegers() throws {
        #expect(try load([0x8A, 1, 0xFF, 0x2E]) == .int(-1))
        #expect(try load([0x8A, 2, 0x00, 0x80, 0x2E]) == .int(-32768))
        #expect(try load([0x8A, 0, 0x2E]) == .int(0))
        #expect(try load([0x8A, 5, 0, 0, 0, 0, 1, 0x2E]) == .int(1 << 32))
        #expect(try load([0x8A, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x2E]) == .bigInt([1, 0, 0, 0, 0, 0, 0, 0, 1]))
    }

    @Test func memoSharesMutableContainers() throws {
        // l = []; memo[0] = l; l.append(7); (l, memo[0]) -> both see the append.
        let p: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0, 0x4B, 7, 0x61, 0x68, 0, 0x86, 0x2E]
        #expect(try load(p) == .tuple([.list([.int(7)]), .list([.int(7)])]))
    }

    @Test func unknownClassesStayOpaque() throws {
        // argparse.Namespace() via NEWOBJ, then BUILD with {'lr': 1}; os.system('x') via REDUCE is recorded, not run.
        var p: [UInt8] = [0x80, 0x02, 0x63] + Array("argparse\nNamespace\n".utf8) + [0x29, 0x81, 0x7D] + str("lr") + [0x4B, 1, 0x73, 0x62]
        p += [0x63] + Array("os\nsystem\n".utf8) + str("x") + [0x85, 0x52, 0x86, 0x2E]
        let v = try load(p)
        guard case .tuple(let items) = v, case .object(let ns) = items[0], case .object(let call) = items[1] else {
            Issue.record("unexpected \(v)"); return
        }
        #expect(ns.className == "argparse.Namespace")
        #expect(ns.state?["lr"] == .int(1))
        #expect(call.className == "os.system")
        #expect(call.args == [.string("x")])
    }

    @Test func orderedDictAndCodecs() throws {
        // OrderedDict([('k', 1)]) and _codecs.encode('\u{ff}A', 'latin1').
        var p: [UInt8] = [0x80, 0x02, 0x63] + Array("collections\nOrderedDict\n".utf8) + [0x5D, 0x28] + str("k") + [0x4B, 1, 0x86, 0x65, 0x85, 0x52]
        p += [0x63] + Array("_codecs\nencode\n".utf8) + str("\u{ff}A") + str("latin1") + [0x86, 0x52, 0x86, 0x2E]
        #expect(try load(p) == .tuple([.dict([PickleDictItem(key: .string("k"), value: .int(1))]), .bytes([0xFF, 0x41])]))
    }

    @Test func damagedStreamsGiveTypedErrors() {
        #expect(failure([0x80, 0x02, 0xFF])?.contains("opcode 0xff") == true)
        #expect(failure([0x80, 0x02, 0x4B])?.contains("needs 1 bytes") == true)
        #expect(failure([0x80, 0x02, 0x4B, 1])?.contains("without STOP") == true)
        #expect(failure([0x80, 0x02, 0x2E])?.contains("underflow") == true)
        #expect(failure([0x80, 0x02, 0x68, 3, 0x2E])?.contains("memo entry 3") == true)
        #expect(failure([0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E])?.contains("declares") == true)
        #expect(failure([0x80, 0x02, 0x8D] + [UInt8](repeating: 0xFF, count: 8) + [0x2E])?.contains("declares") == true)
        #expect(failure([0x80, 0x02, 0x58, 2, 0, 0, 0, 0xC3, 0x28, 0x2E])?.contains("UTF-8") == true)
        #expect(failure([0x80, 0x09, 0x2E])?.contains("protocol 9") == true)
        #expect(failure([0x80, 0x02, 0x65, 0x2E])?.contains("MARK") == true)
        #expect(failure([0x80, 0x02, 0x4B, 0, 0x4B, 1, 0x4B, 2, 0x73, 0x2E])?.contains("SETITEM on a int") == true)
        #expect(failure([0x80, 0x02, 0x4B, 1, 0x4B, 2, 0x73, 0x2E])?.contains("underflow") == true)
        #expect(failure([0x80, 0x02, 0x4B, 1, 0x29, 0x52, 0x2E])?.contains("expected a global") == true)
        // A persistent id with no resolver.
        #expect(failure([0x80, 0x02, 0x4E, 0x51, 0x2E])?.contains("persistent id") == true)
    }

    @Test func cyclesAndDeepNestingAreRejected() {
        // l = []; l.append(l)
        #expect(failure([0x80, 0x02, 0x5D, 0x71, 0, 0x68, 0, 0x61, 0x2E])?.contains("cyclic") == true)
        // 10,000 nested one-element tuples: iterative VM, depth-capped conversion.
        let deep: [UInt8] = [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 10_000) + [0x2E]
        #expect(failure(deep)?.contains("nested deeper") == true)
        // Exponential sharing (t = (t, t) 64 times) converts in linear time.
        var wide: [UInt8] = [0x80, 0x02, 0x4E]
        for _ in 0..<64 { wide += [0x32, 0x86] }
        wide.append(0x2E)
        #expect(failure(wide) == nil)
    }

    @Test func tensorRebuildValidatesTheView() throws {
        let storage = TorchStorageRef(key: "0", dtype: .float32, elementCount: 6, location: "cpu")
        #expect(try TorchTensorRef(storage: storage, storageOffset: 0, shape: [2, 3], strides: [3, 1]).isContiguous)
        #expect(try !TorchTensorRef(storage: storage, storageOffset: 0, shape: [3, 2], strides: [1, 3]).isContiguous)
        #expect(throws: LadonError.self) { try TorchTensorRef(storage: storage, storageOffset: 1, shape: [2, 3], strides: [3, 1]) }
        #expect(throws: LadonError.self) { try TorchTensorRef(storage: storage, storageOffset: 0, shape: [Int.max, 2], strides: [1, Int.max]) }
        #expect(throws: LadonError.self) { try TorchTensorRef(storage: storage, storageOffset: 0, shape: [2], strides: [-1]) }
        #expect(throws: LadonError.self) { try TorchTensorRef(storage: storage, storageOffset: 0, shape: [2], strides: [1, 1]) }
        // Empty tensors may sit anywhere; zero strides are fine.
        _ = try TorchTensorRef(storage: storage, storageOffset: 100, shape: [0, 5], strides: [5, 1])
        _ = try TorchTensorRef(storage: storage, storageOffset: 5, shape: [1000], strides: [0])
    }
}
