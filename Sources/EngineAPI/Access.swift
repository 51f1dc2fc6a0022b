import Foundation

// Values of the identity and access-control subsystem. The shapes (and JSON field names) follow the reference
// platform's machine-identity API so that its users recognise them.

/// A project: the scope of keys, secrets, CAs, roles and memberships.
public struct ProjectInfo: Sendable, Hashable, Codable {
    /// The project's slug: unique, used in paths (`/api/v1/projects/{slug}`).
    public var slug: String
    public var description: String
    public var createdAt: Date
    public init(slug: String, description: String, createdAt: Date) {
        self.slug = slug
        self.description = description
        self.createdAt = createdAt
    }
}

/// Organization-level roles of an identity.
public enum OrgRole: String, Sendable, Hashable, Codable, CaseIterable {
    /// Everything in the organization, every project included.
    case admin
    /// May create projects (and becomes their admin); nothing else at organization level.
    case member
    /// Nothing at organization level; project memberships only.
    case noAccess = "no-access"
}

/// A machine identity.
public struct IdentityInfo: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var orgRole: OrgRole
    /// Free-form key/value facts, usable in permission conditions as `{{ identity.metadata.KEY }}`.
    public var metadata: [String: String]
    /// Attached authentication methods: `universal-auth`, `token-auth`, `tls-cert-auth`.
    public var authMethods: [String]
    public var createdAt: Date
    public init(
        id: String, name: String, orgRole: OrgRole, metadata: [String: String], authMethods: [String], createdAt: Date
    ) {
        self.id = id
        self.name = name
        self.orgRole = orgRole
        self.metadata = metadata
        self.authMethods = authMethods
        self.createdAt = createdAt
    }
}

/// What to create or change on an identity (nil fields keep their value / take the default).
public struct IdentitySpec: Sendable, Hashable, Codable {
    public var name: String?
    public var orgRole: OrgRole?
    public var metadata: [String: String]?
    public init(name: String? = nil, orgRole: OrgRole? = nil, metadata: [String: String]? = nil) {
        self.name = name
        self.orgRole = orgRole
        self.metadata = metadata
    }
}

/// Access-token settings shared by every auth method. Defaults (reference platform): TTL and max TTL
/// 2592000 s, unlimited uses (0), trusted IPs 0.0.0.0/0 and ::/0, no period.
public struct AccessTokenSettings: Sendable, Hashable, Codable {
    public static let defaultTTL = 2_592_000
    public static let everywhere = ["0.0.0.0/0", "::/0"]

    /// Seconds a new or renewed token lives.
    public var accessTokenTTL: Int
    /// Seconds after creation beyond which a token can no longer be renewed (0 = no maximum).
    public var accessTokenMaxTTL: Int
    /// Uses before the token is spent (0 = unlimited).
    public var accessTokenNumUsesLimit: Int
    /// CIDR blocks tokens may be used from.
    public var accessTokenTrustedIps: [String]
    /// When > 0 the token is periodic: each renewal extends it by this many seconds, with no max TTL.
    public var accessTokenPeriod: Int

    public init(
        accessTokenTTL: Int = defaultTTL, accessTokenMaxTTL: Int = defaultTTL, accessTokenNumUsesLimit: Int = 0,
        accessTokenTrustedIps: [String] = everywhere, accessTokenPeriod: Int = 0
    ) {
        self.accessTokenTTL = accessTokenTTL
        self.accessTokenMaxTTL = accessTokenMaxTTL
        self.accessTokenNumUsesLimit = accessTokenNumUsesLimit
        self.accessTokenTrustedIps = accessTokenTrustedIps
        self.accessTokenPeriod = accessTokenPeriod
    }
}

/// Partial settings as sent by a client; missing fields take the defaults.
public struct AuthMethodSpec: Sendable, Hashable, Codable {
    public var accessTokenTTL: Int?
    public var accessTokenMaxTTL: Int?
    public var accessTokenNumUsesLimit: Int?
    public var accessTokenTrustedIps: [String]?
    public var accessTokenPeriod: Int?
    // Universal Auth only.
    public var clientSecretTrustedIps: [String]?
    public var lockoutEnabled: Bool?
    public var lockoutThreshold: Int?
    public var lockoutDurationSeconds: Int?
    public var lockoutCounterResetSeconds: Int?
    // TLS Certificate Auth only.
    public var caCertificate: String?
    public var allowedCommonNames: [String]?

