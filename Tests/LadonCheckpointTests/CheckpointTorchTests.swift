// TorchCheckpoint on real torch.save files: every dtype, strided/shared views, torchdistill layout, damaged files.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore
@testable import LadonCheckpoint

private func checkpoint(_ name: String) throws -> TorchCheckpoint {
    try TorchCheckpoint(path: Fixtures.url("checkpoints/\(name)").path)
}

private func openError(_ name: String) -> String? {
    do { _ = try TorchCheckpoint(path: Fixtures.url("checkpoints/\(name)").path); return nil } catch { return error.description }
}

@Suite struct CheckpointTorchTests {
    @Test(arguments: ["torch_various.pt", "torch_various_p4.pt"])
    func tensorsMatchTorch(file: String) throws {
        let ckpt = try checkpoint(file)
        let expected = try Fixtures.safetensors("checkpoints/torch_various_expected.safetensors")
        #expect(ckpt.stateDictKey == "model")
        #expect(Set(ckpt.names) == Set(expected.names))
        #expect(ckpt.skippedNames.isEmpty)
        for name in expected.names {
            let e = try expected.entry(name)
            let ref = try ckpt.tensorRef(name)
            #expect(ref.shape == e.shape, "\(name)")
            if [.f32, .f16, .bf16, .f64].contains(e.dtype) {
                // Exact: every source dtype converts to Float32 the same way on both sides.
                #expect(try ckpt.floatTensor(name) == expected.tensor(name), "\(name)")
            } else {
                #expect(try ckpt.int64Values(name).map(Int.init) == expected.integers(name), "\(name)")
            }
        }
        // Views over one storage: offsets and strides as torch saved them.
        let t = try ckpt.tensorRef("transposed"), row = try ckpt.tensorRef("view_row"), block = try ckpt.tensorRef("view_block")
        #expect(t.storage == row.storage && row.storage == block.storage)
        #expect(t.strides == [1, 6] && !t.isContiguous)
        #expect(row.storageOffset == 12 && block.storageOffset == 8 && block.strides == [6, 1])
        #expect(try ckpt.tensorRef("expanded").strides == [0, 1])
        #expect(try ckpt.tensorRef("num_batches_tracked").shape == [])
        #expect(try ckpt.int64Values("num_batches_tracked") == [12345])
        #expect(try ckpt.int32Values("i32") == [-3, 0, 7, Int32.max])
        #expect(throws: LadonError.self) { try ckpt.int32Values("i64") }  // -2^40 does not fit
        #expect(throws: LadonError.self) { try ckpt.int64Values("f32") }
        #expect(try ckpt.floatTensor("empty").shape == [0, 3])
    }

    @Test func torchdistillLayoutAndOpaqueObjects() throws {
        let ckpt = try checkpoint("torch_various.pt")
        let root = ckpt.root
        #expect(root["best_value"] == .float(76.5))
        guard case .object(let args)? = root["args"] else { Issue.record("args is \(String(describing: root["args"]))"); return }
        #expect(args.className == "argparse.Namespace")
        #expect(args.state?["config"] == .string("x.yaml"))
        #expect(args.state?["lr"] == .float(0.5))
        let config = root["config"]
        #expect(config?["name"] == .string("ünïcödé"))
        #expect(config?["neg"] == .int(-(1 << 33)))
        #expect(config?["big"] == .bigInt([0, 0, 0, 0, 0, 0, 0, 0, 0x40]))  // 2^70
        #expect(config?["raw"] == .bytes([0, 1, 0xFF]))
        #expect(config?["nums"] == .tuple([.int(1), .float(2.5), .none]))
        if case .set(let s)? = config?["set"] { #expect(Set(s.compactMap(\.intValue)) == [3, 4]) } else { Issue.record("set missing") }
        // The optimizer's momentum buffer is a tensor outside the state dict.
        guard case .dict(let state)? = root["optimizer"]?["state"], case .dict(let slot0) = state.first?.value,
              case .tensor(let buffer) = slot0.first?.value else { Issue.record("optimizer state"); return }
        #expect(try ckpt.floats(buffer) == [1, 1])
    }

    @Test func topLevelStateDictIsAccepted() throws {
        let ckpt = try checkpoint("bare_state_dict.pt")
        #expect(ckpt.stateDictKey == "")
        #expect(ckpt.names == ["w", "b"])
        #expect(try ckpt.floatTensor("w").scalars == [0, 1, 2])
        #expect(try ckpt.int64Values("b") == [7])
    }

    @Test func damagedAndUnsupportedFiles() {
        #expect(openError("torch_legacy.pt")?.contains("torch >= 1.6") == true)
        #expect(openError("missing_storage.pt")?.contains("record 'miss/data/1' is missing") == true)
        #expect(openError("huge_size.pt")?.contains("holds 4 elements") == true)
        #expect(openError("garbage_pickle.pt")?.contains("opcode 0xff") == true)
        #expect(openError("ladon_tiny_config.json")?.contains("not a readable torch.save zip file") == true)
    }

    @Test func corruptedStorageFailsTheCRCCheck() throws {
        var bytes = try Fixtures.bytes("checkpoints/torch_various.pt")
        let zip = try ZipArchive(data: Data(bytes))
        let record = try zip.entry("torch_various/data/0")
        bytes[record.dataRange.lowerBound] ^= 0x55
        #expect(throws: LadonError.self) { try TorchCheckpoint(data: Data(bytes), source: "x", verifyChecksums: true) }
        let unchecked = try TorchCheckpoint(data: Data(bytes), source: "x", verifyChecksums: false)
        #expect(unchecked.names.count > 0)
    }
}
