import EngineAPI
import Foundation
import KMIPProtocol
import KMIPService
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServerSupport
import ServiceLifecycle
import TTLV

/// The KMIP listener (port 5696): mutual TLS, TTLV framing, one request at a time per connection, persistent
/// connections. SIGTERM stops accepting and closes each connection after the request it is working on.
public struct KMIPListener: Service {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var tls: ReloadableTLSContext
        public var maxMessageSize: Int
        public var handshakeTimeout: TimeAmount
        public var idleTimeout: TimeAmount
        /// From accept to the first whole request.
        public var loginTimeout: TimeAmount
        /// Failed authentications a client address may have at once, and per second after that (0: no limit).
        public var failureBurst: Int = 100
        public var failuresPerMinute: Int = 600

        public init(
            host: String, port: Int, tls: ReloadableTLSContext, maxMessageSize: Int, handshakeTimeout: TimeAmount,
            idleTimeout: TimeAmount,
            loginTimeout: TimeAmount = .seconds(30)
        ) {
            self.loginTimeout = loginTimeout
            self.host = host
            self.port = port
            self.tls = tls
            self.maxMessageSize = maxMessageSize
            self.handshakeTimeout = handshakeTimeout
            self.idleTimeout = idleTimeout
        }
    }

    let settings: Settings
    let counter: ConnectionCounter
    let logger: Logger
    let onBound: @Sendable (Int) async -> Void
    let engine: any KeyEngine

    public init(
        settings: Settings, engine: any KeyEngine, counter: ConnectionCounter, logger: Logger,
        onBound: @escaping @Sendable (Int) async -> Void
    ) {
        self.engine = engine
        self.settings = settings
        self.counter = counter
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        let settings = self.settings
        let counter = self.counter
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: settings.host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: settings.tls.context))
                    try sync.addHandler(
                        ConnectionGuardHandler(
                            counter: counter, tls: true, handshakeTimeout: settings.handshakeTimeout,
                            idleTimeout: settings.idleTimeout, loginTimeout: settings.loginTimeout))
                    try sync.addHandler(ByteToMessageHandler(TTLVFrameDecoder(maxMessageSize: settings.maxMessageSize)))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        logger.info("KMIP listening", metadata: ["address": "\(server.channel.localAddress?.description ?? "")"])
        await onBound(server.channel.localAddress?.port ?? settings.port)
        let dispatcher = {
            var d = KMIPDispatcher(
                maxMessageSize: settings.maxMessageSize, engine: engine, clock: { Int64(Date().timeIntervalSince1970) })
            d.logSink = { message in logger.notice("KMIP client log message", metadata: ["message": "\(message)"]) }
            d.failures = FailureRateLimiter(
                listener: "kmip", burst: settings.failureBurst, refillPerMinute: settings.failuresPerMinute)
            return d
        }()
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await Self.serve(connection, dispatcher: dispatcher, logger: logger) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    static func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, dispatcher: KMIPDispatcher, logger: Logger)
        async
    {
        do {
            try await connection.executeThenClose { inbound, outbound in
                // The principal is read once the first frame arrived: the TLS handshake (and so the client
                // certificate) is complete by then.
                var principal: Principal?
                let ip = connection.channel.remoteAddress?.ipAddress
                do {
                    for try await frame in inbound.cancelOnGracefulShutdown() {
                        if principal == nil {
                            connection.channel.triggerUserOutboundEvent(ConnectionGuardEvent.loggedIn, promise: nil)
                            principal = await PeerPrincipal.principal(of: connection.channel)
                        }
                        let principal = principal ?? .anonymous
                        let (response, close) = await dispatcher.process(
                            Array(buffer: frame), principal: principal, ipAddress: ip)
                        try await outbound.write(ByteBuffer(bytes: response))
                        if close { return }
                    }
                } catch is TTLVFrameDecoder.FrameTooLarge {
                    let response = KMIPResponse.encode(
                        version: ProtocolVersion(1, 0), timestamp: Int64(Date().timeIntervalSince1970),
                        results: [.failure(nil, .invalidMessage, "message larger than the server's maximum")])
                    try? await outbound.write(ByteBuffer(bytes: response))
                }
            }
        } catch {
            logger.debug("KMIP connection ended", metadata: ["error": "\(error)"])
        }
    }
}
