import Foundation
import Logging
import PostgresNIO
import Synchronization
import StorageAPI

/// The shared store for several Gatehouse nodes: a PostgreSQL database reached through a PostgresNIO pool.
///
/// Nothing that matters across nodes is kept in memory here: uniqueness and optimistic concurrency are
/// enforced by the database, audit appends serialize on a transaction-scoped advisory lock, and migrations
/// serialize on another, so nodes may start together.
///
/// Connections carry no per-connection settings (no startup parameters), so the store also works behind a
/// connection pooler such as PgBouncer: relaxed transactions say `SET LOCAL synchronous_commit TO OFF` themselves.
public final class PostgresStorage: Storage, @unchecked Sendable {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// How long reaching the database (a connection and one round trip) may take before a call fails as unavailable.
    public let transactionTimeout: Duration

    public var backendName: String { "postgres" }

    /// Advisory-lock keys (arbitrary constants, "GH" + purpose).
    static let migrationLock: Int64 = 0x4748_0001
    static let auditLock: Int64 = 0x4748_0002

    /// Connects lazily to the database described by a `postgres://user:password@host:port/db?sslmode=…` URL.
    public init(
        url: String, logger: Logger = Logger(label: "gatehouse.storage.postgres"), maxConnections: Int = 16,
        transactionTimeout: Duration = .seconds(15)
    ) throws {
        self.transactionTimeout = transactionTimeout
        var configuration = try Self.configuration(url: url)
        configuration.options.maximumConnections = maxConnections
        configuration.options.connectTimeout = .seconds(5)
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        let client = self.client
        self.runner = Task { await client.run() }
    }

    deinit { runner.cancel() }

