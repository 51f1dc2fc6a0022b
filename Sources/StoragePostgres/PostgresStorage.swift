import Foundation
import Logging
import PostgresNIO
import StorageAPI
import Synchronization

/// The shared store for several Gatehouse nodes: a PostgreSQL database reached through a PostgresNIO pool.
///
/// Nothing that matters across nodes is kept in memory here: uniqueness and optimistic concurrency are
/// enforced by the database; each node appends to its own audit chain (a head row that no other node writes), and
/// migrations serialize on an advisory lock, so nodes may start together.
///
/// Connections carry no per-connection settings (no startup parameters), so the store also works behind a
/// connection pooler such as PgBouncer: relaxed transactions say `SET LOCAL synchronous_commit TO OFF` themselves.
public final class PostgresStorage: Storage, @unchecked Sendable {
    private let client: PostgresClient
    /// Leases waiting for a connection, with their deadlines.
    private let leases = LeaseWatchdog()
    private let runner: Task<Void, Never>
    let logger: Logger
    /// How long reaching the database (a connection and one round trip) may take before a call fails as unavailable.
    public let transactionTimeout: Duration
    /// Whether the statements every request runs are prepared once per connection (see `HotStatement`).
    public let preparedStatements: Bool

    public var backendName: String { "postgres" }

    /// Advisory-lock keys (arbitrary constants, "GH" + purpose).
    static let migrationLock: Int64 = 0x4748_0001

