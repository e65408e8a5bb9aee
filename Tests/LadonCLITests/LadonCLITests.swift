// End-to-end tests of the `ladon` executable: convert real (tiny) torch checkpoints, infer, fail clearly.
import Foundation
import LadonCore
import LadonTestSupport
import Testing

/// Runs the built `ladon` binary (it sits next to the test bundle in the build directory).
struct LadonCLI {
    static let executable: URL = {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [bundleDir, bundleDir.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("ladon")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return bundleDir.appendingPathComponent("ladon")
    }()
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func fixture(_ path: String) -> String { repo.appendingPathComponent(path).path }

    struct Output { let status: Int32; let stdout: String; let stderr: String }

    static func run(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) throws -> Output {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "LADON_MODEL")
        env["XDG_DATA_HOME"] = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-no-home").path
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }

    static func temporary(_ name: String) -> String { Scratch.path(name) }
}

@Suite(.serialized) struct LadonCLITests {
    static let tinyModel = "Tests/LadonCoreTests/Fixtures/model/tiny_model.safetensors"
    static let image = "Scripts/data/chelsea_small.png"

    @Test func inferPrintsAllThreeTasksAsJSON() throws {
        let bin = LadonCLI.temporary("latent.bin"), mask = LadonCLI.temporary("mask.png"), overlay = LadonCLI.temporary("overlay.png")
        let r = try LadonCLI.run(["infer", "--json", "--logits", "--model", LadonCLI.fixture(Self.tinyModel),
                                  "--bin", bin, "--mask", mask, "--overlay", overlay, LadonCLI.fixture(Self.image)])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let image = try #require(object["image"] as? [String: Int])
        #expect(image["width"] == 160 && image["height"] == 106)
        let input = try #require(object["input"] as? [String: Int])
        #expect(input["paddedWidth"] == 64 && input["paddedHeight"] == 64 && input["width"] == 64)
        let latent = try #require(object["latent"] as? [String: Int])
        #expect(latent["channels"] == 4 && latent["height"] == 15 && latent["width"] == 15)
        let classification = try #require(object["classification"] as? [String: Any])
        #expect((classification["top5"] as? [Any])?.count == 5)
        #expect((classification["logits"] as? [Double])?.count == 10)
        let detections = try #require(object["detection"] as? [[String: Any]])
        #expect(!detections.isEmpty && detections.allSatisfy { ($0["box"] as? [Double])?.count == 4 && $0["name"] is String })
        let segmentation = try #require(object["segmentation"] as? [String: Any])
        let pixels = try #require(segmentation["classPixels"] as? [String: Int])
        #expect(pixels.values.reduce(0, +) == 160 * 106)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: bin))
        #expect(bytes.count == object["compressedBytes"] as? Int)
        #expect(FileManager.default.fileExists(atPath: mask) && FileManager.default.fileExists(atPath: overlay))
    }

