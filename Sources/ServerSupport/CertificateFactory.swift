import Crypto
import Foundation
import SwiftASN1
import X509

/// Makes P-256 certificates for the development PKI and for tests. (The PKI engine of a later issue issues
/// production certificates; this only bootstraps the appliance's own TLS.)
public enum CertificateFactory {
    /// A certificate with its private key.
    public struct Issued: Sendable {
        public var certificate: Certificate
        public var privateKey: P256.Signing.PrivateKey
        public init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
            self.certificate = certificate
            self.privateKey = privateKey
        }
        /// PEM text ending in a newline, so several can be concatenated into a chain file.
        public var certificatePEM: String { ((try? certificate.serializeAsPEM().pemString) ?? "") + "\n" }
        /// PKCS#8 PEM text ending in a newline.
        public var privateKeyPEM: String { privateKey.pemRepresentation + "\n" }
    }

    /// What a leaf certificate is for.
    public enum Usage: Sendable {
        case server(dnsNames: [String], ipAddresses: [String])
        case client
    }

    static func serial() -> Certificate.SerialNumber {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
        bytes[0] &= 0x7f
        bytes[0] |= 0x01
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// A self-signed CA.
    public static func makeCA(
        commonName: String, notBefore: Date = Date().addingTimeInterval(-300), validity: TimeInterval
    )
        throws -> Issued
    {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Gatehouse")
            CommonName(commonName)
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let certificate = try Certificate(
            version: .v3, serialNumber: serial(), publicKey: publicKey, notValidBefore: notBefore,
            notValidAfter: notBefore.addingTimeInterval(validity), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        return Issued(certificate: certificate, privateKey: key)
    }

    /// A leaf signed by `issuer`.
    public static func issue(
        commonName: String, usage: Usage, issuer: Issued, notBefore: Date = Date().addingTimeInterval(-300),
        validity: TimeInterval
    ) throws -> Issued {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("Gatehouse")
            CommonName(commonName)
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let issuerKeyID = SubjectKeyIdentifier(hash: issuer.certificate.publicKey).keyIdentifier
        let extensions: Certificate.Extensions
        switch usage {
        case .server(let dnsNames, let ips):
            var names: [GeneralName] = dnsNames.map { .dnsName($0) }
            for ip in ips {
                if let bytes = ipBytes(ip) { names.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...]))) }
            }
            extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
            }
        case .client:
            extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
            }
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: serial(), publicKey: publicKey, notValidBefore: notBefore,
            notValidAfter: notBefore.addingTimeInterval(validity), issuer: issuer.certificate.subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(issuer.privateKey))
        return Issued(certificate: certificate, privateKey: key)
    }

    /// Parses a dotted IPv4 or colon IPv6 literal into network-order bytes.
    public static func ipBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

extension SubjectKeyIdentifier {
    /// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subject public key bits.
    init(hash publicKey: Certificate.PublicKey) {
        let digest = Insecure.SHA1.hash(data: publicKey.subjectPublicKeyInfoBytes)
        self.init(keyIdentifier: ArraySlice(digest))
    }
}