    public init(
        accessTokenTTL: Int? = nil, accessTokenMaxTTL: Int? = nil, accessTokenNumUsesLimit: Int? = nil,
        accessTokenTrustedIps: [String]? = nil, accessTokenPeriod: Int? = nil, clientSecretTrustedIps: [String]? = nil,
        lockoutEnabled: Bool? = nil, lockoutThreshold: Int? = nil, lockoutDurationSeconds: Int? = nil,
        lockoutCounterResetSeconds: Int? = nil, caCertificate: String? = nil, allowedCommonNames: [String]? = nil
    ) {
        self.accessTokenTTL = accessTokenTTL
        self.accessTokenMaxTTL = accessTokenMaxTTL
        self.accessTokenNumUsesLimit = accessTokenNumUsesLimit
        self.accessTokenTrustedIps = accessTokenTrustedIps
        self.accessTokenPeriod = accessTokenPeriod
        self.clientSecretTrustedIps = clientSecretTrustedIps
        self.lockoutEnabled = lockoutEnabled
        self.lockoutThreshold = lockoutThreshold
        self.lockoutDurationSeconds = lockoutDurationSeconds
        self.lockoutCounterResetSeconds = lockoutCounterResetSeconds
        self.caCertificate = caCertificate
        self.allowedCommonNames = allowedCommonNames
    }
}

/// An identity's Universal Auth configuration. Lockout defaults: on, 3 failures lock for 300 s, the failure
/// counter resets after 30 s without failures.
public struct UniversalAuthInfo: Sendable, Hashable, Codable {
    public var identityId: String
    public var clientId: String
    public var token: AccessTokenSettings
    public var clientSecretTrustedIps: [String]
    public var lockoutEnabled: Bool
    public var lockoutThreshold: Int
    public var lockoutDurationSeconds: Int
    public var lockoutCounterResetSeconds: Int
    public init(
        identityId: String, clientId: String, token: AccessTokenSettings,
        clientSecretTrustedIps: [String] = AccessTokenSettings.everywhere, lockoutEnabled: Bool = true,
        lockoutThreshold: Int = 3, lockoutDurationSeconds: Int = 300, lockoutCounterResetSeconds: Int = 30
    ) {
        self.identityId = identityId
        self.clientId = clientId
        self.token = token
        self.clientSecretTrustedIps = clientSecretTrustedIps
        self.lockoutEnabled = lockoutEnabled
        self.lockoutThreshold = lockoutThreshold
        self.lockoutDurationSeconds = lockoutDurationSeconds
        self.lockoutCounterResetSeconds = lockoutCounterResetSeconds
    }
}

/// What to create a client secret with.
public struct ClientSecretSpec: Sendable, Hashable, Codable {
    public var description: String?
    /// Seconds the secret is valid (0 = no expiry).
    public var ttl: Int?
    /// Logins before the secret is spent (0 = unlimited).
    public var numUsesLimit: Int?
    public init(description: String? = nil, ttl: Int? = nil, numUsesLimit: Int? = nil) {
        self.description = description
        self.ttl = ttl
        self.numUsesLimit = numUsesLimit
    }
}

/// A Universal Auth client secret's public facts (the secret itself is shown once, at creation).
public struct ClientSecretInfo: Sendable, Hashable, Codable {
    public var id: String
    public var identityId: String
    public var description: String
    /// The first characters of the secret, to recognise it.
    public var prefix: String
    public var ttl: Int
    public var numUsesLimit: Int
    public var numUses: Int
    public var isRevoked: Bool
    public var createdAt: Date
    public init(
        id: String, identityId: String, description: String, prefix: String, ttl: Int, numUsesLimit: Int, numUses: Int,
        isRevoked: Bool, createdAt: Date
    ) {
        self.id = id
        self.identityId = identityId
        self.description = description
        self.prefix = prefix
        self.ttl = ttl
        self.numUsesLimit = numUsesLimit
        self.numUses = numUses
        self.isRevoked = isRevoked
        self.createdAt = createdAt
    }
}

