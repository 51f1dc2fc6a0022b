import Crypto
import EngineAPI
import Foundation
import StorageAPI

// Logins, access tokens and lockout.
extension AccessService {
    /// Creates an access token record; returns (token id for audit, issued token).
    func issueToken(
        identityId: String, method: String, _ settings: AccessTokenSettings, parent: String? = nil,
        _ tx: any StorageTransaction
    ) async throws -> (String, IssuedToken) {
        let token = Self.randomToken("ghat_")
        let hash = PKIService.hex(Self.hash(token))
        let now = clock()
        let lifetime = settings.accessTokenPeriod > 0 ? settings.accessTokenPeriod : settings.accessTokenTTL
        let body = TokenBody(
            identityId: identityId, authMethod: method, expiresAt: now + TimeInterval(lifetime), settings: settings,
            numUses: 0, isRevoked: false, parent: parent)
        try await tx.insert(
            Record(
                kind: AccessKind.accessToken, id: hash, scope: identityId, body: try Self.encode(body), createdAt: now))
        let id = String(hash.prefix(16))
        return (id, IssuedToken(accessToken: token, expiresIn: lifetime, accessTokenMaxTTL: settings.accessTokenMaxTTL))
    }

    /// Why a stored token cannot be used now, or nil.
    func tokenProblem(_ body: TokenBody, ip: String?, now: Date) -> String? {
        if body.isRevoked { return "token revoked" }
        if now >= body.expiresAt { return "token expired" }
        if body.settings.accessTokenNumUsesLimit > 0, body.numUses >= body.settings.accessTokenNumUsesLimit {
            return "token use limit reached"
        }
        if !CIDR.allows(body.settings.accessTokenTrustedIps, ip) { return "token used from an untrusted address" }
        return nil
    }

    /// A stored token and, for a session token, the token that started it (nil when that one is gone).
    func tokenWithParent(_ hash: String, _ tx: any StorageTransaction) async throws -> (TokenBody, TokenBody?)? {
        guard let record = try await tx.get(kind: AccessKind.accessToken, id: hash) else { return nil }
        let body = try decode(TokenBody.self, record)
        guard let parent = body.parent else { return (body, nil) }
        return (body, try await tx.get(kind: AccessKind.accessToken, id: parent).map { try decode(TokenBody.self, $0) })
    }

    /// Why a session token cannot be used because of the token that started it, or nil (also for other tokens).
    func parentProblem(_ body: TokenBody, _ parent: TokenBody?, ip: String?, now: Date) -> String? {
        guard body.parent != nil else { return nil }
        guard let parent else { return "the token that started the session is gone" }
        return tokenProblem(parent, ip: ip, now: now).map { "the token that started the session: \($0)" }
    }

    public func startSession(bearerToken: String, ipAddress: String?, frontEnd: String, lifetime: Int) async throws
        -> (principal: Principal, session: IssuedToken)
    {
        let ctx = CallContext(principal: .anonymous, frontEnd: frontEnd, ipAddress: ipAddress)
        guard bearerToken.hasPrefix("ghat_"), bearerToken.utf8.count < 200, lifetime > 0 else {
            await auditFailure(
                ctx, "authentication.failed", project: nil, ["method": "token", "reason": "malformed token"])
            throw EngineError(.unauthenticated, "invalid access token")
        }
        let hash = PKIService.hex(Self.hash(bearerToken))
        let tokenId = String(hash.prefix(16))
        let now = clock()
        // Who starts it (the audit event's actor), then the token checked again where the session is written.
        let stored = try await read { tx in try await tx.get(kind: AccessKind.accessToken, id: hash) }
        let starter: Caller? =
            if let stored { try await identityCaller(try decode(TokenBody.self, stored).identityId) } else { nil }
        let outcome: Outcome<(Principal, IssuedToken)> = try await transact { tx in
            guard let record = try await tx.get(kind: AccessKind.accessToken, id: hash), let caller = starter else {
                return .failure(Self.invalidToken(stored == nil ? "unknown token" : "identity deleted"))
            }
            let parent = try self.decode(TokenBody.self, record)
            if let problem = self.tokenProblem(parent, ip: ipAddress, now: now) {
                return .failure(Self.invalidToken(problem))
            }
            // A session lasts hours: one from a use-limited token would outlast its limit, and one from a session
            // would outlast its sign-out.
            guard parent.settings.accessTokenNumUsesLimit == 0, parent.parent == nil else {
                return .failure(
                    EngineError(
                        .permissionDenied,
                        parent.parent == nil
                            ? "a token with a use limit cannot start a session"
                            : "a session token cannot start another",
                        diagnostic: "session from a limited token"))
            }
            let life = min(lifetime, Int(parent.expiresAt.timeIntervalSince(now).rounded(.down)))
            guard life > 0 else { return .failure(Self.invalidToken("token expired")) }
            let settings = AccessTokenSettings(
                accessTokenTTL: life, accessTokenMaxTTL: life,
                accessTokenTrustedIps: parent.settings.accessTokenTrustedIps)
            let (sessionId, issued) = try await self.issueToken(
                identityId: parent.identityId, method: Principal.sessionAuthMethod, settings, parent: hash, tx)
            let startedBy = CallContext(
                principal: Principal(
                    method: .token, id: parent.identityId, name: caller.name,
                    attributes: ["tokenId": tokenId, "authMethod": parent.authMethod]),
                frontEnd: frontEnd, ipAddress: ipAddress)
            try await self.audit.append(
                self.event(
                    startedBy, "token.session.start", project: nil,
                    ["identityId": parent.identityId, "sessionTokenId": sessionId, "expiresIn": String(life)]), tx)
            let principal = Principal(
                method: .token, id: parent.identityId, name: caller.name,
                attributes: ["tokenId": sessionId, "authMethod": Principal.sessionAuthMethod])
            return .success((principal, issued))
        }
        switch outcome {
        case .failure(let e):
            await auditFailure(
                ctx, "authentication.failed", project: nil,
                ["method": "token", "tokenId": tokenId, "reason": e.diagnostic, "action": "session.start"])
            throw e
        case .success(let started):
            return started
        }
    }

