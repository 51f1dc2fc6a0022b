import EngineAPI
import ExtrasBase64
import Foundation
import StorageAPI

/// Reading and checking the audit log: every node's chain, paged and searched; checkpoints; the stream cursors.
public final class AuditService: EngineService {
    let core: EngineCore
    init(core: EngineCore) { self.core = core }
}

extension AuditService {
    func chained(_ r: AuditRecord, _ decoder: JSONDecoder) throws -> ChainedAuditEvent {
        do {
            let e = try decoder.decode(AuditEvent.self, from: try StoredJSON.unpack(r.body))
            return ChainedAuditEvent(chain: r.chain, sequence: r.sequence, event: e, hash: Hex.encode(r.hash))
        } catch {
            throw EngineError(.internal, "audit event \(r.chain)/\(r.sequence) is unreadable", diagnostic: "\(error)")
        }
    }

    public func auditEvents(_ ctx: CallContext, cursor: String?, limit: Int) async throws -> Page<ChainedAuditEvent> {
        try await authorize(ctx, AccessRequest(.organization, .audit, .read))
        var position = AuditStreamCursor()
        if let cursor {
            guard let parsed = AuditStreamCursor(token: cursor) else {
                throw EngineError(.invalidArgument, "malformed cursor")
            }
            position = parsed
        }
        let limit = min(max(limit, 1), 1000)
        let start = position
        // Each chain's next events after the cursor's position in it, merged by time: a page never skips an event
        // that a node appends later with an earlier time, since the cursor keeps each chain's own position.
        let perChain = try await read { tx -> [[AuditRecord]] in
            var lists: [[AuditRecord]] = []
            for head in try await tx.auditChainHeads() {
                let from = start.positions[head.chain].map { AuditPosition(chain: head.chain, sequence: $0) }
                let events = try await tx.auditEvents(chain: head.chain, after: from, limit: limit)
                if !events.isEmpty { lists.append(events) }
            }
            return lists
        }
        // A merge that keeps each chain in sequence order (a chain's times need not grow with its sequence: events
        // are sealed in arrival order), taking the earliest next event of any chain each time; the cursor then
        // covers a prefix of each chain.
        var next = Array(repeating: 0, count: perChain.count)
        var page: [AuditRecord] = []
        while page.count < limit {
            var best: Int?
            for (i, list) in perChain.enumerated() where next[i] < list.count {
                guard let b = best else {
                    best = i
                    continue
                }
                let (x, y) = (list[next[i]], perChain[b][next[b]])
                if (x.timestampMillis, x.chain) < (y.timestampMillis, y.chain) { best = i }
            }
            guard let b = best else { break }
            page.append(perChain[b][next[b]])
            next[b] += 1
        }
        for r in page { position.positions[r.chain] = r.sequence }
        let decoder = AuditChain.decoder()
        return Page(items: try page.map { try chained($0, decoder) }, next: position.token)
    }

    /// A cursor at the end of every chain now: reading the log from it returns only what is appended later.
    public func auditLogEnd(_ ctx: CallContext) async throws -> String {
        try await authorize(ctx, AccessRequest(.organization, .audit, .read))
        var end = AuditStreamCursor()
        for head in try await read({ tx in try await tx.auditChainHeads() }) {
            end.positions[head.chain] = audit.chain.parseHead(head.value)?.sequence ?? 0
        }
        return end.token
    }

    public func searchAudit(_ ctx: CallContext, _ search: AuditSearch) async throws -> Page<ChainedAuditEvent> {
        try await authorize(ctx, AccessRequest(.organization, .audit, .read))
        let filters = [
            search.type.map(AuditQuery.Filter.type), search.actor.map(AuditQuery.Filter.actor),
            search.project.map(AuditQuery.Filter.project),
        ]
        .compactMap { $0 }
        guard filters.count <= 1 else { throw EngineError(.invalidArgument, "search by one of type, actor or project") }
        var after: AuditQuery.Cursor?
        if let cursor = search.cursor {
            guard let parsed = AuditQuery.Cursor(token: cursor) else {
                throw EngineError(.invalidArgument, "malformed cursor")
            }
            after = parsed
        }
        let limit = min(max(search.limit, 1), 1000)
        let query = AuditQuery(
            filter: filters.first ?? .all, since: search.since.map(Record.millis),
            until: search.until.map(Record.millis),
            descending: search.newestFirst, after: after, limit: limit + 1)
        let records = try await read { tx in try await tx.searchAudit(query) }
        let page = records.prefix(limit)
        let decoder = AuditChain.decoder()
        let next =
            records.count > limit
            ? page.last.map { AuditQuery.Cursor(timestampMillis: $0.timestampMillis, position: $0.position).token }
            : nil
        return Page(items: try page.map { try chained($0, decoder) }, next: next)
    }

