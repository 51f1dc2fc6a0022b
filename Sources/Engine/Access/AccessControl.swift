import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Synchronization
@_spi(FixedExpiryValidationTime) import X509

/// Record kinds of the identity subsystem.
enum AccessKind {
    static let project = "project"
    static let identity = "identity"
    static let universalAuth = "auth-ua"
    static let clientSecret = "ua-secret"
    static let tokenAuth = "auth-token"
    static let tlsCertAuth = "auth-tls"
    static let accessToken = "access-token"
    static let lockout = "ua-lockout"
    static let role = "role"
    static let membership = "membership"
    static let privilege = "privilege"
    /// Scope of organization-wide records.
    static let org = "org"
}

/// Stored bodies (JSON) of the identity subsystem.
struct ProjectBody: Codable { var description: String }
struct IdentityBody: Codable {
    var orgRole: OrgRole
    var metadata: [String: String]
}
struct ClientSecretBody: Codable {
    var hash: Data
    var prefix: String
    var description: String
    var ttl: Int
    var numUsesLimit: Int
    var numUses: Int
    var isRevoked: Bool
}
struct TokenBody: Codable, Sendable {
    var identityId: String
    var authMethod: String
    var expiresAt: Date
    var settings: AccessTokenSettings
    var numUses: Int
    var isRevoked: Bool
    /// For a browser session token (`startSession`): the hash of the token that started it. The session is refused
    /// as soon as that token is expired, revoked or gone.
    var parent: String? = nil
}
struct LockoutBody: Codable {
    var failures: Int
    var lastFailureAt: Date
    var lockedUntil: Date?
}
struct RoleBody: Codable {
    var description: String
    var permissions: [Permission]
}
struct MembershipBody: Codable { var roles: [RoleGrant] }
struct PrivilegeBody: Codable {
    var identityId: String
    var slug: String
    var permissions: [Permission]
    var isTemporary: Bool
    var temporaryRange: String?
    var start: Date?
    var end: Date?
}

/// Who the caller turned out to be.
struct Caller: Sendable {
    enum Kind: Sendable { case superuser, identity }
    var kind: Kind
    var identityId: String?
    var name: String
    var orgRole: OrgRole
    var metadata: [String: String]

    var facts: TemplateFacts { TemplateFacts(id: identityId ?? "", name: name, metadata: metadata) }
}

/// The outcome of an allowed authorization: who, and which grant allowed it.
struct Decision: Sendable {
    var caller: Caller
    var grantedBy: String
    /// The rules that applied (for filtering listed items); empty for superusers.
    var rules: [(origin: String, permission: Permission)]
    var isSuperuser: Bool { caller.kind == .superuser || caller.orgRole == .admin }

    /// Whether the same caller may act on one item of a listing.
    func permits(_ request: AccessRequest) -> Bool {
        isSuperuser || PolicyEvaluator.allows(rules, request, caller.facts) != nil
    }
}

/// Rules granted to one identity in one project, each with where it came from (`role:…`, `privilege:…`).
typealias Rules = [(origin: String, permission: Permission)]

/// Short-lived caches in front of policy lookups. Local writes invalidate them at once (a generation counter);
/// other nodes of a shared store see changes within `ttl` (docs/secrets-and-identities.md).
final class AccessCache: Sendable {
    /// One map of entries that expire by time and by generation.
    final class Map<V: Sendable>: Sendable {
        struct Entry: Sendable {
            var value: V
            var expires: Date
            var generation: Int
        }
        private let entries = Mutex<[String: Entry]>([:])

        func get(_ key: String, now: Date, generation: Int) -> V? {
            entries.withLock { map in
                guard let e = map[key], e.generation == generation, e.expires > now else { return nil }
                return e.value
            }
        }
        func set(_ key: String, _ value: V, expires: Date, generation: Int) {
            entries.withLock { map in
                if map.count > 10_000 { map.removeAll() }
                map[key] = Entry(value: value, expires: expires, generation: generation)
            }
        }
    }

    static let ttl: TimeInterval = 2
    private let generation = Atomic<Int>(0)
    private let ruleMap = Map<Rules>()
    /// `Caller?` wrapped so that "no such identity" is cached too.
    private let callerMap = Map<Caller?>()

    func invalidate() { generation.add(1, ordering: .sequentiallyConsistent) }
    var currentGeneration: Int { generation.load(ordering: .sequentiallyConsistent) }

