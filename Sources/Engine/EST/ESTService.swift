import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import StorageAPI
import SwiftASN1
import Synchronization
@_spi(FixedExpiryValidationTime) import X509

/// EST enrollment (RFC 7030): the device authenticates to the profile, not as an identity. Certificates come from
/// the PKI domain through `CertificateIssuing`.
final class ESTService: EngineService {
    let core: EngineCore
    let issuer: any CertificateIssuing
    /// EST bootstrap chains recently verified, by hash of (profile, its bootstrap CAs, the presented chain).
    let estVerifiedChains = Mutex<[Data: Date]>([:])

    init(core: EngineCore, issuer: any CertificateIssuing) {
        self.core = core
        self.issuer = issuer
    }
}

extension ESTService {
    /// The EST profile by slug. Devices enroll in bursts, so a profile read is reused for two seconds (the same
    /// staleness the access cache allows; local changes to profiles are rare and take effect within that).
    func estProfile(_ slug: String) async throws -> ProfileBody {
        let body = try await issuer.recentProfile(slug)
        guard body.info.enrollment == .est, body.info.caId != nil else {
            throw EngineError(.notFound, "no EST profile '\(slug)'")
        }
        return body
    }

    public func estCACertificates(_ ctx: CallContext, profile: String) async throws -> [[UInt8]] {
        let p = try await estProfile(profile)
        guard let caId = p.info.caId else { throw EngineError(.notFound, "no EST profile '\(profile)'") }
        let ca = try await read { tx in try await self.issuer.loadCA(caId, tx) }
        guard let der = ca.body.certificateDER else {
            throw EngineError(.wrongState, "the profile's CA has no certificate")
        }
        return [Array(der)] + ca.body.chainDER.map { Array($0) }
    }

    public func estCSRAttributes(_ ctx: CallContext, profile: String) async throws -> [UInt8]? {
        let p = try await estProfile(profile)
        let template = try await read { tx in try await self.issuer.loadTemplate(p.info.templateId, tx) }.spec
        var oids: [ASN1ObjectIdentifier] = []
        if p.info.estRequireChannelBinding { oids.append(PKIDER.oidChallengePassword) }
        // The signature algorithm the device should sign its CSR with: the template's first, else SHA-256 ECDSA.
        let name = template.signatureAlgorithms.first ?? "SHA256-ECDSA"
        if let oid = PKIDER.signatureAlgorithms.first(where: { $0.name == name })?.oid { oids.append(oid) }
        return try PKIDER.bytes { s in
            try s.appendConstructedNode(identifier: .sequence) { s in for o in oids { try s.serialize(o) } }
        }
    }

    /// Which credential let the device in, or nil. Every credential presented must be valid: a wrong passphrase
    /// refuses the request even beside a valid bootstrap certificate (and a passphrase sent to a profile that has
    /// none is wrong). A client certificate is checked as a bootstrap credential where the profile takes those.
    func estAuthenticate(_ ctx: CallContext, _ p: ProfileBody, _ credentials: ESTCredentials) async -> String? {
        var passphraseOK = false
        if let password = credentials.password {
            guard let salt = p.passphraseSalt, let mac = p.passphraseMAC else { return nil }
            let presented = Data(
                HMAC<SHA256>.authenticationCode(for: Array(password.utf8), using: SymmetricKey(data: salt)))
            guard Self.constantTimeEqual(presented, mac) else { return nil }
            passphraseOK = true
        }
        let takesCertificates = p.info.estDisableBootstrapValidation || p.info.estBootstrapCAChain != nil
        if ctx.principal.certificateChain.isEmpty || !takesCertificates { return passphraseOK ? "est:passphrase" : nil }
        return await estBootstrapCertificate(ctx, p)
    }

