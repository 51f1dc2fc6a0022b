import CSQLite
import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import StorageAPI
import Synchronization

/// The embedded default store: one SQLite database file in WAL mode; a transaction that returned is on disk and
/// survives `kill -9` or power loss.
///
/// One connection serves all transactions, serialized by an async lock. Durability uses **group commit**: SQLite
/// runs with `synchronous=NORMAL` (a COMMIT appends its frames to the WAL without fsync), and a writing
/// transaction returns only after a WAL fsync that started after its COMMIT has finished. Writers that commit
/// while one fsync is running share the next one, so N concurrent writers cost one fsync, not N. (A transaction
/// is durable once its WAL frames are on stable storage; checkpoints under NORMAL fsync the WAL before copying.)
///
/// Read-only transactions do not take the writer's lock: they run on a small pool of reader connections, which WAL
/// lets read the last committed state while the writer works.
public final class SQLiteStorage: Storage, @unchecked Sendable {
    private let connection: SQLiteConnection
    private let lock = AsyncLock()
    private let readers: SQLiteReaderPool
    private let threadPool: NIOThreadPool
    private let durability: GroupCommit

    public var backendName: String { "sqlite" }

    /// Opens (creating if needed) the database at `path` with file mode 0600.
    public convenience init(path: String) throws {
        try self.init(path: path, sync: { fsync($0) })
    }

