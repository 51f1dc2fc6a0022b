import Foundation

/// A value in the TOML subset Gatehouse's configuration uses.
public enum TOMLValue: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case integer(Int64)
    case boolean(Bool)
    case array([TOMLValue])

    public var description: String {
        switch self {
        case .string(let s): return "\"\(s)\""
        case .integer(let i): return String(i)
        case .boolean(let b): return String(b)
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        }
    }

    var typeName: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .boolean: return "a boolean"
        case .array: return "an array"
        }
    }
}

/// A parsed configuration file: dotted key paths to values, with the line each came from.
///
/// Supported TOML: comments, `[table]` and `[table.sub]` headers, `key = value` with basic and literal strings,
/// integers (with `_` separators), booleans and single-line arrays of those. Anything else is an error that names
/// the line, which is all an annotated configuration file needs.
public struct TOMLDocument: Sendable {
    /// One entry: the value and its 1-based line number.
    public struct Entry: Sendable, Hashable {
        public var value: TOMLValue
        public var line: Int
    }

    /// Entries by dotted path (`listeners.https.port`).
    public var entries: [String: Entry] = [:]

    /// A syntax error with its line.
    public struct SyntaxError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Parses TOML text.
    public init(parsing text: String) throws {
        var table: [String] = []
        var seenTables = Set<String>()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            var scanner = Scanner(String(rawLine), line: lineNumber)
            scanner.skipSpaces()
            if scanner.atEndOrComment { continue }
            if scanner.peek == "[" {
                scanner.advance()
                if scanner.peek == "[" {
                    throw SyntaxError(line: lineNumber, message: "arrays of tables are not supported")
                }
                let path = try scanner.dottedKey()
                guard scanner.consume("]") else {
                    throw SyntaxError(line: lineNumber, message: "expected ']' after table name")
                }
                scanner.skipSpaces()
                guard scanner.atEndOrComment else {
                    throw SyntaxError(line: lineNumber, message: "unexpected text after table header")
                }
                let name = path.joined(separator: ".")
                guard seenTables.insert(name).inserted else {
                    throw SyntaxError(line: lineNumber, message: "table [\(name)] is defined twice")
                }
                table = path
                continue
            }
            let keyPath = try scanner.dottedKey()
            guard scanner.consume("=") else { throw SyntaxError(line: lineNumber, message: "expected '=' after key") }
            scanner.skipSpaces()
            let value = try scanner.value()
            scanner.skipSpaces()
            guard scanner.atEndOrComment else {
                throw SyntaxError(line: lineNumber, message: "unexpected text after value")
            }
            let full = (table + keyPath).joined(separator: ".")
            if entries[full] != nil { throw SyntaxError(line: lineNumber, message: "key \(full) is set twice") }
            entries[full] = Entry(value: value, line: lineNumber)
        }
    }

    /// An empty document.
    public init() {}

    struct Scanner {
        let chars: [Character]
        var pos = 0
        let line: Int

        init(_ s: String, line: Int) {
            self.chars = Array(s.hasSuffix("\r") ? String(s.dropLast()) : s)
            self.line = line
        }

        var peek: Character? { pos < chars.count ? chars[pos] : nil }
        var atEndOrComment: Bool { peek == nil || peek == "#" }
        mutating func advance() { pos += 1 }
        mutating func skipSpaces() { while peek == " " || peek == "\t" { pos += 1 } }
        mutating func consume(_ c: Character) -> Bool {
            if peek == c {
                pos += 1
                return true
            }
            return false
        }
        func error(_ m: String) -> SyntaxError { SyntaxError(line: line, message: m) }

        mutating func key() throws -> String {
            if peek == "\"" { return try basicString() }
            var out = ""
            while let c = peek, c.isLetter || c.isNumber || c == "_" || c == "-" {
                out.append(c)
                pos += 1
            }
            guard !out.isEmpty else { throw error("expected a key") }
            return out
        }

        /// `a.b."c"` with optional spaces around the dots.
        mutating func dottedKey() throws -> [String] {
            var path: [String] = []
            repeat {
                skipSpaces()
                path.append(try key())
                skipSpaces()
            } while consume(".")
            return path
        }

        mutating func basicString() throws -> String {
            guard consume("\"") else { throw error("expected '\"'") }
            var out = ""
            while let c = peek {
                pos += 1
                switch c {
                case "\"": return out
                case "\\":
                    guard let e = peek else { throw error("unterminated escape") }
                    pos += 1
                    switch e {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "\\": out.append("\\")
                    case "\"": out.append("\"")
                    default: throw error("unsupported escape \\\(e)")
                    }
                default: out.append(c)
                }
            }
            throw error("unterminated string")
        }

        mutating func value() throws -> TOMLValue {
            guard let c = peek else { throw error("expected a value") }
            switch c {
            case "\"": return .string(try basicString())
            case "'":
                pos += 1
                var out = ""
                while let ch = peek {
                    pos += 1
                    if ch == "'" { return .string(out) }
                    out.append(ch)
                }
                throw error("unterminated literal string")
            case "[":
                pos += 1
                var items: [TOMLValue] = []
                while true {
                    skipSpaces()
                    if consume("]") { return .array(items) }
                    items.append(try value())
                    skipSpaces()
                    if consume(",") { continue }
                    guard consume("]") else { throw error("expected ',' or ']' in array") }
                    return .array(items)
                }
            case "t", "f":
                var word = ""
                while let ch = peek, ch.isLetter {
                    word.append(ch)
                    pos += 1
                }
                if word == "true" { return .boolean(true) }
                if word == "false" { return .boolean(false) }
                throw error("unknown value \(word) (strings need quotes)")
            default:
                var word = ""
                while let ch = peek, ch.isNumber || ch == "-" || ch == "+" || ch == "_" {
                    word.append(ch)
                    pos += 1
                }
                guard let n = Int64(word.replacingOccurrences(of: "_", with: "")), !word.isEmpty else {
                    throw error("cannot read a value here (strings need quotes)")
                }
                return .integer(n)
            }
        }
    }
}
