import Foundation

/// A hand-written JSON writer for recording events: the proxy appends one event per protocol message it relays, and
/// Foundation's `JSONEncoder` cost more CPU per query than the rest of the relay. The output is what `JSONEncoder`
/// with sorted keys would decode to the same value (the tests check that round trip).
extension PAMRecordingEvent {
    /// Appends this event as one line of JSON (no trailing newline), keys sorted, `nil` fields left out.
    public func appendJSON(to out: inout [UInt8]) {
        var first = true
        func key(_ name: StaticString) {
            out.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
            first = false
            out.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(UInt8(ascii: "\""))
            out.append(UInt8(ascii: ":"))
        }
        if let bytes {
            key("bytes")
            Self.append(integer: bytes, to: &out)
        }
        if let detail {
            key("detail")
            out.append(UInt8(ascii: "{"))
            for (i, k) in detail.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.append(string: k, to: &out)
                out.append(UInt8(ascii: ":"))
                Self.append(string: detail[k] ?? "", to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        if let formats {
            key("formats")
            Self.append(array: formats.map(Int64.init), to: &out)
        }
        key("kind")
        Self.append(string: kind, to: &out)
        if let name {
            key("name")
            Self.append(string: name, to: &out)
        }
        if let parameterTypes {
            key("parameterTypes")
            Self.append(array: parameterTypes.map(Int64.init), to: &out)
        }
        if let parameters {
            key("parameters")
            out.append(UInt8(ascii: "["))
            for (i, p) in parameters.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if let p { Self.append(string: p, to: &out) } else { out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C]) }
            }
            out.append(UInt8(ascii: "]"))
        }
        if let rows {
            key("rows")
            Self.append(integer: rows, to: &out)
        }
        if let sqlState {
            key("sqlState")
            Self.append(string: sqlState, to: &out)
        }
        if let statement {
            key("statement")
            Self.append(string: statement, to: &out)
        }
        key("t")
        Self.append(seconds: t, to: &out)
        if let text {
            key("text")
            Self.append(string: text, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    static func append(integer: Int64, to out: inout [UInt8]) {
        if integer < 0 {
            guard integer != .min else { return out.append(contentsOf: Array(String(integer).utf8)) }
            out.append(UInt8(ascii: "-"))
        }
        var v = integer.magnitude
        // At most 19 digits, written backwards into a small stack buffer.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var i = 20
            repeat {
                i -= 1
                buffer[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            } while v > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[i..<20]))
        }
    }

    /// A time in seconds: whole milliseconds (what the recorder takes) without a trip through `String`, in the
    /// digits Swift prints for that `Double` (`12.345`, `3.0`); anything else through `description`.
    static func append(seconds t: Double, to out: inout [UInt8]) {
        guard t.isFinite else { return out.append(UInt8(ascii: "0")) }
        let millis = (t * 1000).rounded()
        guard millis >= 0, millis < 1e15, millis / 1000 == t else {
            return out.append(contentsOf: Array(t.description.utf8))
        }
        let m = Int64(millis)
        append(integer: m / 1000, to: &out)
        var fraction = m % 1000
        out.append(UInt8(ascii: "."))
        guard fraction > 0 else { return out.append(UInt8(ascii: "0")) }
        var scale: Int64 = 100
        while fraction > 0 {
            out.append(UInt8(ascii: "0") + UInt8(fraction / scale))
            fraction %= scale
            scale /= 10
        }
    }

