import Foundation

// MARK: - SSH certificate authorities

/// Signing key algorithms of SSH CAs. RSA CAs sign with `rsa-sha2-512`.
public enum SSHKeyAlgorithm: String, Sendable, Hashable, Codable, CaseIterable {
    case ed25519 = "ed25519"
    case ecdsaP256 = "ecdsa-p256"
    case ecdsaP384 = "ecdsa-p384"
    case rsa3072 = "rsa-3072"
    case rsa4096 = "rsa-4096"
}

/// What an SSH CA is created with. TTLs are durations such as `8h` or `30d`.
public struct SSHCASpec: Sendable, Hashable, Codable {
    /// Unique in the project.
    public var name: String
    public var keyAlgorithm: SSHKeyAlgorithm?
    /// Default and maximum lifetime of user certificates (defaults 8h and 24h).
    public var userTTL: String?
    public var maxUserTTL: String?
    /// Default and maximum lifetime of host certificates (defaults 30d and 365d).
    public var hostTTL: String?
    public var maxHostTTL: String?
    public init(
        name: String, keyAlgorithm: SSHKeyAlgorithm? = nil, userTTL: String? = nil, maxUserTTL: String? = nil,
        hostTTL: String? = nil, maxHostTTL: String? = nil
    ) {
        self.name = name
        self.keyAlgorithm = keyAlgorithm
        self.userTTL = userTTL
        self.maxUserTTL = maxUserTTL
        self.hostTTL = hostTTL
        self.maxHostTTL = maxHostTTL
    }
}

/// An SSH certificate authority.
public struct SSHCAInfo: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var name: String
    public var keyAlgorithm: SSHKeyAlgorithm
    /// The CA public key in authorized_keys format (for `TrustedUserCAKeys` / `@cert-authority`).
    public var publicKey: String
    /// `SHA256:…` fingerprint of the CA key.
    public var fingerprint: String
    public var userTTL: String
    public var maxUserTTL: String
    public var hostTTL: String
    public var maxHostTTL: String
    public var createdAt: Date
    public init(
        id: String, project: String, name: String, keyAlgorithm: SSHKeyAlgorithm, publicKey: String,
        fingerprint: String,
        userTTL: String, maxUserTTL: String, hostTTL: String, maxHostTTL: String, createdAt: Date
    ) {
        self.id = id
        self.project = project
        self.name = name
        self.keyAlgorithm = keyAlgorithm
        self.publicKey = publicKey
        self.fingerprint = fingerprint
        self.userTTL = userTTL
        self.maxUserTTL = maxUserTTL
        self.hostTTL = hostTTL
        self.maxHostTTL = maxHostTTL
        self.createdAt = createdAt
    }
}

/// A request for an OpenSSH certificate.
public struct SSHCertificateRequest: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable { case user, host }
    public var type: Kind
    /// The key to certify, authorized_keys format (`ssh-ed25519 AAAA… comment`).
    public var publicKey: String
    /// Key id written into the certificate (logged by sshd); default: the caller's name.
    public var keyId: String?
    /// Login names (user certificates) or host names (host certificates); at least one.
    public var principals: [String]
    /// Lifetime, e.g. `1h`; default and cap from the CA.
    public var ttl: String?
    /// `force-command`, `source-address` (user certificates only).
    public var criticalOptions: [String: String]?
    /// User certificate extensions (`permit-pty`, `permit-port-forwarding`, `permit-agent-forwarding`,
    /// `permit-X11-forwarding`, `permit-user-rc`, `no-touch-required`); default `permit-pty` only.
    public var extensions: [String]?
    public init(
        type: Kind, publicKey: String, keyId: String? = nil, principals: [String], ttl: String? = nil,
        criticalOptions: [String: String]? = nil, extensions: [String]? = nil
    ) {
        self.type = type
        self.publicKey = publicKey
        self.keyId = keyId
        self.principals = principals
        self.ttl = ttl
        self.criticalOptions = criticalOptions
        self.extensions = extensions
    }
}

