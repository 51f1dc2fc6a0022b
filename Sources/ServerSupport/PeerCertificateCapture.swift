import EngineAPI
import Foundation
import NIOCore
import NIOSSL
import Synchronization
import X509

/// For listeners with optional client authentication: TLS proves the client holds the key of the certificate it
/// presents, and this records the presented chain instead of letting BoringSSL refuse certificates from other CAs.
/// Whether the chain verifies against the listener's own client CA is decided later (`PeerPrincipal`) with
/// swift-certificates; certificates from other CAs reach the engine, which accepts them only for an identity whose
/// TLS Certificate Auth names that CA and the certificate's common name — and audits every refusal.
public final class PeerCertificateCapture: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    public typealias InboundIn = NIOAny

    private let chain = Mutex<[[UInt8]]>([])
    /// The listener's client-CA roots at the time the connection was accepted.
    public let listenerRoots: [Certificate]

    public init(listenerRoots: [Certificate]) { self.listenerRoots = listenerRoots }

    /// The verification callback to give NIOSSL: records the chain and lets the handshake continue.
    public func callback(_ certificates: [NIOSSLCertificate], _ promise: EventLoopPromise<NIOSSLVerificationResult>) {
        let ders = certificates.prefix(10).compactMap { try? $0.toDERBytes() }
        chain.withLock { $0 = ders }
        promise.succeed(ders.isEmpty ? .failed : .certificateVerified)
    }

    /// The presented chain, leaf first (empty when the client sent no certificate).
    public var presentedChain: [[UInt8]] { chain.withLock { $0 } }

    /// The principal computed for this connection's chain, reused by later requests on it until `until`.
    let resolved = Mutex<(chain: [[UInt8]], principal: Principal, until: Date)?>(nil)
}
