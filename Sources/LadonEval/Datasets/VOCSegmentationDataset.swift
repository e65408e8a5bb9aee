// The PASCAL VOC 2012 segmentation layout (`VOCdevkit/VOC2012`), as torchvision's `VOCSegmentation` reads it.
import Foundation

/// `ROOT/ImageSets/Segmentation/SPLIT.txt` lists image ids; each id has `JPEGImages/ID.jpg` and the palette mask
/// `SegmentationClass/ID.png` (class id = palette index, 255 = the "difficult" border, ignored).
public struct VOCSegmentationDataset: Sendable {
    public let root: String
    public let split: String
    /// Image ids in list order.
    public let ids: [String]

    public init(root: String, split: String = "val") throws(EvalError) {
        self.root = root
        self.split = split
        let list = (root as NSString).appendingPathComponent("ImageSets/Segmentation/\(split).txt")
        guard let text = try? String(contentsOfFile: list, encoding: .utf8) else {
            throw .badDataset("cannot read \(list); pass --root VOCdevkit/VOC2012 (the folder holding ImageSets, "
                + "JPEGImages and SegmentationClass) and a split that exists (train, val, trainval)")
        }
        ids = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !ids.isEmpty else { throw .badDataset("\(list) lists no images") }
        if let bad = ids.first(where: { $0.contains("/") || $0.hasPrefix(".") }) {
            throw .badDataset("\(list) has an id that is not a plain file stem: \(bad)")
        }
    }

    public func imagePath(_ id: String) -> String { (root as NSString).appendingPathComponent("JPEGImages/\(id).jpg") }
    public func maskPath(_ id: String) -> String { (root as NSString).appendingPathComponent("SegmentationClass/\(id).png") }
}
