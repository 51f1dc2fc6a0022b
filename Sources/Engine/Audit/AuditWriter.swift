import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Synchronization

/// An audit event on its way into a chain.
struct AuditDraft: Sendable {
    /// Random id (the pending row's key when the event was written with a change).
    var id: String
    var timestampMillis: Int64
    var fields: AuditFields
    /// The canonical JSON (what the chain's hash covers).
    var plain: Data
    /// The stored form (`StoredJSON`).
    var body: Data
    /// Written as a pending event in the transaction of its change (sealing deletes it).
    var pending: Bool

    init(_ event: AuditEvent, pending: Bool) {
        self.id = RandomUUID.lowercased()
        self.timestampMillis = Record.millis(event.timestamp)
        self.fields = AuditChain.fields(event)
        self.plain = AuditChain.body(event)
        self.body = StoredJSON.pack(plain)
        self.pending = pending
    }

    init(_ p: PendingAuditEvent) {
        self.id = p.id
        self.timestampMillis = p.timestampMillis
        self.fields = p.fields
        // An unreadable pending body is sealed as it is: its hash then covers those bytes, and verify reports it.
        self.plain = (try? StoredJSON.unpack(p.body)) ?? p.body
        self.body = p.body
        self.pending = true
    }
}

/// The events one engine transaction audits, handed to the writer once the transaction commits. A transaction that
/// is retried starts a new list.
final class AuditBatch: Sendable {
    /// Whether the transaction writes (its events are written as pending events with the change) or only reads.
    let writes: Bool
    private let drafts = Mutex<[AuditDraft]>([])

    init(writes: Bool) { self.writes = writes }

    func add(_ d: AuditDraft) { drafts.withLock { $0.append(d) } }
    func reset() { drafts.withLock { $0 = [] } }
    var all: [AuditDraft] { drafts.withLock { $0 } }

    /// The batch of the engine transaction running in this task.
    @TaskLocal static var current: AuditBatch?
}

/// Appends a node's audit events to its chain with **group commit**: a request hands its events over and waits;
/// the first waiting request becomes the leader and writes every queued event (up to `maxBatch`) in one
/// transaction, then wakes the others (or hands the lead to the next waiting request). Each request returns only
/// once its events are stored, and requests of one node share transactions instead of queueing on a lock; nodes
/// never wait for one another (each has its own chain head).
///
/// The chain head is cached between batches; a batch that finds it moved (another process using the same chain)
/// reloads it and tries again.
final class AuditWriter: Sendable {
    let chain: String
    let log: AuditChain
    let storage: any Storage
    static let maxBatch = 512

    /// What a waiting request learns.
    enum Outcome: Sendable { case stored, lead }

    /// A request's one-shot wake-up.
    final class Waiter: Sendable {
        private enum State {
            case idle
            case waiting(CheckedContinuation<Outcome, any Error>)
            case resolved(Result<Outcome, any Error>)
        }
        private let state = Mutex<State>(.idle)

