import Foundation

// MARK: - Certificate authorities

/// Key algorithms of CAs and of keys the server generates (names as the reference platform spells them).
public enum PKIKeyAlgorithm: String, Sendable, Hashable, Codable, CaseIterable {
    case rsa2048 = "RSA_2048"
    case rsa3072 = "RSA_3072"
    case rsa4096 = "RSA_4096"
    case ecP256 = "EC_prime256v1"
    case ecP384 = "EC_secp384r1"
    case ed25519 = "ED25519"
}

/// The subject of a CA certificate.
public struct CASubject: Sendable, Hashable, Codable {
    public var commonName: String
    public var organization: String?
    public var organizationalUnit: String?
    public var country: String?
    public var province: String?
    public var locality: String?
    public init(
        commonName: String, organization: String? = nil, organizationalUnit: String? = nil, country: String? = nil,
        province: String? = nil, locality: String? = nil
    ) {
        self.commonName = commonName
        self.organization = organization
        self.organizationalUnit = organizationalUnit
        self.country = country
        self.province = province
        self.locality = locality
    }
}

/// What to create: a root (self-signed), or an intermediate signed by a Gatehouse CA (`parentCaId`) or by an
/// external CA (no parent: the CA waits in `pendingCertificate` for its certificate, see `caCertificateRequest`).
public struct CASpec: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable { case root, intermediate }
    public var type: Kind
    public var subject: CASubject
    public var keyAlgorithm: PKIKeyAlgorithm?
    /// End of validity; default 10 years for a root, 5 for an intermediate (capped by the parent's).
    public var notAfter: Date?
    /// -1 unlimited, 0 none, n at most n intermediates below. Default -1 for a root, 0 for an intermediate.
    public var maxPathLength: Int?
    public var parentCaId: String?
    public init(
        type: Kind, subject: CASubject, keyAlgorithm: PKIKeyAlgorithm? = nil, notAfter: Date? = nil,
        maxPathLength: Int? = nil, parentCaId: String? = nil
    ) {
        self.type = type
        self.subject = subject
        self.keyAlgorithm = keyAlgorithm
        self.notAfter = notAfter
        self.maxPathLength = maxPathLength
        self.parentCaId = parentCaId
    }
}

/// A certificate authority.
public struct CAInfo: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable {
        case active
        case pendingCertificate = "pending-certificate"
        case disabled
    }
    public var id: String
    public var project: String
    public var type: CASpec.Kind
    public var status: Status
    public var subject: CASubject
    public var dn: String
    public var keyAlgorithm: PKIKeyAlgorithm
    public var maxPathLength: Int
    public var parentCaId: String?
    public var serialNumber: String?
    public var notBefore: Date?
    public var notAfter: Date?
    /// The CA certificate (PEM) once it has one.
    public var certificate: String?
    /// The issuers above it, nearest first, up to and including the root (PEM).
    public var certificateChain: [String]
    public var createdAt: Date
    public init(
        id: String, project: String, type: CASpec.Kind, status: Status, subject: CASubject, dn: String,
        keyAlgorithm: PKIKeyAlgorithm, maxPathLength: Int, parentCaId: String?, serialNumber: String?, notBefore: Date?,
        notAfter: Date?, certificate: String?, certificateChain: [String], createdAt: Date
    ) {
        self.id = id
        self.project = project
        self.type = type
        self.status = status
        self.subject = subject
        self.dn = dn
        self.keyAlgorithm = keyAlgorithm
        self.maxPathLength = maxPathLength
        self.parentCaId = parentCaId
        self.serialNumber = serialNumber
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.certificate = certificate
        self.certificateChain = certificateChain
        self.createdAt = createdAt
    }
}

// MARK: - Templates (policy)