    /// `sync` makes a file durable (`fsync`; tests inject one to watch the order of commit, sync and acknowledgement).
    init(path: String, sync: @escaping @Sendable (Int32) -> Int32) throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw StorageError(.unavailable, "cannot create \(path)")
            }
        }
        self.connection = try SQLiteConnection(path: path)
        self.readers = SQLiteReaderPool(
            path: path, capacity: max(2, min(8, ProcessInfo.processInfo.activeProcessorCount)))
        self.threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        self.durability = GroupCommit(
            walPath: path + "-wal", directory: (path as NSString).deletingLastPathComponent, pool: threadPool,
            sync: sync)
        try connection.execute("PRAGMA busy_timeout=5000")
        let mode = try connection.query("PRAGMA journal_mode=WAL").first?.first?.text
        guard mode?.lowercased() == "wal" else {
            throw StorageError(.unavailable, "\(path): cannot enable WAL journal (got \(mode ?? "nothing"))")
        }
        // temp_store=MEMORY: statement journals and sort spills stay in memory. With the default (files, as Debian
        // builds SQLite) audit appends and metadata writes created, wrote and unlinked files in /var/tmp.
        try connection.execute("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;")
        try connection.execute("PRAGMA cache_size=\(Self.cachePages)")
        // Fail early on a file that is not a database.
        _ = try connection.query("SELECT count(*) FROM sqlite_master")
    }

    deinit { try? threadPool.syncShutdownGracefully() }

    /// Each connection's page cache, in SQLite's negative-KiB form: 32 MiB (the default, 2 MiB, held the B-tree's
    /// inner pages of a few thousand records; beyond that every lookup re-read them from the OS).
    static let cachePages = -32768

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
        (
            2,
            // Secondary indexes (StorageAPI/Index.swift): one row per entry, the table itself the B-tree that range
            // scans walk in (key, id) order. Unique indexes add a partial unique constraint on the key.
            """
            CREATE TABLE record_index (
                kind TEXT NOT NULL, idx TEXT NOT NULL, scope TEXT NOT NULL, key BLOB NOT NULL, id TEXT NOT NULL,
                uniq INTEGER NOT NULL,
                PRIMARY KEY (kind, idx, scope, key, id)) WITHOUT ROWID;
            CREATE UNIQUE INDEX record_index_unique ON record_index (kind, idx, scope, key) WHERE uniq = 1;
            """
        ),
        (
            3,
            // Per-node audit chains (Engine/AuditChain.swift): the single chain so far becomes chain "", its head
            // moves from metadata to audit_chains; the searchable fields are copied out of the bodies.
            """
            CREATE TABLE audit_log (
                chain TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
                type TEXT NOT NULL, actor TEXT NOT NULL, project TEXT NOT NULL,
                body BLOB NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL,
                PRIMARY KEY (chain, seq));
            INSERT INTO audit_log (chain, seq, ts, type, actor, project, body, prev_hash, hash)
                SELECT '', seq, ts,
                    coalesce(json_extract(CAST(body AS TEXT), '$.event.type'), ''),
                    coalesce(json_extract(CAST(body AS TEXT), '$.actor.metadata.id'), ''),
                    coalesce(json_extract(CAST(body AS TEXT), '$.projectId'), ''),
                    body, prev_hash, hash
                FROM audit_events ORDER BY seq;
            DROP TABLE audit_events;
            CREATE INDEX audit_log_ts ON audit_log (ts);
            CREATE INDEX audit_log_type ON audit_log (type, ts);
            CREATE INDEX audit_log_actor ON audit_log (actor, ts);
            CREATE INDEX audit_log_project ON audit_log (project, ts);
            CREATE TABLE audit_chains (chain TEXT PRIMARY KEY, head BLOB NOT NULL);
            INSERT INTO audit_chains (chain, head) SELECT '', value FROM metadata WHERE key = 'audit_head';
            DELETE FROM metadata WHERE key = 'audit_head';
            CREATE TABLE audit_pending (
                id TEXT PRIMARY KEY, chain TEXT NOT NULL, ts INTEGER NOT NULL,
                type TEXT NOT NULL, actor TEXT NOT NULL, project TEXT NOT NULL, body BLOB NOT NULL);
            CREATE INDEX audit_pending_chain ON audit_pending (chain, ts);
            """
        ),
    ]

    /// The schema version this build understands.
    public static var schemaVersion: Int64 { migrations.last?.0 ?? 0 }

    /// The declared indexes; written by `migrate(indexes:)` (under `lock`), read by transactions.
    private let catalog = NIOLockedValueBox(IndexCatalog.none)
    public var indexes: IndexCatalog { catalog.withLockedValue { $0 } }

    public func migrate(indexes: IndexCatalog) async throws {
        try await lock.withLock {
            try settleBatch()
            try connection.execute("BEGIN IMMEDIATE")
            do {
                try connection.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
                )
                let current =
                    try connection.query("SELECT coalesce(max(version), 0) FROM schema_migrations").first?.first?.int
                    ?? 0
                if current > Self.schemaVersion {
                    throw StorageError(
                        .corrupt, "database schema \(current) is newer than this build (\(Self.schemaVersion))")
                }
                for (version, sql) in Self.migrations where version > current {
                    try connection.execute(sql)
                    try connection.query(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                        [.int(version), .int(Record.millis(Date()))])
                }
                let tx = SQLiteTransaction(connection: connection, catalog: indexes)
                try await tx.rebuildStaleIndexes()
                tx.closed = true
                try connection.execute("COMMIT")
                catalog.withLockedValue { $0 = indexes }
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
        try await durability.waitUntilDurable()
    }

    public func withTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T) async throws
        -> T
    {
        try await run(body, durable: true)
    }

    public func withRelaxedTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T)
        async throws -> T
    {
        try await run(body, durable: false)
    }

    /// Runs `body` on a reader connection, beside the writer; it sees what was committed when it started.
    public func withReadTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T)
        async throws -> T
    {
        let reader = try await readers.take()
        do {
            try reader.execute("BEGIN")
        } catch {
            readers.discard(reader)
            throw error
        }
        let tx = SQLiteTransaction(connection: reader, catalog: indexes, readOnly: true)
        do {
            let value = try await body(tx)
            tx.closed = true
            try reader.execute("COMMIT")
            readers.give(reader)
            return value
        } catch {
            tx.closed = true
            if !reader.isAutocommit { try? reader.execute("ROLLBACK") }
            // A reader still inside a transaction would pin an old snapshot: drop it.
            if reader.isAutocommit { readers.give(reader) } else { readers.discard(reader) }
            throw error
        }
    }

    /// State of the open SQLite transaction that several relaxed transactions share (see `run`). Guarded by `lock`.
    private var batchOpen = false
    private var batchMembers: [CheckedContinuation<Void, any Error>] = []
    static let maxBatchMembers = 32

    /// Runs one transaction. **Relaxed transactions combine**: when others are waiting for the connection, a
    /// relaxed transaction that finished leaves the SQLite transaction open (its work kept by a released
    /// savepoint) and returns once a later holder commits the batch (at most 32 members), so N concurrent relaxed
    /// transactions cost one BEGIN/COMMIT (and one WAL append) instead of N. A failing transaction rolls back to
    /// its savepoint only. Durable transactions never wait for others: they commit (the batch with them) and wait
    /// for the fsync.
    func run<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T, durable: Bool) async throws -> T
    {
        await lock.lock()
        let changesBefore = sqlite3_total_changes64(connection.handle)
        do {
            if !batchOpen {
                try connection.execute("BEGIN IMMEDIATE")
                batchOpen = true
            }
            try connection.execute("SAVEPOINT tx")
        } catch {
            throw abandon(error)
        }
        let tx = SQLiteTransaction(connection: connection, catalog: indexes)
        let value: T
        do {
            value = try await body(tx)
        } catch {
            tx.closed = true
            do {
                try connection.execute("ROLLBACK TO tx")
                try connection.execute("RELEASE tx")
            } catch {
                throw abandon(error)
            }
            // The others' work in the batch still commits.
            let (members, commitError) = commitBatch()
            lock.unlock()
            resume(members, commitError)
            throw error
        }
        tx.closed = true
        do {
            try connection.execute("RELEASE tx")
        } catch {
            throw abandon(error)
        }
        let wrote = sqlite3_total_changes64(connection.handle) != changesBefore
        if !durable, batchMembers.count < Self.maxBatchMembers - 1, lock.hasWaiters {
            // Leave the commit to the next holder; return once it is done.
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                batchMembers.append(c)
                lock.unlock()
            }
            return value
        }
        let (members, commitError) = commitBatch()
        lock.unlock()
        resume(members, commitError)
        if let commitError { throw commitError }
        // Outside the lock, so the next transactions run while this one waits for (and shares) the fsync.
        if wrote && durable { try await durability.waitUntilDurable() }
        return value
    }

    /// COMMITs the open batch (lock held). Returns its waiting members and the error, if the commit failed (then
    /// everything in the batch is rolled back).
    private func commitBatch() -> ([CheckedContinuation<Void, any Error>], (any Error)?) {
        let members = batchMembers
        batchMembers = []
        guard batchOpen else { return (members, nil) }
        batchOpen = false
        do {
            // Without fsync (synchronous=NORMAL) this is a write to the WAL: cheap enough to run here.
            try connection.execute("COMMIT")
            return (members, nil)
        } catch {
            try? connection.execute("ROLLBACK")
            return (members, error)
        }
    }

    /// After a statement failed (lock held): rolls the batch back, releases the lock, fails the batch's members with
    /// `error`, and returns it to throw.
    private func abandon(_ error: any Error) -> any Error {
        let members = abandonBatch()
        lock.unlock()
        for member in members { member.resume(throwing: error) }
        return error
    }

    /// Rolls the open batch back after a statement failed (lock held); returns its members to fail.
    private func abandonBatch() -> [CheckedContinuation<Void, any Error>] {
        let members = batchMembers
        batchMembers = []
        if batchOpen { try? connection.execute("ROLLBACK") }
        batchOpen = false
        return members
    }

    private func resume(_ members: [CheckedContinuation<Void, any Error>], _ error: (any Error)?) {
        for m in members {
            if let error { m.resume(throwing: error) } else { m.resume() }
        }
    }

    /// For statements outside `run` (lock held): commits a batch left open.
    private func settleBatch() throws {
        let (members, error) = commitBatch()
        resume(members, error)
        if let error { throw error }
    }

    public func ping() async throws {
        try await lock.withLock {
            try settleBatch()
            _ = try connection.query("SELECT 1")
        }
    }

    public func close() async throws {
        readers.closeIdle()
        durability.close()
        try await threadPool.shutdownGracefully()
    }

    /// The database size in pages (for maintenance tools and tests).
    public func pageCount() async throws -> Int64 {
        try await lock.withLock {
            try settleBatch()
            return try connection.query("PRAGMA page_count").first?.first?.int ?? 0
        }
    }

    /// Runs raw SQL outside the engine's control. For maintenance tools and tamper tests only.
    public func unsafeExecute(_ sql: String) async throws {
        try await lock.withLock {
            try settleBatch()
            try connection.execute(sql)
        }
    }
}