    public func endSession(_ ctx: CallContext, sessionToken: String) async throws {
        defer { accessCache.invalidate() }
        let hash = PKIService.hex(Self.hash(sessionToken))
        let ended: Bool = try await transact { tx in
            guard var record = try await tx.get(kind: AccessKind.accessToken, id: hash) else { return false }
            var body = try self.decode(TokenBody.self, record)
            guard body.parent != nil else { return false }
            if body.isRevoked { return true }
            body.isRevoked = true
            record.body = try Self.encode(body)
            _ = try await tx.update(record)
            try await self.audit.append(
                self.event(
                    ctx, "token.session.end", project: nil,
                    ["identityId": body.identityId, "sessionTokenId": String(hash.prefix(16))]), tx)
            return true
        }
        guard ended else { throw EngineError(.invalidArgument, "not a session token") }
    }

    enum Outcome<T: Sendable>: Sendable {
        case success(T)
        case failure(EngineError)
    }

    public func authenticate(bearerToken: String, ipAddress: String?, frontEnd: String) async throws -> Principal {
        let ctx = CallContext(principal: .anonymous, frontEnd: frontEnd, ipAddress: ipAddress)
        guard bearerToken.hasPrefix("ghat_"), bearerToken.utf8.count < 200 else {
            await auditFailure(
                ctx, "authentication.failed", project: nil, ["method": "token", "reason": "malformed token"])
            throw EngineError(.unauthenticated, "invalid access token")
        }
        let hash = PKIService.hex(Self.hash(bearerToken))
        let now = clock()
        let outcome: Outcome<TokenBody>
        if let cached = accessCache.token(hash, now: now) {
            // Checked again against this request (expiry, client address); a change to the token on this node (renew,
            // revoke, identity deleted) empties the cache, and another node's within `AccessCache.ttl`.
            outcome =
                tokenProblem(cached, ip: ipAddress, now: now).map { .failure(Self.invalidToken($0)) }
                ?? .success(cached)
        } else {
            let generation = accessCache.currentGeneration
            // A read first: a token without a use limit is checked without the writer's lock. A session token is
            // read with the token that started it.
            let found = try await read { tx in try await self.tokenWithParent(hash, tx) }
            if let (body, parent) = found {
                if let problem = tokenProblem(body, ip: ipAddress, now: now)
                    ?? parentProblem(body, parent, ip: ipAddress, now: now)
                {
                    outcome = .failure(Self.invalidToken(problem))
                } else if body.settings.accessTokenNumUsesLimit > 0 {
                    outcome = try await countUse(hash, ip: ipAddress, now: now)
                } else {
                    accessCache.storeToken(hash, body, expires: now + AccessCache.ttl, generation: generation)
                    outcome = .success(body)
                }
            } else {
                outcome = .failure(Self.invalidToken("unknown token"))
            }
        }
        switch outcome {
        case .failure(let e):
            await auditFailure(
                ctx, "authentication.failed", project: nil,
                ["method": "token", "tokenId": String(hash.prefix(16)), "reason": e.diagnostic])
            throw e
        case .success(let body):
            guard let caller = try await identityCaller(body.identityId) else {
                throw Self.invalidToken("identity deleted")
            }
            return Principal(
                method: .token, id: body.identityId, name: caller.name,
                attributes: ["tokenId": String(hash.prefix(16)), "authMethod": body.authMethod])
        }
    }