/// Allow / deny patterns for one subject attribute or SAN type. Patterns are exact values or wildcards: `*`
/// matches within one DNS label (`*.example.com` matches `a.example.com`, not `a.b.example.com`), `**` matches
/// anything; IP patterns may be CIDR blocks. A value must match an `allowed` pattern and no `denied` one. A value of
/// a type that has no rule is refused.
public struct PatternRule: Sendable, Hashable, Codable {
    /// `commonName`, `organization`, `organizationalUnit`, `country` (subject) or `dns`, `ip`, `email`, `uri` (SANs).
    public var type: String
    public var allowed: [String]
    public var denied: [String]
    /// The request must carry at least one value of this type.
    public var required: Bool
    public init(type: String, allowed: [String] = [], denied: [String] = [], required: Bool = false) {
        self.type = type
        self.allowed = allowed
        self.denied = denied
        self.required = required
    }
    enum CodingKeys: String, CodingKey { case type, allowed, denied, required }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        allowed = try c.decodeIfPresent([String].self, forKey: .allowed) ?? []
        denied = try c.decodeIfPresent([String].self, forKey: .denied) ?? []
        required = try c.decodeIfPresent(Bool.self, forKey: .required) ?? false
    }
}

/// A certificate template: what certificates issued under it may contain.
public struct TemplateSpec: Sendable, Hashable, Codable {
    public var name: String
    public var description: String?
    public var subject: [PatternRule]
    public var sans: [PatternRule]
    /// Allowed key algorithms of the certified key; empty = any supported.
    public var keyAlgorithms: [PKIKeyAlgorithm]
    /// Allowed signature algorithms of the certificate (`SHA256-ECDSA`, `SHA384-ECDSA`, `SHA256-RSA`, `SHA384-RSA`,
    /// `SHA512-RSA`, `ED25519`); empty = any.
    public var signatureAlgorithms: [String]
    /// Key usages issued (`digitalSignature`, `keyEncipherment`, `keyAgreement`, `nonRepudiation`, …).
    public var keyUsages: [String]
    /// Extended key usages issued (`serverAuth`, `clientAuth`, `codeSigning`, `emailProtection`, `timeStamping`,
    /// `ocspSigning`).
    public var extendedKeyUsages: [String]
    /// Maximum validity (`90d`, `8760h`, …).
    public var maxTTL: String
    public init(
        name: String, description: String? = nil, subject: [PatternRule], sans: [PatternRule],
        keyAlgorithms: [PKIKeyAlgorithm] = [], signatureAlgorithms: [String] = [],
        keyUsages: [String] = ["digitalSignature", "keyEncipherment"], extendedKeyUsages: [String] = ["clientAuth"],
        maxTTL: String = "90d"
    ) {
        self.name = name
        self.description = description
        self.subject = subject
        self.sans = sans
        self.keyAlgorithms = keyAlgorithms
        self.signatureAlgorithms = signatureAlgorithms
        self.keyUsages = keyUsages
        self.extendedKeyUsages = extendedKeyUsages
        self.maxTTL = maxTTL
    }
    enum CodingKeys: String, CodingKey {
        case name, description, subject, sans, keyAlgorithms, signatureAlgorithms, keyUsages, extendedKeyUsages, maxTTL
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        subject = try c.decodeIfPresent([PatternRule].self, forKey: .subject) ?? []
        sans = try c.decodeIfPresent([PatternRule].self, forKey: .sans) ?? []
        keyAlgorithms = try c.decodeIfPresent([PKIKeyAlgorithm].self, forKey: .keyAlgorithms) ?? []
        signatureAlgorithms = try c.decodeIfPresent([String].self, forKey: .signatureAlgorithms) ?? []
        keyUsages = try c.decodeIfPresent([String].self, forKey: .keyUsages) ?? ["digitalSignature", "keyEncipherment"]
        extendedKeyUsages = try c.decodeIfPresent([String].self, forKey: .extendedKeyUsages) ?? ["clientAuth"]
        maxTTL = try c.decodeIfPresent(String.self, forKey: .maxTTL) ?? "90d"
    }
}

/// A stored template.
public struct TemplateInfo: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var spec: TemplateSpec
    public var createdAt: Date
    public init(id: String, project: String, spec: TemplateSpec, createdAt: Date) {
        self.id = id
        self.project = project
        self.spec = spec
        self.createdAt = createdAt
    }
}

// MARK: - Profiles

/// How certificates are requested under a profile.
/// How a profile's certificates are requested: the admin API, EST, ACME, or KMIP Certify (one `kmip` profile per
/// project serves the project's KMIP clients).
public enum EnrollmentMethod: String, Sendable, Hashable, Codable { case api, est, acme, kmip }

