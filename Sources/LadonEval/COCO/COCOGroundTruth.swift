// The COCO instances file (instances_val2017.json layout): images, box annotations and categories.

import Foundation

/// A box as COCO writes it: top-left corner, width and height, in pixels.
public struct COCOBox: Sendable, Equatable, Hashable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double

    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

/// An entry of the `images` list.
public struct COCOImage: Sendable, Equatable {
    public var id: Int
    /// The file's name inside the images folder, e.g. `000000000139.jpg`.
    public var fileName: String
    public var width: Int
    public var height: Int

    public init(id: Int, fileName: String, width: Int, height: Int) {
        self.id = id
        self.fileName = fileName
        self.width = width
        self.height = height
    }
}

/// An entry of the `categories` list.
public struct COCOCategory: Sendable, Equatable {
    public var id: Int
    public var name: String

    public init(id: Int, name: String) {
        self.id = id
        self.name = name
    }
}

/// An entry of the `annotations` list, reduced to what box evaluation reads.
///
/// The segmentation is not kept. An `ignore` field is accepted and dropped: pycocotools overwrites it with `iscrowd`.
public struct COCOAnnotation: Sendable, Equatable {
    public var id: Int
    public var imageID: Int
    public var categoryID: Int
    public var bbox: COCOBox
    /// The `area` field (the segmentation's area), which decides the small/medium/large range; not `w·h`.
    public var area: Double
    /// `iscrowd`: the region holds many objects; detections on it are neither rewarded nor penalised.
    public var isCrowd: Bool

    public init(id: Int, imageID: Int, categoryID: Int, bbox: COCOBox, area: Double, isCrowd: Bool) {
        self.id = id
        self.imageID = imageID
        self.categoryID = categoryID
        self.bbox = bbox
        self.area = area
        self.isCrowd = isCrowd
    }
}

/// The ground truth of a COCO detection dataset.
///
/// Loading validates what pycocotools would otherwise trip over later, or silently misread: every required field is
/// present with the right type, ids are unique, and every annotation names a listed image and category.
public struct COCOGroundTruth: Sendable {
    /// The images in file order.
    public let images: [COCOImage]
    /// The categories in file order.
    public let categories: [COCOCategory]
    /// The annotations in file order (the order pycocotools keeps within an image and category).
    public let annotations: [COCOAnnotation]
    private let imageIndex: [Int: Int]

    /// Validates and holds the three lists.
    public init(images: [COCOImage], categories: [COCOCategory], annotations: [COCOAnnotation]) throws(EvalError) {
        var imageIndex: [Int: Int] = [:]
        for (n, image) in images.enumerated() {
            guard imageIndex.updateValue(n, forKey: image.id) == nil else {
                throw .invalidField(path: "images[\(n)].id", reason: "duplicate image id \(image.id)")
            }
        }
        var categoryIDs = Set<Int>()
        for (n, category) in categories.enumerated() where !categoryIDs.insert(category.id).inserted {
            throw .invalidField(path: "categories[\(n)].id", reason: "duplicate category id \(category.id)")
        }
        var annotationIDs = Set<Int>()
        for (n, annotation) in annotations.enumerated() {
            guard annotationIDs.insert(annotation.id).inserted else {
                throw .invalidField(path: "annotations[\(n)].id", reason: "duplicate annotation id \(annotation.id)")
            }
            guard imageIndex[annotation.imageID] != nil else {
                throw .invalidField(path: "annotations[\(n)].image_id",
                                    reason: "image id \(annotation.imageID) is not in the images list")
            }
            guard categoryIDs.contains(annotation.categoryID) else {
                throw .invalidField(path: "annotations[\(n)].category_id",
                                    reason: "category id \(annotation.categoryID) is not in the categories list")
            }
            let b = annotation.bbox
            guard [b.x, b.y, b.width, b.height, annotation.area].allSatisfy(\.isFinite) else {
                throw .invalidField(path: "annotations[\(n)]", reason: "bbox and area must be finite")
            }
        }
        self.images = images
        self.categories = categories
        self.annotations = annotations
        self.imageIndex = imageIndex
    }

    /// Loads an instances JSON file.
    public init(contentsOf url: URL) throws(EvalError) {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        try self.init(json: [UInt8](data))
    }

    /// Parses an instances JSON document.
    public init(json: [UInt8]) throws(EvalError) {
        var scanner = JSONScanner(json)
        var images: [COCOImage]?, categories: [COCOCategory]?, annotations: [COCOAnnotation]?
        guard try scanner.peek() == UInt8(ascii: "{") else {
            throw .invalidField(path: "(top level)", reason: "expected an object, found \(try scanner.nextKind())")
        }
        try scanner.readObject { scanner, key throws(EvalError) in
            switch key {
            case "images": images = try Self.readList(&scanner, "images", Self.readImage)
            case "categories": categories = try Self.readList(&scanner, "categories", Self.readCategory)
            case "annotations": annotations = try Self.readList(&scanner, "annotations", Self.readAnnotation)
            default: try scanner.skipValue()
            }
        }
        try scanner.expectEnd()
        guard let images else { throw .invalidField(path: "images", reason: "missing") }
        guard let categories else { throw .invalidField(path: "categories", reason: "missing") }
        guard let annotations else { throw .invalidField(path: "annotations", reason: "missing") }
        try self.init(images: images, categories: categories, annotations: annotations)
    }

