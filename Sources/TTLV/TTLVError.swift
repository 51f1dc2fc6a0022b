/// Why bytes are not valid TTLV. Carries the byte offset where the problem was found.
public struct TTLVError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// Fewer bytes than the header or the declared length needs.
        case truncated
        /// A length that does not suit its type (e.g. an Integer not 4 bytes long).
        case invalidLength
        /// Padding bytes that are not zero.
        case nonZeroPadding
        /// An item type byte this version does not define.
        case unknownType
        /// A structure's children do not fill its declared length exactly.
        case structureLengthMismatch
        /// Structures nested deeper than the limit.
        case tooDeep
        /// The message is larger than the configured maximum.
        case tooLarge
        /// A Text String that is not UTF-8.
        case invalidUTF8
        /// A Boolean other than 0 or 1.
        case invalidBoolean
        /// Bytes after the top-level item.
        case trailingBytes
        /// A tag outside 0x420000–0x42FFFF and 0x540000–0x54FFFF.
        case invalidTag
    }

    public var kind: Kind
    public var offset: Int

    public init(_ kind: Kind, at offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String { "TTLV \(kind.rawValue) at byte \(offset)" }
}