/// EST settings of a profile. The passphrase is write-only.
public struct ESTSettings: Sendable, Hashable, Codable {
    /// HTTP Basic password (any user name) that lets a device enroll.
    public var passphrase: String?
    /// PEM certificates: a device's TLS client certificate must chain to one of them (manufacturer / IDevID CAs).
    public var bootstrapCAChain: String?
    /// Accept any TLS client certificate as a bootstrap credential (testing only).
    public var disableBootstrapValidation: Bool
    /// Require the TLS tls-unique value in the CSR's challengePassword (RFC 7030 §3.5).
    public var requireChannelBinding: Bool
    public init(
        passphrase: String? = nil, bootstrapCAChain: String? = nil, disableBootstrapValidation: Bool = false,
        requireChannelBinding: Bool = false
    ) {
        self.passphrase = passphrase
        self.bootstrapCAChain = bootstrapCAChain
        self.disableBootstrapValidation = disableBootstrapValidation
        self.requireChannelBinding = requireChannelBinding
    }
    enum CodingKeys: String, CodingKey {
        case passphrase, bootstrapCAChain, disableBootstrapValidation, requireChannelBinding
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        passphrase = try c.decodeIfPresent(String.self, forKey: .passphrase)
        bootstrapCAChain = try c.decodeIfPresent(String.self, forKey: .bootstrapCAChain)
        disableBootstrapValidation = try c.decodeIfPresent(Bool.self, forKey: .disableBootstrapValidation) ?? false
        requireChannelBinding = try c.decodeIfPresent(Bool.self, forKey: .requireChannelBinding) ?? false
    }
}

/// What to create: issuer (a CA, or none = self-signed, API only), template, enrollment method.
public struct ProfileSpec: Sendable, Hashable, Codable {
    public var slug: String
    public var description: String?
    public var caId: String?
    public var templateId: String
    public var enrollment: EnrollmentMethod
    public var est: ESTSettings?
    /// Validity when the request names none (default: the template's maximum).
    public var defaultTTL: String?
    public init(
        slug: String, description: String? = nil, caId: String?, templateId: String, enrollment: EnrollmentMethod,
        est: ESTSettings? = nil, defaultTTL: String? = nil
    ) {
        self.slug = slug
        self.description = description
        self.caId = caId
        self.templateId = templateId
        self.enrollment = enrollment
        self.est = est
        self.defaultTTL = defaultTTL
    }
}

/// A stored profile (the EST passphrase is never returned).
public struct ProfileInfo: Sendable, Hashable, Codable {
    public var id: String
    public var slug: String
    public var project: String
    public var description: String?
    public var caId: String?
    public var templateId: String
    public var enrollment: EnrollmentMethod
    public var estHasPassphrase: Bool
    public var estBootstrapCAChain: String?
    public var estDisableBootstrapValidation: Bool
    public var estRequireChannelBinding: Bool
    public var defaultTTL: String?
    public var createdAt: Date
    public init(
        id: String, slug: String, project: String, description: String?, caId: String?, templateId: String,
        enrollment: EnrollmentMethod, estHasPassphrase: Bool, estBootstrapCAChain: String?,
        estDisableBootstrapValidation: Bool, estRequireChannelBinding: Bool, defaultTTL: String?, createdAt: Date
    ) {
        self.id = id
        self.slug = slug
        self.project = project
        self.description = description
        self.caId = caId
        self.templateId = templateId
        self.enrollment = enrollment
        self.estHasPassphrase = estHasPassphrase
        self.estBootstrapCAChain = estBootstrapCAChain
        self.estDisableBootstrapValidation = estDisableBootstrapValidation
        self.estRequireChannelBinding = estRequireChannelBinding
        self.defaultTTL = defaultTTL
        self.createdAt = createdAt
    }
}

// MARK: - Certificates

/// RFC 5280 CRLReason values.
public enum RevocationReason: String, Sendable, Hashable, Codable, CaseIterable {
    case unspecified, keyCompromise, caCompromise, affiliationChanged, superseded, cessationOfOperation
    case certificateHold, removeFromCRL, privilegeWithdrawn, aaCompromise
    /// The ASN.1 enumeration value.
    public var code: Int {
        switch self {
        case .unspecified: 0
        case .keyCompromise: 1
        case .caCompromise: 2
        case .affiliationChanged: 3
        case .superseded: 4
        case .cessationOfOperation: 5
        case .certificateHold: 6
        case .removeFromCRL: 8
        case .privilegeWithdrawn: 9
        case .aaCompromise: 10
        }
    }
}