final class SQLiteTransaction: StorageTransaction, @unchecked Sendable {
    let connection: SQLiteConnection
    var closed = false
    let readOnly: Bool
    let catalog: IndexCatalog

    init(connection: SQLiteConnection, catalog: IndexCatalog, readOnly: Bool = false) {
        self.connection = connection
        self.catalog = catalog
        self.readOnly = readOnly
    }

    // MARK: Secondary indexes

    /// Applies a record's change to its index entries (only the entries that differ are written).
    private func reindex(from old: Record?, to new: Record?) throws {
        guard let r = new ?? old, catalog.indexers[r.kind] != nil else { return }
        let (removed, added) = try catalog.changes(from: old, to: new)
        let c = try live()
        for e in removed {
            try c.query(
                "DELETE FROM record_index WHERE kind = ? AND idx = ? AND scope = ? AND key = ? AND id = ?",
                [.text(r.kind), .text(e.index), .text(e.scope), .blob(Data(e.key.bytes)), .text(r.id)])
        }
        for e in added {
            try c.query(
                "INSERT INTO record_index (kind, idx, scope, key, id, uniq) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    .text(r.kind), .text(e.index), .text(e.scope), .blob(Data(e.key.bytes)), .text(r.id),
                    .int(e.unique ? 1 : 0),
                ])
        }
    }

    /// Rebuilds the entries of every declared kind whose stored indexer version differs (inside the migration's
    /// transaction).
    func rebuildStaleIndexes() async throws {
        // Kinds no longer declared lose their entries and their version marker: if they are declared again later,
        // their entries (not maintained meanwhile) are rebuilt.
        let declared = catalog.indexers.keys.sorted()
        let marks = try live().query("SELECT key FROM metadata WHERE key LIKE 'index-version:%'")
        for row in marks {
            guard let key = row.first?.text else { continue }
            let kind = String(key.dropFirst("index-version:".count))
            if declared.contains(kind) { continue }
            try live().query("DELETE FROM record_index WHERE kind = ?", [.text(kind)])
            try live().query("DELETE FROM metadata WHERE key = ?", [.text(key)])
        }
        for (kind, indexer) in catalog.indexers.sorted(by: { $0.key < $1.key }) {
            let versionKey = IndexCatalog.versionKey(kind)
            let built = try await metadata(versionKey).flatMap { Int(String(decoding: $0, as: UTF8.self)) }
            if built == indexer.version { continue }
            try live().query("DELETE FROM record_index WHERE kind = ?", [.text(kind)])
            var after: String?
            while true {
                let page = try await list(kind: kind, scope: nil, afterID: after, limit: 1000)
                for r in page { try reindex(from: nil, to: r) }
                guard page.count == 1000, let last = page.last else { break }
                after = last.id
            }
            try await setMetadata(versionKey, Data(String(indexer.version).utf8))
        }
    }

    func lookup(_ query: IndexQuery) async throws -> [IndexedRecord] {
        let scope = try query.storedScope(catalog)
        var sql = """
            SELECT r.kind, r.id, r.scope, r.name, r.version, r.body, r.created_at, r.updated_at, i.key
            FROM record_index i JOIN records r ON r.kind = i.kind AND r.id = i.id
            WHERE i.kind = ? AND i.idx = ? AND i.scope = ? AND i.key >= ?
            """
        var binds: [SQLiteValue] = [
            .text(query.kind), .text(query.index), .text(scope), .blob(Data(query.lower.bytes)),
        ]
        if let upper = query.upper {
            sql += " AND i.key < ?"
            binds.append(.blob(Data(upper.bytes)))
        }
        if let after = query.after {
            sql += query.descending ? " AND (i.key, i.id) < (?, ?)" : " AND (i.key, i.id) > (?, ?)"
            binds += [.blob(Data(after.key.bytes)), .text(after.id)]
        }
        sql += query.descending ? " ORDER BY i.key DESC, i.id DESC LIMIT ?" : " ORDER BY i.key, i.id LIMIT ?"
        binds.append(.int(Int64(max(0, query.limit))))
        return try live().query(sql, binds).map { row in
            guard let key = row[8].blob else { throw StorageError(.corrupt, "malformed index row") }
            return IndexedRecord(record: try record(Array(row[0..<8])), key: IndexKey(encoded: Array(key)))
        }
    }

    private func live() throws -> SQLiteConnection {
        if closed { throw StorageError(.corrupt, "transaction used after it ended") }
        return connection
    }

    private func checkWrite() throws {
        if readOnly { throw StorageError(.corrupt, "write in a read-only transaction") }
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
        try checkWrite()
        try live().query(
            "INSERT INTO records (\(Self.recordColumns)) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
            [
                .text(record.kind), .text(record.id), .text(record.scope), record.name.map { .text($0) } ?? .null,
                .blob(record.body), .int(Record.millis(record.createdAt)), .int(Record.millis(record.updatedAt)),
            ])
        var stored = record
        stored.version = 1
        try reindex(from: nil, to: stored)
    }

    func get(kind: String, id: String) async throws -> Record? {
        try live().query(
            "SELECT \(Self.recordColumns) FROM records WHERE kind = ? AND id = ?", [.text(kind), .text(id)]
        )
        .first.map(record)
    }

    func find(kind: String, scope: String, name: String) async throws -> Record? {
        try live().query(
            "SELECT \(Self.recordColumns) FROM records WHERE kind = ? AND scope = ? AND name = ?",
            [.text(kind), .text(scope), .text(name)]
        ).first.map(record)
    }

    func update(_ record: Record) async throws -> Record {
        try checkWrite()
        let c = try live()
        // One read of the row (this connection is the only writer): it decides notFound or versionConflict, gives
        // the index entries to replace, and with the new values the stored record, without reading it back.
        guard let old = try await get(kind: record.kind, id: record.id) else { throw StorageError(.notFound) }
        guard old.version == record.version else { throw StorageError(.versionConflict) }
        try c.query(
            "UPDATE records SET scope = ?, name = ?, version = version + 1, body = ?, updated_at = ? WHERE kind = ? AND id = ? AND version = ?",
            [
                .text(record.scope), record.name.map { .text($0) } ?? .null, .blob(record.body),
                .int(Record.millis(record.updatedAt)), .text(record.kind), .text(record.id), .int(record.version),
            ])
        var stored = record
        stored.version = old.version + 1
        stored.createdAt = old.createdAt
        try reindex(from: old, to: stored)
        return stored
    }

    func delete(kind: String, id: String, expectedVersion: Int64) async throws {
        try checkWrite()
        let c = try live()
        if catalog.indexers[kind] != nil, let old = try await get(kind: kind, id: id), old.version == expectedVersion {
            try reindex(from: old, to: nil)
        }
        try c.query(
            "DELETE FROM records WHERE kind = ? AND id = ? AND version = ?",
            [.text(kind), .text(id), .int(expectedVersion)])
        if c.changes == 0 {
            if try await get(kind: kind, id: id) == nil { throw StorageError(.notFound) }
            throw StorageError(.versionConflict)
        }
    }

    func deleteBefore(kind: String, scope: String, idBefore: String, limit: Int) async throws -> Int {
        try checkWrite()
        let c = try live()
        if catalog.indexers[kind] != nil {
            let doomed = try c.query(
                "SELECT \(Self.recordColumns) FROM records WHERE kind = ? AND scope = ? AND id < ? ORDER BY id LIMIT ?",
                [.text(kind), .text(scope), .text(idBefore), .int(Int64(max(0, limit)))]
            ).map(record)
            for r in doomed { try reindex(from: r, to: nil) }
        }
        // TEXT compares with BINARY collation (bytewise); the records_scope index (kind, scope, id) serves the range.
        try c.query(
            """
            DELETE FROM records WHERE kind = ? AND id IN
              (SELECT id FROM records WHERE kind = ? AND scope = ? AND id < ? ORDER BY id LIMIT ?)
            """,
            [.text(kind), .text(kind), .text(scope), .text(idBefore), .int(Int64(max(0, limit)))])
        return Int(c.changes)
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
            rows = try live().query(
                "SELECT count(*) FROM records WHERE kind = ? AND scope = ?", [.text(kind), .text(scope)])
        } else {
            rows = try live().query("SELECT count(*) FROM records WHERE kind = ?", [.text(kind)])
        }
        return Int(rows.first?.first?.int ?? 0)
    }

    static let auditColumns = "chain, seq, ts, type, actor, project, body, prev_hash, hash"

    private func audit(_ row: [SQLiteValue]) throws -> AuditRecord {
        guard row.count == 9, let chain = row[0].text, let seq = row[1].int, let ts = row[2].int,
            let type = row[3].text,
            let actor = row[4].text, let project = row[5].text, let body = row[6].blob, let prev = row[7].blob,
            let hash = row[8].blob
        else { throw StorageError(.corrupt, "malformed audit row") }
        return AuditRecord(
            chain: chain, sequence: seq, timestampMillis: ts,
            fields: AuditFields(type: type, actor: actor, project: project),
            body: body, previousHash: prev, hash: hash)
    }

    func addPendingAuditEvent(_ event: PendingAuditEvent) async throws {
        try checkWrite()
        try live().query(
            "INSERT INTO audit_pending (id, chain, ts, type, actor, project, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                .text(event.id), .text(event.chain), .int(event.timestampMillis), .text(event.fields.type),
                .text(event.fields.actor), .text(event.fields.project), .blob(event.body),
            ])
    }

    func pendingAuditEvents(chain: String?, before: Int64, limit: Int) async throws -> [PendingAuditEvent] {
        var sql = "SELECT id, chain, ts, type, actor, project, body FROM audit_pending WHERE ts < ?"
        var binds: [SQLiteValue] = [.int(before)]
        if let chain {
            sql += " AND chain = ?"
            binds.append(.text(chain))
        }
        sql += " ORDER BY ts, id LIMIT ?"
        binds.append(.int(Int64(max(0, limit))))
        return try live().query(sql, binds).map { row in
            guard row.count == 7, let id = row[0].text, let chain = row[1].text, let ts = row[2].int,
                let type = row[3].text,
                let actor = row[4].text, let project = row[5].text, let body = row[6].blob
            else { throw StorageError(.corrupt, "malformed pending audit row") }
            return PendingAuditEvent(
                id: id, chain: chain, timestampMillis: ts,
                fields: AuditFields(type: type, actor: actor, project: project),
                body: body)
        }
    }

    func removePendingAuditEvents(_ ids: [String]) async throws -> [String] {
        try checkWrite()
        let c = try live()
        return try ids.filter { id in
            try c.query("DELETE FROM audit_pending WHERE id = ?", [.text(id)])
            return c.changes == 1
        }
    }

    func auditChainHeads() async throws -> [AuditChainHead] {
        try live().query("SELECT chain, head FROM audit_chains ORDER BY chain").map { row in
            guard row.count == 2, let chain = row[0].text, let head = row[1].blob else {
                throw StorageError(.corrupt, "malformed audit chain row")
            }
            return AuditChainHead(chain: chain, value: head)
        }
    }

    func appendAuditEvents(_ events: [AuditRecord], head: AuditChainHead, previous: AuditChainHead?, sealing: [String])
        async throws
    {
        try checkWrite()
        let c = try live()
        // This connection is the only writer: the head read here cannot move before the transaction ends.
        let stored = try c.query("SELECT head FROM audit_chains WHERE chain = ?", [.text(head.chain)]).first?.first?
            .blob
        guard stored == previous?.value else { throw StorageError(.auditConflict, "the chain head moved") }
        for id in sealing {
            try c.query("DELETE FROM audit_pending WHERE id = ?", [.text(id)])
            guard c.changes == 1 else { throw StorageError(.auditConflict, "a pending event was sealed elsewhere") }
        }
        for e in events {
            guard e.chain == head.chain else { throw StorageError(.corrupt, "an event of another chain") }
            try c.query(
                "INSERT INTO audit_log (\(Self.auditColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    .text(e.chain), .int(e.sequence), .int(e.timestampMillis), .text(e.fields.type),
                    .text(e.fields.actor),
                    .text(e.fields.project), .blob(e.body), .blob(e.previousHash), .blob(e.hash),
                ])
        }
        try c.query(
            "INSERT INTO audit_chains (chain, head) VALUES (?, ?) ON CONFLICT (chain) DO UPDATE SET head = excluded.head",
            [.text(head.chain), .blob(head.value)])
    }

    func auditEvents(chain: String?, after: AuditPosition?, limit: Int) async throws -> [AuditRecord] {
        var sql = "SELECT \(Self.auditColumns) FROM audit_log WHERE 1 = 1"
        var binds: [SQLiteValue] = []
        if let chain {
            sql += " AND chain = ?"
            binds.append(.text(chain))
        }
        if let after {
            sql += " AND (chain, seq) > (?, ?)"
            binds += [.text(after.chain), .int(after.sequence)]
        }
        sql += " ORDER BY chain, seq LIMIT ?"
        binds.append(.int(Int64(max(0, limit))))
        return try live().query(sql, binds).map(audit)
    }

    func searchAudit(_ query: AuditQuery) async throws -> [AuditRecord] {
        var sql = "SELECT \(Self.auditColumns) FROM audit_log WHERE 1 = 1"
        var binds: [SQLiteValue] = []
        switch query.filter {
        case .all: break
        case .type(let v):
            sql += " AND type = ?"
            binds.append(.text(v))
        case .actor(let v):
            sql += " AND actor = ?"
            binds.append(.text(v))
        case .project(let v):
            sql += " AND project = ?"
            binds.append(.text(v))
        }
        if let since = query.since {
            sql += " AND ts >= ?"
            binds.append(.int(since))
        }
        if let until = query.until {
            sql += " AND ts < ?"
            binds.append(.int(until))
        }
        if let after = query.after {
            sql +=
                query.descending
                ? " AND ts <= ? AND (ts, chain, seq) < (?, ?, ?)" : " AND ts >= ? AND (ts, chain, seq) > (?, ?, ?)"
            binds += [
                .int(after.timestampMillis), .int(after.timestampMillis), .text(after.position.chain),
                .int(after.position.sequence),
            ]
        }
        sql += query.descending ? " ORDER BY ts DESC, chain DESC, seq DESC LIMIT ?" : " ORDER BY ts, chain, seq LIMIT ?"
        binds.append(.int(Int64(max(0, query.limit))))
        return try live().query(sql, binds).map(audit)
    }

    func metadata(_ key: String) async throws -> Data? {
        try live().query("SELECT value FROM metadata WHERE key = ?", [.text(key)]).first?.first?.blob
    }

    func setMetadata(_ key: String, _ value: Data) async throws {
        try checkWrite()
        try live().query(
            "INSERT INTO metadata (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [.text(key), .blob(value)])
    }
}

