import Foundation

/// Secret bytes that never print themselves.
public struct SecretBytes: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The plaintext. Handle with care; never log.
    public var bytes: [UInt8]
    /// Wraps bytes.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    /// Wraps UTF-8 text.
    public init(utf8 text: String) { self.bytes = Array(text.utf8) }
    public var description: String { "<redacted \(bytes.count) bytes>" }
    public var debugDescription: String { description }
}

/// Public facts about a stored secret (no value).
public struct SecretMetadata: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var name: String
    public var version: Int64
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: String, project: String, name: String, version: Int64, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.project = project
        self.name = name
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One page of a listing; `next` is the cursor for the following page, nil on the last one.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var next: String?
    public init(items: [Item], next: String?) {
        self.items = items
        self.next = next
    }
}

/// One audit event in the documented shape (see docs/security-model.md, "Audit log").
public struct AuditEvent: Sendable, Codable, Hashable {
    /// `event.type` and `event.metadata`.
    public struct Event: Sendable, Codable, Hashable {
        public var type: String
        public var metadata: [String: String]
        public init(type: String, metadata: [String: String] = [:]) {
            self.type = type
            self.metadata = metadata
        }
    }
    /// `actor.type` and `actor.metadata`.
    public struct Actor: Sendable, Codable, Hashable {
        public var type: String
        public var metadata: [String: String]
        public init(type: String, metadata: [String: String] = [:]) {
            self.type = type
            self.metadata = metadata
        }
    }

    public var event: Event
    public var actor: Actor
    public var projectId: String?
    public var ipAddress: String?
    public var userAgent: String?
    public var userAgentType: String
    public var timestamp: Date

    public init(
        event: Event, actor: Actor, projectId: String?, ipAddress: String?, userAgent: String?, userAgentType: String,
        timestamp: Date
    ) {
        self.event = event
        self.actor = actor
        self.projectId = projectId
        self.ipAddress = ipAddress
        self.userAgent = userAgent
        self.userAgentType = userAgentType
        self.timestamp = timestamp
    }
}

/// An audit event with its place in the log: its chain (the node that wrote it) and its sequence there.
public struct ChainedAuditEvent: Sendable, Hashable {
    public var chain: String
    public var sequence: Int64
    public var event: AuditEvent
    public var hash: String
    public init(chain: String, sequence: Int64, event: AuditEvent, hash: String) {
        self.chain = chain
        self.sequence = sequence
        self.event = event
        self.hash = hash
    }
}

/// A search of the audit log: one of type, actor or project (or none), a time range, an order.
public struct AuditSearch: Sendable, Hashable {
    public var type: String?
    public var actor: String?
    public var project: String?
    public var since: Date?
    public var until: Date?
    public var newestFirst: Bool
    public var cursor: String?
    public var limit: Int
    public init(
        type: String? = nil, actor: String? = nil, project: String? = nil, since: Date? = nil, until: Date? = nil,
        newestFirst: Bool = false, cursor: String? = nil, limit: Int = 100
    ) {
        self.type = type
        self.actor = actor
        self.project = project
        self.since = since
        self.until = until
        self.newestFirst = newestFirst
        self.cursor = cursor
        self.limit = limit
    }
}

/// The result of checking the whole audit chain.
public struct AuditVerification: Sendable, Hashable {
    /// Number of events checked.
    public var checked: Int64
    /// Empty when the chain is intact; otherwise one line per problem found (first problems first).
    public var problems: [String]
    public var isIntact: Bool { problems.isEmpty }
    public init(checked: Int64, problems: [String]) {
        self.checked = checked
        self.problems = problems
    }
}

/// Readiness facts for `/readyz`.
public struct HealthReport: Sendable, Hashable {
    public var storageBackend: String
    public var storageReachable: Bool
    public var detail: String
    public init(storageBackend: String, storageReachable: Bool, detail: String) {
        self.storageBackend = storageBackend
        self.storageReachable = storageReachable
        self.detail = detail
    }
}