    @Test func textOutputListsClassesDetectionsAndSegmentation() throws {
        let r = try LadonCLI.run(["infer", "--top-k", "3", "--detection-threshold", "0", "--model",
                                  LadonCLI.fixture(Self.tinyModel), LadonCLI.fixture(Self.image)])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("classification (top 3)"))
        #expect(r.stdout.contains("detection ("))
        #expect(r.stdout.contains("segmentation (original size 160x106)"))
    }

    @Test func missingModelSaysHowToGetOne() throws {
        let r = try LadonCLI.run(["infer", LadonCLI.fixture(Self.image)])
        #expect(r.status == 3, "a missing model exits 3")
        #expect(r.stderr.contains("ladon convert") && r.stderr.contains("wacv2025"))
    }

    /// The pixel limit's help states its memory in MiB (24 MP × 30 bytes), not 0 (`>>` binds before `*` in Swift).
    @Test func pixelLimitHelpStatesItsMemory() throws {
        let mib = (24_000_000 * 30) >> 20
        for command in ["infer", "encode"] {
            let r = try LadonCLI.run([command, "--help"])
            let text = r.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(text.contains("about \(mib) MiB at the peak"), "\(command) --help: \(text)")
        }
    }

    @Test func batchInputsOutputsAndJSONErrorLines() throws {
        let model = LadonCLI.fixture(Self.tinyModel)
        // A folder of images (recursively), one of them damaged, through infer and encode with --output-dir.
        let folder = LadonCLI.temporary("images")
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: LadonCLI.fixture(Self.image), toPath: folder + "/a.png")
        try FileManager.default.copyItem(atPath: LadonCLI.fixture("Scripts/data/coffee_small.png"), toPath: folder + "/sub/b.png")
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]).write(to: URL(fileURLWithPath: folder + "/sub/broken.png"))
        let out = LadonCLI.temporary("out")
        let r = try LadonCLI.run(["infer", "--json", "--model", model, "--output-dir", out, folder])
        #expect(r.status == 1, "one image is broken: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.count == 3 && lines.allSatisfy { $0 != nil })
        let failure = try #require(lines.compactMap { $0 }.first { $0["error"] != nil })
        #expect((failure["file"] as? String)?.hasSuffix("broken.png") == true)
        #expect((failure["error"] as? [String: Any])?["code"] as? String == "bad_image")
        for name in ["a.mask.png", "a.overlay.png", "a.bin", "b.mask.png", "b.overlay.png", "b.bin"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + name), "\(name)")
        }
        // encode: a list file in, packets out, JSON lines; decode reads the packet paths from stdin.
        let list = LadonCLI.temporary("list.txt")
        try "\(folder)/a.png\n# a comment\n\(folder)/sub/b.png\n".write(toFile: list, atomically: true, encoding: .utf8)
        let packets = LadonCLI.temporary("packets")
        let e = try LadonCLI.run(["encode", "--json", "--model", model, "--output-dir", packets, "@" + list])
        #expect(e.status == 0, "\(e.stderr)")
        let encoded = e.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(encoded.count == 2 && encoded.allSatisfy { ($0["packetBytes"] as? Int ?? 0) > 64 })
        // Each line times the device half's stages, with the keys of `infer --json`.
        #expect(encoded.allSatisfy { line in
            let timings = line["timings"] as? [String: Double] ?? [:]
            return Set(timings.keys) == ["decodeMs", "preprocessMs", "encoderMs", "compressMs"] && timings.values.allSatisfy { $0 >= 0 }
        })
        #expect(FileManager.default.fileExists(atPath: packets + "/a.ldnp") && FileManager.default.fileExists(atPath: packets + "/b.ldnp"))
        let d = try LadonCLI.run(["decode", "--json", "--model", model, packets])
        #expect(d.status == 0 && d.stdout.split(separator: "\n").count == 2, "\(d.stderr)")
        let piped = try LadonCLI.run(["decode", "--json", "--model", model, "-"], stdin: "\(packets)/b.ldnp\n\(packets)/missing.ldnp\n")
        #expect(piped.status == 1 && piped.stdout.split(separator: "\n").count == 2, "\(piped.stderr)")
        #expect(piped.stdout.contains(#""code":"bad_packet""#))
        // The same packet file through -o gives identical bytes.
        let single = LadonCLI.temporary("a.ldnp")
        #expect(try LadonCLI.run(["encode", "--model", model, folder + "/a.png", "-o", single]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: single)) == Data(contentsOf: URL(fileURLWithPath: packets + "/a.ldnp")))
    }

    @Test func exitStatusSaysWhatKindOfFailure() throws {
        let model = LadonCLI.fixture(Self.tinyModel)
        // Not a weights file: 3. A usage error: 64. A server nobody listens on: 4. A failed conversion: 2.
        #expect(try LadonCLI.run(["info", LadonCLI.fixture(Self.image)]).status == 3)
        #expect(try LadonCLI.run(["infer", "--top-k", "0", "--model", model, LadonCLI.fixture(Self.image)]).status == 64)
        let level = try LadonCLI.run(["serve", "--log-level", "loud", "--model", model])
        #expect(level.status == 64 && level.stderr.contains("--log-level must be one of trace, debug, info, notice, warning, error, critical"),
                "\(level.stderr)")
        let send = try LadonCLI.run(["send", "--server", "http://127.0.0.1:9", "--model", model, LadonCLI.fixture(Self.image)])
        #expect(send.status == 4, "\(send.stdout) \(send.stderr)")
        #expect(send.stdout.contains(#""code":"transport""#))
        let convert = try LadonCLI.run(["convert", "--classification", LadonCLI.fixture(Self.image), "--output", LadonCLI.temporary("x.safetensors")])
        #expect(convert.status == 2, "\(convert.stderr)")
        #expect(try LadonCLI.run(["info", model]).status == 0)
    }

    @Test func badImagesFailClearlyAndTheOthersStillRun() throws {
        let garbage = LadonCLI.temporary("garbage.jpg")
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]).write(to: URL(fileURLWithPath: garbage))
        let r = try LadonCLI.run(["infer", "--json", "--model", LadonCLI.fixture(Self.tinyModel), garbage,
                                  LadonCLI.fixture(Self.image), "/nonexistent/photo.png"])
        #expect(r.status == 1)
        // One result line and, with --json, one error line per failed image, in input order.
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 3 && lines[0].contains(#""error""#) && !lines[1].contains(#""error""#) && lines[2].contains(#""error""#))
        #expect(r.stderr.contains(garbage) && r.stderr.contains("/nonexistent/photo.png"))
    }

    @Test func convertFindsTheReleaseFilesByName() throws {
        let dir = "Tests/LadonCheckpointTests/Fixtures/checkpoints/"
        let release = LadonCLI.temporary("release")
        let names = [("ilsvrc2012", "ladon_tiny_cls.pt", "ilsvrc2012-splittable_resnet50-fp-beta1.28_from_resnet50.pt"),
                     ("coco2017", "ladon_tiny_det.pt", "coco2017-faster_rcnn_splittable_resnet50-fp-beta1.28_fpn.pt"),
                     ("pascal_voc2012", "ladon_tiny_seg.pt", "pascal_voc2012-deeplabv3_splittable_resnet50-fp-beta1.28_two_stages.pt")]
        for (task, fixture, name) in names {
            let folder = "\(release)/resource/ckpt/\(task)/ladon"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: LadonCLI.fixture(dir + fixture), toPath: "\(folder)/\(name)")
        }
        let out = LadonCLI.temporary("release.safetensors")
        let c = try LadonCLI.run(["convert", "--release", release, "--beta", "1.28", "--json",
                                  "--config", LadonCLI.fixture(dir + "ladon_tiny_config.json"), "--output", out])
        #expect(c.status == 0, "\(c.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(c.stdout.utf8)) as? [String: Any])
        #expect(summary["beta"] as? String == "1.28" && summary["variant"] as? String == "resnet50")
        #expect((summary["sources"] as? [[String: Any]])?.count == 3)
        #expect(c.stderr.contains("reading segmentation"))
        let info = try LadonCLI.run(["info", out])
        #expect(info.stdout.contains("beta: 1.28"), "\(info.stdout)")
        // Another β is not there, and the message names the files it looked for.
        let missing = try LadonCLI.run(["convert", "--release", release, "--beta", "5.12", "--output", out])
        #expect(missing.status != 0 && missing.stderr.contains("fp-beta5.12_from_resnet50.pt"), "\(missing.stderr)")
    }

    @Test func convertsRealTorchCheckpointsThatInferCanLoad() throws {
        // The output directory need not exist (the default model location does not on a fresh machine).
        let out = LadonCLI.temporary("new-dir") + "/ladon/tiny.safetensors"
        let dir = "Tests/LadonCheckpointTests/Fixtures/checkpoints/"
        let c = try LadonCLI.run(["convert", "--classification", LadonCLI.fixture(dir + "ladon_tiny_cls.pt"),
                                  "--detection", LadonCLI.fixture(dir + "ladon_tiny_det.pt"),
                                  "--segmentation", LadonCLI.fixture(dir + "ladon_tiny_seg.pt"),
                                  "--config", LadonCLI.fixture(dir + "ladon_tiny_config.json"), "--output", out])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.contains("fingerprint"))
        let r = try LadonCLI.run(["infer", "--json", "--model", out, LadonCLI.fixture(Self.image)])
        #expect(r.status == 0, "\(r.stderr)")
        let bad = try LadonCLI.run(["convert", "--classification", LadonCLI.fixture(dir + "ladon_tiny_det.pt"),
                                    "--config", LadonCLI.fixture(dir + "ladon_tiny_config.json"), "--output", out])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("ladon_tiny_det.pt"))
    }
}

