// torchvision's `ImageFolder` layout: one folder per class, the class index being the sorted folder order.
import Foundation

/// An ImageNet-style classification folder (`VAL_DIR/n01440764/ILSVRC2012_val_00000293.JPEG`, …).
///
/// Matches `torchvision.datasets.ImageFolder`: classes are the sub-folders sorted by name (for the 1000 WordNet
/// ids this is torchvision's ImageNet class order); each class folder is walked recursively (`os.walk`, sorted)
/// and files with an image extension (`.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp`, any case) are kept in
/// sorted order. Names sort by Unicode code point, as Python sorts strings.
public struct ImageFolderDataset: Sendable {
    public let root: String
    /// Class folder names, index = class id.
    public let classes: [String]
    /// `(path, class index)` in dataset order.
    public let samples: [(path: String, label: Int)]

    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp"]

    public init(root: String) throws(EvalError) {
        self.root = root
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw .badDataset("\(root) is not a folder; pass the ImageNet validation folder with one sub-folder per class")
        }
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: root) } catch {
            throw .badDataset("cannot list \(root): \(error.localizedDescription)")
        }
        classes = names.filter { Self.isDirectory((root as NSString).appendingPathComponent($0)) }.sorted(by: codePointLess)
        guard !classes.isEmpty else {
            throw .badDataset("\(root) has no class folders; ImageFolder expects ROOT/CLASS/IMAGE (for ImageNet val, "
                + "1000 WordNet-id folders such as n01440764 — torchvision's valprep layout)")
        }
        var samples: [(String, Int)] = []
        for (label, name) in classes.enumerated() {
            for path in Self.walk((root as NSString).appendingPathComponent(name)) { samples.append((path, label)) }
        }
        guard !samples.isEmpty else { throw .badDataset("\(root) has class folders but no images in them") }
        self.samples = samples
    }

    /// The image files under `dir` in `sorted(os.walk(dir))` order: a folder's files, then its sub-folders.
    static func walk(_ dir: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        var files: [String] = [], dirs: [String] = []
        for name in names {
            let path = (dir as NSString).appendingPathComponent(name)
            if isDirectory(path) { dirs.append(name) } else if imageExtensions.contains((name as NSString).pathExtension.lowercased()) {
                files.append(name)
            }
        }
        var result = files.sorted(by: codePointLess).map { (dir as NSString).appendingPathComponent($0) }
        for sub in dirs.sorted(by: codePointLess) { result += walk((dir as NSString).appendingPathComponent(sub)) }
        return result
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }
}

/// Python's string order: by Unicode code point (Swift's `<` on `String` compares canonical equivalents).
func codePointLess(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
}
