import Crypto
import EngineAPI
import Foundation
import StorageAPI
import SwiftASN1
import Testing
import X509

@testable import Engine

/// The private CA: template rules, CA nesting, external signing, issuance, revocation and what is stored.
@Suite struct PKIEngineTests {
    struct World {
        var engine: GatehouseEngine
        var storage: InMemoryStorage
        var root: CAInfo
        var issuing: CAInfo
    }

    func world() async throws -> World {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let root = try await engine.createCA(
            admin, project: "p",
            CASpec(type: .root, subject: CASubject(commonName: "Root"), keyAlgorithm: .ecP256, maxPathLength: 1))
        let issuing = try await engine.createCA(
            admin, project: "p",
            CASpec(
                type: .intermediate, subject: CASubject(commonName: "Issuing"), keyAlgorithm: .ecP384,
                parentCaId: root.id))
        return World(engine: engine, storage: storage, root: root, issuing: issuing)
    }

    /// A profile over `template` issuing from the intermediate, API enrollment.
    func profile(_ w: World, _ template: TemplateSpec, slug: String = "api") async throws -> ProfileInfo {
        let t = try await w.engine.createTemplate(admin, project: "p", template)
        return try await w.engine.createProfile(
            admin, project: "p", ProfileSpec(slug: slug, caId: w.issuing.id, templateId: t.id, enrollment: .api))
    }

    /// A PEM CSR for `subject` with the given extensions requested.
    func csr(
        key: P256.Signing.PrivateKey = P256.Signing.PrivateKey(), _ subject: DistinguishedName,
        _ extensions: Certificate.Extensions = Certificate.Extensions()
    ) throws -> String {
        var attributes = CertificateSigningRequest.Attributes()
        if !extensions.isEmpty {
            attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
        }
        let request = try CertificateSigningRequest(
            version: .v1, subject: subject, privateKey: Certificate.PrivateKey(key), attributes: attributes,
            signatureAlgorithm: .ecdsaWithSHA256)
        return try request.serializeAsPEM().pemString
    }

    func cn(_ name: String, org: String? = nil) throws -> DistinguishedName {
        try DistinguishedName {
            if let org { OrganizationName(org) }
            CommonName(name)
        }
    }

    func sans(_ names: [GeneralName]) throws -> Certificate.Extensions {
        try Certificate.Extensions { SubjectAlternativeNames(names) }
    }

    static let base = TemplateSpec(
        name: "web",
        subject: [PatternRule(type: "commonName", allowed: ["*.example.com"], denied: ["admin.example.com"])],
        sans: [
            PatternRule(type: "dns", allowed: ["*.example.com"]), PatternRule(type: "ip", allowed: ["10.0.0.0/8"]),
            PatternRule(type: "email", allowed: ["*@example.com"]),
            PatternRule(type: "uri", allowed: ["spiffe://example.com/**"]),
        ],
        keyAlgorithms: [.ecP256], signatureAlgorithms: ["SHA384-ECDSA"], keyUsages: ["digitalSignature"],
        extendedKeyUsages: ["serverAuth"], maxTTL: "30d")