    func rules(_ key: String, now: Date) -> Rules? { ruleMap.get(key, now: now, generation: currentGeneration) }
    func storeRules(_ key: String, _ value: Rules, expires: Date, generation g: Int) {
        ruleMap.set(key, value, expires: expires, generation: g)
    }
    /// Access tokens that passed their checks (by token hash): a keep-alive client sending the same token needs no
    /// store read and no JSON decoding per request. Only valid tokens are kept, so an unknown token costs nothing
    /// here; use-limited tokens are never kept (each use is a write).
    private let tokenMap = Map<TokenBody>()
    func token(_ hash: String, now: Date) -> TokenBody? { tokenMap.get(hash, now: now, generation: currentGeneration) }
    func storeToken(_ hash: String, _ value: TokenBody, expires: Date, generation g: Int) {
        tokenMap.set(hash, value, expires: expires, generation: g)
    }
    func caller(_ key: String, now: Date) -> Caller?? { callerMap.get(key, now: now, generation: currentGeneration) }
    func storeCaller(_ key: String, _ value: Caller?, expires: Date, generation g: Int) {
        callerMap.set(key, value, expires: expires, generation: g)
    }
}

extension EngineService {
    // MARK: - Resolving the caller

    /// Resolves a principal to a caller; nil when the principal does not authenticate anyone.
    func resolve(_ principal: Principal) async throws -> Caller? {
        switch principal.method {
        case .system:
            return Caller(kind: .superuser, identityId: nil, name: "system", orgRole: .admin, metadata: [:])
        case .anonymous, .acmeAccount:
            return nil
        case .token:
            return try await identityCaller(principal.id)
        case .tlsCertificate:
            // Bootstrap admins come from the listener's configured client CA, never from the KMIP client PKI (which
            // the KMIP listener trusts too): a KMIP client certificate authenticates only through an identity.
            if principal.verifiedByListener, bootstrapAdmins.contains(principal.name), !issuedByKMIPClientCA(principal)
            {
                return Caller(kind: .superuser, identityId: nil, name: principal.name, orgRole: .admin, metadata: [:])
            }
            let now = clock()
            if let cached = accessCache.caller("cert:" + principal.id, now: now) { return cached }
            let generation = accessCache.currentGeneration
            let identityId = try await certificateIdentity(principal, only: nil)
            var caller: Caller?
            if let identityId { caller = try await identityCaller(identityId) }
            accessCache.storeCaller(
                "cert:" + principal.id, caller, expires: now + AccessCache.ttl, generation: generation)
            return caller
        }
    }

    func identityCaller(_ identityId: String) async throws -> Caller? {
        let now = clock()
        if let cached = accessCache.caller("id:" + identityId, now: now) { return cached }
        let generation = accessCache.currentGeneration
        let record = try await read { tx in try await tx.get(kind: AccessKind.identity, id: identityId) }
        let caller = try record.map { r -> Caller in
            let body = try decode(IdentityBody.self, r)
            return Caller(
                kind: .identity, identityId: r.id, name: r.name ?? "", orgRole: body.orgRole, metadata: body.metadata)
        }
        accessCache.storeCaller("id:" + identityId, caller, expires: now + AccessCache.ttl, generation: generation)
        return caller
    }

    /// The identity whose TLS Certificate Auth accepts the principal's certificate chain (optionally only `only`).
    func certificateIdentity(_ principal: Principal, only: String?) async throws -> String? {
        guard let leafDER = principal.certificateChain.first, let leaf = try? Certificate(derEncoded: leafDER) else {
            return nil
        }
        let intermediates = principal.certificateChain.dropFirst().compactMap { try? Certificate(derEncoded: $0) }
        let configs: [Record] = try await read { tx in
            if let only { return try await tx.get(kind: AccessKind.tlsCertAuth, id: only).map { [$0] } ?? [] }
            // The methods that accept the certificate's common name, through their index (every page of them).
            return try await Self.lookupEvery(
                tx, kind: AccessKind.tlsCertAuth, index: TLSCertAuthIndex.commonName, IndexKey(principal.name))
        }
        let now = clock()
        for record in configs {
            let config = try decode(TLSCertAuthInfo.self, record)
            guard config.allowedCommonNames.contains(principal.name) else { continue }
            guard let ca = try? Certificate(pemEncoded: config.caCertificate) else { continue }
            var verifier = Verifier(rootCertificates: CertificateStore([ca])) {
                RFC5280Policy(fixedExpiryValidationTime: now)
            }
            let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
            if case .validCertificate = result { return config.identityId }
        }
        return nil
    }

    // MARK: - Authorization

