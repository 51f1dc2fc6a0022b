import Foundation
import StorageAPI

/// Session recordings in an S3-compatible bucket: each uploaded piece is one object,
/// `<prefix><session>/<offset, 20 digits>`, so keys sort in byte order and a recording is the listing of its session's
/// prefix. Objects are written once and never rewritten: a retried piece is compared, not overwritten. The bytes are
/// the encrypted recording exactly as the proxy wrote it.
public struct S3RecordingStore: RecordingStore {
    public let client: S3Client
    public var description: String { "S3 bucket \(client.location.bucket) at \(client.location.endpoint)" }

    public init(client: S3Client) {
        self.client = client
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
        let pieces = try await pieces(sessionId)
        let end = pieces.last.map { $0.offset + $0.size } ?? 0
        if offset == end {
            if !bytes.isEmpty { try await client.put(key(sessionId, offset), bytes) }
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
        guard Self.isValidSessionID(sessionId) else { return nil }
        let pieces = try await pieces(sessionId)
        guard !pieces.isEmpty else { return nil }
        var bytes: [UInt8] = []
        for piece in pieces {
            guard piece.offset == bytes.count else {
                throw StorageError(.corrupt, "recording \(sessionId) has a gap at \(bytes.count)")
            }
            guard let part = try await client.get(key(sessionId, piece.offset)), part.count == piece.size else {
                throw StorageError(
                    .corrupt, "piece \(piece.offset) of recording \(sessionId) changed while it was read")
            }
            bytes += part
        }
        return bytes
    }

    public func read(sessionId: String, from offset: Int) async throws -> [UInt8]? {
        guard offset >= 0 else { throw StorageError(.corrupt, "a negative offset") }
        guard Self.isValidSessionID(sessionId) else { return nil }
        let pieces = try await pieces(sessionId)
        guard !pieces.isEmpty else { return nil }
        // The listing names every piece; only those that reach past `offset` are fetched.
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
        return bytes
    }

    public func length(sessionId: String) async throws -> Int {
        guard Self.isValidSessionID(sessionId) else { return 0 }
        return try await pieces(sessionId).last.map { $0.offset + $0.size } ?? 0
    }

    public func delete(sessionId: String) async throws {
        guard Self.isValidSessionID(sessionId) else {
            throw StorageError(.notFound, "no recording for '\(sessionId.prefix(64))'")
        }
        for piece in try await pieces(sessionId) {
            try await client.delete(key(sessionId, piece.offset))
        }
    }
}
