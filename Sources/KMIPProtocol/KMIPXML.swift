import Foundation
import TTLV

/// KMIP's XML encoding (KMIP Profiles §5.4.1, used by the OASIS test cases): `<Tag type="Integer" value="…"/>` for
/// primitives, `<Tag>…</Tag>` for structures, tags and enumerations by name. Pure: text in, values out.
public struct KMIPXMLNode: Sendable, Hashable {
    public var name: String
    public var attributes: [String: String]
    public var children: [KMIPXMLNode]
    public init(name: String, attributes: [String: String] = [:], children: [KMIPXMLNode] = []) {
        self.name = name
        self.attributes = attributes
        self.children = children
    }
    public var type: String? { attributes["type"] }
    public var value: String? { attributes["value"] }
}

public struct KMIPXMLError: Error, CustomStringConvertible, Sendable, Hashable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A small XML reader for the KMIP encoding: elements, attributes, comments, the XML declaration and the five
/// predefined entities (plus numeric references). Text content is ignored (KMIP XML carries values in attributes).
public enum KMIPXMLParser {
    public static let maxDepth = 64

    /// The top-level elements of `text`.
    public static func parse(_ text: String) throws -> [KMIPXMLNode] {
        var p = Cursor(bytes: Array(text.utf8))
        var stack: [KMIPXMLNode] = [KMIPXMLNode(name: "#document")]
        while p.i < p.bytes.count {
            guard p.bytes[p.i] == UInt8(ascii: "<") else {
                p.i += 1
                continue
            }
            if p.starts("<!--") {
                guard let end = p.find("-->") else { throw KMIPXMLError("unterminated comment") }
                p.i = end + 3
            } else if p.starts("<?") {
                guard let end = p.find("?>") else { throw KMIPXMLError("unterminated declaration") }
                p.i = end + 2
            } else if p.starts("<!") {
                guard let end = p.find(">") else { throw KMIPXMLError("unterminated declaration") }
                p.i = end + 1
            } else if p.starts("</") {
                p.i += 2
                let name = p.name()
                p.skipSpace()
                guard p.i < p.bytes.count, p.bytes[p.i] == UInt8(ascii: ">") else {
                    throw KMIPXMLError("malformed end tag </\(name)")
                }
                p.i += 1
                guard stack.count > 1, let open = stack.last, open.name == name else {
                    throw KMIPXMLError("unexpected </\(name)>")
                }
                stack.removeLast()
                stack[stack.count - 1].children.append(open)
            } else {
                p.i += 1
                let name = p.name()
                guard !name.isEmpty else { throw KMIPXMLError("malformed element at byte \(p.i)") }
                var attributes: [String: String] = [:]
                var selfClosing = false
                while true {
                    p.skipSpace()
                    guard p.i < p.bytes.count else { throw KMIPXMLError("unterminated <\(name)") }
                    if p.bytes[p.i] == UInt8(ascii: "/") {
                        guard p.i + 1 < p.bytes.count, p.bytes[p.i + 1] == UInt8(ascii: ">") else {
                            throw KMIPXMLError("malformed <\(name)")
                        }
                        p.i += 2
                        selfClosing = true
                        break
                    }
                    if p.bytes[p.i] == UInt8(ascii: ">") {
                        p.i += 1
                        break
                    }
                    let key = p.name()
                    p.skipSpace()
                    guard !key.isEmpty, p.i < p.bytes.count, p.bytes[p.i] == UInt8(ascii: "=") else {
                        throw KMIPXMLError("malformed attribute in <\(name)")
                    }
                    p.i += 1
                    p.skipSpace()
                    guard p.i < p.bytes.count, p.bytes[p.i] == UInt8(ascii: "\"") || p.bytes[p.i] == UInt8(ascii: "'")
                    else {
                        throw KMIPXMLError("unquoted attribute \(key) in <\(name)")
                    }
                    let quote = p.bytes[p.i]
                    p.i += 1
                    let start = p.i
                    while p.i < p.bytes.count, p.bytes[p.i] != quote { p.i += 1 }
                    guard p.i < p.bytes.count else { throw KMIPXMLError("unterminated attribute \(key) in <\(name)") }
                    attributes[key] = try unescape(String(decoding: p.bytes[start..<p.i], as: UTF8.self))
                    p.i += 1
                }
                let node = KMIPXMLNode(name: name, attributes: attributes)
                if selfClosing {
                    stack[stack.count - 1].children.append(node)
                } else {
                    guard stack.count < maxDepth else { throw KMIPXMLError("nesting deeper than \(maxDepth)") }
                    stack.append(node)
                }
            }
        }
        guard stack.count == 1, let document = stack.first else {
            throw KMIPXMLError("unclosed <\(stack.last?.name ?? "")>")
        }
        return document.children
    }