/// A request to issue: from a CSR (PEM or base64 DER), or CSR-less (the server makes the key and returns it once).
public struct IssuanceRequest: Sendable, Hashable, Codable {
    public var csr: String?
    public var commonName: String?
    /// SANs as `dns:name`, `ip:addr`, `email:addr`, `uri:value` (a bare value is a DNS name).
    public var altNames: [String]?
    public var ttl: String?
    public var keyAlgorithm: PKIKeyAlgorithm?
    public var signatureAlgorithm: String?
    public init(
        csr: String? = nil, commonName: String? = nil, altNames: [String]? = nil, ttl: String? = nil,
        keyAlgorithm: PKIKeyAlgorithm? = nil, signatureAlgorithm: String? = nil
    ) {
        self.csr = csr
        self.commonName = commonName
        self.altNames = altNames
        self.ttl = ttl
        self.keyAlgorithm = keyAlgorithm
        self.signatureAlgorithm = signatureAlgorithm
    }
}

/// An issued certificate.
/// Filters of a certificate listing; every one given must hold.
public struct CertificateQuery: Sendable, Hashable {
    /// Issued by this CA.
    public var caId: String?
    /// Issued under this profile.
    public var profileId: String?
    /// In this status (`expired`: active but past notAfter).
    public var status: CertificateInfo.Status?
    /// With this common name or subject alternative name (case-insensitive, exact).
    public var name: String?
    /// notAfter at or after this time.
    public var expiresAfter: Date?
    /// notAfter before this time.
    public var expiresBefore: Date?
    /// Latest expiry first (default: soonest first).
    public var latestFirst: Bool
    /// The previous page's `next`.
    public var after: String?
    public var limit: Int

    public init(
        caId: String? = nil, profileId: String? = nil, status: CertificateInfo.Status? = nil, name: String? = nil,
        expiresAfter: Date? = nil, expiresBefore: Date? = nil, latestFirst: Bool = false, after: String? = nil,
        limit: Int = 100
    ) {
        self.caId = caId
        self.profileId = profileId
        self.status = status
        self.name = name
        self.expiresAfter = expiresAfter
        self.expiresBefore = expiresBefore
        self.latestFirst = latestFirst
        self.after = after
        self.limit = limit
    }
}

public struct CertificateInfo: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable { case active, revoked, expired }
    public var serialNumber: String
    public var project: String
    public var caId: String?
    public var profileId: String?
    public var commonName: String
    public var subject: String
    public var altNames: [String]
    public var notBefore: Date
    public var notAfter: Date
    public var status: Status
    public var revokedAt: Date?
    public var revocationReason: RevocationReason?
    public var certificate: String
    /// Issuers nearest first (PEM).
    public var certificateChain: [String]
    /// Whether the server holds the private key (CSR-less issuance), so the bundle and PKCS#12 include it.
    public var hasPrivateKey: Bool
    public init(
        serialNumber: String, project: String, caId: String?, profileId: String?, commonName: String, subject: String,
        altNames: [String], notBefore: Date, notAfter: Date, status: Status, revokedAt: Date?,
        revocationReason: RevocationReason?, certificate: String, certificateChain: [String], hasPrivateKey: Bool
    ) {
        self.serialNumber = serialNumber
        self.project = project
        self.caId = caId
        self.profileId = profileId
        self.commonName = commonName
        self.subject = subject
        self.altNames = altNames
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.status = status
        self.revokedAt = revokedAt
        self.revocationReason = revocationReason
        self.certificate = certificate
        self.certificateChain = certificateChain
        self.hasPrivateKey = hasPrivateKey
    }
}

/// An issuance result; `privateKey` (PKCS#8 PEM) only for CSR-less issuance, returned this once.
public struct IssuedCertificate: Sendable, Hashable, Codable {
    public var certificate: CertificateInfo
    public var privateKey: String?
    public init(certificate: CertificateInfo, privateKey: String?) {
        self.certificate = certificate
        self.privateKey = privateKey
    }
}

