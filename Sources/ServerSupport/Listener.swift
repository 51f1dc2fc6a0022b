import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// What every Gatehouse listener puts in front of its protocol, whatever the protocol: TLS from a reloadable context
/// (SIGHUP swaps certificates for new connections) and the connection guard (connection cap, handshake timeout,
/// login deadline, idle timeout, handshake-failure metrics).
public struct ListenerPolicy: Sendable {
    public enum TLS: Sendable {
        /// Plain TCP (the operations listener, or a test).
        case none
        /// A TLS handshake first.
        case direct(ReloadableTLSContext)
        /// The protocol asks for TLS in clear first (PostgreSQL's SSLRequest): this handler goes in front of the guard
        /// and installs TLS itself.
        case negotiated(@Sendable () -> any ChannelHandler)
    }

    public var host: String
    public var port: Int
    public var tls: TLS
    public var handshakeTimeout: TimeAmount
    public var idleTimeout: TimeAmount
    /// From accept to the end of the log-in (nil: none).
    public var loginTimeout: TimeAmount?
    public var login: LoginCompletion
    /// Written before closing a connection whose login deadline passed: the protocol's own error.
    public var loginTimeoutMessage: [UInt8]?
    /// Whether a peer that shuts down its sending side keeps the connection open (HTTP). Elsewhere the connection
    /// closes, as a socket does by default.
    public var allowHalfClosure: Bool

    public init(
        host: String, port: Int, tls: TLS, handshakeTimeout: TimeAmount, idleTimeout: TimeAmount,
        loginTimeout: TimeAmount?, login: LoginCompletion = .signalled, loginTimeoutMessage: [UInt8]? = nil,
        allowHalfClosure: Bool = false
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.loginTimeout = loginTimeout
        self.login = login
        self.loginTimeoutMessage = loginTimeoutMessage
        self.allowHalfClosure = allowHalfClosure
    }

    /// Installs TLS (or the handler that negotiates it) and the connection guard at the head of a new connection's
    /// pipeline. Runs on the channel's event loop, before the protocol's own handlers.
    public func install(on channel: any Channel, counter: ConnectionCounter) throws {
        let sync = channel.pipeline.syncOperations
        let expectsTLS: Bool
        switch tls {
        case .none: expectsTLS = false
        case .direct(let context):
            try sync.addHandlers(context.makeServerHandlers())
            expectsTLS = true
        case .negotiated(let makeHandler):
            try sync.addHandler(makeHandler())
            expectsTLS = true
        }
        try sync.addHandler(
            ConnectionGuardHandler(
                counter: counter, tls: expectsTLS, handshakeTimeout: handshakeTimeout, idleTimeout: idleTimeout,
                loginTimeout: loginTimeout, login: login, loginTimeoutMessage: loginTimeoutMessage))
        if !allowHalfClosure, let options = channel.syncOptions {
            try options.setOption(.allowRemoteHalfClosure, value: false)
        }
    }
}

/// A protocol's child channel behind a listener's policy. HTTP (Hummingbird's `HTTP1Channel`), KMIP and the
/// PostgreSQL proxy are each a `ServerChildChannel`: `setup` adds the protocol's handlers and `handle` serves one
/// connection.
public struct GuardedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Base.Value

    public let base: Base
    public let policy: ListenerPolicy
    public let counter: ConnectionCounter
    /// Runs after the base's setup (HTTP adds its connection policy after NIO's decoder).
    let finish: (@Sendable (any Channel) throws -> Void)?

    public init(
        _ base: Base, policy: ListenerPolicy, counter: ConnectionCounter,
        finish: (@Sendable (any Channel) throws -> Void)? = nil
    ) {
        self.base = base
        self.policy = policy
        self.counter = counter
        self.finish = finish
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try policy.install(on: channel, counter: counter)
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }.flatMapThrowing { value in
            try finish?(channel)
            return value
        }
    }

    public func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension GuardedChildChannel: HTTPChannelHandler where Base: HTTPChannelHandler {
    public var responder: HTTPChannelHandler.Responder { base.responder }
}

/// The one way a Gatehouse listener runs: HummingbirdCore's `Server` (bootstrap, accept loop, each connection in a
/// structured task group, and a graceful drain that stops accepting and waits for open connections, which end
/// after the request they are working on) serving a protocol behind its `ListenerPolicy`. The HTTP listeners get
/// the same server through Hummingbird's `Application`.
public enum Listener {
    public static func service<Base: ServerChildChannel>(
        _ base: Base, policy: ListenerPolicy, counter: ConnectionCounter, logger: Logger,
        onBound: @escaping @Sendable (Int) async -> Void
    ) -> some Service {
        let port = policy.port
        return Server(
            childChannelSetup: GuardedChildChannel(base, policy: policy, counter: counter),
            configuration: ServerConfiguration(address: .hostname(policy.host, port: policy.port)),
            onServerRunning: { channel in await onBound(channel.localAddress?.port ?? port) },
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
    }
}
