// A pull parser for the COCO JSON files.
//
// The reader walks objects and arrays itself and skips what it does not need (the polygons and RLE masks that make
// up most of instances_val2017.json) without building values. Numbers are converted from their text by the standard
// library's correctly rounded parser, so every double equals the one Python's `json` module reads. Python's
// extensions `NaN`, `Infinity` and `-Infinity` are accepted, as `json.load` accepts them.

struct JSONScanner {
    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0
    private static let maxDepth = 512

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// An `invalidJSON` error at the current position.
    func error(_ reason: String) -> EvalError {
        var line = 1, column = 1
        for byte in bytes[..<min(position, bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return .invalidJSON(line: line, column: column, reason: reason)
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    /// The next non-blank byte, not consumed.
    mutating func peek() throws(EvalError) -> UInt8 {
        skipWhitespace()
        guard position < bytes.count else { throw error("unexpected end of input") }
        return bytes[position]
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(EvalError) {
        guard try peek() == byte else { throw error("expected \(what)") }
        position += 1
    }

    /// Fails unless only blanks are left.
    mutating func expectEnd() throws(EvalError) {
        skipWhitespace()
        guard position == bytes.count else { throw error("unexpected data after the top-level value") }
    }

    /// What the next value is, for error messages.
    mutating func nextKind() throws(EvalError) -> String {
        switch try peek() {
        case UInt8(ascii: "{"): "an object"
        case UInt8(ascii: "["): "an array"
        case UInt8(ascii: "\""): "a string"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): "a boolean"
        case UInt8(ascii: "n"): "null"
        default: "a number"
        }
    }

    // MARK: Containers

    /// Reads an object, calling `body` with each key; `body` must consume the member's value.
    mutating func readObject(_ body: (inout JSONScanner, String) throws(EvalError) -> Void) throws(EvalError) {
        try expect(UInt8(ascii: "{"), "'{'")
        try enter()
        if try peek() == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return
        }
        while true {
            guard try peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try readString()
            try expect(UInt8(ascii: ":"), "':'")
            try body(&self, key)
            switch try peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                depth -= 1
                return
            default: throw error("expected ',' or '}'")
            }
        }
    }

    /// Reads an array, calling `body` with each element's index; `body` must consume the element.
    mutating func readArray(_ body: (inout JSONScanner, Int) throws(EvalError) -> Void) throws(EvalError) {
        try expect(UInt8(ascii: "["), "'['")
        try enter()
        if try peek() == UInt8(ascii: "]") {
            position += 1
            depth -= 1
            return
        }
        var index = 0
        while true {
            try body(&self, index)
            index += 1
            switch try peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"):
                position += 1
                depth -= 1
                return
            default: throw error("expected ',' or ']'")
            }
        }
    }

    private mutating func enter() throws(EvalError) {
        depth += 1
        guard depth <= Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
    }

    // MARK: Scalars