/// The credentials an EST client offers besides its TLS client certificate (which travels in the principal).
public struct ESTCredentials: Sendable, Hashable, CustomStringConvertible {
    /// The HTTP Basic password, if any.
    public var password: String?
    /// The TLS tls-unique value of the connection (for channel binding), if the listener knows it.
    public var tlsUnique: [UInt8]?
    public init(password: String? = nil, tlsUnique: [UInt8]? = nil) {
        self.password = password
        self.tlsUnique = tlsUnique
    }
    public var description: String { "ESTCredentials(password: \(password == nil ? "none" : "<redacted>"))" }
}

/// An EST enrollment result: the issued certificate (DER) and, for server key generation, its PKCS#8 key (DER).
public struct ESTEnrollment: Sendable {
    public var certificate: [UInt8]
    public var privateKeyPKCS8: SecretBytes?
    public init(certificate: [UInt8], privateKeyPKCS8: SecretBytes?) {
        self.certificate = certificate
        self.privateKeyPKCS8 = privateKeyPKCS8
    }
}

/// Private CA: CAs, templates, profiles, issuance, revocation, CRLs and OCSP (part of `Engine`).
public protocol PKIEngine: Sendable {
    func createCA(_ ctx: CallContext, project: String, _ spec: CASpec) async throws -> CAInfo
    func listCAs(_ ctx: CallContext, project: String) async throws -> [CAInfo]
    func getCA(_ ctx: CallContext, id: String) async throws -> CAInfo
    /// The PKCS#10 request (PEM) of an intermediate waiting for an external CA's certificate.
    func caCertificateRequest(_ ctx: CallContext, id: String) async throws -> String
    /// Installs the certificate an external CA issued for a pending intermediate, with the issuer chain (PEM).
    func importCACertificate(_ ctx: CallContext, id: String, certificate: String, chain: String) async throws -> CAInfo
    /// Re-issues the CA certificate (same key) with a new end of validity.
    func renewCA(_ ctx: CallContext, id: String, notAfter: Date) async throws -> CAInfo

    func createTemplate(_ ctx: CallContext, project: String, _ spec: TemplateSpec) async throws -> TemplateInfo
    func listTemplates(_ ctx: CallContext, project: String) async throws -> [TemplateInfo]
    func getTemplate(_ ctx: CallContext, id: String) async throws -> TemplateInfo
    func deleteTemplate(_ ctx: CallContext, id: String) async throws

    func createProfile(_ ctx: CallContext, project: String, _ spec: ProfileSpec) async throws -> ProfileInfo
    func listProfiles(_ ctx: CallContext, project: String) async throws -> [ProfileInfo]
    /// By id or slug.
    func getProfile(_ ctx: CallContext, id: String) async throws -> ProfileInfo
    func deleteProfile(_ ctx: CallContext, id: String) async throws

    /// Issues under a profile (by id or slug) over the admin API.
    func issueCertificate(_ ctx: CallContext, profile: String, _ request: IssuanceRequest) async throws
        -> IssuedCertificate
    func getCertificate(_ ctx: CallContext, serial: String) async throws -> CertificateInfo
    /// A project's certificates that match every filter of `query`, by expiry (soonest first unless `latestFirst`),
    /// through the store's indexes.
    func listCertificates(_ ctx: CallContext, project: String, _ query: CertificateQuery) async throws -> Page<
        CertificateInfo
    >
    func revokeCertificate(_ ctx: CallContext, serial: String, reason: RevocationReason) async throws -> CertificateInfo
    /// The private key (PKCS#8 PEM) of a certificate issued CSR-less, for export (audited as a key export).
    func certificatePrivateKey(_ ctx: CallContext, serial: String) async throws -> SecretBytes
    /// A PKCS#12 archive (DER) of the certificate, its chain and the private key the server holds, encrypted under
    /// `password`, with `alias` as friendly name (audited as a key export).
    func exportPKCS12(_ ctx: CallContext, serial: String, password: String, alias: String?) async throws -> [UInt8]

    /// The current CRL of a CA (DER); public, regenerated when stale.
    func crl(caId: String) async throws -> [UInt8]
    /// Answers an OCSP request (DER in, DER `OCSPResponse` out); public. Malformed requests get a
    /// `malformedRequest` response, never an error.
    func ocsp(request: [UInt8]) async throws -> [UInt8]

    /// The profile's ACME external account binding key id and HMAC key (base64url); administrators only.
    func acmeEABCredentials(_ ctx: CallContext, profile: String) async throws -> (keyId: String, hmacKey: String)
}

