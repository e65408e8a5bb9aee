// SC2 "data size": bytes sent per sample, summarised as sc2bench reports it and as a deployment sees it.
import Foundation

/// Summary of per-sample compressed sizes.
///
/// `KB` is 1024 bytes, as sc2bench's `FileSizeAnalyzer` (`UNIT_DICT = {'KB': 1024}`). Statistics are numpy's: the
/// population standard deviation (`np.std`, ddof 0) and linear-interpolation percentiles (`np.percentile`, as ``TimingSummary``).
public struct DataSizeStatistics: Codable, Sendable, Equatable {
    public var samples: Int
    /// Bytes of the entropy-coded string (CompressAI's `compress` output), the payload the device sends.
    public var meanKB: Double, stdKB: Double, medianKB: Double, p90KB: Double
    public var meanBytes: Double
    /// Mean over samples of `8 · bytes / (original height · original width)`.
    public var bitsPerPixel: Double
    /// sc2bench's own figure: `sys.getsizeof(pickle.dumps({'strings': [[string]], 'shape': torch.Size([h, w])}))`
    /// per sample, in KB (see ``sc2benchPickledBytes(stringBytes:latentHeight:latentWidth:)``).
    public var sc2benchMeanKB: Double, sc2benchStdKB: Double
    /// How ``sc2benchMeanKB`` is counted, for readers comparing against the paper's KB column.
    public var sc2benchRule: String

    public static let rule = "sys.getsizeof(pickle.dumps({'strings': [[string]], 'shape': torch.Size([h, w])})) "
        + "(CPython 3.8–3.13, pickle protocol 4): string bytes + 103 bytes for strings under 256 bytes, + 106 up to "
        + "65,483 bytes, + 115 beyond; +1 byte per latent side of 256 or more"

    /// - Parameters:
    ///   - bytes: compressed string bytes per sample.
    ///   - pixels: original image pixels per sample (same order).
    ///   - latentSizes: latent (height, width) per sample (same order).
    public init(bytes: [Int], pixels: [Int], latentSizes: [(Int, Int)]) {
        precondition(bytes.count == pixels.count && bytes.count == latentSizes.count)
        samples = bytes.count
        let kb = bytes.map { Double($0) / 1024 }
        meanKB = Self.mean(kb)
        stdKB = Self.populationStd(kb)
        let spread = kb.isEmpty ? nil : TimingSummary(kb)
        medianKB = spread?.median ?? 0
        p90KB = spread?.p90 ?? 0
        meanBytes = Self.mean(bytes.map(Double.init))
        bitsPerPixel = Self.mean(zip(bytes, pixels).map { 8 * Double($0) / Double(max($1, 1)) })
        let pickled = zip(bytes, latentSizes).map {
            Double(Self.sc2benchPickledBytes(stringBytes: $0, latentHeight: $1.0, latentWidth: $1.1)) / 1024
        }
        sc2benchMeanKB = Self.mean(pickled)
        sc2benchStdKB = Self.populationStd(pickled)
        sc2benchRule = Self.rule
    }

    /// The size sc2bench's `FileSizeAnalyzer` records for one sample, in bytes: torchdistill's
    /// `get_binary_object_size` is `sys.getsizeof(pickle.dumps(obj))` of `{'strings': [[string]], 'shape':
    /// torch.Size([h, w])}`. Measured against CPython 3.11 over string lengths 0…200,000 and sides up to 70,000
    /// (pickle protocol 4, the default from Python 3.8): a 33-byte `bytes` object header plus the pickle, whose
    /// frame grows with `SHORT_BINBYTES`/`BINBYTES` and splits once the first frame reaches 64 KiB.
    public static func sc2benchPickledBytes(stringBytes n: Int, latentHeight h: Int, latentWidth w: Int) -> Int {
        func sideExtra(_ d: Int) -> Int { d < 256 ? 0 : d < 65_536 ? 1 : 3 }
        return n + 103 + (n >= 256 ? 3 : 0) + (n >= 65_484 ? 9 : 0) + sideExtra(h) + sideExtra(w)
    }

    static func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }

    static func populationStd(_ v: [Double]) -> Double {
        guard !v.isEmpty else { return 0 }
        let m = mean(v)
        return (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count)).squareRoot()
    }
}
