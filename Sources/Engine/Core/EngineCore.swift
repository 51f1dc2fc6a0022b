import ACMEProtocol
import EngineAPI
import Foundation
import Logging
import StorageAPI
import Synchronization

/// What every domain service of the engine is built on: one store, the keyring, this node's audit chain, the
/// access-control caches, a logger and a clock. Built once in `GatehouseEngine.open` and shared.
public final class EngineCore: Sendable {
    let storage: any Storage
    let keyring: Keyring
    let audit: AuditLog
    let bootstrapAdmins: Set<String>
    let accessCache = AccessCache()
    /// Bounds what refused calls write to the audit log (a few in full per source and window, then a count).
    let refusalLimiter = RefusalAuditLimiter()
    /// Every decoding cache holds the stored bytes it decoded and is hit only when the record read now has the same
    /// version **and** the same bytes. The version alone is not enough: a transaction that rolled back may have
    /// cached its own uncommitted version N, and another transaction (or node) may then commit a different version N.
    /// Decoded records (profiles, templates, …) by kind/id, with the record version they were decoded from.
    let decodedRecords = Mutex<[String: (version: Int64, raw: Data, value: any Sendable)]>([:])
    /// The KMIP client CA as last read (certificate DER and key identifier), to tell its certificates apart: one of
    /// them never makes a bootstrap administrator.
    let kmipClientCA = Mutex<(der: Data, keyID: [UInt8])?>(nil)
    /// `issuedByKMIPClientCA` verdicts by certificate fingerprint (principal id).
    let kmipIssuedVerdicts = Mutex<[String: Bool]>([:])
    let logger: Logger
    let clock: @Sendable () -> Date

    init(
        storage: any Storage, keyring: Keyring, audit: AuditLog, bootstrapAdmins: Set<String>, logger: Logger,
        clock: @escaping @Sendable () -> Date
    ) {
        self.storage = storage
        self.keyring = keyring
        self.audit = audit
        self.bootstrapAdmins = bootstrapAdmins
        self.logger = logger
        self.clock = clock
    }
}

/// A domain service of the engine (Access, Secrets, Keys, PKI, ACME, EST, SSH, PAM): it reaches the store, the
/// audit log and authorization only through its core, and other domains only through narrow protocols.
protocol EngineService: Sendable {
    var core: EngineCore { get }
}

extension EngineService {
    var storage: any Storage { core.storage }
    var keyring: Keyring { core.keyring }
    var audit: AuditLog { core.audit }
    var bootstrapAdmins: Set<String> { core.bootstrapAdmins }
    var accessCache: AccessCache { core.accessCache }
    var refusalLimiter: RefusalAuditLimiter { core.refusalLimiter }
    var logger: Logger { core.logger }
    var clock: @Sendable () -> Date { core.clock }

    func event(_ ctx: CallContext, _ type: String, project: String?, _ metadata: [String: String]) -> AuditEvent {
        var actorMetadata = [
            "id": ctx.principal.id, "name": ctx.principal.name, "authMethod": ctx.principal.method.rawValue,
        ]
        for (k, v) in ctx.principal.attributes { actorMetadata[k] = v }
        var meta = metadata
        meta["requestId"] = ctx.requestID
        let actorType: String
        switch ctx.principal.method {
        case .system: actorType = "platform"
        case .anonymous: actorType = "unknownUser"
        case .acmeAccount: actorType = "acmeAccount"
        case .tlsCertificate, .token: actorType = "identity"
        }
        return AuditEvent(
            event: .init(type: type, metadata: meta), actor: .init(type: actorType, metadata: actorMetadata),
            projectId: project, ipAddress: ctx.ipAddress, userAgent: ctx.userAgent, userAgentType: ctx.frontEnd,
            timestamp: clock())
    }

    /// Runs a storage transaction, mapping storage errors to engine errors, and stores the audit events it appended
    /// in this node's chain after it commits (the result is returned only once they are stored).
    ///
    /// `relaxed`: the body only reads (its one write used to be its audit event): it runs as a read transaction,
    /// which never queues behind writers, and its events go straight to the chain.
    ///
    /// `reloads`: the body reads what it updates inside the transaction, so a version conflict (another node
    /// changed the record between the read and the write) is retried: the next attempt reads the winner's version.
    /// Bodies that update with a version read elsewhere must not set it.
    func transact<T: Sendable>(
        relaxed: Bool = false, reloads: Bool = false, _ body: @Sendable (any StorageTransaction) async throws -> T
    ) async throws -> T {
        let batch = AuditBatch(writes: !relaxed)
        let value = try await AuditBatch.$current.withValue(batch) {
            try await mappingStorageErrors {
                if relaxed {
                    return try await storage.withReadTransaction { tx in
                        batch.reset()
                        return try await body(tx)
                    }
                }
                return try await storage.withRetryingTransaction(versionConflicts: reloads) { tx in
                    batch.reset()
                    return try await body(tx)
                }
            }
        }
        try await mappingStorageErrors { try await audit.writer.store(batch.all) }
        return value
    }