/// EST enrollment under a profile (part of `Engine`): what the EST front end calls.
public protocol ESTEngine: Sendable {
    /// EST `/cacerts`: the profile's CA certificate and the chain above it (DER, CA first).
    func estCACertificates(_ ctx: CallContext, profile: String) async throws -> [[UInt8]]
    /// EST `/csrattrs`: DER `CsrAttrs` (nil = none to ask for).
    func estCSRAttributes(_ ctx: CallContext, profile: String) async throws -> [UInt8]?
    /// EST `/simpleenroll`, `/simplereenroll` and `/serverkeygen`: authenticates the device (TLS certificate in
    /// the principal, password, channel binding), checks the CSR (proof of possession, template, re-enrollment
    /// rules) and issues.
    func estEnroll(
        _ ctx: CallContext, profile: String, csr: [UInt8], credentials: ESTCredentials, reenroll: Bool,
        serverKeyGen: Bool
    ) async throws -> ESTEnrollment
}

// MARK: - Expiry alerts

/// One condition on a certificate: `field` (`commonName`, `subject`, `altName`, `profile`, `caId`, `serialNumber`)
/// `operator` (`equals`, `notEquals`, `contains`, `startsWith`, `endsWith`, `glob`) `value`.
public struct AlertFilter: Sendable, Hashable, Codable {
    public var field: String
    public var `operator`: String
    public var value: String
    public init(field: String, operator: String, value: String) {
        self.field = field
        self.operator = `operator`
        self.value = value
    }
}

/// An expiry alert rule of a project: certificates matching every filter and expiring within `alertBefore` are
/// reported once each to the recipients (webhook URLs) and the log.
public struct AlertSpec: Sendable, Hashable, Codable {
    public var name: String
    public var alertBefore: String
    public var filters: [AlertFilter]
    public var recipients: [String]
    public init(name: String, alertBefore: String, filters: [AlertFilter] = [], recipients: [String]) {
        self.name = name
        self.alertBefore = alertBefore
        self.filters = filters
        self.recipients = recipients
    }
    enum CodingKeys: String, CodingKey { case name, alertBefore, filters, recipients }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        alertBefore = try c.decode(String.self, forKey: .alertBefore)
        filters = try c.decodeIfPresent([AlertFilter].self, forKey: .filters) ?? []
        recipients = try c.decodeIfPresent([String].self, forKey: .recipients) ?? []
    }
}

public struct AlertInfo: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var spec: AlertSpec
    public var createdAt: Date
    public init(id: String, project: String, spec: AlertSpec, createdAt: Date) {
        self.id = id
        self.project = project
        self.spec = spec
        self.createdAt = createdAt
    }
}

/// One certificate an alert rule reports, claimed by this node for delivery.
public struct ExpiryNotice: Sendable, Hashable, Codable {
    public var id: String
    public var alertId: String
    public var alertName: String
    public var project: String
    public var serialNumber: String
    public var commonName: String
    public var notAfter: Date
    public var recipients: [String]
    public init(
        id: String, alertId: String, alertName: String, project: String, serialNumber: String, commonName: String,
        notAfter: Date, recipients: [String]
    ) {
        self.id = id
        self.alertId = alertId
        self.alertName = alertName
        self.project = project
        self.serialNumber = serialNumber
        self.commonName = commonName
        self.notAfter = notAfter
        self.recipients = recipients
    }
}

/// Expiry alert rules and their scheduled evaluation (part of `Engine`).
public protocol AlertEngine: Sendable {
    func createAlert(_ ctx: CallContext, project: String, _ spec: AlertSpec) async throws -> AlertInfo
    func listAlerts(_ ctx: CallContext, project: String) async throws -> [AlertInfo]
    func deleteAlert(_ ctx: CallContext, id: String) async throws
    /// Finds certificates due for an alert and claims each (rule, certificate) pair for this caller, once across
    /// all nodes sharing the store; also re-claims deliveries another node claimed but did not confirm within
    /// `retryAfter` seconds. System callers only.
    func claimExpiryNotices(_ ctx: CallContext, retryAfter: TimeInterval) async throws -> [ExpiryNotice]
    /// Records that a notice was delivered (it is not claimed again).
    func confirmExpiryNotice(_ ctx: CallContext, id: String) async throws
}
