// The FPN outputs a detection config names by torchvision's feature-map keys.

/// An FPN output, named in a config as torchvision's `MultiScaleRoIAlign(featmap_names=…)` names it:
/// `"0"` = P2 (stride 4) … `"3"` = P5 (stride 32), `"4"` = the extra max-pooled level P6.
public enum FPNLevel: String, Codable, Sendable, CaseIterable, Comparable {
    case p2 = "0", p3 = "1", p4 = "2", p5 = "3", p6 = "4"

    /// Position among the FPN outputs (0 = P2), the index into the head's feature maps.
    public var index: Int { Self.allCases.firstIndex(of: self)! }

    public static func < (a: FPNLevel, b: FPNLevel) -> Bool { a.index < b.index }

    /// Decodes a feature-map name; an unknown name is an error that lists the known ones.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let level = FPNLevel(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(name.prefix(32))' is not an FPN output name (\"0\" = P2, \"1\" = P3, … \"4\" = P6)")
        }
        self = level
    }
}