    /// Reads a string value.
    mutating func readString() throws(EvalError) -> String {
        try expect(UInt8(ascii: "\""), "a string")
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                defer { position += 1 }
                return try decodeUTF8(bytes[start..<position])
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw error("control character in a string") }
            position += 1
        }
        // Escapes: decode the rest byte by byte.
        var decoded = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return try decodeUTF8(decoded[...])
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { break }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"): decoded.append(contentsOf: try readUnicodeEscape())
                default: throw error("invalid escape '\\\(Character(Unicode.Scalar(escape)))'")
                }
            default:
                guard byte >= 0x20 else { throw error("control character in a string") }
                decoded.append(byte)
            }
        }
        throw error("unterminated string")
    }

    /// The UTF-8 bytes of a `\uXXXX` escape (after the `u`), joining a surrogate pair.
    private mutating func readUnicodeEscape() throws(EvalError) -> [UInt8] {
        var value = try readHex4()
        if (0xD800..<0xDC00).contains(value), position + 1 < bytes.count,
           bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
            let save = position
            position += 2
            let low = try readHex4()
            if (0xDC00..<0xE000).contains(low) {
                value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
            } else {
                position = save
            }
        }
        // A lone surrogate becomes U+FFFD, as decoding the string's UTF-8 would make it.
        let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
        return Array(String(Character(scalar)).utf8)
    }

    private mutating func readHex4() throws(EvalError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private func decodeUTF8(_ slice: ArraySlice<UInt8>) throws(EvalError) -> String {
        guard let string = String(validating: slice, as: UTF8.self) else { throw error("string is not valid UTF-8") }
        return string
    }

    /// Reads a number (or Python's `NaN`, `Infinity`, `-Infinity`) as the correctly rounded double.
    mutating func readDouble() throws(EvalError) -> Double {
        if let special = try readNonFiniteLiteral() { return special }
        let range = try scanNumber()
        guard let value = Double(Substring(decoding: bytes[range], as: UTF8.self)) else {
            throw error("invalid number")
        }
        return value
    }

    private mutating func readNonFiniteLiteral() throws(EvalError) -> Double? {
        switch try peek() {
        case UInt8(ascii: "N"): if try matchLiteral("NaN") { return .nan }
        case UInt8(ascii: "I"): if try matchLiteral("Infinity") { return .infinity }
        case UInt8(ascii: "-"): if try matchLiteral("-Infinity") { return -.infinity }
        default: break
        }
        return nil
    }

    /// Reads a number token: its text and whether it has neither fraction nor exponent.
    mutating func readNumberText() throws(EvalError) -> (text: Substring, isInteger: Bool) {
        let range = try scanNumber()
        let text = Substring(decoding: bytes[range], as: UTF8.self)
        return (text, !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }))
    }

    /// Reads `true` or `false`.
    mutating func readBool() throws(EvalError) -> Bool {
        if try matchLiteral("true") { return true }
        if try matchLiteral("false") { return false }
        throw error("expected a boolean, found \(try nextKind())")
    }

    /// Consumes `literal` if it comes next.
    private mutating func matchLiteral(_ literal: String) throws(EvalError) -> Bool {
        _ = try peek()
        let utf8 = literal.utf8
        guard bytes.count - position >= utf8.count, bytes[position..<position + utf8.count].elementsEqual(utf8) else {
            return false
        }
        position += utf8.count
        return true
    }

    /// The range of a JSON number token (RFC 8259 grammar), consumed.
    private mutating func scanNumber() throws(EvalError) -> Range<Int> {
        _ = try peek()
        let start = position
        func digits(_ position: inout Int, _ bytes: [UInt8]) -> Int {
            let first = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
            return position - first
        }
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let leadingZero = position < bytes.count && bytes[position] == UInt8(ascii: "0")
        let integerDigits = digits(&position, bytes)
        guard integerDigits > 0, !(leadingZero && integerDigits > 1) else {
            position = start
            throw error(integerDigits == 0 ? "expected a value, found '\(Character(Unicode.Scalar(bytes[start])))'"
                                           : "number with a leading zero")
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits(&position, bytes) > 0 else { throw error("expected digits after '.'") }
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard digits(&position, bytes) > 0 else { throw error("expected digits in the exponent") }
        }
        return start..<position
    }

    /// Consumes one value of any kind without building it.
    mutating func skipValue() throws(EvalError) {
        switch try peek() {
        case UInt8(ascii: "{"):
            try readObject { scanner, _ throws(EvalError) in try scanner.skipValue() }
        case UInt8(ascii: "["):
            try readArray { scanner, _ throws(EvalError) in try scanner.skipValue() }
        case UInt8(ascii: "\""):
            try skipString()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            _ = try readBool()
        case UInt8(ascii: "n"):
            guard try matchLiteral("null") else { throw error("invalid literal") }
        default:
            if try readNonFiniteLiteral() == nil { _ = try scanNumber() }
        }
    }

    private mutating func skipString() throws(EvalError) {
        let start = position
        position += 1
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "\""):
                position += 1
                return
            case UInt8(ascii: "\\"):
                // escapes are rare: read the string properly, which validates them
                position = start
                _ = try readString()
                return
            case 0..<0x20: throw error("control character in a string")
            default: position += 1
            }
        }
        throw error("unterminated string")
    }
}

// MARK: Typed fields, with the field's path in the errors

extension JSONScanner {
    /// Reads an object, naming `path` when the value is something else.
    mutating func members(at path: String,
                          _ body: (inout JSONScanner, String) throws(EvalError) -> Void) throws(EvalError) {
        guard try peek() == UInt8(ascii: "{") else {
            throw .invalidField(path: path, reason: "expected an object, found \(try nextKind())")
        }
        try readObject(body)
    }

    /// Reads an array, naming `path` when the value is something else.
    mutating func elements(at path: String,
                           _ body: (inout JSONScanner, Int) throws(EvalError) -> Void) throws(EvalError) {
        guard try peek() == UInt8(ascii: "[") else {
            throw .invalidField(path: path, reason: "expected an array, found \(try nextKind())")
        }
        try readArray(body)
    }

    mutating func integer(at path: String) throws(EvalError) -> Int {
        let next = try peek()
        guard next == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next) else {
            throw .invalidField(path: path, reason: "expected an integer, found \(try nextKind())")
        }
        let (text, isInteger) = try readNumberText()
        guard isInteger else { throw .invalidField(path: path, reason: "expected an integer, found \(text)") }
        guard let value = Int(text) else { throw .invalidField(path: path, reason: "integer \(text) out of range") }
        return value
    }

    mutating func number(at path: String) throws(EvalError) -> Double {
        switch try peek() {
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "N"), UInt8(ascii: "I"):
            return try readDouble()
        default:
            throw .invalidField(path: path, reason: "expected a number, found \(try nextKind())")
        }
    }

    mutating func string(at path: String) throws(EvalError) -> String {
        guard try peek() == UInt8(ascii: "\"") else {
            throw .invalidField(path: path, reason: "expected a string, found \(try nextKind())")
        }
        return try readString()
    }

    /// `[x, y, width, height]`.
    mutating func box(at path: String) throws(EvalError) -> COCOBox {
        var values: [Double] = []
        try elements(at: path) { scanner, index throws(EvalError) in
            values.append(try scanner.number(at: "\(path)[\(index)]"))
        }
        guard values.count == 4 else {
            throw .invalidField(path: path, reason: "expected 4 numbers [x, y, width, height], found \(values.count)")
        }
        return COCOBox(x: values[0], y: values[1], width: values[2], height: values[3])
    }

    /// The value of a required field.
    static func required<Value>(_ value: Value?, _ path: String) throws(EvalError) -> Value {
        guard let value else { throw .invalidField(path: path, reason: "missing") }
        return value
    }
}
