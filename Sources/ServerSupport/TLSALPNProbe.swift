import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Connects with TLS, SNI `serverName` and ALPN `acme-tls/1` (RFC 8737), without verifying the certificate, and
/// returns the negotiated protocol and the peer's leaf certificate (DER). The caller checks the certificate.
public enum TLSALPNProbe {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    final class Watcher: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<String?>
        init(promise: EventLoopPromise<String?>) { self.promise = promise }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted(let negotiated) = event as? TLSUserEvent { promise.succeed(negotiated) }
            context.fireUserInboundEventTriggered(event)
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(error)
            context.close(promise: nil)
        }
        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(Failure(description: "connection closed during the handshake"))
        }
    }

    public static func probe(host: String, port: Int, serverName: String?, timeout: TimeAmount = .seconds(5))
        async throws
        -> (protocol: String?, leaf: [UInt8]?)
    {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none  // the challenge certificate is self-signed by design
        tls.applicationProtocols = ["acme-tls/1"]
        tls.minimumTLSVersion = .tlsv12
        let context = try NIOSSLContext(configuration: tls)
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: String?.self)
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: serverName))
                    try channel.pipeline.syncOperations.addHandler(Watcher(promise: promise))
                }
            }
            .connect(host: host, port: port).get()
        defer { channel.close(promise: nil) }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(Failure(description: "TLS handshake timed out"))
        }
        defer { deadline.cancel() }
        let negotiated = try await promise.futureResult.get()
        let leaf = try await channel.nioSSL_peerCertificate().get().map { try $0.toDERBytes() }
        return (negotiated, leaf)
    }
}
