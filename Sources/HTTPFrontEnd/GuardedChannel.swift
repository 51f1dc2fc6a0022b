import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import ServerSupport

/// A Hummingbird child channel that adds Gatehouse's listener policy in front of HTTP/1.1: TLS from a
/// reloadable context (SIGHUP swaps certificates for new connections) and the connection guard (cap, handshake
/// timeout, idle timeout, handshake-failure metrics).
public struct GuardedChannel<Base: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Base.Value

    let base: Base
    let tls: ReloadableTLSContext?
    let counter: ConnectionCounter
    let handshakeTimeout: TimeAmount
    let idleTimeout: TimeAmount
    let loginTimeout: TimeAmount

    public init(
        _ base: Base, tls: ReloadableTLSContext?, counter: ConnectionCounter, handshakeTimeout: TimeAmount,
        idleTimeout: TimeAmount, loginTimeout: TimeAmount
    ) {
        self.loginTimeout = loginTimeout
        self.base = base
        self.tls = tls
        self.counter = counter
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            if let tls {
                try channel.pipeline.syncOperations.addHandlers(tls.makeServerHandlers())
            }
            try channel.pipeline.syncOperations.addHandler(
                ConnectionGuardHandler(
                    counter: counter, tls: tls != nil, handshakeTimeout: handshakeTimeout, idleTimeout: idleTimeout,
                    loginTimeout: loginTimeout, login: .httpRequestHead,
                    loginTimeoutMessage: HTTPConnectionPolicyHandler.requestTimeout))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }.flatMapThrowing { value in
            // Between NIO's HTTP/1 decoder (which knows the request's version) and the conversion to HTTP types
            // (which drops it): HTTP/1.0 connection handling and HSTS.
            let sync = channel.pipeline.syncOperations
            let decoder = try sync.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try sync.addHandler(HTTPConnectionPolicyHandler(hsts: tls != nil), position: .after(decoder))
            return value
        }
    }

    public func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension GuardedChannel: HTTPChannelHandler where Base: HTTPChannelHandler {
    public var responder: HTTPChannelHandler.Responder { base.responder }
}