    /// What every refused access token gets (the reason goes to the audit event only).
    static func invalidToken(_ diagnostic: String) -> EngineError {
        EngineError(.unauthenticated, "invalid access token", diagnostic: diagnostic)
    }

    /// A use of a use-limited token: checked again and counted in one transaction.
    private func countUse(_ hash: String, ip: String?, now: Date) async throws -> Outcome<TokenBody> {
        try await transact { tx in
            guard var record = try await tx.get(kind: AccessKind.accessToken, id: hash) else {
                return .failure(Self.invalidToken("unknown token"))
            }
            var body = try self.decode(TokenBody.self, record)
            if let problem = self.tokenProblem(body, ip: ip, now: now) {
                return .failure(Self.invalidToken(problem))
            }
            body.numUses += 1
            record.body = try Self.encode(body)
            _ = try await tx.update(record)
            return .success(body)
        }
    }

    public func loginUniversalAuth(_ ctx: CallContext, clientId: String, clientSecret: SecretBytes) async throws
        -> IssuedToken
    {
        guard !clientId.isEmpty, clientId.utf8.count <= 64, clientSecret.bytes.count <= 200 else {
            await auditFailure(
                ctx, "login.failed", project: nil, ["method": "universal-auth", "reason": "malformed credentials"])
            throw EngineError(.unauthenticated, "invalid client ID or client secret")
        }
        let now = clock()
        let outcome: Outcome<(String, String, IssuedToken)> = try await transact { tx in
            let checked = try await self.checkUniversalAuthSecret(
                ctx, clientId: clientId, clientSecret: clientSecret, method: "universal-auth", now: now, tx)
            let identityId: String
            let ua: UniversalAuthInfo
            var secretRecord: Record
            var secretBody: ClientSecretBody
            switch checked {
            case .failure(let e): return .failure(e)
            case .success(let passed): (identityId, ua, secretRecord, secretBody) = passed
            }
            secretBody.numUses += 1
            secretRecord.body = try Self.encode(secretBody)
            _ = try await tx.update(secretRecord)
            let (tokenId, issued) = try await self.issueToken(
                identityId: identityId, method: "universal-auth", ua.token, tx)
            try await self.audit.append(
                self.event(
                    ctx, "login.universal-auth", project: nil,
                    ["identityId": identityId, "clientSecretId": secretRecord.id, "tokenId": tokenId]), tx)
            return .success((identityId, tokenId, issued))
        }
        switch outcome {
        case .failure(let e):
            if e.code == .locked {
                await auditFailure(
                    ctx, "login.failed", project: nil,
                    ["method": "universal-auth", "clientId": clientId, "reason": "locked out"])
            } else if e.diagnostic == "unknown client ID" {
                await auditFailure(
                    ctx, "login.failed", project: nil,
                    ["method": "universal-auth", "clientId": clientId, "reason": e.diagnostic])
            }
            throw e
        case .success(let (_, _, issued)):
            return issued
        }
    }

