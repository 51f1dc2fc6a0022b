import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import Recording
import StorageAPI
import Synchronization
import _CryptoExtras

struct PAMResourceBody: Codable, Sendable {
    var info: PAMResourceInfo
}

struct PAMAccountBody: Codable, Sendable {
    var info: PAMAccountInfo
    /// The password sealed under the root key (binding `pam-account/<id>/password`).
    var sealedPassword: Data
    /// A rotation in progress (one node, one rotation at a time) holds the account until then.
    var rotationClaimUntil: Date?
    /// The last rotation attempt (scheduled retries wait 10 minutes after a failure).
    var lastRotationAttempt: Date?
}

struct PAMGrantBody: Codable, Sendable {
    var info: PAMGrantInfo
}

struct PAMSessionBody: Codable, Sendable {
    var info: PAMSessionInfo
    /// The recording's data key sealed under the root key (binding `pam-recording/<session id>`); removed with the
    /// recording when retention deletes it.
    var sealedRecordingKey: Data?
    /// A node deleting the recording under retention holds it until then.
    var retentionClaimUntil: Date?
}

struct PAMNameBody: Codable, Sendable {
    var resourceId: String
}

enum PAMKind {
    static let resource = "pam-resource"
    /// Resource names are unique across the appliance (they are the `database` clients ask for): id = name.
    static let resourceName = "pam-resource-name"
    /// Scope: the resource id; name: the username.
    static let account = "pam-account"
    /// Scope: the account id.
    static let grant = "pam-grant"
    /// Scope: the project.
    static let session = "pam-session"
}

/// Privileged access to PostgreSQL: resources, accounts (sealed passwords, rotation), just-in-time grants, the
/// proxy's sessions and their signed recordings.
public final class PAMService: EngineService {
    let core: EngineCore
    /// Wakes live PAM sessions when their grant is revoked through this node.
    let grantChanges = GrantChangeSignal()
    /// Reaches PostgreSQL resources for connection tests and rotation (the proxy front end's; nil: none, and those
    /// calls fail `.unavailable`).
    let pamConnector: (any PAMConnector)?
    /// The recording signing key, once loaded.
    let pamSigningKey = Mutex<Curve25519.Signing.PrivateKey?>(nil)
    /// Where session recordings are read from and, through the daemon's shipper, written to (nil: none).
    public let recordings: (any RecordingStore)?

    init(core: EngineCore, connector: (any PAMConnector)?, recordings: (any RecordingStore)?) {
        self.core = core
        self.pamConnector = connector
        self.recordings = recordings
    }
}

extension PAMService {
    static let pamSigningKeyID = "pam-recording-signing-key"

    var connector: any PAMConnector {
        get throws {
            guard let c = pamConnector else {
                throw EngineError(.unavailable, "no PostgreSQL connector is installed")
            }
            return c
        }
    }

    static let maxGrantSeconds = 30 * 86_400

    // MARK: - Resources

