// Detections in the COCO results layout, made from the model's output as torchvision's references/detection does,
// and the standard results file (`[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]`).

import Foundation
import LadonCore

/// One detection in the COCO results layout.
public struct COCODetection: Sendable, Equatable {
    public var imageID: Int
    /// The COCO category id (the 91-id layout's label).
    public var categoryID: Int
    public var bbox: COCOBox
    public var score: Double

    public init(imageID: Int, categoryID: Int, bbox: COCOBox, score: Double) {
        self.imageID = imageID
        self.categoryID = categoryID
        self.bbox = bbox
        self.score = score
    }

    /// The model detection as torchvision's `prepare_for_coco_detection` writes it, or nil when its label is the
    /// background, one of the 10 "N/A" ids of the 91-id layout, or outside it.
    ///
    /// `convert_to_xywh` subtracts in float32 (`w = x2 − x1` rounded to a float), and `.tolist()` widens each float
    /// to a double, so the box and score are the doubles of those floats.
    public init?(imageID: Int, detection: Detection) {
        guard Self.evaluatedLabels.contains(detection.label) else { return nil }
        let box = detection.box
        let width: Float = box.x2 - box.x1
        let height: Float = box.y2 - box.y1
        self.init(imageID: imageID, categoryID: detection.label,
                  bbox: COCOBox(x: Double(box.x1), y: Double(box.y1), width: Double(width), height: Double(height)),
                  score: Double(detection.score))
    }

    /// The detections of one image, in model order, without the background and the "N/A" ids.
    public static func results(imageID: Int, detections: [Detection]) -> [COCODetection] {
        detections.compactMap { COCODetection(imageID: imageID, detection: $0) }
    }

    /// The labels of the 91-id layout that are COCO categories: not the background (0), not "N/A".
    public static let evaluatedLabels: Set<Int> = Set(
        LadonLabels.coco.indices.filter { $0 != 0 && LadonLabels.coco[$0] != "N/A" })
}

/// The standard COCO results file, which pycocotools' `COCO.loadRes` reads.
///
/// Numbers are written as the shortest text that reads back as the same double (Swift's `description`, like Python's
/// `repr`), so Python and Swift evaluate identical values. Non-finite values are written as Python's `json` writes
/// them (`NaN`, `Infinity`), and read back; the evaluator refuses them.
public enum COCOResultsFile {
    /// The JSON text: one detection per line.
    public static func encode(_ detections: [COCODetection]) -> String {
        var text = "["
        text.reserveCapacity(detections.count * 96 + 4)
        for (n, d) in detections.enumerated() {
            text += n == 0 ? "\n" : ",\n"
            text += "{\"image_id\": \(d.imageID), \"category_id\": \(d.categoryID), \"bbox\": ["
            text += "\(number(d.bbox.x)), \(number(d.bbox.y)), \(number(d.bbox.width)), \(number(d.bbox.height))"
            text += "], \"score\": \(number(d.score))}"
        }
        text += detections.isEmpty ? "]\n" : "\n]\n"
        return text
    }

    /// Writes the results file.
    public static func write(_ detections: [COCODetection], to url: URL) throws(EvalError) {
        do {
            try Data(encode(detections).utf8).write(to: url, options: .atomic)
        } catch {
            throw .io("cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    /// Parses a results list. Members other than the four are skipped (`loadRes` overwrites `id` and `area`).
    public static func decode(json: [UInt8]) throws(EvalError) -> [COCODetection] {
        var scanner = JSONScanner(json)
        var detections: [COCODetection] = []
        try scanner.elements(at: "results") { scanner, index throws(EvalError) in
            let path = "results[\(index)]"
            var imageID: Int?, categoryID: Int?, bbox: COCOBox?, score: Double?
            try scanner.members(at: path) { scanner, key throws(EvalError) in
                switch key {
                case "image_id": imageID = try scanner.integer(at: "\(path).image_id")
                case "category_id": categoryID = try scanner.integer(at: "\(path).category_id")
                case "bbox": bbox = try scanner.box(at: "\(path).bbox")
                case "score": score = try scanner.number(at: "\(path).score")
                default: try scanner.skipValue()
                }
            }
            detections.append(COCODetection(
                imageID: try JSONScanner.required(imageID, "\(path).image_id"),
                categoryID: try JSONScanner.required(categoryID, "\(path).category_id"),
                bbox: try JSONScanner.required(bbox, "\(path).bbox"),
                score: try JSONScanner.required(score, "\(path).score")))
        }
        try scanner.expectEnd()
        return detections
    }

    /// Reads a results file.
    public static func read(contentsOf url: URL) throws(EvalError) -> [COCODetection] {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        return try decode(json: [UInt8](data))
    }

    private static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        return value.description
    }
}
