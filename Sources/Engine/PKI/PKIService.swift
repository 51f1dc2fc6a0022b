import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import PKCS12
import StorageAPI
import SwiftASN1
import Synchronization
import X509
import _CryptoExtras

/// Stored form of a CA: public facts, the sealed PKCS#8 key, its certificate and the issuers above it.
struct CABody: Codable {
    var info: CAInfo
    var sealedKey: Data
    var certificateDER: Data?
    /// Issuers above, nearest first (DER).
    var chainDER: [Data]
    /// The PKCS#10 request of an intermediate waiting for an external CA.
    var csrDER: Data?
}

/// A CA ready to sign: its record version, body, key and certificate.
struct LoadedCA: @unchecked Sendable {
    var version: Int64
    /// The stored bytes it was loaded from (a cache hit needs the same version and bytes).
    var raw: Data
    var body: CABody
    var key: Certificate.PrivateKey
    var certificate: Certificate?
    var keyID: [UInt8]
    var signatureAlgorithm: Certificate.SignatureAlgorithm
}

struct ProfileBody: Codable, Sendable {
    var info: ProfileInfo
    var passphraseSalt: Data?
    var passphraseMAC: Data?
    /// ACME external account binding: key id and the HMAC key sealed under the root key.
    var eabKeyId: String?
    var eabSealedKey: Data?
}

/// Stored form of an issued certificate. `info.certificate` and `info.certificateChain` are left empty at rest
/// (the DER is here and the chain is the CA's) and filled in when read.
struct CertificateBody: Codable {
    var info: CertificateInfo
    var der: Data
    var sealedKey: Data?
}

struct RevokedBody: Codable {
    var serial: String
    var revokedAt: Date
    var reason: RevocationReason
}

struct CRLBody: Codable {
    var der: Data
    var number: Int
    var thisUpdate: Date
    var nextUpdate: Date
}

enum PKIKind {
    static let ca = "pki-ca"
    static let template = "pki-template"
    static let profile = "pki-profile"
    static let certificate = "pki-cert"
    static let revoked = "pki-revoked"
    static let crl = "pki-crl"
}

/// The PKI domain: CAs, templates, profiles, issuance, revocation, CRLs and OCSP. ACME, EST and KMIP issue
/// through it (`CertificateIssuing`); the admin API reaches it as `PKIEngine`.
final class PKIService: EngineService {
    let core: EngineCore
    /// CAs with their decrypted signing keys, by id, with the record version they were loaded from.
    let caCache = Mutex<[String: LoadedCA]>([:])
    /// Enrollment profiles by slug or id, reused for two seconds (EST and ACME look one up per request).
    let recentProfiles = Mutex<[String: (body: ProfileBody, until: Date)]>([:])
    /// The public base URL (`https://host:port`) written into certificates for the CRL and OCSP endpoints, read
    /// when a certificate is issued (the daemon's answers the HTTPS listener's bound address).
    let pkiBaseURL: @Sendable () -> String

    init(core: EngineCore, pkiBaseURL: @escaping @Sendable () -> String) {
        self.core = core
        self.pkiBaseURL = {
            let url = pkiBaseURL()
            return url.hasSuffix("/") ? String(url.dropLast()) : url
        }
    }
}

extension PKIService {
    /// How long a CRL is valid; it is regenerated on revocation and when half of this has passed.
    static let crlLifetime: TimeInterval = 24 * 3600
    static let ocspLifetime: TimeInterval = 3600

    func crlURL(_ caID: String) -> String { pkiBaseURL() + "/pki/crl/\(caID).crl" }
    func ocspURL() -> String { pkiBaseURL() + "/pki/ocsp" }

    // MARK: - Keys and names