    @Test func everyTemplateRuleRefusesAViolatingRequestAndNamesTheRule() async throws {
        let w = try await world()
        let p = try await profile(w, Self.base)
        // The compliant request passes, with what the template says.
        let ok = try await w.engine.issueCertificate(
            admin, profile: p.slug,
            IssuanceRequest(
                csr: try csr(
                    try cn("www.example.com"),
                    try sans([
                        .dnsName("www.example.com"), .ipAddress(ASN1OctetString(contentBytes: [10, 1, 2, 3])),
                        .rfc822Name("ops@example.com"), .uniformResourceIdentifier("spiffe://example.com/ns/web"),
                    ])), ttl: "7d"))
        let cert = try Certificate(pemEncoded: ok.certificate.certificate)
        #expect(cert.signatureAlgorithm == .ecdsaWithSHA384)
        #expect(try cert.extensions.keyUsage == KeyUsage(digitalSignature: true))
        #expect(try cert.extensions.extendedKeyUsage == ExtendedKeyUsage([.serverAuth]))
        #expect(cert.serialNumber.bytes.count == 16, "128-bit serial")
        #expect(try cert.extensions.subjectKeyIdentifier != nil && cert.extensions.authorityKeyIdentifier != nil)
        #expect(ok.certificate.altNames.contains("ip:10.1.2.3"))

        let cases: [(String, () throws -> IssuanceRequest, String)] = [
            (
                "CN outside allowed", { IssuanceRequest(csr: try csr(try cn("www.other.com"))) },
                "subject commonName 'www.other.com' matches no allowed pattern"
            ),
            (
                "CN wildcard is one label", { IssuanceRequest(csr: try csr(try cn("a.b.example.com"))) },
                "matches no allowed pattern"
            ),
            (
                "CN denied", { IssuanceRequest(csr: try csr(try cn("admin.example.com"))) },
                "matches denied pattern 'admin.example.com'"
            ),
            (
                "subject attribute without rule",
                { IssuanceRequest(csr: try csr(try cn("www.example.com", org: "Evil"))) },
                "subject organization 'Evil' is not allowed (no organization rule)"
            ),
            (
                "DNS SAN outside",
                { IssuanceRequest(csr: try csr(try cn("www.example.com"), try sans([.dnsName("www.evil.com")]))) },
                "SAN dns 'www.evil.com' matches no allowed pattern"
            ),
            (
                "IP SAN outside CIDR",
                {
                    IssuanceRequest(
                        csr: try csr(
                            try cn("www.example.com"),
                            try sans([.ipAddress(ASN1OctetString(contentBytes: [192, 168, 1, 1]))])))
                }, "SAN ip '192.168.1.1'"
            ),
            (
                "email SAN outside",
                { IssuanceRequest(csr: try csr(try cn("www.example.com"), try sans([.rfc822Name("x@evil.com")]))) },
                "SAN email 'x@evil.com'"
            ),
            (
                "URI SAN outside",
                {
                    IssuanceRequest(
                        csr: try csr(
                            try cn("www.example.com"), try sans([.uniformResourceIdentifier("https://evil.com")])))
                }, "SAN uri 'https://evil.com'"
            ),
            (
                "key usage not allowed",
                {
                    IssuanceRequest(
                        csr: try csr(
                            try cn("www.example.com"),
                            try Certificate.Extensions { KeyUsage(digitalSignature: true, keyCertSign: true) }))
                }, "key usage keyCertSign is not allowed"
            ),
            (
                "EKU not allowed",
                {
                    IssuanceRequest(
                        csr: try csr(
                            try cn("www.example.com"),
                            try Certificate.Extensions { try ExtendedKeyUsage([.codeSigning]) }))
                }, "extended key usage"
            ),
            (
                "CA requested",
                {
                    IssuanceRequest(
                        csr: try csr(
                            try cn("www.example.com"),
                            try Certificate.Extensions { BasicConstraints.isCertificateAuthority(maxPathLength: nil) }))
                }, "a CA certificate cannot be requested"
            ),
            (
                "TTL above max", { IssuanceRequest(csr: try csr(try cn("www.example.com")), ttl: "31d") },
                "exceeds maxTTL 30d"
            ),
            (
                "key algorithm", { IssuanceRequest(commonName: "www.example.com", keyAlgorithm: .ecP384) },
                "key algorithm EC_secp384r1 is not allowed"
            ),
        ]
        for (name, make, words) in cases {
            do {
                _ = try await w.engine.issueCertificate(admin, profile: p.slug, try make())
                Issue.record("\(name): issued")
            } catch let e as EngineError {
                #expect(e.code == .permissionDenied && e.message.contains(words), "\(name): \(e)")
            }
        }
        // Required SAN; signature algorithm the issuer cannot produce.
        var required = Self.base
        required.name = "required"
        required.sans[0].required = true
        let rp = try await profile(w, required, slug: "required")
        #expect(
            await message {
                _ = try await w.engine.issueCertificate(
                    admin, profile: rp.slug, IssuanceRequest(csr: try csr(try cn("www.example.com"))))
            }?.contains("SAN dns is required") == true)
        var rsaOnly = Self.base
        rsaOnly.name = "rsa-only"
        rsaOnly.signatureAlgorithms = ["SHA256-RSA"]
        let sp = try await profile(w, rsaOnly, slug: "rsa-only")
        #expect(
            await message {
                _ = try await w.engine.issueCertificate(
                    admin, profile: sp.slug, IssuanceRequest(csr: try csr(try cn("www.example.com"))))
            }?.contains("no allowed signature algorithm") == true)
        // Malformed templates are refused up front.
        var bad = Self.base
        bad.name = "bad"
        bad.sans = [PatternRule(type: "ip", allowed: ["not-a-cidr"])]
        #expect(await code { _ = try await w.engine.createTemplate(admin, project: "p", bad) } == .invalidArgument)
        bad.sans = [PatternRule(type: "fax")]
        #expect(await code { _ = try await w.engine.createTemplate(admin, project: "p", bad) } == .invalidArgument)
    }

    @Test func pathLengthAndValidityNest() async throws {
        let w = try await world()  // root path length 1, intermediate 0
        let e = w.engine
        // Below an intermediate with path length 0: no CA at all.
        #expect(
            await message {
                _ = try await e.createCA(
                    admin, project: "p",
                    CASpec(
                        type: .intermediate, subject: CASubject(commonName: "x"), keyAlgorithm: .ecP256,
                        parentCaId: w.issuing.id))
            }?.contains("path length 0") == true)
        // Below the root (path length 1): the child's must be lower (0), not 1, not unlimited.
        for bad in [1, -1] {
            #expect(
                await message {
                    _ = try await e.createCA(
                        admin, project: "p",
                        CASpec(
                            type: .intermediate, subject: CASubject(commonName: "x"), keyAlgorithm: .ecP256,
                            maxPathLength: bad, parentCaId: w.root.id))
                }?.contains("lower than the parent") == true)
        }
        // Validity inside the parent's.
        let rootEnd = try #require(w.root.notAfter)
        #expect(
            await message {
                _ = try await e.createCA(
                    admin, project: "p",
                    CASpec(
                        type: .intermediate, subject: CASubject(commonName: "x"), keyAlgorithm: .ecP256,
                        notAfter: rootEnd + 86400, parentCaId: w.root.id))
            }?.contains("not be later than the parent") == true)
        // The chain verifies and carries the path length.
        let issuing = try Certificate(pemEncoded: try #require(w.issuing.certificate))
        #expect(try issuing.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        let rootCert = try Certificate(pemEncoded: try #require(w.root.certificate))
        #expect(try rootCert.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 1))
        var verifier = Verifier(rootCertificates: CertificateStore([rootCert])) {
            RFC5280Policy(validationTime: Date())
        }
        guard
            case .validCertificate = await verifier.validate(
                leafCertificate: issuing, intermediates: CertificateStore())
        else {
            Issue.record("the intermediate does not verify under the root")
            return
        }
        // Renewal keeps the key and moves the end of validity (inside the parent's).
        let renewed = try await e.renewCA(admin, id: w.issuing.id, notAfter: Date() + 86400 * 30)
        #expect(try Certificate(pemEncoded: try #require(renewed.certificate)).publicKey == issuing.publicKey)
        #expect(abs((renewed.notAfter ?? .distantPast).timeIntervalSince(Date() + 86400 * 30)) < 5)
        #expect(
            await code { _ = try await e.renewCA(admin, id: w.issuing.id, notAfter: rootEnd + 86400) }
                == .invalidArgument)
    }

    @Test func intermediateSignedByAnExternalCA() async throws {
        let w = try await world()
        let pending = try await w.engine.createCA(
            admin, project: "p",
            CASpec(
                type: .intermediate, subject: CASubject(commonName: "Ext Issuing", organization: "Acme"),
                keyAlgorithm: .rsa2048))
        #expect(pending.status == .pendingCertificate && pending.certificate == nil)
        let csrPEM = try await w.engine.caCertificateRequest(admin, id: pending.id)
        let request = try CertificateSigningRequest(pemEncoded: csrPEM)
        #expect(request.publicKey.isValidSignature(request.signature, for: request))
        // The "external" CA: a plain swift-certificates root outside Gatehouse.
        let extKey = P256.Signing.PrivateKey()
        let extName = try DistinguishedName { CommonName("Corporate Root") }
        let extRoot = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(extKey.publicKey), notValidBefore: Date() - 60,
            notValidAfter: Date() + 86400 * 365, issuer: extName, subject: extName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            },
            issuerPrivateKey: .init(extKey))
        let signed = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: request.publicKey, notValidBefore: Date() - 60,
            notValidAfter: Date() + 86400 * 100, issuer: extName, subject: request.subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(extKey))
        // Another key's certificate, or a chain that did not sign it, is refused.
        #expect(
            await code {
                _ = try await w.engine.importCACertificate(
                    admin, id: pending.id, certificate: try signed.serializeAsPEM().pemString,
                    chain: try #require(w.root.certificate))
            } == .invalidArgument)
        let active = try await w.engine.importCACertificate(
            admin, id: pending.id, certificate: try signed.serializeAsPEM().pemString,
            chain: try extRoot.serializeAsPEM().pemString)
        #expect(active.status == .active && active.maxPathLength == 0 && active.certificateChain.count == 1)
        // It issues, and the leaf verifies up to the external root.
        let t = try await w.engine.createTemplate(
            admin, project: "p",
            TemplateSpec(name: "any", subject: [PatternRule(type: "commonName", allowed: ["**"])], sans: []))
        let p = try await w.engine.createProfile(
            admin, project: "p", ProfileSpec(slug: "ext", caId: active.id, templateId: t.id, enrollment: .api))
        let issued = try await w.engine.issueCertificate(admin, profile: p.id, IssuanceRequest(commonName: "svc"))
        let leaf = try Certificate(pemEncoded: issued.certificate.certificate)
        #expect(leaf.signatureAlgorithm == .sha256WithRSAEncryption)
        var verifier = Verifier(rootCertificates: CertificateStore([extRoot])) { RFC5280Policy(validationTime: Date()) }
        let result = await verifier.validate(leafCertificate: leaf, intermediates: CertificateStore([signed]))
        guard case .validCertificate = result else {
            Issue.record("leaf does not verify: \(result)")
            return
        }
    }

    @Test func csrLessKeysAreSealedAtRestAndRevocationReachesTheCRL() async throws {
        let w = try await world()
        let t = try await w.engine.createTemplate(
            admin, project: "p",
            TemplateSpec(
                name: "svc", subject: [PatternRule(type: "commonName", allowed: ["*"])],
                sans: [PatternRule(type: "dns", allowed: ["*.svc"])]))
        let p = try await w.engine.createProfile(
            admin, project: "p", ProfileSpec(slug: "svc", caId: w.issuing.id, templateId: t.id, enrollment: .api))
        let issued = try await w.engine.issueCertificate(
            admin, profile: p.slug, IssuanceRequest(commonName: "db", altNames: ["db.svc"], keyAlgorithm: .ecP256))
        let keyPEM = try #require(issued.privateKey)
        let key = try Certificate.PrivateKey(pemEncoded: keyPEM)
        #expect(key.publicKey == (try Certificate(pemEncoded: issued.certificate.certificate)).publicKey)
        // Nothing of the private key (or any CA key) is stored in the clear.
        let der = try #require(PEMDocument(pemString: keyPEM).derBytes as [UInt8]?)
        let records = try await w.storage.withTransaction { tx in
            try await tx.list(kind: "pki-cert", scope: nil, afterID: nil, limit: 100)
                + (try await tx.list(kind: "pki-ca", scope: nil, afterID: nil, limit: 100))
        }
        for r in records {
            #expect(r.body.range(of: Data(der.suffix(32))) == nil)
            #expect(r.body.range(of: Data(Data(der).base64EncodedString().prefix(40).utf8)) == nil)
        }
        // Export returns it again (audited); revocation regenerates the CRL with the serial and reason.
        #expect(
            String(
                decoding: try await w.engine.certificatePrivateKey(admin, serial: issued.certificate.serialNumber)
                    .bytes, as: UTF8.self) == keyPEM)
        let before = try await w.engine.crl(caId: w.issuing.id)
        _ = try await w.engine.revokeCertificate(admin, serial: issued.certificate.serialNumber, reason: .superseded)
        #expect(
            await code {
                _ = try await w.engine.revokeCertificate(
                    admin, serial: issued.certificate.serialNumber, reason: .superseded)
            } == .wrongState)
        let after = try await w.engine.crl(caId: w.issuing.id)
        let serial = try #require(PKIService.bytes(hex: issued.certificate.serialNumber))
        #expect(before.firstRange(of: serial) == nil && after.firstRange(of: serial) != nil)
        #expect(try await w.engine.getCertificate(admin, serial: issued.certificate.serialNumber).status == .revoked)
        // Malformed OCSP requests get malformedRequest, never an error.
        #expect(try await w.engine.ocsp(request: [0x30, 0x03, 0x02, 0x01]) == [0x30, 0x03, 0x0A, 0x01, 0x01])
        #expect(try await w.engine.ocsp(request: []) == [0x30, 0x03, 0x0A, 0x01, 0x01])
    }

    @Test func rolesGovernPKI() async throws {
        let w = try await world()
        let t = try await w.engine.createTemplate(
            admin, project: "p",
            TemplateSpec(name: "any", subject: [PatternRule(type: "commonName", allowed: ["**"])], sans: []))
        let p = try await w.engine.createProfile(
            admin, project: "p", ProfileSpec(slug: "roles", caId: w.issuing.id, templateId: t.id, enrollment: .api))
        func member(_ name: String, _ role: String) async throws -> CallContext {
            let i = try await w.engine.createIdentity(admin, IdentitySpec(name: name, orgRole: .noAccess))
            _ = try await w.engine.setMembership(admin, project: "p", identityId: i.id, roles: [RoleGrant(role: role)])
            return caller(i)
        }
        let dev = try await member("dev", "developer")
        let viewer = try await member("viewer", "viewer")
        let issued = try await w.engine.issueCertificate(dev, profile: p.slug, IssuanceRequest(commonName: "x"))
        #expect(
            await code {
                _ = try await w.engine.createCA(
                    dev, project: "p", CASpec(type: .root, subject: CASubject(commonName: "r")))
            } == .permissionDenied)
        #expect(
            await code {
                _ = try await w.engine.issueCertificate(viewer, profile: p.slug, IssuanceRequest(commonName: "x"))
            } == .permissionDenied)
        #expect(try await w.engine.getCertificate(viewer, serial: issued.certificate.serialNumber).commonName == "x")
        #expect(
            await code {
                _ = try await w.engine.revokeCertificate(
                    viewer, serial: issued.certificate.serialNumber, reason: .unspecified)
            } == .permissionDenied)
        #expect(
            await code { _ = try await w.engine.certificatePrivateKey(viewer, serial: issued.certificate.serialNumber) }
                == .permissionDenied)
        #expect(await code { _ = try await w.engine.listCAs(stranger, project: "p") } != nil)
    }
}

