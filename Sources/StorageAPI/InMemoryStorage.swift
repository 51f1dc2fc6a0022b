import Foundation

/// A process-local store with the same semantics as the real backends. For tests and `--storage memory`.
public final class InMemoryStorage: Storage, @unchecked Sendable {
    struct State {
        var records: [String: Record] = [:]  // "kind\u{0}id"
        var names: [String: String] = [:]  // "kind\u{0}scope\u{0}name" -> id
        /// Chain -> its events in order.
        var audit: [String: [AuditRecord]] = [:]
        var heads: [String: AuditChainHead] = [:]
        var pending: [String: PendingAuditEvent] = [:]
        var metadata: [String: Data] = [:]
        /// "kind\u{0}index\u{0}scope" -> key -> record ids.
        var entries: [String: [IndexKey: Set<String>]] = [:]
    }

    private let lock = AsyncLock()
    // Only touched while `lock` is held.
    private var state = State()

    // Set by `migrate(indexes:)` (under `lock`) before transactions run.
    private var catalog = IndexCatalog.none
    public var indexes: IndexCatalog { catalog }

    /// Creates an empty store.
    public init() {}

    public var backendName: String { "memory" }
    public func migrate(indexes: IndexCatalog) async throws {
        await lock.withLock {
            // Rebuilt from the records: the reference the real stores' index scans are compared against.
            catalog = indexes
            state.entries = [:]
            let tx = Transaction(state: state, catalog: indexes)
            for r in state.records.values { try? tx.reindexForMigration(r) }
            state = tx.state
            for kind in indexes.indexers.keys {
                state.metadata[IndexCatalog.versionKey(kind)] = Data(String(indexes.indexers[kind]?.version ?? 0).utf8)
            }
        }
    }
    public func ping() async throws {}
    public func close() async throws {}