    static func generateKey(_ algorithm: PKIKeyAlgorithm) throws -> (Certificate.PrivateKey, [UInt8]) {
        switch algorithm {
        case .rsa2048, .rsa3072, .rsa4096:
            let bits = algorithm == .rsa2048 ? 2048 : algorithm == .rsa3072 ? 3072 : 4096
            let k = try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits))
            return (Certificate.PrivateKey(k), Array(k.pkcs8DERRepresentation))
        case .ecP256:
            let k = P256.Signing.PrivateKey()
            return (Certificate.PrivateKey(k), Array(k.pkcs8DERRepresentation))
        case .ecP384:
            let k = P384.Signing.PrivateKey()
            return (Certificate.PrivateKey(k), Array(k.pkcs8DERRepresentation))
        case .ed25519:
            let k = Curve25519.Signing.PrivateKey()
            return (Certificate.PrivateKey(k), Array(k.pkcs8DERRepresentation))
        }
    }

    static func keyAlgorithm(_ key: Certificate.PublicKey) -> PKIKeyAlgorithm? {
        if P256.Signing.PublicKey(key) != nil { return .ecP256 }
        if P384.Signing.PublicKey(key) != nil { return .ecP384 }
        if Curve25519.Signing.PublicKey(key) != nil { return .ed25519 }
        if let rsa = _RSA.Signing.PublicKey(key) {
            switch rsa.keySizeInBits {
            case 2048: return .rsa2048
            case 3072: return .rsa3072
            case 4096: return .rsa4096
            default: return nil
            }
        }
        return nil
    }

    /// The signature algorithm a CA key signs with: the template's first compatible choice, else the key's default.
    static func signatureAlgorithm(_ key: PKIKeyAlgorithm, allowed: [String]) throws -> Certificate.SignatureAlgorithm {
        let compatible: [String]
        switch key {
        case .ecP256: compatible = ["SHA256-ECDSA", "SHA384-ECDSA", "SHA512-ECDSA"]
        case .ecP384: compatible = ["SHA384-ECDSA", "SHA256-ECDSA", "SHA512-ECDSA"]
        case .ed25519: compatible = ["ED25519"]
        case .rsa2048, .rsa3072, .rsa4096: compatible = ["SHA256-RSA", "SHA384-RSA", "SHA512-RSA"]
        }
        let name = allowed.isEmpty ? compatible.first : compatible.first { allowed.contains($0) }
        guard let name, let alg = PKIDER.signatureAlgorithms.first(where: { $0.name == name })?.algorithm else {
            throw PKIPolicy.violation(
                "no allowed signature algorithm (\(allowed.joined(separator: ", "))) fits the issuer's \(key.rawValue) key"
            )
        }
        return alg
    }

    static func distinguishedName(_ s: CASubject) throws -> DistinguishedName {
        guard !s.commonName.isEmpty, s.commonName.utf8.count <= 64 else {
            throw EngineError(.invalidArgument, "subject commonName must be 1–64 characters")
        }
        if let c = s.country, c.count != 2 || !c.allSatisfy({ $0.isASCII && $0.isLetter }) {
            throw EngineError(.invalidArgument, "subject country must be a two-letter code")
        }
        var rdns: [RelativeDistinguishedName] = []
        if let c = s.country {
            rdns.append(
                RelativeDistinguishedName(
                    try .init(type: .RDNAttributeType.countryName, printableString: c.uppercased())))
        }
        if let v = s.province {
            rdns.append(RelativeDistinguishedName(.init(type: .RDNAttributeType.stateOrProvinceName, utf8String: v)))
        }
        if let v = s.locality {
            rdns.append(RelativeDistinguishedName(.init(type: .RDNAttributeType.localityName, utf8String: v)))
        }
        if let v = s.organization {
            rdns.append(RelativeDistinguishedName(.init(type: .RDNAttributeType.organizationName, utf8String: v)))
        }
        if let v = s.organizationalUnit {
            rdns.append(RelativeDistinguishedName(.init(type: .RDNAttributeType.organizationalUnitName, utf8String: v)))
        }
        rdns.append(RelativeDistinguishedName(.init(type: .RDNAttributeType.commonName, utf8String: s.commonName)))
        return DistinguishedName(rdns)
    }

    static func commonName(_ dn: DistinguishedName) -> String {
        for rdn in dn {
            for a in rdn where a.type == .RDNAttributeType.commonName { if let s = String(a.value) { return s } }
        }
        return ""
    }

    /// 128 random bits; the first byte is 0x01…0x7f so the DER INTEGER is exactly these 16 bytes.
    static func randomSerial() -> [UInt8] {
        var bytes = RandomBytes.make(16)
        bytes[0] = UInt8.random(in: 1...0x7f)
        return bytes
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String { Hex.encode(bytes) }

    static func der(_ certificate: Certificate) throws -> [UInt8] { try PKIDER.der(certificate) }

    static func pem(_ der: some Sequence<UInt8>, _ type: String = "CERTIFICATE") -> String {
        PEMDocument(type: type, derBytes: Array(der)).pemString + "\n"
    }

    static func pemCertificates(_ text: String) throws -> [Certificate] {
        var out: [Certificate] = []
        var rest = Substring(text)
        while let start = rest.range(of: "-----BEGIN CERTIFICATE-----") {
            guard let end = rest.range(of: "-----END CERTIFICATE-----", range: start.upperBound..<rest.endIndex) else {
                break
            }
            do {
                out.append(try Certificate(pemEncoded: String(rest[start.lowerBound..<end.upperBound])))
            } catch {
                throw EngineError(.invalidArgument, "a PEM certificate cannot be parsed")
            }
            rest = rest[end.upperBound...]
        }
        return out
    }

    // MARK: - Loading

    func loadCA(_ id: String, _ tx: any StorageTransaction) async throws -> LoadedCA {
        guard id.utf8.count <= 64, let record = try await tx.get(kind: PKIKind.ca, id: id) else {
            throw EngineError(.notFound, "certificate authority '\(id)' not found")
        }
        if let cached = caCache.withLock({ $0[id] }), cached.version == record.version, cached.raw == record.body {
            return cached
        }
        let body = try decode(CABody.self, record)
        let pkcs8 = try await keyring.open(body.sealedKey, binding: "pki-ca/\(id)/key", tx)
        let key: Certificate.PrivateKey
        do { key = try Certificate.PrivateKey(derBytes: pkcs8) } catch {
            throw EngineError(.internal, "a CA key is unreadable", diagnostic: "\(id): \(error)")
        }
        let certificate = try body.certificateDER.map { try Certificate(derEncoded: Array($0)) }
        let loaded = LoadedCA(
            version: record.version, raw: record.body, body: body, key: key, certificate: certificate,
            keyID: PKIDER.keyIdentifier(key.publicKey),
            signatureAlgorithm: try Self.signatureAlgorithm(body.info.keyAlgorithm, allowed: []))
        caCache.withLock { $0[id] = loaded }
        return loaded
    }

    func loadProfile(_ idOrSlug: String, _ tx: any StorageTransaction) async throws -> (Record, ProfileBody) {
        guard !idOrSlug.isEmpty, idOrSlug.utf8.count <= 200 else { throw EngineError(.notFound, "profile not found") }
        let record: Record?
        if let r = try await tx.find(kind: PKIKind.profile, scope: AccessKind.org, name: idOrSlug) {
            record = r
        } else {
            record = try await tx.get(kind: PKIKind.profile, id: idOrSlug)
        }
        guard let record else { throw EngineError(.notFound, "profile '\(idOrSlug)' not found") }
        return (record, try cachedDecode(ProfileBody.self, record))
    }

    /// A profile by slug or id for the enrollment front ends (EST, ACME), which look it up on every request: a read
    /// is reused for two seconds (the staleness the access cache allows; local deletions take effect at once).
    func recentProfile(_ slug: String) async throws -> ProfileBody {
        let now = clock()
        if let hit = recentProfiles.withLock({ $0[slug] }), hit.until > now { return hit.body }
        let (_, body) = try await read { tx in try await self.loadProfile(slug, tx) }
        recentProfiles.withLock { cache in
            if cache.count > 1_000 { cache.removeAll() }
            cache[slug] = (body, now + 2)
        }
        return body
    }

    func loadTemplate(_ id: String, _ tx: any StorageTransaction) async throws -> TemplateInfo {
        guard id.utf8.count <= 64, let r = try await tx.get(kind: PKIKind.template, id: id) else {
            throw EngineError(.notFound, "certificate template '\(id)' not found")
        }
        return try cachedDecode(TemplateInfo.self, r)
    }

    // MARK: - CAs

    public func createCA(_ ctx: CallContext, project: String, _ spec: CASpec) async throws -> CAInfo {
        try Self.validateName(project, "project")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .certificateAuthorities, .create))
        let dn = try Self.distinguishedName(spec.subject)
        let algorithm = spec.keyAlgorithm ?? .rsa2048
        let now = clock()
        let notBefore = now - 60
        if let p = spec.maxPathLength, p < -1 || p > 100 {
            throw EngineError(.invalidArgument, "maxPathLength must be -1…100")
        }
        if let na = spec.notAfter, na <= now { throw EngineError(.invalidArgument, "notAfter must be in the future") }
        let (key, pkcs8) = try Self.generateKey(algorithm)
        let id = RecordID.make()
        let keyID = PKIDER.keyIdentifier(key.publicKey)
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            var info = CAInfo(
                id: id, project: project, type: spec.type, status: .active, subject: spec.subject,
                dn: dn.description, keyAlgorithm: algorithm,
                maxPathLength: spec.maxPathLength ?? (spec.type == .root ? -1 : 0),
                parentCaId: spec.parentCaId, serialNumber: nil, notBefore: nil, notAfter: nil, certificate: nil,
                certificateChain: [], createdAt: now)
            var body = CABody(info: info, sealedKey: Data(), certificateDER: nil, chainDER: [], csrDER: nil)
            switch (spec.type, spec.parentCaId) {
            case (.root, .some):
                throw EngineError(.invalidArgument, "a root CA has no parent")
            case (.root, nil):
                let notAfter = spec.notAfter ?? now + 10 * 365 * 86400
                let cert = try Self.caCertificate(
                    subject: dn, publicKey: key.publicKey, issuer: dn, issuerKey: key, issuerKeyID: keyID,
                    signatureAlgorithm: try Self.signatureAlgorithm(algorithm, allowed: []),
                    pathLength: info.maxPathLength,
                    notBefore: notBefore, notAfter: notAfter, crlURL: nil)
                body.certificateDER = Data(try Self.der(cert))
            case (.intermediate, .some(let parentID)):
                let parent = try await self.loadCA(parentID, tx)
                guard parent.body.info.project == project else {
                    throw EngineError(.invalidArgument, "the parent CA belongs to another project")
                }
                let notAfter = spec.notAfter ?? min(now + 5 * 365 * 86400, parent.body.info.notAfter ?? now)
                try Self.checkNesting(parent: parent, pathLength: info.maxPathLength, notAfter: notAfter)
                let cert = try Self.caCertificate(
                    subject: dn, publicKey: key.publicKey, issuer: try Self.subjectOf(parent), issuerKey: parent.key,
                    issuerKeyID: parent.keyID, signatureAlgorithm: parent.signatureAlgorithm,
                    pathLength: info.maxPathLength,
                    notBefore: notBefore, notAfter: notAfter, crlURL: self.crlURL(parentID))
                body.certificateDER = Data(try Self.der(cert))
                body.chainDER = [parent.body.certificateDER ?? Data()] + parent.body.chainDER
            case (.intermediate, nil):
                let csr = try CertificateSigningRequest(
                    version: .v1, subject: dn, privateKey: key, attributes: .init(),
                    signatureAlgorithm: try Self.signatureAlgorithm(algorithm, allowed: []))
                body.csrDER = Data(try PKIDER.der(csr))
                info.status = .pendingCertificate
            }
            body.info = try Self.describe(body, info)
            body.sealedKey = try await self.keyring.seal(pkcs8, binding: "pki-ca/\(id)/key", tx)
            try await tx.insert(
                Record(kind: PKIKind.ca, id: id, scope: project, name: nil, body: try Self.encode(body), createdAt: now)
            )
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.ca.create", project: project,
                    ["caId": id, "type": spec.type.rawValue, "dn": dn.description]), tx)
            return body.info
        }
    }

    static func subjectOf(_ ca: LoadedCA) throws -> DistinguishedName {
        guard let c = ca.certificate else { throw EngineError(.wrongState, "the CA has no certificate yet") }
        return c.subject
    }

    /// A CA may sign another CA only if its path length allows it, and only within its own validity.
    static func checkNesting(parent: LoadedCA, pathLength: Int, notAfter: Date) throws {
        let p = parent.body.info
        guard p.status == .active, parent.certificate != nil else {
            throw EngineError(.wrongState, "the parent CA is not active")
        }
        if p.maxPathLength == 0 {
            throw EngineError(.invalidArgument, "the parent CA has path length 0 and cannot sign CAs")
        }
        if p.maxPathLength > 0, pathLength < 0 || pathLength >= p.maxPathLength {
            throw EngineError(
                .invalidArgument,
                "maxPathLength must be lower than the parent's (\(p.maxPathLength)); -1 is not allowed below it")
        }
        if let parentEnd = p.notAfter, notAfter > parentEnd {
            throw EngineError(.invalidArgument, "notAfter must not be later than the parent CA's (\(parentEnd))")
        }
    }

    static func caCertificate(
        subject: DistinguishedName, publicKey: Certificate.PublicKey, issuer: DistinguishedName,
        issuerKey: Certificate.PrivateKey, issuerKeyID: [UInt8], signatureAlgorithm: Certificate.SignatureAlgorithm,
        pathLength: Int, notBefore: Date, notAfter: Date, crlURL: String?
    ) throws -> Certificate {
        var extensions: [Certificate.Extension] = [
            try .init(
                BasicConstraints.isCertificateAuthority(maxPathLength: pathLength < 0 ? nil : pathLength),
                critical: true),
            try .init(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true), critical: true),
            try .init(SubjectKeyIdentifier(keyIdentifier: PKIDER.keyIdentifier(publicKey)[...]), critical: false),
            try .init(AuthorityKeyIdentifier(keyIdentifier: issuerKeyID[...]), critical: false),
        ]
        if let crlURL { extensions.append(try PKIDER.crlDistributionPoint(crlURL)) }
        return try Certificate(
            version: .v3, serialNumber: .init(bytes: randomSerial()), publicKey: publicKey, notValidBefore: notBefore,
            notValidAfter: notAfter, issuer: issuer, subject: subject, signatureAlgorithm: signatureAlgorithm,
            extensions: try Certificate.Extensions(extensions), issuerPrivateKey: issuerKey)
    }

    /// Fills the derived facts of a CA from its certificate and chain.
    static func describe(_ body: CABody, _ base: CAInfo) throws -> CAInfo {
        var info = base
        if let der = body.certificateDER {
            let cert = try Certificate(derEncoded: Array(der))
            info.serialNumber = hex(cert.serialNumber.bytes)
            info.notBefore = cert.notValidBefore
            info.notAfter = cert.notValidAfter
            info.certificate = pem(der)
            info.status = info.status == .pendingCertificate ? .active : info.status
        }
        info.certificateChain = body.chainDER.map { pem($0) }
        return info
    }

    public func listCAs(_ ctx: CallContext, project: String) async throws -> [CAInfo] {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .certificateAuthorities, .read))
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            return try await tx.listEvery(kind: PKIKind.ca, scope: project).map {
                try self.decode(CABody.self, $0).info
            }
        }
    }

    func caRecord(_ id: String) async throws -> CABody {
        try await transact { tx in
            guard id.utf8.count <= 64, let r = try await tx.get(kind: PKIKind.ca, id: id) else {
                throw EngineError(.notFound, "certificate authority '\(id)' not found")
            }
            return try self.decode(CABody.self, r)
        }
    }

    public func getCA(_ ctx: CallContext, id: String) async throws -> CAInfo {
        let body = try await caRecord(id)
        try await authorize(ctx, AccessRequest(.project(body.info.project), .certificateAuthorities, .read))
        return body.info
    }

    public func caCertificateRequest(_ ctx: CallContext, id: String) async throws -> String {
        let body = try await caRecord(id)
        try await authorize(ctx, AccessRequest(.project(body.info.project), .certificateAuthorities, .read))
        guard let csr = body.csrDER else {
            throw EngineError(.wrongState, "only an intermediate created without a parent has a certificate request")
        }
        return Self.pem(csr, "CERTIFICATE REQUEST")
    }

    public func importCACertificate(_ ctx: CallContext, id: String, certificate: String, chain: String) async throws
        -> CAInfo
    {
        let existing = try await caRecord(id)
        let decision = try await authorize(
            ctx, AccessRequest(.project(existing.info.project), .certificateAuthorities, .edit))
        guard let cert = try Self.pemCertificates(certificate).first else {
            throw EngineError(.invalidArgument, "certificate must be a PEM certificate")
        }
        let chainCerts = try Self.pemCertificates(chain)
        guard let issuer = chainCerts.first else {
            throw EngineError(.invalidArgument, "chain must hold the issuing CA certificate")
        }
        guard issuer.publicKey.isValidSignature(cert.signature, for: cert), cert.issuer == issuer.subject else {
            throw EngineError(.invalidArgument, "the certificate is not signed by the first certificate of the chain")
        }
        guard let bc = try? cert.extensions.basicConstraints, case .isCertificateAuthority(let pathLength) = bc else {
            throw EngineError(.invalidArgument, "the certificate is not a CA certificate")
        }
        return try await transact { tx in
            guard let record = try await tx.get(kind: PKIKind.ca, id: id) else {
                throw EngineError(.notFound, "CA not found")
            }
            var body = try self.decode(CABody.self, record)
            guard body.info.parentCaId == nil, body.info.type == .intermediate else {
                throw EngineError(
                    .wrongState, "only an intermediate without a Gatehouse parent takes an external certificate")
            }
            let ca = try await self.loadCA(id, tx)
            guard cert.publicKey == ca.key.publicKey else {
                throw EngineError(.invalidArgument, "the certificate is for another key than this CA's")
            }
            body.certificateDER = Data(try Self.der(cert))
            body.chainDER = try chainCerts.map { Data(try Self.der($0)) }
            body.info.maxPathLength = pathLength ?? -1
            body.info.status = .pendingCertificate
            body.info = try Self.describe(body, body.info)
            var updated = record
            updated.body = try Self.encode(body)
            updated.updatedAt = self.clock()
            _ = try await tx.update(updated)
            try await self.audit.append(
                self.allowed(ctx, decision, "pki.ca.import-certificate", project: body.info.project, ["caId": id]), tx)
            return body.info
        }
    }

    public func renewCA(_ ctx: CallContext, id: String, notAfter: Date) async throws -> CAInfo {
        let existing = try await caRecord(id)
        let decision = try await authorize(
            ctx, AccessRequest(.project(existing.info.project), .certificateAuthorities, .edit))
        let now = clock()
        guard notAfter > now else { throw EngineError(.invalidArgument, "notAfter must be in the future") }
        return try await transact { tx in
            guard let record = try await tx.get(kind: PKIKind.ca, id: id) else {
                throw EngineError(.notFound, "CA not found")
            }
            var body = try self.decode(CABody.self, record)
            let ca = try await self.loadCA(id, tx)
            guard let old = ca.certificate, body.info.status == .active else {
                throw EngineError(.wrongState, "the CA is not active")
            }
            let cert: Certificate
            if body.info.type == .root {
                cert = try Self.caCertificate(
                    subject: old.subject, publicKey: ca.key.publicKey, issuer: old.subject, issuerKey: ca.key,
                    issuerKeyID: ca.keyID, signatureAlgorithm: ca.signatureAlgorithm,
                    pathLength: body.info.maxPathLength,
                    notBefore: now - 60, notAfter: notAfter, crlURL: nil)
            } else if let parentID = body.info.parentCaId {
                let parent = try await self.loadCA(parentID, tx)
                try Self.checkNesting(parent: parent, pathLength: body.info.maxPathLength, notAfter: notAfter)
                cert = try Self.caCertificate(
                    subject: old.subject, publicKey: ca.key.publicKey, issuer: try Self.subjectOf(parent),
                    issuerKey: parent.key,
                    issuerKeyID: parent.keyID, signatureAlgorithm: parent.signatureAlgorithm,
                    pathLength: body.info.maxPathLength,
                    notBefore: now - 60, notAfter: notAfter, crlURL: self.crlURL(parentID))
                body.chainDER = [parent.body.certificateDER ?? Data()] + parent.body.chainDER
            } else {
                throw EngineError(
                    .featureNotSupported,
                    "an externally signed CA is renewed by importing a new certificate from its issuer")
            }
            body.certificateDER = Data(try Self.der(cert))
            body.info = try Self.describe(body, body.info)
            var updated = record
            updated.body = try Self.encode(body)
            updated.updatedAt = now
            _ = try await tx.update(updated)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.ca.renew", project: body.info.project, ["caId": id, "notAfter": "\(notAfter)"]),
                tx)
            return body.info
        }
    }

    // MARK: - Templates

    public func createTemplate(_ ctx: CallContext, project: String, _ spec: TemplateSpec) async throws -> TemplateInfo {
        try Self.validateName(project, "project")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .certificateTemplates, .create))
        try PKIPolicy.validate(spec)
        let now = clock()
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let info = TemplateInfo(id: RecordID.make(), project: project, spec: spec, createdAt: now)
            try await tx.insert(
                Record(
                    kind: PKIKind.template, id: info.id, scope: project, name: spec.name, body: try Self.encode(info),
                    createdAt: now))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.template.create", project: project, ["templateId": info.id, "name": spec.name]),
                tx)
            return info
        }
    }

    public func listTemplates(_ ctx: CallContext, project: String) async throws -> [TemplateInfo] {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .certificateTemplates, .read))
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            return try await tx.listEvery(kind: PKIKind.template, scope: project).map {
                try self.decode(TemplateInfo.self, $0)
            }
        }
    }

    public func getTemplate(_ ctx: CallContext, id: String) async throws -> TemplateInfo {
        let t = try await read { tx in try await self.loadTemplate(id, tx) }
        try await authorize(ctx, AccessRequest(.project(t.project), .certificateTemplates, .read))
        return t
    }

    public func deleteTemplate(_ ctx: CallContext, id: String) async throws {
        let t = try await read { tx in try await self.loadTemplate(id, tx) }
        let decision = try await authorize(ctx, AccessRequest(.project(t.project), .certificateTemplates, .delete))
        try await transact { tx in
            let profiles = try await tx.listEvery(kind: PKIKind.profile, scope: AccessKind.org)
            for p in profiles where try self.decode(ProfileBody.self, p).info.templateId == id {
                throw EngineError(.wrongState, "the template is used by profile '\(p.name ?? p.id)'")
            }
            guard let r = try await tx.get(kind: PKIKind.template, id: id) else {
                throw EngineError(.notFound, "template not found")
            }
            try await tx.delete(kind: PKIKind.template, id: id, expectedVersion: r.version)
            try await self.audit.append(
                self.allowed(ctx, decision, "pki.template.delete", project: t.project, ["templateId": id]), tx)
        }
    }

    // MARK: - Profiles

    public func createProfile(_ ctx: CallContext, project: String, _ spec: ProfileSpec) async throws -> ProfileInfo {
        try Self.validateName(project, "project")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .certificateProfiles, .create))
        try Self.validateName(spec.slug, "slug")
        if let ttl = spec.defaultTTL, DurationText.seconds(ttl) == nil {
            throw EngineError(.invalidArgument, "defaultTTL must be a duration such as 30d")
        }
        if spec.enrollment != .api, spec.caId == nil {
            throw EngineError(.invalidArgument, "only API profiles may issue self-signed certificates; name a caId")
        }
        var salt: Data?
        var mac: Data?
        if spec.enrollment == .est {
            guard let est = spec.est else { throw EngineError(.invalidArgument, "an EST profile needs est settings") }
            if let chain = est.bootstrapCAChain, try Self.pemCertificates(chain).isEmpty {
                throw EngineError(.invalidArgument, "est.bootstrapCAChain holds no PEM certificate")
            }
            if let pass = est.passphrase {
                guard pass.utf8.count >= 8, pass.utf8.count <= 256 else {
                    throw EngineError(.invalidArgument, "est.passphrase must be 8–256 bytes")
                }
                let s = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
                salt = s
                mac = Data(HMAC<SHA256>.authenticationCode(for: Array(pass.utf8), using: SymmetricKey(data: s)))
            }
            if est.passphrase == nil, est.bootstrapCAChain == nil, !est.disableBootstrapValidation {
                throw EngineError(
                    .invalidArgument,
                    "an EST profile needs a passphrase, a bootstrap CA chain, or disableBootstrapValidation")
            }
        }
        let now = clock()
        let (passSalt, passMAC) = (salt, mac)
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let template = try await self.loadTemplate(spec.templateId, tx)
            guard template.project == project else {
                throw EngineError(.invalidArgument, "the template belongs to another project")
            }
            if let caId = spec.caId {
                let ca = try await self.loadCA(caId, tx)
                guard ca.body.info.project == project else {
                    throw EngineError(.invalidArgument, "the CA belongs to another project")
                }
            }
            let info = ProfileInfo(
                id: RecordID.make(), slug: spec.slug, project: project, description: spec.description,
                caId: spec.caId, templateId: spec.templateId, enrollment: spec.enrollment,
                estHasPassphrase: passMAC != nil,
                estBootstrapCAChain: spec.est?.bootstrapCAChain,
                estDisableBootstrapValidation: spec.est?.disableBootstrapValidation ?? false,
                estRequireChannelBinding: spec.est?.requireChannelBinding ?? false, defaultTTL: spec.defaultTTL,
                createdAt: now)
            var body = ProfileBody(info: info, passphraseSalt: passSalt, passphraseMAC: passMAC)
            if spec.enrollment == .acme {
                body.eabKeyId = "kid-" + Self.randomToken(12)
                let hmacKey = SymmetricKey(size: .bits256).withUnsafeBytes { [UInt8]($0) }
                body.eabSealedKey = try await self.keyring.seal(hmacKey, binding: "pki-profile/\(info.id)/eab", tx)
            }
            try await tx.insert(
                Record(
                    kind: PKIKind.profile, id: info.id, scope: AccessKind.org, name: spec.slug,
                    body: try Self.encode(body), createdAt: now))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.profile.create", project: project, ["profileId": info.id, "slug": spec.slug]),
                tx)
            return info
        }
    }

    public func listProfiles(_ ctx: CallContext, project: String) async throws -> [ProfileInfo] {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .certificateProfiles, .read))
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            return try await tx.listEvery(kind: PKIKind.profile, scope: AccessKind.org)
                .map { try self.decode(ProfileBody.self, $0).info }.filter { $0.project == project }
        }
    }

    public func getProfile(_ ctx: CallContext, id: String) async throws -> ProfileInfo {
        let (_, body) = try await read { tx in try await self.loadProfile(id, tx) }
        try await authorize(ctx, AccessRequest(.project(body.info.project), .certificateProfiles, .read))
        return body.info
    }

    public func deleteProfile(_ ctx: CallContext, id: String) async throws {
        let (record, body) = try await read { tx in try await self.loadProfile(id, tx) }
        let decision = try await authorize(
            ctx, AccessRequest(.project(body.info.project), .certificateProfiles, .delete))
        try await transact { tx in
            try await tx.delete(kind: PKIKind.profile, id: record.id, expectedVersion: record.version)
            self.recentProfiles.withLock {
                $0[body.info.slug] = nil
                $0[body.info.id] = nil
            }
            try await self.audit.append(
                self.allowed(ctx, decision, "pki.profile.delete", project: body.info.project, ["profileId": record.id]),
                tx)
        }
    }

    // MARK: - Issuance

    /// What one issuance needs once the request is parsed and its caller authorized.
    struct IssueInput {
        var subject: DistinguishedName
        var sans: SubjectAlternativeNames
        var publicKey: Certificate.PublicKey
        var requestedExtensions: Certificate.Extensions?
        var ttl: TimeInterval?
        /// The new key when the server generated it (self-signed certificates sign with it).
        var ownKey: Certificate.PrivateKey?
        var sealKey: [UInt8]?
    }

    /// Checks the template, signs, and stores the certificate in `tx`; returns its info and DER.
    func issue(_ profile: ProfileInfo, _ input: IssueInput, _ tx: any StorageTransaction) async throws -> (
        CertificateInfo, [UInt8]
    ) {
        let template = try await loadTemplate(profile.templateId, tx).spec
        guard let keyAlgorithm = Self.keyAlgorithm(input.publicKey) else {
            throw PKIPolicy.violation("the certified key's algorithm or size is not supported")
        }
        let now = clock()
        let defaultTTL =
            profile.defaultTTL.flatMap(DurationText.seconds) ?? DurationText.seconds(template.maxTTL) ?? 86400
        let lifetime = input.ttl ?? TimeInterval(defaultTTL)
        guard lifetime >= 60 else { throw EngineError(.invalidArgument, "ttl must be at least 60 seconds") }
        var notAfter = now + lifetime
        let ca: LoadedCA?
        let signingKey: Certificate.PrivateKey
        let issuerName: DistinguishedName
        let issuerKeyID: [UInt8]
        let signatureAlgorithm: Certificate.SignatureAlgorithm
        if let caId = profile.caId {
            let loaded = try await loadCA(caId, tx)
            guard loaded.body.info.status == .active, let caCert = loaded.certificate else {
                throw EngineError(.wrongState, "the profile's CA is not active")
            }
            guard caCert.notValidAfter > now else { throw EngineError(.wrongState, "the profile's CA has expired") }
            notAfter = min(notAfter, caCert.notValidAfter)
            ca = loaded
            signingKey = loaded.key
            issuerName = caCert.subject
            issuerKeyID = loaded.keyID
            signatureAlgorithm = try Self.signatureAlgorithm(
                loaded.body.info.keyAlgorithm, allowed: template.signatureAlgorithms)
        } else {
            guard let own = input.ownKey else {
                throw EngineError(
                    .invalidArgument, "a self-signed profile issues only CSR-less (the server makes the key)")
            }
            ca = nil
            signingKey = own
            issuerName = input.subject
            issuerKeyID = PKIDER.keyIdentifier(own.publicKey)
            signatureAlgorithm = try Self.signatureAlgorithm(keyAlgorithm, allowed: template.signatureAlgorithms)
        }
        try PKIPolicy.check(
            template, subject: input.subject, sans: input.sans, keyAlgorithm: keyAlgorithm,
            signatureAlgorithm: PKIDER.signatureName(signatureAlgorithm) ?? "", lifetime: lifetime,
            requested: input.requestedExtensions)
        let sanValues = try PKIPolicy.sanValues(input.sans)
        guard !input.subject.isEmpty || !sanValues.isEmpty else {
            throw EngineError(.invalidArgument, "the certificate needs a subject or at least one SAN")
        }
        var extensions: [Certificate.Extension] = [
            try .init(BasicConstraints.notCertificateAuthority, critical: true),
            try .init(SubjectKeyIdentifier(keyIdentifier: PKIDER.keyIdentifier(input.publicKey)[...]), critical: false),
            try .init(AuthorityKeyIdentifier(keyIdentifier: issuerKeyID[...]), critical: false),
        ]
        if !template.keyUsages.isEmpty {
            extensions.append(try .init(PKIPolicy.keyUsage(template.keyUsages), critical: true))
        }
        let ekus = template.extendedKeyUsages.compactMap { n in PKIPolicy.extendedKeyUsages.first { $0.0 == n }?.1 }
        if !ekus.isEmpty { extensions.append(try .init(try ExtendedKeyUsage(ekus), critical: false)) }
        if !sanValues.isEmpty { extensions.append(try .init(input.sans, critical: input.subject.isEmpty)) }
        if let ca {
            extensions.append(try PKIDER.crlDistributionPoint(crlURL(ca.body.info.id)))
            extensions.append(
                try .init(
                    AuthorityInformationAccess([
                        .init(method: .ocspServer, location: .uniformResourceIdentifier(ocspURL()))
                    ]),
                    critical: false))
        }
        let serial = Self.randomSerial()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(bytes: serial), publicKey: input.publicKey, notValidBefore: now - 60,
            notValidAfter: notAfter, issuer: issuerName, subject: input.subject, signatureAlgorithm: signatureAlgorithm,
            extensions: try Certificate.Extensions(extensions), issuerPrivateKey: signingKey)
        let der = try Self.der(certificate)
        let serialHex = Self.hex(serial)
        // Stored without PEM and chain (see CertificateBody); `describe` fills them in for callers that want them.
        let info = CertificateInfo(
            serialNumber: serialHex, project: profile.project, caId: profile.caId, profileId: profile.id,
            commonName: Self.commonName(input.subject), subject: input.subject.description,
            altNames: sanValues.map { "\($0.0):\($0.1)" }, notBefore: certificate.notValidBefore,
            notAfter: certificate.notValidAfter, status: .active, revokedAt: nil, revocationReason: nil,
            certificate: "", certificateChain: [], hasPrivateKey: input.sealKey != nil)
        var body = CertificateBody(info: info, der: Data(der), sealedKey: nil)
        if let k = input.sealKey {
            body.sealedKey = try await keyring.seal(k, binding: "pki-cert/\(serialHex)/key", tx)
        }
        try await tx.insert(
            Record(
                kind: PKIKind.certificate, id: serialHex, scope: profile.project, name: nil,
                body: try Self.encode(body), createdAt: now))
        return (info, der)
    }

    static func parseCSR(_ der: [UInt8]) throws -> CertificateSigningRequest {
        guard der.count <= 64 * 1024 else { throw EngineError(.invalidArgument, "the CSR is larger than 64 KiB") }
        let csr: CertificateSigningRequest
        do { csr = try CertificateSigningRequest(derEncoded: der) } catch {
            throw EngineError(.invalidArgument, "the CSR is not a DER PKCS#10 request")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw EngineError(.invalidArgument, "the CSR signature does not verify (no proof of possession)")
        }
        return csr
    }

    static func csrDER(_ text: String) throws -> [UInt8] {
        if text.contains("-----BEGIN") {
            guard let doc = try? PEMDocument(pemString: text.trimmingCharacters(in: .whitespacesAndNewlines)),
                doc.discriminator == "CERTIFICATE REQUEST" || doc.discriminator == "NEW CERTIFICATE REQUEST"
            else { throw EngineError(.invalidArgument, "csr is not a PEM CERTIFICATE REQUEST") }
            return doc.derBytes
        }
        // Bare base64 DER, with whatever line breaks or spaces the client left in.
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=".utf8)
        guard let der = try? Base64.decode(bytes: text.utf8.filter(alphabet.contains)), !der.isEmpty else {
            throw EngineError(.invalidArgument, "csr must be PEM or base64 DER")
        }
        return der
    }

    static func requestedExtensions(_ csr: CertificateSigningRequest) throws -> Certificate.Extensions? {
        do { return try csr.attributes.extensionRequest?.extensions } catch {
            throw EngineError(.invalidArgument, "the CSR's extension request is malformed")
        }
    }

    public func issueCertificate(_ ctx: CallContext, profile: String, _ request: IssuanceRequest) async throws
        -> IssuedCertificate
    {
        let (_, body) = try await read { tx in try await self.loadProfile(profile, tx) }
        let p = body.info
        let decision = try await authorize(
            ctx, AccessRequest(.project(p.project), .certificates, .create, ["profile": p.slug]))
        guard p.enrollment == .api else {
            throw EngineError(
                .invalidArgument, "profile '\(p.slug)' enrolls over \(p.enrollment.rawValue), not the API")
        }
        let ttl: TimeInterval? = try request.ttl.map { t in
            guard let s = DurationText.seconds(t) else {
                throw EngineError(.invalidArgument, "ttl must be a duration such as 30d")
            }
            return TimeInterval(s)
        }
        var input: IssueInput
        var keyPEM: String?
        if let csrText = request.csr {
            let csr = try Self.parseCSR(try Self.csrDER(csrText))
            let requested = try Self.requestedExtensions(csr)
            var sans = (try? requested?.subjectAlternativeNames) ?? SubjectAlternativeNames()
            if let extra = request.altNames, !extra.isEmpty {
                sans = SubjectAlternativeNames(try extra.map(PKIPolicy.parseAltName))
            }
            input = IssueInput(
                subject: csr.subject, sans: sans ?? SubjectAlternativeNames(), publicKey: csr.publicKey,
                requestedExtensions: requested, ttl: ttl)
        } else {
            guard
                let cn = request.commonName
                    ?? request.altNames?.first.map({ String($0.split(separator: ":").last ?? "") })
            else {
                throw EngineError(.invalidArgument, "give a csr, or a commonName / altNames for CSR-less issuance")
            }
            let template = try await read { tx in try await self.loadTemplate(p.templateId, tx) }.spec
            let algorithm = request.keyAlgorithm ?? template.keyAlgorithms.first ?? .ecP256
            let (key, pkcs8) = try Self.generateKey(algorithm)
            let subject = request.commonName == nil ? DistinguishedName() : try DistinguishedName { CommonName(cn) }
            input = IssueInput(
                subject: subject,
                sans: SubjectAlternativeNames(try (request.altNames ?? []).map(PKIPolicy.parseAltName)),
                publicKey: key.publicKey, requestedExtensions: nil, ttl: ttl, ownKey: key, sealKey: pkcs8)
            keyPEM = Self.pem(pkcs8, "PRIVATE KEY")
        }
        let issueInput = input
        let info = try await transact { tx in
            let (slim, der) = try await self.issue(p, issueInput, tx)
            let info = try await self.describe(CertificateBody(info: slim, der: Data(der)), tx)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.certificate.issue", project: p.project,
                    [
                        "serialNumber": info.serialNumber, "profile": p.slug, "subject": info.subject,
                        "csr": request.csr == nil ? "no" : "yes",
                    ]),
                tx)
            return info
        }
        return IssuedCertificate(certificate: info, privateKey: keyPEM)
    }

    func certificateBody(_ serial: String) async throws -> (Record, CertificateBody) {
        let s = serial.lowercased().replacingOccurrences(of: ":", with: "")
        guard !s.isEmpty, s.utf8.count <= 64 else { throw EngineError(.notFound, "certificate not found") }
        return try await read { tx in
            guard let r = try await tx.get(kind: PKIKind.certificate, id: s) else {
                throw EngineError(.notFound, "certificate '\(serial)' not found")
            }
            return (r, try self.decode(CertificateBody.self, r))
        }
    }

    /// The full facts of a stored certificate: PEM, the issuer chain, and `expired` once past its end.
    func describe(_ body: CertificateBody, _ tx: any StorageTransaction) async throws -> CertificateInfo {
        var i = body.info
        i.certificate = Self.pem(body.der)
        if let caId = i.caId, let ca = try? await loadCA(caId, tx) {
            i.certificateChain = ([ca.body.certificateDER ?? Data()] + ca.body.chainDER).map { Self.pem($0) }
        }
        if i.status == .active, i.notAfter < clock() { i.status = .expired }
        return i
    }

    public func getCertificate(_ ctx: CallContext, serial: String) async throws -> CertificateInfo {
        let (_, body) = try await certificateBody(serial)
        try await authorize(ctx, AccessRequest(.project(body.info.project), .certificates, .read))
        return try await read { tx in try await self.describe(body, tx) }
    }

    public func listCertificates(_ ctx: CallContext, project: String, _ query: CertificateQuery) async throws
        -> Page<CertificateInfo>
    {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .certificates, .read))
        _ = try await read { tx in try await self.requireProject(project, tx) }
        let now = clock()
        let plan = certificatePlan(query, now: now)
        // The index narrows by one filter and the expiry range; the others are checked on each certificate.
        let page = try await indexedPage(
            kind: PKIKind.certificate, index: plan.index, scope: project, lower: plan.lower, upper: plan.upper,
            descending: query.latestFirst, after: query.after, limit: max(1, min(query.limit, 1000))
        ) { record -> CertificateBody? in
            let body = try self.decode(CertificateBody.self, record)
            let c = body.info
            let status: CertificateInfo.Status = c.status == .active && c.notAfter < now ? .expired : c.status
            if let ca = query.caId, c.caId != ca { return nil }
            if let profile = query.profileId, c.profileId != profile { return nil }
            if let wanted = query.status, status != wanted { return nil }
            if let name = query.name?.lowercased(),
                !([c.commonName] + c.altNames).contains(where: { $0.lowercased() == name })
            {
                return nil
            }
            if let from = query.expiresAfter, c.notAfter < from { return nil }
            if let until = query.expiresBefore, c.notAfter >= until { return nil }
            return body
        }
        let items = try await read { tx in
            var out: [CertificateInfo] = []
            for body in page.items { out.append(try await self.describe(body, tx)) }
            return out
        }
        return Page(items: items, next: page.next)
    }

    public func revokeCertificate(_ ctx: CallContext, serial: String, reason: RevocationReason) async throws
        -> CertificateInfo
    {
        let (_, existing) = try await certificateBody(serial)
        let decision = try await authorize(ctx, AccessRequest(.project(existing.info.project), .certificates, .revoke))
        guard reason != .removeFromCRL else {
            throw EngineError(.invalidArgument, "removeFromCRL is not a revocation reason")
        }
        let now = clock()
        return try await transact { tx in
            guard var record = try await tx.get(kind: PKIKind.certificate, id: existing.info.serialNumber) else {
                throw EngineError(.notFound, "certificate not found")
            }
            var body = try self.decode(CertificateBody.self, record)
            guard body.info.status != .revoked else {
                throw EngineError(.wrongState, "the certificate is already revoked")
            }
            try await self.markRevoked(&record, &body, reason: reason, now: now, tx)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.certificate.revoke", project: body.info.project,
                    ["serialNumber": body.info.serialNumber, "reason": reason.rawValue]),
                tx)
            return try await self.describe(body, tx)
        }
    }

    /// Revokes a stored certificate in `tx`: its record, the CA's revocation list entry, a regenerated CRL.
    func markRevoked(
        _ record: inout Record, _ body: inout CertificateBody, reason: RevocationReason, now: Date,
        _ tx: any StorageTransaction
    ) async throws {
        body.info.status = .revoked
        body.info.revokedAt = now
        body.info.revocationReason = reason
        record.body = try Self.encode(body)
        record.updatedAt = now
        _ = try await tx.update(record)
        if let caId = body.info.caId {
            try await tx.insert(
                Record(
                    kind: PKIKind.revoked, id: "\(caId)/\(body.info.serialNumber)", scope: caId, name: nil,
                    body: try Self.encode(RevokedBody(serial: body.info.serialNumber, revokedAt: now, reason: reason)),
                    createdAt: now))
            _ = try await regenerateCRL(caId, tx)
        }
    }

    public func certificatePrivateKey(_ ctx: CallContext, serial: String) async throws -> SecretBytes {
        let (_, existing) = try await certificateBody(serial)
        let decision = try await authorize(ctx, AccessRequest(.project(existing.info.project), .certificates, .export))
        guard let sealed = existing.sealedKey else {
            throw EngineError(.wrongState, "the server does not hold this certificate's private key")
        }
        return try await transact { tx in
            let pkcs8 = try await self.keyring.open(sealed, binding: "pki-cert/\(existing.info.serialNumber)/key", tx)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.certificate.export-key", project: existing.info.project,
                    ["serialNumber": existing.info.serialNumber]),
                tx)
            return SecretBytes(Array(Self.pem(pkcs8, "PRIVATE KEY").utf8))
        }
    }

    public func exportPKCS12(_ ctx: CallContext, serial: String, password: String, alias: String?) async throws
        -> [UInt8]
    {
        let (_, existing) = try await certificateBody(serial)
        let decision = try await authorize(ctx, AccessRequest(.project(existing.info.project), .certificates, .export))
        guard !password.isEmpty, password.utf8.count <= 256, !password.utf8.contains(0) else {
            throw EngineError(.invalidArgument, "password must be 1–256 bytes (PKCS#12 archives are always encrypted)")
        }
        let name = alias ?? existing.info.commonName
        guard name.utf8.count <= 256, !name.utf8.contains(0) else {
            throw EngineError(.invalidArgument, "alias is too long")
        }
        guard let sealed = existing.sealedKey else {
            throw EngineError(.wrongState, "the server does not hold this certificate's private key")
        }
        return try await transact { tx in
            let pkcs8 = try await self.keyring.open(sealed, binding: "pki-cert/\(existing.info.serialNumber)/key", tx)
            var chain: [[UInt8]] = []
            if let caId = existing.info.caId {
                let ca = try await self.loadCA(caId, tx)
                chain = ([ca.body.certificateDER ?? Data()] + ca.body.chainDER).map { Array($0) }
            }
            let archive: [UInt8]
            do {
                archive = try PKCS12Archive.make(
                    certificate: Array(existing.der), chain: chain, privateKeyPKCS8: pkcs8, password: password,
                    alias: name)
            } catch {
                throw EngineError(.internal, "cannot build the PKCS#12 archive", diagnostic: "\(error)")
            }
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.certificate.export-pkcs12", project: existing.info.project,
                    ["serialNumber": existing.info.serialNumber]), tx)
            return archive
        }
    }

    // MARK: - CRL and OCSP

    func regenerateCRL(_ caId: String, _ tx: any StorageTransaction) async throws -> [UInt8] {
        let ca = try await loadCA(caId, tx)
        guard let caCert = ca.certificate else { throw EngineError(.wrongState, "the CA has no certificate yet") }
        var entries: [PKIDER.RevokedEntry] = []
        var after: String?
        while true {
            let batch = try await tx.list(kind: PKIKind.revoked, scope: caId, afterID: after, limit: 1000)
            if batch.isEmpty { break }
            for r in batch {
                let b = try decode(RevokedBody.self, r)
                guard let serial = Self.bytes(hex: b.serial) else { continue }
                entries.append(.init(serial: serial, date: b.revokedAt, reason: b.reason))
            }
            after = batch.last?.id
        }
        let existing = try await tx.get(kind: PKIKind.crl, id: caId)
        let number = try existing.map { try decode(CRLBody.self, $0).number + 1 } ?? 1
        let now = clock()
        let der = try PKIDER.crl(
            issuer: caCert.subject, issuerKey: ca.key, signatureAlgorithm: ca.signatureAlgorithm,
            authorityKeyID: ca.keyID,
            number: number, thisUpdate: now - 60, nextUpdate: now + Self.crlLifetime, entries: entries)
        let body = CRLBody(der: Data(der), number: number, thisUpdate: now, nextUpdate: now + Self.crlLifetime)
        if var record = existing {
            record.body = try Self.encode(body)
            record.updatedAt = now
            _ = try await tx.update(record)
        } else {
            try await tx.insert(
                Record(
                    kind: PKIKind.crl, id: caId, scope: ca.body.info.project, name: nil, body: try Self.encode(body),
                    createdAt: now))
        }
        return der
    }

    static func bytes(hex: String) -> [UInt8]? {
        let chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let b = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(b)
            i += 2
        }
        return out
    }

    public func crl(caId: String) async throws -> [UInt8] {
        try await transact { tx in
            guard caId.utf8.count <= 64, try await tx.get(kind: PKIKind.ca, id: caId) != nil else {
                throw EngineError(.notFound, "certificate authority not found")
            }
            if let r = try await tx.get(kind: PKIKind.crl, id: caId) {
                let b = try self.decode(CRLBody.self, r)
                // Regenerated once half its lifetime has passed, so relying parties never see an expired CRL.
                if b.nextUpdate.timeIntervalSince(self.clock()) > Self.crlLifetime / 2 { return Array(b.der) }
            }
            return try await self.regenerateCRL(caId, tx)
        }
    }

    /// Regenerates the CRLs that passed half their lifetime (the daemon calls this on a schedule).
    public func refreshCRLs() async throws -> Int {
        let ids = try await transact { tx in
            try await tx.listEvery(kind: PKIKind.ca, scope: nil).map(\.id)
        }
        var n = 0
        for id in ids {
            let stale = try await transact { tx -> Bool in
                guard let r = try await tx.get(kind: PKIKind.crl, id: id) else { return true }
                return try self.decode(CRLBody.self, r).nextUpdate.timeIntervalSince(self.clock()) <= Self.crlLifetime
                    / 2
            }
            guard stale else { continue }
            do {
                _ = try await crl(caId: id)
                n += 1
            } catch let e as EngineError where e.code == .wrongState {
                continue  // pending intermediate
            }
        }
        return n
    }

    public func ocsp(request: [UInt8]) async throws -> [UInt8] {
        guard request.count <= 16 * 1024, let parsed = try? PKIDER.parseOCSPRequest(request) else {
            return PKIDER.ocspFailure(1)  // malformedRequest
        }
        let now = clock()
        do {
            return try await transact(relaxed: true) { tx -> [UInt8] in
                var signer: LoadedCA?
                var singles: [PKIDER.OCSPSingle] = []
                for certID in parsed.certIDs {
                    // The issuer: the CA of the certificate with that serial, else any CA matching the hashes.
                    var ca: LoadedCA?
                    var status: PKIDER.OCSPStatus = .unknown
                    if let r = try await tx.get(kind: PKIKind.certificate, id: Self.hex(certID.serial)) {
                        let body = try self.decode(CertificateBody.self, r)
                        if let caId = body.info.caId {
                            let candidate = try await self.loadCA(caId, tx)
                            if self.ocspMatches(candidate, certID) {
                                ca = candidate
                                status =
                                    body.info.status == .revoked
                                    ? .revoked(body.info.revokedAt ?? now, body.info.revocationReason ?? .unspecified)
                                    : .good
                            }
                        }
                    }
                    if ca == nil {
                        for r in try await tx.listEvery(kind: PKIKind.ca, scope: nil) {
                            let candidate = try await self.loadCA(r.id, tx)
                            if self.ocspMatches(candidate, certID) {
                                ca = candidate
                                break
                            }
                        }
                    }
                    guard let ca else { return PKIDER.ocspFailure(6) }  // unauthorized: not our issuer
                    if let s = signer, s.body.info.id != ca.body.info.id { return PKIDER.ocspFailure(6) }
                    signer = ca
                    singles.append(
                        .init(certID: certID, status: status, thisUpdate: now - 60, nextUpdate: now + Self.ocspLifetime)
                    )
                }
                guard let signer else { return PKIDER.ocspFailure(1) }
                return try PKIDER.ocspResponse(
                    responderKeyHash: signer.keyID, producedAt: now, responses: singles, nonce: parsed.nonce,
                    key: signer.key,
                    algorithm: signer.signatureAlgorithm, certificates: [])
            }
        } catch {
            logger.error("OCSP responder failed", metadata: ["error": "\(error)"])
            return PKIDER.ocspFailure(2)  // internalError
        }
    }

    func ocspMatches(_ ca: LoadedCA, _ id: PKIDER.OCSPCertID) -> Bool {
        guard let cert = ca.certificate, let nameDER = try? PKIDER.der(cert.subject),
            let nameHash = PKIDER.hash(id.hashAlgorithm, nameDER),
            let keyHash = PKIDER.hash(id.hashAlgorithm, Array(ca.key.publicKey.subjectPublicKeyInfoBytes))
        else { return false }
        return nameHash == id.issuerNameHash && keyHash == id.issuerKeyHash
    }
}