/// Expiry alerts: due certificates are reported once per rule even with several nodes claiming at the same time.
@Suite struct ExpiryAlertTests {
    let system = CallContext(principal: .system, frontEnd: "scheduler", requestID: "t")

    @Test func eachDueCertificateIsClaimedOnceAcrossNodesAndRetriedIfUnconfirmed() async throws {
        let storage = InMemoryStorage()
        let clock = TestClock()
        let rootKey = SymmetricKey(size: .bits256)
        let node1 = try await openEngine(storage, key: rootKey, clock: clock.read)
        let node2 = try await openEngine(storage, key: rootKey, clock: clock.read)
        let ca = try await node1.createCA(
            admin, project: "p", CASpec(type: .root, subject: CASubject(commonName: "R"), keyAlgorithm: .ecP256))
        let t = try await node1.createTemplate(
            admin, project: "p",
            TemplateSpec(
                name: "t", subject: [PatternRule(type: "commonName", allowed: ["**"])], sans: [], maxTTL: "365d"))
        let p = try await node1.createProfile(
            admin, project: "p", ProfileSpec(slug: "alerts", caId: ca.id, templateId: t.id, enrollment: .api))
        var soon: [String] = []
        for i in 0..<6 {
            soon.append(
                try await node1.issueCertificate(
                    admin, profile: p.slug, IssuanceRequest(commonName: "web-\(i)", ttl: "10d")
                ).certificate.serialNumber)
        }
        _ = try await node1.issueCertificate(
            admin, profile: p.slug, IssuanceRequest(commonName: "web-late", ttl: "100d"))
        _ = try await node1.issueCertificate(admin, profile: p.slug, IssuanceRequest(commonName: "db-0", ttl: "10d"))
        _ = try await node1.revokeCertificate(admin, serial: soon[5], reason: .superseded)
        _ = try await node1.createAlert(
            admin, project: "p",
            AlertSpec(
                name: "web-30d", alertBefore: "30d",
                filters: [AlertFilter(field: "commonName", operator: "startsWith", value: "web-")],
                recipients: ["https://hooks.example/expiry"]))
        #expect(
            await code {
                _ = try await node1.createAlert(
                    admin, project: "p", AlertSpec(name: "x", alertBefore: "soon", recipients: ["https://a"]))
            } == .invalidArgument)
        #expect(
            await code {
                _ = try await node1.createAlert(
                    admin, project: "p", AlertSpec(name: "x", alertBefore: "1d", recipients: ["ftp://a"]))
            } == .invalidArgument)
        #expect(await code { _ = try await node1.claimExpiryNotices(admin, retryAfter: 60) } == .permissionDenied)

        // Both nodes run the job at once.
        async let a = node1.claimExpiryNotices(system, retryAfter: 120)
        async let b = node2.claimExpiryNotices(system, retryAfter: 120)
        let (first, second) = try await (a, b)
        let claimed = (first + second).map(\.serialNumber)
        #expect(claimed.count == 5 && Set(claimed) == Set(soon.prefix(5)), "claimed \(claimed)")
        // Nothing new on the next runs; node 1 confirms its notices, node 2 "crashes" before confirming.
        #expect(try await node1.claimExpiryNotices(system, retryAfter: 120).isEmpty)
        for n in first { try await node1.confirmExpiryNotice(system, id: n.id) }
        clock.advance(121)
        let retried = try await node1.claimExpiryNotices(system, retryAfter: 120)
        #expect(Set(retried.map(\.id)) == Set(second.map(\.id)), "unconfirmed claims are taken over")
        for n in retried { try await node1.confirmExpiryNotice(system, id: n.id) }
        clock.advance(121)
        #expect(try await node2.claimExpiryNotices(system, retryAfter: 120).isEmpty)
    }
}

