// The evaluation-time preprocessing behind the published sc2bench/Ladon numbers, which is not the runtime's unified
// resize/pad: the model then sees exactly the 416×416 inputs the Python evaluation fed it.
import LadonImage

/// Preprocessing of the Ladon repository's legacy evaluation configs (torchvision transforms on PIL images).
public enum SC2Preprocessing {
    /// The bilinear pass order of the Pillow the published numbers were made with: the legacy pins
    /// (torch 1.12.1, torchvision 0.13.1) predate Pillow 13, which always resized horizontally first.
    public static let publishedPassOrder = PILPassOrder.horizontalFirst

    /// ImageNet: `Resize(448)` of the short side (PIL bilinear, antialiased), then `CenterCrop(416)`.
    public static func imagenet(_ image: RGBImage, resize: Int = 448, crop: Int = 416,
                                passOrder: PILPassOrder = publishedPassOrder) -> RGBImage {
        image.resizedShortSidePIL(resize, passOrder: passOrder).centerCropped(width: crop, height: crop)
    }

    /// PASCAL VOC: the image squashed to `size × size` (PIL bilinear); its mask by Pillow's nearest rule (the
    /// running-sum sampling of `ImagingScaleAffine`).
    public static func voc(_ image: RGBImage, mask: IndexedImage, size: Int = 416,
                           passOrder: PILPassOrder = publishedPassOrder) -> (RGBImage, IndexedImage) {
        (image.resizedPIL(width: size, height: size, passOrder: passOrder), mask.resizedNearestPIL(width: size, height: size))
    }

    public static let imagenetDescription = "PIL bilinear (antialiased) Resize(448) of the short side, CenterCrop(416), "
        + "then the model's own preprocessing (a no-op at 416×416 for the released configs)"
    public static let vocDescription = "image squashed to 416×416 with PIL bilinear, mask with Pillow's NEAREST; "
        + "then the model's own preprocessing"
    public static let cocoDescription = "the model's own preprocessing (GeneralizedRCNNTransform-style resize and pad)"
}
