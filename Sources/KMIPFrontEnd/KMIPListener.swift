import EngineAPI
import Foundation
import HummingbirdCore
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

    /// The listener's policy: TLS first, and the log-in ends with the first whole request.
    var policy: ListenerPolicy {
        ListenerPolicy(
            host: settings.host, port: settings.port, tls: .direct(settings.tls),
            handshakeTimeout: settings.handshakeTimeout, idleTimeout: settings.idleTimeout,
            loginTimeout: settings.loginTimeout)
    }

    public func run() async throws {
        let settings = self.settings
        let logger = self.logger
        let dispatcher = {
            var d = KMIPDispatcher(
                maxMessageSize: settings.maxMessageSize, engine: engine, clock: { Int64(Date().timeIntervalSince1970) })
            d.logSink = { message in logger.notice("KMIP client log message", metadata: ["message": "\(message)"]) }
            d.failures = FailureRateLimiter(
                listener: "kmip", burst: settings.failureBurst, refillPerMinute: settings.failuresPerMinute)
            return d
        }()
        let onBound = self.onBound
        try await Listener.service(
            KMIPChildChannel(dispatcher: dispatcher, maxMessageSize: settings.maxMessageSize), policy: policy,
            counter: counter, logger: logger
        ) { port in
            logger.info("KMIP listening", metadata: ["port": "\(port)"])
            await onBound(port)
        }.run()
    }
}

/// One KMIP connection: TTLV framing, then one request at a time through the dispatcher.
public struct KMIPChildChannel: ServerChildChannel {
    public typealias Value = NIOAsyncChannel<ByteBuffer, ByteBuffer>
    let dispatcher: KMIPDispatcher
    let maxMessageSize: Int

    public init(dispatcher: KMIPDispatcher, maxMessageSize: Int) {
        self.dispatcher = dispatcher
        self.maxMessageSize = maxMessageSize
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(TTLVFrameDecoder(maxMessageSize: maxMessageSize)))
            return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        await Self.serve(value, dispatcher: dispatcher, logger: logger)
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
