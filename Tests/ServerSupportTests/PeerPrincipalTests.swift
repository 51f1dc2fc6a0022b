import Crypto
import Foundation
import NIOSSL
import ServerSupport
import Testing
import X509

/// A client certificate's serial reaches the principal (and so the audit trail) in the one format used everywhere:
/// full lowercase hex of the serial's bytes, no separators, no leading zero of a byte dropped.
@Suite struct PeerPrincipalTests {
    @Test func theSerialIsFullHex() throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("serial-format") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(bytes: [0x01, 0x0a, 0x00, 0x05]),
            publicKey: .init(key.publicKey), notValidBefore: now - 60, notValidAfter: now + 3600, issuer: name,
            subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: Certificate.Extensions(),
            issuerPrivateKey: .init(key))
        let nio = try NIOSSLCertificate(bytes: try certificate.serializeAsPEM().derBytes, format: .der)
        let principal = try #require(PeerPrincipal.principal(for: nio, verifiedByListener: true))
        #expect(principal.attributes["serial"] == "010a0005")
        #expect(principal.name == "serial-format")
    }
}
