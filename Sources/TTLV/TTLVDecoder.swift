/// Strict TTLV decoding (KMIP §9.1): exact lengths per type, zero padding to 8 bytes, structures filled exactly,
/// a nesting limit and a size limit. Pure: bytes in, values out.
public struct TTLVDecoder: Sendable {
    /// The deepest structure nesting accepted (the request message itself is depth 1).
    public var maxDepth: Int
    /// The largest message accepted, header included.
    public var maxMessageSize: Int

    public init(maxDepth: Int = 32, maxMessageSize: Int = 1 << 20) {
        self.maxDepth = maxDepth
        self.maxMessageSize = maxMessageSize
    }

    /// Decodes exactly one item that spans all of `bytes`.
    public func decode(_ bytes: [UInt8]) throws -> TTLVItem {
        if bytes.count > maxMessageSize { throw TTLVError(.tooLarge, at: 0) }
        var offset = 0
        let item = try bytes.withUnsafeBufferPointer { try decodeItem($0, &offset, end: $0.count, depth: 1) }
        if offset != bytes.count { throw TTLVError(.trailingBytes, at: offset) }
        return item
    }

    /// The total encoded size (header + padded value) declared by the header at the start of `bytes`, or nil when
    /// fewer than 8 bytes are available. Used by framing.
    public static func frameLength(_ header: some Collection<UInt8>) -> Int? {
        guard header.count >= 8 else { return nil }
        var it = header.makeIterator()
        var h = [UInt8]()
        for _ in 0..<8 { if let b = it.next() { h.append(b) } }
        let type = h[3]
        let length = Int(h[4]) << 24 | Int(h[5]) << 16 | Int(h[6]) << 8 | Int(h[7])
        // Structures and fixed-size items are already multiples of 8; strings and big integers are padded.
        let padded = type == TTLVType.structure.rawValue ? length : (length + 7) / 8 * 8
        return 8 + padded
    }

    static func isValidTag(_ tag: UInt32) -> Bool {
        (0x42_0000...0x42_FFFF).contains(tag) || (0x54_0000...0x54_FFFF).contains(tag)
    }

    func decodeItem(_ b: UnsafeBufferPointer<UInt8>, _ offset: inout Int, end: Int, depth: Int) throws -> TTLVItem {
        let start = offset
        guard end - offset >= 8 else { throw TTLVError(.truncated, at: offset) }
        let tag = UInt32(b[offset]) << 16 | UInt32(b[offset + 1]) << 8 | UInt32(b[offset + 2])
        guard Self.isValidTag(tag) else { throw TTLVError(.invalidTag, at: start) }
        guard let type = TTLVType(rawValue: b[offset + 3]) else { throw TTLVError(.unknownType, at: start + 3) }
        let length = Int(b[offset + 4]) << 24 | Int(b[offset + 5]) << 16 | Int(b[offset + 6]) << 8 | Int(b[offset + 7])
        offset += 8
        func fixed(_ n: Int) throws {
            guard length == n else { throw TTLVError(.invalidLength, at: start + 4) }
        }
        func need(_ n: Int) throws {
            guard end - offset >= n else { throw TTLVError(.truncated, at: offset) }
        }
        func readUInt(_ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<n { v = v << 8 | UInt64(b[offset + i]) }
            return v
        }
        func checkPadding(_ from: Int, _ to: Int) throws {
            for i in from..<to where b[i] != 0 { throw TTLVError(.nonZeroPadding, at: i) }
        }
        let value: TTLVValue
        switch type {
        case .structure:
            guard depth < maxDepth else { throw TTLVError(.tooDeep, at: start) }
            guard length % 8 == 0 else { throw TTLVError(.invalidLength, at: start + 4) }
            try need(length)
            let structureEnd = offset + length
            var children: [TTLVItem] = []
            while offset < structureEnd {
                children.append(try decodeItem(b, &offset, end: structureEnd, depth: depth + 1))
            }
            if offset != structureEnd { throw TTLVError(.structureLengthMismatch, at: offset) }
            return TTLVItem(tag: tag, .structure(children))
        case .integer, .enumeration, .interval:
            try fixed(4)
            try need(8)
            let raw = UInt32(readUInt(4))
            try checkPadding(offset + 4, offset + 8)
            switch type {
            case .integer: value = .integer(Int32(bitPattern: raw))
            case .enumeration: value = .enumeration(raw)
            default: value = .interval(raw)
            }
            offset += 8
        case .longInteger, .dateTime, .dateTimeExtended:
            try fixed(8)
            try need(8)
            let raw = Int64(bitPattern: readUInt(8))
            value =
                type == .longInteger ? .longInteger(raw) : type == .dateTime ? .dateTime(raw) : .dateTimeExtended(raw)
            offset += 8
        case .boolean:
            try fixed(8)
            try need(8)
            let raw = readUInt(8)
            guard raw <= 1 else { throw TTLVError(.invalidBoolean, at: offset) }
            value = .boolean(raw == 1)
            offset += 8
        case .bigInteger:
            guard length > 0, length % 8 == 0 else { throw TTLVError(.invalidLength, at: start + 4) }
            try need(length)
            value = .bigInteger(Array(b[offset..<(offset + length)]))
            offset += length
        case .textString, .byteString:
            let padded = (length + 7) / 8 * 8
            try need(padded)
            let bytes = Array(b[offset..<(offset + length)])
            try checkPadding(offset + length, offset + padded)
            if type == .textString {
                guard let s = String(validating: bytes, as: UTF8.self) else {
                    throw TTLVError(.invalidUTF8, at: offset)
                }
                value = .textString(s)
            } else {
                value = .byteString(bytes)
            }
            offset += padded
        }
        return TTLVItem(tag: tag, value)
    }
}
