// Link data rates: parsing `37.5kbps,1Mbps` lists and printing rates back in SI units.
import Foundation

/// A link's data rate in bits per second (decimal SI: 1 kbps = 1,000 bit/s, 1 Mbps = 10⁶ bit/s).
public struct DataRate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Bits per second; finite and above zero.
    public let bitsPerSecond: Double

    /// A rate of `bitsPerSecond` bit/s; it must be finite and above zero.
    public init(bitsPerSecond: Double) throws(DataRateError) {
        guard bitsPerSecond.isFinite, bitsPerSecond > 0 else { throw .notPositive("\(bitsPerSecond) bps") }
        self.bitsPerSecond = bitsPerSecond
    }

    /// The units `DataRate(parsing:)` accepts (case-insensitive) and their factors.
    public static let units: [(name: String, factor: Double)] = [("Gbps", 1e9), ("Mbps", 1e6), ("kbps", 1e3), ("bps", 1)]

    /// Parses one rate: a decimal number followed by `bps`, `kbps`, `Mbps` or `Gbps` (case-insensitive, since
    /// no link is measured in millibits; an optional space between number and unit), e.g. `37.5kbps`, `5 Mbps`.
    public init(parsing text: String) throws(DataRateError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let lower = trimmed.lowercased()
        guard let unit = Self.units.first(where: { lower.hasSuffix($0.name.lowercased()) }) else {
            throw .unknownUnit(trimmed)
        }
        let number = String(trimmed.dropLast(unit.name.count)).trimmingCharacters(in: .whitespaces)
        // Plain decimals only: `Double("inf")`, `Double("nan")` and hex floats are not rates.
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(number) else {
            throw .notANumber(trimmed)
        }
        guard value > 0 else { throw .notPositive(trimmed) }
        try self.init(bitsPerSecond: value * unit.factor)
    }

    /// Parses a comma-separated list (`37.5kbps,250kbps,1Mbps`); the rates come back sorted, duplicates removed.
    public static func list(parsing text: String) throws(DataRateError) -> [DataRate] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !(items.count == 1 && items[0].trimmingCharacters(in: .whitespaces).isEmpty) else { throw .empty }
        var rates: [DataRate] = []
        for item in items {
            guard !item.trimmingCharacters(in: .whitespaces).isEmpty else { throw .empty }
            rates.append(try DataRate(parsing: item))
        }
        return Array(Set(rates)).sorted()
    }

    /// Seconds to send `bytes` at this rate: 8 · bytes / rate.
    public func transferSeconds(bytes: Double) -> Double { 8 * bytes / bitsPerSecond }

    /// The rate in the largest unit that keeps the number at least 1, with up to 3 significant decimals:
    /// `37.5 kbps`, `1 Mbps`, `250 kbps`.
    public var description: String { Self.format(bitsPerSecond) }

    /// Formats any bit rate as ``description`` does (also rates that are not valid ``DataRate`` values).
    public static func format(_ bitsPerSecond: Double, space: Bool = true) -> String {
        guard bitsPerSecond.isFinite else { return "\(bitsPerSecond)" }
        let unit = units.first { bitsPerSecond >= $0.factor } ?? units[units.count - 1]
        let value = bitsPerSecond / unit.factor
        var number = String(format: "%.3g", value)
        if number.contains("e") { number = String(format: "%.0f", value) }
        return number + (space ? " " : "") + unit.name
    }

    public static func < (a: DataRate, b: DataRate) -> Bool { a.bitsPerSecond < b.bitsPerSecond }

    public init(from decoder: Decoder) throws {
        let value = try decoder.singleValueContainer().decode(Double.self)
        do { try self.init(bitsPerSecond: value) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(bitsPerSecond)
    }
}

/// Why a data rate was refused.
public enum DataRateError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The list, or one of its items, is empty.
    case empty
    /// The text does not end in `bps`, `kbps`, `Mbps` or `Gbps`.
    case unknownUnit(String)
    /// The part before the unit is not a plain decimal number.
    case notANumber(String)
    /// The rate is zero, negative or not finite.
    case notPositive(String)

    public var description: String {
        switch self {
        case .empty: "empty data rate (write rates like 37.5kbps,1Mbps)"
        case .unknownUnit(let s): "data rate \"\(s)\" has no unit: end it in bps, kbps, Mbps or Gbps (decimal SI)"
        case .notANumber(let s): "data rate \"\(s)\" does not start with a plain decimal number"
        case .notPositive(let s): "data rate \"\(s)\" must be above zero"
        }
    }
}