/// Token Auth configuration of an identity.
public struct TokenAuthInfo: Sendable, Hashable, Codable {
    public var identityId: String
    public var token: AccessTokenSettings
    public init(identityId: String, token: AccessTokenSettings) {
        self.identityId = identityId
        self.token = token
    }
}

/// TLS Certificate Auth configuration of an identity.
public struct TLSCertAuthInfo: Sendable, Hashable, Codable {
    public var identityId: String
    /// PEM of the CA that client certificates must chain to.
    public var caCertificate: String
    /// Common names allowed to become this identity (at least one).
    public var allowedCommonNames: [String]
    public var token: AccessTokenSettings
    public init(identityId: String, caCertificate: String, allowedCommonNames: [String], token: AccessTokenSettings) {
        self.identityId = identityId
        self.caCertificate = caCertificate
        self.allowedCommonNames = allowedCommonNames
        self.token = token
    }
}

/// A newly issued or renewed access token. `accessToken` is the bearer credential: shown once, stored only as a hash.
public struct IssuedToken: Sendable, Hashable, Codable, CustomStringConvertible {
    public var accessToken: String
    /// Seconds until expiry.
    public var expiresIn: Int
    public var accessTokenMaxTTL: Int
    public var tokenType: String
    public init(accessToken: String, expiresIn: Int, accessTokenMaxTTL: Int) {
        self.accessToken = accessToken
        self.expiresIn = expiresIn
        self.accessTokenMaxTTL = accessTokenMaxTTL
        self.tokenType = "Bearer"
    }
    public var description: String { "IssuedToken(<redacted>, expiresIn: \(expiresIn))" }
}

/// One rule of a role or privilege: `actions` on `subject` where `conditions` hold. `inverted` rules forbid and
/// win over any allowing rule.
///
/// Subjects: project level `project`, `secrets`, `roles`, `members`, `kms-keys`; organization level `projects`,
/// `identities`, `audit`. Actions: `read`, `create`, `edit`, `delete` (and `*`). Conditions compare a resource
/// field (`name`, `path`) with an operator: `$eq`, `$ne`, `$in`, `$glob`; values may use `{{ identity.id }}`,
/// `{{ identity.name }}` and `{{ identity.metadata.KEY }}`.
public struct Permission: Sendable, Hashable, Codable {
    public var subject: String
    public var actions: [String]
    public var conditions: [String: Condition]?
    public var inverted: Bool?
    public init(subject: String, actions: [String], conditions: [String: Condition]? = nil, inverted: Bool? = nil) {
        self.subject = subject
        self.actions = actions
        self.conditions = conditions
        self.inverted = inverted
    }

    /// One condition on a resource field.
    public struct Condition: Sendable, Hashable, Codable {
        public var eq: String?
        public var ne: String?
        public var `in`: [String]?
        public var glob: String?
        public init(eq: String? = nil, ne: String? = nil, in values: [String]? = nil, glob: String? = nil) {
            self.eq = eq
            self.ne = ne
            self.in = values
            self.glob = glob
        }
        enum CodingKeys: String, CodingKey {
            case eq = "$eq"
            case ne = "$ne"
            case `in` = "$in"
            case glob = "$glob"
        }
    }
}

/// A project role: built-in (`admin`, `developer`, `viewer`) or custom.
public struct RoleInfo: Sendable, Hashable, Codable {
    public var slug: String
    public var project: String
    public var description: String
    public var permissions: [Permission]
    public var isBuiltIn: Bool
    public init(slug: String, project: String, description: String, permissions: [Permission], isBuiltIn: Bool) {
        self.slug = slug
        self.project = project
        self.description = description
        self.permissions = permissions
        self.isBuiltIn = isBuiltIn
    }
}