    /// Authorizes one engine call. On denial writes an audit event and throws; on success returns the decision,
    /// which the operation records in its own audit event.
    @discardableResult
    func authorize(_ ctx: CallContext, _ request: AccessRequest) async throws -> Decision {
        guard let caller = try await resolve(ctx.principal) else {
            await auditFailure(
                ctx, "authentication.failed", project: request.project,
                [
                    "action": request.description,
                    "reason": ctx.principal.method == .anonymous
                        ? "no credentials" : "no identity accepts these credentials",
                ])
            throw EngineError(.unauthenticated, "authentication required")
        }
        if caller.kind == .superuser {
            return Decision(
                caller: caller, grantedBy: ctx.principal.method == .system ? "system" : "bootstrap-admin", rules: [])
        }
        if caller.orgRole == .admin {
            return Decision(caller: caller, grantedBy: "org-role:admin", rules: [])
        }
        let rules: [(origin: String, permission: Permission)]
        switch request.scope {
        case .organization:
            rules = PolicyEvaluator.orgPermissions(caller.orgRole).map { ("org-role:\(caller.orgRole.rawValue)", $0) }
        case .project(let project):
            rules = try await projectRules(identityId: caller.identityId ?? "", project: project)
        }
        if let by = PolicyEvaluator.allows(rules, request, caller.facts) {
            return Decision(caller: caller, grantedBy: by, rules: rules)
        }
        await auditFailure(
            ctx, "authorization.denied", project: request.project,
            [
                "action": request.description, "resource": request.fields["name"] ?? "",
                "identityId": caller.identityId ?? "",
                "reason": "no permission grants \(request.description)",
            ])
        throw EngineError(.permissionDenied, "permission denied")
    }

    /// Rules of an identity in a project from its active role grants and additional privileges.
    func projectRules(identityId: String, project: String) async throws -> [(origin: String, permission: Permission)] {
        let now = clock()
        let key = identityId + "|" + project
        if let cached = accessCache.rules(key, now: now) { return cached }
        let generation = accessCache.currentGeneration
        var expires = now + AccessCache.ttl
        // What this identity holds in this project, by key and index: its membership, the custom roles it grants,
        // and its privileges. Neither the project's other roles nor anyone else's privileges are read.
        let (membership, customRoles, privileges) = try await read { tx in
            let m = try await tx.find(kind: AccessKind.membership, scope: project, name: identityId)
            var roles: [Record] = []
            if let m {
                for grant in try self.decode(MembershipBody.self, m).roles
                where PolicyEvaluator.builtInRole(grant.role, project: project) == nil
                    && !roles.contains(where: { $0.name == grant.role })
                {
                    if let role = try await tx.find(kind: AccessKind.role, scope: project, name: grant.role) {
                        roles.append(role)
                    }
                }
            }
            let privileges = try await Self.lookupEvery(
                tx, kind: AccessKind.privilege, index: PrivilegeIndex.identity,
                IndexKey(identityId).appending(project))
            return (m, roles, privileges)
        }
        var rules: [(origin: String, permission: Permission)] = []
        if let membership {
            let body = try decode(MembershipBody.self, membership)
            for grant in body.roles {
                if grant.isTemporary {
                    guard let start = grant.temporaryAccessStartTime, let end = grant.temporaryAccessEndTime else {
                        continue
                    }
                    if now < start {
                        expires = min(expires, start)
                        continue
                    }
                    if now >= end { continue }
                    expires = min(expires, end)
                }
                if let builtIn = PolicyEvaluator.builtInRole(grant.role, project: project) {
                    rules += builtIn.permissions.map { ("role:\(grant.role)", $0) }
                } else if let custom = customRoles.first(where: { $0.name == grant.role }) {
                    rules += try decode(RoleBody.self, custom).permissions.map { ("role:\(grant.role)", $0) }
                }
            }
        }
        for record in privileges {
            let p = try decode(PrivilegeBody.self, record)
            guard p.identityId == identityId else { continue }
            if p.isTemporary {
                guard let start = p.start, let end = p.end else { continue }
                if now < start {
                    expires = min(expires, start)
                    continue
                }
                if now >= end { continue }
                expires = min(expires, end)
            }
            rules += p.permissions.map { ("privilege:\(p.slug)", $0) }
        }
        accessCache.storeRules(key, rules, expires: expires, generation: generation)
        return rules
    }

