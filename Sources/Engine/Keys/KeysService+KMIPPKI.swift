import Crypto
import EngineAPI
import Foundation
import StorageAPI
import SwiftASN1
import X509
import _CryptoExtras

/// Stored form of the organization's KMIP client CA: public facts, the sealed PKCS#8 key and the certificate.
struct KMIPPKIBody: Codable {
    var keyAlgorithm: PKIKeyAlgorithm
    var sealedKey: Data
    var certificateDER: Data
    var createdAt: Date
}

enum KMIPPKIKind {
    static let kind = "kmip-pki"
    static let clientCA = "client-ca"
}

/// The organization's KMIP client PKI (like the reference platform's per-organization KMIP PKI): one CA, generated on
/// demand with a chosen key algorithm, that issues KMIP clients' TLS certificates over their own public keys. The
/// KMIP listener trusts it next to its configured client CA (`kmipClientCACertificates`, refreshed by the daemon and
/// pushed to `observeKMIPClientCAs` when this node creates it). Only organization admins set it up or issue from it:
/// a certificate from it authenticates as whichever identity accepts its common name.
extension KeysService {
    static let kmipClientCALifetime: TimeInterval = 10 * 365 * 86400
    static let kmipClientMaxTTL = 10 * 365 * 86400

    public func kmipPKI(_ ctx: CallContext) async throws -> KMIPPKIInfo {
        try await authorize(ctx, AccessRequest(.organization, .kmip, .read))
        guard let body = try await transact({ tx in try await self.kmipPKIBody(tx) }) else {
            throw EngineError(.notFound, "the KMIP PKI is not set up")
        }
        let info = try Self.describe(body)
        kmipClientCAsCreated([info.caCertificate])
        return info
    }

    public func setUpKMIPPKI(_ ctx: CallContext, keyAlgorithm: PKIKeyAlgorithm) async throws -> KMIPPKIInfo {
        let decision = try await authorize(ctx, AccessRequest(.organization, .kmip, .create))
        let body = try await transact { tx in
            if try await self.kmipPKIBody(tx) != nil {
                throw EngineError(.alreadyExists, "the KMIP PKI is already set up")
            }
            return try await self.createKMIPPKI(ctx, decision, keyAlgorithm, tx)
        }
        return try Self.describe(body)
    }