/// A custom role to create.
public struct RoleSpec: Sendable, Hashable, Codable {
    public var slug: String
    public var description: String?
    public var permissions: [Permission]
    public init(slug: String, description: String? = nil, permissions: [Permission]) {
        self.slug = slug
        self.description = description
        self.permissions = permissions
    }
}

/// Temporary access: a duration (`30s`, `1m`, `2h`, `3d`) starting at `temporaryAccessStartTime` (default now).
public struct TemporaryAccess: Sendable, Hashable, Codable {
    public var isTemporary: Bool?
    public var temporaryRange: String?
    public var temporaryAccessStartTime: Date?
    public init(isTemporary: Bool? = nil, temporaryRange: String? = nil, temporaryAccessStartTime: Date? = nil) {
        self.isTemporary = isTemporary
        self.temporaryRange = temporaryRange
        self.temporaryAccessStartTime = temporaryAccessStartTime
    }
}

/// One role held in a project membership.
public struct RoleGrant: Sendable, Hashable, Codable {
    public var role: String
    public var isTemporary: Bool
    public var temporaryRange: String?
    public var temporaryAccessStartTime: Date?
    public var temporaryAccessEndTime: Date?
    public init(
        role: String, isTemporary: Bool = false, temporaryRange: String? = nil, temporaryAccessStartTime: Date? = nil,
        temporaryAccessEndTime: Date? = nil
    ) {
        self.role = role
        self.isTemporary = isTemporary
        self.temporaryRange = temporaryRange
        self.temporaryAccessStartTime = temporaryAccessStartTime
        self.temporaryAccessEndTime = temporaryAccessEndTime
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(String.self, forKey: .role)
        isTemporary = try c.decodeIfPresent(Bool.self, forKey: .isTemporary) ?? false
        temporaryRange = try c.decodeIfPresent(String.self, forKey: .temporaryRange)
        temporaryAccessStartTime = try c.decodeIfPresent(Date.self, forKey: .temporaryAccessStartTime)
        temporaryAccessEndTime = try c.decodeIfPresent(Date.self, forKey: .temporaryAccessEndTime)
    }
}

/// An identity's membership of a project: its roles there.
public struct MembershipInfo: Sendable, Hashable, Codable {
    public var project: String
    public var identityId: String
    public var roles: [RoleGrant]
    public init(project: String, identityId: String, roles: [RoleGrant]) {
        self.project = project
        self.identityId = identityId
        self.roles = roles
    }
}

/// An additional privilege: permissions given to one identity in one project, optionally temporary.
public struct PrivilegeInfo: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var identityId: String
    public var slug: String
    public var permissions: [Permission]
    public var isTemporary: Bool
    public var temporaryRange: String?
    public var temporaryAccessStartTime: Date?
    public var temporaryAccessEndTime: Date?
    public init(
        id: String, project: String, identityId: String, slug: String, permissions: [Permission], isTemporary: Bool,
        temporaryRange: String?, temporaryAccessStartTime: Date?, temporaryAccessEndTime: Date?
    ) {
        self.id = id
        self.project = project
        self.identityId = identityId
        self.slug = slug
        self.permissions = permissions
        self.isTemporary = isTemporary
        self.temporaryRange = temporaryRange
        self.temporaryAccessStartTime = temporaryAccessStartTime
        self.temporaryAccessEndTime = temporaryAccessEndTime
    }
}

/// An additional privilege to create.
public struct PrivilegeSpec: Sendable, Hashable, Codable {
    public var identityId: String
    public var slug: String
    public var permissions: [Permission]
    public var isTemporary: Bool?
    public var temporaryRange: String?
    public var temporaryAccessStartTime: Date?
    public init(
        identityId: String, slug: String, permissions: [Permission], isTemporary: Bool? = nil,
        temporaryRange: String? = nil, temporaryAccessStartTime: Date? = nil
    ) {
        self.identityId = identityId
        self.slug = slug
        self.permissions = permissions
        self.isTemporary = isTemporary
        self.temporaryRange = temporaryRange
        self.temporaryAccessStartTime = temporaryAccessStartTime
    }
}
