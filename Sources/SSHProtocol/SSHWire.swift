/// Errors of the SSH wire codecs: the input is shorter than it claims or breaks a format rule.
public enum SSHWireError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated
    case invalid(String)

    public var description: String {
        switch self {
        case .truncated: return "truncated SSH encoding"
        case .invalid(let why): return why
        }
    }
}

/// Builds the SSH binary encoding (RFC 4251 §5): uint32/uint64 big-endian, length-prefixed strings, mpints.
public struct SSHWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func byte(_ v: UInt8) { bytes.append(v) }
    public mutating func uint32(_ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift)))
        }
    }
    public mutating func uint64(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift)))
        }
    }
    public mutating func string(_ v: some Collection<UInt8>) {
        uint32(UInt32(v.count))
        bytes.append(contentsOf: v)
    }
    public mutating func string(_ v: String) { string(Array(v.utf8)) }
    /// An unsigned big-endian magnitude as an RFC 4251 mpint: no superfluous leading zeros, a zero byte in front
    /// when the high bit is set, zero as the empty string.
    public mutating func mpint(_ magnitude: some Collection<UInt8>) {
        var m = Array(magnitude.drop { $0 == 0 })
        if let first = m.first, first & 0x80 != 0 { m.insert(0, at: 0) }
        string(m)
    }
    public mutating func raw(_ v: some Collection<UInt8>) { bytes.append(contentsOf: v) }
}

/// Reads the SSH binary encoding; every read checks the remaining length (no trap on hostile input).
public struct SSHReader: Sendable {
    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
    }

    public var isAtEnd: Bool { offset >= bytes.count }
    public var remaining: Int { bytes.count - offset }

    public mutating func byte() throws -> UInt8 {
        guard remaining >= 1 else { throw SSHWireError.truncated }
        defer { offset += 1 }
        return bytes[offset]
    }
    public mutating func uint32() throws -> UInt32 {
        guard remaining >= 4 else { throw SSHWireError.truncated }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return v
    }
    public mutating func uint64() throws -> UInt64 {
        guard remaining >= 8 else { throw SSHWireError.truncated }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return v
    }
    public mutating func string() throws -> [UInt8] {
        let n = Int(try uint32())
        guard remaining >= n else { throw SSHWireError.truncated }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }
    /// A string that must be UTF-8 text.
    public mutating func text() throws -> String {
        let raw = try string()
        guard let s = String(validating: raw, as: UTF8.self) else { throw SSHWireError.invalid("a name is not UTF-8") }
        return s
    }
    /// An mpint's magnitude (unsigned, big-endian, no leading zeros); negative values are refused.
    public mutating func mpint() throws -> [UInt8] {
        let raw = try string()
        if let first = raw.first, first & 0x80 != 0 { throw SSHWireError.invalid("negative mpint") }
        return Array(raw.drop { $0 == 0 })
    }
}

/// Base64 (RFC 4648 with padding) without Foundation, as used in authorized_keys and certificate files.
public enum SSHBase64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [
                alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)],
                alphabet[Int(n & 63)],
            ]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [
                alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "="),
            ]
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            case UInt8(ascii: "="):
                padding += 1
                continue
            default: return nil
            }
            if padding > 0 { return nil }
            values.append(v)
        }
        guard padding <= 2, (values.count + padding) % 4 == 0, values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var i = 0
        while i < values.count {
            let chunk = values[i..<min(i + 4, values.count)]
            var n: UInt32 = 0
            for (k, v) in chunk.enumerated() { n |= UInt32(v) << UInt32(18 - 6 * k) }
            out.append(UInt8(n >> 16 & 0xff))
            if chunk.count > 2 { out.append(UInt8(n >> 8 & 0xff)) }
            if chunk.count > 3 { out.append(UInt8(n & 0xff)) }
            i += 4
        }
        return out
    }
}
