import Foundation

/// The transactional store under the engine. Implementations: `InMemoryStorage`, SQLite and PostgreSQL.
///
/// All state that matters across Gatehouse nodes lives behind this protocol, so several daemons sharing one
/// PostgreSQL database see one consistent store.
public protocol Storage: Sendable {
    /// A short name for logs and `/readyz` (`sqlite`, `postgres`, `memory`).
    var backendName: String { get }
    /// The secondary indexes this store maintains (those the last `migrate(indexes:)` declared): each insert,
    /// update and delete of an indexed kind writes the record's entries in the same transaction.
    var indexes: IndexCatalog { get }
    /// Applies pending schema migrations and declares the secondary indexes to maintain from now on, rebuilding
    /// the entries of every kind whose indexer version differs from the one its entries were built with (a new
    /// index, or an upgrade in place). Idempotent; safe to call from several nodes at once. Call it before any
    /// transaction.
    func migrate(indexes: IndexCatalog) async throws
    /// Runs `body` in one serializable transaction; commits if it returns, rolls back if it throws.
    /// A commit that returns is durable.
    func withTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T) async throws -> T
    /// Like `withTransaction`, but the commit may return before it reaches stable storage: it survives a crash
    /// (`kill -9`) of this process, not a power loss. Meant for transactions whose only write is the audit record of
    /// a read (Get, Encrypt, …), where waiting for an fsync would bound reads by disk latency.
    func withRelaxedTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T) async throws
        -> T
    /// Runs `body` as a read-only transaction: it sees only committed data, and any write in it fails (a programming
    /// error, reported as `.corrupt`). Backends may run it beside writers — SQLite does, on reader connections of its
    /// WAL database, so that reads never queue behind the single writer; SQLite gives the whole body one snapshot,
    /// PostgreSQL each statement its own (READ COMMITTED, as in its write transactions), so a body must not rely on
    /// two reads agreeing. Everything a transaction that returned wrote is visible to a read transaction that starts
    /// afterwards.
    func withReadTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T) async throws
        -> T
    /// `StorageTransaction.appendAuditEvents` on its own, committed like `withRelaxedTransaction`: what an audit
    /// writer does for each batch. Backends may do it in fewer round trips than a transaction.
    func appendAuditEvents(_ events: [AuditRecord], head: AuditChainHead, previous: AuditChainHead?, sealing: [String])
        async throws
    /// Cheap reachability check for readiness probes.
    func ping() async throws
    /// Releases connections and files.
    func close() async throws
}

/// Operations available inside a transaction.
public protocol StorageTransaction: Sendable {
    /// Inserts a new record with version 1. Throws `.uniqueViolation` if the id or the name is taken.
    func insert(_ record: Record) async throws
    /// Reads a record by kind and id.
    func get(kind: String, id: String) async throws -> Record?
    /// Reads a record by its unique name inside a scope.
    func find(kind: String, scope: String, name: String) async throws -> Record?
    /// Replaces a record if its stored version equals `record.version`; returns the stored record with the
    /// incremented version. Throws `.versionConflict` or `.notFound`.
    func update(_ record: Record) async throws -> Record
    /// Deletes a record if its stored version equals `expectedVersion`. Throws `.versionConflict` or `.notFound`.
    func delete(kind: String, id: String, expectedVersion: Int64) async throws
    /// Deletes up to `limit` records of `kind` in `scope` whose id sorts (bytewise) before `idBefore`, lowest ids
    /// first, regardless of version: the sweep of records whose id starts with their expiry time. Returns how many.
    func deleteBefore(kind: String, scope: String, idBefore: String, limit: Int) async throws -> Int
    /// Lists records of a kind in a scope ordered by id, starting after `afterID`, at most `limit`.
    func list(kind: String, scope: String?, afterID: String?, limit: Int) async throws -> [Record]
    /// Counts records of a kind (in a scope when given).
    func count(kind: String, scope: String?) async throws -> Int
    /// Scans a secondary index (declared in the store's `IndexCatalog`) in key order, then record id; descending
    /// queries run the same order backwards. Each record appears once per entry it has in the range.
    func lookup(_ query: IndexQuery) async throws -> [IndexedRecord]