@Suite(.serialized) struct LadonSplitCLITests {
    @Test func splitWritesADeviceFileThatEncodesTheSamePackets() throws {
        let model = LadonCLI.fixture(LadonCLITests.tinyModel), image = LadonCLI.fixture(LadonCLITests.image)
        let device = LadonCLI.temporary("device.safetensors")
        let s = try LadonCLI.run(["split", model, "--device", device])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(s.stdout.contains("encoder size:"))
        let (fromModel, fromDevice) = (LadonCLI.temporary("a.ldnp"), LadonCLI.temporary("b.ldnp"))
        #expect(try LadonCLI.run(["encode", image, "--model", model, "-o", fromModel]).status == 0)
        #expect(try LadonCLI.run(["encode", image, "--model", device, "-o", fromDevice]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: fromModel)) == Data(contentsOf: URL(fileURLWithPath: fromDevice)))
        // The server half needs the whole model and says so.
        let d = try LadonCLI.run(["decode", "--model", device, fromDevice])
        #expect(d.status != 0 && d.stderr.contains("device file"), "\(d.stderr)")
        // `ladon info` tells the two apart; `--version` answers.
        let info = try LadonCLI.run(["info", "--json", device])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        #expect(object["kind"] as? String == "device" && (object["heads"] as? [Any])?.isEmpty == true)
        #expect(((object["encoderSize"] as? [String: Any])?["totalBytes"] as? Int ?? 0) > 0)
        let text = try LadonCLI.run(["info", model])
        #expect(text.status == 0 && text.stdout.contains("full model") && text.stdout.contains("encoder size"), "\(text.stderr)")
        let version = try LadonCLI.run(["--version"])
        #expect(version.status == 0 && version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == LadonVersion.current)
    }