    public func withTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T) async throws
        -> T
    {
        try await lock.withLock {
            let tx = Transaction(state: state, catalog: catalog)
            let value = try await body(tx)
            state = tx.state
            tx.closed = true
            return value
        }
    }

    public func withReadTransaction<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T)
        async throws
        -> T
    {
        try await lock.withLock {
            let tx = Transaction(state: state, catalog: catalog, readOnly: true)
            defer { tx.closed = true }
            return try await body(tx)
        }
    }

    final class Transaction: StorageTransaction, @unchecked Sendable {
        var state: State
        var closed = false
        let readOnly: Bool
        let catalog: IndexCatalog
        init(state: State, catalog: IndexCatalog, readOnly: Bool = false) {
            self.state = state
            self.catalog = catalog
            self.readOnly = readOnly
        }

        private func indexKey(_ kind: String, _ index: String, _ scope: String) -> String {
            kind + "\u{0}" + index + "\u{0}" + scope
        }

        func reindexForMigration(_ r: Record) throws { try reindex(from: nil, to: r) }

        /// Moves a record's index entries from `old` to `new`, checking unique indexes first (nothing changes on a
        /// violation).
        private func reindex(from old: Record?, to new: Record?) throws {
            guard let r = new ?? old else { return }
            let (removed, added) = try catalog.changes(from: old, to: new)
            for e in added where e.unique {
                let holders = state.entries[indexKey(r.kind, e.index, e.scope)]?[e.key] ?? []
                if !holders.subtracting([r.id]).isEmpty {
                    throw StorageError(.uniqueViolation, "index \(e.index) key taken")
                }
            }
            for e in removed {
                let k = indexKey(r.kind, e.index, e.scope)
                state.entries[k]?[e.key]?.remove(r.id)
                if state.entries[k]?[e.key]?.isEmpty == true { state.entries[k]?[e.key] = nil }
            }
            for e in added {
                state.entries[indexKey(r.kind, e.index, e.scope), default: [:]][e.key, default: []].insert(r.id)
            }
        }

        private func key(_ kind: String, _ id: String) -> String { kind + "\u{0}" + id }
        private func nameKey(_ kind: String, _ scope: String, _ name: String) -> String {
            kind + "\u{0}" + scope + "\u{0}" + name
        }
        private func check() throws {
            if closed { throw StorageError(.corrupt, "transaction used after it ended") }
        }
        private func checkWrite() throws {
            try check()
            if readOnly { throw StorageError(.corrupt, "write in a read-only transaction") }
        }

        func insert(_ record: Record) async throws {
            try checkWrite()
            if state.records[key(record.kind, record.id)] != nil {
                throw StorageError(.uniqueViolation, "id \(record.id) exists")
            }
            if let name = record.name, state.names[nameKey(record.kind, record.scope, name)] != nil {
                throw StorageError(.uniqueViolation, "name exists")
            }
            var r = record
            r.version = 1
            try reindex(from: nil, to: r)
            state.records[key(r.kind, r.id)] = r
            if let name = r.name { state.names[nameKey(r.kind, r.scope, name)] = r.id }
        }

        func get(kind: String, id: String) async throws -> Record? {
            try check()
            return state.records[key(kind, id)]
        }

        func find(kind: String, scope: String, name: String) async throws -> Record? {
            try check()
            guard let id = state.names[nameKey(kind, scope, name)] else { return nil }
            return state.records[key(kind, id)]
        }

        func update(_ record: Record) async throws -> Record {
            try checkWrite()
            guard let old = state.records[key(record.kind, record.id)] else { throw StorageError(.notFound) }
            guard old.version == record.version else { throw StorageError(.versionConflict) }
            if let name = record.name, name != old.name || record.scope != old.scope,
                state.names[nameKey(record.kind, record.scope, name)] != nil
            {
                throw StorageError(.uniqueViolation, "name exists")
            }
            var r = record
            r.version = old.version + 1
            r.createdAt = old.createdAt
            try reindex(from: old, to: r)
            if let name = old.name { state.names[nameKey(old.kind, old.scope, name)] = nil }
            state.records[key(r.kind, r.id)] = r
            if let name = r.name { state.names[nameKey(r.kind, r.scope, name)] = r.id }
            return r
        }

        func delete(kind: String, id: String, expectedVersion: Int64) async throws {
            try checkWrite()
            guard let old = state.records[key(kind, id)] else { throw StorageError(.notFound) }
            guard old.version == expectedVersion else { throw StorageError(.versionConflict) }
            try reindex(from: old, to: nil)
            state.records[key(kind, id)] = nil
            if let name = old.name { state.names[nameKey(kind, old.scope, name)] = nil }
        }

        func deleteBefore(kind: String, scope: String, idBefore: String, limit: Int) async throws -> Int {
            try checkWrite()
            let doomed = state.records.values
                .filter {
                    $0.kind == kind && $0.scope == scope
                        && Array($0.id.utf8).lexicographicallyPrecedes(Array(idBefore.utf8))
                }
                .sorted { Array($0.id.utf8).lexicographicallyPrecedes(Array($1.id.utf8)) }
                .prefix(max(0, limit))
            for r in doomed {
                try reindex(from: r, to: nil)
                state.records[key(kind, r.id)] = nil
                if let name = r.name { state.names[nameKey(kind, r.scope, name)] = nil }
            }
            return doomed.count
        }

        func list(kind: String, scope: String?, afterID: String?, limit: Int) async throws -> [Record] {
            try check()
            return Array(
                state.records.values
                    .filter {
                        $0.kind == kind && (scope == nil || $0.scope == scope) && (afterID == nil || $0.id > afterID!)
                    }
                    .sorted { $0.id < $1.id }
                    .prefix(max(0, limit)))
        }

        func count(kind: String, scope: String?) async throws -> Int {
            try check()
            return state.records.values.filter { $0.kind == kind && (scope == nil || $0.scope == scope) }.count
        }

        func lookup(_ query: IndexQuery) async throws -> [IndexedRecord] {
            try check()
            let scope = try query.storedScope(catalog)
            var hits: [(IndexKey, String)] = []
            for (k, ids) in state.entries[indexKey(query.kind, query.index, scope)] ?? [:] {
                for id in ids where query.admits(key: k, id: id) { hits.append((k, id)) }
            }
            hits.sort { a, b in a.0 != b.0 ? a.0 < b.0 : Array(a.1.utf8).lexicographicallyPrecedes(Array(b.1.utf8)) }
            if query.descending { hits.reverse() }
            return hits.prefix(max(0, query.limit)).compactMap { k, id in
                state.records[key(query.kind, id)].map { IndexedRecord(record: $0, key: k) }
            }
        }

        func addPendingAuditEvent(_ event: PendingAuditEvent) async throws {
            try checkWrite()
            guard state.pending[event.id] == nil else { throw StorageError(.uniqueViolation) }
            state.pending[event.id] = event
        }

        func pendingAuditEvents(chain: String?, before: Int64, limit: Int) async throws -> [PendingAuditEvent] {
            try check()
            let found = state.pending.values.filter {
                (chain == nil || $0.chain == chain) && $0.timestampMillis < before
            }
            return Array(
                found.sorted { ($0.timestampMillis, $0.id) < ($1.timestampMillis, $1.id) }.prefix(max(0, limit)))
        }

        func removePendingAuditEvents(_ ids: [String]) async throws -> [String] {
            try checkWrite()
            return ids.filter { state.pending.removeValue(forKey: $0) != nil }
        }

        func auditChainHeads() async throws -> [AuditChainHead] {
            try check()
            return state.heads.values.sorted { Array($0.chain.utf8).lexicographicallyPrecedes(Array($1.chain.utf8)) }
        }

        func appendAuditEvents(
            _ events: [AuditRecord], head: AuditChainHead, previous: AuditChainHead?, sealing: [String]
        )
            async throws
        {
            try checkWrite()
            guard state.heads[head.chain] == previous, sealing.allSatisfy({ state.pending[$0] != nil }) else {
                throw StorageError(.auditConflict)
            }
            var chain = state.audit[head.chain] ?? []
            for e in events {
                guard e.chain == head.chain, e.sequence == (chain.last?.sequence ?? 0) + 1 else {
                    throw StorageError(.auditConflict, "events out of sequence")
                }
                chain.append(e)
            }
            state.audit[head.chain] = chain
            state.heads[head.chain] = head
            for id in sealing { state.pending[id] = nil }
        }

        func auditEvents(chain: String?, after: AuditPosition?, limit: Int) async throws -> [AuditRecord] {
            try check()
            var out: [AuditRecord] = []
            let chains = state.audit.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for c in chains where chain == nil || c == chain {
                for e in state.audit[c] ?? [] where after.map({ $0 < e.position }) ?? true {
                    if out.count >= limit { return out }
                    out.append(e)
                }
            }
            return out
        }

        func searchAudit(_ query: AuditQuery) async throws -> [AuditRecord] {
            try check()
            let all = state.audit.values.joined().filter { query.admits($0) }
            func cursor(_ r: AuditRecord) -> AuditQuery.Cursor {
                AuditQuery.Cursor(timestampMillis: r.timestampMillis, position: r.position)
            }
            var sorted = all.sorted { AuditQuery.precedes(cursor($0), cursor($1)) }
            if query.descending { sorted.reverse() }
            return Array(sorted.prefix(max(0, query.limit)))
        }

        func metadata(_ key: String) async throws -> Data? {
            try check()
            return state.metadata[key]
        }

        func setMetadata(_ key: String, _ value: Data) async throws {
            try checkWrite()
            state.metadata[key] = value
        }
    }
}
