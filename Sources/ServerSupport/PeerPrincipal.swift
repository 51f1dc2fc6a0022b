import Crypto
import EngineAPI
import Foundation
import NIOCore
import NIOSSL
import X509

/// Turns a verified TLS peer certificate into a `Principal`. (NIOSSL has already checked the chain against the
/// listener's client CA, the validity period and the key usage; this only reads identity facts.)
public enum PeerPrincipal {
    /// The principal for a verified leaf certificate.
    public static func principal(for certificate: NIOSSLCertificate) -> Principal? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
        let fingerprint = SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
        let cn = commonName(parsed.subject) ?? parsed.subject.description
        let formatter = ISO8601DateFormatter()
        return Principal(
            method: .tlsCertificate, id: "sha256:" + fingerprint, name: cn,
            attributes: [
                "issuer": parsed.issuer.description,
                "serial": parsed.serialNumber.description,
                "notAfter": formatter.string(from: parsed.notValidAfter),
            ])
    }

    /// The first common name in a distinguished name.
    public static func commonName(_ name: DistinguishedName) -> String? {
        for rdn in name {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                if let s = String(attribute.value) { return s }
                return attribute.value.description
            }
        }
        return nil
    }

    /// The principal of a channel's TLS peer, or `.anonymous` when it presented no certificate.
    public static func principal(of channel: any Channel) async -> Principal {
        guard let certificate = try? await channel.nioSSL_peerCertificate().get(),
            let principal = principal(for: certificate)
        else { return .anonymous }
        return principal
    }
}
