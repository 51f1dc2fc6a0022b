import Crypto
import EngineAPI
import Foundation
import ServerSupport
import StorageAPI
import SwiftASN1
import Synchronization
import Testing
import X509
import _CryptoExtras

@testable import Engine

/// The organization's KMIP client PKI: generated on demand with the chosen algorithm, issuing client certificates
/// over the client's own key, admin-only, audited, and accepted by TLS Certificate Auth.
@Suite struct KMIPPKITests {
    func publicKeyPEM(_ key: P256.Signing.PrivateKey) -> String { key.publicKey.pemRepresentation }

    @Test func generatedOnDemandWithTheChosenAlgorithmAndIssuesVerifiableClientCertificates() async throws {
        let storage = InMemoryStorage()
        let pushed = Mutex<[String]>([])
        let engine = try await openEngine(
            storage, key: SymmetricKey(size: .bits256), kmipClientCAsCreated: { pems in pushed.withLock { $0 = pems } })
        #expect(await code { _ = try await engine.kmipPKI(admin) } == .notFound)
        #expect(try await engine.kmipClientCACertificates().isEmpty)

        let clientKey = P256.Signing.PrivateKey()
        let issued = try await engine.issueKMIPClientCertificate(
            admin,
            KMIPClientCertificateRequest(
                commonName: "array-01", publicKey: publicKeyPEM(clientKey), ttl: "30d", caKeyAlgorithm: .ecP384))
        let pki = try await engine.kmipPKI(admin)
        #expect(pki.keyAlgorithm == .ecP384)
        #expect(try await engine.kmipClientCACertificates() == [pki.caCertificate])
        #expect(pushed.withLock { $0 } == [pki.caCertificate], "the listener is told at once")
        #expect(issued.certificateChain == [pki.caCertificate])

        let ca = try Certificate(pemEncoded: pki.caCertificate)
        let leaf = try Certificate(pemEncoded: issued.certificate)
        #expect(ca.publicKey.description.contains("P384") || P384.Signing.PublicKey(ca.publicKey) != nil)
        #expect(leaf.publicKey == Certificate.PublicKey(clientKey.publicKey), "the client's own key is certified")
        #expect(leaf.subject.description.contains("CN=array-01"))
        #expect(try leaf.extensions.extendedKeyUsage?.contains(.clientAuth) == true)
        #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
        #expect(abs(leaf.notValidAfter.timeIntervalSinceNow - 30 * 86400) < 120)
        var verifier = Verifier(rootCertificates: CertificateStore([ca])) { RFC5280Policy(validationTime: Date()) }
        guard case .validCertificate = await verifier.validate(leafCertificate: leaf, intermediates: CertificateStore())
        else {
            Issue.record("the client certificate does not verify under the KMIP CA")
            return
        }

        // One PKI: setting it up again is refused, and the next client gets a certificate from the same CA.
        #expect(await code { _ = try await engine.setUpKMIPPKI(admin, keyAlgorithm: .rsa2048) } == .alreadyExists)
        let second = try await engine.issueKMIPClientCertificate(
            admin,
            KMIPClientCertificateRequest(
                commonName: "array-02", publicKey: publicKeyPEM(P256.Signing.PrivateKey()), caKeyAlgorithm: .rsa4096))
        #expect(second.certificateChain == [pki.caCertificate])
        #expect(try await engine.kmipPKI(admin).keyAlgorithm == .ecP384)

        // The CA key is stored sealed: its record holds no PKCS#8 private key in the clear.
        let record = try #require(
            try await storage.withTransaction { tx in try await tx.get(kind: "kmip-pki", id: "client-ca") })
        let body = String(decoding: record.body, as: UTF8.self)
        #expect(!body.contains("PRIVATE KEY"))