/// Group commit: callers that committed wait for a WAL fsync that *started after* their commit. While one fsync
/// runs, new callers queue for the next; that next fsync covers all of them.
final class GroupCommit: @unchecked Sendable {
    private struct State {
        var running = false
        /// Waiting for the fsync that is running now (their commits happened before it started).
        var current: [CheckedContinuation<Void, any Error>] = []
        /// Waiting for the next fsync (they committed while one was running).
        var next: [CheckedContinuation<Void, any Error>] = []
        var fd: Int32 = -1
        var directorySynced = false
        var closed = false
    }
    private let state = NIOLockedValueBox(State())
    private let walPath: String
    private let directory: String
    private let pool: NIOThreadPool
    private let sync: @Sendable (Int32) -> Int32

    init(walPath: String, directory: String, pool: NIOThreadPool, sync: @escaping @Sendable (Int32) -> Int32) {
        self.walPath = walPath
        self.directory = directory.isEmpty ? "." : directory
        self.pool = pool
        self.sync = sync
    }

    func waitUntilDurable() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let start = state.withLockedValue { s -> Bool in
                if s.running {
                    s.next.append(continuation)
                    return false
                }
                s.running = true
                s.current = [continuation]
                return true
            }
            if start { runSync() }
        }
    }

    /// Runs one fsync on the pool for the `current` group, then starts the next group if anyone is waiting.
    private func runSync() {
        pool.submit { [self] _ in
            let result = syncWAL()
            let (finished, again) = state.withLockedValue { s -> ([CheckedContinuation<Void, any Error>], Bool) in
                let done = s.current
                if s.next.isEmpty {
                    s.running = false
                    s.current = []
                    return (done, false)
                }
                s.current = s.next
                s.next = []
                return (done, true)
            }
            for c in finished { c.resume(with: result) }
            if again { runSync() }
        }
    }

    private func syncWAL() -> Result<Void, any Error> {
        var fd = state.withLockedValue { $0.fd }
        if fd < 0 {
            fd = open(walPath, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return .failure(StorageError(.unavailable, "cannot open \(walPath): errno \(errno)")) }
            state.withLockedValue { $0.fd = fd }
        }
        guard sync(fd) == 0 else {
            return .failure(StorageError(.unavailable, "fsync of the WAL failed: errno \(errno)"))
        }
        // The WAL's directory entry must be durable too (once, after the WAL exists).
        if !state.withLockedValue({ $0.directorySynced }) {
            let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 {
                _ = sync(dfd)
                Glibc.close(dfd)
            }
            state.withLockedValue { $0.directorySynced = true }
        }
        return .success(())
    }

    func close() {
        state.withLockedValue { s in
            if s.fd >= 0 { _ = Glibc.close(s.fd) }
            s.fd = -1
        }
    }
}

