import Crypto
import EngineAPI
import Foundation
import NIOCore
import NIOSSL
import X509

/// Turns a verified TLS peer certificate into a `Principal`. (NIOSSL has already checked the chain against the
/// listener's client CA, the validity period and the key usage; this only reads identity facts.)
public enum PeerPrincipal {
    /// The principal for a leaf certificate (plus any intermediates the peer sent).
    public static func principal(for certificate: NIOSSLCertificate, chain: [[UInt8]] = [], verifiedByListener: Bool)
        -> Principal?
    {
        guard let der = try? certificate.toDERBytes() else { return nil }
        return principal(der: der, chain: chain.isEmpty ? [der] : chain, verifiedByListener: verifiedByListener)
    }

    static func principal(der: [UInt8], chain: [[UInt8]], verifiedByListener: Bool) -> Principal? {
        guard let parsed = try? Certificate(derEncoded: der) else { return nil }
        let fingerprint = Hex.encode(SHA256.hash(data: der))
        let cn = commonName(parsed.subject) ?? parsed.subject.description
        return Principal(
            method: .tlsCertificate, id: "sha256:" + fingerprint, name: cn,
            attributes: [
                "issuer": parsed.issuer.description,
                "serial": Hex.encode(parsed.serialNumber.bytes),  // as everywhere: full lowercase hex
                "notAfter": parsed.notValidAfter.formatted(.iso8601),
            ], certificateChain: chain, verifiedByListener: verifiedByListener)
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
    ///
    /// Listeners with required client authentication let BoringSSL verify the chain against the client CA. With
    /// optional client authentication the chain was only captured; it is verified here against the listener's
    /// roots, and a chain from another CA still yields a principal (not verified by the listener) for the engine to
    /// match against identities' TLS Certificate Auth.
    public static func principal(of channel: any Channel) async -> Principal {
        if let capture = try? await channel.pipeline.handler(type: PeerCertificateCapture.self).get() {
            var chain = capture.presentedChain
            // A resumed TLS session skips the verification callback: the session still knows the peer's leaf.
            if chain.isEmpty, let resumed = try? await channel.nioSSL_peerCertificate().get(),
                let der = try? resumed.toDERBytes()
            {
                chain = [der]
            }
            // Keep-alive connections make many requests with one chain: verify it once a minute, not per request.
            let now = Date()
            if let cached = capture.resolved.withLock({ $0 }), cached.chain == chain, cached.until > now {
                return cached.principal
            }
            guard let leafDER = chain.first, let leaf = try? Certificate(derEncoded: leafDER) else { return .anonymous }
            let intermediates = chain.dropFirst().compactMap { try? Certificate(derEncoded: $0) }
            var verifier = Verifier(rootCertificates: CertificateStore(capture.listenerRoots)) {
                RFC5280Policy()  // validity checked against the current time
            }
            let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
            var verified = false
            if case .validCertificate = result { verified = true }
            let principal = principal(der: leafDER, chain: chain, verifiedByListener: verified) ?? .anonymous
            capture.resolved.withLock { $0 = (chain, principal, min(now + 60, leaf.notValidAfter)) }
            return principal
        }
        guard let certificate = try? await channel.nioSSL_peerCertificate().get(),
            let principal = principal(for: certificate, verifiedByListener: true)
        else { return .anonymous }
        return principal
    }
}
