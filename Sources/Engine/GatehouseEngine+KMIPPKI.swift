import Crypto
import EngineAPI
import Foundation
import StorageAPI
import SwiftASN1
import X509

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
extension GatehouseEngine {
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
        guard let clientAlgorithm = Self.keyAlgorithm(publicKey) else {
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
            let serial = Self.randomSerial()
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
                    signatureAlgorithm: try Self.signatureAlgorithm(body.keyAlgorithm, allowed: []),
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
            let serialHex = Self.hex(serial)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "kmip.client.certificate.issue", project: nil,
                    [
                        "commonName": request.commonName, "serialNumber": serialHex,
                        "keyAlgorithm": clientAlgorithm.rawValue,
                        "notAfter": ISO8601DateFormatter().string(from: notAfter),
                    ]), tx)
            let issued = KMIPClientCertificate(
                certificate: Self.pem(try Self.der(certificate)),
                certificateChain: [Self.pem(Array(body.certificateDER))],
                serialNumber: serialHex, notAfter: notAfter)
            return (body, created, issued)
        }
        if created { kmipClientCAsCreated([Self.pem(Array(body.certificateDER))]) }
        return issued
    }

    public func kmipClientCACertificates() async throws -> [String] {
        guard let body = try await transact({ tx in try await self.kmipPKIBody(tx) }) else { return [] }
        rememberKMIPClientCA(body.certificateDER)
        return [Self.pem(Array(body.certificateDER))]
    }

    /// Keeps the CA's key identifier for `issuedByKMIPClientCA` (the listener trusts the CA only after this ran
    /// on this node: at startup, on each refresh, or when this node created it).
    func rememberKMIPClientCA(_ der: Data) {
        if kmipClientCA.withLock({ $0?.der == der }) { return }
        guard let certificate = try? Certificate(derEncoded: Array(der)) else { return }
        let keyID = PKIDER.keyIdentifier(certificate.publicKey)
        kmipClientCA.withLock { $0 = (der, keyID) }
        kmipIssuedVerdicts.withLock { $0.removeAll() }
    }

    /// Whether the principal's certificate was issued by the KMIP client CA (its Authority Key Identifier is the
    /// CA's key identifier).
    func issuedByKMIPClientCA(_ principal: Principal) -> Bool {
        guard let keyID = kmipClientCA.withLock({ $0?.keyID }) else { return false }
        if let known = kmipIssuedVerdicts.withLock({ $0[principal.id] }) { return known }
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
        kmipIssuedVerdicts.withLock { cache in
            if cache.count > 1_000 { cache.removeAll() }
            cache[principal.id] = verdict
        }
        return verdict
    }

    static let kmipCAKeyBinding = "kmip-pki/client-ca/key"
    static var kmipClientCASubject: DistinguishedName {
        get throws {
            try DistinguishedName {
                OrganizationName("Gatehouse")
                CommonName("Gatehouse KMIP Client CA")
            }
        }
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
        let (key, pkcs8) = try Self.generateKey(algorithm)
        let dn = try Self.kmipClientCASubject
        let keyID = PKIDER.keyIdentifier(key.publicKey)
        let certificate = try Self.caCertificate(
            subject: dn, publicKey: key.publicKey, issuer: dn, issuerKey: key, issuerKeyID: keyID,
            signatureAlgorithm: try Self.signatureAlgorithm(algorithm, allowed: []), pathLength: 0,
            notBefore: now - 60, notAfter: now + Self.kmipClientCALifetime, crlURL: nil)
        let body = KMIPPKIBody(
            keyAlgorithm: algorithm, sealedKey: try await keyring.seal(pkcs8, binding: Self.kmipCAKeyBinding, tx),
            certificateDER: Data(try Self.der(certificate)), createdAt: now)
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
            keyAlgorithm: body.keyAlgorithm, caCertificate: pem(Array(body.certificateDER)),
            serialNumber: hex(certificate.serialNumber.bytes), notBefore: certificate.notValidBefore,
            notAfter: certificate.notValidAfter, createdAt: body.createdAt)
    }
}