    @Test func encodeThenDecodeEqualsInfer() throws {
        let model = LadonCLI.fixture(LadonCLITests.tinyModel), image = LadonCLI.fixture(LadonCLITests.image)
        let packet = LadonCLI.temporary("image.ldnp")
        let e = try LadonCLI.run(["encode", image, "--model", model, "-o", packet])
        #expect(e.status == 0, "\(e.stderr)")
        let d = try LadonCLI.run(["decode", "--json", "--logits", "--model", model, packet])
        #expect(d.status == 0, "\(d.stderr)")
        let i = try LadonCLI.run(["infer", "--json", "--logits", "--model", model, image])
        let decoded = try #require(try JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as? [String: Any])
        let inferred = try #require(try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any])
        for key in ["compressedSha256", "image", "input", "latent", "segmentation"] {
            #expect((decoded[key] as? NSObject) == (inferred[key] as? NSObject), "\(key)")
        }
        #expect(((decoded["classification"] as? [String: Any])?["logits"] as? [Double]) ==
                ((inferred["classification"] as? [String: Any])?["logits"] as? [Double]))
        #expect((decoded["detection"] as? [Any])?.count == (inferred["detection"] as? [Any])?.count)
        // A damaged packet is refused with the reason.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: packet))
        bytes[bytes.count / 2] ^= 0x40
        let damaged = LadonCLI.temporary("damaged.ldnp")
        try bytes.write(to: URL(fileURLWithPath: damaged))
        let bad = try LadonCLI.run(["decode", "--model", model, damaged])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("checksum"))
    }
}

