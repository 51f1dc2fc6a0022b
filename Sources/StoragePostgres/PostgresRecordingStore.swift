import Foundation
import Logging
import PostgresNIO
import StorageAPI

/// Session recordings in the shared PostgreSQL database (`recording_pieces`), so that every node can replay and
/// verify every session. A recording is stored as the pieces its node uploaded, each at its byte offset; each write
/// is one statement (a piece is bounded by its uploader, so no session makes a large transaction). The bytes are the
/// encrypted recording exactly as the proxy wrote it.
public struct PostgresRecordingStore: RecordingStore {
    let storage: PostgresStorage
    public var description: String { "PostgreSQL" }

    public init(storage: PostgresStorage) {
        self.storage = storage
    }

    public func write(sessionId: String, offset: Int, _ bytes: [UInt8]) async throws {
        guard Self.isValidSessionID(sessionId) else {
            throw StorageError(.notFound, "no recording for '\(sessionId.prefix(64))'")
        }
        guard offset >= 0 else { throw StorageError(.corrupt, "a negative offset") }
        try await storage.onConnection { conn, logger in
            // The piece goes in only where the recording ends (at 0, or right after a stored piece): never a gap.
            let inserted = try await conn.query(
                """
                INSERT INTO recording_pieces (session, start_at, bytes)
                SELECT \(sessionId), \(Int64(offset)), \(ByteBuffer(bytes: bytes))
                WHERE \(Int64(offset)) = 0 OR EXISTS (
                    SELECT 1 FROM recording_pieces WHERE session = \(sessionId) AND start_at + length(bytes) = \(Int64(offset)))
                ON CONFLICT (session, start_at) DO NOTHING
                RETURNING 1
                """, logger: logger)
            var rows = 0
            for try await _ in inserted { rows += 1 }
            if rows == 1 { return }
            // Nothing inserted: the same piece again (an upload retried), or a write that would leave a gap.
            var existing: ByteBuffer?
            for try await piece in try await conn.query(
                "SELECT bytes FROM recording_pieces WHERE session = \(sessionId) AND start_at = \(Int64(offset))",
                logger: logger
            ).decode(ByteBuffer.self) {
                existing = piece
            }
            guard let existing else {
                throw StorageError(.corrupt, "a write at \(offset) would leave a gap in recording \(sessionId)")
            }
            guard Array(existing.readableBytesView) == bytes else {
                throw StorageError(.corrupt, "recording \(sessionId) already has other bytes at \(offset)")
            }
        }
    }

    public func read(sessionId: String) async throws -> [UInt8]? {
        guard Self.isValidSessionID(sessionId) else { return nil }
        return try await storage.onConnection { conn, logger -> [UInt8]? in
            var bytes: [UInt8] = []
            var pieces = 0
            for try await (start, piece) in try await conn.query(
                "SELECT start_at, bytes FROM recording_pieces WHERE session = \(sessionId) ORDER BY start_at",
                logger: logger
            ).decode((Int64, ByteBuffer).self) {
                guard start == Int64(bytes.count) else {
                    throw StorageError(.corrupt, "recording \(sessionId) has a gap at \(bytes.count)")
                }
                bytes += piece.readableBytesView
                pieces += 1
            }
            return pieces == 0 ? nil : bytes
        }
    }

    public func read(sessionId: String, from offset: Int) async throws -> [UInt8]? {
        guard offset >= 0 else { throw StorageError(.corrupt, "a negative offset") }
        guard Self.isValidSessionID(sessionId) else { return nil }
        return try await storage.onConnection { conn, logger -> [UInt8]? in
            // The piece that holds `offset` and those after it, through the (session, start_at) key; pieces before
            // it are not read.
            var bytes: [UInt8] = []
            var next: Int64?
            for try await (start, piece) in try await conn.query(
                """
                SELECT start_at, bytes FROM recording_pieces WHERE session = \(sessionId) AND start_at >= coalesce(
                    (SELECT max(start_at) FROM recording_pieces WHERE session = \(sessionId) AND start_at <= \(Int64(offset))), 0)
                ORDER BY start_at
                """,
                logger: logger
            ).decode((Int64, ByteBuffer).self) {
                if let next, start != next {
                    throw StorageError(.corrupt, "recording \(sessionId) has a gap at \(next)")
                }
                next = start + Int64(piece.readableBytes)
                let skip = max(0, Int(Int64(offset) - start))
                if skip < piece.readableBytes { bytes += piece.readableBytesView.dropFirst(skip) }
            }
            guard let next else { return nil }
            return next >= Int64(offset) ? bytes : []
        }
    }

    public func length(sessionId: String) async throws -> Int {
        guard Self.isValidSessionID(sessionId) else { return 0 }
        return try await storage.onConnection { conn, logger -> Int in
            var n: Int64 = 0
            for try await v in try await conn.query(
                "SELECT coalesce(max(start_at + length(bytes)), 0)::BIGINT FROM recording_pieces WHERE session = \(sessionId)",
                logger: logger
            ).decode(Int64.self) {
                n = v
            }
            return Int(n)
        }
    }

    public func delete(sessionId: String) async throws {
        guard Self.isValidSessionID(sessionId) else {
            throw StorageError(.notFound, "no recording for '\(sessionId.prefix(64))'")
        }
        try await storage.onConnection { conn, logger in
            _ = try await conn.query("DELETE FROM recording_pieces WHERE session = \(sessionId)", logger: logger)
        }
    }
}

extension PostgresStorage {
    /// Runs `body` on a pooled connection (under the lease deadline, and closed if a round trip outlives the
    /// transaction timeout), mapping errors as every storage call does.
    func onConnection<T: Sendable>(_ body: @escaping (PostgresConnection, Logger) async throws -> T) async throws -> T {
        do {
            return try await withLease(within: transactionTimeout) { conn in
                try await self.closing(conn, after: self.transactionTimeout) { try await body(conn, self.logger) }
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// The recording store in this database.
    public var recordings: PostgresRecordingStore { PostgresRecordingStore(storage: self) }
}
