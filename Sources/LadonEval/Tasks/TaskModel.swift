// Runs an evaluation image through both halves of the model, computing only the head its task needs.
import LadonCore
import LadonImage

/// The model as an evaluation uses it: the device half encodes (so the data size is the real entropy-coded
/// string), the server half decodes, then one head runs.
public struct TaskModel: Sendable {
    public let model: LadonModel
    /// The bilinear pass order of the emulated Pillow (ImageNet and VOC preprocessing).
    public var passOrder: PILPassOrder

    public init(_ model: LadonModel, passOrder: PILPassOrder = SC2Preprocessing.publishedPassOrder) {
        self.model = model
        self.passOrder = passOrder
    }

    /// Device half: preprocessing, encoder and entropy coding.
    public func encode(_ image: RGBImage) throws(LadonError) -> EncodedImage {
        try model.device.encode(rgb: image.pixels, width: image.width, height: image.height)
    }

    /// Server half up to the shared features: checks, entropy decoding, decoder and body.
    public func features(_ e: EncodedImage) throws(LadonError) -> SharedFeatures {
        try model.server.check(e)
        return model.server.features(try model.server.decompress(e.bytes, height: e.latentHeight, width: e.latentWidth))
    }

    /// Fills the SC2 fields of a record from an encoded image.
    static func recordSizes(_ r: inout SampleRecord, _ e: EncodedImage, original: RGBImage) {
        r.bytes = e.bytes.count
        r.height = original.height
        r.width = original.width
        r.latentHeight = e.latentHeight
        r.latentWidth = e.latentWidth
    }

    // MARK: Tasks

    /// ImageNet: the record with the label and the five best classes.
    public func classify(_ original: RGBImage, label: Int, into r: inout SampleRecord) throws(LadonError) {
        let e = try encode(SC2Preprocessing.imagenet(original, passOrder: passOrder))
        Self.recordSizes(&r, e, original: original)
        guard let logits = model.server.classify(try features(e)) else {
            throw .config(.missingHead("classification", neededBy: "ImageNet evaluation"))
        }
        r.label = label
        r.top5 = Kernels.topK(logits.scalars, k: 5).map(\.index)
    }

    /// VOC: the record with this image's confusion-matrix cells.
    public func segment(_ original: RGBImage, mask: IndexedImage, classes: Int, into r: inout SampleRecord) throws(LadonError) {
        let (image, target) = SC2Preprocessing.voc(original, mask: mask, passOrder: passOrder)
        let e = try encode(image)
        Self.recordSizes(&r, e, original: original)
        let g = e.geometry
        guard let seg = model.server.segment(try features(e), paddedHeight: g.paddedHeight, paddedWidth: g.paddedWidth) else {
            throw .config(.missingHead("segmentation", neededBy: "VOC evaluation"))
        }
        let prediction = seg.classIDBytes(resampledFrom: g.resizedHeight, g.resizedWidth,
                                          toHeight: target.height, width: target.width)
        var matrix = ConfusionMatrix(classes: classes)
        matrix.add(target: target.indices, prediction: prediction)
        r.confusion = matrix.nonZeroEntries
    }

    /// COCO: the model's detections at the original image size.
    public func detect(_ original: RGBImage, into r: inout SampleRecord) throws(LadonError) -> [Detection] {
        let e = try encode(original)
        Self.recordSizes(&r, e, original: original)
        guard model.server.detectionHead != nil else {
            throw .config(.missingHead("detection", neededBy: "COCO evaluation"))
        }
        return try model.server.detect(try features(e), geometry: e.geometry)
    }
}