        // Audited: the PKI's creation and each issuance.
        let events = try await storage.withTransaction { tx in
            try await tx.auditEvents(chain: nil, after: nil, limit: 1000)
        }
        let types = try events.map { String(decoding: try StoredJSON.unpack($0.body), as: UTF8.self) }
        #expect(types.filter { $0.contains("kmip.pki.create") }.count == 1)
        #expect(types.filter { $0.contains("kmip.client.certificate.issue") }.count == 2)
    }

    @Test func setUpExplicitlyWithAnRSAKey() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let pki = try await engine.setUpKMIPPKI(admin, keyAlgorithm: .rsa2048)
        #expect(pki.keyAlgorithm == .rsa2048)
        let ca = try Certificate(pemEncoded: pki.caCertificate)
        #expect(_RSA.Signing.PublicKey(ca.publicKey)?.keySizeInBits == 2048)
        #expect(try ca.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        let rsaClient = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let issued = try await engine.issueKMIPClientCertificate(
            admin, KMIPClientCertificateRequest(commonName: "tape", publicKey: rsaClient.publicKey.pemRepresentation))
        let leaf = try Certificate(pemEncoded: issued.certificate)
        #expect(leaf.signatureAlgorithm == .sha256WithRSAEncryption)
        #expect(try leaf.extensions.keyUsage?.keyEncipherment == true, "RSA clients may use key transport")
        #expect(abs(leaf.notValidAfter.timeIntervalSinceNow - 365 * 86400) < 120, "365 days by default")
    }

    @Test func onlyOrganizationAdminsAndOnlyWellFormedRequests() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        _ = try await engine.createSecret(admin, project: "p", name: "s", value: SecretBytes([1]))
        let member = try await engine.createIdentity(admin, IdentitySpec(name: "ops", orgRole: .member))
        _ = try await engine.setMembership(
            admin, project: "p", identityId: member.id, roles: [RoleGrant(role: "admin")])
        let key = publicKeyPEM(P256.Signing.PrivateKey())
        #expect(
            await code { _ = try await engine.setUpKMIPPKI(caller(member), keyAlgorithm: .ecP256) } == .permissionDenied
        )
        #expect(
            await code {
                _ = try await engine.issueKMIPClientCertificate(
                    caller(member), KMIPClientCertificateRequest(commonName: "x", publicKey: key))
            }
                == .permissionDenied)
        #expect(await code { _ = try await engine.kmipPKI(caller(member)) } == .permissionDenied)
        #expect(try await engine.kmipClientCACertificates().isEmpty, "a refused request generates nothing")

        func bad(_ r: KMIPClientCertificateRequest) async -> EngineError.Code? {
            await code { _ = try await engine.issueKMIPClientCertificate(admin, r) }
        }
        #expect(await bad(KMIPClientCertificateRequest(commonName: "x", publicKey: "garbage")) == .invalidArgument)
        #expect(
            await bad(
                KMIPClientCertificateRequest(commonName: "x", publicKey: P256.Signing.PrivateKey().pemRepresentation))
                == .invalidArgument)
        #expect(await bad(KMIPClientCertificateRequest(commonName: "a b", publicKey: key)) == .invalidArgument)
        #expect(
            await bad(KMIPClientCertificateRequest(commonName: "x", publicKey: key, ttl: "10s")) == .invalidArgument)
        #expect(
            await bad(KMIPClientCertificateRequest(commonName: "x", publicKey: key, ttl: "9999d")) == .invalidArgument)
        #expect(
            await bad(
                KMIPClientCertificateRequest(
                    commonName: "x", publicKey: P521.Signing.PrivateKey().publicKey.pemRepresentation))
                == .invalidArgument)
    }

    /// The KMIP listener trusts the KMIP client CA, but a certificate from it never makes a bootstrap admin: the
    /// PKI refuses bootstrap-admin names, and a certificate it issued is not taken as one even if its name were.
    @Test func kmipCertificatesNeverAuthenticateBootstrapAdmins() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let key = publicKeyPEM(P256.Signing.PrivateKey())
        #expect(
            await code {
                _ = try await engine.issueKMIPClientCertificate(
                    admin, KMIPClientCertificateRequest(commonName: "gatehouse-admin", publicKey: key))
            }
                == .invalidArgument)
        let issued = try await engine.issueKMIPClientCertificate(
            admin, KMIPClientCertificateRequest(commonName: "array-09", publicKey: key))
        var der = DER.Serializer()
        try der.serialize(try Certificate(pemEncoded: issued.certificate))
        // A principal named like the bootstrap admin, verified by the listener, whose certificate the KMIP CA issued.
        let forged = CallContext(
            principal: Principal(
                method: .tlsCertificate, id: "fp-forged", name: "gatehouse-admin",
                certificateChain: [der.serializedBytes], verifiedByListener: true),
            frontEnd: "test")
        #expect(await code { _ = try await engine.listProjects(forged, after: nil, limit: 10) } == .unauthenticated)
        // The same name from another CA (the listener's configured one) is the bootstrap admin.
        let applianceLeaf = try CertificateFactory.issue(
            commonName: "gatehouse-admin", usage: .client, issuer: testCA, validity: 3600)
        var applianceDER = DER.Serializer()
        try applianceDER.serialize(applianceLeaf.certificate)
        let real = CallContext(
            principal: Principal(
                method: .tlsCertificate, id: "fp-real", name: "gatehouse-admin",
                certificateChain: [applianceDER.serializedBytes],
                verifiedByListener: true),
            frontEnd: "test")
        _ = try await engine.listProjects(real, after: nil, limit: 10)
    }

    /// A certificate from the KMIP PKI logs its identity in through TLS Certificate Auth attached with the KMIP CA.
    @Test func aClientCertificateAuthenticatesItsIdentity() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let identity = try await engine.createIdentity(admin, IdentitySpec(name: "array-01"))
        let clientKey = P256.Signing.PrivateKey()
        let issued = try await engine.issueKMIPClientCertificate(
            admin, KMIPClientCertificateRequest(commonName: "array-01", publicKey: publicKeyPEM(clientKey)))
        _ = try await engine.attachTLSCertAuth(
            admin, identityId: identity.id,
            AuthMethodSpec(caCertificate: try #require(issued.certificateChain.last), allowedCommonNames: ["array-01"]))
        let leaf = try Certificate(pemEncoded: issued.certificate)
        var der = DER.Serializer()
        try der.serialize(leaf)
        let ctx = CallContext(
            principal: Principal(
                method: .tlsCertificate, id: "fp-array-01", name: "array-01", certificateChain: [der.serializedBytes]),
            frontEnd: "test")
        #expect(try await engine.whoami(ctx)["identityId"] == identity.id)
    }
}
