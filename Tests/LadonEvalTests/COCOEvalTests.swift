// The Swift COCO evaluator against pycocotools on the same detections (Fixtures/coco, made by
// Scripts/eval/make_coco_fixtures.py), the torchvision conversion of model detections, the results file and the
// refusal of malformed annotation files.

import Foundation
import LadonCore
import Testing
@testable import LadonEval

@Suite("COCOEval")
struct COCOEvalTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("coco")

    static let groundTruth: COCOGroundTruth = {
        try! COCOGroundTruth(contentsOf: fixtures.appendingPathComponent("instances.json"))
    }()

    /// The same dataset with annotation ids counted from 0 (a match to id 0 counts as unmatched in pycocotools).
    static let groundTruthWithIDZero: COCOGroundTruth = {
        try! COCOGroundTruth(contentsOf: fixtures.appendingPathComponent("instances_id0.json"))
    }()

    static let reference: FixtureJSON = {
        let bytes = [UInt8](try! Data(contentsOf: fixtures.appendingPathComponent("reference.json")))
        var scanner = JSONScanner(bytes)
        return try! FixtureJSON.parse(&scanner)
    }()

    static let setNames = ["random", "tiedScores", "adversarial", "imageSubset", "perfect", "model", "annotationIdZero"]

    static func referenceSet(_ name: String) -> FixtureJSON {
        reference["sets"].array.first { $0["name"].string == name }!
    }

    static func detections(_ set: FixtureJSON) -> [COCODetection] {
        set["detections"].array.map { row in
            let v = row.array.map(\.number)
            return COCODetection(imageID: Int(v[0]), categoryID: Int(v[1]),
                                 bbox: COCOBox(x: v[2], y: v[3], width: v[4], height: v[5]), score: v[6])
        }
    }

    // MARK: Parity with pycocotools

    @Test("12 summary numbers equal pycocotools", arguments: setNames)
    func statsMatchPycocotools(_ name: String) throws {
        let set = Self.referenceSet(name)
        let imageIDs = set["imageIds"].isNull ? nil : set["imageIds"].array.map { Int($0.number) }
        let groundTruth = set["groundTruth"].string == "instances_id0.json"
            ? Self.groundTruthWithIDZero : Self.groundTruth
        let evaluation = try COCOEvaluator(groundTruth: groundTruth).evaluate(Self.detections(set), imageIDs: imageIDs)
        let expected = set["stats"].array.map(\.number)
        let stats = evaluation.stats
        #expect(stats.count == 12)
        for (index, (swift, python)) in zip(stats, expected).enumerated() {
            #expect(abs(swift - python) <= 1e-6, "\(name) \(EvalTask.coco.metricNames[index]): \(swift) vs \(python)")
        }
        // Where a summary number differs, these locate it: the IoU threshold, then the category.
        for (t, python) in set["precisionPerIoU"].array.map(\.number).enumerated() {
            #expect(abs(evaluation.meanPrecision(ious: [t]) - python) <= 1e-6, "\(name) precision at IoU index \(t)")
        }
        for (k, python) in set["apPerCategory"].array.map(\.number).enumerated() {
            #expect(abs(evaluation.meanPrecision(categories: [k]) - python) <= 1e-6,
                    "\(name) AP of category \(evaluation.categoryIDs[k])")
        }
        for (k, python) in set["arPerCategory"].array.map(\.number).enumerated() {
            #expect(abs(evaluation.meanRecall(categories: [k]) - python) <= 1e-6,
                    "\(name) AR of category \(evaluation.categoryIDs[k])")
        }
        #expect(evaluation.summary == set["summary"].string)
        #expect(evaluation.metrics["AP"] == stats[0] && evaluation.metrics["ARl"] == stats[11])
    }

    @Test("the fixture covers the cases that decide the numbers")
    func fixtureCoversEdgeCases() throws {
        let gt = Self.groundTruth
        let annotated = Set(gt.annotations.map(\.categoryID))
        #expect(gt.annotations.contains { $0.isCrowd })
        #expect(gt.categories.contains { !annotated.contains($0.id) })
        #expect(gt.images.contains { image in !gt.annotations.contains { $0.imageID == image.id } })
        #expect(gt.annotations.contains { $0.area == 32 * 32 } && gt.annotations.contains { $0.area == 96 * 96 })
        #expect(gt.annotations.contains { $0.bbox.width * $0.bbox.height == 0 })

        let adversarial = Self.detections(Self.referenceSet("adversarial"))
        let perCell = Dictionary(grouping: adversarial) { [$0.imageID, $0.categoryID] }
        #expect(perCell.values.contains { $0.count > 100 })
        #expect(adversarial.contains { !COCODetection.evaluatedLabels.contains($0.categoryID) })
        #expect(adversarial.contains { d in !gt.categories.contains { $0.id == d.categoryID } })
        #expect(adversarial.contains { $0.bbox.width * $0.bbox.height == 32 * 32 })
        #expect(adversarial.contains { $0.bbox.width * $0.bbox.height == 96 * 96 })
        #expect(adversarial.contains { $0.bbox.width * $0.bbox.height == 0 })
        #expect(Set(adversarial.map(\.score)).count < adversarial.count)
    }

    // MARK: Model detections to COCO results

    @Test("model detections convert as torchvision's prepare_for_coco_detection, without the N/A ids")
    func modelDetectionsConvertAsTorchvision() throws {
        var converted: [COCODetection] = []
        for output in Self.reference["modelOutputs"].array {
            let boxes = output["boxes"].array.map { $0.array.map { Float($0.number) } }
            let labels = output["labels"].array.map { Int($0.number) }
            let scores = output["scores"].array.map { Float($0.number) }
            let detections = boxes.indices.map {
                Detection(box: Box(x1: boxes[$0][0], y1: boxes[$0][1], x2: boxes[$0][2], y2: boxes[$0][3]),
                          score: scores[$0], label: labels[$0])
            }
            converted += COCODetection.results(imageID: Int(output["imageId"].number), detections: detections)
        }
        #expect(converted == Self.detections(Self.referenceSet("model")))
    }

    @Test("the background, the 10 N/A ids and labels outside the 91-id layout are dropped")
    func notApplicableLabelsAreDropped() {
        #expect(COCODetection.evaluatedLabels.count == 80)
        let box = Box(x1: 1, y1: 2, x2: 4.5, y2: 10)
        for label in [0, 12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91, -1] {
            #expect(COCODetection(imageID: 1, detection: Detection(box: box, score: 0.5, label: label)) == nil)
        }
        let person = COCODetection(imageID: 7, detection: Detection(box: box, score: 0.1, label: 1))
        #expect(person == COCODetection(imageID: 7, categoryID: 1, bbox: COCOBox(x: 1, y: 2, width: 3.5, height: 8),
                                        score: Double(Float(0.1))))
    }

    // MARK: Results file

    @Test("the results file reads back the identical doubles")
    func resultsFileRoundTrip() throws {
        var detections = Self.detections(Self.referenceSet("adversarial"))
            + Self.detections(Self.referenceSet("model"))
        detections.append(COCODetection(imageID: 139, categoryID: 1,
                                        bbox: COCOBox(x: 0.1 + 0.2, y: .leastNonzeroMagnitude, width: 1e16, height: -0.0),
                                        score: Double(Float(0.3))))
        let text = COCOResultsFile.encode(detections)
        let decoded = try COCOResultsFile.decode(json: Array(text.utf8))
        #expect(decoded.count == detections.count)
        for (read, written) in zip(decoded, detections) {
            #expect(read == written)
            #expect(read.bbox.height.sign == written.bbox.height.sign)
        }
        #expect(text.contains("\"bbox\": [0.30000000000000004, 5e-324, 1e+16, -0.0], \"score\": 0.30000001192092896}"))

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-coco-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try COCOResultsFile.write(detections, to: url)
        #expect(try COCOResultsFile.read(contentsOf: url) == detections)
        #expect(try COCOResultsFile.decode(json: Array("[]".utf8)).isEmpty)
    }

    @Test("results with missing or mistyped fields are refused with the field's path")
    func malformedResultsAreRefused() {
        let cases: [(String, String)] = [
            (#"[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 0.5}]"#, "results[0].bbox"),
            (#"[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}]"#, "results[0].score"),
            (#"[{"image_id": "1", "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]"#, "results[0].image_id"),
            (#"{"image_id": 1}"#, "results"),
        ]
        for (json, path) in cases {
            let refused = fieldError { () throws(EvalError) in _ = try COCOResultsFile.decode(json: Array(json.utf8)) }
            #expect(refused == path, "\(json)")
        }
    }

    // MARK: Ground truth

    @Test("the instances file loads images, categories and box annotations")
    func groundTruthLoads() {
        let gt = Self.groundTruth
        #expect(gt.images.count == 7 && gt.categories.count == 12)
        #expect(gt.image(id: 785) == COCOImage(id: 785, fileName: "rocket.jpg", width: 200, height: 133))
        #expect(gt.imageIDs == [139, 285, 632, 724, 776, 785, 802])
        #expect(gt.categoryIDs.first == 1 && gt.categoryIDs.last == 84)
        #expect(gt.annotations[0] == COCOAnnotation(id: 1, imageID: 139, categoryID: 17,
                                                    bbox: COCOBox(x: 20, y: 5, width: 125, height: 100),
                                                    area: 10311.5, isCrowd: false))
        #expect(gt.annotations.allSatisfy { gt.containsImage(id: $0.imageID) })
    }

    @Test("malformed instances files are refused, naming what is wrong")
    func malformedGroundTruthIsRefused() {
        let image = #"{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}"#
        let category = #"{"id": 1, "name": "person"}"#
        func dataset(images: String = image, annotation: String, categories: String = category) -> String {
            #"{"images": [\#(images)], "annotations": [\#(annotation)], "categories": [\#(categories)]}"#
        }
        let good = #"{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4, "iscrowd": 0}"#
        let accepted = fieldError { () throws(EvalError) in
            _ = try COCOGroundTruth(json: Array(dataset(annotation: good).utf8))
        }
        #expect(accepted == nil)

        let cases: [(String, String)] = [
            (#"{"images": [], "annotations": []}"#, "categories"),
            (#"[]"#, "(top level)"),
            (#"{"images": {}, "annotations": [], "categories": []}"#, "images"),
            (dataset(annotation: good.replacingOccurrences(of: "[0, 0, 2, 2]", with: "[0, 0, 2]")),
             "annotations[0].bbox"),
            (dataset(annotation: good.replacingOccurrences(of: "[0, 0, 2, 2]", with: "[0, 0, \"2\", 2]")),
             "annotations[0].bbox[2]"),
            (dataset(annotation: good.replacingOccurrences(of: #""iscrowd": 0"#, with: #""iscrowd": 2"#)),
             "annotations[0].iscrowd"),
            (dataset(annotation: good.replacingOccurrences(of: #", "iscrowd": 0"#, with: "")),
             "annotations[0].iscrowd"),
            (dataset(annotation: good.replacingOccurrences(of: #""area": 4"#, with: #""area": null"#)),
             "annotations[0].area"),
            (dataset(annotation: good.replacingOccurrences(of: #""id": 5"#, with: #""id": 5.5"#)),
             "annotations[0].id"),
            (dataset(annotation: good.replacingOccurrences(of: #""image_id": 1"#, with: #""image_id": 2"#)),
             "annotations[0].image_id"),
            (dataset(annotation: good.replacingOccurrences(of: #""category_id": 1"#, with: #""category_id": 3"#)),
             "annotations[0].category_id"),
            (dataset(annotation: good + ", " + good), "annotations[1].id"),
            (dataset(images: image + ", " + image, annotation: good), "images[1].id"),
            (dataset(images: #"{"id": 1, "width": 10, "height": 10}"#, annotation: good), "images[0].file_name"),
        ]
        for (json, path) in cases {
            let refused = fieldError { () throws(EvalError) in _ = try COCOGroundTruth(json: Array(json.utf8)) }
            #expect(refused == path, "\(json)")
        }

        for json in [#"{"images": [{"id": 1,}]}"#, #"{"images": [], "annotations": [], "categories": []} x"#, "",
                     #"{"images": [], "x": 01}"#, #"{"info": "\u00"}"#] {
            do {
                _ = try COCOGroundTruth(json: Array(json.utf8))
                Issue.record("accepted \(json)")
            } catch {
                guard case .invalidJSON(let line, let column, _) = error else {
                    Issue.record("\(json): \(error)")
                    continue
                }
                #expect(line == 1 && column >= 1)
            }
        }
        let missing = URL(fileURLWithPath: "/nonexistent/instances.json")
        #expect(throws: EvalError.self) { _ = try COCOGroundTruth(contentsOf: missing) }
    }

    // MARK: Evaluation requests

    @Test("detections and image lists naming unknown images, and non-finite detections, are refused")
    func invalidRequestsAreRefused() throws {
        let evaluator = COCOEvaluator(groundTruth: Self.groundTruth)
        let box = COCOBox(x: 1, y: 1, width: 10, height: 10)
        #expect(throws: EvalError.unknownImage(id: 1, context: "detection 1")) {
            _ = try evaluator.evaluate([COCODetection(imageID: 139, categoryID: 17, bbox: box, score: 0.5),
                                        COCODetection(imageID: 1, categoryID: 17, bbox: box, score: 0.5)])
        }
        #expect(throws: EvalError.unknownImage(id: 2, context: "the evaluated image list")) {
            _ = try evaluator.evaluate([], imageIDs: [139, 2])
        }
        #expect(throws: EvalError.invalidDetection(index: 0, reason: "box and score must be finite")) {
            _ = try evaluator.evaluate([COCODetection(imageID: 139, categoryID: 17, bbox: box, score: .nan)])
        }
        // No detections at all: every category with GT scores 0, those without stay out of the means.
        let empty = try evaluator.evaluate([])
        #expect(empty.stats == Array(repeating: 0, count: 12))
        #expect(try evaluator.evaluate([], imageIDs: [785]).stats == Array(repeating: -1, count: 12))
    }

    @Test("numpy's linspace and pairwise mean")
    func numpyArithmetic() {
        #expect(COCOEvalParameters.iouThresholds[8] == 0.8999999999999999)
        #expect(COCOEvalParameters.iouThresholds[5] == 0.75 && COCOEvalParameters.iouThresholds.last == 0.95)
        #expect(COCOEvalParameters.recallThresholds[7] == 0.07 && COCOEvalParameters.recallThresholds.count == 101)
        // np.mean([0.1] * 1000) is 0.10000000000000002 with the pairwise sum; a running sum gives 0.09999999999999859.
        #expect(COCOEvaluation.numpyMean(Array(repeating: 0.1, count: 1000)) == 0.10000000000000002)
        // Past 8192 elements numpy adds chunk sums: np.mean of ((i·7919) % 1000) / 1000 for i < 80800 (the size of
        // AP's selection with 80 categories) is 0.49949752475247533; one pairwise sum gives 0.4994975247524753.
        let values = (0..<80800).map { Double($0 * 7919 % 1000) / 1000 }
        #expect(COCOEvaluation.numpyMean(values) == 0.49949752475247533)
    }
}

/// The path of the `invalidField` error `body` throws; nil when it does not throw; "(other)" for any other error.
private func fieldError(_ body: () throws(EvalError) -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        if case .invalidField(let path, _) = error { return path }
        return "(other: \(error))"
    }
}

/// A JSON value of the reference fixture, read with the library's scanner so that numbers are the exact doubles.
enum FixtureJSON {
    case number(Double), string(String), bool(Bool), null
    indirect case array([FixtureJSON])
    indirect case object([String: FixtureJSON])

    static func parse(_ scanner: inout JSONScanner) throws(EvalError) -> FixtureJSON {
        switch try scanner.peek() {
        case UInt8(ascii: "{"):
            var members: [String: FixtureJSON] = [:]
            try scanner.readObject { scanner, key throws(EvalError) in members[key] = try parse(&scanner) }
            return .object(members)
        case UInt8(ascii: "["):
            var elements: [FixtureJSON] = []
            try scanner.readArray { scanner, _ throws(EvalError) in elements.append(try parse(&scanner)) }
            return .array(elements)
        case UInt8(ascii: "\""): return .string(try scanner.readString())
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool(try scanner.readBool())
        case UInt8(ascii: "n"):
            try scanner.skipValue()
            return .null
        default: return .number(try scanner.readDouble())
        }
    }

    subscript(key: String) -> FixtureJSON {
        if case .object(let members) = self { return members[key] ?? .null }
        return .null
    }

    var array: [FixtureJSON] {
        if case .array(let elements) = self { return elements }
        return []
    }

    var number: Double {
        if case .number(let value) = self { return value }
        return .nan
    }

    var string: String {
        if case .string(let value) = self { return value }
        return ""
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
