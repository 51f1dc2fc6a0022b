/// Walks a relayed message stream (after start-up) without holding it back: it reads each frame header, enforces
/// the length limit (CVE-2024-27304), and hands over the bodies of the message types a recorder wants (up to a cap);
/// every other frame is only counted. The relay forwards the bytes themselves; this only watches them.
public struct PGFrameScanner: Sendable {
    /// A frame seen in the stream.
    public struct Seen: Sendable, Hashable {
        public var type: UInt8
        /// The whole body length.
        public var length: Int
        /// The body (up to `bodyCap` bytes) for types in `interesting`; empty otherwise.
        public var body: [UInt8]
        public var truncated: Bool { body.count < length }
    }

    public let maxMessageLength: Int
    public let bodyCap: Int
    /// The types whose bodies are kept, as a 256-bit map: the test runs once per frame on the relay's hot path.
    private let wanted: (UInt64, UInt64, UInt64, UInt64)

    private var header: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0)
    private var headerCount = 0
    private var current: Seen?
    private var remaining = 0

    public init(maxMessageLength: Int, interesting: Set<UInt8>, bodyCap: Int = 1 << 20) {
        self.maxMessageLength = maxMessageLength
        self.bodyCap = bodyCap
        var map: [UInt64] = [0, 0, 0, 0]
        for t in interesting { map[Int(t >> 6)] |= 1 << UInt64(t & 63) }
        wanted = (map[0], map[1], map[2], map[3])
    }

    /// Whether frames of this type have their bodies kept.
    public func wants(_ type: UInt8) -> Bool {
        let word: UInt64
        switch type >> 6 {
        case 0: word = wanted.0
        case 1: word = wanted.1
        case 2: word = wanted.2
        default: word = wanted.3
        }
        return word & (1 << UInt64(type & 63)) != 0
    }

    /// Feeds bytes; `seen` gets every frame completed by them. Throws on an impossible length (close the stream).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ seen: (Seen) -> Void) throws(PGWireError) {
        var index = 0
        while let frame = try next(bytes, from: &index) { seen(frame) }
    }

    /// The next frame completed by `bytes[index...]`, advancing `index`; nil when they are used up (what they hold of
    /// an unfinished frame is kept for the next call). Throws on an impossible length (close the stream).
    public mutating func next(_ bytes: UnsafeRawBufferPointer, from index: inout Int) throws(PGWireError) -> Seen? {
        let count = bytes.count
        while index < count {
            if let type = current?.type {
                let n = min(remaining, count - index)
                let have = current?.body.count ?? 0
                if wants(type), have < bodyCap {
                    let take = min(n, bodyCap - have)
                    current?.body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
                }
                index += n
                remaining -= n
                if remaining == 0 {
                    defer { current = nil }
                    return current
                }
                continue
            }
            let b = bytes[index]
            index += 1
            switch headerCount {
            case 0: header.0 = b
            case 1: header.1 = b
            case 2: header.2 = b
            case 3: header.3 = b
            default: header.4 = b
            }
            headerCount += 1
            guard headerCount == 5 else { continue }
            headerCount = 0
            let length = Int(header.1) << 24 | Int(header.2) << 16 | Int(header.3) << 8 | Int(header.4)
            guard length >= 4, length <= maxMessageLength else { throw .invalidLength(length, limit: maxMessageLength) }
            var frame = Seen(type: header.0, length: length - 4, body: [])
            if length == 4 { return frame }
            // A frame wholly inside these bytes is copied in one piece.
            if count - index >= length - 4 {
                if wants(frame.type) {
                    let take = min(length - 4, bodyCap)
                    frame.body = Array(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
                }
                index += length - 4
                return frame
            }
            if wants(frame.type) { frame.body.reserveCapacity(min(length - 4, bodyCap)) }
            current = frame
            remaining = length - 4
        }
        return nil
    }
}
