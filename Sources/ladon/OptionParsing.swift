// Parsers for option values shared by the subcommands.
import ArgumentParser

/// An option's parser for a string-valued enum: a value that names no case is refused with every case listed.
func oneOf<Value: RawRepresentable & CaseIterable & Sendable>(_ option: String) -> @Sendable (String) throws -> Value
where Value.RawValue == String {
    let names = Value.allCases.map(\.rawValue).joined(separator: ", ")
    return { text in
        guard let value = Value(rawValue: text) else { throw ValidationError("\(option) must be one of \(names)") }
        return value
    }
}