    /// Stores audit events that go with no change (refusals, failed logins): returns once they are stored.
    func record(_ events: AuditEvent...) async throws {
        try await mappingStorageErrors { try await audit.record(events) }
    }

    /// A read-only transaction (`Storage.withReadTransaction`): it sees every write acknowledged before it starts and
    /// does not queue behind writers where the backend can avoid it. It must not write.
    func read<T: Sendable>(_ body: @Sendable (any StorageTransaction) async throws -> T) async throws -> T {
        try await mappingStorageErrors { try await storage.withReadTransaction(body) }
    }

    /// Reads the entries of `query` a page at a time (each page in its own read transaction, after the last entry
    /// of the one before) and hands each page to `body`, until it returns false or the entries run out: for the
    /// periodic sweeps, whose cost follows what they find.
    func forEachPage(_ query: IndexQuery, _ body: ([IndexedRecord]) async throws -> Bool) async throws {
        var query = query
        while true {
            let current = query
            let page = try await read { tx in try await tx.lookup(current) }
            guard !page.isEmpty, try await body(page), page.count == query.limit, let last = page.last else { return }
            query.after = last.cursor
        }
    }

    /// Runs a storage call, turning its errors into `EngineError`s.
    func mappingStorageErrors<T: Sendable>(_ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let e as EngineError {
            throw e
        } catch let e as StorageError {
            switch e.code {
            case .uniqueViolation: throw EngineError(.alreadyExists, "already exists", diagnostic: e.detail)
            case .versionConflict, .auditConflict, .transientConflict:
                throw EngineError(.conflict, "concurrent modification; retry", diagnostic: e.detail)
            case .notFound: throw EngineError(.notFound, "not found", diagnostic: e.detail)
            case .unavailable: throw EngineError(.unavailable, "storage unavailable", diagnostic: e.detail)
            case .corrupt: throw EngineError(.internal, "storage error", diagnostic: e.detail)
            }
        } catch is CancellationError {
            throw EngineError(.unavailable, "cancelled")
        } catch {
            throw EngineError(.internal, "internal error", diagnostic: "\(error)")
        }
    }

    static func validateName(_ value: String, _ what: String) throws {
        guard !value.isEmpty, value.utf8.count <= 200,
            value.unicodeScalars.allSatisfy({
                CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)
            })
        else {
            throw EngineError(.invalidArgument, "\(what) must be 1–200 characters of letters, digits, '-', '_' or '.'")
        }
    }

    func decode<T: Decodable>(_ type: T.Type, _ record: Record) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: try StoredJSON.unpack(record.body))
        } catch {
            throw EngineError(.internal, "a stored \(record.kind) is unreadable", diagnostic: "\(record.id): \(error)")
        }
    }

    /// A record body: JSON, compressed for the kinds stored by the million (KMIP objects; see `StoredJSON`).
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        do {
            let json = try JSONEncoder().encode(value)
            return T.self == ManagedObjectBody.self ? StoredJSON.pack(json) : json
        } catch {
            throw EngineError(.internal, "cannot encode a record", diagnostic: "\(error)")
        }
    }

    /// Decodes a record, reusing the previous decoding while the record's version and bytes are unchanged.
    func cachedDecode<T: Decodable & Sendable>(_ type: T.Type, _ record: Record) throws -> T {
        let key = record.kind + "/" + record.id
        if let hit = core.decodedRecords.withLock({ $0[key] }), hit.version == record.version, hit.raw == record.body,
            let value = hit.value as? T
        {
            return value
        }
        let value = try decode(T.self, record)
        core.decodedRecords.withLock { cache in
            if cache.count > 5_000 { cache.removeAll() }
            cache[key] = (record.version, record.body, value)
        }
        return value
    }

    /// A random token: `bytes` random bytes in base64url.
    static func randomToken(_ bytes: Int = 16) -> String {
        Base64URL.encode(RandomBytes.make(bytes))
    }

    static func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }

    /// A DNS name or an IP address (SSH hosts, PostgreSQL resources).
    static func validateHostname(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 253,
            name.unicodeScalars.allSatisfy({
                ($0.isASCII && (CharacterSet.alphanumerics.contains($0))) || "-.:".unicodeScalars.contains($0)
            }),
            !name.hasPrefix("-"), !name.hasPrefix(".")
        else { throw EngineError(.invalidArgument, "hostname must be a DNS name or an IP address") }
    }
}
