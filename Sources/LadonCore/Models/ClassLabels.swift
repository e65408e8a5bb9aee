// The class names of a converted model's heads.

/// Class names shipped with a converted model (ImageNet, COCO and VOC order as in torchvision).
public struct ClassLabels: Sendable, Equatable {
    public var imagenet: [String]
    public var coco: [String]
    public var voc: [String]

    public init(imagenet: [String] = [], coco: [String] = [], voc: [String] = []) {
        self.imagenet = imagenet
        self.coco = coco
        self.voc = voc
    }

    /// The lists named by the config's heads, from a weights file's `classes.<list>` metadata, falling back to
    /// the built-in torchvision lists (``LadonLabels``) when a key is absent.
    public init(file: SafeTensorsFile, config: LadonModelConfig) throws(LadonError) {
        let stored = try LadonWeightsFormat.classLists(of: file)
        func list(_ key: String?) -> [String] {
            guard let key else { return [] }
            return stored[key] ?? LadonLabels.list(key) ?? []
        }
        self.init(imagenet: list(config.classification?.classList), coco: list(config.detection?.classList),
                  voc: list(config.segmentation?.classList))
    }
}