/// An issued OpenSSH certificate.
public struct SSHCertificateInfo: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable { case active, revoked, expired }
    /// The certificate serial, decimal.
    public var serial: String
    public var caId: String
    public var project: String
    public var type: SSHCertificateRequest.Kind
    public var keyId: String
    public var principals: [String]
    public var validAfter: Date
    public var validBefore: Date
    public var criticalOptions: [String: String]
    public var extensions: [String]
    /// `SHA256:…` of the certified key.
    public var publicKeyFingerprint: String
    /// The `-cert.pub` line.
    public var certificate: String
    public var status: Status
    public var revokedAt: Date?
    /// Who asked for it.
    public var issuedTo: String
    public init(
        serial: String, caId: String, project: String, type: SSHCertificateRequest.Kind, keyId: String,
        principals: [String],
        validAfter: Date, validBefore: Date, criticalOptions: [String: String], extensions: [String],
        publicKeyFingerprint: String, certificate: String, status: Status, revokedAt: Date?, issuedTo: String
    ) {
        self.serial = serial
        self.caId = caId
        self.project = project
        self.type = type
        self.keyId = keyId
        self.principals = principals
        self.validAfter = validAfter
        self.validBefore = validBefore
        self.criticalOptions = criticalOptions
        self.extensions = extensions
        self.publicKeyFingerprint = publicKeyFingerprint
        self.certificate = certificate
        self.status = status
        self.revokedAt = revokedAt
        self.issuedTo = issuedTo
    }
}

// MARK: - Hosts, host groups, login mappings

/// Login user on a host → the identities (names or ids) allowed to log in as it. A user certificate issued for
/// the host carries exactly that login as its principal.
public struct SSHLoginMapping: Sendable, Hashable, Codable {
    public var login: String
    public var allowedIdentities: [String]
    public init(login: String, allowedIdentities: [String]) {
        self.login = login
        self.allowedIdentities = allowedIdentities
    }
}

public struct SSHHostGroupSpec: Sendable, Hashable, Codable {
    public var name: String
    public var loginMappings: [SSHLoginMapping]?
    public init(name: String, loginMappings: [SSHLoginMapping]? = nil) {
        self.name = name
        self.loginMappings = loginMappings
    }
}

public struct SSHHostGroupInfo: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var name: String
    public var loginMappings: [SSHLoginMapping]
    public var createdAt: Date
    public init(id: String, project: String, name: String, loginMappings: [SSHLoginMapping], createdAt: Date) {
        self.id = id
        self.project = project
        self.name = name
        self.loginMappings = loginMappings
        self.createdAt = createdAt
    }
}

public struct SSHHostSpec: Sendable, Hashable, Codable {
    /// The name clients use (DNS name or IP address); the host certificate's principal.
    public var hostname: String
    /// SSH port (default 22).
    public var port: Int?
    /// Host group (name or id) whose login mappings also apply.
    public var hostGroup: String?
    /// CA that signs user certificates for this host (its key goes into `TrustedUserCAKeys`).
    public var userCaId: String
    /// CA that signs the host certificate (clients trust it with `@cert-authority`).
    public var hostCaId: String
    public var loginMappings: [SSHLoginMapping]?
    /// The host's public key; when given, a host certificate is issued at once.
    public var hostPublicKey: String?
    public var hostCertificateTTL: String?
    public init(
        hostname: String, port: Int? = nil, hostGroup: String? = nil, userCaId: String, hostCaId: String,
        loginMappings: [SSHLoginMapping]? = nil, hostPublicKey: String? = nil, hostCertificateTTL: String? = nil
    ) {
        self.hostname = hostname
        self.port = port
        self.hostGroup = hostGroup
        self.userCaId = userCaId
        self.hostCaId = hostCaId
        self.loginMappings = loginMappings
        self.hostPublicKey = hostPublicKey
        self.hostCertificateTTL = hostCertificateTTL
    }
}