    /// Signs a checkpoint of every chain's head (the daemon does it periodically): from then on, deleting a whole
    /// chain, or a chain's events up to the checkpointed head, is detected by `verifyAudit`.
    public func writeAuditCheckpoint() async throws {
        try await mappingStorageErrors {
            try await storage.withRetryingTransaction { tx in
                let heads = try await tx.auditChainHeads()
                guard !heads.isEmpty else { return }
                try await tx.setMetadata(AuditChain.checkpointKey, self.audit.chain.checkpoint(heads))
            }
        }
    }

    /// Seals the pending audit events of any node older than `age` (a node that stopped between a change and its
    /// event's seal and has not come back). Returns how many.
    @discardableResult
    public func sealAbandonedAuditEvents(olderThan age: Duration = .seconds(60)) async throws -> Int {
        let before = Record.millis(clock()) - Int64(age.components.seconds * 1000)
        return try await mappingStorageErrors { try await audit.writer.sealPending(of: nil, before: before) }
    }

    public func verifyAudit(_ ctx: CallContext) async throws -> AuditVerification {
        // Read-only on purpose: appending here would re-sign the head and could hide a truncation just detected.
        try await authorize(ctx, AccessRequest(.organization, .audit, .read))
        return try await verifyChain()
    }

    func verifyChain() async throws -> AuditVerification {
        do {
            return try await audit.verify(storage: storage)
        } catch let e as StorageError {
            throw EngineError(.unavailable, "storage unavailable", diagnostic: e.detail)
        }
    }
}

extension AuditService {
    public static let streamCursorKey = "audit_stream_cursor"

    /// Where an audit stream has delivered up to (shared by all nodes of a store), as an `auditEvents` cursor; `name`
    /// tells the streams apart (the audit stream, the PAM notifications).
    public func auditStreamCursor(name: String = streamCursorKey) async throws -> String {
        let data = try await read { tx in try await tx.metadata(name) }
        return AuditStreamCursor(stored: data).token
    }

    /// Advances an audit stream cursor (never moves a chain's position backwards).
    public func advanceAuditStreamCursor(to cursor: String, name: String = streamCursorKey) async throws {
        guard let target = AuditStreamCursor(token: cursor) else {
            throw EngineError(.invalidArgument, "malformed cursor")
        }
        try await transact { tx in
            var current = AuditStreamCursor(stored: try await tx.metadata(name))
            let before = current
            for (chain, seq) in target.positions { current.positions[chain] = max(current.positions[chain] ?? 0, seq) }
            if current != before { try await tx.setMetadata(name, Data(current.token.utf8)) }
        }
    }
}

/// A position in every audit chain: how far a reader of the whole log has got.
struct AuditStreamCursor: Sendable, Hashable {
    var positions: [String: Int64] = [:]

    init() {}

    /// A stored cursor: a token, or (stores from before per-node chains) a sequence number of chain "".
    init(stored: Data?) {
        guard let stored else { return }
        let text = String(decoding: stored, as: UTF8.self)
        if let n = Int64(text) {
            positions[""] = n
        } else if let parsed = AuditStreamCursor(token: text) {
            self = parsed
        }
    }

    /// base64url of `chain=seq` pairs joined by newlines (chain ids are node ids: no `=` or newline).
    var token: String {
        let text = positions.keys.sorted().map { "\($0)=\(positions[$0] ?? 0)" }.joined(separator: "\n")
        return "c"
            + Base64.encodeToString(bytes: Array(text.utf8), options: [.base64UrlAlphabet, .omitPaddingCharacter])
    }

    init?(token: String) {
        guard token.first == "c", token.utf8.count <= 65_536 else { return nil }
        guard
            let data = try? Base64.decode(
                string: String(token.dropFirst()), options: [.base64UrlAlphabet, .omitPaddingCharacter])
        else {
            return nil
        }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let eq = line.lastIndex(of: "="), let n = Int64(line[line.index(after: eq)...]), n >= 0 else {
                return nil
            }
            positions[String(line[..<eq])] = n
        }
    }
}
