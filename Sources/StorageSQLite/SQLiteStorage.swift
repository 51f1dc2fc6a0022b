import CSQLite
import Foundation
import NIOPosix
import StorageAPI

/// The embedded default store: one SQLite database file in WAL mode with `synchronous=FULL`, so a transaction
/// that returned is on disk and survives `kill -9` or power loss.
///
/// One connection serves all transactions, serialized by an async lock; commits (the fsync) run on a
/// dedicated thread pool so they do not block the cooperative executor.
public final class SQLiteStorage: Storage, @unchecked Sendable {
    private let connection: SQLiteConnection
    private let lock = AsyncLock()
    private let threadPool: NIOThreadPool

    public var backendName: String { "sqlite" }

    /// Opens (creating if needed) the database at `path` with file mode 0600.
    public init(path: String) throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw StorageError(.unavailable, "cannot create \(path)")
            }
        }
        self.connection = try SQLiteConnection(path: path)
        self.threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        try connection.execute("PRAGMA busy_timeout=5000")
        let mode = try connection.query("PRAGMA journal_mode=WAL").first?.first?.text
        guard mode?.lowercased() == "wal" else {
            throw StorageError(.unavailable, "\(path): cannot enable WAL journal (got \(mode ?? "nothing"))")
        }
        try connection.execute("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        // Fail early on a file that is not a database.
        _ = try connection.query("SELECT count(*) FROM sqlite_master")
    }

    deinit { try? threadPool.syncShutdownGracefully() }

    static let migrations: [(Int64, String)] = [
        (
            1,
            """
            CREATE TABLE records (
                kind TEXT NOT NULL, id TEXT NOT NULL, scope TEXT NOT NULL, name TEXT,
                version INTEGER NOT NULL, body BLOB NOT NULL,
                created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
                PRIMARY KEY (kind, id));
            CREATE UNIQUE INDEX records_name ON records (kind, scope, name) WHERE name IS NOT NULL;
            CREATE INDEX records_scope ON records (kind, scope, id);
            CREATE TABLE audit_events (
                seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, body BLOB NOT NULL,
                prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
            CREATE TABLE metadata (key TEXT PRIMARY KEY, value BLOB NOT NULL);
            """
        ),
    ]

    /// The schema version this build understands.
    public static var schemaVersion: Int64 { migrations.last?.0 ?? 0 }

    public func migrate() async throws {
        try await lock.withLock {
            try connection.execute("BEGIN IMMEDIATE")
            do {
                try connection.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
                )
                let current = try connection.query("SELECT coalesce(max(version), 0) FROM schema_migrations").first?.first?.int ?? 0
                if current > Self.schemaVersion {
                    throw StorageError(.corrupt, "database schema \(current) is newer than this build (\(Self.schemaVersion))")
                }
                for (version, sql) in Self.migrations where version > current {
                    try connection.execute(sql)
                    try connection.query(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                        [.int(version), .int(Record.millis(Date()))])
                }
                try connection.execute("COMMIT")
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    public func withTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T) async throws
        -> T
    {
        try await lock.withLock {
            try connection.execute("BEGIN IMMEDIATE")
            let tx = SQLiteTransaction(connection: connection)
            let value: T
            do {
                value = try await body(tx)
            } catch {
                tx.closed = true
                try? connection.execute("ROLLBACK")
                throw error
            }
            tx.closed = true
            let connection = self.connection
            do {
                try await threadPool.runIfActive { try connection.execute("COMMIT") }
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
            return value
        }
    }

    public func ping() async throws {
        try await lock.withLock { _ = try connection.query("SELECT 1") }
    }

    public func close() async throws {
        try await threadPool.shutdownGracefully()
    }

    /// The database size in pages (for maintenance tools and tests).
    public func pageCount() async throws -> Int64 {
        try await lock.withLock { try connection.query("PRAGMA page_count").first?.first?.int ?? 0 }
    }

    /// Runs raw SQL outside the engine's control. For maintenance tools and tamper tests only.
    public func unsafeExecute(_ sql: String) async throws {
        try await lock.withLock { try connection.execute(sql) }
    }
}

final class SQLiteTransaction: StorageTransaction, @unchecked Sendable {
    let connection: SQLiteConnection
    var closed = false

    init(connection: SQLiteConnection) { self.connection = connection }

    private func live() throws -> SQLiteConnection {
        if closed { throw StorageError(.corrupt, "transaction used after it ended") }
        return connection
    }

    static let recordColumns = "kind, id, scope, name, version, body, created_at, updated_at"

    private func record(_ row: [SQLiteValue]) throws -> Record {
        guard row.count == 8, let kind = row[0].text, let id = row[1].text, let scope = row[2].text,
            let version = row[4].int, let body = row[5].blob, let created = row[6].int, let updated = row[7].int
        else { throw StorageError(.corrupt, "malformed record row") }
        return Record(
            kind: kind, id: id, scope: scope, name: row[3].text, version: version, body: body,
            createdAt: Record.date(millis: created), updatedAt: Record.date(millis: updated))
    }

    func insert(_ record: Record) async throws {
        try live().query(
            "INSERT INTO records (\(Self.recordColumns)) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
            [
                .text(record.kind), .text(record.id), .text(record.scope), record.name.map { .text($0) } ?? .null,
                .blob(record.body), .int(Record.millis(record.createdAt)), .int(Record.millis(record.updatedAt)),
            ])
    }

    func get(kind: String, id: String) async throws -> Record? {
        try live().query("SELECT \(Self.recordColumns) FROM records WHERE kind = ? AND id = ?", [.text(kind), .text(id)])
            .first.map(record)
    }

    func find(kind: String, scope: String, name: String) async throws -> Record? {
        try live().query(
            "SELECT \(Self.recordColumns) FROM records WHERE kind = ? AND scope = ? AND name = ?",
            [.text(kind), .text(scope), .text(name)]
        ).first.map(record)
    }

    func update(_ record: Record) async throws -> Record {
        let c = try live()
        try c.query(
            "UPDATE records SET scope = ?, name = ?, version = version + 1, body = ?, updated_at = ? WHERE kind = ? AND id = ? AND version = ?",
            [
                .text(record.scope), record.name.map { .text($0) } ?? .null, .blob(record.body),
                .int(Record.millis(record.updatedAt)), .text(record.kind), .text(record.id), .int(record.version),
            ])
        if c.changes == 0 {
            if try await get(kind: record.kind, id: record.id) == nil { throw StorageError(.notFound) }
            throw StorageError(.versionConflict)
        }
        guard let stored = try await get(kind: record.kind, id: record.id) else { throw StorageError(.notFound) }
        return stored
    }

    func delete(kind: String, id: String, expectedVersion: Int64) async throws {
        let c = try live()
        try c.query(
            "DELETE FROM records WHERE kind = ? AND id = ? AND version = ?", [.text(kind), .text(id), .int(expectedVersion)])
        if c.changes == 0 {
            if try await get(kind: kind, id: id) == nil { throw StorageError(.notFound) }
            throw StorageError(.versionConflict)
        }
    }

    func list(kind: String, scope: String?, afterID: String?, limit: Int) async throws -> [Record] {
        var sql = "SELECT \(Self.recordColumns) FROM records WHERE kind = ?"
        var binds: [SQLiteValue] = [.text(kind)]
        if let scope {
            sql += " AND scope = ?"
            binds.append(.text(scope))
        }
        if let afterID {
            sql += " AND id > ?"
            binds.append(.text(afterID))
        }
        sql += " ORDER BY id LIMIT ?"
        binds.append(.int(Int64(max(0, limit))))
        return try live().query(sql, binds).map(record)
    }

    func count(kind: String, scope: String?) async throws -> Int {
        let rows: [[SQLiteValue]]
        if let scope {
            rows = try live().query("SELECT count(*) FROM records WHERE kind = ? AND scope = ?", [.text(kind), .text(scope)])
        } else {
            rows = try live().query("SELECT count(*) FROM records WHERE kind = ?", [.text(kind)])
        }
        return Int(rows.first?.first?.int ?? 0)
    }

    private func audit(_ row: [SQLiteValue]) throws -> AuditRecord {
        guard row.count == 5, let seq = row[0].int, let ts = row[1].int, let body = row[2].blob,
            let prev = row[3].blob, let hash = row[4].blob
        else { throw StorageError(.corrupt, "malformed audit row") }
        return AuditRecord(sequence: seq, timestampMillis: ts, body: body, previousHash: prev, hash: hash)
    }

    func lastAuditEvent() async throws -> AuditRecord? {
        try live().query("SELECT seq, ts, body, prev_hash, hash FROM audit_events ORDER BY seq DESC LIMIT 1").first.map(audit)
    }

    func appendAuditEvent(_ event: AuditRecord) async throws {
        let last = try await lastAuditEvent()?.sequence ?? 0
        guard event.sequence == last + 1 else { throw StorageError(.auditConflict) }
        try live().query(
            "INSERT INTO audit_events (seq, ts, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
            [.int(event.sequence), .int(event.timestampMillis), .blob(event.body), .blob(event.previousHash), .blob(event.hash)])
    }

    func auditEvents(after: Int64, limit: Int) async throws -> [AuditRecord] {
        try live().query(
            "SELECT seq, ts, body, prev_hash, hash FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
            [.int(after), .int(Int64(max(0, limit)))]
        ).map(audit)
    }

    func metadata(_ key: String) async throws -> Data? {
        try live().query("SELECT value FROM metadata WHERE key = ?", [.text(key)]).first?.first?.blob
    }

    func setMetadata(_ key: String, _ value: Data) async throws {
        try live().query(
            "INSERT INTO metadata (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [.text(key), .blob(value)])
    }
}