    /// The Universal Auth check (lockout, trusted IPs, every secret compared in constant time, revoked / expired /
    /// used-up secrets), inside `tx`: the identity, the matching secret, or the failure (already audited and counted
    /// toward the lockout). `method` names the check in the audit trail.
    func checkUniversalAuthSecret(
        _ ctx: CallContext, clientId: String, clientSecret: SecretBytes, method: String, now: Date,
        _ tx: any StorageTransaction
    ) async throws -> Outcome<(String, UniversalAuthInfo, Record, ClientSecretBody)> {
        let presented = Data(SHA256.hash(data: clientSecret.bytes))
        guard let config = try await tx.find(kind: AccessKind.universalAuth, scope: AccessKind.org, name: clientId)
        else {
            return .failure(
                EngineError(.unauthenticated, "invalid client ID or client secret", diagnostic: "unknown client ID"))
        }
        let ua = try self.decode(UniversalAuthInfo.self, config)
        let identityId = ua.identityId
        let lockout = try await tx.get(kind: AccessKind.lockout, id: identityId)
        var state = try lockout.map { try self.decode(LockoutBody.self, $0) }
        if ua.lockoutEnabled, let until = state?.lockedUntil, now < until {
            return .failure(
                EngineError(
                    .locked,
                    "identity is locked after repeated failed logins; retry in \(Int(until.timeIntervalSince(now).rounded(.up))) s",
                    diagnostic: "locked out"))
        }
        // Check every secret (no early exit) in constant time per comparison.
        let secrets = try await tx.listEvery(kind: AccessKind.clientSecret, scope: identityId)
        var match: (Record, ClientSecretBody)?
        for r in secrets {
            let b = try self.decode(ClientSecretBody.self, r)
            if Self.constantTimeEqual(b.hash, presented), match == nil { match = (r, b) }
        }
        var problem: String?
        if !CIDR.allows(ua.clientSecretTrustedIps, ctx.ipAddress) {
            problem = "login from an untrusted address"
        } else if let (r, b) = match {
            if b.isRevoked {
                problem = "client secret revoked"
            } else if b.ttl > 0, now >= r.createdAt + TimeInterval(b.ttl) {
                problem = "client secret expired"
            } else if b.numUsesLimit > 0, b.numUses >= b.numUsesLimit {
                problem = "client secret use limit reached"
            }
        } else {
            problem = "wrong client secret"
        }
        if let problem {
            if ua.lockoutEnabled {
                var s = state ?? LockoutBody(failures: 0, lastFailureAt: now, lockedUntil: nil)
                if now.timeIntervalSince(s.lastFailureAt) > TimeInterval(ua.lockoutCounterResetSeconds)
                    || s.lockedUntil != nil
                {
                    s.failures = 0
                    s.lockedUntil = nil
                }
                s.failures += 1
                s.lastFailureAt = now
                if s.failures >= ua.lockoutThreshold {
                    s.lockedUntil = now + TimeInterval(ua.lockoutDurationSeconds)
                    s.failures = 0
                }
                if var l = lockout {
                    l.body = try Self.encode(s)
                    _ = try await tx.update(l)
                } else {
                    try await tx.insert(
                        Record(kind: AccessKind.lockout, id: identityId, body: try Self.encode(s), createdAt: now))
                }
                state = s
            }
            try await self.audit.append(
                self.event(
                    ctx, "login.failed", project: nil,
                    [
                        "method": method, "identityId": identityId, "reason": problem,
                        "lockedUntil": state?.lockedUntil.map { ISO8601DateFormatter().string(from: $0) } ?? "",
                    ]), tx)
            return .failure(EngineError(.unauthenticated, "invalid client ID or client secret", diagnostic: problem))
        }
        guard let matched = match else { return .failure(EngineError(.internal, "unreachable")) }
        if let l = lockout {
            try await tx.delete(kind: AccessKind.lockout, id: l.id, expectedVersion: l.version)
        }
        return .success((identityId, ua, matched.0, matched.1))
    }

    public func verifyKMIPCredential(_ ctx: CallContext, username: String?, password: SecretBytes?) async throws {
        let caller = try await resolve(ctx.principal)
        guard let username, let password else {
            if caller?.metadata["kmip.credential"] == "required" {
                await auditFailure(
                    ctx, "authentication.failed", project: nil,
                    ["method": "kmip-credential", "reason": "credential required"])
                throw EngineError(.unauthenticated, "this client must also send its Username and Password credential")
            }
            return
        }
        guard let identityId = caller?.identityId, !username.isEmpty, username.utf8.count <= 64,
            password.bytes.count <= 200
        else {
            await auditFailure(
                ctx, "authentication.failed", project: nil,
                ["method": "kmip-credential", "reason": "credential of no identity"])
            throw EngineError(.unauthenticated, "invalid credential")
        }
        let now = clock()
        let outcome = try await transact { tx in
            try await self.checkUniversalAuthSecret(
                ctx, clientId: username, clientSecret: password, method: "kmip-credential", now: now, tx)
        }
        switch outcome {
        case .failure(let e):
            throw EngineError(
                e.code == .locked ? .locked : .unauthenticated, "invalid credential", diagnostic: e.diagnostic)
        case .success(let (owner, _, _, _)):
            guard owner == identityId else {
                await auditFailure(
                    ctx, "authentication.failed", project: nil,
                    ["method": "kmip-credential", "reason": "another identity's credential"])
                throw EngineError(.unauthenticated, "invalid credential")
            }
        }
    }

