import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import ServerSupport
import TestSupport
import Testing

/// A listener's client trust can grow at run time (the KMIP client CA that lives in storage): a client certified by
/// an extra CA is refused before `setExtraClientRoots`, served after it (also across a file reload), and refused
/// again once the CA is removed. Real TLS over loopback.
@Suite struct ReloadableTLSContextTests {
    final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
    }

    /// Collects the first bytes read; fails on error or close before them.
    final class FirstRead: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<String>
        init(_ promise: EventLoopPromise<String>) { self.promise = promise }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            promise.succeed(String(buffer: unwrapInboundIn(data)))
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(error)
            context.close(promise: nil)
        }
        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(ChannelError.eof)
        }
    }

    @Test func extraClientRootsAreTrustedOnlyWhileSet() async throws {
        let dir = try TemporaryDirectory(prefix: "gh-tls")
        let serverCA = try CertificateFactory.makeCA(commonName: "Server CA", validity: 3600)
        let server = try CertificateFactory.issue(
            commonName: "localhost", usage: .server(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"]),
            issuer: serverCA, validity: 3600)
        let fileCA = try CertificateFactory.makeCA(commonName: "File client CA", validity: 3600)
        let extraCA = try CertificateFactory.makeCA(commonName: "KMIP client CA", validity: 3600)
        let client = try CertificateFactory.issue(
            commonName: "array-01", usage: .client, issuer: extraCA, validity: 3600)
        for (name, text) in [
            ("server.crt", server.certificatePEM), ("server.key", server.privateKeyPEM),
            ("client-ca.crt", fileCA.certificatePEM),
        ] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: dir.path + "/" + name))
        }
        let tls = try ReloadableTLSContext(
            settings: TLSServerSettings(
                certificatePath: dir.path + "/server.crt", keyPath: dir.path + "/server.key",
                clientCAPath: dir.path + "/client-ca.crt",
                clientAuth: .required))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(tls.makeServerHandlers())
                    try channel.pipeline.syncOperations.addHandler(Echo())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)

        var clientConfig = TLSConfiguration.makeClientConfiguration()
        clientConfig.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(serverCA.certificatePEM.utf8)))
        clientConfig.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(client.certificatePEM.utf8)).map {
            .certificate($0)
        }
        clientConfig.privateKey = .privateKey(
            try NIOSSLPrivateKey(bytes: Array(client.privateKeyPEM.utf8), format: .pem))
        let clientContext = try NIOSSLContext(configuration: clientConfig)

        /// Whether a fresh connection with the client certificate gets its bytes echoed.
        func served() async -> Bool {
            let promise = group.next().makePromise(of: String.self)
            do {
                let channel = try await ClientBootstrap(group: group)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                try NIOSSLClientHandler(context: clientContext, serverHostname: "localhost"))
                            try channel.pipeline.syncOperations.addHandler(FirstRead(promise))
                        }
                    }
                    .connect(host: "127.0.0.1", port: port).get()
                try await channel.writeAndFlush(ByteBuffer(string: "ping"))
                let answer = try await promise.futureResult.get()
                try? await channel.close()
                return answer == "ping"
            } catch {
                promise.fail(error)
                return false
            }
        }

        #expect(await served() == false, "a CA the listener does not trust")
        #expect(try tls.setExtraClientRoots([extraCA.certificatePEM]))
        #expect(await served() == true, "trusted once added")
        #expect(try tls.setExtraClientRoots([extraCA.certificatePEM]) == false, "an unchanged set rebuilds nothing")
        try tls.reload()
        #expect(await served() == true, "kept across a reload of the files")
        #expect(try tls.setExtraClientRoots([]))
        #expect(await served() == false, "refused again once removed")
        #expect(throws: (any Error).self) { try tls.setExtraClientRoots(["not a certificate"]) }
        #expect(await served() == false, "a failed update keeps the previous trust")

        try await listener.close()
        try await group.shutdownGracefully()
    }
}