    /// The image with this id, if listed.
    public func image(id: Int) -> COCOImage? {
        imageIndex[id].map { images[$0] }
    }

    /// Whether the images list has this id.
    public func containsImage(id: Int) -> Bool {
        imageIndex[id] != nil
    }

    /// The image ids, sorted (pycocotools' default `params.imgIds`).
    public var imageIDs: [Int] { images.map(\.id).sorted() }

    /// The category ids, sorted (pycocotools' `params.catIds`, including categories without annotations).
    public var categoryIDs: [Int] { categories.map(\.id).sorted() }

    // MARK: Reading

    private static func readList<Element>(
        _ scanner: inout JSONScanner, _ name: String,
        _ readElement: (inout JSONScanner, String) throws(EvalError) -> Element
    ) throws(EvalError) -> [Element] {
        var list: [Element] = []
        try scanner.elements(at: name) { scanner, index throws(EvalError) in
            list.append(try readElement(&scanner, "\(name)[\(index)]"))
        }
        return list
    }

    private static func readImage(_ scanner: inout JSONScanner, _ path: String) throws(EvalError) -> COCOImage {
        var id: Int?, fileName: String?, width: Int?, height: Int?
        try scanner.members(at: path) { scanner, key throws(EvalError) in
            switch key {
            case "id": id = try scanner.integer(at: "\(path).id")
            case "file_name": fileName = try scanner.string(at: "\(path).file_name")
            case "width": width = try scanner.integer(at: "\(path).width")
            case "height": height = try scanner.integer(at: "\(path).height")
            default: try scanner.skipValue()
            }
        }
        return COCOImage(id: try JSONScanner.required(id, "\(path).id"),
                         fileName: try JSONScanner.required(fileName, "\(path).file_name"),
                         width: try JSONScanner.required(width, "\(path).width"),
                         height: try JSONScanner.required(height, "\(path).height"))
    }

    private static func readCategory(_ scanner: inout JSONScanner, _ path: String) throws(EvalError) -> COCOCategory {
        var id: Int?, name: String?
        try scanner.members(at: path) { scanner, key throws(EvalError) in
            switch key {
            case "id": id = try scanner.integer(at: "\(path).id")
            case "name": name = try scanner.string(at: "\(path).name")
            default: try scanner.skipValue()
            }
        }
        return COCOCategory(id: try JSONScanner.required(id, "\(path).id"),
                            name: try JSONScanner.required(name, "\(path).name"))
    }

    private static func readAnnotation(_ scanner: inout JSONScanner,
                                       _ path: String) throws(EvalError) -> COCOAnnotation {
        var id: Int?, imageID: Int?, categoryID: Int?, bbox: COCOBox?, area: Double?, isCrowd: Bool?
        try scanner.members(at: path) { scanner, key throws(EvalError) in
            switch key {
            case "id": id = try scanner.integer(at: "\(path).id")
            case "image_id": imageID = try scanner.integer(at: "\(path).image_id")
            case "category_id": categoryID = try scanner.integer(at: "\(path).category_id")
            case "bbox": bbox = try scanner.box(at: "\(path).bbox")
            case "area": area = try scanner.number(at: "\(path).area")
            case "iscrowd": isCrowd = try crowdFlag(&scanner, "\(path).iscrowd")
            default: try scanner.skipValue()
            }
        }
        return COCOAnnotation(
            id: try JSONScanner.required(id, "\(path).id"),
            imageID: try JSONScanner.required(imageID, "\(path).image_id"),
            categoryID: try JSONScanner.required(categoryID, "\(path).category_id"),
            bbox: try JSONScanner.required(bbox, "\(path).bbox"),
            area: try JSONScanner.required(area, "\(path).area"),
            isCrowd: try JSONScanner.required(isCrowd, "\(path).iscrowd"))
    }

    /// `iscrowd` is 0 or 1 (or a boolean); pycocotools casts it to uint8, so other integers would wrap.
    private static func crowdFlag(_ scanner: inout JSONScanner, _ path: String) throws(EvalError) -> Bool {
        let next = try scanner.peek()
        if next == UInt8(ascii: "t") || next == UInt8(ascii: "f") { return try scanner.readBool() }
        let value = try scanner.integer(at: path)
        guard value == 0 || value == 1 else {
            throw .invalidField(path: path, reason: "expected 0 or 1, found \(value)")
        }
        return value == 1
    }
}
