/// TTLV encoding (KMIP §9.1): big-endian, every value padded with zeros to a multiple of 8 bytes.
public enum TTLVEncoder {
    /// Encodes an item.
    public static func encode(_ item: TTLVItem) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        append(item, to: &out)
        return out
    }

    /// Appends the encoding of `item` to `out`.
    public static func append(_ item: TTLVItem, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: item.tag >> 16))
        out.append(UInt8(truncatingIfNeeded: item.tag >> 8))
        out.append(UInt8(truncatingIfNeeded: item.tag))
        out.append(item.value.type.rawValue)
        let lengthAt = out.count
        out += [0, 0, 0, 0]
        func be(_ v: UInt64, _ n: Int) {
            for i in stride(from: n - 1, through: 0, by: -1) {
                out.append(UInt8(truncatingIfNeeded: v >> (UInt64(i) * 8)))
            }
        }
        var length = 0
        switch item.value {
        case .structure(let children):
            let before = out.count
            for child in children { append(child, to: &out) }
            length = out.count - before
        case .integer(let v):
            be(UInt64(UInt32(bitPattern: v)), 4)
            length = 4
        case .enumeration(let v), .interval(let v):
            be(UInt64(v), 4)
            length = 4
        case .longInteger(let v), .dateTime(let v), .dateTimeExtended(let v):
            be(UInt64(bitPattern: v), 8)
            length = 8
        case .boolean(let v):
            be(v ? 1 : 0, 8)
            length = 8
        case .bigInteger(let bytes):
            // Sign-extend on the left to a multiple of 8 bytes.
            let padded = max(8, (bytes.count + 7) / 8 * 8)
            let fill: UInt8 = (bytes.first ?? 0) & 0x80 != 0 ? 0xFF : 0x00
            out += [UInt8](repeating: fill, count: padded - bytes.count)
            out += bytes
            length = padded
        case .textString(let s):
            let bytes = Array(s.utf8)
            out += bytes
            length = bytes.count
        case .byteString(let bytes):
            out += bytes
            length = bytes.count
        }
        out[lengthAt] = UInt8(truncatingIfNeeded: length >> 24)
        out[lengthAt + 1] = UInt8(truncatingIfNeeded: length >> 16)
        out[lengthAt + 2] = UInt8(truncatingIfNeeded: length >> 8)
        out[lengthAt + 3] = UInt8(truncatingIfNeeded: length)
        let pad = (8 - length % 8) % 8
        if pad > 0 { out += [UInt8](repeating: 0, count: pad) }
    }
}
