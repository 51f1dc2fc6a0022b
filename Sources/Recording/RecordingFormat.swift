import Crypto
import Foundation

/// The encrypted, append-only session recording container (`*.ghrec`).
///
/// ```
/// magic "GHREC001" | u32 header length | header JSON {"v":1,"session":…,"created":…}
/// record*:  0x01 | u64 index | u32 length | AES-256-GCM ciphertext ‖ tag      (a chunk)
///           0x02 | u32 length | manifest JSON | u16 length | Ed25519 signature  (once, at close)
/// ```
/// Each chunk is sealed with the session's own data key; the nonce is the chunk index and the associated data binds
/// the session id and the index, so reordered, dropped or spliced chunks (from another session) fail to open. A hash
/// chain runs over the header and every chunk record; the manifest states the chunk count and the chain's last value
/// and is signed by the appliance. A file without a manifest (the writer was killed) is readable up to its last
/// complete chunk and reported as incomplete.
public enum RecordingFormat {
    public static let magic = Array("GHREC001".utf8)
    static let aadPrefix = Array("gatehouse-recording-v1\0".utf8)
    static let manifestPrefix = Array("gatehouse-recording-manifest-v1\0".utf8)
    /// The largest chunk a reader accepts (the writer seals at 64 KiB).
    public static let maxChunk = 16 << 20

    static func nonce(_ index: UInt64) throws -> AES.GCM.Nonce {
        var bytes = [UInt8](repeating: 0, count: 4)
        withUnsafeBytes(of: index.bigEndian) { bytes += $0 }
        return try AES.GCM.Nonce(data: bytes)
    }

    static func aad(_ session: String, _ index: UInt64) -> [UInt8] {
        var a = aadPrefix + Array(session.utf8) + [0]
        withUnsafeBytes(of: index.bigEndian) { a += $0 }
        return a
    }

    static func be32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(v).bigEndian) { Array($0) } }
    static func be64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

    /// The bytes the appliance signs for a manifest.
    public static func signedManifestBytes(_ manifest: [UInt8]) -> [UInt8] { manifestPrefix + manifest }
}

/// What the manifest at the end of a recording states.
public struct RecordingManifest: Codable, Sendable, Hashable {
    public var session: String
    public var chunks: UInt64
    /// Hex SHA-256 chain over the header and every chunk record.
    public var chain: String
    public var endedAt: Date
    public var endReason: String
    public init(session: String, chunks: UInt64, chain: String, endedAt: Date, endReason: String) {
        self.session = session
        self.chunks = chunks
        self.chain = chain
        self.endedAt = endedAt
        self.endReason = endReason
    }
}

/// Builds a recording: `start` gives the header bytes, `seal` turns plaintext into a chunk record, `finish` the
/// manifest record (with the signature the caller obtained). Pure: the caller writes the bytes where it wants.
public struct RecordingEncoder: Sendable {
    public let session: String
    let key: SymmetricKey
    public private(set) var chunks: UInt64 = 0
    var chain: [UInt8]

    public init(session: String, key: [UInt8], created: Date = Date()) {
        self.session = session
        self.key = SymmetricKey(data: key)
        self.chain = []
        self.header = []
        let json = (try? JSONEncoder.recording.encode(Header(v: 1, session: session, created: created))) ?? Data()
        header = RecordingFormat.magic + RecordingFormat.be32(json.count) + Array(json)
        chain = Array(SHA256.hash(data: header))
    }

    struct Header: Codable {
        var v: Int
        var session: String
        var created: Date
    }

    /// The file's first bytes.
    public private(set) var header: [UInt8]

    /// Seals one chunk of plaintext events.
    public mutating func seal(_ plaintext: [UInt8]) throws -> [UInt8] {
        let index = chunks
        let box = try AES.GCM.seal(
            plaintext, using: key, nonce: try RecordingFormat.nonce(index),
            authenticating: RecordingFormat.aad(session, index))
        var record: [UInt8] = [1]
        record.reserveCapacity(13 + plaintext.count + 16)
        record += RecordingFormat.be64(index)
        record += RecordingFormat.be32(box.ciphertext.count + box.tag.count)
        record += box.ciphertext
        record += box.tag
        var hasher = SHA256()
        hasher.update(data: chain)
        hasher.update(data: record)
        chain = Array(hasher.finalize())
        chunks += 1
        return record
    }

    /// The chain hash over the header and every chunk so far, in hex (what the manifest states).
    public var chainHex: String { chain.map { String(format: "%02x", $0) }.joined() }

    /// The manifest to sign (its bytes), for the current state.
    public func manifest(endedAt: Date, endReason: String) -> [UInt8] {
        let m = RecordingManifest(
            session: session, chunks: chunks, chain: chainHex, endedAt: endedAt, endReason: endReason)
        return Array((try? JSONEncoder.recording.encode(m)) ?? Data())
    }

    /// The manifest record with its signature.
    public static func manifestRecord(_ manifest: [UInt8], signature: [UInt8]) -> [UInt8] {
        [2] + RecordingFormat.be32(manifest.count) + manifest
            + withUnsafeBytes(of: UInt16(signature.count).bigEndian) { Array($0) } + signature
    }
}

/// Reads and checks a recording.
public struct RecordingDecoder {
    public enum Integrity: Sendable, Hashable {
        /// Every chunk opened, and the signed manifest matches them.
        case complete(RecordingManifest)
        /// Every chunk present opened, but there is no manifest (the writer stopped before closing).
        case incomplete(String)
        /// Something was changed, removed, reordered or spliced; the chunks before the damage are returned.
        case tampered(String)
    }

