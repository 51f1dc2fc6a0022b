import Foundation
import StorageAPI
import Synchronization

/// Session recordings in an S3-compatible bucket: each uploaded piece is one object,
/// `<prefix><session>/<offset, 20 digits>`, so keys sort in byte order and a recording is the listing of its session's
/// prefix. Objects are written once and never rewritten: a retried piece is compared, not overwritten. The bytes are
/// the encrypted recording exactly as the proxy wrote it.
public struct S3RecordingStore: RecordingStore {
    public let client: S3Client
    public var description: String { "S3 bucket \(client.location.bucket) at \(client.location.endpoint)" }
    let ends = KnownEnds()

    public init(client: S3Client) {
        self.client = client
    }

    /// Where each session's recording ended when this store last listed or wrote it: the end and the offset of the
    /// last piece. It lets the shipper append without listing every piece of the session first (a listing per write
    /// made shipping a long session quadratic). One node writes a session's recording (the one whose proxy recorded
    /// it), so what it wrote last is the end; a deleted recording is noticed by its last piece being gone. Bounded:
    /// emptied when full.
    final class KnownEnds: Sendable {
        static let capacity = 10_000
        let map = Mutex<[String: (end: Int, last: Int)]>([:])
        func get(_ session: String) -> (end: Int, last: Int)? { map.withLock { $0[session] } }
        func set(_ session: String, end: Int, last: Int) {
            map.withLock {
                if $0.count >= Self.capacity, $0[session] == nil { $0.removeAll() }
                $0[session] = (end, last)
            }
        }
        func forget(_ session: String) { _ = map.withLock { $0.removeValue(forKey: session) } }
    }

    /// The session's end as known here, checked with a HEAD of its last piece (one request, whatever the number of
    /// pieces): nil when unknown or when the last piece is gone (the recording was deleted).
    func checkedEnd(_ sessionId: String) async throws -> Int? {
        guard let known = ends.get(sessionId) else { return nil }
        guard try await client.exists(key(sessionId, known.last)) else {
            ends.forget(sessionId)
            return nil
        }
        return known.end
    }

    func remember(_ sessionId: String, _ pieces: [(offset: Int, size: Int)]) {
        if let last = pieces.last { ends.set(sessionId, end: last.offset + last.size, last: last.offset) }
    }

    /// What the keys of a session's pieces start with. Session ids have a fixed length, so no session's prefix is
    /// another's; the listing prefix stops before the `/` (some S3-compatible servers, moto among them, check the
    /// signature of a query value with `/` in it wrongly).
    func sessionPrefix(_ sessionId: String) -> String { client.location.prefix + sessionId }

    func key(_ sessionId: String, _ offset: Int) -> String {
        let digits = String(offset)
        return sessionPrefix(sessionId) + "/" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    /// The session's pieces in order, as (offset, size).
    func pieces(_ sessionId: String) async throws -> [(offset: Int, size: Int)] {
        let prefix = sessionPrefix(sessionId) + "/"
        return try await client.list(prefix: sessionPrefix(sessionId)).map { entry in
            guard entry.key.hasPrefix(prefix) else {
                throw StorageError(.corrupt, "an object that is not a recording piece: \(entry.key)")
            }
            guard let offset = Int(entry.key.dropFirst(prefix.count)), offset >= 0 else {
                throw StorageError(.corrupt, "an object that is not a recording piece: \(entry.key)")
            }
            return (offset, entry.size)
        }.sorted { $0.offset < $1.offset }
    }

    public func write(sessionId: String, offset: Int, _ bytes: [UInt8]) async throws {
        guard Self.isValidSessionID(sessionId) else {
            throw StorageError(.notFound, "no recording for '\(sessionId.prefix(64))'")
        }
        guard offset >= 0 else { throw StorageError(.corrupt, "a negative offset") }
        // Appending where this store last saw the recording end (the shipper's every write): no listing.
        if offset > 0, try await checkedEnd(sessionId) == offset {
            if !bytes.isEmpty {
                try await client.put(key(sessionId, offset), bytes)
                ends.set(sessionId, end: offset + bytes.count, last: offset)
            }
            return
        }
        let pieces = try await pieces(sessionId)
        remember(sessionId, pieces)
        let end = pieces.last.map { $0.offset + $0.size } ?? 0
        if offset == end {
            if !bytes.isEmpty {
                try await client.put(key(sessionId, offset), bytes)
                ends.set(sessionId, end: offset + bytes.count, last: offset)
            }
            return
        }
        // Not at the end: the same piece again (an upload retried), or a write that would leave a gap.
        guard offset < end, pieces.contains(where: { $0.offset == offset }) else {
            throw StorageError(.corrupt, "a write at \(offset) would leave a gap in recording \(sessionId)")
        }
        guard try await client.get(key(sessionId, offset)) == bytes else {
            throw StorageError(.corrupt, "recording \(sessionId) already has other bytes at \(offset)")
        }
    }

    public func read(sessionId: String) async throws -> [UInt8]? {
        try await read(sessionId: sessionId, from: 0)
    }

    public func read(sessionId: String, from offset: Int) async throws -> [UInt8]? {
        guard offset >= 0 else { throw StorageError(.corrupt, "a negative offset") }
        guard Self.isValidSessionID(sessionId) else { return nil }
        // The listing names every piece (a page per 1,000; ListObjectsV2's start-after would list only the new ones,
        // but its key has a `/`, whose signature moto checks wrongly); only the pieces that reach past `offset` are
        // fetched.
        let pieces = try await pieces(sessionId)
        guard !pieces.isEmpty else { return nil }
        var bytes: [UInt8] = []
        var next = 0
        for piece in pieces {
            guard piece.offset == next else {
                throw StorageError(.corrupt, "recording \(sessionId) has a gap at \(next)")
            }
            next = piece.offset + piece.size
            guard next > offset else { continue }
            guard let part = try await client.get(key(sessionId, piece.offset)), part.count == piece.size else {
                throw StorageError(
                    .corrupt, "piece \(piece.offset) of recording \(sessionId) changed while it was read")
            }
            bytes += part.dropFirst(max(0, offset - piece.offset))
        }
        remember(sessionId, pieces)
        return bytes
    }

    public func length(sessionId: String) async throws -> Int {
        guard Self.isValidSessionID(sessionId) else { return 0 }
        if let end = try await checkedEnd(sessionId) { return end }
        let pieces = try await pieces(sessionId)
        remember(sessionId, pieces)
        return pieces.last.map { $0.offset + $0.size } ?? 0
    }

    public func delete(sessionId: String) async throws {
        guard Self.isValidSessionID(sessionId) else {
            throw StorageError(.notFound, "no recording for '\(sessionId.prefix(64))'")
        }
        ends.forget(sessionId)
        for piece in try await pieces(sessionId) {
            try await client.delete(key(sessionId, piece.offset))
        }
    }
}
