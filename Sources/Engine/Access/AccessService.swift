import ACMEProtocol
import Crypto
import EngineAPI
import Foundation
import StorageAPI
import X509

/// Access: projects, machine identities and their authentication methods (Universal Auth, Token Auth, TLS
/// Certificate Auth), access tokens, roles, memberships and privileges. Authorization itself is the core's.
public final class AccessService: EngineService {
    let core: EngineCore
    init(core: EngineCore) { self.core = core }
}

// Projects, identities, auth-method configuration, roles, memberships and privileges.
extension AccessService {
    static func validateSlug(_ value: String, _ what: String) throws {
        guard !value.isEmpty, value.utf8.count <= 64,
            value.unicodeScalars.allSatisfy({
                ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
            })
        else {
            throw EngineError(
                .invalidArgument, "\(what) must be 1–64 characters of lower-case letters, digits, '-' or '_'")
        }
    }

    static func validateID(_ value: String, _ what: String) throws {
        guard !value.isEmpty, value.utf8.count <= 64,
            value.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || $0 == "-" })
        else { throw EngineError(.notFound, "\(what) not found") }
    }

    // MARK: - Projects

    func projectInfo(_ r: Record) throws -> ProjectInfo {
        ProjectInfo(
            slug: r.name ?? "", description: try decode(ProjectBody.self, r).description, createdAt: r.createdAt)
    }

    public func createProject(_ ctx: CallContext, slug: String, description: String) async throws -> ProjectInfo {
        try Self.validateSlug(slug, "project slug")
        guard description.utf8.count <= 1000 else { throw EngineError(.invalidArgument, "description is too long") }
        let decision = try await authorize(ctx, AccessRequest(.organization, .projects, .create, ["name": slug]))
        let now = clock()
        defer { accessCache.invalidate() }
        return try await transact { tx in
            let record = Record(
                kind: AccessKind.project, id: RecordID.make(), scope: AccessKind.org, name: slug,
                body: try Self.encode(ProjectBody(description: description)), createdAt: now)
            try await tx.insert(record)
            // The creating identity administers its project.
            if decision.caller.kind == .identity, let identityId = decision.caller.identityId {
                try await tx.insert(
                    Record(
                        kind: AccessKind.membership, id: RecordID.make(), scope: slug, name: identityId,
                        body: try Self.encode(MembershipBody(roles: [RoleGrant(role: "admin")])), createdAt: now))
            }
            try await self.audit.append(
                self.allowed(ctx, decision, "project.create", project: slug, ["slug": slug]), tx)
            return try self.projectInfo(record)
        }
    }

    public func listProjects(_ ctx: CallContext, after: String?, limit: Int) async throws -> Page<ProjectInfo> {
        guard let caller = try await resolve(ctx.principal) else {
            try await authorize(ctx, AccessRequest(.organization, .projects, .read))
            throw EngineError(.unauthenticated, "authentication required")
        }
        let limit = min(max(limit, 1), 1000)
        let records = try await transact { tx in
            try await tx.list(kind: AccessKind.project, scope: AccessKind.org, afterID: after, limit: limit + 1)
        }
        let page = records.prefix(limit)
        var items: [ProjectInfo] = []
        for record in page {
            let slug = record.name ?? ""
            if caller.kind == .superuser || caller.orgRole == .admin {
                items.append(try projectInfo(record))
                continue
            }
            let rules = try await projectRules(identityId: caller.identityId ?? "", project: slug)
            if PolicyEvaluator.allows(rules, AccessRequest(.project(slug), .project, .read), caller.facts) != nil {
                items.append(try projectInfo(record))
            }
        }
        return Page(items: items, next: records.count > limit ? page.last?.id : nil)
    }

    public func getProject(_ ctx: CallContext, slug: String) async throws -> ProjectInfo {
        try Self.validateSlug(slug, "project slug")
        try await authorize(ctx, AccessRequest(.project(slug), .project, .read))
        return try await transact { tx in try self.projectInfo(try await self.requireProject(slug, tx)) }
    }

    public func deleteProject(_ ctx: CallContext, slug: String) async throws {
        try Self.validateSlug(slug, "project slug")
        let decision = try await authorize(ctx, AccessRequest(.project(slug), .project, .delete))
        defer { accessCache.invalidate() }
        try await transact { tx in
            let project = try await self.requireProject(slug, tx)
            // Everything scoped to the project goes with it, in the same transaction.
            var removed = 0
            for kind in [SecretsService.secretKind, AccessKind.role, AccessKind.membership, AccessKind.privilege] {
                while true {
                    let batch = try await tx.list(kind: kind, scope: slug, afterID: nil, limit: 500)
                    if batch.isEmpty { break }
                    for r in batch { try await tx.delete(kind: kind, id: r.id, expectedVersion: r.version) }
                    removed += batch.count
                }
            }
            try await tx.delete(kind: AccessKind.project, id: project.id, expectedVersion: project.version)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "project.delete", project: slug, ["slug": slug, "removedRecords": "\(removed)"]), tx)
        }
    }

    // MARK: - Identities

    func identityInfo(_ r: Record, _ tx: any StorageTransaction) async throws -> IdentityInfo {
        let body = try decode(IdentityBody.self, r)
        var methods: [String] = []
        if try await tx.get(kind: AccessKind.universalAuth, id: r.id) != nil { methods.append("universal-auth") }
        if try await tx.get(kind: AccessKind.tokenAuth, id: r.id) != nil { methods.append("token-auth") }
        if try await tx.get(kind: AccessKind.tlsCertAuth, id: r.id) != nil { methods.append("tls-cert-auth") }
        return IdentityInfo(
            id: r.id, name: r.name ?? "", orgRole: body.orgRole, metadata: body.metadata, authMethods: methods,
            createdAt: r.createdAt)
    }

    static func validateMetadata(_ m: [String: String]) throws {
        guard m.count <= 50, m.allSatisfy({ !$0.key.isEmpty && $0.key.utf8.count <= 64 && $0.value.utf8.count <= 256 })
        else {
            throw EngineError(.invalidArgument, "metadata: at most 50 entries, keys 1–64 and values up to 256 bytes")
        }
    }

    func requireIdentity(_ id: String, _ tx: any StorageTransaction) async throws -> Record {
        try Self.validateID(id, "identity")
        guard let r = try await tx.get(kind: AccessKind.identity, id: id) else {
            throw EngineError(.notFound, "identity not found")
        }
        return r
    }

    public func createIdentity(_ ctx: CallContext, _ spec: IdentitySpec) async throws -> IdentityInfo {
        guard let name = spec.name else { throw EngineError(.invalidArgument, "name is required") }
        try Self.validateName(name, "name")
        try Self.validateMetadata(spec.metadata ?? [:])
        let decision = try await authorize(ctx, AccessRequest(.organization, .identities, .create, ["name": name]))
        let now = clock()
        return try await transact { tx in
            let record = Record(
                kind: AccessKind.identity, id: RecordID.make(), scope: AccessKind.org, name: name,
                body: try Self.encode(IdentityBody(orgRole: spec.orgRole ?? .noAccess, metadata: spec.metadata ?? [:])),
                createdAt: now)
            try await tx.insert(record)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "identity.create", project: nil, ["targetIdentityId": record.id, "name": name]), tx)
            return try await self.identityInfo(record, tx)
        }
    }

    public func listIdentities(_ ctx: CallContext, after: String?, limit: Int) async throws -> Page<IdentityInfo> {
        try await authorize(ctx, AccessRequest(.organization, .identities, .read))
        let limit = min(max(limit, 1), 1000)
        return try await transact { tx in
            let records = try await tx.list(
                kind: AccessKind.identity, scope: AccessKind.org, afterID: after, limit: limit + 1)
            var items: [IdentityInfo] = []
            for r in records.prefix(limit) { items.append(try await self.identityInfo(r, tx)) }
            return Page(items: items, next: records.count > limit ? items.last?.id : nil)
        }
    }

    public func getIdentity(_ ctx: CallContext, id: String) async throws -> IdentityInfo {
        try await authorize(ctx, AccessRequest(.organization, .identities, .read))
        return try await transact { tx in try await self.identityInfo(try await self.requireIdentity(id, tx), tx) }
    }

    public func updateIdentity(_ ctx: CallContext, id: String, _ spec: IdentitySpec) async throws -> IdentityInfo {
        if let name = spec.name { try Self.validateName(name, "name") }
        try Self.validateMetadata(spec.metadata ?? [:])
        let decision = try await authorize(ctx, AccessRequest(.organization, .identities, .edit))
        defer { accessCache.invalidate() }
        return try await transact { tx in
            var record = try await self.requireIdentity(id, tx)
            var body = try self.decode(IdentityBody.self, record)
            if let role = spec.orgRole { body.orgRole = role }
            if let m = spec.metadata { body.metadata = m }
            if let name = spec.name { record.name = name }
            record.body = try Self.encode(body)
            record.updatedAt = self.clock()
            let stored = try await tx.update(record)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "identity.update", project: nil,
                    ["targetIdentityId": id, "orgRole": body.orgRole.rawValue]), tx)
            return try await self.identityInfo(stored, tx)
        }
    }

    public func deleteIdentity(_ ctx: CallContext, id: String) async throws {
        let decision = try await authorize(ctx, AccessRequest(.organization, .identities, .delete))
        defer { accessCache.invalidate() }
        try await transact { tx in
            let record = try await self.requireIdentity(id, tx)
            for kind in [AccessKind.universalAuth, AccessKind.tokenAuth, AccessKind.tlsCertAuth, AccessKind.lockout] {
                if let r = try await tx.get(kind: kind, id: id) {
                    try await tx.delete(kind: kind, id: r.id, expectedVersion: r.version)
                }
            }
            for kind in [AccessKind.clientSecret, AccessKind.accessToken] {
                while true {
                    let batch = try await tx.list(kind: kind, scope: id, afterID: nil, limit: 500)
                    if batch.isEmpty { break }
                    for r in batch { try await tx.delete(kind: kind, id: r.id, expectedVersion: r.version) }
                }
            }
            // Memberships and privileges in every project, found through their identity indexes (not a scan of
            // every membership and privilege of the appliance).
            for (kind, index) in [
                (AccessKind.membership, MembershipIndex.identity), (AccessKind.privilege, PrivilegeIndex.identity),
            ] {
                while true {
                    let batch = try await tx.lookup(
                        .prefix(kind: kind, index: index, scope: nil, IndexKey(id), limit: 500))
                    if batch.isEmpty { break }
                    for hit in batch {
                        try await tx.delete(kind: kind, id: hit.record.id, expectedVersion: hit.record.version)
                    }
                }
            }
            try await tx.delete(kind: AccessKind.identity, id: id, expectedVersion: record.version)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "identity.delete", project: nil, ["targetIdentityId": id, "name": record.name ?? ""]),
                tx)
        }
    }

    // MARK: - Auth method configuration

    static func tokenSettings(_ spec: AuthMethodSpec, base: AccessTokenSettings = AccessTokenSettings()) throws
        -> AccessTokenSettings
    {
        // The lockout fields are bounded whichever method the spec is for (the API schema bounds them for all three):
        // a value out of range is refused, not silently ignored by token and TLS certificate auth.
        guard spec.lockoutThreshold.map({ (1...30).contains($0) }) ?? true,
            spec.lockoutDurationSeconds.map({ (1...86_400).contains($0) }) ?? true,
            spec.lockoutCounterResetSeconds.map({ (1...3600).contains($0) }) ?? true
        else {
            throw EngineError(.invalidArgument, "lockout: threshold 1–30, duration 1–86400 s, counter reset 1–3600 s")
        }
        if let v = spec.clientSecretTrustedIps { try CIDR.validate(v, "clientSecretTrustedIps") }
        var s = base
        if let v = spec.accessTokenTTL { s.accessTokenTTL = v }
        if let v = spec.accessTokenMaxTTL { s.accessTokenMaxTTL = v }
        if let v = spec.accessTokenNumUsesLimit { s.accessTokenNumUsesLimit = v }
        if let v = spec.accessTokenTrustedIps { s.accessTokenTrustedIps = v }
        if let v = spec.accessTokenPeriod { s.accessTokenPeriod = v }
        let limit = 315_360_000  // ten years
        guard (1...limit).contains(s.accessTokenTTL), (0...limit).contains(s.accessTokenMaxTTL),
            (0...limit).contains(s.accessTokenPeriod), s.accessTokenNumUsesLimit >= 0
        else { throw EngineError(.invalidArgument, "token TTLs must be 1 s – 10 years, uses and period non-negative") }
        guard s.accessTokenMaxTTL == 0 || s.accessTokenTTL <= s.accessTokenMaxTTL else {
            throw EngineError(.invalidArgument, "accessTokenTTL cannot exceed accessTokenMaxTTL")
        }
        try CIDR.validate(s.accessTokenTrustedIps, "accessTokenTrustedIps")
        return s
    }

    public func attachUniversalAuth(_ ctx: CallContext, identityId: String, _ spec: AuthMethodSpec) async throws
        -> UniversalAuthInfo
    {
        let token = try Self.tokenSettings(spec)
        var draft = UniversalAuthInfo(identityId: identityId, clientId: RecordID.make(), token: token)
        if let v = spec.clientSecretTrustedIps { draft.clientSecretTrustedIps = v }
        if let v = spec.lockoutEnabled { draft.lockoutEnabled = v }
        if let v = spec.lockoutThreshold { draft.lockoutThreshold = v }
        if let v = spec.lockoutDurationSeconds { draft.lockoutDurationSeconds = v }
        if let v = spec.lockoutCounterResetSeconds { draft.lockoutCounterResetSeconds = v }
        let info = draft
        try CIDR.validate(info.clientSecretTrustedIps, "clientSecretTrustedIps")
        guard (1...30).contains(info.lockoutThreshold), (1...86_400).contains(info.lockoutDurationSeconds),
            (1...3600).contains(info.lockoutCounterResetSeconds)
        else {
            throw EngineError(.invalidArgument, "lockout: threshold 1–30, duration 1–86400 s, counter reset 1–3600 s")
        }
        let decision = try await authorize(ctx, AccessRequest(.organization, .identities, .edit))
        let now = clock()
        return try await transact { tx in
            _ = try await self.requireIdentity(identityId, tx)
            if try await tx.get(kind: AccessKind.universalAuth, id: identityId) != nil {
                throw EngineError(.alreadyExists, "universal auth is already attached to this identity")
            }
            try await tx.insert(
                Record(
                    kind: AccessKind.universalAuth, id: identityId, scope: AccessKind.org, name: info.clientId,
                    body: try Self.encode(info), createdAt: now))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "identity.universal-auth.attach", project: nil, ["targetIdentityId": identityId]), tx
            )
            return info
        }
    }

    public func getUniversalAuth(_ ctx: CallContext, identityId: String) async throws -> UniversalAuthInfo {
        try await authorize(ctx, AccessRequest(.organization, .identities, .read))
        return try await transact { tx in
            try Self.validateID(identityId, "identity")
            guard let r = try await tx.get(kind: AccessKind.universalAuth, id: identityId) else {
                throw EngineError(.notFound, "universal auth is not attached to this identity")
            }
            return try self.decode(UniversalAuthInfo.self, r)
        }
    }

    static func randomToken(_ prefix: String) -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        return prefix + Base64URL.encode(bytes)
    }

    static func hash(_ secret: String) -> Data { Data(SHA256.hash(data: Data(secret.utf8))) }
    static func hex(_ d: Data) -> String { Hex.encode(d) }

    func clientSecretInfo(_ r: Record) throws -> ClientSecretInfo {
        let b = try decode(ClientSecretBody.self, r)
        return ClientSecretInfo(
            id: r.id, identityId: r.scope, description: b.description, prefix: b.prefix, ttl: b.ttl,
            numUsesLimit: b.numUsesLimit, numUses: b.numUses, isRevoked: b.isRevoked, createdAt: r.createdAt)
    }

    public func createClientSecret(_ ctx: CallContext, identityId: String, _ spec: ClientSecretSpec) async throws
        -> (ClientSecretInfo, SecretBytes)
    {
        let ttl = spec.ttl ?? 0
        let uses = spec.numUsesLimit ?? 0
        guard ttl >= 0, ttl <= 315_360_000, uses >= 0, (spec.description ?? "").utf8.count <= 500 else {
            throw EngineError(
                .invalidArgument, "ttl and numUsesLimit must be non-negative; description up to 500 bytes")
        }
        let decision = try await authorize(ctx, AccessRequest(.organization, .identities, .edit))
        let secret = Self.randomToken("ghcs_")
        let now = clock()
        let info = try await transact { tx -> ClientSecretInfo in
            _ = try await self.requireIdentity(identityId, tx)
            guard try await tx.get(kind: AccessKind.universalAuth, id: identityId) != nil else {
                throw EngineError(.wrongState, "attach universal auth to the identity first")
            }
            let record = Record(
                kind: AccessKind.clientSecret, id: RecordID.make(), scope: identityId,
                body: try Self.encode(
                    ClientSecretBody(
                        hash: Self.hash(secret), prefix: String(secret.prefix(9)), description: spec.description ?? "",
                        ttl: ttl, numUsesLimit: uses, numUses: 0, isRevoked: false)),
                createdAt: now)
            try await tx.insert(record)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "identity.universal-auth.client-secret.create", project: nil,
                    ["targetIdentityId": identityId, "clientSecretId": record.id]), tx)
            return try self.clientSecretInfo(record)
        }
        return (info, SecretBytes(utf8: secret))
    }

    public func listClientSecrets(_ ctx: CallContext, identityId: String) async throws -> [ClientSecretInfo] {
        try await authorize(ctx, AccessRequest(.organization, .identities, .read))
        return try await transact { tx in
            _ = try await self.requireIdentity(identityId, tx)
            return try await tx.listEvery(kind: AccessKind.clientSecret, scope: identityId)
                .map(self.clientSecretInfo)
        }
    }

    public func revokeClientSecret(_ ctx: CallContext, identityId: String, clientSecretId: String) async throws
        -> ClientSecretInfo
    {
        let decision = try await authorize(ctx, AccessRequest(.organization, .identities, .edit))
        return try await transact { tx in
            try Self.validateID(clientSecretId, "client secret")
            guard var r = try await tx.get(kind: AccessKind.clientSecret, id: clientSecretId), r.scope == identityId
            else {
                throw EngineError(.notFound, "client secret not found")
            }
            var body = try self.decode(ClientSecretBody.self, r)
            body.isRevoked = true
            r.body = try Self.encode(body)
            let stored = try await tx.update(r)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "identity.universal-auth.client-secret.revoke", project: nil,
                    ["targetIdentityId": identityId, "clientSecretId": clientSecretId]), tx)
            return try self.clientSecretInfo(stored)
        }
    }

    public func attachTokenAuth(_ ctx: CallContext, identityId: String, _ spec: AuthMethodSpec) async throws
        -> TokenAuthInfo
    {
        let info = TokenAuthInfo(identityId: identityId, token: try Self.tokenSettings(spec))
        let decision = try await authorize(ctx, AccessRequest(.organization, .identities, .edit))
        return try await transact { tx in
            _ = try await self.requireIdentity(identityId, tx)
            if try await tx.get(kind: AccessKind.tokenAuth, id: identityId) != nil {
                throw EngineError(.alreadyExists, "token auth is already attached to this identity")
            }
            try await tx.insert(
                Record(
                    kind: AccessKind.tokenAuth, id: identityId, scope: AccessKind.org, body: try Self.encode(info),
                    createdAt: self.clock()))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "identity.token-auth.attach", project: nil, ["targetIdentityId": identityId]), tx)
            return info
        }
    }

    public func createIdentityToken(_ ctx: CallContext, identityId: String) async throws -> IssuedToken {
        let decision = try await authorize(ctx, AccessRequest(.organization, .identities, .edit))
        return try await transact { tx in
            _ = try await self.requireIdentity(identityId, tx)
            guard let r = try await tx.get(kind: AccessKind.tokenAuth, id: identityId) else {
                throw EngineError(.wrongState, "attach token auth to the identity first")
            }
            let settings = try self.decode(TokenAuthInfo.self, r).token
            let (token, issued) = try await self.issueToken(identityId: identityId, method: "token-auth", settings, tx)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "identity.token-auth.token.create", project: nil,
                    ["targetIdentityId": identityId, "tokenId": token]), tx)
            return issued
        }
    }

    public func attachTLSCertAuth(_ ctx: CallContext, identityId: String, _ spec: AuthMethodSpec) async throws
        -> TLSCertAuthInfo
    {
        guard let pem = spec.caCertificate, pem.utf8.count <= 64 * 1024, let ca = try? Certificate(pemEncoded: pem)
        else {
            throw EngineError(.invalidArgument, "caCertificate must be one PEM certificate")
        }
        guard
            (try? ca.extensions.basicConstraints).flatMap({ $0 }).map({
                if case .isCertificateAuthority = $0 { return true } else { return false }
            }) ?? false
        else {
            throw EngineError(.invalidArgument, "caCertificate is not a CA certificate (basicConstraints cA=false)")
        }
        let names = spec.allowedCommonNames ?? []
        guard !names.isEmpty, names.count <= 1000, names.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 }) else {
            throw EngineError(.invalidArgument, "allowedCommonNames needs 1–1000 non-empty names")
        }
        let info = TLSCertAuthInfo(
            identityId: identityId, caCertificate: pem, allowedCommonNames: names, token: try Self.tokenSettings(spec))
        let decision = try await authorize(ctx, AccessRequest(.organization, .identities, .edit))
        defer { accessCache.invalidate() }
        return try await transact { tx in
            _ = try await self.requireIdentity(identityId, tx)
            if let old = try await tx.get(kind: AccessKind.tlsCertAuth, id: identityId) {
                var r = old
                r.body = try Self.encode(info)
                _ = try await tx.update(r)
            } else {
                try await tx.insert(
                    Record(
                        kind: AccessKind.tlsCertAuth, id: identityId, scope: AccessKind.org,
                        body: try Self.encode(info), createdAt: self.clock()))
            }
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "identity.tls-cert-auth.attach", project: nil,
                    ["targetIdentityId": identityId, "allowedCommonNames": names.joined(separator: ",")]), tx)
            return info
        }
    }

    public func getTLSCertAuth(_ ctx: CallContext, identityId: String) async throws -> TLSCertAuthInfo {
        try await authorize(ctx, AccessRequest(.organization, .identities, .read))
        return try await transact { tx in
            try Self.validateID(identityId, "identity")
            guard let r = try await tx.get(kind: AccessKind.tlsCertAuth, id: identityId) else {
                throw EngineError(.notFound, "TLS certificate auth is not attached to this identity")
            }
            return try self.decode(TLSCertAuthInfo.self, r)
        }
    }

    // MARK: - Roles

    public func createRole(_ ctx: CallContext, project: String, _ spec: RoleSpec) async throws -> RoleInfo {
        try Self.validateSlug(project, "project slug")
        try Self.validateSlug(spec.slug, "role slug")
        guard PolicyEvaluator.builtInProjectRoles[spec.slug] == nil else {
            throw EngineError(.alreadyExists, "'\(spec.slug)' is a built-in role")
        }
        try PolicyEvaluator.validate(spec.permissions)
        let decision = try await authorize(ctx, AccessRequest(.project(project), .roles, .create, ["name": spec.slug]))
        defer { accessCache.invalidate() }
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let body = RoleBody(description: spec.description ?? "", permissions: spec.permissions)
            try await tx.insert(
                Record(
                    kind: AccessKind.role, id: RecordID.make(), scope: project, name: spec.slug,
                    body: try Self.encode(body), createdAt: self.clock()))
            try await self.audit.append(
                self.allowed(ctx, decision, "role.create", project: project, ["role": spec.slug]), tx)
            return RoleInfo(
                slug: spec.slug, project: project, description: body.description, permissions: body.permissions,
                isBuiltIn: false)
        }
    }

    public func listRoles(_ ctx: CallContext, project: String) async throws -> [RoleInfo] {
        try Self.validateSlug(project, "project slug")
        try await authorize(ctx, AccessRequest(.project(project), .roles, .read))
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let builtIns = ["admin", "developer", "viewer"].compactMap {
                PolicyEvaluator.builtInRole($0, project: project)
            }
            let custom = try await tx.listEvery(kind: AccessKind.role, scope: project).map {
                r in
                let b = try self.decode(RoleBody.self, r)
                return RoleInfo(
                    slug: r.name ?? "", project: project, description: b.description, permissions: b.permissions,
                    isBuiltIn: false)
            }
            return builtIns + custom.sorted { $0.slug < $1.slug }
        }
    }

    public func getRole(_ ctx: CallContext, project: String, slug: String) async throws -> RoleInfo {
        try Self.validateSlug(project, "project slug")
        try await authorize(ctx, AccessRequest(.project(project), .roles, .read, ["name": slug]))
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            if let b = PolicyEvaluator.builtInRole(slug, project: project) { return b }
            guard let r = try await tx.find(kind: AccessKind.role, scope: project, name: slug) else {
                throw EngineError(.notFound, "role not found")
            }
            let b = try self.decode(RoleBody.self, r)
            return RoleInfo(
                slug: slug, project: project, description: b.description, permissions: b.permissions, isBuiltIn: false)
        }
    }

    public func deleteRole(_ ctx: CallContext, project: String, slug: String) async throws {
        try Self.validateSlug(project, "project slug")
        guard PolicyEvaluator.builtInProjectRoles[slug] == nil else {
            throw EngineError(.invalidArgument, "built-in roles cannot be deleted")
        }
        let decision = try await authorize(ctx, AccessRequest(.project(project), .roles, .delete, ["name": slug]))
        defer { accessCache.invalidate() }
        try await transact { tx in
            guard let r = try await tx.find(kind: AccessKind.role, scope: project, name: slug) else {
                throw EngineError(.notFound, "role not found")
            }
            try await tx.delete(kind: AccessKind.role, id: r.id, expectedVersion: r.version)
            try await self.audit.append(
                self.allowed(ctx, decision, "role.delete", project: project, ["role": slug]), tx)
        }
    }

    // MARK: - Memberships and privileges

    /// Validates a temporary grant and computes its window.
    func window(isTemporary: Bool?, range: String?, start: Date?) throws -> (Bool, String?, Date?, Date?) {
        guard isTemporary == true else { return (false, nil, nil, nil) }
        guard let range, let seconds = DurationText.seconds(range) else {
            throw EngineError(.invalidArgument, "temporaryRange must be a duration such as 30s, 1m, 2h or 3d")
        }
        let begin = start ?? clock()
        return (true, range, begin, begin + TimeInterval(seconds))
    }

    public func setMembership(_ ctx: CallContext, project: String, identityId: String, roles: [RoleGrant]) async throws
        -> MembershipInfo
    {
        try Self.validateSlug(project, "project slug")
        guard !roles.isEmpty, roles.count <= 50 else { throw EngineError(.invalidArgument, "roles needs 1–50 entries") }
        var checked: [RoleGrant] = []
        for g in roles {
            let (temporary, range, start, end) = try window(
                isTemporary: g.isTemporary, range: g.temporaryRange, start: g.temporaryAccessStartTime)
            checked.append(
                RoleGrant(
                    role: g.role, isTemporary: temporary, temporaryRange: range, temporaryAccessStartTime: start,
                    temporaryAccessEndTime: end))
        }
        let decision = try await authorize(
            ctx, AccessRequest(.project(project), .members, .create, ["name": identityId]))
        defer { accessCache.invalidate() }
        let grants = checked
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            _ = try await self.requireIdentity(identityId, tx)
            for g in grants where PolicyEvaluator.builtInProjectRoles[g.role] == nil {
                guard try await tx.find(kind: AccessKind.role, scope: project, name: g.role) != nil else {
                    throw EngineError(.invalidArgument, "role '\(g.role)' does not exist in project '\(project)'")
                }
            }
            let body = try Self.encode(MembershipBody(roles: grants))
            if var existing = try await tx.find(kind: AccessKind.membership, scope: project, name: identityId) {
                existing.body = body
                existing.updatedAt = self.clock()
                _ = try await tx.update(existing)
            } else {
                try await tx.insert(
                    Record(
                        kind: AccessKind.membership, id: RecordID.make(), scope: project, name: identityId,
                        body: body, createdAt: self.clock()))
            }
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "membership.set", project: project,
                    [
                        "targetIdentityId": identityId,
                        "roles": grants.map { $0.role + ($0.isTemporary ? "(\($0.temporaryRange ?? ""))" : "") }.joined(
                            separator: ","),
                    ]),
                tx)
            return MembershipInfo(project: project, identityId: identityId, roles: grants)
        }
    }

    public func listMemberships(_ ctx: CallContext, project: String, after: String?, limit: Int) async throws
        -> Page<MembershipInfo>
    {
        try Self.validateSlug(project, "project slug")
        try await authorize(ctx, AccessRequest(.project(project), .members, .read))
        let limit = min(max(limit, 1), 1000)
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            // After the identity `after`: the first key past every key that starts with its own.
            let hits = try await tx.lookup(
                IndexQuery(
                    kind: AccessKind.membership, index: MembershipIndex.member, scope: project,
                    lower: after.map { IndexKey($0).prefixEnd } ?? IndexKey(), limit: limit + 1))
            let items = try hits.prefix(limit).map { hit in
                MembershipInfo(
                    project: project, identityId: hit.record.name ?? "",
                    roles: try self.decode(MembershipBody.self, hit.record).roles)
            }
            return Page(items: items, next: hits.count > limit ? items.last?.identityId : nil)
        }
    }

    public func deleteMembership(_ ctx: CallContext, project: String, identityId: String) async throws {
        try Self.validateSlug(project, "project slug")
        let decision = try await authorize(
            ctx, AccessRequest(.project(project), .members, .delete, ["name": identityId]))
        defer { accessCache.invalidate() }
        try await transact { tx in
            guard let r = try await tx.find(kind: AccessKind.membership, scope: project, name: identityId) else {
                throw EngineError(.notFound, "membership not found")
            }
            try await tx.delete(kind: AccessKind.membership, id: r.id, expectedVersion: r.version)
            try await self.audit.append(
                self.allowed(ctx, decision, "membership.delete", project: project, ["targetIdentityId": identityId]), tx
            )
        }
    }

    func privilegeInfo(_ r: Record) throws -> PrivilegeInfo {
        let b = try decode(PrivilegeBody.self, r)
        return PrivilegeInfo(
            id: r.id, project: r.scope, identityId: b.identityId, slug: b.slug, permissions: b.permissions,
            isTemporary: b.isTemporary, temporaryRange: b.temporaryRange, temporaryAccessStartTime: b.start,
            temporaryAccessEndTime: b.end)
    }

    public func createPrivilege(_ ctx: CallContext, project: String, _ spec: PrivilegeSpec) async throws
        -> PrivilegeInfo
    {
        try Self.validateSlug(project, "project slug")
        try Self.validateSlug(spec.slug, "privilege slug")
        try PolicyEvaluator.validate(spec.permissions)
        let (temporary, range, start, end) = try window(
            isTemporary: spec.isTemporary, range: spec.temporaryRange, start: spec.temporaryAccessStartTime)
        let decision = try await authorize(
            ctx, AccessRequest(.project(project), .members, .create, ["name": spec.identityId]))
        defer { accessCache.invalidate() }
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            _ = try await self.requireIdentity(spec.identityId, tx)
            let body = PrivilegeBody(
                identityId: spec.identityId, slug: spec.slug, permissions: spec.permissions, isTemporary: temporary,
                temporaryRange: range, start: start, end: end)
            let record = Record(
                kind: AccessKind.privilege, id: RecordID.make(), scope: project,
                name: spec.identityId + "/" + spec.slug, body: try Self.encode(body), createdAt: self.clock())
            try await tx.insert(record)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "privilege.create", project: project,
                    ["targetIdentityId": spec.identityId, "privilege": spec.slug, "temporaryRange": range ?? ""]), tx)
            return try self.privilegeInfo(record)
        }
    }

    public func listPrivileges(_ ctx: CallContext, project: String) async throws -> [PrivilegeInfo] {
        try Self.validateSlug(project, "project slug")
        try await authorize(ctx, AccessRequest(.project(project), .members, .read))
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            return try await tx.listEvery(kind: AccessKind.privilege, scope: project).map(
                self.privilegeInfo)
        }
    }

    public func deletePrivilege(_ ctx: CallContext, project: String, id: String) async throws {
        try Self.validateSlug(project, "project slug")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .members, .delete))
        defer { accessCache.invalidate() }
        try await transact { tx in
            try Self.validateID(id, "privilege")
            guard let r = try await tx.get(kind: AccessKind.privilege, id: id), r.scope == project else {
                throw EngineError(.notFound, "privilege not found")
            }
            try await tx.delete(kind: AccessKind.privilege, id: id, expectedVersion: r.version)
            try await self.audit.append(
                self.allowed(ctx, decision, "privilege.delete", project: project, ["privilegeId": id]), tx)
        }
    }
}
