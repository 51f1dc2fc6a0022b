import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import Logging
import StorageAPI
import Synchronization

/// The engine: authorization, audit and envelope encryption in front of one `Storage`.
public final class GatehouseEngine: Engine, EngineService {
    let core: EngineCore
    /// Wakes live PAM sessions when their grant is revoked through this node.
    let grantChanges = GrantChangeSignal()
    /// Decoded managed-object bodies by id, with the record version they were decoded from.
    /// Streamed Encrypt/Decrypt operations in progress (KMIP Correlation Value → stream).
    let cipherStreams = StreamTable<CipherStreamState>()
    /// Streamed MAC and Hash operations in progress, by correlation value.
    let digestStreams = StreamTable<DigestState>()
    /// Decoding caches hold the stored bytes they decoded (see `EngineCore.decodedRecords`).
    let objectCache = Mutex<[String: (version: Int64, raw: Data, body: ManagedObjectBody)]>([:])
    /// Whether this engine has seen the administrators' default KMIP project exist (then it is not read again before
    /// each request; a Create that finds it gone clears this, so the next request makes it again).
    let defaultKMIPProjectSeen = Mutex(false)
    /// The PKI domain (issuance for the admin API, ACME, EST and KMIP).
    let pki: PKIService
    /// What other domains may use of the PKI domain.
    var issuer: any CertificateIssuing { pki }
    /// ACME directories.
    let acme: ACMEService
    /// EST enrollment.
    let est: ESTService
    /// Told the KMIP client CA (PEM) when this node creates it, so its KMIP listener trusts it at once (other nodes
    /// pick it up on their periodic refresh).
    let kmipClientCAsCreated: @Sendable ([String]) -> Void
    /// Reaches PostgreSQL resources for connection tests and rotation (the proxy front end's; nil: none, and those
    /// calls fail `.unavailable`).
    let pamConnector: (any PAMConnector)?
    /// The recording signing key, once loaded.
    let pamSigningKey = Mutex<Curve25519.Signing.PrivateKey?>(nil)
    /// Where session recordings are read from and, through the daemon's shipper, written to (nil: none).
    public let recordings: (any RecordingStore)?

    static let secretKind = "secret"

    /// Opens the engine: migrates storage, checks the root key, and creates the first data key and the audit
    /// key in a new store. Throws `EngineError` with a clear message (wrong root key, store unavailable, …).
    public static func open(
        storage: any Storage, rootKey: any RootKeyProvider, bootstrapAdmins: Set<String>,
        logger: Logger = Logger(label: "gatehouse.engine"), clock: @escaping @Sendable () -> Date = { Date() },
        node: String? = nil, recordings: (any RecordingStore)? = nil, pamConnector: (any PAMConnector)? = nil,
        pkiBaseURL: @escaping @Sendable () -> String = { "https://127.0.0.1:8443" },
        kmipClientCAsCreated: @escaping @Sendable ([String]) -> Void = { _ in }
    ) async throws -> GatehouseEngine {
        let key = try rootKey.loadRootKey()
        do {
            try await storage.migrate(indexes: indexCatalog)
        } catch let e as StorageError {
            throw EngineError(.unavailable, "storage (\(storage.backendName)) cannot be opened: \(e.detail)")
        }
        let keyring = Keyring(rootKey: key)
        do {
            try await keyring.bootstrap(storage)
            let auditKey = try await loadAuditKey(storage, keyring)
            let chain = node ?? Self.newNodeID()
            let engine = GatehouseEngine(
                storage: storage, keyring: keyring,
                audit: AuditLog(chain: AuditChain(key: auditKey), node: chain, storage: storage),
                bootstrapAdmins: bootstrapAdmins, logger: logger, clock: clock, recordings: recordings,
                pamConnector: pamConnector, pkiBaseURL: pkiBaseURL, kmipClientCAsCreated: kmipClientCAsCreated)
            // Events this node's previous process wrote with their changes but did not seal before it stopped.
            let sealed = try await engine.audit.writer.sealPending(of: chain, before: Int64.max)
            if sealed > 0 {
                logger.notice(
                    "sealed audit events left pending", metadata: ["count": "\(sealed)", "chain": "\(chain)"])
            }
            return engine
        } catch let e as StorageError {
            throw EngineError(
                .unavailable, "storage (\(storage.backendName)): \(e.detail.isEmpty ? e.code.rawValue : e.detail)")
        }
    }