    /// Connects lazily to the database described by a `postgres://user:password@host:port/db?sslmode=…` URL.
    public init(
        url: String, logger: Logger = Logger(label: "gatehouse.storage.postgres"), maxConnections: Int = 16,
        transactionTimeout: Duration = .seconds(15), keepConnections: Bool = false, preparedStatements: Bool = true
    ) throws {
        self.transactionTimeout = transactionTimeout
        self.preparedStatements = preparedStatements
        var configuration = try Self.configuration(url: url)
        configuration.options.maximumConnections = maxConnections
        // The pool arms an idle timer and a keep-alive timer each time a connection it may close or ping goes back
        // idle, and cancels them at the next lease: two timers per transaction, a quarter of a KMIP Get's
        // throughput on this store. `keepConnections` (the daemon): every connection is a minimum connection, opened
        // at start and never closed for idleness, and keep-alive pings are off; a connection the network dropped
        // fails its next query and the pool replaces it. Tools and tests that open many short-lived stores keep
        // the lazy default.
        if keepConnections {
            configuration.options.minimumConnections = maxConnections
            configuration.options.keepAliveBehavior = nil
        }
        configuration.options.connectTimeout = .seconds(5)
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        let client = self.client
        let leases = self.leases
        self.runner = Task {
            await withDiscardingTaskGroup { group in
                group.addTask { await client.run() }
                // One watchdog for every lease's deadline (a timer per call cost a tenth of a KMIP Get's CPU).
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(100))
                        leases.expire(now: .now)
                    }
                }
            }
        }
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
                case "GH001": return StorageError(.auditConflict, psql.serverInfo?[.message] ?? "")
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
        (
            4,
            [
                // Per-node audit chains (Engine/AuditChain.swift): the single chain so far becomes chain "", its head
                // moves from metadata to audit_chains, and the one advisory lock every append took is gone.
                """
                CREATE TABLE audit_log (
                    chain TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, ts BIGINT NOT NULL,
                    type TEXT COLLATE "C" NOT NULL, actor TEXT COLLATE "C" NOT NULL, project TEXT COLLATE "C" NOT NULL,
                    body BYTEA NOT NULL, prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL,
                    PRIMARY KEY (chain, seq))
                """,
                """
                INSERT INTO audit_log (chain, seq, ts, type, actor, project, body, prev_hash, hash)
                SELECT '', seq, ts,
                    coalesce(convert_from(body, 'UTF8')::jsonb #>> '{event,type}', ''),
                    coalesce(convert_from(body, 'UTF8')::jsonb #>> '{actor,metadata,id}', ''),
                    coalesce(convert_from(body, 'UTF8')::jsonb #>> '{projectId}', ''),
                    body, prev_hash, hash
                FROM audit_events ORDER BY seq
                """,
                "DROP TABLE audit_events",
                "DROP FUNCTION IF EXISTS gatehouse_audit_tail(BIGINT)",
                "CREATE INDEX audit_log_ts ON audit_log (ts)",
                "CREATE INDEX audit_log_type ON audit_log (type, ts)",
                "CREATE INDEX audit_log_actor ON audit_log (actor, ts)",
                "CREATE INDEX audit_log_project ON audit_log (project, ts)",
                "CREATE TABLE audit_chains (chain TEXT COLLATE \"C\" PRIMARY KEY, head BYTEA NOT NULL)",
                "INSERT INTO audit_chains (chain, head) SELECT '', value FROM metadata WHERE key = 'audit_head'",
                "DELETE FROM metadata WHERE key = 'audit_head'",
                """
                CREATE TABLE audit_pending (
                    id TEXT PRIMARY KEY, chain TEXT COLLATE "C" NOT NULL, ts BIGINT NOT NULL,
                    type TEXT NOT NULL, actor TEXT NOT NULL, project TEXT NOT NULL, body BYTEA NOT NULL)
                """,
                "CREATE INDEX audit_pending_chain ON audit_pending (chain, ts)",
                // An append in one statement (so it needs no transaction of its own): the head moves only from the
                // head the events extend, the pending events go, the events are inserted, or nothing happens
                // (SQLSTATE GH001 when the head moved or a pending event is gone).
                """
                CREATE OR REPLACE FUNCTION gatehouse_audit_append(
                    p_relaxed BOOLEAN, p_chain TEXT, p_head BYTEA, p_prev BYTEA, p_sealing TEXT[], p_seqs BIGINT[],
                    p_ts BIGINT[], p_types TEXT[], p_actors TEXT[], p_projects TEXT[], p_bodies BYTEA[], p_prevs BYTEA[],
                    p_hashes BYTEA[])
                RETURNS VOID LANGUAGE plpgsql AS $fn$
                DECLARE n BIGINT;
                BEGIN
                    IF p_relaxed THEN PERFORM set_config('synchronous_commit', 'off', true); END IF;
                    IF p_prev IS NULL THEN
                        INSERT INTO audit_chains (chain, head) VALUES (p_chain, p_head) ON CONFLICT (chain) DO NOTHING;
                    ELSE
                        UPDATE audit_chains SET head = p_head WHERE chain = p_chain AND head = p_prev;
                    END IF;
                    GET DIAGNOSTICS n = ROW_COUNT;
                    IF n <> 1 THEN RAISE EXCEPTION 'the audit chain head moved' USING ERRCODE = 'GH001'; END IF;
                    DELETE FROM audit_pending WHERE id = ANY(p_sealing);
                    GET DIAGNOSTICS n = ROW_COUNT;
                    IF n <> coalesce(array_length(p_sealing, 1), 0) THEN
                        RAISE EXCEPTION 'a pending audit event was sealed elsewhere' USING ERRCODE = 'GH001';
                    END IF;
                    INSERT INTO audit_log (chain, seq, ts, type, actor, project, body, prev_hash, hash)
                    SELECT p_chain, * FROM unnest(p_seqs, p_ts, p_types, p_actors, p_projects, p_bodies, p_prevs, p_hashes);
                END
                $fn$
                """,
            ]
        ),
        (
            5,
            [
                // Session recordings shared by every node (PostgresRecordingStore): each recording is the pieces the
                // node that proxied it uploaded, at their byte offsets.
                """
                CREATE TABLE IF NOT EXISTS recording_pieces (
                    session TEXT NOT NULL, start_at BIGINT NOT NULL, bytes BYTEA NOT NULL,
                    PRIMARY KEY (session, start_at))
                """
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
                    throw StorageError(
                        .corrupt, "database schema \(current) is newer than this build (\(Self.schemaVersion))")
                }
                for (version, statements) in Self.migrations where version > current {
                    for sql in statements {
                        try await conn.query(PostgresQuery(unsafeSQL: sql), logger: self.logger)
                    }
                    let now = Record.millis(Date())
                    try await conn.query(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (\(version), \(now))",
                        logger: self.logger)
                }
                // Still under the migration lock: nodes starting together rebuild once.
                let tx = PostgresTransaction(connection: conn, logger: self.logger, catalog: indexes, prepared: false)
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
            return try await withLease(within: transactionTimeout) { conn in
                // A read holds no locks: if it outlives the deadline (a connection the server is no longer behind),
                // the connection is closed, which fails the read.
                try await self.closing(conn, after: self.transactionTimeout) {
                    let tx = PostgresTransaction(
                        connection: conn, logger: self.logger, catalog: self.indexes, prepared: self.preparedStatements,
                        readOnly: true)
                    defer { tx.closed = true }
                    return try await body(tx)
                }
            }
        } catch {
            throw Self.map(error)
        }
    }

    func run<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T, relaxed: Bool) async throws -> T
    {
        do {
            return try await withLease(within: transactionTimeout) { conn in
                // The first round trip (BEGIN) is under the deadline too: a pooled connection whose server went away
                // is only found out by using it. A transaction under way is never cut short.
                try await self.closing(conn, after: self.transactionTimeout) {
                    try await self.simple("BEGIN", on: conn)
                }
                do {
                    if relaxed { try await self.simple("SET LOCAL synchronous_commit TO OFF", on: conn) }
                    let tx = PostgresTransaction(
                        connection: conn, logger: self.logger, catalog: self.indexes, prepared: self.preparedStatements)
                    let value: T
                    do {
                        defer { tx.closed = true }
                        value = try await body(tx)
                    }
                    try await self.simple("COMMIT", on: conn)
                    return value
                } catch {
                    try? await self.simple("ROLLBACK", on: conn)
                    throw error
                }
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// A statement without parameters or rows, refused on a closed connection (where PostgresNIO would never
    /// complete it; see `withLease`).
    func simple(_ sql: String, on conn: PostgresConnection) async throws {
        if conn.isClosed { throw StorageError(.unavailable, "the database connection closed") }
        _ = try await conn.query(PostgresQuery(unsafeSQL: sql), logger: logger)
    }

    /// Runs `work` on `conn`; if it has not finished after `limit`, closes the connection (which fails it; the server
    /// rolls back whatever it had begun).
    func closing<T: Sendable>(_ conn: PostgresConnection, after limit: Duration, _ work: () async throws -> T)
        async throws -> T
    {
        let guardID = leases.add(deadline: .now + limit) { let _: EventLoopFuture<Void> = conn.close() }
        defer { _ = leases.claim(guardID) }
        return try await work()
    }

    /// Runs `body` on a pooled connection, failing with `.unavailable` when no connection is leased within `limit`
    /// (the database is away and the pool keeps retrying). The deadline covers the lease only, never a transaction
    /// in flight (cancelling PostgresNIO mid-transaction could leave a connection holding locks). It replaces a
    /// probe (`SELECT 1`) before each transaction, which cost a round trip: a KMIP Get made three.
    ///
    /// A helper task leases the connection and hands it over; `body` runs in the caller's task, and the helper gives
    /// the connection back to the pool when `body` is done. After a timeout the helper is not waited for (the pool
    /// may hold it until it gives up); if it gets a connection later, it returns it at once.
    func withLease<T: Sendable>(within limit: Duration, _ body: (PostgresConnection) async throws -> T) async throws
        -> T
    {
        let deadline = ContinuousClock.now + limit
        while true {
            let (conn, returned) = try await lease(until: deadline, limit: limit)
            defer {
                let waiter = returned.state.withLock { r -> CheckedContinuation<Void, Never>? in
                    r.done = true
                    defer { r.waiter = nil }
                    return r.waiter
                }
                waiter?.resume()
            }
            // The pool may hand out a connection whose close it has not processed yet. PostgresNIO drops a query
            // written to a closed channel without ever failing it (the caller would wait forever, past every
            // deadline): such a connection is given back, and another leased, before anything is sent.
            if conn.isClosed {
                if ContinuousClock.now >= deadline {
                    throw StorageError(.unavailable, "database not reachable within \(limit)")
                }
                await Task.yield()
                continue
            }
            return try await body(conn)
        }
    }

    /// One connection from the pool, and the box through which the caller gives it back (see `withLease`).
    private func lease(until deadline: ContinuousClock.Instant, limit: Duration) async throws -> (
        PostgresConnection, ReturnBox
    ) {
        let returned = ReturnBox()
        let conn: PostgresConnection = try await withCheckedThrowingContinuation {
            (handOver: CheckedContinuation<PostgresConnection, any Error>) in
            let waiting = leases.add(deadline: deadline) {
                handOver.resume(throwing: StorageError(.unavailable, "database not reachable within \(limit)"))
            }
            Task {
                do {
                    try await self.client.withConnection { conn in
                        // Claimed here: handed over. Expired already: given back to the pool at once.
                        guard self.leases.claim(waiting) else { return }
                        handOver.resume(returning: conn)
                        await withCheckedContinuation { (w: CheckedContinuation<Void, Never>) in
                            let done = returned.state.withLock { r -> Bool in
                                if r.done { return true }
                                r.waiter = w
                                return false
                            }
                            if done { w.resume() }
                        }
                    }
                } catch {
                    if self.leases.claim(waiting) { handOver.resume(throwing: error) }
                }
            }
        }
        return (conn, returned)
    }

    /// An audit append on its own: one statement, no transaction around it (`gatehouse_audit_append`), committed
    /// without waiting for the disk (see `withRelaxedTransaction`).
    public func appendAuditEvents(
        _ events: [AuditRecord], head: AuditChainHead, previous: AuditChainHead?, sealing: [String]
    )
        async throws
    {
        do {
            try await withLease(within: transactionTimeout) { conn in
                try await self.closing(conn, after: self.transactionTimeout) {
                    try await Self.append(
                        events, head: head, previous: previous, sealing: sealing, relaxed: true,
                        prepared: self.preparedStatements, on: conn,
                        logger: self.logger)
                }
            }
        } catch {
            throw Self.map(error)
        }
    }

    static func append(
        _ events: [AuditRecord], head: AuditChainHead, previous: AuditChainHead?, sealing: [String], relaxed: Bool,
        prepared: Bool, on conn: PostgresConnection, logger: Logger
    ) async throws {
        guard events.allSatisfy({ $0.chain == head.chain }) else {
            throw StorageError(.corrupt, "an event of another chain")
        }
        var binds = PostgresBindings()
        binds.append(relaxed)
        binds.append(head.chain)
        try binds.append(head.value)
        try binds.append(previous?.value)
        binds.append(sealing)
        binds.append(events.map(\.sequence))
        binds.append(events.map(\.timestampMillis))
        binds.append(events.map(\.fields.type))
        binds.append(events.map(\.fields.actor))
        binds.append(events.map(\.fields.project))
        binds.append(events.map { ByteBuffer(bytes: $0.body) })
        binds.append(events.map { ByteBuffer(bytes: $0.previousHash) })
        binds.append(events.map { ByteBuffer(bytes: $0.hash) })
        do {
            // The function's errors arrive after the row description: read the result to the end to see them.
            _ = try await conn.run(AppendAudit.self, binds, prepared: prepared, logger: logger)
        } catch {
            // Another writer of this chain appended the same sequence numbers first.
            let mapped = map(error)
            if let e = mapped as? StorageError, e.code == .uniqueViolation {
                throw StorageError(.auditConflict, "the chain moved")
            }
            throw mapped
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
    func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws
        -> T
    {
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

    /// Every table of every schema version (tools that empty a database drop these).
    public static let tables = [
        "record_index", "records", "audit_events", "audit_log", "audit_chains", "audit_pending", "metadata",
        "recording_pieces",
        "schema_migrations",
    ]

    /// How many tables and functions the database holds outside PostgreSQL's own schemas (zero: an empty database,
    /// which `gatehouse backup verify` requires before it restores a dump into it).
    public func userObjectCount() async throws -> Int {
        do {
            let rows = try await client.query(
                """
                SELECT (SELECT count(*) FROM information_schema.tables
                        WHERE table_schema NOT IN ('pg_catalog', 'information_schema'))
                     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
                """,
                logger: logger)
            for try await (count) in rows.decode(Int64.self) { return Int(count) }
            return 0
        } catch {
            throw Self.map(error)
        }
    }

    /// Every function of every schema version.
    public static let functions = ["gatehouse_audit_tail", "gatehouse_audit_append"]

    /// Drops every Gatehouse table and function. For tests that need a clean database, and for the scratch copy
    /// `gatehouse backup verify` restores.
    public func unsafeDropAll() async throws {
        do {
            for table in Self.tables {
                try await client.query(PostgresQuery(unsafeSQL: "DROP TABLE IF EXISTS \(table)"), logger: logger)
            }
            for function in Self.functions {
                try await client.query(PostgresQuery(unsafeSQL: "DROP FUNCTION IF EXISTS \(function)"), logger: logger)
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
    /// Whether hot statements run prepared (`PostgresStorage.preparedStatements`).
    let prepared: Bool

    let catalog: IndexCatalog
    /// Records of indexed kinds as this transaction last read or wrote them ("kind\u{0}id"): an update of one at
    /// the same version replaces its index entries without reading the row again (the version check in the UPDATE
    /// guarantees the row is still what was read).
    var known: [String: Record] = [:]

    init(connection: PostgresConnection, logger: Logger, catalog: IndexCatalog, prepared: Bool, readOnly: Bool = false)
    {
        self.connection = connection
        self.prepared = prepared
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
        (
            entries.map(\.index), entries.map(\.scope), entries.map { ByteBuffer(bytes: $0.key.bytes) },
            entries.map(\.unique)
        )
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
        // A statement written to a closed connection would never complete (see `PostgresStorage.withLease`).
        if connection.isClosed { throw StorageError(.unavailable, "the database connection closed") }
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

    /// Runs a hot statement on this transaction's connection.
    private func hot<Text: HotStatement>(_ text: Text.Type, _ binds: PostgresBindings) async throws -> [PostgresRow] {
        do {
            return try await live().run(text, binds, prepared: prepared, logger: logger)
        } catch {
            throw PostgresStorage.map(error)
        }
    }

    private func hotRecords<Text: HotStatement>(_ text: Text.Type, _ binds: PostgresBindings) async throws -> [Record] {
        do {
            return try await hot(text, binds).map { row in
                let (kind, id, scope, name, version, body, created, updated) = try row.decode(RecordRow.self)
                return Record(
                    kind: kind, id: id, scope: scope, name: name, version: version, body: body,
                    createdAt: Record.date(millis: created), updatedAt: Record.date(millis: updated))
            }
        } catch {
            throw PostgresStorage.map(error)
        }
    }

    func insert(_ record: Record) async throws {
        try checkWrite()
        var stored = record
        stored.version = 1
        let entries = try catalog.stored(stored)
        var binds = PostgresBindings()
        binds.append(record.kind)
        binds.append(record.id)
        binds.append(record.scope)
        binds.append(record.name)
        try binds.append(record.body)
        binds.append(Record.millis(record.createdAt))
        binds.append(Record.millis(record.updatedAt))
        if entries.isEmpty {
            _ = try await hot(InsertRecord.self, binds)
            return
        }
        // The record and its index entries in one statement (one round trip).
        let (i, sc, k, u) = Self.columns(entries)
        binds.append(i)
        binds.append(sc)
        binds.append(k)
        binds.append(u)
        _ = try await hot(InsertIndexedRecord.self, binds)
        remember([stored])
    }

    func get(kind: String, id: String) async throws -> Record? {
        var binds = PostgresBindings()
        binds.append(kind)
        binds.append(id)
        let found = try await hotRecords(GetRecord.self, binds)
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
        var binds = PostgresBindings()
        binds.append(record.kind)
        binds.append(record.id)
        binds.append(record.version)
        binds.append(record.scope)
        binds.append(record.name)
        try binds.append(record.body)
        binds.append(Record.millis(record.updatedAt))
        let rows: [Record]
        if catalog.indexers[record.kind] != nil {
            guard let old = try await previous(kind: record.kind, id: record.id, version: record.version) else {
                throw StorageError(.notFound)
            }
            guard old.version == record.version else { throw StorageError(.versionConflict) }
            // The row and the entries that change, in one statement; the entries move only if the row did.
            var next = record
            next.version = record.version + 1
            next.createdAt = old.createdAt
            let (removed, added) = try catalog.changes(from: old, to: next)
            let (ri, rs, rk, _) = Self.columns(removed)
            let (ai, asc, ak, au) = Self.columns(added)
            binds.append(ri)
            binds.append(rs)
            binds.append(rk)
            binds.append(ai)
            binds.append(asc)
            binds.append(ak)
            binds.append(au)
            rows = try await hotRecords(UpdateIndexedRecord.self, binds)
        } else {
            rows = try await hotRecords(UpdateRecord.self, binds)
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

    static let auditColumns = "chain, seq, ts, type, actor, project, body, prev_hash, hash"

    private func audits(_ query: PostgresQuery) async throws -> [AuditRecord] {
        var out: [AuditRecord] = []
        do {
            for try await (chain, seq, ts, type, actor, project, body, prev, hash) in try await run(query).decode(
                (String, Int64, Int64, String, String, String, Data, Data, Data).self)
            {
                out.append(
                    AuditRecord(
                        chain: chain, sequence: seq, timestampMillis: ts,
                        fields: AuditFields(type: type, actor: actor, project: project), body: body, previousHash: prev,
                        hash: hash))
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        return out
    }

    func addPendingAuditEvent(_ event: PendingAuditEvent) async throws {
        try checkWrite()
        var binds = PostgresBindings()
        binds.append(event.id)
        binds.append(event.chain)
        binds.append(event.timestampMillis)
        binds.append(event.fields.type)
        binds.append(event.fields.actor)
        binds.append(event.fields.project)
        try binds.append(event.body)
        _ = try await hot(AddPendingAudit.self, binds)
    }

    func pendingAuditEvents(chain: String?, before: Int64, limit: Int) async throws -> [PendingAuditEvent] {
        let limit = Int64(max(0, limit))
        let q: PostgresQuery =
            chain == nil
            ? "SELECT id, chain, ts, type, actor, project, body FROM audit_pending WHERE ts < \(before) ORDER BY ts, id LIMIT \(limit)"
            : """
            SELECT id, chain, ts, type, actor, project, body FROM audit_pending
            WHERE chain = \(chain) AND ts < \(before) ORDER BY ts, id LIMIT \(limit)
            """
        var out: [PendingAuditEvent] = []
        do {
            for try await (id, chain, ts, type, actor, project, body) in try await run(q).decode(
                (String, String, Int64, String, String, String, Data).self)
            {
                out.append(
                    PendingAuditEvent(
                        id: id, chain: chain, timestampMillis: ts,
                        fields: AuditFields(type: type, actor: actor, project: project), body: body))
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        return out
    }

    func removePendingAuditEvents(_ ids: [String]) async throws -> [String] {
        try checkWrite()
        var out: [String] = []
        do {
            for try await id in try await run("DELETE FROM audit_pending WHERE id = ANY(\(ids)::TEXT[]) RETURNING id")
                .decode(
                    String.self)
            {
                out.append(id)
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        return out
    }

    func auditChainHeads() async throws -> [AuditChainHead] {
        var out: [AuditChainHead] = []
        do {
            for try await (chain, head) in try await run("SELECT chain, head FROM audit_chains ORDER BY chain").decode(
                (String, Data).self)
            {
                out.append(AuditChainHead(chain: chain, value: head))
            }
        } catch {
            throw PostgresStorage.map(error)
        }
        return out
    }

    func appendAuditEvents(_ events: [AuditRecord], head: AuditChainHead, previous: AuditChainHead?, sealing: [String])
        async throws
    {
        try checkWrite()
        try await PostgresStorage.append(
            events, head: head, previous: previous, sealing: sealing, relaxed: false, prepared: prepared, on: live(),
            logger: logger)
    }

    func auditEvents(chain: String?, after: AuditPosition?, limit: Int) async throws -> [AuditRecord] {
        var sql = "SELECT \(Self.auditColumns) FROM audit_log WHERE TRUE"
        var binds = PostgresBindings()
        if let chain {
            binds.append(chain)
            sql += " AND chain = $\(binds.count)"
        }
        if let after {
            binds.append(after.chain)
            binds.append(after.sequence)
            sql += " AND (chain, seq) > ($\(binds.count - 1)::TEXT COLLATE \"C\", $\(binds.count))"
        }
        binds.append(Int64(max(0, limit)))
        sql += " ORDER BY chain, seq LIMIT $\(binds.count)"
        return try await audits(PostgresQuery(unsafeSQL: sql, binds: binds))
    }

    func searchAudit(_ query: AuditQuery) async throws -> [AuditRecord] {
        var sql = "SELECT \(Self.auditColumns) FROM audit_log WHERE TRUE"
        var binds = PostgresBindings()
        switch query.filter {
        case .all: break
        case .type(let v):
            binds.append(v)
            sql += " AND type = $\(binds.count)"
        case .actor(let v):
            binds.append(v)
            sql += " AND actor = $\(binds.count)"
        case .project(let v):
            binds.append(v)
            sql += " AND project = $\(binds.count)"
        }
        if let since = query.since {
            binds.append(since)
            sql += " AND ts >= $\(binds.count)"
        }
        if let until = query.until {
            binds.append(until)
            sql += " AND ts < $\(binds.count)"
        }
        if let after = query.after {
            binds.append(after.timestampMillis)
            let ts = binds.count
            binds.append(after.position.chain)
            binds.append(after.position.sequence)
            let op = query.descending ? "<" : ">"
            sql +=
                " AND ts \(op)= $\(ts) AND (ts, chain, seq) \(op) ($\(ts), $\(ts + 1)::TEXT COLLATE \"C\", $\(ts + 2))"
        }
        binds.append(Int64(max(0, query.limit)))
        sql +=
            query.descending
            ? " ORDER BY ts DESC, chain DESC, seq DESC LIMIT $\(binds.count)"
            : " ORDER BY ts, chain, seq LIMIT $\(binds.count)"
        return try await audits(PostgresQuery(unsafeSQL: sql, binds: binds))
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
            "INSERT INTO metadata (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
    }
}

/// The deadlines of leases waiting for a connection: whoever claims a lease first (the lease, or the watchdog at its
/// deadline) decides its outcome.
final class LeaseWatchdog: Sendable {
    private struct Waiting {
        var deadline: ContinuousClock.Instant
        var expire: @Sendable () -> Void
    }
    private let state = Mutex<(next: UInt64, waiting: [UInt64: Waiting])>((0, [:]))

    /// Registers a lease; `expire` runs (once) if it is still waiting at `deadline`.
    func add(deadline: ContinuousClock.Instant, expire: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLock { s in
            s.next += 1
            s.waiting[s.next] = Waiting(deadline: deadline, expire: expire)
            return s.next
        }
    }

    /// True if the lease was still waiting (it is now the caller's to settle).
    func claim(_ id: UInt64) -> Bool {
        state.withLock { $0.waiting.removeValue(forKey: id) != nil }
    }

    /// Expires the leases past their deadline.
    func expire(now: ContinuousClock.Instant) {
        let due = state.withLock { s -> [Waiting] in
            let ids = s.waiting.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { s.waiting.removeValue(forKey: $0) }
        }
        for d in due { d.expire() }
    }
}

/// Whether the caller is done with a leased connection, and the helper waiting to give it back.
final class ReturnBox: Sendable {
    let state = Mutex<(done: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))
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