    public func loginTLSCertAuth(_ ctx: CallContext, identityId: String) async throws -> IssuedToken {
        guard ctx.principal.method == .tlsCertificate, !identityId.isEmpty, identityId.utf8.count <= 64 else {
            await auditFailure(
                ctx, "login.failed", project: nil, ["method": "tls-cert-auth", "reason": "no client certificate"])
            throw EngineError(.unauthenticated, "a client certificate is required")
        }
        guard try await certificateIdentity(ctx.principal, only: identityId) == identityId else {
            await auditFailure(
                ctx, "login.failed", project: nil,
                [
                    "method": "tls-cert-auth", "identityId": identityId,
                    "reason": "certificate not accepted by this identity",
                ])
            throw EngineError(.unauthenticated, "the client certificate is not accepted for this identity")
        }
        return try await transact { tx in
            guard let r = try await tx.get(kind: AccessKind.tlsCertAuth, id: identityId) else {
                throw EngineError(.unauthenticated, "the client certificate is not accepted for this identity")
            }
            let settings = try self.decode(TLSCertAuthInfo.self, r).token
            let (tokenId, issued) = try await self.issueToken(
                identityId: identityId, method: "tls-cert-auth", settings, tx)
            try await self.audit.append(
                self.event(ctx, "login.tls-cert-auth", project: nil, ["identityId": identityId, "tokenId": tokenId]), tx
            )
            return issued
        }
    }

    public func renewToken(_ ctx: CallContext, accessToken: String) async throws -> IssuedToken {
        defer { accessCache.invalidate() }
        let hash = PKIService.hex(Self.hash(accessToken))
        let now = clock()
        let outcome: Outcome<IssuedToken> = try await transact { tx in
            guard var record = try await tx.get(kind: AccessKind.accessToken, id: hash) else {
                return .failure(Self.invalidToken("unknown token"))
            }
            var body = try self.decode(TokenBody.self, record)
            if let problem = self.tokenProblem(body, ip: ctx.ipAddress, now: now) {
                return .failure(Self.invalidToken(problem))
            }
            let s = body.settings
            if s.accessTokenPeriod > 0 {
                body.expiresAt = now + TimeInterval(s.accessTokenPeriod)
            } else {
                var expiry = now + TimeInterval(s.accessTokenTTL)
                if s.accessTokenMaxTTL > 0 {
                    let hardEnd = record.createdAt + TimeInterval(s.accessTokenMaxTTL)
                    guard now < hardEnd else {
                        return .failure(
                            EngineError(.unauthenticated, "the token has reached its max TTL", diagnostic: "max TTL"))
                    }
                    expiry = min(expiry, hardEnd)
                }
                body.expiresAt = expiry
            }
            record.body = try Self.encode(body)
            _ = try await tx.update(record)
            try await self.audit.append(
                self.event(
                    ctx, "token.renew", project: nil,
                    ["identityId": body.identityId, "tokenId": String(hash.prefix(16))]), tx)
            return .success(
                IssuedToken(
                    accessToken: accessToken, expiresIn: Int(body.expiresAt.timeIntervalSince(now).rounded(.down)),
                    accessTokenMaxTTL: s.accessTokenMaxTTL))
        }
        switch outcome {
        case .success(let t): return t
        case .failure(let e):
            await auditFailure(
                ctx, "token.renew.failed", project: nil, ["tokenId": String(hash.prefix(16)), "reason": e.diagnostic])
            throw e
        }
    }

    public func revokeToken(_ ctx: CallContext, accessToken: String) async throws {
        defer { accessCache.invalidate() }
        let hash = PKIService.hex(Self.hash(accessToken))
        let found: Bool = try await transact { tx in
            guard var record = try await tx.get(kind: AccessKind.accessToken, id: hash) else { return false }
            var body = try self.decode(TokenBody.self, record)
            body.isRevoked = true
            record.body = try Self.encode(body)
            _ = try await tx.update(record)
            try await self.audit.append(
                self.event(
                    ctx, "token.revoke", project: nil,
                    ["identityId": body.identityId, "tokenId": String(hash.prefix(16))]), tx)
            return true
        }
        guard found else {
            await auditFailure(
                ctx, "token.revoke.failed", project: nil,
                ["tokenId": String(hash.prefix(16)), "reason": "unknown token"])
            throw EngineError(.unauthenticated, "invalid access token")
        }
    }

    public func whoami(_ ctx: CallContext) async throws -> [String: String] {
        guard let caller = try await resolve(ctx.principal) else {
            await auditFailure(
                ctx, "authentication.failed", project: nil,
                ["action": "whoami", "reason": "no identity accepts these credentials"])
            throw EngineError(.unauthenticated, "authentication required")
        }
        var out = ["method": ctx.principal.method.rawValue, "name": caller.name, "orgRole": caller.orgRole.rawValue]
        switch caller.kind {
        case .superuser: out["kind"] = ctx.principal.method == .system ? "system" : "bootstrap-admin"
        case .identity:
            out["kind"] = "identity"
            out["identityId"] = caller.identityId ?? ""
        }
        return out
    }
}
