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
        var reader = RecordingReader(expectedSession: expectedSession, key: key)
        let chunks = try reader.feed(file, verify: verify)
        guard let session = reader.session else { throw RecordingError("not a Gatehouse recording (bad header)") }
        return Result(session: session, chunks: chunks, integrity: reader.integrityIfEnded)
    }
}

/// Reads a recording as it grows (a live view of a running session): each `feed` takes the bytes appended since the
/// last one and returns the chunks that became whole, so following a recording costs what was added, not what is
/// there. A record cut by the end of what was fed waits for the rest. `RecordingDecoder.read` is one feed of the
/// whole file. Pure: no I/O; the caller fetches the bytes.
public struct RecordingReader: Sendable {
    public let expectedSession: String
    let key: SymmetricKey
    /// The header's session, once the header has arrived.
    public private(set) var session: String?
    /// Bytes fed and not yet part of a whole record.
    var pending: [UInt8] = []
    /// Where `pending` starts in the file.
    public private(set) var consumed = 0
    var chain: [UInt8] = []
    /// Chunks opened so far.
    public private(set) var chunkCount: UInt64 = 0
    /// Set once the recording is settled for good: complete (a verified manifest) or tampered.
    var verdict: RecordingDecoder.Integrity?

    public init(expectedSession: String, key: [UInt8]) {
        self.expectedSession = expectedSession
        self.key = SymmetricKey(data: key)
    }

    /// The bytes appended to the file since the last call, in order. Returns the chunks that became whole. Throws only
    /// when the header is not a recording's; after a verdict, more bytes change nothing (more after the manifest is
    /// tampering).
    public mutating func feed(_ bytes: [UInt8], verify: ([UInt8], [UInt8]) -> Bool) throws -> [[UInt8]] {
        if case .complete = verdict, !bytes.isEmpty {
            verdict = .tampered("the manifest is malformed or followed by data")
        }
        guard verdict == nil else { return [] }
        pending += bytes
        var at = 0
        defer {
            pending.removeFirst(at)
            consumed += at
        }
        func u32(_ i: Int) -> Int { pending[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
        if session == nil {
            let magic = RecordingFormat.magic
            guard pending.prefix(magic.count).elementsEqual(magic.prefix(pending.count)) else {
                throw RecordingError("not a Gatehouse recording (bad header)")
            }
            guard pending.count >= magic.count + 4 else { return [] }
            let headerLength = u32(magic.count)
            guard headerLength <= 4096 else { throw RecordingError("not a Gatehouse recording (bad header)") }
            let end = magic.count + 4 + headerLength
            guard pending.count >= end else { return [] }
            guard
                let header = try? JSONDecoder.recording.decode(
                    RecordingEncoder.Header.self, from: Data(pending[magic.count + 4..<end])),
                header.v == 1
            else { throw RecordingError("not a Gatehouse recording (bad header)") }
            session = header.session
            guard header.session == expectedSession else {
                verdict = .tampered("the file belongs to session \(header.session)")
                return []
            }
            chain = Array(SHA256.hash(data: pending[0..<end]))
            at = end
        }
        var chunks: [[UInt8]] = []
        while at < pending.count {
            let start = at
            switch pending[start] {
            case 1:
                guard pending.count - start >= 13 else { return chunks }
                let index = pending[start + 1..<start + 9].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                let length = u32(start + 9)
                // A writer never produces a length outside these bounds: a changed length field is tampering.
                guard length >= 16, length <= RecordingFormat.maxChunk + 16 else {
                    verdict = .tampered("chunk \(chunkCount) has an impossible length (\(length) bytes)")
                    return chunks
                }
                let end = start + 13 + length
                guard pending.count >= end else { return chunks }
                guard index == chunkCount else {
                    verdict = .tampered("chunk \(chunkCount) is missing or out of order (found index \(index))")
                    return chunks
                }
                do {
                    let box = try AES.GCM.SealedBox(
                        nonce: try RecordingFormat.nonce(index), ciphertext: pending[start + 13..<end - 16],
                        tag: pending[end - 16..<end])
                    chunks.append(
                        Array(
                            try AES.GCM.open(
                                box, using: key, authenticating: RecordingFormat.aad(expectedSession, index))))
                } catch {
                    verdict = .tampered("chunk \(index) fails authentication")
                    return chunks
                }
                var hasher = SHA256()
                hasher.update(data: chain)
                hasher.update(data: pending[start..<end])
                chain = Array(hasher.finalize())
                chunkCount += 1
                at = end
            case 2:
                guard pending.count - start >= 5 else { return chunks }
                let length = u32(start + 1)
                guard length <= 65536 else {
                    verdict = .tampered("the manifest is malformed or followed by data")
                    return chunks
                }
                guard pending.count - start >= 7 + length else { return chunks }
                let manifestBytes = Array(pending[start + 5..<start + 5 + length])
                let sigLength = Int(pending[start + 5 + length]) << 8 | Int(pending[start + 6 + length])
                let end = start + 7 + length + sigLength
                guard pending.count >= end else { return chunks }
                at = end
                guard end == pending.count else {
                    verdict = .tampered("the manifest is malformed or followed by data")
                    return chunks
                }
                verdict = manifestVerdict(manifestBytes, Array(pending[start + 7 + length..<end]), verify)
                return chunks
            default:
                verdict = .tampered("unknown record type \(pending[start]) at byte \(consumed + start)")
                return chunks
            }
        }
        return chunks
    }

    func manifestVerdict(_ manifestBytes: [UInt8], _ signature: [UInt8], _ verify: ([UInt8], [UInt8]) -> Bool)
        -> RecordingDecoder.Integrity
    {
        guard verify(RecordingFormat.signedManifestBytes(manifestBytes), signature) else {
            return .tampered("the manifest's signature does not verify")
        }
        guard let manifest = try? JSONDecoder.recording.decode(RecordingManifest.self, from: Data(manifestBytes)) else {
            return .tampered("the manifest is unreadable")
        }
        let hex = chain.map { String(format: "%02x", $0) }.joined()
        guard manifest.session == expectedSession, manifest.chunks == chunkCount, manifest.chain == hex else {
            return .tampered(
                "the chunks do not match the signed manifest (\(manifest.chunks) chunks signed, \(chunkCount) present)")
        }
        return .complete(manifest)
    }

    /// What the recording is worth if the file ends where the bytes fed so far end.
    public var integrityIfEnded: RecordingDecoder.Integrity {
        if let verdict { return verdict }
        switch pending.first {
        case nil:
            return .incomplete("no manifest: the session did not close (crash or still running)")
        case 1:
            return .incomplete("the last chunk is cut short (the writer stopped mid-write)")
        default:
            // A manifest is written whole, once: a cut one was cut by someone else.
            return .tampered("the manifest is malformed or followed by data")
        }
    }
}

public struct RecordingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
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