/// Reader connections for read-only transactions: opened on demand up to `capacity`, each used by one transaction
/// at a time (`PRAGMA query_only` as a second guard against writes).
final class SQLiteReaderPool: Sendable {
    private struct State {
        var idle: [SQLiteConnection] = []
        var opened = 0
        var waiters: [CheckedContinuation<SQLiteConnection?, Never>] = []
    }
    private let state = Mutex(State())
    let path: String
    let capacity: Int

    init(path: String, capacity: Int) {
        self.path = path
        self.capacity = capacity
    }

    /// An idle reader, a new one while fewer than `capacity` are open, or the next one given back.
    func take() async throws -> SQLiteConnection {
        enum Next {
            case use(SQLiteConnection)
            case open, wait
        }
        while true {
            let next = state.withLock { s -> Next in
                if let c = s.idle.popLast() { return .use(c) }
                if s.opened < capacity {
                    s.opened += 1
                    return .open
                }
                return .wait
            }
            switch next {
            case .use(let c): return c
            case .open:
                do {
                    return try open()
                } catch {
                    release()
                    throw error
                }
            case .wait:
                let handed = await withCheckedContinuation { (c: CheckedContinuation<SQLiteConnection?, Never>) in
                    let immediate = state.withLock { s -> SQLiteConnection?? in
                        if let idle = s.idle.popLast() { return .some(idle) }
                        if s.opened < capacity { return .some(nil) }
                        s.waiters.append(c)
                        return .none
                    }
                    if let immediate { c.resume(returning: immediate) }
                }
                if let handed { return handed }
            // nil: a slot to open one freed up; go round.
            }
        }
    }