    public func issueKMIPClientCertificate(_ ctx: CallContext, _ request: KMIPClientCertificateRequest) async throws
        -> KMIPClientCertificate
    {
        let decision = try await authorize(
            ctx, AccessRequest(.organization, .kmip, .create, ["name": request.commonName]))
        try Self.validateName(request.commonName, "commonName")
        guard !bootstrapAdmins.contains(request.commonName) else {
            throw EngineError(
                .invalidArgument,
                "'\(request.commonName)' is a bootstrap admin name; KMIP clients need names of their own")
        }
        guard let ttl = DurationText.seconds(request.ttl ?? "365d"), ttl >= 60, ttl <= Self.kmipClientMaxTTL else {
            throw EngineError(.invalidArgument, "ttl must be a duration from 60s to 3650d")
        }
        let publicKey: Certificate.PublicKey
        do {
            let document = try PEMDocument(pemString: request.publicKey)
            guard document.discriminator == "PUBLIC KEY" else {
                throw EngineError(.invalidArgument, "not a PUBLIC KEY")
            }
            publicKey = try Certificate.PublicKey(derEncoded: document.derBytes)
        } catch {
            throw EngineError(
                .invalidArgument, "publicKey must be a PEM SubjectPublicKeyInfo (-----BEGIN PUBLIC KEY-----)")
        }
        guard let clientAlgorithm = PKIService.keyAlgorithm(publicKey) else {
            throw EngineError(.invalidArgument, "the client key must be RSA 2048/3072/4096, EC P-256/P-384 or Ed25519")
        }
        let now = clock()
        // Two nodes may generate the PKI at once: the loser's insert fails and it issues from the winner's CA.
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await issueKMIPClientCertificate(
                    ctx, decision, request, ttl, publicKey, clientAlgorithm, now)
            } catch let e as EngineError where e.code == .alreadyExists && attempt < 2 {
                continue
            }
        }
    }

    func issueKMIPClientCertificate(
        _ ctx: CallContext, _ decision: Decision, _ request: KMIPClientCertificateRequest, _ ttl: Int,
        _ publicKey: Certificate.PublicKey,
        _ clientAlgorithm: PKIKeyAlgorithm, _ now: Date
    ) async throws -> KMIPClientCertificate {
        let (body, created, issued) = try await transact { tx -> (KMIPPKIBody, Bool, KMIPClientCertificate) in
            var created = false
            var body = try await self.kmipPKIBody(tx)
            if body == nil {
                body = try await self.createKMIPPKI(ctx, decision, request.caKeyAlgorithm ?? .ecP256, tx)
                created = true
            }
            guard let body else { throw EngineError(.internal, "the KMIP PKI is missing") }
            let pkcs8 = try await self.keyring.open(body.sealedKey, binding: Self.kmipCAKeyBinding, tx)
            let caKey: Certificate.PrivateKey
            let ca: Certificate
            do {
                caKey = try Certificate.PrivateKey(derBytes: pkcs8)
                ca = try Certificate(derEncoded: Array(body.certificateDER))
            } catch {
                throw EngineError(.internal, "the KMIP CA is unreadable", diagnostic: "\(error)")
            }
            let notBefore = now - 60
            let notAfter = min(now + TimeInterval(ttl), ca.notValidAfter)
            let serial = PKIService.randomSerial()
            let isRSA = [.rsa2048, .rsa3072, .rsa4096].contains(clientAlgorithm)
            let certificate: Certificate
            do {
                certificate = try Certificate(
                    version: .v3, serialNumber: .init(bytes: serial[...]), publicKey: publicKey,
                    notValidBefore: notBefore,
                    notValidAfter: notAfter, issuer: ca.subject,
                    subject: try DistinguishedName {
                        OrganizationName("Gatehouse KMIP")
                        CommonName(request.commonName)
                    },
                    signatureAlgorithm: try PKIService.signatureAlgorithm(body.keyAlgorithm, allowed: []),
                    extensions: try Certificate.Extensions {
                        Critical(BasicConstraints.notCertificateAuthority)
                        Critical(KeyUsage(digitalSignature: true, keyEncipherment: isRSA))
                        try ExtendedKeyUsage([.clientAuth])
                        SubjectKeyIdentifier(keyIdentifier: PKIDER.keyIdentifier(publicKey)[...])
                        AuthorityKeyIdentifier(keyIdentifier: PKIDER.keyIdentifier(ca.publicKey)[...])
                    },
                    issuerPrivateKey: caKey)
            } catch let e as EngineError {
                throw e
            } catch {
                throw EngineError(.internal, "cannot sign the KMIP client certificate", diagnostic: "\(error)")
            }
            let serialHex = PKIService.hex(serial)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "kmip.client.certificate.issue", project: nil,
                    [
                        "commonName": request.commonName, "serialNumber": serialHex,
                        "keyAlgorithm": clientAlgorithm.rawValue,
                        "notAfter": ISO8601DateFormatter().string(from: notAfter),
                    ]), tx)
            let issued = KMIPClientCertificate(
                certificate: PKIService.pem(try PKIService.der(certificate)),
                certificateChain: [PKIService.pem(Array(body.certificateDER))],
                serialNumber: serialHex, notAfter: notAfter)
            return (body, created, issued)
        }
        if created { kmipClientCAsCreated([PKIService.pem(Array(body.certificateDER))]) }
        return issued
    }

    public func kmipClientCACertificates() async throws -> [String] {
        guard let body = try await transact({ tx in try await self.kmipPKIBody(tx) }) else { return [] }
        rememberKMIPClientCA(body.certificateDER)
        return [PKIService.pem(Array(body.certificateDER))]
    }

    static let kmipCAKeyBinding = "kmip-pki/client-ca/key"

    /// Keeps the CA's key identifier for `issuedByKMIPClientCA` (the listener trusts the CA only after this ran
    /// on this node: at startup, on each refresh, or when this node created it).
    func rememberKMIPClientCA(_ der: Data) {
        if core.kmipClientCA.withLock({ $0?.der == der }) { return }
        guard let certificate = try? Certificate(derEncoded: Array(der)) else { return }
        let keyID = PKIDER.keyIdentifier(certificate.publicKey)
        core.kmipClientCA.withLock { $0 = (der, keyID) }
        core.kmipIssuedVerdicts.withLock { $0.removeAll() }
    }

    func kmipPKIBody(_ tx: any StorageTransaction) async throws -> KMIPPKIBody? {
        guard let record = try await tx.get(kind: KMIPPKIKind.kind, id: KMIPPKIKind.clientCA) else { return nil }
        return try cachedDecode(KMIPPKIBody.self, record)
    }

    /// Generates the CA (self-signed, path length 0) and stores it with its key sealed under the root key.
    func createKMIPPKI(
        _ ctx: CallContext, _ decision: Decision, _ algorithm: PKIKeyAlgorithm, _ tx: any StorageTransaction
    )
        async throws -> KMIPPKIBody
    {
        let now = clock()
        let (key, pkcs8) = try PKIService.generateKey(algorithm)
        let dn = try Self.kmipClientCASubject
        let keyID = PKIDER.keyIdentifier(key.publicKey)
        let certificate = try PKIService.caCertificate(
            subject: dn, publicKey: key.publicKey, issuer: dn, issuerKey: key, issuerKeyID: keyID,
            signatureAlgorithm: try PKIService.signatureAlgorithm(algorithm, allowed: []), pathLength: 0,
            notBefore: now - 60, notAfter: now + Self.kmipClientCALifetime, crlURL: nil)
        let body = KMIPPKIBody(
            keyAlgorithm: algorithm, sealedKey: try await keyring.seal(pkcs8, binding: Self.kmipCAKeyBinding, tx),
            certificateDER: Data(try PKIService.der(certificate)), createdAt: now)
        rememberKMIPClientCA(body.certificateDER)
        try await tx.insert(
            Record(
                kind: KMIPPKIKind.kind, id: KMIPPKIKind.clientCA, scope: AccessKind.org, name: nil,
                body: try Self.encode(body), createdAt: now))
        try await audit.append(
            allowed(
                ctx, decision, "kmip.pki.create", project: nil,
                ["keyAlgorithm": algorithm.rawValue, "dn": dn.description]), tx)
        return body
    }

    static func describe(_ body: KMIPPKIBody) throws -> KMIPPKIInfo {
        let certificate: Certificate
        do { certificate = try Certificate(derEncoded: Array(body.certificateDER)) } catch {
            throw EngineError(.internal, "the KMIP CA certificate is unreadable", diagnostic: "\(error)")
        }
        return KMIPPKIInfo(
            keyAlgorithm: body.keyAlgorithm, caCertificate: PKIService.pem(Array(body.certificateDER)),
            serialNumber: PKIService.hex(certificate.serialNumber.bytes), notBefore: certificate.notValidBefore,
            notAfter: certificate.notValidAfter, createdAt: body.createdAt)
    }

    // MARK: - KMIP Certify

    /// KMIP Certify (see `KeyEngine.certify`).
    public func certify(
        _ ctx: CallContext, project explicit: String?, publicKeyID: String?, csrDER: [UInt8]?, commonName: String?,
        names: [String]
    ) async throws
        -> ManagedObject
    {
        let project: String
        var publicKey: Certificate.PublicKey
        var subject: DistinguishedName
        var sans = SubjectAlternativeNames()
        var requested: Certificate.Extensions?
        var keyMeta: ManagedObject?
        if let csrDER {
            let csr = try PKIService.parseCSR(csrDER)
            publicKey = csr.publicKey
            subject = csr.subject
            requested = try PKIService.requestedExtensions(csr)
            sans = (try? requested?.subjectAlternativeNames) ?? SubjectAlternativeNames()
            project = try await keyProject(ctx, explicit: explicit)
        } else if let publicKeyID {
            let (meta, material) = try await getObject(ctx, id: publicKeyID)
            guard meta.objectType == .publicKey, let der = material?.bytes else {
                throw EngineError(.invalidArgument, "Certify needs a public key (or a certificate request)")
            }
            publicKey = try Self.certificatePublicKey(meta, der)
            guard let cn = commonName ?? meta.names.first else {
                throw EngineError(
                    .invalidArgument,
                    "name the certificate's subject: a Certificate Subject CN, or a Name on the public key")
            }
            subject = try DistinguishedName { CommonName(cn) }
            project = meta.project
            keyMeta = meta
        } else {
            throw EngineError(.invalidArgument, "Certify needs a public key or a certificate request")
        }
        let profile = try await transact { tx -> ProfileInfo? in
            try await tx.listEvery(kind: PKIKind.profile, scope: AccessKind.org)
                .map { try self.decode(ProfileBody.self, $0).info }.first {
                    $0.project == project && $0.enrollment == .kmip
                }
        }
        guard let profile else {
            throw EngineError(
                .featureNotSupported, "project '\(project)' has no certificate profile with enrollment method kmip")
        }
        let decision = try await authorize(
            ctx, AccessRequest(.project(project), .certificates, .create, ["profile": profile.slug]))
        let input = PKIService.IssueInput(
            subject: subject, sans: sans, publicKey: publicKey, requestedExtensions: requested, ttl: nil)
        let der = try await transact { tx in
            let (slim, der) = try await self.issuer.issue(profile, input, tx)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.certificate.issue", project: project,
                    [
                        "serialNumber": slim.serialNumber, "profile": profile.slug, "subject": slim.subject,
                        "csr": csrDER == nil ? "no" : "yes",
                    ]), tx)
            return der
        }
        var spec = ObjectSpec(objectType: .certificate, names: names, dataType: 1)
        spec.activationDate = clock()
        var certificate = try await registerObject(ctx, project: project, spec, material: SecretBytes(der))
        if let keyMeta {
            let certID = certificate.id
            _ = try await linkObjects(ctx, certID, ObjectLink(type: ObjectLink.publicKey, id: keyMeta.id))
            _ = try await linkObjects(ctx, keyMeta.id, ObjectLink(type: ObjectLink.certificate, id: certID))
            certificate.links = [ObjectLink(type: ObjectLink.publicKey, id: keyMeta.id)]
        }
        return certificate
    }

    /// A stored public key (PKCS#1 RSA, SubjectPublicKeyInfo EC / Ed25519) as a certificate's key.
    static func certificatePublicKey(_ meta: ManagedObject, _ der: [UInt8]) throws -> Certificate.PublicKey {
        do {
            switch (meta.algorithm, meta.cryptographicLength) {
            case (Algorithm.rsa?, _): return Certificate.PublicKey(try _RSA.Signing.PublicKey(derRepresentation: der))
            case (Algorithm.ed25519?, _):
                return Certificate.PublicKey(
                    try Curve25519.Signing.PublicKey(rawRepresentation: try Ed25519DER.publicKey(der)))
            case (_, 256): return Certificate.PublicKey(try P256.Signing.PublicKey(derRepresentation: der))
            case (_, 384): return Certificate.PublicKey(try P384.Signing.PublicKey(derRepresentation: der))
            case (_, 521): return Certificate.PublicKey(try P521.Signing.PublicKey(derRepresentation: der))
            default:
                throw EngineError(.featureNotSupported, "keys of algorithm \(meta.algorithm ?? 0) cannot be certified")
            }
        } catch let e as EngineError {
            throw e
        } catch {
            throw EngineError(.invalidArgument, "the public key is unusable", diagnostic: "\(error)")
        }
    }

}