    /// Every record whose key in an unscoped index starts with `prefix`, a page at a time.
    static func lookupEvery(_ tx: any StorageTransaction, kind: String, index: String, _ prefix: IndexKey)
        async throws -> [Record]
    {
        var records: [Record] = []
        var after: IndexCursor?
        while true {
            let page = try await tx.lookup(
                .prefix(kind: kind, index: index, scope: nil, prefix, after: after, limit: 500))
            records += page.map(\.record)
            guard page.count == 500, let last = page.last else { return records }
            after = last.cursor
        }
    }

    /// Writes an audit event for a refused call (best effort: a failure to audit is logged, the refusal stands).
    /// Refusals from one source are audited in full a few times per window and then counted (see
    /// `RefusalAuditLimiter`), so a flood of bad requests costs a bounded amount of store.
    func auditFailure(_ ctx: CallContext, _ type: String, project: String?, _ metadata: [String: String]) async {
        let source = (ctx.ipAddress ?? "local") + " " + ctx.principal.method.rawValue + ":" + ctx.principal.id
        let (verdict, summary) = refusalLimiter.admit(
            source: source, type: type, project: project, metadata: metadata, now: clock())
        if let summary { await writeRefusalSummaries([summary]) }
        guard case .write = verdict else { return }
        let e = event(ctx, type, project: project, metadata)
        do {
            try await audit.record([e])
        } catch {
            logger.error("cannot audit a refusal", metadata: ["error": "\(error)"])
        }
    }

    func writeRefusalSummaries(_ summaries: [RefusalAuditLimiter.Summary]) async {
        guard !summaries.isEmpty else { return }
        let format = ISO8601DateFormatter()
        let events = summaries.map { s -> AuditEvent in
            let ip =
                s.key.source == RefusalAuditLimiter.overflowSource
                ? nil : s.key.source.split(separator: " ").first.map(String.init)
            var meta = [
                "source": s.key.source, "type": s.key.type, "suppressed": String(s.window.suppressed),
                "auditedInFull": String(s.window.written), "windowStart": format.string(from: s.window.start),
                "windowEnd": format.string(from: s.end),
            ]
            if let reason = s.window.lastMetadata["reason"] { meta["lastReason"] = reason }
            if let action = s.window.lastMetadata["action"] { meta["lastAction"] = action }
            return event(
                CallContext(principal: .system, frontEnd: "audit", ipAddress: ip == "local" ? nil : ip),
                "audit.refusals.suppressed",
                project: s.window.project, meta)
        }
        do {
            try await audit.record(events)
        } catch {
            logger.error("cannot audit suppressed refusals", metadata: ["error": "\(error)"])
        }
    }

    /// An audit event for an allowed operation, naming the grant that allowed it.
    func allowed(
        _ ctx: CallContext, _ decision: Decision, _ type: String, project: String?, _ metadata: [String: String] = [:]
    ) -> AuditEvent {
        var m = metadata
        m["decision"] = "allow"
        m["grantedBy"] = decision.grantedBy
        if let id = decision.caller.identityId { m["identityId"] = id }
        return event(ctx, type, project: project, m)
    }

    /// Fails with `.notFound` unless the project exists.
    func requireProject(_ slug: String, _ tx: any StorageTransaction) async throws -> Record {
        guard let record = try await tx.find(kind: AccessKind.project, scope: AccessKind.org, name: slug) else {
            throw EngineError(.notFound, "project '\(slug)' not found")
        }
        return record
    }

    /// Whether the principal's certificate was issued by the KMIP client CA (its Authority Key Identifier is the
    /// CA's key identifier).
    func issuedByKMIPClientCA(_ principal: Principal) -> Bool {
        guard let keyID = core.kmipClientCA.withLock({ $0?.keyID }) else { return false }
        if let known = core.kmipIssuedVerdicts.withLock({ $0[principal.id] }) { return known }
        guard let leafDER = principal.certificateChain.first else { return false }  // no certificate: not its
        let verdict: Bool
        if let leaf = try? Certificate(derEncoded: leafDER) {
            if let aki = try? leaf.extensions.authorityKeyIdentifier?.keyIdentifier {
                verdict = Array(aki) == keyID
            } else {
                verdict = leaf.issuer == (try? Self.kmipClientCASubject)
            }
        } else {
            verdict = true  // unreadable: never a bootstrap admin
        }
        core.kmipIssuedVerdicts.withLock { cache in
            if cache.count > 1_000 { cache.removeAll() }
            cache[principal.id] = verdict
        }
        return verdict
    }

    static var kmipClientCASubject: DistinguishedName {
        get throws {
            try DistinguishedName {
                OrganizationName("Gatehouse")
                CommonName("Gatehouse KMIP Client CA")
            }
        }
    }
}