    /// Whether the TLS client certificate is a valid bootstrap credential for the profile.
    func estBootstrapCertificate(_ ctx: CallContext, _ p: ProfileBody) async -> String? {
        let chain = ctx.principal.certificateChain
        guard let leafDER = chain.first, let leaf = try? Certificate(derEncoded: leafDER) else { return nil }
        if p.info.estDisableBootstrapValidation { return "est:client-certificate-unvalidated" }
        guard let pem = p.info.estBootstrapCAChain else { return nil }
        // A chain verified for this profile is remembered for a minute (devices enroll over keep-alive connections
        // and retry); the key covers the profile's settings and the whole presented chain.
        let now = clock()
        var hasher = SHA256()
        hasher.update(data: Array(p.info.id.utf8))
        hasher.update(data: Array(pem.utf8))
        for c in chain { hasher.update(data: c) }
        let cacheKey = Data(hasher.finalize())
        if let until = estVerifiedChains.withLock({ $0[cacheKey] }), until > now { return "est:bootstrap-certificate" }
        guard let roots = try? PKIService.pemCertificates(pem), !roots.isEmpty else { return nil }
        let intermediates = chain.dropFirst().compactMap { try? Certificate(derEncoded: $0) }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy(fixedExpiryValidationTime: now)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
        if case .validCertificate = result {
            estVerifiedChains.withLock { cache in
                if cache.count > 10_000 { cache = cache.filter { $0.value > now } }
                if cache.count > 10_000 { cache.removeAll() }
                cache[cacheKey] = min(now + 60, leaf.notValidAfter)
            }
        }
        if case .validCertificate = result { return "est:bootstrap-certificate" }
        return nil
    }

    public func estEnroll(
        _ ctx: CallContext, profile: String, csr csrBytes: [UInt8], credentials: ESTCredentials, reenroll: Bool,
        serverKeyGen: Bool
    ) async throws -> ESTEnrollment {
        let p = try await estProfile(profile)
        let operation = reenroll ? "simplereenroll" : serverKeyGen ? "serverkeygen" : "simpleenroll"
        let grantedBy: String
        let current: CertificateBody?
        if reenroll {
            // RFC 7030 §4.2.2: authenticated by the current certificate this profile issued.
            guard let leafDER = ctx.principal.certificateChain.first, let leaf = try? Certificate(derEncoded: leafDER)
            else {
                await auditFailure(
                    ctx, "pki.est.refused", project: p.info.project,
                    ["profile": p.info.slug, "operation": operation, "reason": "no client certificate"])
                throw EngineError(
                    .unauthenticated, "re-enrollment requires the current certificate as TLS client certificate")
            }
            let serial = PKIService.hex(leaf.serialNumber.bytes)
            let stored = try await transact(relaxed: true) { tx in
                try await tx.get(kind: PKIKind.certificate, id: serial).map {
                    try self.decode(CertificateBody.self, $0)
                }
            }
            guard let stored, stored.info.profileId == p.info.id, Array(stored.der) == leafDER else {
                await auditFailure(
                    ctx, "pki.est.refused", project: p.info.project,
                    [
                        "profile": p.info.slug, "operation": operation,
                        "reason": "certificate not issued by this profile",
                    ])
                throw EngineError(.unauthenticated, "the client certificate was not issued by this profile")
            }
            guard stored.info.status == .active, stored.info.notAfter > clock() else {
                await auditFailure(
                    ctx, "pki.est.refused", project: p.info.project,
                    [
                        "profile": p.info.slug, "operation": operation,
                        "reason": "certificate \(stored.info.status.rawValue) or expired", "serialNumber": serial,
                    ])
                throw EngineError(.unauthenticated, "the client certificate is revoked or expired")
            }
            current = stored
            grantedBy = "est:current-certificate"
        } else {
            guard let how = await estAuthenticate(ctx, p, credentials) else {
                let offered = credentials.password != nil || !ctx.principal.certificateChain.isEmpty
                await auditFailure(
                    ctx, "pki.est.refused", project: p.info.project,
                    [
                        "profile": p.info.slug, "operation": operation,
                        "reason": offered ? "credentials refused" : "no credentials",
                    ])
                throw EngineError(
                    .unauthenticated, offered ? "the EST credentials are not accepted" : "EST credentials required")
            }
            grantedBy = how
            current = nil
        }
        do {
            return try await estIssue(
                ctx, p, csrBytes: csrBytes, operation: operation, grantedBy: grantedBy, current: current,
                credentials: credentials, serverKeyGen: serverKeyGen)
        } catch let e as EngineError {
            // Refusals after authentication (a malformed CSR, the template's or the channel binding's rules) are
            // on record like the others.
            if e.code != .internal, e.code != .unavailable {
                await auditFailure(
                    ctx, "pki.est.refused", project: p.info.project,
                    ["profile": p.info.slug, "operation": operation, "reason": e.message, "grantedBy": grantedBy])
            }
            throw e
        }
    }