/// The whole engine: every domain's protocol, which `GatehouseEngine` implements. Front ends never take this; each
/// takes the narrow protocol(s) it calls (`ESTEngine`, `ACMEEngine`, `KeyEngine`, …). Authorization and audit happen
/// behind them, once.
///
/// Each call takes the caller explicitly (`CallContext`) and throws only `EngineError`.
public protocol Engine: AccessEngine, SecretsEngine, AuditEngine, KeyEngine, KMIPPKIEngine, PKIEngine, ESTEngine,
    AlertEngine,
    ACMEEngine, SSHEngine, PAMEngine, PAMSessionEngine
{
    /// Storage reachability and other readiness facts. Not authorized, not audited.
    func health() async -> HealthReport
}

/// Secrets of a project (part of `Engine`).
public protocol SecretsEngine: Sendable {
    /// Creates a secret; fails with `.alreadyExists` when the name is taken in the project.
    func createSecret(_ ctx: CallContext, project: String, name: String, value: SecretBytes) async throws
        -> SecretMetadata
    /// Replaces a secret's value (optionally only if its version is `expectedVersion`).
    func updateSecret(_ ctx: CallContext, project: String, name: String, value: SecretBytes, expectedVersion: Int64?)
        async throws -> SecretMetadata
    /// Reads a secret's value (audited as a secret read).
    func readSecret(_ ctx: CallContext, project: String, name: String) async throws -> (SecretMetadata, SecretBytes)
    /// Lists secrets of a project, `limit` at a time, after the cursor `after`.
    func listSecrets(_ ctx: CallContext, project: String, after: String?, limit: Int) async throws -> Page<
        SecretMetadata
    >
    /// Deletes a secret.
    func deleteSecret(_ ctx: CallContext, project: String, name: String) async throws
}

/// The audit log (part of `Engine`).
public protocol AuditEngine: Sendable {
    /// Reads the audit log in arrival order from a cursor (nil: the start). `next` is always set: reading from it
    /// later returns what was appended since, and never skips an event (it holds a position per chain).
    func auditEvents(_ ctx: CallContext, cursor: String?, limit: Int) async throws -> Page<ChainedAuditEvent>
    /// Searches the audit log by type, actor or project and a time range, in time order, through indexes.
    func searchAudit(_ ctx: CallContext, _ search: AuditSearch) async throws -> Page<ChainedAuditEvent>
    /// Checks the whole audit chain for edits, deletions and reordering.
    func verifyAudit(_ ctx: CallContext) async throws -> AuditVerification
}

/// Bearer-token authentication, the one access call every front end that takes tokens needs.
public protocol Authenticator: Sendable {
    /// Turns a bearer access token into the identity's principal, counting one use. Throws `.unauthenticated`
    /// for unknown, expired, spent or revoked tokens and tokens used from an untrusted address (all audited).
    func authenticate(bearerToken: String, ipAddress: String?, frontEnd: String) async throws -> Principal
}

/// Browser sessions started from a bearer token: what the web console's sign-in and sign-out need.
public protocol BrowserSessions: Sendable {
    /// A browser session (the web console's sign-in): checks `bearerToken` as `authenticate` does and issues a new
    /// token for the same identity, whose principal carries `authMethod` `Principal.sessionAuthMethod`. It lives at
    /// most `lifetime` seconds and never outlives the token that started it: it is refused once that token expires,
    /// is revoked or is deleted. A token with a use limit, or a session token, cannot start one. Audited as
    /// `token.session.start`.
    func startSession(bearerToken: String, ipAddress: String?, frontEnd: String, lifetime: Int) async throws
        -> (principal: Principal, session: IssuedToken)
    /// Ends a session token (sign-out): refused from then on, at once on this node and within the access cache's
    /// lifetime on the others. Audited as `token.session.end`. Any other kind of token is left alone
    /// (`.invalidArgument`).
    func endSession(_ ctx: CallContext, sessionToken: String) async throws
}

