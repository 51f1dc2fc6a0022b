/// KMIP item types (KMIP 1.x/2.x §9.1.1.2 "Item Type").
public enum TTLVType: UInt8, Sendable, Hashable, CaseIterable {
    case structure = 0x01
    case integer = 0x02
    case longInteger = 0x03
    case bigInteger = 0x04
    case enumeration = 0x05
    case boolean = 0x06
    case textString = 0x07
    case byteString = 0x08
    case dateTime = 0x09
    case interval = 0x0A
    /// KMIP 2.0 and later.
    case dateTimeExtended = 0x0B
}

/// The value of one TTLV item.
public enum TTLVValue: Sendable, Hashable {
    case structure([TTLVItem])
    /// 32-bit signed.
    case integer(Int32)
    /// 64-bit signed.
    case longInteger(Int64)
    /// Two's complement, big-endian, as on the wire (a multiple of 8 bytes once encoded).
    case bigInteger([UInt8])
    case enumeration(UInt32)
    case boolean(Bool)
    case textString(String)
    case byteString([UInt8])
    /// POSIX time in seconds.
    case dateTime(Int64)
    /// Seconds, unsigned 32-bit.
    case interval(UInt32)
    /// POSIX time in microseconds (KMIP 2.0+).
    case dateTimeExtended(Int64)

    /// The item type this value encodes as.
    public var type: TTLVType {
        switch self {
        case .structure: return .structure
        case .integer: return .integer
        case .longInteger: return .longInteger
        case .bigInteger: return .bigInteger
        case .enumeration: return .enumeration
        case .boolean: return .boolean
        case .textString: return .textString
        case .byteString: return .byteString
        case .dateTime: return .dateTime
        case .interval: return .interval
        case .dateTimeExtended: return .dateTimeExtended
        }
    }
}

/// One Tag-Type-Length-Value item (KMIP §9.1). Tags are 3 bytes; KMIP-defined tags are 0x42xxxx, extensions
/// 0x54xxxx.
public struct TTLVItem: Sendable, Hashable {
    public var tag: UInt32
    public var value: TTLVValue

    public init(tag: UInt32, _ value: TTLVValue) {
        self.tag = tag
        self.value = value
    }

    /// The children of a structure (empty for other types).
    public var children: [TTLVItem] {
        if case .structure(let c) = value { return c }
        return []
    }

    /// The first child with `tag`.
    public func child(_ tag: UInt32) -> TTLVItem? { children.first { $0.tag == tag } }

    /// Every child with `tag`.
    public func children(_ tag: UInt32) -> [TTLVItem] { children.filter { $0.tag == tag } }
}