    func estIssue(
        _ ctx: CallContext, _ p: ProfileBody, csrBytes: [UInt8], operation: String, grantedBy: String,
        current: CertificateBody?,
        credentials: ESTCredentials, serverKeyGen: Bool
    ) async throws -> ESTEnrollment {
        let csr = try PKIService.parseCSR(csrBytes)
        let requested = try PKIService.requestedExtensions(csr)
        let sans = (try? requested?.subjectAlternativeNames) ?? nil
        if p.info.estRequireChannelBinding {
            guard let unique = credentials.tlsUnique else {
                throw EngineError(
                    .permissionDenied,
                    "this profile requires tls-unique channel binding, which this listener cannot provide")
            }
            let expected = Base64.encodeToString(bytes: unique)
            let presented = csr.attributes[oid: PKIDER.oidChallengePassword]?.values.first.flatMap { v -> String? in
                (try? ASN1UTF8String(asn1Any: v)).map { String($0) }
                    ?? (try? ASN1PrintableString(asn1Any: v)).map { String($0) }
            }
            guard let presented, Self.constantTimeEqual(Data(presented.utf8), Data(expected.utf8)) else {
                throw EngineError(
                    .permissionDenied, "the CSR's challengePassword does not carry this connection's tls-unique value")
            }
        }
        if let current {
            // §4.2.2: same subject and SubjectAltName as the current certificate.
            let cert = try Certificate(derEncoded: Array(current.der))
            let currentSANs = (try? cert.extensions.subjectAlternativeNames) ?? nil
            guard cert.subject == csr.subject,
                Set(try PKIPolicy.sanValues(currentSANs ?? .init()).map { "\($0.0):\($0.1)" })
                    == Set(try PKIPolicy.sanValues(sans ?? .init()).map { "\($0.0):\($0.1)" })
            else {
                throw EngineError(
                    .permissionDenied, "re-enrollment must keep the current certificate's subject and SubjectAltName")
            }
        }
        var input = PKIService.IssueInput(
            subject: csr.subject, sans: sans ?? SubjectAlternativeNames(), publicKey: csr.publicKey,
            requestedExtensions: requested, ttl: nil)
        var pkcs8: [UInt8]?
        if serverKeyGen {
            let template = try await read { tx in try await self.issuer.loadTemplate(p.info.templateId, tx) }.spec
            let algorithm =
                PKIService.keyAlgorithm(csr.publicKey).flatMap { a in
                    template.keyAlgorithms.isEmpty || template.keyAlgorithms.contains(a) ? a : nil
                }
                ?? template.keyAlgorithms.first ?? .ecP256
            let (key, der) = try PKIService.generateKey(algorithm)
            input.publicKey = key.publicKey
            pkcs8 = der
        }
        let issueInput = input
        let (grant, replaced) = (grantedBy, current?.info.serialNumber)
        let (info, der) = try await transact { tx in
            do {
                let (info, der) = try await self.issuer.issue(p.info, issueInput, tx)
                var meta = [
                    "profile": p.info.slug, "serialNumber": info.serialNumber, "subject": info.subject,
                    "decision": "allow", "grantedBy": grant,
                ]
                if let replaced { meta["replaces"] = replaced }
                try await self.audit.append(self.event(ctx, "pki.est.\(operation)", project: p.info.project, meta), tx)
                return (info, der)
            }
        }
        _ = info
        return ESTEnrollment(certificate: der, privateKeyPKCS8: pkcs8.map { SecretBytes($0) })
    }
}