/// Identities, authentication and access control (part of `Engine`).
public protocol AccessEngine: Authenticator, BrowserSessions {
    // MARK: Authentication
    /// Universal Auth login: client ID + client secret → access token.
    func loginUniversalAuth(_ ctx: CallContext, clientId: String, clientSecret: SecretBytes) async throws -> IssuedToken
    /// TLS Certificate Auth login: the caller's verified certificate → access token for `identityId`.
    func loginTLSCertAuth(_ ctx: CallContext, identityId: String) async throws -> IssuedToken
    /// Renews a token (up to its max TTL, or by its period).
    func renewToken(_ ctx: CallContext, accessToken: String) async throws -> IssuedToken
    /// Revokes a token.
    func revokeToken(_ ctx: CallContext, accessToken: String) async throws
    /// Who the caller is, as the engine resolves it (identity id and name, or the bootstrap administrator).
    func whoami(_ ctx: CallContext) async throws -> [String: String]

    // MARK: Projects
    func createProject(_ ctx: CallContext, slug: String, description: String) async throws -> ProjectInfo
    func listProjects(_ ctx: CallContext, after: String?, limit: Int) async throws -> Page<ProjectInfo>
    func getProject(_ ctx: CallContext, slug: String) async throws -> ProjectInfo
    func deleteProject(_ ctx: CallContext, slug: String) async throws

    // MARK: Identities and their auth methods
    func createIdentity(_ ctx: CallContext, _ spec: IdentitySpec) async throws -> IdentityInfo
    func listIdentities(_ ctx: CallContext, after: String?, limit: Int) async throws -> Page<IdentityInfo>
    func getIdentity(_ ctx: CallContext, id: String) async throws -> IdentityInfo
    func updateIdentity(_ ctx: CallContext, id: String, _ spec: IdentitySpec) async throws -> IdentityInfo
    func deleteIdentity(_ ctx: CallContext, id: String) async throws
    func attachUniversalAuth(_ ctx: CallContext, identityId: String, _ spec: AuthMethodSpec) async throws
        -> UniversalAuthInfo
    func getUniversalAuth(_ ctx: CallContext, identityId: String) async throws -> UniversalAuthInfo
    func createClientSecret(_ ctx: CallContext, identityId: String, _ spec: ClientSecretSpec) async throws
        -> (ClientSecretInfo, SecretBytes)
    func listClientSecrets(_ ctx: CallContext, identityId: String) async throws -> [ClientSecretInfo]
    func revokeClientSecret(_ ctx: CallContext, identityId: String, clientSecretId: String) async throws
        -> ClientSecretInfo
    func attachTokenAuth(_ ctx: CallContext, identityId: String, _ spec: AuthMethodSpec) async throws -> TokenAuthInfo
    func createIdentityToken(_ ctx: CallContext, identityId: String) async throws -> IssuedToken
    func attachTLSCertAuth(_ ctx: CallContext, identityId: String, _ spec: AuthMethodSpec) async throws
        -> TLSCertAuthInfo
    func getTLSCertAuth(_ ctx: CallContext, identityId: String) async throws -> TLSCertAuthInfo

    // MARK: Roles, memberships, privileges
    func createRole(_ ctx: CallContext, project: String, _ spec: RoleSpec) async throws -> RoleInfo
    func listRoles(_ ctx: CallContext, project: String) async throws -> [RoleInfo]
    func getRole(_ ctx: CallContext, project: String, slug: String) async throws -> RoleInfo
    func deleteRole(_ ctx: CallContext, project: String, slug: String) async throws
    func setMembership(_ ctx: CallContext, project: String, identityId: String, roles: [RoleGrant]) async throws
        -> MembershipInfo
    /// The project's memberships in identity id order, `limit` (1–1000) after the identity `after`: read through an
    /// index, so a page costs its size, not the project's.
    func listMemberships(_ ctx: CallContext, project: String, after: String?, limit: Int) async throws
        -> Page<MembershipInfo>
    func deleteMembership(_ ctx: CallContext, project: String, identityId: String) async throws
    func createPrivilege(_ ctx: CallContext, project: String, _ spec: PrivilegeSpec) async throws -> PrivilegeInfo
    func listPrivileges(_ ctx: CallContext, project: String) async throws -> [PrivilegeInfo]
    func deletePrivilege(_ ctx: CallContext, project: String, id: String) async throws
}