    public struct Result: Sendable {
        public var session: String
        public var chunks: [[UInt8]]
        public var integrity: Integrity
    }

    /// Opens `file` with the session's key. `verify` checks the manifest's signature (the bytes it gets are
    /// `RecordingFormat.signedManifestBytes`). Throws only when the header itself is unreadable.
    public static func read(_ file: [UInt8], expectedSession: String, key: [UInt8], verify: ([UInt8], [UInt8]) -> Bool)
        throws -> Result
    {
        var r = Cursor(file)
        guard r.take(8) == RecordingFormat.magic, let headerLength = r.u32(), headerLength <= 4096,
            let headerJSON = r.take(headerLength),
            let header = try? JSONDecoder.recording.decode(RecordingEncoder.Header.self, from: Data(headerJSON)),
            header.v == 1
        else { throw RecordingError("not a Gatehouse recording (bad header)") }
        guard header.session == expectedSession else {
            return Result(
                session: header.session, chunks: [],
                integrity: .tampered("the file belongs to session \(header.session)"))
        }
        let symmetric = SymmetricKey(data: key)
        var chain = Array(SHA256.hash(data: file[0..<r.offset]))
        var chunks: [[UInt8]] = []
        while !r.atEnd {
            let recordStart = r.offset
            guard let kind = r.byte() else { break }
            switch kind {
            case 1:
                guard let index = r.u64(), let length = r.u32() else {
                    return Result(
                        session: header.session, chunks: chunks,
                        integrity: .incomplete("the last chunk is cut short (the writer stopped mid-write)"))
                }
                // A writer never produces a length outside these bounds: a changed length field is tampering.
                guard length >= 16, length <= RecordingFormat.maxChunk + 16 else {
                    return Result(
                        session: header.session, chunks: chunks,
                        integrity: .tampered("chunk \(chunks.count) has an impossible length (\(length) bytes)"))
                }
                guard let body = r.take(length) else {
                    return Result(
                        session: header.session, chunks: chunks,
                        integrity: .incomplete("the last chunk is cut short (the writer stopped mid-write)"))
                }
                guard index == UInt64(chunks.count) else {
                    return Result(
                        session: header.session, chunks: chunks,
                        integrity: .tampered("chunk \(chunks.count) is missing or out of order (found index \(index))"))
                }
                do {
                    let box = try AES.GCM.SealedBox(
                        nonce: try RecordingFormat.nonce(index), ciphertext: body.dropLast(16), tag: body.suffix(16))
                    chunks.append(
                        Array(
                            try AES.GCM.open(
                                box, using: symmetric, authenticating: RecordingFormat.aad(expectedSession, index))))
                } catch {
                    return Result(
                        session: header.session, chunks: chunks,
                        integrity: .tampered("chunk \(index) fails authentication"))
                }
                chain = Array(SHA256.hash(data: chain + file[recordStart..<r.offset]))
            case 2:
                guard let length = r.u32(), length <= 65536, let manifestBytes = r.take(length),
                    let sigLength = r.u16(),
                    let signature = r.take(sigLength), r.atEnd
                else {
                    return Result(
                        session: header.session, chunks: chunks,
                        integrity: .tampered("the manifest is malformed or followed by data"))
                }
                guard verify(RecordingFormat.signedManifestBytes(manifestBytes), signature) else {
                    return Result(
                        session: header.session, chunks: chunks,
                        integrity: .tampered("the manifest's signature does not verify"))
                }
                guard
                    let manifest = try? JSONDecoder.recording.decode(RecordingManifest.self, from: Data(manifestBytes))
                else {
                    return Result(
                        session: header.session, chunks: chunks, integrity: .tampered("the manifest is unreadable"))
                }
                let hex = chain.map { String(format: "%02x", $0) }.joined()
                guard manifest.session == expectedSession, manifest.chunks == UInt64(chunks.count),
                    manifest.chain == hex
                else {
                    return Result(
                        session: header.session, chunks: chunks,
                        integrity: .tampered(
                            "the chunks do not match the signed manifest (\(manifest.chunks) chunks signed, \(chunks.count) present)"
                        ))
                }
                return Result(session: header.session, chunks: chunks, integrity: .complete(manifest))
            default:
                return Result(
                    session: header.session, chunks: chunks,
                    integrity: .tampered("unknown record type \(kind) at byte \(recordStart)"))
            }
        }
        return Result(
            session: header.session, chunks: chunks,
            integrity: .incomplete("no manifest: the session did not close (crash or still running)"))
    }
}

public struct RecordingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

struct Cursor {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var atEnd: Bool { offset >= bytes.count }
    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, bytes.count - offset >= n else { return nil }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }
    mutating func byte() -> UInt8? { take(1)?.first }
    mutating func u16() -> Int? { take(2).map { Int($0[0]) << 8 | Int($0[1]) } }
    mutating func u32() -> Int? { take(4).map { $0.reduce(0) { $0 << 8 | Int($1) } } }
    mutating func u64() -> UInt64? { take(8).map { $0.reduce(0) { $0 << 8 | UInt64($1) } } }
}

extension JSONEncoder {
    static var recording: JSONEncoder {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys]
        return e
    }
}

extension JSONDecoder {
    static var recording: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }
}