public struct SSHHostInfo: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var hostname: String
    public var port: Int
    public var hostGroupId: String?
    public var userCaId: String
    public var hostCaId: String
    public var loginMappings: [SSHLoginMapping]
    /// The user CA's public key (for the host's `TrustedUserCAKeys`).
    public var userCAPublicKey: String
    /// The host CA's public key (for clients' `@cert-authority` lines).
    public var hostCAPublicKey: String
    /// The most recent host certificate, if one was issued.
    public var hostCertificate: String?
    public var createdAt: Date
    public init(
        id: String, project: String, hostname: String, port: Int, hostGroupId: String?, userCaId: String,
        hostCaId: String,
        loginMappings: [SSHLoginMapping], userCAPublicKey: String, hostCAPublicKey: String, hostCertificate: String?,
        createdAt: Date
    ) {
        self.id = id
        self.project = project
        self.hostname = hostname
        self.port = port
        self.hostGroupId = hostGroupId
        self.userCaId = userCaId
        self.hostCaId = hostCaId
        self.loginMappings = loginMappings
        self.userCAPublicKey = userCAPublicKey
        self.hostCAPublicKey = hostCAPublicKey
        self.hostCertificate = hostCertificate
        self.createdAt = createdAt
    }
}

/// What `gatehouse ssh connect` gets: a user certificate for the login, and how to reach and trust the host.
public struct SSHConnectGrant: Sendable, Hashable, Codable {
    public var certificate: SSHCertificateInfo
    public var hostname: String
    public var port: Int
    public var login: String
    /// A known_hosts line: `@cert-authority <pattern> <host CA key>`.
    public var knownHostsLine: String
    public init(certificate: SSHCertificateInfo, hostname: String, port: Int, login: String, knownHostsLine: String) {
        self.certificate = certificate
        self.hostname = hostname
        self.port = port
        self.login = login
        self.knownHostsLine = knownHostsLine
    }
}

/// SSH certificate authority, hosts and login mappings.
public protocol SSHEngine: Sendable {
    func createSSHCA(_ ctx: CallContext, project: String, _ spec: SSHCASpec) async throws -> SSHCAInfo
    func listSSHCAs(_ ctx: CallContext, project: String) async throws -> [SSHCAInfo]
    func getSSHCA(_ ctx: CallContext, id: String) async throws -> SSHCAInfo
    /// Signs a user or host certificate directly (subject `ssh-certificates`, action `create`).
    func issueSSHCertificate(_ ctx: CallContext, caId: String, _ request: SSHCertificateRequest) async throws
        -> SSHCertificateInfo
    func listSSHCertificates(_ ctx: CallContext, project: String, after: String?, limit: Int) async throws -> Page<
        SSHCertificateInfo
    >
    func getSSHCertificate(_ ctx: CallContext, serial: String) async throws -> SSHCertificateInfo
    func revokeSSHCertificate(_ ctx: CallContext, serial: String) async throws -> SSHCertificateInfo
    /// The CA's key revocation list (public: hosts fetch it for `RevokedKeys`).
    func sshKRL(caId: String) async throws -> [UInt8]
    /// The CA's public key line (public: hosts fetch it for `TrustedUserCAKeys`).
    func sshCAPublicKey(caId: String) async throws -> String

    func createSSHHostGroup(_ ctx: CallContext, project: String, _ spec: SSHHostGroupSpec) async throws
        -> SSHHostGroupInfo
    func listSSHHostGroups(_ ctx: CallContext, project: String) async throws -> [SSHHostGroupInfo]
    func addSSHHost(_ ctx: CallContext, project: String, _ spec: SSHHostSpec) async throws -> SSHHostInfo
    func listSSHHosts(_ ctx: CallContext, project: String) async throws -> [SSHHostInfo]
    /// A host by id or hostname (host names are unique in the organization).
    func getSSHHost(_ ctx: CallContext, host: String) async throws -> SSHHostInfo
    func deleteSSHHost(_ ctx: CallContext, host: String) async throws
    /// Issues a host certificate for the host's key (principal: its hostname).
    func issueSSHHostCertificate(_ ctx: CallContext, host: String, publicKey: String, ttl: String?) async throws
        -> SSHCertificateInfo
    /// Checks the caller against the host's (and its group's) login mappings and issues a user certificate
    /// whose only principal is `login` (default: the caller's only allowed login on that host).
    func connectSSHHost(
        _ ctx: CallContext, host: String, login: String?, publicKey: String, ttl: String?
    ) async throws -> SSHConnectGrant
}
