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
    public let interesting: Set<UInt8>
    public let bodyCap: Int

    private var header: [UInt8] = []
    private var current: Seen?
    private var remaining = 0

    public init(maxMessageLength: Int, interesting: Set<UInt8>, bodyCap: Int = 1 << 20) {
        self.maxMessageLength = maxMessageLength
        self.interesting = interesting
        self.bodyCap = bodyCap
        header.reserveCapacity(5)
    }

    /// Feeds bytes; `seen` gets every frame completed by them. Throws on an impossible length (close the stream).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ seen: (Seen) -> Void) throws(PGWireError) {
        var index = 0
        let count = bytes.count
        while index < count {
            if var frame = current {
                let n = min(remaining, count - index)
                if interesting.contains(frame.type), frame.body.count < bodyCap {
                    let take = min(n, bodyCap - frame.body.count)
                    frame.body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
                }
                index += n
                remaining -= n
                if remaining == 0 {
                    current = nil
                    seen(frame)
                } else {
                    current = frame
                }
                continue
            }
            header.append(bytes[index])
            index += 1
            guard header.count == 5 else { continue }
            let length = Int(header[1]) << 24 | Int(header[2]) << 16 | Int(header[3]) << 8 | Int(header[4])
            let type = header[0]
            header.removeAll(keepingCapacity: true)
            guard length >= 4, length <= maxMessageLength else { throw .invalidLength(length, limit: maxMessageLength) }
            let frame = Seen(type: type, length: length - 4, body: [])
            if length == 4 {
                seen(frame)
            } else {
                current = frame
                remaining = length - 4
            }
        }
    }
}
