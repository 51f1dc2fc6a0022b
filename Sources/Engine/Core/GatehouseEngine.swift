import Crypto
import EngineAPI
import Foundation
import Logging
import StorageAPI

/// The engine: authorization, audit and envelope encryption in front of one `Storage`.
public final class GatehouseEngine: Engine, EngineService {
    let core: EngineCore
    /// Projects, identities, authentication and roles.
    public let access: AccessService
    /// The PKI domain (issuance for the admin API, ACME, EST and KMIP).
    let pki: PKIService
    /// ACME directories.
    let acme: ACMEService
    /// EST enrollment.
    let est: ESTService
    /// The SSH certificate authority.
    let ssh: SSHService
    /// Secrets.
    let secrets: SecretsService
    /// Reading and checking the audit log.
    public let auditLog: AuditService
    /// Privileged access to PostgreSQL.
    public let pam: PAMService
    /// KMS keys, KMIP objects and the KMIP client PKI.
    public let keys: KeysService
    /// Where session recordings are read from (nil: none).
    public var recordings: (any RecordingStore)? { pam.recordings }

    /// Opens the engine: migrates storage, checks the root key, and creates the first data key and the audit
    /// key in a new store. Throws `EngineError` with a clear message (wrong root key, store unavailable, …).
    public static func open(
        storage: any Storage, rootKey: any RootKeyProvider, bootstrapAdmins: Set<String>,
        logger: Logger = Logger(label: "gatehouse.engine"), clock: @escaping @Sendable () -> Date = { Date() },
        node: String? = nil, recordings: (any RecordingStore)? = nil, pamConnector: (any PAMConnector)? = nil,
        pkiBaseURL: @escaping @Sendable () -> String = { "https://127.0.0.1:8443" },
        kmipClientCAsCreated: @escaping @Sendable ([String]) -> Void = { _ in },
        rootKeyResolver: Keyring.RootResolver? = nil
    ) async throws -> GatehouseEngine {
        let key = try rootKey.loadRootKey()
        do {
            try await storage.migrate(indexes: indexCatalog)
        } catch let e as StorageError {
            throw EngineError(.unavailable, "storage (\(storage.backendName)) cannot be opened: \(e.detail)")
        }
        let keyring = Keyring(rootKey: key, descriptor: rootKey.descriptor, resolver: rootKeyResolver)
        do {
            try await keyring.bootstrap(storage)
            for notice in keyring.notices.withLock({ $0 }) { logger.warning("\(notice)") }
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
        let raw = try await keyring.systemSecret(AuditChain.keyID, binding: "system/audit-key", storage) {
            SymmetricKey(size: .bits256).withUnsafeBytes { [UInt8]($0) }
        }
        return SymmetricKey(data: raw)
    }

    init(
        storage: any Storage, keyring: Keyring, audit: AuditLog, bootstrapAdmins: Set<String>, logger: Logger,
        clock: @escaping @Sendable () -> Date, recordings: (any RecordingStore)? = nil,
        pamConnector: (any PAMConnector)? = nil,
        pkiBaseURL: @escaping @Sendable () -> String = { "https://127.0.0.1:8443" },
        kmipClientCAsCreated: @escaping @Sendable ([String]) -> Void = { _ in }
    ) {
        let core = EngineCore(
            storage: storage, keyring: keyring, audit: audit, bootstrapAdmins: bootstrapAdmins, logger: logger,
            clock: clock)
        self.core = core
        self.access = AccessService(core: core)
        let pki = PKIService(core: core, pkiBaseURL: pkiBaseURL)
        self.pki = pki
        self.acme = ACMEService(core: core, issuer: pki)
        self.est = ESTService(core: core, issuer: pki)
        self.ssh = SSHService(core: core)
        self.secrets = SecretsService(core: core)
        self.auditLog = AuditService(core: core)
        self.keys = KeysService(core: core, issuer: pki, kmipClientCAsCreated: kmipClientCAsCreated)
        self.pam = PAMService(core: core, connector: pamConnector, recordings: recordings)
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

    // MARK: - Maintenance (local operator, not exposed to front ends)

    /// Writes the summaries of refusal windows that are over (the daemon calls it periodically, so the count of a
    /// flood that stopped is on record within a window). Returns how many were written.
    @discardableResult
    public func flushRefusalSummaries() async -> Int {
        let due = refusalLimiter.due(now: clock())
        await writeRefusalSummaries(due)
        return due.count
    }

    /// The cursor just past the last event of every chain (see `AuditService.auditLogEnd`).
    public func auditLogEnd(_ ctx: CallContext) async throws -> String { try await auditLog.auditLogEnd(ctx) }

    /// Writes this node's audit checkpoint (the daemon's periodic task).
    public func writeAuditCheckpoint() async throws { try await auditLog.writeAuditCheckpoint() }

    /// Seals audit events a stopped writer left pending for longer than `age`.
    public func sealAbandonedAuditEvents(olderThan age: Duration = .seconds(60)) async throws -> Int {
        try await auditLog.sealAbandonedAuditEvents(olderThan: age)
    }

    /// Where an audit stream has delivered up to (see `AuditService.auditStreamCursor`).
    public func auditStreamCursor(name: String = AuditService.streamCursorKey) async throws -> String {
        try await auditLog.auditStreamCursor(name: name)
    }

    /// Advances an audit stream cursor (see `AuditService.advanceAuditStreamCursor`).
    public func advanceAuditStreamCursor(to cursor: String, name: String = AuditService.streamCursorKey) async throws {
        try await auditLog.advanceAuditStreamCursor(to: cursor, name: name)
    }

    /// Regenerates every CRL past half its lifetime (the daemon's periodic refresh).
    public func refreshCRLs() async throws -> Int { try await pki.refreshCRLs() }

    /// Deletes expired ACME nonces, orders and authorizations (the daemon's periodic sweep).
    public func acmeSweep(batch: Int = 2000, maxBatches: Int = 500) async throws -> Int {
        try await acme.acmeSweep(batch: batch, maxBatches: maxBatches)
    }

    /// Deletes access tokens that expired more than a day ago (the daemon's periodic sweep).
    public func deleteExpiredTokens() async -> Int { await access.deleteExpiredTokens() }

    /// Re-wraps all data keys under a new root key (`switchRootKey` in batches of 100). Returns how many were
    /// re-wrapped.
    public func rotateRootKey(to provider: any RootKeyProvider) async throws -> Int {
        try await switchRootKey(to: provider).rewrapped
    }

    /// Moves the store to the root `provider` loads, online: nodes keep serving, every node finds the new root
    /// through the store (see `Keyring`), and running it again after an interruption finishes it. `progress` is
    /// called after each batch with (re-wrapped, looked at). Audited as `root-key.switch`.
    public func switchRootKey(
        to provider: any RootKeyProvider, batch: Int = 100,
        progress: @Sendable (Int, Int) async throws -> Void = { _, _ in }
    ) async throws -> Keyring.SwitchResult {
        let newKey = try provider.loadRootKey()
        do {
            let result = try await keyring.switchRoot(
                to: newKey, target: provider.descriptor ?? provider.sourceDescription, batch: batch, storage,
                progress: progress)
            try await record(
                self.event(
                    .system("cli"), "root-key.rotate", project: nil,
                    [
                        "dataKeys": "\(result.rewrapped)", "total": "\(result.total)", "resumed": "\(result.resumed)",
                        "to": provider.sourceDescription,
                    ]))
            return result
        } catch let e as StorageError {
            throw EngineError(.unavailable, "storage unavailable", diagnostic: e.detail)
        }
    }

    /// The appliance's backup signing key (Ed25519, sealed under a data key at `system/backup-signing-key`), made
    /// on first use. `gatehouse backup` signs its archives with it; a restore checks the restored store holds it.
    public func backupSigningKey() async throws -> Curve25519.Signing.PrivateKey {
        do {
            let raw = try await keyring.systemSecret(
                "backup-signing-key", binding: "system/backup-signing-key", storage
            ) {
                Array(Curve25519.Signing.PrivateKey().rawRepresentation)
            }
            return try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        } catch let e as StorageError {
            throw EngineError(.unavailable, "storage unavailable", diagnostic: e.detail)
        }
    }

    /// Opens every data key in the store under the roots this node knows; returns how many there are. Throws
    /// `EngineError(.cryptographicFailure)` naming the first that opens under none (a backup restored with the wrong
    /// root key, or a damaged key record).
    public func checkDataKeys() async throws -> Int {
        do {
            return try await keyring.checkDataKeys(storage)
        } catch let e as StorageError {
            throw EngineError(.unavailable, "storage unavailable", diagnostic: e.detail)
        }
    }

    /// Records a backup in the audit log (`backup.create`).
    public func recordBackup(_ details: [String: String]) async throws {
        try await record(self.event(.system("cli"), "backup.create", project: nil, details))
    }

    /// Makes a new data key the active one (new values are sealed under it on every node within seconds; older
    /// data keys keep opening what they sealed). Audited as `data-key.rotate`. Returns the new key's id.
    public func rotateDataKey() async throws -> String {
        do {
            let id = try await keyring.rotateDataKey(storage)
            try await record(self.event(.system("cli"), "data-key.rotate", project: nil, ["dataKey": id]))
            return id
        } catch let e as StorageError {
            throw EngineError(.unavailable, "storage unavailable", diagnostic: e.detail)
        }
    }

    /// Records that the current root key file was renamed (`rotate-root-key` of a key file: `<file>.new` becomes
    /// `<file>`).
    public func renameRootKey(from old: String, to new: String) async throws {
        try await keyring.renameCurrentRoot(from: old, to: new, storage)
    }

    /// The roots this node uses (how the store names them), current first; a second one during a switch.
    public var rootKeyDescriptors: [String] { keyring.rootDescriptions }

    /// Reads the root keys the store names again (a switch started or finished on another node) and returns the
    /// roots this node uses, current first. The daemon calls it periodically; a switch's target that this node
    /// cannot load throws `EngineError(.unavailable)` with `Keyring.rootKeyUnavailableDiagnostic`.
    public func refreshRootKeys() async throws -> [String] {
        try await keyring.refreshRoots(storage)
        return keyring.rootDescriptions
    }
}