    /// A random node id (the name of the node's audit chain) for engines opened without one: 12 base-32 letters.
    public static func newNodeID() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var g = SystemRandomNumberGenerator()
        return String((0..<12).map { _ in alphabet[Int(g.next() % 32)] })
    }

    static func loadAuditKey(_ storage: any Storage, _ keyring: Keyring) async throws -> SymmetricKey {
        for _ in 0..<3 {
            do {
                let raw = try await storage.withTransaction { tx -> [UInt8] in
                    if let record = try await tx.get(kind: Keyring.systemKind, id: AuditChain.keyID) {
                        return try await keyring.open(record.body, binding: "system/audit-key", tx)
                    }
                    let fresh = SymmetricKey(size: .bits256).withUnsafeBytes { [UInt8]($0) }
                    let sealed = try await keyring.seal(fresh, binding: "system/audit-key", tx)
                    try await tx.insert(Record(kind: Keyring.systemKind, id: AuditChain.keyID, body: sealed))
                    return fresh
                }
                return SymmetricKey(data: raw)
            } catch let e as StorageError where e.code == .uniqueViolation {
                continue
            }
        }
        throw EngineError(.unavailable, "cannot create the audit key")
    }

    init(
        storage: any Storage, keyring: Keyring, audit: AuditLog, bootstrapAdmins: Set<String>, logger: Logger,
        clock: @escaping @Sendable () -> Date, recordings: (any RecordingStore)? = nil,
        pamConnector: (any PAMConnector)? = nil,
        pkiBaseURL: @escaping @Sendable () -> String = { "https://127.0.0.1:8443" },
        kmipClientCAsCreated: @escaping @Sendable ([String]) -> Void = { _ in }
    ) {
        self.pamConnector = pamConnector
        self.kmipClientCAsCreated = kmipClientCAsCreated
        let core = EngineCore(
            storage: storage, keyring: keyring, audit: audit, bootstrapAdmins: bootstrapAdmins, logger: logger,
            clock: clock)
        self.core = core
        let pki = PKIService(core: core, pkiBaseURL: pkiBaseURL)
        self.pki = pki
        self.acme = ACMEService(core: core, issuer: pki)
        self.est = ESTService(core: core, issuer: pki)
        self.recordings = recordings
    }

    // MARK: - Health

    public func health() async -> HealthReport {
        do {
            try await storage.ping()
            return HealthReport(storageBackend: storage.backendName, storageReachable: true, detail: "ok")
        } catch {
            return HealthReport(
                storageBackend: storage.backendName, storageReachable: false, detail: "storage unreachable")
        }
    }

    // MARK: - Secrets

    struct SecretBody: Codable {
        var value: Data
    }

    func metadata(_ r: Record) -> SecretMetadata {
        SecretMetadata(
            id: r.id, project: r.scope, name: r.name ?? "", version: r.version, createdAt: r.createdAt,
            updatedAt: r.updatedAt)
    }

    public func createSecret(_ ctx: CallContext, project: String, name: String, value: SecretBytes) async throws
        -> SecretMetadata
    {
        try Self.validateName(project, "project")
        try Self.validateName(name, "name")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .secrets, .create, ["name": name]))
        let id = RandomUUID.lowercased()
        let now = clock()
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let sealed = try await self.keyring.seal(value.bytes, binding: "secret/\(id)/value", tx)
            let body = try JSONEncoder().encode(SecretBody(value: sealed))
            let record = Record(kind: Self.secretKind, id: id, scope: project, name: name, body: body, createdAt: now)
            try await tx.insert(record)
            try await self.audit.append(
                self.allowed(ctx, decision, "secret.create", project: project, ["secretId": id, "name": name]), tx)
            return self.metadata(record)
        }
    }

    public func updateSecret(
        _ ctx: CallContext, project: String, name: String, value: SecretBytes, expectedVersion: Int64?
    ) async throws -> SecretMetadata {
        try Self.validateName(project, "project")
        try Self.validateName(name, "name")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .secrets, .edit, ["name": name]))
        let now = clock()
        return try await transact { tx in
            guard var record = try await tx.find(kind: Self.secretKind, scope: project, name: name) else {
                throw EngineError(.notFound, "secret not found")
            }
            if let expectedVersion, expectedVersion != record.version {
                throw EngineError(.conflict, "secret is at version \(record.version), not \(expectedVersion)")
            }
            let sealed = try await self.keyring.seal(value.bytes, binding: "secret/\(record.id)/value", tx)
            record.body = try JSONEncoder().encode(SecretBody(value: sealed))
            record.updatedAt = now
            let stored = try await tx.update(record)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "secret.update", project: project,
                    ["secretId": record.id, "name": name, "version": "\(stored.version)"]),
                tx)
            return self.metadata(stored)
        }
    }

    public func readSecret(_ ctx: CallContext, project: String, name: String) async throws -> (
        SecretMetadata, SecretBytes
    ) {
        try Self.validateName(project, "project")
        try Self.validateName(name, "name")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .secrets, .read, ["name": name]))
        return try await transact(relaxed: true) { tx in
            guard let record = try await tx.find(kind: Self.secretKind, scope: project, name: name) else {
                throw EngineError(.notFound, "secret not found")
            }
            let body: SecretBody
            do {
                body = try JSONDecoder().decode(SecretBody.self, from: record.body)
            } catch {
                throw EngineError(.internal, "stored secret is unreadable", diagnostic: "\(record.id): \(error)")
            }
            let plain = try await self.keyring.open(body.value, binding: "secret/\(record.id)/value", tx)
            // The read is audited in the same transaction: no audit event, no plaintext.
            try await self.audit.append(
                self.allowed(ctx, decision, "secret.read", project: project, ["secretId": record.id, "name": name]), tx)
            return (self.metadata(record), SecretBytes(plain))
        }
    }

    public func listSecrets(_ ctx: CallContext, project: String, after: String?, limit: Int) async throws
        -> Page<SecretMetadata>
    {
        try Self.validateName(project, "project")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .secrets, .read))
        let limit = min(max(limit, 1), 1000)
        let records = try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let records = try await tx.list(kind: Self.secretKind, scope: project, afterID: after, limit: limit + 1)
            try await self.audit.append(self.allowed(ctx, decision, "secret.list", project: project), tx)
            return records
        }
        let page = records.prefix(limit)
        // Items the caller's conditions do not cover are left out (the cursor still advances past them).
        let items = page.map(metadata).filter {
            decision.permits(AccessRequest(.project(project), .secrets, .read, ["name": $0.name]))
        }
        return Page(items: items, next: records.count > limit ? page.last?.id : nil)
    }

    public func deleteSecret(_ ctx: CallContext, project: String, name: String) async throws {
        try Self.validateName(project, "project")
        try Self.validateName(name, "name")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .secrets, .delete, ["name": name]))
        try await transact { tx in
            guard let record = try await tx.find(kind: Self.secretKind, scope: project, name: name) else {
                throw EngineError(.notFound, "secret not found")
            }
            try await tx.delete(kind: Self.secretKind, id: record.id, expectedVersion: record.version)
            try await self.audit.append(
                self.allowed(ctx, decision, "secret.delete", project: project, ["secretId": record.id, "name": name]),
                tx)
        }
    }

    // MARK: - Audit

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

    // MARK: - Maintenance (local operator, not exposed to front ends)

    /// Regenerates every CRL past half its lifetime (the daemon's periodic refresh).
    public func refreshCRLs() async throws -> Int { try await pki.refreshCRLs() }

    /// Deletes expired ACME nonces, orders and authorizations (the daemon's periodic sweep).
    public func acmeSweep(batch: Int = 2000, maxBatches: Int = 500) async throws -> Int {
        try await acme.acmeSweep(batch: batch, maxBatches: maxBatches)
    }

    /// Re-wraps all data keys under a new root key. Returns how many were re-wrapped.
    public func rotateRootKey(to provider: any RootKeyProvider) async throws -> Int {
        let newKey = try provider.loadRootKey()
        do {
            let n = try await keyring.rotateRootKey(to: newKey, storage)
            try await record(self.event(.system("cli"), "root-key.rotate", project: nil, ["dataKeys": "\(n)"]))
            return n
        } catch let e as StorageError {
            throw EngineError(.unavailable, "storage unavailable", diagnostic: e.detail)
        }
    }
}

extension GatehouseEngine {
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
