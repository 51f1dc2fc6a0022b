/// PostgreSQL frontend/backend protocol v3 framing (PostgreSQL documentation, "Frontend/Backend Protocol",
/// §55.7 Message Formats).
///
/// Every message after start-up is a type byte, an Int32 length that counts itself but not the type byte, and the
/// body. Start-up packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) have no type byte. The decoder
/// never trusts a length: below 4 (8 for start-up) or above the limit is an error, not a wait for more bytes (a
/// huge or wrapped length is how CVE-2024-27304 smuggled messages).
public struct PGFrame: Sendable, Hashable {
    /// The type byte; nil for a start-up packet.
    public var type: UInt8?
    public var body: [UInt8]

    public init(type: UInt8?, body: [UInt8]) {
        self.type = type
        self.body = body
    }

    /// The frame as it goes on the wire.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 5)
        if let type { out.append(type) }
        PGWriter.appendInt32(&out, Int32(truncatingIfNeeded: body.count + 4))
        out += body
        return out
    }
}

/// Why bytes could not be decoded. Messages are safe to send to a peer.
public enum PGWireError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A length field below the minimum or above the limit.
    case invalidLength(Int, limit: Int)
    /// A body that ends early or has bytes left over.
    case malformed(String)
    /// A start-up code this codec does not know (e.g. protocol 2).
    case unsupportedStartup(Int32)

    public var description: String {
        switch self {
        case .invalidLength(let n, let limit): return "invalid message length \(n) (allowed 4…\(limit))"
        case .malformed(let m): return "malformed message: \(m)"
        case .unsupportedStartup(let code): return "unsupported start-up code \(code)"
        }
    }
}

/// An incremental decoder: feed bytes as they arrive, take whole frames out.
public struct PGFrameDecoder: Sendable {
    /// Whether the next frame is a start-up packet (no type byte).
    public var expectStartup: Bool
    /// The largest body + length accepted for a typed message.
    public let maxMessageLength: Int
    /// PostgreSQL's own limit for start-up packets (MAX_STARTUP_PACKET_LENGTH).
    public static let maxStartupLength = 10_000

    private var buffer: [UInt8] = []
    private var start = 0

    public init(expectStartup: Bool, maxMessageLength: Int = 64 << 20) {
        self.expectStartup = expectStartup
        self.maxMessageLength = maxMessageLength
    }

    /// Bytes received but not yet returned as frames.
    public var buffered: Int { buffer.count - start }

    public mutating func feed(_ bytes: some Collection<UInt8>) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 1 << 16 && start * 2 > buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame, nil when more bytes are needed; throws on an invalid length (the stream is then
    /// unusable: close it).
    public mutating func next() throws -> PGFrame? {
        let available = buffer.count - start
        if expectStartup {
            guard available >= 4 else { return nil }
            let length = Int(PGReader.int32(buffer, at: start))
            guard length >= 8, length <= Self.maxStartupLength else {
                throw PGWireError.invalidLength(length, limit: Self.maxStartupLength)
            }
            guard available >= length else { return nil }
            let body = Array(buffer[(start + 4)..<(start + length)])
            start += length
            return PGFrame(type: nil, body: body)
        }
        guard available >= 5 else { return nil }
        let type = buffer[start]
        let length = Int(PGReader.int32(buffer, at: start + 1))
        guard length >= 4, length <= maxMessageLength else {
            throw PGWireError.invalidLength(length, limit: maxMessageLength)
        }
        guard available >= 1 + length else { return nil }
        let body = Array(buffer[(start + 5)..<(start + 1 + length)])
        start += 1 + length
        return PGFrame(type: type, body: body)
    }

    /// Takes whatever is buffered (used when a stream switches to TLS: nothing sent in clear before the switch may
    /// be interpreted after it, cf. CVE-2021-23214; a caller that finds bytes here must close the connection).
    public mutating func drain() -> [UInt8] {
        let rest = Array(buffer[start...])
        buffer.removeAll()
        start = 0
        return rest
    }
}

/// Reads protocol fields from a message body with bounds checks.
public struct PGReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset >= bytes.count }
    public var remaining: Int { bytes.count - offset }

    static func int32(_ b: [UInt8], at i: Int) -> Int32 {
        Int32(bitPattern: UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3]))
    }

    public mutating func byte() throws -> UInt8 {
        guard remaining >= 1 else { throw PGWireError.malformed("ends early") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func int16() throws -> Int16 {
        guard remaining >= 2 else { throw PGWireError.malformed("ends early") }
        defer { offset += 2 }
        return Int16(bitPattern: UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]))
    }

    public mutating func int32() throws -> Int32 {
        guard remaining >= 4 else { throw PGWireError.malformed("ends early") }
        defer { offset += 4 }
        return Self.int32(bytes, at: offset)
    }

    /// A NUL-terminated string (UTF-8 expected; invalid sequences are replaced).
    public mutating func cString() throws -> String {
        guard let end = bytes[offset...].firstIndex(of: 0) else { throw PGWireError.malformed("unterminated string") }
        defer { offset = end + 1 }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }

    public mutating func take(_ n: Int) throws -> [UInt8] {
        guard n >= 0, remaining >= n else { throw PGWireError.malformed("ends early") }
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    /// A non-negative count, at most `limit` (and at most what the remaining bytes could hold).
    public mutating func count16(limit: Int, minimumItemSize: Int) throws -> Int {
        let n = Int(try int16())
        guard n >= 0, n <= limit, n * minimumItemSize <= remaining else {
            throw PGWireError.malformed("bad count \(n)")
        }
        return n
    }

    public func expectEnd(_ what: String) throws {
        guard isAtEnd else { throw PGWireError.malformed("\(what) has \(remaining) extra bytes") }
    }
}

/// Builds message bodies.
public struct PGWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    static func appendInt32(_ out: inout [UInt8], _ v: Int32) {
        let u = UInt32(bitPattern: v)
        out += [UInt8(u >> 24), UInt8(u >> 16 & 0xff), UInt8(u >> 8 & 0xff), UInt8(u & 0xff)]
    }

    public mutating func byte(_ v: UInt8) { bytes.append(v) }
    public mutating func int16(_ v: Int16) {
        let u = UInt16(bitPattern: v)
        bytes += [UInt8(u >> 8), UInt8(u & 0xff)]
    }
    public mutating func int32(_ v: Int32) { Self.appendInt32(&bytes, v) }
    /// A string with its NUL terminator (embedded NULs are dropped: they cannot be represented).
    public mutating func cString(_ s: String) {
        bytes += s.utf8.filter { $0 != 0 }
        bytes.append(0)
    }
    public mutating func raw(_ v: some Collection<UInt8>) { bytes += v }
}