    static func append(array: [Int64], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (i, v) in array.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            append(integer: v, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    static func append(string: String, to out: inout [UInt8]) { JSONText.append(string: string, to: &out) }
}

/// Hand-written JSON for the hot paths (recording events, audit events): strings escaped exactly as Foundation's
/// `JSONEncoder` with `.withoutEscapingSlashes` escapes them, so both produce the same bytes.
public enum JSONText {
    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Extra output bytes per input byte when escaped: 0 (copied as is), 1 (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
    /// `\f`) or 5 (`\u00XX`).
    static let escapeExtra: [UInt8] = (0..<256).map { b in
        switch b {
        case 0x22, 0x5C, 0x0A, 0x0D, 0x09, 0x08, 0x0C: return 1
        case 0..<0x20: return 5
        default: return 0
        }
    }

    /// A JSON string: `"` and `\` escaped, `\n \r \t \b \f`, other control characters as `\u00XX`, everything
    /// else as UTF-8. One pass counts what needs escaping (a table lookup per byte); a string with nothing to escape
    /// is then copied whole, and any other one is written in a second pass straight into its exact-size buffer.
    /// (Appending run by run cost more than the bytes for JSON inside JSON, where every fourth byte is a quote.)
    public static func append(string: String, to out: inout [UInt8]) {
        var s = string
        s.withUTF8 { bytes in
            var extra = 0
            escapeExtra.withUnsafeBufferPointer { table in
                for b in bytes { extra &+= Int(table[Int(b)]) }
            }
            // No reserveCapacity per string: it allocates exactly what is asked (not geometrically), so a call per
            // string would copy a long document over and over; appending grows the array geometrically.
            out.append(UInt8(ascii: "\""))
            guard extra > 0 else {
                out.append(contentsOf: bytes)
                out.append(UInt8(ascii: "\""))
                return
            }
            let escaped = [UInt8](unsafeUninitializedCapacity: bytes.count + extra) { dst, initialized in
                escapeExtra.withUnsafeBufferPointer { table in
                    hexDigits.withUnsafeBufferPointer { hex in
                        var j = 0
                        for b in bytes {
                            if table[Int(b)] == 0 {
                                dst[j] = b
                                j &+= 1
                                continue
                            }
                            dst[j] = UInt8(ascii: "\\")
                            switch b {
                            case 0x22, 0x5C: dst[j + 1] = b
                            case 0x0A: dst[j + 1] = UInt8(ascii: "n")
                            case 0x0D: dst[j + 1] = UInt8(ascii: "r")
                            case 0x09: dst[j + 1] = UInt8(ascii: "t")
                            case 0x08: dst[j + 1] = UInt8(ascii: "b")
                            case 0x0C: dst[j + 1] = UInt8(ascii: "f")
                            default:
                                dst[j + 1] = UInt8(ascii: "u")
                                dst[j + 2] = UInt8(ascii: "0")
                                dst[j + 3] = UInt8(ascii: "0")
                                dst[j + 4] = hex[Int(b >> 4)]
                                dst[j + 5] = hex[Int(b & 0xF)]
                                j &+= 4
                            }
                            j &+= 2
                        }
                        initialized = j
                    }
                }
            }
            out.append(contentsOf: escaped)
            out.append(UInt8(ascii: "\""))
        }
    }

    /// `{"k":"v",…}` with the keys sorted (as `JSONEncoder` with `.sortedKeys` orders them).
    public static func append(object: [String: String], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, key) in object.keys.sorted(by: sortedKeysOrder).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            append(string: key, to: &out)
            out.append(UInt8(ascii: ":"))
            append(string: object[key] ?? "", to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// A JSON document from property-list-like values (`String`, `Bool`, integers, `Double`, `[String: Any]`,
    /// `[Any]`, `nil`/`NSNull` as null), objects with sorted keys, slashes unescaped: what
    /// `JSONSerialization.data(withJSONObject:options: [.sortedKeys, .withoutEscapingSlashes])` writes, without
    /// its cost (it was a tenth of an ACME request's CPU). Other values are written as null.
    public static func document(_ value: Any) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        append(any: value, to: &out)
        return out
    }

    public static func append(any value: Any, to out: inout [UInt8]) {
        switch value {
        case let s as String: append(string: s, to: &out)
        case let b as Bool: out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case let i as Int: out.append(contentsOf: Array(String(i).utf8))
        case let i as Int64: out.append(contentsOf: Array(String(i).utf8))
        case let i as Int32: out.append(contentsOf: Array(String(i).utf8))
        case let i as UInt64: out.append(contentsOf: Array(String(i).utf8))
        case let d as Double:
            if d.isFinite, d == d.rounded(), abs(d) < 1e15 {
                out.append(contentsOf: Array(String(Int64(d)).utf8))
            } else if d.isFinite {
                out.append(contentsOf: Array("\(d)".utf8))
            } else {
                out.append(contentsOf: Array("null".utf8))
            }
        case let o as [String: Any]:
            out.append(UInt8(ascii: "{"))
            for (i, key) in o.keys.sorted(by: sortedKeysOrder).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                append(string: key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(any: o[key] as Any, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let a as [Any]:
            out.append(UInt8(ascii: "["))
            for (i, element) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                append(any: element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        default:
            // An optional holding a value is that value; anything else (nil, NSNull, other types) is null.
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .optional, let inner = mirror.children.first?.value {
                append(any: inner, to: &out)
            } else {
                out.append(contentsOf: Array("null".utf8))
            }
        }
    }

    /// The order of `.sortedKeys`: Foundation compares keys with `String`'s `<` on their UTF-8 bytes.
    static func sortedKeysOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}