        func wait() async throws -> Outcome {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Outcome, any Error>) in
                let ready: Result<Outcome, any Error>? = state.withLock { s in
                    if case .resolved(let r) = s { return r }
                    s = .waiting(c)
                    return nil
                }
                if let ready { c.resume(with: ready) }
            }
        }

        func resolve(_ r: Result<Outcome, any Error>) {
            let c: CheckedContinuation<Outcome, any Error>? = state.withLock { s in
                switch s {
                case .idle:
                    s = .resolved(r)
                    return nil
                case .waiting(let c):
                    s = .resolved(r)
                    return c
                case .resolved:
                    return nil
                }
            }
            c?.resume(with: r)
        }
    }

    struct Request {
        var drafts: [AuditDraft]
        let waiter: Waiter
    }

    struct State {
        var queue: [Request] = []
        var leading = false
        /// The chain's head as last written or read (nil: read it from the store first).
        var head: AuditChainHead?
        var headKnown = false
    }
    private let state = Mutex(State())

    init(chain: String, log: AuditChain, storage: any Storage) {
        self.chain = chain
        self.log = log
        self.storage = storage
    }

    /// Stores `drafts` in the chain; returns once they are stored (survives `kill -9` of this process).
    func store(_ drafts: [AuditDraft]) async throws {
        guard !drafts.isEmpty else { return }
        let waiter = Waiter()
        let leads = state.withLock { s -> Bool in
            s.queue.append(Request(drafts: drafts, waiter: waiter))
            if s.leading { return false }
            s.leading = true
            return true
        }
        if !leads, try await waiter.wait() == .stored { return }
        // Leading: write batches until this request's is written, then pass the lead on.
        while true {
            let batch = state.withLock { s -> [Request] in
                var taken: [Request] = []
                var events = 0
                while let next = s.queue.first, taken.isEmpty || events + next.drafts.count <= Self.maxBatch {
                    taken.append(s.queue.removeFirst())
                    events += next.drafts.count
                }
                return taken
            }
            let result: Result<Outcome, any Error>
            do {
                try await write(batch.flatMap(\.drafts))
                result = .success(.stored)
            } catch {
                result = .failure(error)
            }
            var mine: Result<Outcome, any Error>?
            for r in batch {
                if r.waiter === waiter { mine = result } else { r.waiter.resolve(result) }
            }
            guard let mine else { continue }
            let next = state.withLock { s -> Waiter? in
                guard let first = s.queue.first else {
                    s.leading = false
                    return nil
                }
                return first.waiter
            }
            next?.resolve(.success(.lead))
            _ = try mine.get()
            return
        }
    }

    /// One transaction: the events linked after the chain's head, the pending ones among them deleted, the head
    /// moved. On a moved head it reloads the head; pending events another writer sealed meanwhile are left out.
    private func write(_ drafts: [AuditDraft]) async throws {
        var attempt = 0
        while true {
            attempt += 1
            let (cached, known) = state.withLock { ($0.head, $0.headKnown) }
            let recheck = attempt > 1
            do {
                if known, !recheck {
                    // The usual case: one append after the head this node last wrote.
                    let head = try await append(drafts, after: cached) { records, head, previous, sealing in
                        try await self.storage.appendAuditEvents(
                            records, head: head, previous: previous, sealing: sealing)
                    }
                    state.withLock {
                        $0.head = head
                        $0.headKnown = true
                    }
                    return
                }
                let (head, kept) = try await storage.withRelaxedTransaction { tx -> (AuditChainHead, [AuditDraft]) in
                    let previous = try await tx.auditChainHeads().first { $0.chain == self.chain }
                    var kept = drafts
                    if recheck, drafts.contains(where: \.pending) {
                        // Claim the pending events first: those already gone were sealed by another writer.
                        let claimed = Set(try await tx.removePendingAuditEvents(drafts.filter(\.pending).map(\.id)))
                        kept = drafts.filter { !$0.pending || claimed.contains($0.id) }
                        kept = kept.map {
                            var d = $0
                            d.pending = false
                            return d
                        }
                    }
                    guard !kept.isEmpty else {
                        return (previous ?? AuditChainHead(chain: self.chain, value: Data()), kept)
                    }
                    let head = try await self.append(kept, after: previous) { records, head, previous, sealing in
                        try await tx.appendAuditEvents(records, head: head, previous: previous, sealing: sealing)
                    }
                    return (head, kept)
                }
                if !kept.isEmpty {
                    state.withLock {
                        $0.head = head
                        $0.headKnown = true
                    }
                }
                return
            } catch let e as StorageError
                where (e.code == .auditConflict || e.code == .transientConflict) && attempt < 8
            {
                state.withLock { $0.headKnown = false }
                try await Task.sleep(nanoseconds: UInt64.random(in: 200_000...2_000_000) * UInt64(attempt))
            } catch {
                state.withLock { $0.headKnown = false }
                throw error
            }
        }
    }

    /// Links `drafts` after `previous` and hands the records, the new head, the previous head and the pending ids to
    /// `write`; returns the new head.
    private func append(
        _ drafts: [AuditDraft], after previous: AuditChainHead?,
        _ write: ([AuditRecord], AuditChainHead, AuditChainHead?, [String]) async throws -> Void
    ) async throws -> AuditChainHead {
        var from: (sequence: Int64, hash: Data)?
        if let previous {
            guard let parsed = log.parseHead(previous.value) else {
                throw StorageError(.corrupt, "the audit chain head of \(chain) has an invalid signature")
            }
            from = parsed
        }
        let (records, value) = log.link(drafts, chain: chain, previous: from)
        let head = AuditChainHead(chain: chain, value: value)
        try await write(records, head, previous, drafts.filter(\.pending).map(\.id))
        return head
    }

    /// Seals pending events left behind (a process that stopped between a change's commit and its event's seal):
    /// those of `chain` (nil: of any chain) written before `before`. Returns how many.
    func sealPending(of chain: String?, before: Int64) async throws -> Int {
        var total = 0
        while true {
            let found = try await storage.withReadTransaction { tx in
                try await tx.pendingAuditEvents(chain: chain, before: before, limit: Self.maxBatch)
            }
            if found.isEmpty { return total }
            // A live writer may be sealing some of them right now: the first attempt then fails on the pending ids
            // and the next claims what is left.
            try await store(found.map(AuditDraft.init))
            total += found.count
            if found.count < Self.maxBatch { return total }
        }
    }
}

/// The engine's audit log: events are appended inside the engine's transactions (`append`) and stored in this node's
/// chain when the transaction commits (`GatehouseEngine.transact`), or stored directly (`record`).
final class AuditLog: Sendable {
    let chain: AuditChain
    let writer: AuditWriter

    var key: SymmetricKey { chain.key }

    init(chain: AuditChain, node: String, storage: any Storage) {
        self.chain = chain
        self.writer = AuditWriter(chain: node, log: chain, storage: storage)
    }

    /// Audits `event` as part of the engine transaction running in this task: a writing transaction writes it as a
    /// pending event with its change (they commit together); either way it is stored in the chain after the commit,
    /// before the transaction's result is returned.
    func append(_ event: AuditEvent, _ tx: any StorageTransaction) async throws {
        guard let batch = AuditBatch.current else {
            throw EngineError(.internal, "an audit event outside an engine transaction", diagnostic: event.event.type)
        }
        let draft = AuditDraft(event, pending: batch.writes)
        if batch.writes {
            try await tx.addPendingAuditEvent(
                PendingAuditEvent(
                    id: draft.id, chain: writer.chain, timestampMillis: draft.timestampMillis, fields: draft.fields,
                    body: draft.body))
        }
        batch.add(draft)
    }

    /// Stores events that go with no change (refusals, failed logins, reads): returns once they are stored.
    func record(_ events: [AuditEvent]) async throws {
        try await writer.store(events.map { AuditDraft($0, pending: false) })
    }

    func verify(storage: any Storage) async throws -> AuditVerification {
        try await chain.verify(storage: storage)
    }
}