    /// Parses a libpq-style URL into a client configuration. `sslmode` is `disable`, `prefer` (default) or `require`.
    public static func configuration(url: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url),
            components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, !host.isEmpty
        else { throw StorageError(.unavailable, "not a postgres:// URL") }
        let user = components.user ?? "postgres"
        let password = components.password
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        let sslmode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch sslmode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw StorageError(.unavailable, "unknown sslmode \(sslmode)")
        }
        return PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: password,
            database: database.isEmpty ? nil : database, tls: tls)
    }

    static func map(_ error: any Error) -> any Error {
        if error is StorageError { return error }
        if let tx = error as? PostgresTransactionError {
            if let inner = tx.closureError ?? tx.beginError ?? tx.commitError { return map(inner) }
        }
        if let psql = error as? PSQLError {
            if let state = psql.serverInfo?[.sqlState] {
                switch state {
                case "23505": return StorageError(.uniqueViolation, psql.serverInfo?[.message] ?? "")
                case "40001", "40P01": return StorageError(.transientConflict, state)
                case "53100": return StorageError(.unavailable, "disk full on the database server")
                default: return StorageError(.unavailable, "sqlstate \(state): \(psql.serverInfo?[.message] ?? "")")
                }
            }
            return StorageError(.unavailable, "postgres: \(psql.code)")
        }
        // Errors thrown by the transaction body (engine errors, cancellation) pass through unchanged.
        return error
    }

    static let migrations: [(Int64, [String])] = [
        (
            1,
            [
                """
                CREATE TABLE records (
                    kind TEXT NOT NULL, id TEXT COLLATE "C" NOT NULL, scope TEXT NOT NULL, name TEXT,
                    version BIGINT NOT NULL, body BYTEA NOT NULL,
                    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                    PRIMARY KEY (kind, id))
                """,
                "CREATE UNIQUE INDEX records_name ON records (kind, scope, name) WHERE name IS NOT NULL",
                "CREATE INDEX records_scope ON records (kind, scope, id)",
                """
                CREATE TABLE audit_events (
                    seq BIGINT PRIMARY KEY, ts BIGINT NOT NULL, body BYTEA NOT NULL,
                    prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL)
                """,
                "CREATE TABLE metadata (key TEXT PRIMARY KEY, value BYTEA NOT NULL)",
            ]
        ),
        (
            2,
            [
                // The chain head's lock and the tail in one round trip: a VOLATILE function takes a fresh snapshot for
                // each statement, so the tail is read after the lock is held and sees the previous holder's append.
                """
                CREATE OR REPLACE FUNCTION gatehouse_audit_tail(lock_key BIGINT)
                RETURNS TABLE (seq BIGINT, ts BIGINT, body BYTEA, prev_hash BYTEA, hash BYTEA)
                LANGUAGE plpgsql VOLATILE AS $fn$
                BEGIN
                    PERFORM pg_advisory_xact_lock(lock_key);
                    RETURN QUERY SELECT a.seq, a.ts, a.body, a.prev_hash, a.hash FROM audit_events a ORDER BY a.seq DESC LIMIT 1;
                END
                $fn$
                """
            ]
        ),
        (
            3,
            [
                // Secondary indexes (StorageAPI/Index.swift): one row per entry; the primary key is the B-tree that
                // range scans walk in (key, id) order. Unique indexes add a partial unique constraint on the key.
                """
                CREATE TABLE record_index (
                    kind TEXT NOT NULL, idx TEXT NOT NULL, scope TEXT NOT NULL, key BYTEA NOT NULL,
                    id TEXT COLLATE "C" NOT NULL, uniq BOOLEAN NOT NULL,
                    PRIMARY KEY (kind, idx, scope, key, id))
                """,
                "CREATE UNIQUE INDEX record_index_unique ON record_index (kind, idx, scope, key) WHERE uniq",
            ]
        ),
    ]

    /// The schema version this build understands.
    public static var schemaVersion: Int64 { migrations.last?.0 ?? 0 }

    /// The declared indexes; written by `migrate(indexes:)`, read by transactions.
    private let catalog = Mutex(IndexCatalog.none)
    public var indexes: IndexCatalog { catalog.withLock { $0 } }

    public func migrate(indexes: IndexCatalog) async throws {
        do {
            try await reach(within: transactionTimeout)
            try await migrateNow(indexes: indexes)
            catalog.withLock { $0 = indexes }
        } catch {
            throw Self.map(error)
        }
    }

    func migrateNow(indexes: IndexCatalog) async throws {
        do {
            try await client.withTransaction(logger: logger) { conn in
                try await conn.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: self.logger)
                try await conn.query(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                    logger: self.logger)
                var current: Int64 = 0
                for try await v in try await conn.query(
                    "SELECT coalesce(max(version), 0)::BIGINT FROM schema_migrations", logger: self.logger
                ).decode(Int64.self) {
                    current = v
                }
                if current > Self.schemaVersion {
                    throw StorageError(.corrupt, "database schema \(current) is newer than this build (\(Self.schemaVersion))")
                }
                for (version, statements) in Self.migrations where version > current {
                    for sql in statements {
                        try await conn.query(PostgresQuery(unsafeSQL: sql), logger: self.logger)
                    }
                    let now = Record.millis(Date())
                    try await conn.query(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (\(version), \(now))", logger: self.logger)
                }
                // Still under the migration lock: nodes starting together rebuild once.
                let tx = PostgresTransaction(connection: conn, logger: self.logger, catalog: indexes)
                defer { tx.closed = true }
                try await tx.rebuildStaleIndexes()
            }
        } catch {
            throw Self.map(error)
        }
    }

    public func withTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T) async throws
        -> T
    {
        try await run(body, relaxed: false)
    }

    /// `synchronous_commit = off` for this transaction only: the commit returns once it is in the server's WAL
    /// buffers (it survives a crash of Gatehouse, and of PostgreSQL's backends, not of the database host).
    public func withRelaxedTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T)
        async throws -> T
    {
        try await run(body, relaxed: true)
    }

    /// On a pooled connection without BEGIN, SET TRANSACTION READ ONLY and COMMIT (the transaction object refuses
    /// writes): each statement sees what was committed when it started, which is what a READ COMMITTED transaction
    /// (PostgreSQL's default, which the write transactions use) gives its statements too, for three round trips fewer.
    /// A KMIP Get took 12 round trips (probe, BEGIN, SET TRANSACTION READ ONLY, SELECT, COMMIT; probe, BEGIN, SET
    /// LOCAL synchronous_commit, SELECT, audit tail, audit append, COMMIT) and now takes 9.
    public func withReadTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T)
        async throws -> T
    {
        do {
            try await reach(within: transactionTimeout)
            return try await client.withConnection { conn in
                let tx = PostgresTransaction(connection: conn, logger: self.logger, catalog: self.indexes, readOnly: true)
                defer { tx.closed = true }
                return try await body(tx)
            }
        } catch {
            throw Self.map(error)
        }
    }

    func run<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T, relaxed: Bool) async throws -> T {
        do {
            // The deadline covers reaching the database (a round trip on a pooled connection), never a transaction
            // in flight: cancelling PostgresNIO mid-transaction could leave a connection holding locks.
            try await reach(within: transactionTimeout)
            return try await client.withTransaction(logger: logger) { conn in
                if relaxed { try await conn.query("SET LOCAL synchronous_commit TO OFF", logger: self.logger) }
                let tx = PostgresTransaction(connection: conn, logger: self.logger, catalog: self.indexes)
                defer { tx.closed = true }
                return try await body(tx)
            }
        } catch {
            throw Self.map(error)
        }
    }

    public func ping() async throws {
        do {
            try await reach(within: .seconds(3))
        } catch {
            throw Self.map(error)
        }
    }

    /// One round trip on a pooled connection within `limit` (waiting for a connection included); cancelling it is
    /// safe because no transaction is open.
    func reach(within limit: Duration) async throws {
        _ = try await withDeadline(limit) { try await self.client.query("SELECT 1", logger: self.logger) }
    }

    struct DeadlineExceeded: Error {}

    /// Runs `body`, failing with `.unavailable` when it takes longer than `limit` (for example while the database is
    /// down and the pool keeps retrying). The body is cancelled but not waited for: a task group would wait for a
    /// child that ignores cancellation (a connection attempt stuck in the pool), which made this deadline a hang.
    func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = FirstOutcome<T>()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let workHandle = Mutex<Task<Void, Never>?>(nil)
            let timer = Task {
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled, outcome.claim() else { return }
                workHandle.withLock { $0 }?.cancel()
                continuation.resume(throwing: StorageError(.unavailable, "database not reachable within \(limit)"))
            }
            let work = Task {
                let r: Result<T, any Error>
                do { r = .success(try await body()) } catch { r = .failure(error) }
                timer.cancel()
                if outcome.claim() { continuation.resume(with: r) }
            }
            workHandle.withLock { $0 = work }
        }
    }

    public func close() async throws {
        runner.cancel()
    }

    /// Drops every Gatehouse table. For tests that need a clean database.
    public func unsafeDropAll() async throws {
        do {
            for table in ["record_index", "records", "audit_events", "metadata", "schema_migrations"] {
                try await client.query(PostgresQuery(unsafeSQL: "DROP TABLE IF EXISTS \(table)"), logger: logger)
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// Runs raw SQL. For maintenance tools and tamper tests only.
    public func unsafeExecute(_ sql: String) async throws {
        do {
            try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            throw Self.map(error)
        }
    }
}

final class PostgresTransaction: StorageTransaction, @unchecked Sendable {
    let connection: PostgresConnection
    let logger: Logger
    var closed = false
    let readOnly: Bool
    /// The chain's last sequence number as this transaction knows it while it holds the audit lock (which lasts
    /// until it ends): the lock and the tail are read once, however many events it appends.
    var auditTail: Int64?

    let catalog: IndexCatalog
    /// Records of indexed kinds as this transaction last read or wrote them ("kind\u{0}id"): an update of one at
    /// the same version replaces its index entries without reading the row again (the version check in the UPDATE
    /// guarantees the row is still what was read).
    var known: [String: Record] = [:]

    init(connection: PostgresConnection, logger: Logger, catalog: IndexCatalog, readOnly: Bool = false) {
        self.connection = connection
        self.logger = logger
        self.catalog = catalog
        self.readOnly = readOnly
    }

    // MARK: Secondary indexes

    private func remember(_ records: [Record]) {
        guard !readOnly, known.count < 10_000 else { return }
        for r in records where catalog.indexers[r.kind] != nil { known[r.kind + "\u{0}" + r.id] = r }
    }

    /// Bind arrays for a set of entries: index names, scopes, keys, unique flags.
    private static func columns(_ entries: [IndexCatalog.Stored]) -> ([String], [String], [ByteBuffer], [Bool]) {
        (entries.map(\.index), entries.map(\.scope), entries.map { ByteBuffer(bytes: $0.key.bytes) }, entries.map(\.unique))
    }

    /// Rebuilds the entries of every declared kind whose stored indexer version differs (inside the migration's
    /// transaction, under its lock).
    func rebuildStaleIndexes() async throws {
        // Kinds no longer declared lose their entries and their version marker: if they are declared again later,
        // their entries (not maintained meanwhile) are rebuilt.
        let declared = catalog.indexers.keys.sorted()
        var marks: [String] = []
        do {
            for try await key in try await run(
                "SELECT key FROM metadata WHERE key LIKE 'index-version:%'"
            ).decode(String.self) {
                marks.append(key)
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        for key in marks {
            let kind = String(key.dropFirst("index-version:".count))
            if declared.contains(kind) { continue }
            _ = try await run("DELETE FROM record_index WHERE kind = \(kind)")
            _ = try await run("DELETE FROM metadata WHERE key = \(key)")
        }
        for (kind, indexer) in catalog.indexers.sorted(by: { $0.key < $1.key }) {
            let versionKey = IndexCatalog.versionKey(kind)
            let built = try await metadata(versionKey).flatMap { Int(String(decoding: $0, as: UTF8.self)) }
            if built == indexer.version { continue }
            _ = try await run("DELETE FROM record_index WHERE kind = \(kind)")
            var after: String?
            while true {
                let page = try await list(kind: kind, scope: nil, afterID: after, limit: 1000)
                var ids: [String] = []
                var entries: [IndexCatalog.Stored] = []
                for r in page {
                    for e in try catalog.stored(r) {
                        ids.append(r.id)
                        entries.append(e)
                    }
                }
                if !entries.isEmpty {
                    let (i, sc, k, u) = Self.columns(entries)
                    _ = try await run(
                        """
                        INSERT INTO record_index (kind, idx, scope, key, id, uniq)
                        SELECT \(kind), t.i, t.s, t.k, t.id, t.u FROM unnest(\(i)::TEXT[], \(sc)::TEXT[], \(k)::BYTEA[], \(ids)::TEXT[], \(u)::BOOLEAN[])
                            AS t(i, s, k, id, u)
                        """)
                }
                guard page.count == 1000, let last = page.last else { break }
                after = last.id
            }
            try await setMetadata(versionKey, Data(String(indexer.version).utf8))
        }
        known = [:]
    }

    func lookup(_ query: IndexQuery) async throws -> [IndexedRecord] {
        let scope = try query.storedScope(catalog)
        let lower = ByteBuffer(bytes: query.lower.bytes)
        let upper = query.upper.map { ByteBuffer(bytes: $0.bytes) }
        let afterKey = query.after.map { ByteBuffer(bytes: $0.key.bytes) }
        let afterID = query.after?.id
        let limit = Int64(max(0, query.limit))
        // Two statements rather than a dynamic ORDER BY: each is a plain range scan of the primary key.
        let q: PostgresQuery =
            query.descending
            ? """
            SELECT r.kind, r.id, r.scope, r.name, r.version, r.body, r.created_at, r.updated_at, i.key
            FROM record_index i JOIN records r ON r.kind = i.kind AND r.id = i.id
            WHERE i.kind = \(query.kind) AND i.idx = \(query.index) AND i.scope = \(scope) AND i.key >= \(lower)
              AND (\(upper)::BYTEA IS NULL OR i.key < \(upper))
              AND (\(afterKey)::BYTEA IS NULL OR (i.key, i.id) < (\(afterKey), \(afterID)::TEXT COLLATE "C"))
            ORDER BY i.key DESC, i.id DESC LIMIT \(limit)
            """
            : """
            SELECT r.kind, r.id, r.scope, r.name, r.version, r.body, r.created_at, r.updated_at, i.key
            FROM record_index i JOIN records r ON r.kind = i.kind AND r.id = i.id
            WHERE i.kind = \(query.kind) AND i.idx = \(query.index) AND i.scope = \(scope) AND i.key >= \(lower)
              AND (\(upper)::BYTEA IS NULL OR i.key < \(upper))
              AND (\(afterKey)::BYTEA IS NULL OR (i.key, i.id) > (\(afterKey), \(afterID)::TEXT COLLATE "C"))
            ORDER BY i.key, i.id LIMIT \(limit)
            """
        var out: [IndexedRecord] = []
        do {
            for try await (kind, id, scope, name, version, body, created, updated, key) in try await run(q).decode(
                (String, String, String, String?, Int64, Data, Int64, Int64, Data).self)
            {
                out.append(
                    IndexedRecord(
                        record: Record(
                            kind: kind, id: id, scope: scope, name: name, version: version, body: body,
                            createdAt: Record.date(millis: created), updatedAt: Record.date(millis: updated)),
                        key: IndexKey(encoded: Array(key))))
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        remember(out.map(\.record))
        return out
    }

    private func live() throws -> PostgresConnection {
        if closed { throw StorageError(.corrupt, "transaction used after it ended") }
        return connection
    }

    private func checkWrite() throws {
        if readOnly { throw StorageError(.corrupt, "write in a read-only transaction") }
    }

    private func run(_ query: PostgresQuery) async throws -> PostgresRowSequence {
        do {
            return try await live().query(query, logger: logger)
        } catch {
            throw PostgresStorage.map(error)
        }
    }

    private func records(_ query: PostgresQuery) async throws -> [Record] {
        var out: [Record] = []
        do {
            for try await (kind, id, scope, name, version, body, created, updated) in try await run(query).decode(
                (String, String, String, String?, Int64, Data, Int64, Int64).self)
            {
                out.append(
                    Record(
                        kind: kind, id: id, scope: scope, name: name, version: version, body: body,
                        createdAt: Record.date(millis: created), updatedAt: Record.date(millis: updated)))
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        return out
    }

    func insert(_ record: Record) async throws {
        try checkWrite()
        let created = Record.millis(record.createdAt)
        let updated = Record.millis(record.updatedAt)
        var stored = record
        stored.version = 1
        let entries = try catalog.stored(stored)
        if entries.isEmpty {
            _ = try await run(
                """
                INSERT INTO records (kind, id, scope, name, version, body, created_at, updated_at)
                VALUES (\(record.kind), \(record.id), \(record.scope), \(record.name), 1, \(record.body), \(created), \(updated))
                """)
            return
        }
        // The record and its index entries in one statement (one round trip).
        let (i, sc, k, u) = Self.columns(entries)
        _ = try await run(
            """
            WITH inserted AS (
                INSERT INTO records (kind, id, scope, name, version, body, created_at, updated_at)
                VALUES (\(record.kind), \(record.id), \(record.scope), \(record.name), 1, \(record.body), \(created), \(updated))
                RETURNING kind, id)
            INSERT INTO record_index (kind, idx, scope, key, id, uniq)
            SELECT inserted.kind, t.i, t.s, t.k, inserted.id, t.u
            FROM inserted, unnest(\(i)::TEXT[], \(sc)::TEXT[], \(k)::BYTEA[], \(u)::BOOLEAN[]) AS t(i, s, k, u)
            """)
        remember([stored])
    }

    func get(kind: String, id: String) async throws -> Record? {
        let found = try await records(
            "SELECT kind, id, scope, name, version, body, created_at, updated_at FROM records WHERE kind = \(kind) AND id = \(id)"
        )
        remember(found)
        return found.first
    }

    func find(kind: String, scope: String, name: String) async throws -> Record? {
        let found = try await records(
            """
            SELECT kind, id, scope, name, version, body, created_at, updated_at FROM records
            WHERE kind = \(kind) AND scope = \(scope) AND name = \(name)
            """
        )
        remember(found)
        return found.first
    }

    /// The stored record an update or delete at `version` replaces, for its index entries: known from this
    /// transaction's reads, or read now. nil when the kind has no indexes or there is no such record.
    private func previous(kind: String, id: String, version: Int64) async throws -> Record? {
        guard catalog.indexers[kind] != nil else { return nil }
        if let r = known[kind + "\u{0}" + id], r.version == version { return r }
        return try await get(kind: kind, id: id)
    }

    func update(_ record: Record) async throws -> Record {
        try checkWrite()
        let updated = Record.millis(record.updatedAt)
        let rows: [Record]
        if catalog.indexers[record.kind] != nil {
            guard let old = try await previous(kind: record.kind, id: record.id, version: record.version) else { throw StorageError(.notFound) }
            guard old.version == record.version else { throw StorageError(.versionConflict) }
            // The row and the entries that change, in one statement; the entries move only if the row did.
            var next = record
            next.version = record.version + 1
            next.createdAt = old.createdAt
            let (removed, added) = try catalog.changes(from: old, to: next)
            let (ri, rs, rk, _) = Self.columns(removed)
            let (ai, asc, ak, au) = Self.columns(added)
            rows = try await records(
                """
                WITH upd AS (
                    UPDATE records SET scope = \(record.scope), name = \(record.name), version = version + 1,
                        body = \(record.body), updated_at = \(updated)
                    WHERE kind = \(record.kind) AND id = \(record.id) AND version = \(record.version)
                    RETURNING kind, id, scope, name, version, body, created_at, updated_at),
                gone AS (
                    DELETE FROM record_index WHERE kind = \(record.kind) AND id = \(record.id) AND EXISTS (SELECT 1 FROM upd)
                      AND (idx, scope, key) IN (SELECT * FROM unnest(\(ri)::TEXT[], \(rs)::TEXT[], \(rk)::BYTEA[]))),
                added AS (
                    INSERT INTO record_index (kind, idx, scope, key, id, uniq)
                    SELECT upd.kind, t.i, t.s, t.k, upd.id, t.u
                    FROM upd, unnest(\(ai)::TEXT[], \(asc)::TEXT[], \(ak)::BYTEA[], \(au)::BOOLEAN[]) AS t(i, s, k, u))
                SELECT kind, id, scope, name, version, body, created_at, updated_at FROM upd
                """)
        } else {
            rows = try await records(
                """
                UPDATE records SET scope = \(record.scope), name = \(record.name), version = version + 1,
                    body = \(record.body), updated_at = \(updated)
                WHERE kind = \(record.kind) AND id = \(record.id) AND version = \(record.version)
                RETURNING kind, id, scope, name, version, body, created_at, updated_at
                """)
        }
        if let stored = rows.first {
            remember([stored])
            return stored
        }
        if try await get(kind: record.kind, id: record.id) == nil { throw StorageError(.notFound) }
        throw StorageError(.versionConflict)
    }

    func delete(kind: String, id: String, expectedVersion: Int64) async throws {
        try checkWrite()
        var deleted = 0
        let old = try await previous(kind: kind, id: id, version: expectedVersion)
        let (removed, _) = try catalog.changes(from: old?.version == expectedVersion ? old : nil, to: nil)
        let (ri, rs, rk, _) = Self.columns(removed)
        do {
            for try await _ in try await run(
                """
                WITH del AS (
                    DELETE FROM records WHERE kind = \(kind) AND id = \(id) AND version = \(expectedVersion) RETURNING id),
                gone AS (
                    DELETE FROM record_index WHERE kind = \(kind) AND id = \(id) AND EXISTS (SELECT 1 FROM del)
                      AND (idx, scope, key) IN (SELECT * FROM unnest(\(ri)::TEXT[], \(rs)::TEXT[], \(rk)::BYTEA[])))
                SELECT id FROM del
                """
            ).decode(String.self) {
                deleted += 1
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        known[kind + "\u{0}" + id] = nil
        if deleted == 0 {
            if try await get(kind: kind, id: id) == nil { throw StorageError(.notFound) }
            throw StorageError(.versionConflict)
        }
    }

    func deleteBefore(kind: String, scope: String, idBefore: String, limit: Int) async throws -> Int {
        try checkWrite()
        let limit = Int64(max(0, limit))
        var deleted = 0
        if catalog.indexers[kind] != nil {
            // Indexed kinds: read the doomed records for their entries, then delete both.
            let doomed = try await records(
                """
                SELECT kind, id, scope, name, version, body, created_at, updated_at FROM records
                WHERE kind = \(kind) AND scope = \(scope) AND id < \(idBefore) ORDER BY id LIMIT \(limit) FOR UPDATE
                """)
            for r in doomed {
                try await delete(kind: r.kind, id: r.id, expectedVersion: r.version)
            }
            return doomed.count
        }
        do {
            // id is COLLATE "C": bytewise, like the other stores.
            for try await _ in try await run(
                """
                DELETE FROM records WHERE kind = \(kind) AND id IN
                  (SELECT id FROM records WHERE kind = \(kind) AND scope = \(scope) AND id < \(idBefore) ORDER BY id LIMIT \(limit))
                RETURNING id
                """
            ).decode(String.self) {
                deleted += 1
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        return deleted
    }

    func list(kind: String, scope: String?, afterID: String?, limit: Int) async throws -> [Record] {
        let limit = Int64(max(0, limit))
        let found = try await records(
            """
            SELECT kind, id, scope, name, version, body, created_at, updated_at FROM records
            WHERE kind = \(kind) AND (\(scope)::TEXT IS NULL OR scope = \(scope))
              AND (\(afterID)::TEXT IS NULL OR id > \(afterID))
            ORDER BY id LIMIT \(limit)
            """)
        remember(found)
        return found
    }

    func count(kind: String, scope: String?) async throws -> Int {
        var n: Int64 = 0
        do {
            for try await c in try await run(
                "SELECT count(*)::BIGINT FROM records WHERE kind = \(kind) AND (\(scope)::TEXT IS NULL OR scope = \(scope))"
            ).decode(Int64.self) {
                n = c
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        return Int(n)
    }

    private func audits(_ query: PostgresQuery) async throws -> [AuditRecord] {
        var out: [AuditRecord] = []
        do {
            for try await (seq, ts, body, prev, hash) in try await run(query).decode((Int64, Int64, Data, Data, Data).self) {
                out.append(AuditRecord(sequence: seq, timestampMillis: ts, body: body, previousHash: prev, hash: hash))
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        return out
    }

    func lastAuditEvent() async throws -> AuditRecord? {
        // Writers serialize on the chain head (the lock and the read in one round trip); a read-only transaction
        // cannot append, so it does not wait for them.
        if readOnly || auditTail != nil {
            return try await audits("SELECT seq, ts, body, prev_hash, hash FROM audit_events ORDER BY seq DESC LIMIT 1").first
        }
        let last = try await audits("SELECT seq, ts, body, prev_hash, hash FROM gatehouse_audit_tail(\(PostgresStorage.auditLock))").first
        auditTail = last?.sequence ?? 0
        return last
    }

    /// An append must follow the chain's last event (read under the lock unless this transaction already did).
    private func checkNext(_ event: AuditRecord) async throws {
        try checkWrite()
        let last: Int64
        if let auditTail { last = auditTail } else { last = try await lastAuditEvent()?.sequence ?? 0 }
        guard event.sequence == last + 1 else { throw StorageError(.auditConflict) }
    }

    /// The event and the chain head in one statement.
    func appendAuditEvent(_ event: AuditRecord, headKey: String, head: Data) async throws {
        try await checkNext(event)
        _ = try await run(
            """
            WITH appended AS (
                INSERT INTO audit_events (seq, ts, body, prev_hash, hash)
                VALUES (\(event.sequence), \(event.timestampMillis), \(event.body), \(event.previousHash), \(event.hash)))
            INSERT INTO metadata (key, value) VALUES (\(headKey), \(head)) ON CONFLICT (key) DO UPDATE SET value = excluded.value
            """)
        auditTail = event.sequence
    }

    func appendAuditEvent(_ event: AuditRecord) async throws {
        try await checkNext(event)
        _ = try await run(
            """
            INSERT INTO audit_events (seq, ts, body, prev_hash, hash)
            VALUES (\(event.sequence), \(event.timestampMillis), \(event.body), \(event.previousHash), \(event.hash))
            """)
        auditTail = event.sequence
    }

    func auditEvents(after: Int64, limit: Int) async throws -> [AuditRecord] {
        let limit = Int64(max(0, limit))
        return try await audits(
            "SELECT seq, ts, body, prev_hash, hash FROM audit_events WHERE seq > \(after) ORDER BY seq LIMIT \(limit)")
    }

    func metadata(_ key: String) async throws -> Data? {
        var value: Data?
        do {
            for try await v in try await run("SELECT value FROM metadata WHERE key = \(key)").decode(Data.self) {
                value = v
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        return value
    }

    func setMetadata(_ key: String, _ value: Data) async throws {
        try checkWrite()
        _ = try await run(
            "INSERT INTO metadata (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    }
}

/// Lets exactly one of several racing tasks resume a continuation.
final class FirstOutcome<T>: Sendable {
    private let done = Mutex(false)
    func claim() -> Bool {
        done.withLock { d in
            if d { return false }
            d = true
            return true
        }
    }
}