/// The message of the engine error `body` throws, or nil when it succeeds.
func message(_ body: () async throws -> Void) async -> String? {
    do {
        try await body()
        return nil
    } catch let e as EngineError {
        return e.message
    } catch {
        return "\(error)"
    }

}

extension PKIEngineTests {
    /// KMIP Certify: from the project's `kmip` profile, for a stored public key (linked both ways) or a PKCS#10
    /// request; the certificate is a key-management object too. No `kmip` profile: a clear refusal.
    @Test func kmipCertifyIssuesFromTheKMIPProfile() async throws {
        let w = try await world()
        let (privateKey, publicKey) = try await w.engine.createKeyPair(
            admin, project: "p", algorithm: 6, length: 256, privateSpec: ObjectSpec(objectType: .privateKey),
            publicSpec: ObjectSpec(objectType: .publicKey, names: ["device-7.example"]))
        #expect(
            await code {
                _ = try await w.engine.certify(
                    admin, project: "p", publicKeyID: publicKey.id, csrDER: nil, commonName: nil, names: [])
            } == .featureNotSupported)
        let t = try await w.engine.createTemplate(
            admin, project: "p",
            TemplateSpec(name: "kmip", subject: [PatternRule(type: "commonName", allowed: ["*.example"])], sans: []))
        _ = try await w.engine.createProfile(
            admin, project: "p", ProfileSpec(slug: "kmip", caId: w.issuing.id, templateId: t.id, enrollment: .kmip))
        let cert = try await w.engine.certify(
            admin, project: "p", publicKeyID: publicKey.id, csrDER: nil, commonName: nil, names: ["device-7-cert"])
        #expect(cert.objectType == .certificate && cert.names == ["device-7-cert"])
        #expect(cert.certificate?.subject.map(\.value) == ["device-7.example"])
        #expect(cert.links == [ObjectLink(type: ObjectLink.publicKey, id: publicKey.id)])
        #expect(
            try await w.engine.objectAttributes(admin, id: publicKey.id).links
                == [
                    ObjectLink(type: ObjectLink.privateKey, id: privateKey.id),
                    ObjectLink(type: ObjectLink.certificate, id: cert.id),
                ])
        let der = try #require(try await w.engine.getObject(admin, id: cert.id).1).bytes
        let x509 = try Certificate(derEncoded: der)
        let keyDER = try #require(try await w.engine.getObject(admin, id: publicKey.id).1).bytes
        #expect(x509.publicKey == Certificate.PublicKey(try P256.Signing.PublicKey(derRepresentation: keyDER)))
        #expect(x509.issuer == (try Certificate(pemEncoded: try #require(w.issuing.certificate))).subject)
        // A PKCS#10 request; the template still decides (a CN outside it is refused).
        let pem = try csr(try cn("sensor.example"))
        let viaCSR = try await w.engine.certify(
            admin, project: "p", publicKeyID: nil, csrDER: try PEMDocument(pemString: pem).derBytes, commonName: nil,
            names: [])
        #expect(viaCSR.certificate?.subject.map(\.value) == ["sensor.example"])
        let outside = try csr(try cn("sensor.other"))
        let refused = await message {
            _ = try await w.engine.certify(
                admin, project: "p", publicKeyID: nil, csrDER: try PEMDocument(pemString: outside).derBytes,
                commonName: nil, names: [])
        }
        #expect(refused?.contains("matches no allowed pattern") == true, "\(refused ?? "issued")")
    }
}

