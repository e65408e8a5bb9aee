// LadonError carries values a caller can switch on, and its description still names what was wrong.
import Foundation
import Testing
import LadonTestSupport
import LadonCore

@Suite struct LadonErrorTests {
    /// The LadonError `body` throws, or nil.
    static func error(_ body: () throws -> Void) -> LadonError? {
        do { try body(); return nil } catch { return error as? LadonError }
    }

    @Test func weightsErrorsCarryTheFileAndTheReason() {
        let short = Self.error { _ = try SafeTensorsFile(data: Data([1, 0, 0]), source: "short.safetensors") }
        switch short {
        case .weights(let file, .tooShort(let bytes))?:
            #expect(file == "short.safetensors" && bytes == 3)
        default: Issue.record("expected .weights(_, .tooShort), got \(String(describing: short))")
        }
        #expect(short?.description == "weights: short.safetensors is 3 bytes, too short for a safetensors header (need at least 8)")

        let missing = Self.error { _ = try SafeTensorsFile(path: "/nonexistent/ladon/w.safetensors") }
        guard case .weights("/nonexistent/ladon/w.safetensors", .unreadable)? = missing else {
            Issue.record("expected .weights(_, .unreadable), got \(String(describing: missing))"); return
        }
    }

    @Test func configErrorsNameTheFieldAndTheSource() {
        var config = LadonModelConfig.resnet50
        config.bottleneckChannels = 0
        let field = Self.error { try config.validate() }
        guard case .config(.invalidValue(let model, let name, let requirement))? = field else {
            Issue.record("expected .config(.invalidValue), got \(String(describing: field))"); return
        }
        #expect(model == config.architecture && name == "bottleneckChannels" && requirement.hasPrefix("must be in 1 ..."))
        #expect(field?.description.hasPrefix("config: \(config.architecture): bottleneckChannels must be in 1 ...") == true)

        let json = Self.error { _ = try LadonModelConfig.decode(json: Data("[1]".utf8), source: "x.json") }
        guard case .config(.notAConfig(source: "x.json", _))? = json else {
            Issue.record("expected .config(.notAConfig), got \(String(describing: json))"); return
        }
    }

    @Test func entropyAndInputErrorsCarryTheirValues() throws {
        let tables = try EntropyTables(offsets: [0], cdfLengths: [3], cdfs: [[0, 32768, 65536]])
        switch Self.error({ _ = try RANSDecoderReference(tables: tables).decode([1, 2, 3], indexes: [0]) }) {
        case .entropy(.invalidStreamLength(bytes: 3))?: break
        case let other: Issue.record("expected .entropy(.invalidStreamLength(3)), got \(String(describing: other))")
        }
        switch Self.error({ _ = try RANSEncoderReference(tables: tables).encode([0], indexes: [4]) }) {
        case .entropy(.indexOutOfRange(index: 4, symbol: 0, channels: 1))?: break
        case let other: Issue.record("expected .entropy(.indexOutOfRange), got \(String(describing: other))")
        }
        let rgb = Self.error { _ = try Tensor(rgb8: [0, 0], width: 1, height: 1) }
        #expect(rgb == .invalidInput(.rgbByteCount(width: 1, height: 1, expected: 3, actual: 2)))
        #expect(rgb?.description == "input: expected 1x1x3 = 3 RGB bytes, got 2")
    }

    @Test func configEnumsKeepTheirJSONNamesAndRefuseUnknownOnes() throws {
        // A weights file and a config file written before these fields were enums load unchanged.
        let file = try SafeTensorsFile(path: Fixtures.url("model/tiny_model.safetensors").path)
        let model = try LadonModelFile(file: file)
        #expect(model.config.preprocessing.resizeRule == .torchvision013)
        let url = TinyModel.repository.appendingPathComponent("Configs/ladon-resnet50.json")
        let config = try LadonModelConfig.load(path: url.path)
        #expect(config.detection?.roiLevels == [.p2, .p3, .p4])
        let json = config.jsonString()
        #expect(json.contains(#""resizeRule":"torchvision-0.13-float32""#) && json.contains(#""roiLevels":["0","1","2"]"#))

        let original = try String(contentsOf: url, encoding: .utf8)
        let badRule = original.replacingOccurrences(of: "torchvision-0.13-float32", with: "bicubic")
        guard case .config(.notAConfig(source: "bad.json", let rule))? = Self.error({ _ = try LadonModelConfig.decode(json: Data(badRule.utf8), source: "bad.json") }) else {
            Issue.record("an unknown resize rule was accepted"); return
        }
        #expect(rule == "preprocessing.resizeRule: 'bicubic' is not one of torchvision-0.13-float32, torchvision-0.15-double")
        let badLevel = original.replacingOccurrences(of: #"["0", "1", "2"]"#, with: #"["0", "1", "P4"]"#)
        guard case .config(.notAConfig(_, let level))? = Self.error({ _ = try LadonModelConfig.decode(json: Data(badLevel.utf8)) }) else {
            Issue.record("an unknown FPN level was accepted"); return
        }
        #expect(level.hasPrefix("detection.roiLevels[2]: 'P4' is not an FPN output name"), "\(level)")
    }
}
