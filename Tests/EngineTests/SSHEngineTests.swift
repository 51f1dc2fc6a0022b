import Crypto
import EngineAPI
import Foundation
import SSHProtocol
import StorageAPI
import Testing

@testable import Engine

/// The SSH CA in the engine: signatures of every CA algorithm verify over the certificate's signed bytes, keys are
/// sealed at rest, requests outside the rules are refused with the reason, revocation feeds the KRL.
@Suite struct SSHEngineTests {
    static func userKey() -> String {
        SSHPublicKey.ed25519(Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)).authorizedKey(
            comment: "u")
    }

    /// Splits `mpint r, mpint s` into a fixed-width r‖s.
    static func rawECDSA(_ inner: [UInt8], width: Int) throws -> [UInt8] {
        var r = SSHReader(inner)
        let a = try r.mpint()
        let b = try r.mpint()
        return [UInt8](repeating: 0, count: width - a.count) + a + [UInt8](repeating: 0, count: width - b.count) + b
    }

    @Test func everyCAAlgorithmSignsVerifiableCertificates() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        for algorithm in [SSHKeyAlgorithm.ed25519, .ecdsaP256, .ecdsaP384, .rsa3072] {
            let ca = try await engine.createSSHCA(
                admin, project: "p", SSHCASpec(name: "ca-\(algorithm.rawValue)", keyAlgorithm: algorithm))
            let info = try await engine.issueSSHCertificate(
                admin, caId: ca.id,
                SSHCertificateRequest(type: .user, publicKey: Self.userKey(), principals: ["alice"], ttl: "1h"))
            let cert = try SSHCertificate(line: info.certificate)
            #expect(cert.signatureKey == (try SSHPublicKey(authorizedKey: ca.publicKey)).blob)
            #expect(cert.principals == ["alice"] && cert.kind == .user && String(cert.serial) == info.serial)
            #expect(cert.extensions == ["permit-pty": ""])
            var sig = SSHReader(cert.signature)
            let alg = try sig.text()
            let bytes = try sig.string()
            switch try SSHPublicKey(authorizedKey: ca.publicKey) {
            case .ed25519(let k):
                #expect(alg == "ssh-ed25519")
                #expect(
                    try Curve25519.Signing.PublicKey(rawRepresentation: k).isValidSignature(
                        bytes, for: cert.signedBytes))
            case .ecdsa(let curve, let point) where curve == "nistp256":
                let s = try P256.Signing.ECDSASignature(rawRepresentation: try Self.rawECDSA(bytes, width: 32))
                #expect(
                    try P256.Signing.PublicKey(x963Representation: point).isValidSignature(s, for: cert.signedBytes))
            case .ecdsa(_, let point):
                let s = try P384.Signing.ECDSASignature(rawRepresentation: try Self.rawECDSA(bytes, width: 48))
                #expect(
                    try P384.Signing.PublicKey(x963Representation: point).isValidSignature(s, for: cert.signedBytes))
            case .rsa(_, let n):
                #expect(alg == "rsa-sha2-512" && bytes.count == n.count)
            }
        }
    }

    @Test func keysAreSealedAndBadRequestsAreRefusedWithTheReason() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let ca = try await engine.createSSHCA(admin, project: "p", SSHCASpec(name: "users", maxUserTTL: "8h"))
        let key = try await engine.transact { tx in try await engine.ssh.loadSSHCA(ca.id, tx).1 }
        let seed = Data(key.serialized)
        let records = try await storage.withTransaction { tx in
            try await tx.list(kind: "ssh-ca", scope: nil, afterID: nil, limit: 10)
        }
        #expect(
            records.count == 1
                && records.allSatisfy {
                    $0.body.range(of: seed) == nil && $0.body.range(of: Data(seed.base64EncodedString().utf8)) == nil
                })

        func refused(_ request: SSHCertificateRequest) async -> String? {
            await message { _ = try await engine.issueSSHCertificate(admin, caId: ca.id, request) }
        }
        let user = Self.userKey()
        let rsa1024 = SSHPublicKey.rsa(exponent: [1, 0, 1], modulus: [0xc1] + [UInt8](repeating: 3, count: 127))
            .authorizedKey()
        let cases: [(SSHCertificateRequest, String)] = [
            (.init(type: .user, publicKey: "ssh-dss AAAAB3NzaC1kc3MAAAA=", principals: ["a"]), "publicKey"),
            (.init(type: .user, publicKey: rsa1024, principals: ["a"]), "at least 2048 bits"),
            (.init(type: .user, publicKey: user, principals: []), "principals"),
            (.init(type: .user, publicKey: user, principals: ["a b"]), "without spaces"),
            (.init(type: .user, publicKey: user, principals: ["a", "a"]), "repeat"),
            (.init(type: .user, publicKey: user, principals: ["a"], ttl: "9h"), "exceeds the CA's maximum of 8h"),
            (.init(type: .user, publicKey: user, principals: ["a"], ttl: "soon"), "duration"),
            (
                .init(type: .user, publicKey: user, principals: ["a"], criticalOptions: ["permit-everything": ""]),
                "unknown critical option"
            ),
            (
                .init(
                    type: .user, publicKey: user, principals: ["a"], criticalOptions: ["source-address": "10.0.0.0/33"]),
                "source-address"
            ),
            (.init(type: .user, publicKey: user, principals: ["a"], extensions: ["permit-root"]), "unknown extension"),
            (
                .init(type: .host, publicKey: user, principals: ["h"], extensions: ["permit-pty"]),
                "host certificates have no"
            ),
        ]
        for (request, words) in cases {
            let m = await refused(request)
            #expect(m?.contains(words) == true, "\(words): \(m ?? "accepted")")
        }
        #expect(
            await message {
                _ = try await engine.issueSSHCertificate(
                    stranger, caId: ca.id, .init(type: .user, publicKey: user, principals: ["a"]))
            } != nil)

        // Revocation: once, and the serial enters the KRL.
        let cert = try await engine.issueSSHCertificate(
            admin, caId: ca.id, .init(type: .user, publicKey: user, principals: ["a"]))
        #expect(try SSHKRL(encoded: try await engine.sshKRL(caId: ca.id)).serials.isEmpty)
        _ = try await engine.revokeSSHCertificate(admin, serial: cert.serial)
        #expect(
            await message { _ = try await engine.revokeSSHCertificate(admin, serial: cert.serial) }?.contains(
                "already revoked") == true)
        let krl = try SSHKRL(encoded: try await engine.sshKRL(caId: ca.id))
        #expect(krl.serials[(try SSHPublicKey(authorizedKey: ca.publicKey)).blob] == [UInt64(cert.serial) ?? 0])
        #expect(try await engine.getSSHCertificate(admin, serial: cert.serial).status == .revoked)
    }
}