/// Certificate listings by CA, profile, status, name and expiry equal a full scan on random certificates, and page
/// through every match exactly once.
@Suite struct CertificateListingTests {
    @Test func listingsEqualAFullScanOnRandomCertificates() async throws {
        let storage = InMemoryStorage()
        let clock = TestClock()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256), clock: clock.read)
        let root = try await engine.createCA(
            admin, project: "p",
            CASpec(type: .root, subject: CASubject(commonName: "Root"), keyAlgorithm: .ecP256, maxPathLength: 1))
        let issuing = try await engine.createCA(
            admin, project: "p",
            CASpec(
                type: .intermediate, subject: CASubject(commonName: "Issuing"), keyAlgorithm: .ecP256,
                parentCaId: root.id))
        let template = try await engine.createTemplate(
            admin, project: "p",
            TemplateSpec(
                name: "any", subject: [PatternRule(type: "commonName", allowed: ["**"])],
                sans: [PatternRule(type: "dns", allowed: ["**"])], maxTTL: "365d"))
        var profiles: [ProfileInfo] = []
        for (slug, ca) in [("a", root.id), ("b", issuing.id), ("c", issuing.id)] {
            profiles.append(
                try await engine.createProfile(
                    admin, project: "p", ProfileSpec(slug: slug, caId: ca, templateId: template.id, enrollment: .api)))
        }
        var rng = SystemRandomNumberGenerator()
        let names = ["web.example", "api.example", "db.example", "Mail.Example"]
        var serials: [String] = []
        for i in 0..<40 {
            let profile = profiles[Int.random(in: 0..<profiles.count, using: &rng)]
            let cn = names.randomElement(using: &rng) ?? "x"
            let sans = Array(names.shuffled(using: &rng).prefix(Int.random(in: 0...2, using: &rng))).map {
                $0.lowercased()
            }
            let issued = try await engine.issueCertificate(
                admin, profile: profile.slug,
                IssuanceRequest(commonName: cn, altNames: sans, ttl: "\(Int.random(in: 1...60, using: &rng))d"))
            serials.append(issued.certificate.serialNumber)
            if i % 7 == 3 {
                _ = try await engine.revokeCertificate(
                    admin, serial: issued.certificate.serialNumber, reason: .superseded)
            }
        }
        // Time passes: the shortest-lived ones expire.
        clock.advance(20 * 86_400)
        var all: [CertificateInfo] = []
        for s in serials { all.append(try await engine.getCertificate(admin, serial: s)) }
        let now = clock.read()
        #expect(
            all.contains { $0.status == .expired } && all.contains { $0.status == .revoked }
                && all.contains { $0.status == .active })

        func check(_ q: CertificateQuery) async throws {
            let expected = all.filter { c in
                (q.caId == nil || c.caId == q.caId) && (q.profileId == nil || c.profileId == q.profileId)
                    && (q.status == nil || c.status == q.status)
                    && (q.name == nil
                        || ([c.commonName] + c.altNames).contains { $0.lowercased() == q.name?.lowercased() })
                    && (q.expiresAfter.map { c.notAfter >= $0 } ?? true)
                    && (q.expiresBefore.map { c.notAfter < $0 } ?? true)
            }.sorted { ($0.notAfter, $0.serialNumber) < ($1.notAfter, $1.serialNumber) }
            var got: [CertificateInfo] = []
            var page = q
            page.limit = 3
            for _ in 0..<100 {
                let result = try await engine.listCertificates(admin, project: "p", page)
                got += result.items
                guard let next = result.next else { break }
                page.after = next
            }
            let want = q.latestFirst ? Array(expected.reversed()) : expected
            // Same certificates, each once, in expiry order (ties in either order).
            #expect(got.map(\.serialNumber).sorted() == want.map(\.serialNumber).sorted(), "\(q)")
            #expect(Set(got.map(\.serialNumber)).count == got.count, "\(q)")
            let times = got.map(\.notAfter)
            #expect(times == (q.latestFirst ? times.sorted(by: >) : times.sorted()), "\(q)")
        }
        try await check(CertificateQuery())
        for _ in 0..<60 {
            var q = CertificateQuery(latestFirst: Bool.random(using: &rng))
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: q.caId = [root.id, issuing.id].randomElement(using: &rng)
            case 1: q.profileId = profiles.randomElement(using: &rng)?.id
            case 2: q.name = names.randomElement(using: &rng)?.uppercased()
            case 3: q.status = [.active, .revoked, .expired].randomElement(using: &rng)
            default: break
            }
            if Bool.random(using: &rng) { q.status = [.active, .revoked, .expired].randomElement(using: &rng) }
            if Bool.random(using: &rng) {
                q.expiresAfter = now.addingTimeInterval(Double.random(in: -30...30, using: &rng) * 86_400)
            }
            if Bool.random(using: &rng) {
                q.expiresBefore = now.addingTimeInterval(Double.random(in: -10...50, using: &rng) * 86_400)
            }
            try await check(q)
        }
        // The index serves the listing: the store holds one name entry per distinct name of each certificate.
        let entries = try await storage.lookupAll(
            IndexQuery.prefix(
                kind: "pki-cert", index: PKIService.CertificateIndex.name, scope: "p", IndexKey(), limit: 500))
        let distinct = all.reduce(0) { $0 + Set(([$1.commonName] + $1.altNames).map { $0.lowercased() }).count }
        #expect(entries.count == distinct)
    }
}