    public func createPAMResource(_ ctx: CallContext, project: String, _ spec: PAMResourceSpec) async throws
        -> PAMResourceInfo
    {
        try Self.validateName(project, "project")
        try Self.validateName(spec.name, "name")
        guard spec.name.utf8.count <= 63 else { throw EngineError(.invalidArgument, "name: at most 63 characters") }
        try Self.validateHostname(spec.host)
        let port = spec.port ?? 5432
        guard (1...65535).contains(port) else { throw EngineError(.invalidArgument, "port must be 1–65535") }
        guard (0...10_000).contains(spec.recordRows ?? 0) else {
            throw EngineError(.invalidArgument, "recordRows must be 0–10000")
        }
        guard !spec.database.isEmpty, spec.database.utf8.count <= 63, !spec.database.contains("\0") else {
            throw EngineError(.invalidArgument, "database must be 1–63 characters")
        }
        let mode = spec.tlsMode ?? .verifyFull
        if let ca = spec.caCertificate, !ca.isEmpty {
            guard ca.utf8.count <= 64 * 1024, ca.contains("-----BEGIN CERTIFICATE-----") else {
                throw EngineError(.invalidArgument, "caCertificate must be PEM certificates (at most 64 KiB)")
            }
        }
        let decision = try await authorize(
            ctx, AccessRequest(.project(project), .pamResources, .create, ["name": spec.name]))
        let target = PAMTarget(
            host: spec.host, port: port, database: spec.database, tlsMode: mode,
            caCertificate: (spec.caCertificate?.isEmpty ?? true) ? nil : spec.caCertificate)
        // The connection test: a PostgreSQL server must answer, with TLS as the mode asks.
        try await connector.checkReachable(target)
        let id = RecordID.make()
        let now = clock()
        if let r = spec.rotationAccount { try Self.validateRoleName(r) }
        let info = PAMResourceInfo(
            id: id, project: project, name: spec.name, target: target, failClosed: spec.failClosed ?? true,
            rotationAccount: spec.rotationAccount, recordRows: (spec.recordRows ?? 0) > 0 ? spec.recordRows : nil,
            createdAt: now)
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            if try await tx.get(kind: PAMKind.resourceName, id: spec.name) != nil {
                throw EngineError(.alreadyExists, "a resource named '\(spec.name)' exists")
            }
            try await tx.insert(
                Record(
                    kind: PAMKind.resourceName, id: spec.name, scope: project,
                    body: try Self.encode(PAMNameBody(resourceId: id)), createdAt: now))
            try await tx.insert(
                Record(
                    kind: PAMKind.resource, id: id, scope: project, name: spec.name,
                    body: try Self.encode(PAMResourceBody(info: info)),
                    createdAt: now))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pam.resource.create", project: project,
                    [
                        "resourceId": id, "name": spec.name, "host": spec.host, "port": String(port),
                        "tlsMode": mode.rawValue,
                    ]), tx)
            return info
        }
    }

    func pamResource(_ id: String, _ tx: any StorageTransaction) async throws -> (Record, PAMResourceInfo) {
        guard id.utf8.count <= 64, let r = try await tx.get(kind: PAMKind.resource, id: id) else {
            throw EngineError(.notFound, "resource '\(id.prefix(64))' not found")
        }
        return (r, try cachedDecode(PAMResourceBody.self, r).info)
    }

    public func listPAMResources(_ ctx: CallContext, project: String) async throws -> [PAMResourceInfo] {
        try Self.validateName(project, "project")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .pamResources, .read))
        return try await transact(relaxed: true) { tx in
            _ = try await self.requireProject(project, tx)
            return try await tx.listEvery(kind: PAMKind.resource, scope: project).map {
                try self.decode(PAMResourceBody.self, $0).info
            }.filter { decision.permits(AccessRequest(.project(project), .pamResources, .read, ["name": $0.name])) }
        }
    }

    public func getPAMResource(_ ctx: CallContext, id: String) async throws -> PAMResourceInfo {
        let (_, info) = try await read { tx in try await self.pamResource(id, tx) }
        try await authorize(ctx, AccessRequest(.project(info.project), .pamResources, .read, ["name": info.name]))
        return info
    }

    public func deletePAMResource(_ ctx: CallContext, id: String) async throws {
        let (_, info) = try await read { tx in try await self.pamResource(id, tx) }
        let decision = try await authorize(
            ctx, AccessRequest(.project(info.project), .pamResources, .delete, ["name": info.name]))
        try await transact { tx in
            let (record, info) = try await self.pamResource(id, tx)
            let accounts = try await tx.list(kind: PAMKind.account, scope: id, afterID: nil, limit: 1)
            guard accounts.isEmpty else { throw EngineError(.wrongState, "delete the resource's accounts first") }
            try await tx.delete(kind: PAMKind.resource, id: id, expectedVersion: record.version)
            if let name = try await tx.get(kind: PAMKind.resourceName, id: info.name) {
                try await tx.delete(kind: PAMKind.resourceName, id: info.name, expectedVersion: name.version)
            }
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pam.resource.delete", project: info.project, ["resourceId": id, "name": info.name]),
                tx)
        }
    }

    // MARK: - Accounts

    static func validateRoleName(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 63, !name.contains("\0"),
            name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f })
        else { throw EngineError(.invalidArgument, "username must be 1–63 printable characters") }
    }

    public func createPAMAccount(
        _ ctx: CallContext, resourceId: String, username: String, password: SecretBytes, rotationInterval: String?
    ) async throws -> PAMAccountInfo {
        try Self.validateRoleName(username)
        if let rotationInterval {
            guard let seconds = DurationText.seconds(rotationInterval), seconds >= 10 else {
                throw EngineError(.invalidArgument, "rotationInterval must be a duration of at least 10s, such as 30d")
            }
        }
        guard !password.bytes.isEmpty, password.bytes.count <= 1024, !password.bytes.contains(0) else {
            throw EngineError(.invalidArgument, "password must be 1–1024 bytes without NUL")
        }
        let (_, resource) = try await read { tx in try await self.pamResource(resourceId, tx) }
        let decision = try await authorize(
            ctx,
            AccessRequest(
                .project(resource.project), .pamAccounts, .create, ["name": resource.name, "account": username]))
        // Validated by a real login before anything is stored.
        try await connector.checkLogin(resource.target, username: username, password: password)
        let id = RecordID.make()
        let now = clock()
        let info = PAMAccountInfo(
            id: id, resourceId: resourceId, project: resource.project, username: username, createdAt: now,
            passwordChangedAt: now,
            rotationInterval: rotationInterval)
        return try await transact { tx in
            _ = try await self.pamResource(resourceId, tx)
            if try await tx.find(kind: PAMKind.account, scope: resourceId, name: username) != nil {
                throw EngineError(.alreadyExists, "the resource already has an account '\(username)'")
            }
            let sealed = try await self.keyring.seal(password.bytes, binding: "pam-account/\(id)/password", tx)
            try await tx.insert(
                Record(
                    kind: PAMKind.account, id: id, scope: resourceId, name: username,
                    body: try Self.encode(PAMAccountBody(info: info, sealedPassword: sealed)), createdAt: now))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pam.account.create", project: resource.project,
                    ["resourceId": resourceId, "accountId": id, "username": username]), tx)
            return info
        }
    }

    func pamAccount(_ id: String, _ tx: any StorageTransaction) async throws -> (Record, PAMAccountBody) {
        guard id.utf8.count <= 64, let r = try await tx.get(kind: PAMKind.account, id: id) else {
            throw EngineError(.notFound, "account '\(id.prefix(64))' not found")
        }
        return (r, try decode(PAMAccountBody.self, r))
    }

    public func listPAMAccounts(_ ctx: CallContext, resourceId: String) async throws -> [PAMAccountInfo] {
        let (_, resource) = try await read { tx in try await self.pamResource(resourceId, tx) }
        try await authorize(
            ctx, AccessRequest(.project(resource.project), .pamAccounts, .read, ["name": resource.name]))
        return try await transact(relaxed: true) { tx in
            try await tx.listEvery(kind: PAMKind.account, scope: resourceId).map {
                try self.decode(PAMAccountBody.self, $0).info
            }
        }
    }

    public func deletePAMAccount(_ ctx: CallContext, id: String) async throws {
        let (_, body) = try await read { tx in try await self.pamAccount(id, tx) }
        let decision = try await authorize(
            ctx, AccessRequest(.project(body.info.project), .pamAccounts, .delete, ["account": body.info.username]))
        try await transact { tx in
            let (record, body) = try await self.pamAccount(id, tx)
            try await tx.delete(kind: PAMKind.account, id: id, expectedVersion: record.version)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pam.account.delete", project: body.info.project,
                    ["accountId": id, "username": body.info.username]), tx)
        }
    }

    // MARK: - Grants

    /// The grantee key of a caller: its identity, or the principal id of an administrator certificate.
    func granteeId(_ ctx: CallContext, _ caller: Caller) -> String { caller.identityId ?? ctx.principal.id }

    public func requestPAMAccess(_ ctx: CallContext, accountId: String, duration: String, reason: String) async throws
        -> PAMGrantInfo
    {
        guard let seconds = DurationText.seconds(duration) else {
            throw EngineError(.invalidArgument, "duration must be a duration such as 1m, 2h or 3d")
        }
        guard seconds <= Self.maxGrantSeconds else { throw EngineError(.invalidArgument, "duration: at most 30d") }
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty, reason.utf8.count <= 1000 else {
            throw EngineError(.invalidArgument, "reason: 1–1000 characters")
        }
        let (_, account) = try await read { tx in try await self.pamAccount(accountId, tx) }
        let (_, resource) = try await read { tx in try await self.pamResource(account.info.resourceId, tx) }
        let fields = ["name": resource.name, "account": account.info.username]
        let decision = try await authorize(ctx, AccessRequest(.project(resource.project), .pamAccess, .request, fields))
        let auto = decision.permits(AccessRequest(.project(resource.project), .pamAccess, .autoApprove, fields))
        let now = clock()
        var info = PAMGrantInfo(
            id: RecordID.make(), project: resource.project, resourceId: resource.id,
            resourceName: resource.name,
            accountId: accountId, username: account.info.username, granteeId: granteeId(ctx, decision.caller),
            granteeName: decision.caller.name, reason: reason, duration: duration, status: .pending, requestedAt: now)
        if auto {
            info.status = .approved
            info.decidedAt = now
            info.decidedBy = "auto-approve (\(decision.grantedBy))"
            info.expiresAt = now.addingTimeInterval(TimeInterval(seconds))
        }
        let final = info
        try await transact { tx in
            try await tx.insert(
                Record(
                    kind: PAMKind.grant, id: final.id, scope: accountId, name: nil,
                    body: try Self.encode(PAMGrantBody(info: final)),
                    createdAt: now))
            var meta = [
                "grantId": final.id, "resource": resource.name, "username": final.username, "duration": duration,
                "reason": reason, "status": final.status.rawValue,
            ]
            if let e = final.expiresAt { meta["expiresAt"] = ISO8601DateFormatter().string(from: e) }
            try await self.audit.append(
                self.allowed(ctx, decision, "pam.access.request", project: resource.project, meta), tx)
        }
        logger.notice(
            "PAM access \(auto ? "granted" : "requested")",
            metadata: [
                "grantId": "\(final.id)", "resource": "\(resource.name)", "account": "\(final.username)",
                "grantee": "\(final.granteeName)", "duration": "\(duration)",
            ])
        return final
    }

    func pamGrant(_ id: String, _ tx: any StorageTransaction) async throws -> (Record, PAMGrantInfo) {
        guard id.utf8.count <= 64, let r = try await tx.get(kind: PAMKind.grant, id: id) else {
            throw EngineError(.notFound, "access request '\(id.prefix(64))' not found")
        }
        return (r, describeGrant(try decode(PAMGrantBody.self, r).info))
    }

    func describeGrant(_ g: PAMGrantInfo) -> PAMGrantInfo {
        var g = g
        if g.status == .approved, let e = g.expiresAt, e <= clock() { g.status = .expired }
        return g
    }

    /// Approve, reject or revoke: `action` is the permission needed, `from` the states it applies to.
    func decideGrant(
        _ ctx: CallContext, grantId: String, action: PermissionAction, from: Set<PAMGrantInfo.Status>,
        to: PAMGrantInfo.Status, auditType: String
    ) async throws -> PAMGrantInfo {
        let (_, existing) = try await read { tx in try await self.pamGrant(grantId, tx) }
        let decision = try await authorize(
            ctx,
            AccessRequest(
                .project(existing.project), .pamAccess, action,
                ["name": existing.resourceName, "account": existing.username]))
        if to == .approved, !decision.isSuperuser, granteeId(ctx, decision.caller) == existing.granteeId {
            await auditFailure(
                ctx, "authorization.denied", project: existing.project,
                ["action": "pam-access:approve", "reason": "own request"])
            throw EngineError(.permissionDenied, "an approver cannot approve their own request")
        }
        let now = clock()
        let result = try await transact { tx -> PAMGrantInfo in
            var (record, info) = try await self.pamGrant(grantId, tx)
            guard from.contains(info.status) else {
                throw EngineError(.wrongState, "the request is \(info.status.rawValue)")
            }
            info.status = to
            info.decidedAt = now
            info.decidedBy = decision.caller.name
            if to == .approved, let seconds = DurationText.seconds(info.duration) {
                info.expiresAt = now.addingTimeInterval(TimeInterval(seconds))
            }
            if to == .revoked { info.expiresAt = now }
            record.body = try Self.encode(PAMGrantBody(info: info))
            _ = try await tx.update(record)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, auditType, project: info.project,
                    [
                        "grantId": grantId, "resource": info.resourceName, "username": info.username,
                        "grantee": info.granteeName,
                    ]), tx)
            return info
        }
        logger.notice(
            "PAM access \(to.rawValue)",
            metadata: [
                "grantId": "\(grantId)", "resource": "\(result.resourceName)", "account": "\(result.username)",
                "grantee": "\(result.granteeName)", "by": "\(decision.caller.name)",
            ])
        return result
    }

    public func approvePAMAccess(_ ctx: CallContext, grantId: String) async throws -> PAMGrantInfo {
        try await decideGrant(
            ctx, grantId: grantId, action: .approve, from: [.pending], to: .approved, auditType: "pam.access.approve")
    }

    public func rejectPAMAccess(_ ctx: CallContext, grantId: String) async throws -> PAMGrantInfo {
        try await decideGrant(
            ctx, grantId: grantId, action: .approve, from: [.pending], to: .rejected, auditType: "pam.access.reject")
    }

    public func revokePAMGrant(_ ctx: CallContext, grantId: String) async throws -> PAMGrantInfo {
        let revoked = try await decideGrant(
            ctx, grantId: grantId, action: .approve, from: [.approved], to: .revoked, auditType: "pam.access.revoke")
        grantChanges.signal(grantId)
        return revoked
    }

    public func waitForPAMGrantChange(grantId: String, timeout: Duration) async {
        await grantChanges.wait(grantId, timeout: timeout)
    }

    public func listPAMGrants(_ ctx: CallContext, project: String, _ q: PAMGrantQuery) async throws -> Page<
        PAMGrantInfo
    > {
        try Self.validateName(project, "project")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .pamAccess, .read))
        let (index, lower, upper) = Self.grantPlan(project: project, q, now: clock())
        return try await indexedPage(
            kind: PAMKind.grant, index: index, scope: nil, lower: lower, upper: upper, descending: true, after: q.after,
            limit: q.limit
        ) { record in
            let g = self.describeGrant(try self.decode(PAMGrantBody.self, record).info)
            guard g.project == project, q.status.map({ g.status == $0 }) ?? true,
                q.granteeName.map({ g.granteeName == $0 }) ?? true,
                q.username.map({ g.username == $0 }) ?? true,
                decision.permits(
                    AccessRequest(
                        .project(project), .pamAccess, .read, ["name": g.resourceName, "account": g.username]))
            else { return nil }
            return g
        }
    }

    public func getPAMGrant(_ ctx: CallContext, grantId: String) async throws -> PAMGrantInfo {
        let (_, g) = try await read { tx in try await self.pamGrant(grantId, tx) }
        let caller = try await resolve(ctx.principal)
        // The grantee may always read its own request; others need read permission.
        if let caller, granteeId(ctx, caller) == g.granteeId { return g }
        try await authorize(
            ctx, AccessRequest(.project(g.project), .pamAccess, .read, ["name": g.resourceName, "account": g.username]))
        return g
    }

    // MARK: - Sessions

    public func openPAMSession(_ ctx: CallContext, resource: String, username: String) async throws -> PAMSessionTicket
    {
        guard let caller = try await resolve(ctx.principal) else {
            await auditFailure(
                ctx, "authentication.failed", project: nil,
                ["action": "pam-session:open", "reason": "no identity accepts these credentials"])
            throw EngineError(.unauthenticated, "authentication required")
        }
        let grantee = granteeId(ctx, caller)
        let now = clock()
        // Unknown resources and accounts are refused like missing grants: the client learns nothing about names.
        let found = try await transact(relaxed: true) { tx -> (PAMResourceInfo, PAMAccountBody, PAMGrantInfo)? in
            guard resource.utf8.count <= 200, username.utf8.count <= 200,
                let name = try await tx.get(kind: PAMKind.resourceName, id: resource)
            else { return nil }
            let resourceId = try self.decode(PAMNameBody.self, name).resourceId
            let (_, info) = try await self.pamResource(resourceId, tx)
            guard let accountRecord = try await tx.find(kind: PAMKind.account, scope: resourceId, name: username) else {
                return nil
            }
            let account = try self.decode(PAMAccountBody.self, accountRecord)
            // This grantee's grants on the account that have not expired: a range of the grantee index.
            let mine = IndexKey(grantee)
            let grants = try await tx.lookup(
                IndexQuery(
                    kind: PAMKind.grant, index: PAMGrantIndex.grantee, scope: account.info.id,
                    lower: mine.appending(Record.millis(now) + 1),
                    upper: mine.prefixEnd, limit: 1000)
            )
            .map { try self.decode(PAMGrantBody.self, $0.record).info }
            .filter { $0.granteeId == grantee && $0.status == .approved && ($0.expiresAt ?? .distantPast) > now }
            guard let best = grants.max(by: { ($0.expiresAt ?? now) < ($1.expiresAt ?? now) }) else { return nil }
            return (info, account, best)
        }
        guard let (info, account, grant) = found else {
            await auditFailure(
                ctx, "pam.session.denied", project: nil,
                [
                    "resource": String(resource.prefix(200)), "username": String(username.prefix(200)),
                    "grantee": caller.name,
                    "reason": "no approved, unexpired grant",
                ])
            throw EngineError(.permissionDenied, "no active access grant for \(username)@\(resource)")
        }
        let sessionId = RecordID.make()
        let session = PAMSessionInfo(
            id: sessionId, project: info.project, grantId: grant.id, resourceName: info.name, username: username,
            granteeId: grantee, granteeName: caller.name, clientAddress: ctx.ipAddress, startedAt: now)
        let recordingKey = SymmetricKey(size: .bits256).withUnsafeBytes { [UInt8]($0) }
        let password = try await transact { tx -> [UInt8] in
            let raw = try await self.keyring.open(
                account.sealedPassword, binding: "pam-account/\(account.info.id)/password", tx)
            let sealedKey = try await self.keyring.seal(recordingKey, binding: "pam-recording/\(sessionId)", tx)
            try await tx.insert(
                Record(
                    kind: PAMKind.session, id: sessionId, scope: info.project, name: nil,
                    body: try Self.encode(PAMSessionBody(info: session, sealedRecordingKey: sealedKey)), createdAt: now)
            )
            try await self.audit.append(
                self.event(
                    ctx, "pam.session.start", project: info.project,
                    [
                        "sessionId": sessionId, "grantId": grant.id, "resource": info.name, "username": username,
                        "grantee": caller.name, "decision": "allow", "grantedBy": "pam-grant:\(grant.id)",
                    ]), tx)
            return raw
        }
        return PAMSessionTicket(
            sessionId: sessionId, grantId: grant.id, project: info.project, resource: info, username: username,
            password: SecretBytes(password), expiresAt: grant.expiresAt ?? now, recordingKey: SecretBytes(recordingKey),
            granteeName: caller.name)
    }

    public func pamSessionDeadline(sessionId: String, grantId: String) async -> Date? {
        let now = clock()
        do {
            return try await read { tx -> Date? in
                guard let r = try await tx.get(kind: PAMKind.grant, id: grantId) else { return nil }
                let g = try self.decode(PAMGrantBody.self, r).info
                guard g.status == .approved, let e = g.expiresAt, e > now else { return nil }
                // The account may have been deleted since the session started.
                guard try await tx.get(kind: PAMKind.account, id: g.accountId) != nil else { return nil }
                return e
            }
        } catch {
            // Storage trouble does not end sessions on its own; the grant's end still does (the proxy keeps it).
            return .distantFuture
        }
    }

    public func closePAMSession(
        _ ctx: CallContext, sessionId: String, reason: PAMSessionEndReason, stats: PAMSessionStats
    ) async {
        let now = clock()
        do {
            try await transact { tx in
                guard let r = try await tx.get(kind: PAMKind.session, id: sessionId) else { return }
                var body = try self.decode(PAMSessionBody.self, r)
                guard body.info.endedAt == nil else { return }  // an end is recorded once
                body.info.endedAt = now
                body.info.endReason = reason
                body.info.stats = stats
                var record = r
                record.body = try Self.encode(body)
                _ = try await tx.update(record)
                try await self.audit.append(
                    self.event(
                        ctx, "pam.session.end", project: body.info.project,
                        [
                            "sessionId": sessionId, "reason": reason.rawValue, "statements": String(stats.statements),
                            "bytesFromClient": String(stats.bytesFromClient),
                            "bytesFromServer": String(stats.bytesFromServer),
                            "recordingChunks": stats.recordingChunks.map { String($0) } ?? "none",
                        ]), tx)
            }
        } catch {
            logger.error(
                "cannot record the end of a PAM session", metadata: ["sessionId": "\(sessionId)", "error": "\(error)"])
        }
    }

    public func listPAMSessions(_ ctx: CallContext, project: String, _ q: PAMSessionQuery) async throws -> Page<
        PAMSessionInfo
    > {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .pamSessions, .read))
        if let since = q.since, let until = q.until, since >= until { return Page(items: [], next: nil) }
        let (index, prefix) = Self.sessionPlan(q)
        let lower = q.since.map { prefix.appending(Record.millis($0)) } ?? prefix
        let upper = q.until.map { prefix.appending(Record.millis($0)) } ?? prefix.prefixEnd
        return try await indexedPage(
            kind: PAMKind.session, index: index, scope: project, lower: lower, upper: upper, descending: !q.oldestFirst,
            after: q.after,
            limit: q.limit
        ) { record in
            let s = try self.decode(PAMSessionBody.self, record).info
            if let g = q.granteeName, s.granteeName != g { return nil }
            if let r = q.resourceName, s.resourceName != r { return nil }
            if let u = q.username, s.username != u { return nil }
            if let e = q.endReason, (s.endReason?.rawValue ?? "open") != e { return nil }
            return s
        }
    }

    // MARK: - Recordings

    func recordingSigningKey() async throws -> Curve25519.Signing.PrivateKey {
        if let key = pamSigningKey.withLock({ $0 }) { return key }
        let raw = try await mappingStorageErrors {
            try await keyring.systemSecret(Self.pamSigningKeyID, binding: "system/pam-recording-signing-key", storage) {
                Array(Curve25519.Signing.PrivateKey().rawRepresentation)
            }
        }
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        pamSigningKey.withLock { $0 = key }
        return key
    }

    public func signPAMRecordingManifest(sessionId: String, _ bytes: [UInt8]) async throws -> [UInt8] {
        let exists = try await transact(relaxed: true) { tx in
            sessionId.utf8.count <= 64 ? try await tx.get(kind: PAMKind.session, id: sessionId) != nil : false
        }
        guard exists else { throw EngineError(.notFound, "no such session") }
        return Array(try await recordingSigningKey().signature(for: bytes))
    }

    /// A session's record, the caller's permission to read its recordings, and its recording opened from the store
    /// (nil when the store has none).
    func openPAMRecording(_ ctx: CallContext, sessionId: String) async throws
        -> (body: PAMSessionBody, decision: Decision, result: RecordingDecoder.Result?, bytes: Int)
    {
        let (body, decision) = try await readableSession(ctx, sessionId: sessionId)
        guard let sealed = body.sealedRecordingKey, let recordings else { return (body, decision, nil, 0) }
        let file: [UInt8]
        do {
            // An empty file is none: the proxy creates it before writing the first chunk.
            guard let stored = try await recordings.read(sessionId: sessionId), !stored.isEmpty else {
                return (body, decision, nil, 0)
            }
            file = stored
        } catch let e as StorageError {
            throw EngineError(
                .unavailable, "the recording store (\(recordings.description)) cannot be read: \(e.detail)")
        }
        let key = try await recordingKey(sealed, sessionId: sessionId)
        let publicKey = try await recordingSigningKey().publicKey
        do {
            let result = try RecordingDecoder.read(file, expectedSession: sessionId, key: key) { message, signature in
                publicKey.isValidSignature(signature, for: message)
            }
            return (body, decision, result, file.count)
        } catch {
            throw EngineError(.invalidArgument, "the recording file is unreadable: \(error)")
        }
    }

    /// A session's record and the caller's permission to read its recordings (refused, or `.gone` when the recording
    /// was deleted).
    func readableSession(_ ctx: CallContext, sessionId: String) async throws -> (PAMSessionBody, Decision) {
        let body = try await transact(relaxed: true) { tx in try await self.pamSession(sessionId, tx).1 }
        let decision = try await authorize(
            ctx, AccessRequest(.project(body.info.project), .pamSessions, .read, ["name": body.info.resourceName]))
        if let deleted = body.info.recordingDeletedAt {
            throw EngineError(
                .gone,
                "the recording of session \(sessionId) was deleted at \(Self.iso(deleted)) (\(body.info.recordingDeletion ?? "retention"))"
            )
        }
        return (body, decision)
    }

    /// The session's recording key, unwrapped with the root key.
    func recordingKey(_ sealed: Data, sessionId: String) async throws -> [UInt8] {
        try await transact(relaxed: true) { tx in
            try await self.keyring.open(sealed, binding: "pam-recording/\(sessionId)", tx)
        }
    }

    /// A recording's events: JSON lines; a long one (a statement of several megabytes) spans chunks, so lines are
    /// cut from the chunks joined.
    static func recordingEvents(_ result: RecordingDecoder.Result) -> [PAMRecordingEvent] {
        var joined: [UInt8] = []
        joined.reserveCapacity(result.chunks.reduce(0) { $0 + $1.count })
        for chunk in result.chunks { joined += chunk }
        return events(lines: joined[...])
    }

    /// The events in `text`, one JSON object a line (a last line without its newline counts).
    static func events(lines text: ArraySlice<UInt8>) -> [PAMRecordingEvent] {
        let decoder = JSONDecoder()
        let lines = text.split(separator: UInt8(ascii: "\n")).filter { !$0.isEmpty }
        // One decode of the lines as a JSON array: a decoder call costs more than a small event, and a long
        // session has tens of thousands of them.
        var array: [UInt8] = [UInt8(ascii: "[")]
        array.reserveCapacity(text.count + lines.count + 2)
        for (i, line) in lines.enumerated() {
            if i > 0 { array.append(UInt8(ascii: ",")) }
            array += line
        }
        array.append(UInt8(ascii: "]"))
        if let events = try? decoder.decode([PAMRecordingEvent].self, from: Data(array)) { return events }
        // A line that is not an event (cut by tampering, or from a newer proxy): the others, one by one.
        return lines.compactMap { try? decoder.decode(PAMRecordingEvent.self, from: Data($0)) }
    }

    public func readPAMRecording(_ ctx: CallContext, sessionId: String) async throws -> PAMRecording {
        let (body, decision, opened, _) = try await openPAMRecording(ctx, sessionId: sessionId)
        guard let result = opened else { throw EngineError(.notFound, "the session has no recording") }
        let events = Self.recordingEvents(result)
        let (integrity, detail) = Self.recordingIntegrity(result.integrity, session: body.info)
        let eventCount = String(events.count)
        try await transact { tx in
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pam.recording.read", project: body.info.project,
                    ["sessionId": sessionId, "integrity": integrity, "events": eventCount]), tx)
        }
        return PAMRecording(integrity: integrity, integrityDetail: detail, session: body.info, events: events)
    }

    public func verifyPAMRecording(_ ctx: CallContext, sessionId: String) async throws -> PAMRecordingVerdict {
        let body: PAMSessionBody
        let decision: Decision
        let opened: RecordingDecoder.Result?
        let bytes: Int
        do {
            (body, decision, opened, bytes) = try await openPAMRecording(ctx, sessionId: sessionId)
        } catch let e as EngineError where e.code == .invalidArgument {
            // Not a recording at all (garbage where the file should be): as good as tampered.
            return PAMRecordingVerdict(
                sessionId: sessionId, integrity: "tampered", integrityDetail: e.message, bytes: 0)
        } catch let e as EngineError where e.code == .gone {
            // Deleted on purpose: what the policy asked for, not a loss.
            return PAMRecordingVerdict(sessionId: sessionId, integrity: "deleted", integrityDetail: e.message, bytes: 0)
        }
        let verdict: PAMRecordingVerdict
        if let opened {
            let (integrity, detail) = Self.recordingIntegrity(opened.integrity, session: body.info)
            verdict = PAMRecordingVerdict(
                sessionId: sessionId, integrity: integrity, integrityDetail: detail, bytes: bytes)
        } else {
            verdict = PAMRecordingVerdict(
                sessionId: sessionId, integrity: "missing",
                integrityDetail: body.sealedRecordingKey == nil
                    ? "the session was never recorded" : "the recording store has no recording of this session",
                bytes: 0)
        }
        try await transact { tx in
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pam.recording.verify", project: body.info.project,
                    ["sessionId": sessionId, "integrity": verdict.integrity]), tx)
        }
        return verdict
    }

    /// The file's verdict weighed with what the store knows of the session. A session the store says ended with a
    /// sealed recording must match the chunk count and chain hash kept at its end: a missing manifest or chunk, or a
    /// cut file, is tampering. `incomplete` is left for sessions still running and for those a stopped node left
    /// open (then it says so).
    static func recordingIntegrity(_ verdict: RecordingDecoder.Integrity, session: PAMSessionInfo) -> (String, String?)
    {
        let chunks = session.stats?.recordingChunks
        let chain = session.stats?.recordingChain
        switch verdict {
        case .tampered(let why):
            return ("tampered", why)
        case .complete(let manifest):
            if let chunks, let chain, manifest.chunks != chunks || manifest.chain != chain {
                return (
                    "tampered",
                    "the signed manifest (\(manifest.chunks) chunks) is not the one recorded when the session ended (\(chunks) chunks)"
                )
            }
            return ("complete", nil)
        case .incomplete(let why):
            guard session.endedAt != nil else { return ("incomplete", "the session is still running: " + why) }
            if let chunks {
                return (
                    "tampered",
                    "the session ended (\(session.endReason?.rawValue ?? "?")) with a sealed recording of \(chunks) chunks, but \(why)"
                )
            }
            if session.endReason == .nodeCrashed {
                return (
                    "incomplete",
                    "the node serving the session stopped (crash or kill) before it ended; the recording holds what was flushed before: "
                        + why
                )
            }
            return (
                "incomplete",
                "the session ended (\(session.endReason?.rawValue ?? "?")) without a sealed recording: " + why
            )
        }
    }

    // MARK: - Credential rotation

    /// PostgreSQL's SCRAM-SHA-256 verifier (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`), what
    /// `ALTER ROLE … PASSWORD` stores as is: the server never sees the password.
    static func scramVerifier(_ password: [UInt8], salt: [UInt8], iterations: Int = 4096) throws -> String {
        let salted = try KDF.Insecure.PBKDF2.deriveKey(
            from: password, salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
        let key = SymmetricKey(data: salted.withUnsafeBytes { Array($0) })
        let clientKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: key))
        let storedKey = Array(SHA256.hash(data: clientKey))
        let serverKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: key))
        return
            "SCRAM-SHA-256$\(iterations):\(Base64.encodeToString(bytes: salt))$\(Base64.encodeToString(bytes: storedKey)):\(Base64.encodeToString(bytes: serverKey))"
    }

    static func randomPassword() -> [UInt8] {
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789".utf8)
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in alphabet.randomElement(using: &rng) ?? UInt8(ascii: "x") }
    }

    public func rotatePAMAccount(_ ctx: CallContext, id: String) async throws -> PAMAccountInfo {
        let (_, body) = try await read { tx in try await self.pamAccount(id, tx) }
        let (_, resource) = try await read { tx in try await self.pamResource(body.info.resourceId, tx) }
        let decision = try await authorize(
            ctx,
            AccessRequest(
                .project(resource.project), .pamAccounts, .edit, ["name": resource.name, "account": body.info.username])
        )
        return try await rotate(ctx, decision: decision, accountId: id, resource: resource)
    }

    /// Rotates the accounts whose rotation is due, read a page at a time from the `due` index: a sweep costs what is
    /// due, not how many accounts there are, and has no cap.
    public func rotateDuePAMAccounts() async -> Int {
        let now = clock()
        var rotated = 0
        let due = IndexQuery(
            kind: PAMKind.account, index: PAMAccountIndex.due, scope: nil,
            upper: IndexKey().appending(Record.millis(now) + 1), limit: 200)
        do {
            try await forEachPage(due) { page in
                var accounts: [(String, String)] = []
                for hit in page {
                    guard let body = try? self.decode(PAMAccountBody.self, hit.record),
                        let when = Self.rotationDue(body), when <= now
                    else { continue }
                    accounts.append((body.info.id, body.info.resourceId))
                }
                rotated += await self.rotateAccounts(accounts)
                return true
            }
        } catch {
            logger.error("cannot list accounts to rotate", metadata: ["error": "\(error)"])
        }
        return rotated
    }

    /// Rotates each (account, resource) as the scheduler; returns how many rotated.
    func rotateAccounts(_ due: [(String, String)]) async -> Int {
        var rotated = 0
        let ctx = CallContext.system("pam-rotation")
        for (accountId, resourceId) in due {
            guard
                let resource = try? await transact(
                    relaxed: true, { tx in try await self.pamResource(resourceId, tx).1 }),
                let decision = try? await authorize(ctx, AccessRequest(.project(resource.project), .pamAccounts, .edit))
            else { continue }
            if (try? await rotate(ctx, decision: decision, accountId: accountId, resource: resource)) != nil {
                rotated += 1
            }
        }
        return rotated
    }

    /// Claims the account, changes the password on the server, proves the new one by logging in, then stores it.
    func rotate(_ ctx: CallContext, decision: Decision, accountId: String, resource: PAMResourceInfo) async throws
        -> PAMAccountInfo
    {
        let now = clock()
        // The claim: one rotation of an account at a time across every node of the store.
        let claimed = try await transact { tx -> PAMAccountBody in
            var (record, body) = try await self.pamAccount(accountId, tx)
            if let until = body.rotationClaimUntil, until > now {
                throw EngineError(.conflict, "a rotation of this account is in progress")
            }
            body.rotationClaimUntil = now.addingTimeInterval(300)
            body.lastRotationAttempt = now
            record.body = try Self.encode(body)
            _ = try await tx.update(record)
            return body
        }
        let username = claimed.info.username
        let (oldPassword, admin) = try await transact(relaxed: true) { tx -> ([UInt8], (String, [UInt8])?) in
            let old = try await self.keyring.open(
                claimed.sealedPassword, binding: "pam-account/\(accountId)/password", tx)
            guard let rotator = resource.rotationAccount, rotator != username else { return (old, nil) }
            guard let r = try await tx.find(kind: PAMKind.account, scope: resource.id, name: rotator) else {
                throw EngineError(
                    .wrongState, "the resource's rotation account '\(rotator)' is not one of its accounts")
            }
            let b = try self.decode(PAMAccountBody.self, r)
            return (
                old,
                (
                    rotator,
                    try await self.keyring.open(b.sealedPassword, binding: "pam-account/\(b.info.id)/password", tx)
                )
            )
        }
        let fresh = Self.randomPassword()
        var salt = [UInt8](repeating: 0, count: 16)
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255) }
        let verifier = try Self.scramVerifier(fresh, salt: salt)
        let adminUser = admin?.0 ?? username
        let adminPassword = SecretBytes(admin?.1 ?? oldPassword)
        let failure = await changePassword(
            resource.target, adminUser: adminUser, adminPassword: adminPassword, role: username, fresh: fresh,
            old: oldPassword, selfRotation: admin == nil, verifier: verifier)
        let result = try await transact { tx -> PAMAccountInfo in
            var (record, body) = try await self.pamAccount(accountId, tx)
            body.rotationClaimUntil = nil
            if let failure {
                body.info.lastRotationError = failure
            } else {
                body.sealedPassword = try await self.keyring.seal(
                    fresh, binding: "pam-account/\(accountId)/password", tx)
                body.info.passwordChangedAt = self.clock()
                body.info.lastRotationError = nil
            }
            record.body = try Self.encode(body)
            _ = try await tx.update(record)
            var meta = ["accountId": accountId, "username": username, "resource": resource.name, "rotator": adminUser]
            if let failure { meta["error"] = failure }
            try await self.audit.append(
                self.allowed(
                    ctx, decision, failure == nil ? "pam.account.rotate" : "pam.account.rotate.failed",
                    project: resource.project, meta), tx)
            return body.info
        }
        if let failure {
            logger.error(
                "PAM credential rotation failed; the old credential stays in use",
                metadata: ["account": "\(username)", "resource": "\(resource.name)", "reason": "\(failure)"])
            throw EngineError(.unavailable, "rotation failed, the old credential stays in use: \(failure)")
        }
        logger.notice("PAM credential rotated", metadata: ["account": "\(username)", "resource": "\(resource.name)"])
        return result
    }

    /// ALTER ROLE with the new verifier, then a login with the new password; on a failed login the old password is
    /// put back. Returns why the rotation failed, nil when the new password works.
    private func changePassword(
        _ target: PAMTarget, adminUser: String, adminPassword: SecretBytes, role: String, fresh: [UInt8], old: [UInt8],
        selfRotation: Bool, verifier: String
    ) async -> String? {
        do {
            try await connector.setPassword(
                target, username: adminUser, password: adminPassword, role: role, verifier: verifier)
        } catch {
            return "ALTER ROLE failed: \((error as? EngineError)?.message ?? "\(error)")"
        }
        do {
            try await connector.checkLogin(target, username: role, password: SecretBytes(fresh))
            return nil
        } catch {
            var failure = "the new password does not log in: \((error as? EngineError)?.message ?? "\(error)")"
            // Put the old credential back (as the rotator, or as the account itself with the new password).
            var salt = [UInt8](repeating: 0, count: 16)
            for i in salt.indices { salt[i] = UInt8.random(in: 0...255) }
            let restorer = selfRotation ? SecretBytes(fresh) : adminPassword
            do {
                let restore = try Self.scramVerifier(old, salt: salt)
                try await connector.setPassword(
                    target, username: adminUser, password: restorer, role: role, verifier: restore)
            } catch {
                failure += "; restoring the old password failed too"
            }
            return failure
        }
    }
}

/// Wakes the live sessions of a grant revoked through this node (the proxy's grant checks wait on it between polls).
final class GrantChangeSignal: Sendable {
    private struct State {
        var next: UInt64 = 0
        var waiters: [String: [UInt64: AsyncStream<Void>.Continuation]] = [:]
    }
    private let state = Mutex(State())

    /// Returns on `signal(grantId)` or after `timeout` (or when the task is cancelled).
    func wait(_ grantId: String, timeout: Duration) async {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let token = state.withLock { s -> UInt64 in
            s.next += 1
            s.waiters[grantId, default: [:]][s.next] = continuation
            return s.next
        }
        defer {
            state.withLock { s in
                s.waiters[grantId]?[token] = nil
                if s.waiters[grantId]?.isEmpty == true { s.waiters[grantId] = nil }
            }
            continuation.finish()
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in stream { return }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    func signal(_ grantId: String) {
        let waiters = state.withLock { s in s.waiters[grantId].map { Array($0.values) } ?? [] }
        for c in waiters { c.yield() }
    }
}