/// `ladon serve` as a process: SIGTERM during a request lets the request finish, then the process exits 0.
@Suite(.serialized) struct LadonServeProcessTests {
    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func append(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
        var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
    }

    /// The status and body of a request answered on another thread, once it is answered.
    final class Answer: @unchecked Sendable {
        private let lock = NSLock()
        private var answer: (Int, String)?
        func set(_ a: (Int, String)) { lock.lock(); answer = a; lock.unlock() }
        var value: (Int, String)? { lock.lock(); defer { lock.unlock() }; return answer }
    }

    @Test func sigtermDuringARequestFinishesItAndExitsZero() async throws {
        let model = try TinyModel.copy(size: 512)  // slow enough to interrupt one request
        let packetPath = LadonCLI.temporary("packet.ldnp")
        let enc = try LadonCLI.run(["encode", "--model", model, LadonCLI.fixture(LadonCLITests.image), "-o", packetPath])
        #expect(enc.status == 0, "\(enc.stderr)")
        let packet = try Data(contentsOf: URL(fileURLWithPath: packetPath))

        let process = Process()
        process.executableURL = LadonCLI.executable
        process.arguments = ["serve", "--model", model, "--port", "0", "--log-level", "info"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let log = Collected()
        err.fileHandleForReading.readabilityHandler = { log.append($0.availableData) }
        // The handler is a DispatchSource on the pipe: cancelled before the pipe's descriptor is closed.
        defer { err.fileHandleForReading.readabilityHandler = nil }
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var port: Int?
        for _ in 0..<600 where port == nil {
            try await Task.sleep(for: .milliseconds(50))
            if let r = log.text.range(of: #"http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(log.text[r].split(separator: ":").last!)
            }
        }
        let bound = try #require(port, "server did not start: \(log.text)")
        // Raw sockets, not URLSession: FoundationNetworking's session teardown can crash libdispatch on Linux
        // (RawHTTPConnection). The request blocks for seconds, so it runs on a thread of its own; its answer is
        // polled. SIGTERM only once a request is being computed: on a loaded machine a request can finish between two
        // polls of /metrics; then another one is sent.
        let request = RawHTTPConnection.post("/v1/infer", body: [UInt8](packet), contentType: "application/vnd.ladon.packet")
        var answer: Answer?
        for _ in 0..<10 {
            let attempt = Answer()
            Thread.detachNewThread {
                attempt.set((try? RawHTTPConnection.exchange(port: bound, request, timeoutSeconds: 120)) ?? (0, "no answer"))
            }
            var computing = false
            while !computing && attempt.value == nil {
                let metrics = try RawHTTPConnection.exchange(port: bound, RawHTTPConnection.get("/metrics"))
                computing = metrics.body.range(of: #"ladon_inflight_requests 1(\.0)?\b"#, options: .regularExpression) != nil
                if !computing { try await Task.sleep(for: .milliseconds(5)) }
            }
            if computing { answer = attempt; break }
            while attempt.value == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let inFlight = try #require(answer, "no request was ever seen computing")
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<2400 where inFlight.value == nil { try await Task.sleep(for: .milliseconds(50)) }
        let (status, body) = try #require(inFlight.value, "the request in flight got no answer")
        #expect(status == 200, "\(body)")
        for _ in 0..<600 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0, "\(log.text)")
        #expect(log.text.contains("shutting down"), "\(log.text)")
        #expect(log.text.contains("route=/v1/infer") && log.text.contains("status=200"), "access log: \(log.text)")
    }
}