    /// Returns a reader after its transaction ended.
    func give(_ connection: SQLiteConnection) {
        let waiter = state.withLock { s -> CheckedContinuation<SQLiteConnection?, Never>? in
            if s.waiters.isEmpty {
                s.idle.append(connection)
                return nil
            }
            return s.waiters.removeFirst()
        }
        waiter?.resume(returning: connection)
    }

    /// Forgets a reader that failed (it is closed when released); a waiter may open a new one.
    func discard(_ connection: SQLiteConnection) {
        state.withLock { s in s.idle.removeAll { $0 === connection } }
        release()
    }

    /// Closes the idle readers (at shutdown; one still in use closes when its transaction gives it back and it is
    /// released).
    func closeIdle() {
        let idle = state.withLock { s -> [SQLiteConnection] in
            let idle = s.idle
            s.idle = []
            s.opened -= idle.count
            return idle
        }
        _ = idle  // released here, which closes them
    }

    private func release() {
        let waiter = state.withLock { s -> CheckedContinuation<SQLiteConnection?, Never>? in
            s.opened -= 1
            return s.waiters.isEmpty ? nil : s.waiters.removeFirst()
        }
        waiter?.resume(returning: nil)
    }

    private func open() throws -> SQLiteConnection {
        let c = try SQLiteConnection(path: path)
        try c.execute("PRAGMA busy_timeout=5000")
        try c.execute("PRAGMA query_only=1; PRAGMA temp_store=MEMORY;")
        try c.execute("PRAGMA cache_size=\(SQLiteStorage.cachePages)")
        return c
    }
}
