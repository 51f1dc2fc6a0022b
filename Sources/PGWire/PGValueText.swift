/// Renders a bound parameter (a Bind value) as the text PostgreSQL itself would print for it, for session replay.
/// Pure: bytes and the type's OID in, text out. Binary-format values of the common types are decoded (integers,
/// booleans, floats, numeric, uuid, date, timestamp, text types); bytea and any type not known here are shown as
/// `\x` hex, the way PostgreSQL shows bytea. Text-format values are the text itself (hex when not UTF-8).
/// Hand-written: the PostgreSQL binary formats are small and fixed, and postgres-nio's decoders need its whole
/// connection stack.
public enum PGValueText {
    /// Type OIDs from PostgreSQL's `pg_type.dat`.
    public enum OID {
        public static let bool: Int32 = 16, bytea: Int32 = 17, name: Int32 = 19, int8: Int32 = 20, int2: Int32 = 21
        public static let int4: Int32 = 23, text: Int32 = 25, oid: Int32 = 26, json: Int32 = 114, float4: Int32 = 700
        public static let float8: Int32 = 701, bpchar: Int32 = 1042, varchar: Int32 = 1043, date: Int32 = 1082
        public static let timestamp: Int32 = 1114, timestamptz: Int32 = 1184, numeric: Int32 = 1700, uuid: Int32 = 2950
        public static let jsonb: Int32 = 3802
    }

    /// The value as text; nil stays nil (SQL NULL).
    public static func render(_ value: [UInt8]?, oid: Int32, binary: Bool) -> String? {
        guard let value else { return nil }
        if !binary {
            return oid == OID.bytea ? (String(validating: value, as: UTF8.self) ?? hex(value)) : utf8OrHex(value)
        }
        return decodeBinary(value, oid: oid) ?? hex(value)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 2 + bytes.count * 2)
        out[0] = UInt8(ascii: "\\")
        out[1] = UInt8(ascii: "x")
        for (i, b) in bytes.enumerated() {
            out[2 + 2 * i] = digits[Int(b >> 4)]
            out[3 + 2 * i] = digits[Int(b & 15)]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func utf8OrHex(_ bytes: [UInt8]) -> String { String(validating: bytes, as: UTF8.self) ?? hex(bytes) }

    static func integer(_ bytes: [UInt8]) -> Int64 {
        var v: Int64 = (bytes.first ?? 0) & 0x80 != 0 ? -1 : 0
        for b in bytes { v = v << 8 | Int64(b) }
        return v
    }

    static func unsigned(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }

    static func decodeBinary(_ v: [UInt8], oid: Int32) -> String? {
        switch oid {
        case OID.bool: return v.count == 1 ? (v[0] != 0 ? "true" : "false") : nil
        case OID.int2: return v.count == 2 ? String(integer(v)) : nil
        case OID.int4: return v.count == 4 ? String(integer(v)) : nil
        case OID.int8: return v.count == 8 ? String(integer(v)) : nil
        case OID.oid: return v.count == 4 ? String(unsigned(v[...])) : nil
        case OID.float4: return v.count == 4 ? String(Float(bitPattern: UInt32(unsigned(v[...])))) : nil
        case OID.float8: return v.count == 8 ? String(Double(bitPattern: unsigned(v[...]))) : nil
        case OID.text, OID.varchar, OID.bpchar, OID.name, OID.json: return String(validating: v, as: UTF8.self)
        case OID.jsonb: return v.first == 1 ? String(validating: v.dropFirst(), as: UTF8.self) : nil
        case OID.uuid: return v.count == 16 ? uuid(v) : nil
        case OID.date: return v.count == 4 ? date(days: integer(v)) : nil
        case OID.timestamp, OID.timestamptz:
            guard v.count == 8 else { return nil }
            return timestamp(micros: integer(v), zone: oid == OID.timestamptz)
        case OID.numeric: return numeric(v)
        default: return nil
        }
    }

    static func uuid(_ v: [UInt8]) -> String {
        let h = hex(v).dropFirst(2)
        var out = ""
        for (i, c) in h.enumerated() {
            if [8, 12, 16, 20].contains(i) { out.append("-") }
            out.append(c)
        }
        return out
    }

    /// Days since 2000-01-01 → `YYYY-MM-DD` (proleptic Gregorian, as PostgreSQL prints dates).
    static func date(days: Int64) -> String {
        if days == Int64(Int32.max) { return "infinity" }
        if days == Int64(Int32.min) { return "-infinity" }
        // Howard Hinnant's civil_from_days, from 1970-01-01 (2000-01-01 is day 10957).
        let z = days + 10957 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        if y > 0 { return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))" }
        return "\(pad(1 - y, 4))-\(pad(m, 2))-\(pad(d, 2)) BC"
    }

    /// Microseconds since 2000-01-01 00:00 → `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC, `+00` for timestamptz).
    static func timestamp(micros: Int64, zone: Bool) -> String {
        if micros == Int64.max { return "infinity" }
        if micros == Int64.min { return "-infinity" }
        let perDay: Int64 = 86_400_000_000
        var days = micros / perDay
        var rest = micros % perDay
        if rest < 0 {
            rest += perDay
            days -= 1
        }
        let seconds = rest / 1_000_000
        let fraction = rest % 1_000_000
        var text = date(days: days)
        let bc = text.hasSuffix(" BC")
        if bc { text.removeLast(3) }
        text += " \(pad(seconds / 3600, 2)):\(pad(seconds / 60 % 60, 2)):\(pad(seconds % 60, 2))"
        if fraction != 0 {
            var f = pad(fraction, 6)
            while f.hasSuffix("0") { f.removeLast() }
            text += "." + f
        }
        if zone { text += "+00" }
        return bc ? text + " BC" : text
    }

    static func pad(_ n: Int64, _ width: Int) -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// The binary numeric: ndigits, weight, sign, dscale (int16 each), then base-10000 digits.
    static func numeric(_ v: [UInt8]) -> String? {
        guard v.count >= 8 else { return nil }
        let ndigits = Int(unsigned(v[0..<2]))
        let weight = Int(Int16(bitPattern: UInt16(unsigned(v[2..<4]))))
        let sign = unsigned(v[4..<6])
        let dscale = Int(unsigned(v[6..<8]))
        guard v.count == 8 + 2 * ndigits, dscale <= 16383 else { return nil }
        switch sign {
        case 0xC000: return "NaN"
        case 0xD000: return "Infinity"
        case 0xF000: return "-Infinity"
        case 0x0000, 0x4000: break
        default: return nil
        }
        var digits: [Int] = []
        for i in 0..<ndigits {
            let d = Int(unsigned(v[(8 + 2 * i)..<(10 + 2 * i)]))
            guard d < 10000 else { return nil }
            digits.append(d)
        }
        // Integer part: base-10000 groups 0...weight; fraction: the groups after, to dscale decimal digits.
        var integerPart = ""
        if weight < 0 {
            integerPart = "0"
        } else {
            for g in 0...weight {
                let d = g < digits.count ? digits[g] : 0
                integerPart += g == 0 ? String(d) : pad(Int64(d), 4)
            }
        }
        var fraction = ""
        if dscale > 0 {
            var g = weight + 1
            while fraction.count < dscale {
                let d = g >= 0 && g < digits.count ? digits[g] : 0
                fraction += pad(Int64(d), 4)
                g += 1
            }
            fraction = String(fraction.prefix(dscale))
        }
        let body = fraction.isEmpty ? integerPart : integerPart + "." + fraction
        return sign == 0x4000 ? "-" + body : body
    }
}