    static func unescape(_ s: String) throws -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var rest = Substring(s)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";") else { throw KMIPXMLError("bad entity in \"\(s)\"") }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let code: UInt32?
                if entity.hasPrefix("#x") {
                    code = UInt32(entity.dropFirst(2), radix: 16)
                } else if entity.hasPrefix("#") {
                    code = UInt32(entity.dropFirst())
                } else {
                    code = nil
                }
                guard let code, let scalar = Unicode.Scalar(code) else {
                    throw KMIPXMLError("unknown entity &\(entity);")
                }
                out.unicodeScalars.append(scalar)
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }

    struct Cursor {
        let bytes: [UInt8]
        var i = 0
        func starts(_ s: String) -> Bool {
            let u = Array(s.utf8)
            return i + u.count <= bytes.count && Array(bytes[i..<(i + u.count)]) == u
        }
        func find(_ s: String) -> Int? {
            let u = Array(s.utf8)
            var j = i
            while j + u.count <= bytes.count {
                if bytes[j] == u[0], Array(bytes[j..<(j + u.count)]) == u { return j }
                j += 1
            }
            return nil
        }
        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }
        mutating func name() -> String {
            let start = i
            while i < bytes.count {
                let b = bytes[i]
                let ok =
                    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
                    || b == 0x2D || b == 0x2E || b == 0x3A || b >= 0x80
                guard ok else { break }
                i += 1
            }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }
    }
}

/// XML nodes to TTLV and back. Placeholders (`$NAME`) in values are looked up in `variables` (`$NOW` and
/// `$NOW-3600`-style offsets are the current time).
public struct KMIPXMLCodec: Sendable {
    public var variables: [String: TTLVValue]
    /// Byte strings a reference server chose (a ciphertext, an IV) that a test case later sends back literally: each
    /// is replaced by what this server chose in its place (see `KMIPResponseMatcher`).
    public var substitutions: [[UInt8]: [UInt8]] = [:]
    public var now: Int64

    public init(variables: [String: TTLVValue] = [:], now: Int64 = Int64(Date().timeIntervalSince1970)) {
        self.variables = variables
        self.now = now
    }

    /// The tag of an element: its name, or its `tag="0x42…"` attribute.
    public static func tag(of node: KMIPXMLNode) throws -> UInt32 {
        if let t = node.attributes["tag"], let v = KMIPNames.number(t) { return v }
        guard let v = KMIPNames.tags[node.name] else { throw KMIPXMLError("unknown tag <\(node.name)>") }
        return v
    }

    /// Converts one element (and its children) to a TTLV item. `attributeName` is the 1.x attribute an
    /// `AttributeValue` belongs to (it names the enumeration or mask of the value).
    public func item(_ node: KMIPXMLNode, attributeName: String? = nil) throws -> TTLVItem {
        let tag = try Self.tag(of: node)
        let type = node.type ?? "Structure"
        if type == "Structure" {
            var children: [TTLVItem] = []
            var currentAttributeName: String?
            for child in node.children {
                if child.name == "AttributeName", let v = child.value { currentAttributeName = v }
                children.append(
                    try item(child, attributeName: child.name == "AttributeValue" ? currentAttributeName : nil))
            }
            return TTLVItem(tag: tag, .structure(children))
        }
        guard let text = node.value else { throw KMIPXMLError("<\(node.name)> has no value") }
        return TTLVItem(tag: tag, try value(type: type, text: text, element: node.name, attributeName: attributeName))
    }

