import NIOCore
import NIOPosix
import SystemCrypto

/// Connects with TLS, SNI `serverName` and ALPN `acme-tls/1` (RFC 8737), without verifying the certificate, and
/// returns the negotiated protocol and the peer's leaf certificate (DER). The caller checks the certificate.
///
/// The handshake runs on the system OpenSSL (`OpenSSLTLSClient`), not swift-nio-ssl: BoringSSL refuses a server
/// certificate whose key usage lacks digitalSignature (lego's RSA challenge certificate has keyEncipherment only),
/// and RFC 8737 puts no condition on the challenge certificate's key usage.
public enum TLSALPNProbe {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Outcome: Sendable {
        public var negotiated: String?
        public var leaf: [UInt8]?
        public var version: String
    }

    /// Drives the handshake: every read is fed to OpenSSL, whatever it wants to send is written.
    final class Driver: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<Outcome>
        let client: OpenSSLTLSClient
        var finished = false

        init(promise: EventLoopPromise<Outcome>, client: OpenSSLTLSClient) {
            self.promise = promise
            self.client = client
        }

        func channelActive(context: ChannelHandlerContext) {
            handle(client.start(), context: context)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !finished else { return }
            let buffer = unwrapInboundIn(data)
            handle(client.feed(buffer.readableBytesView), context: context)
        }

        func handle(_ step: OpenSSLTLSClient.Step, context: ChannelHandlerContext) {
            switch step {
            case .needMore(let send):
                if !send.isEmpty { context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: send)), promise: nil) }
            case .done(let send):
                if !send.isEmpty { context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: send)), promise: nil) }
                finished = true
                promise.succeed(
                    Outcome(
                        negotiated: client.negotiatedProtocol, leaf: client.peerCertificate, version: client.version)
                )
            case .failed(let why):
                finished = true
                promise.fail(Failure(description: why))
                context.close(promise: nil)
            }
        }

        typealias OutboundOut = ByteBuffer

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            finished = true
            promise.fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !finished { promise.fail(Failure(description: "connection closed during the handshake")) }
            context.fireChannelInactive()
        }
    }

    public static func probe(host: String, port: Int, serverName: String?, timeout: TimeAmount = .seconds(5))
        async throws
        -> (protocol: String?, leaf: [UInt8]?)
    {
        let outcome = try await handshake(
            host: host, port: port, serverName: serverName, alpn: ["acme-tls/1"], timeout: timeout)
        return (outcome.negotiated, outcome.leaf)
    }

    public static func handshake(
        host: String, port: Int, serverName: String?, alpn: [String], timeout: TimeAmount = .seconds(5)
    ) async throws -> Outcome {
        // An IP literal is never sent as SNI (RFC 6066 §3).
        let sni = serverName.flatMap { try? SocketAddress(ipAddress: $0, port: 0) } == nil ? serverName : nil
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: Outcome.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        guard let client = OpenSSLTLSClient(serverName: sni, alpn: alpn) else {
                            throw Failure(description: "cannot set up a TLS client for \(serverName ?? host)")
                        }
                        try channel.pipeline.syncOperations.addHandler(Driver(promise: promise, client: client))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            promise.fail(error)
            throw error
        }
        defer { channel.close(promise: nil) }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(Failure(description: "TLS handshake timed out"))
        }
        defer { deadline.cancel() }
        return try await promise.futureResult.get()
    }
}
