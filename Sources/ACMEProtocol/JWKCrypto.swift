import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

extension JWK {
    /// RFC 7638 SHA-256 thumbprint, base64url.
    public var thumbprint: String { Base64URL.encode(SHA256.hash(data: Array(canonicalJSON.utf8))) }

    /// Verifies a JWS signature over `input` (ASCII of `protected.payload`).
    public func verify(alg: String, signature: [UInt8], input: [UInt8]) -> Bool {
        guard algorithms.contains(alg) else { return false }
        switch self {
        case .p256(let x, let y):
            guard let key = try? P256.Signing.PublicKey(rawRepresentation: x + y),
                let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(sig, for: SHA256.hash(data: input))
        case .p384(let x, let y):
            guard let key = try? P384.Signing.PublicKey(rawRepresentation: x + y),
                let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(sig, for: SHA384.hash(data: input))
        case .rsa(let n, let e):
            guard let key = try? _RSA.Signing.PublicKey(n: n, e: e) else { return false }
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            return key.isValidSignature(
                sig, for: SHA256.hash(data: input), padding: alg == "PS256" ? .PSS : .insecurePKCS1v1_5)
        case .ed25519(let x):
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: x) else { return false }
            return key.isValidSignature(signature, for: input)
        }
    }
}

extension JWK {
    /// The key as an X.509 public key.
    public var certificatePublicKey: Certificate.PublicKey? {
        switch self {
        case .p256(let x, let y):
            (try? P256.Signing.PublicKey(rawRepresentation: x + y)).map { Certificate.PublicKey($0) }
        case .p384(let x, let y):
            (try? P384.Signing.PublicKey(rawRepresentation: x + y)).map { Certificate.PublicKey($0) }
        case .rsa(let n, let e): (try? _RSA.Signing.PublicKey(n: n, e: e)).map { Certificate.PublicKey($0) }
        case .ed25519(let x):
            (try? Curve25519.Signing.PublicKey(rawRepresentation: x)).map { Certificate.PublicKey($0) }
        }
    }

    /// Whether this is the key certified by a DER certificate (for revocation signed with the certificate key).
    public func certifies(_ certificateDER: [UInt8]) -> Bool {
        guard let cert = try? Certificate(derEncoded: certificateDER), let key = certificatePublicKey else {
            return false
        }
        return cert.publicKey == key
    }
}

/// The serial number of a DER certificate as lowercase hex of its content bytes ("" if unreadable).
public func certificateSerialHex(_ der: [UInt8]) -> String {
    guard let cert = try? Certificate(derEncoded: der) else { return "" }
    return cert.serialNumber.bytes.map { String(format: "%02x", $0) }.joined()
}

/// tls-alpn-01 (RFC 8737 §3) certificate checks.
public enum TLSALPN01 {
    public static let acmeIdentifierOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 31]

    /// Nil when `leafDER` proves control of `identifier` for `keyAuthorization`; else why not.
    public static func problem(leafDER: [UInt8]?, negotiated: String?, identifier: String, keyAuthorization: String)
        -> String?
    {
        guard negotiated == "acme-tls/1" else { return "the server did not negotiate ALPN acme-tls/1" }
        guard let der = leafDER, let cert = try? Certificate(derEncoded: der) else {
            return "no certificate was presented"
        }
        guard let sans = try? cert.extensions.subjectAlternativeNames, sans.count == 1,
            case .dnsName(let name) = sans.first,
            name.lowercased() == identifier.lowercased()
        else { return "the certificate must have exactly one dNSName SAN, \(identifier)" }
        guard let ext = cert.extensions.first(where: { $0.oid == acmeIdentifierOID }) else {
            return "the certificate has no acmeIdentifier extension"
        }
        guard ext.critical else { return "the acmeIdentifier extension must be critical" }
        guard let node = try? DER.parse(Array(ext.value)), let octets = try? ASN1OctetString(derEncoded: node),
            Array(octets.bytes) == Array(SHA256.hash(data: Array(keyAuthorization.utf8)))
        else { return "the acmeIdentifier extension does not hold SHA-256 of the key authorization" }
        return nil
    }
}