    public func value(type: String, text: String, element: String, attributeName: String?) throws -> TTLVValue {
        if text.hasPrefix("$") {
            if text.hasPrefix("$NOW") {
                let offset = Int64(text.dropFirst(4)) ?? 0
                return type == "DateTimeExtended"
                    ? .dateTimeExtended((now + offset) * 1_000_000) : .dateTime(now + offset)
            }
            guard let v = variables[String(text.dropFirst())] else {
                throw KMIPXMLError("\(text) is not known yet (<\(element)>)")
            }
            return v
        }
        let bad = KMIPXMLError("<\(element)>: \"\(text)\" is not a valid \(type)")
        switch type {
        case "Integer":
            if let n = Int32(text) { return .integer(n) }
            let mask = element == "StorageStatusMask" ? KMIPNames.storageStatusMask : KMIPNames.usageMask
            guard let v = KMIPNames.maskValue(mask, text) else { throw bad }
            return .integer(Int32(bitPattern: v))
        case "LongInteger":
            if text.hasPrefix("0x"), let v = UInt64(text.dropFirst(2), radix: 16) {
                return .longInteger(Int64(bitPattern: v))
            }
            guard let v = Int64(text) else { throw bad }
            return .longInteger(v)
        case "BigInteger":
            guard let bytes = Self.hex(text.hasPrefix("0x") ? String(text.dropFirst(2)) : text) else { throw bad }
            return .bigInteger(bytes)
        case "Enumeration":
            let enumeration: String
            if element == "AttributeValue", let attributeName {
                enumeration = KMIPNames.enumerationOfAttribute(attributeName)
            } else {
                enumeration = KMIPNames.enumerationOfTag[element] ?? element
            }
            guard let v = KMIPNames.enumValue(enumeration, text) else { throw bad }
            return .enumeration(v)
        case "Boolean":
            switch text.lowercased() {
            case "true", "1": return .boolean(true)
            case "false", "0": return .boolean(false)
            default: throw bad
            }
        case "TextString": return .textString(text)
        case "ByteString":
            guard let bytes = Self.hex(text) else { throw bad }
            return .byteString(substitutions[bytes] ?? bytes)
        case "DateTime", "DateTimeExtended":
            // Hex is the raw value (seconds, or microseconds for DateTimeExtended); otherwise ISO 8601.
            if text.hasPrefix("0x"), let v = UInt64(text.dropFirst(2), radix: 16) {
                return type == "DateTime" ? .dateTime(Int64(bitPattern: v)) : .dateTimeExtended(Int64(bitPattern: v))
            }
            guard let date = Self.parseDate(text) else { throw bad }
            let seconds = Int64(date.timeIntervalSince1970)
            return type == "DateTime" ? .dateTime(seconds) : .dateTimeExtended(seconds * 1_000_000)
        case "Interval":
            guard let v = UInt32(text) else { throw bad }
            return .interval(v)
        default:
            throw KMIPXMLError("<\(element)>: unknown type \(type)")
        }
    }

    static func parseDate(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text)
    }

    public static func hex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// XML for a TTLV item (names where known), for diagnostics and the XML encoding.
    public static func xml(_ item: TTLVItem, indent: String = "", attributeName: String? = nil) -> String {
        let name = KMIPNames.tagNames[item.tag] ?? "TTLV"
        let tagAttribute = KMIPNames.tagNames[item.tag] == nil ? String(format: " tag=\"0x%06X\"", item.tag) : ""
        func leaf(_ type: String, _ value: String) -> String {
            "\(indent)<\(name)\(tagAttribute) type=\"\(type)\" value=\"\(escape(value))\"/>\n"
        }
        switch item.value {
        case .structure(let children):
            var out = "\(indent)<\(name)\(tagAttribute)>\n"
            var currentAttributeName: String?
            for child in children {
                if case .textString(let s) = child.value, child.tag == KMIPTag.attributeName {
                    currentAttributeName = s
                }
                out += xml(
                    child, indent: indent + "  ",
                    attributeName: child.tag == KMIPTag.attributeValue ? currentAttributeName : nil)
            }
            return out + "\(indent)</\(name)>\n"
        case .integer(let v):
            if item.tag == KMIPTag.cryptographicUsageMask
                || (item.tag == KMIPTag.attributeValue && attributeName == "Cryptographic Usage Mask")
            {
                let bits = KMIPNames.usageMask.filter { UInt32(bitPattern: v) & $0.value != 0 }.sorted {
                    $0.value < $1.value
                }
                if bits.reduce(0, { $0 | $1.value }) == UInt32(bitPattern: v), !bits.isEmpty {
                    return leaf("Integer", bits.map(\.key).joined(separator: " "))
                }
            }
            return leaf("Integer", String(v))
        case .longInteger(let v): return leaf("LongInteger", String(v))
        case .bigInteger(let b): return leaf("BigInteger", "0x" + b.map { String(format: "%02X", $0) }.joined())
        case .enumeration(let v):
            let enumeration =
                item.tag == KMIPTag.attributeValue
                ? attributeName.map(KMIPNames.enumerationOfAttribute) : KMIPNames.enumerationOfTag[name] ?? name
            return leaf("Enumeration", enumeration.flatMap { KMIPNames.enumName($0, v) } ?? String(format: "0x%08X", v))
        case .boolean(let v): return leaf("Boolean", v ? "true" : "false")
        case .textString(let s): return leaf("TextString", s)
        case .byteString(let b): return leaf("ByteString", b.map { String(format: "%02x", $0) }.joined())
        case .dateTime(let v):
            // ISO 8601 for ordinary dates (years 1970–9999), the raw value in hex otherwise.
            if (0...253_402_300_799).contains(v) {
                return leaf("DateTime", Date(timeIntervalSince1970: TimeInterval(v)).formatted(.iso8601))
            }
            return leaf("DateTime", String(format: "0x%016llX", UInt64(bitPattern: v)))
        case .interval(let v): return leaf("Interval", String(v))
        case .dateTimeExtended(let v):
            return leaf("DateTimeExtended", String(format: "0x%016llX", UInt64(bitPattern: v)))
        }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