    /// Writes an event that is not yet in a chain, in the transaction of the change it describes.
    func addPendingAuditEvent(_ event: PendingAuditEvent) async throws
    /// Pending events, oldest first: those meant for `chain` (all chains when nil) written before `before` (ms).
    func pendingAuditEvents(chain: String?, before: Int64, limit: Int) async throws -> [PendingAuditEvent]
    /// Deletes the pending events `ids` names that still exist; returns the ids it deleted (the others were sealed
    /// by another writer).
    func removePendingAuditEvents(_ ids: [String]) async throws -> [String]
    /// Every chain's stored head, by chain.
    func auditChainHeads() async throws -> [AuditChainHead]
    /// Appends `events` (consecutive, of one chain) and replaces the chain's head with `head`, deleting the pending
    /// events `sealing` names, all or nothing. `previous` is the head the events extend (nil for a new chain);
    /// when the stored head differs, or a pending event is gone (another writer sealed it), nothing is written and
    /// it throws `.auditConflict`. Nothing here locks more than the one chain's head.
    func appendAuditEvents(_ events: [AuditRecord], head: AuditChainHead, previous: AuditChainHead?, sealing: [String])
        async throws
    /// Reads events in (chain, sequence) order after `after` (from the start when nil), only those of `chain` when
    /// given, at most `limit`.
    func auditEvents(chain: String?, after: AuditPosition?, limit: Int) async throws -> [AuditRecord]
    /// Searches events by a field and a time range, in time order (see `AuditQuery`).
    func searchAudit(_ query: AuditQuery) async throws -> [AuditRecord]

    /// Reads a small metadata value (schema facts, root-key check value, …).
    func metadata(_ key: String) async throws -> Data?
    /// Writes a metadata value.
    func setMetadata(_ key: String, _ value: Data) async throws
}

extension Storage {
    /// Applies pending migrations, keeping the declared indexes.
    public func migrate() async throws { try await migrate(indexes: indexes) }

    /// Scans an index page by page and returns every record in range (tests, maintenance and bounded result sets).
    public func lookupAll(_ query: IndexQuery, pageSize: Int = 500) async throws -> [IndexedRecord] {
        var out: [IndexedRecord] = []
        var q = query
        q.limit = pageSize
        while true {
            let current = q
            let page = try await withReadTransaction { tx in try await tx.lookup(current) }
            out += page
            guard page.count == pageSize, let last = page.last else { return out }
            q.after = last.cursor
        }
    }
    public func appendAuditEvents(
        _ events: [AuditRecord], head: AuditChainHead, previous: AuditChainHead?, sealing: [String]
    )
        async throws
    {
        try await withRelaxedTransaction { tx in
            try await tx.appendAuditEvents(events, head: head, previous: previous, sealing: sealing)
        }
    }

    /// Backends without a cheaper relaxed commit run a normal transaction.
    public func withRelaxedTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T)
        async throws
        -> T
    {
        try await withTransaction(body)
    }

    /// Runs a transaction and retries it (up to `attempts` times) when it fails with an audit conflict or a backend
    /// serialization failure.
    ///
    /// `versionConflicts`: also retry `.versionConflict`, for bodies that read what they update in the same
    /// transaction (the next attempt reads the winner's version); never for updates with a version read elsewhere.
    public func withRetryingTransaction<T: Sendable>(
        attempts: Int = 8, relaxed: Bool = false, versionConflicts: Bool = false,
        _ body: @Sendable (any StorageTransaction) async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return relaxed ? try await withRelaxedTransaction(body) : try await withTransaction(body)
            } catch let error as StorageError
                where
                (error.code == .auditConflict || error.code == .transientConflict
                || (versionConflicts && error.code == .versionConflict))
                && attempt < attempts
            {
                try await Task.sleep(nanoseconds: UInt64.random(in: 1_000_000...5_000_000) * UInt64(attempt))
            }
        }
    }
}

extension StorageTransaction {
    /// Every record of `kind` in `scope` (nil: every scope), in id order, read a page of `pageSize` at a time: for
    /// the lists that are returned whole (a project's roles, CAs, resources), so that none is silently cut short.
    public func listEvery(kind: String, scope: String?, pageSize: Int = 1000) async throws -> [Record] {
        var records: [Record] = []
        var after: String?
        while true {
            let page = try await list(kind: kind, scope: scope, afterID: after, limit: pageSize)
            records += page
            guard page.count == pageSize, let last = page.last else { return records }
            after = last.id
        }
    }
}
