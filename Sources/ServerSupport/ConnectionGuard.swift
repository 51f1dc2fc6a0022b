import Logging
import Metrics
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// Shared per-listener connection accounting: how many are open, the limit, and the listener's metrics.
public final class ConnectionCounter: Sendable {
    public let listener: String
    public let maxConnections: Int
    private let openCount = Atomic<Int>(0)
    let openGauge: Gauge
    let rejected: Counter
    let handshakeFailures: Counter
    let accepted: Counter
    let loginTimeouts: Counter

    public init(listener: String, maxConnections: Int) {
        self.listener = listener
        self.maxConnections = maxConnections
        let dims = [("listener", listener)]
        self.openGauge = Gauge(label: "gatehouse_connections_open", dimensions: dims)
        self.rejected = Counter(label: "gatehouse_connections_rejected_total", dimensions: dims)
        self.handshakeFailures = Counter(label: "gatehouse_tls_handshake_failures_total", dimensions: dims)
        self.accepted = Counter(label: "gatehouse_connections_accepted_total", dimensions: dims)
        self.loginTimeouts = Counter(label: "gatehouse_login_timeouts_total", dimensions: dims)
        openGauge.record(0)
    }

    /// Connections currently open.
    public var open: Int { openCount.load(ordering: .relaxed) }

    func tryOpen() -> Bool {
        let n = openCount.wrappingAdd(1, ordering: .relaxed).newValue
        if n > maxConnections {
            openCount.wrappingSubtract(1, ordering: .relaxed)
            rejected.increment()
            return false
        }
        accepted.increment()
        openGauge.record(n)
        return true
    }

    func close() {
        let n = openCount.wrappingSubtract(1, ordering: .relaxed).newValue
        openGauge.record(n)
    }
}

/// What a front end tells its listener's guard, with `channel.triggerUserOutboundEvent(_:)` (the guard sits near the
/// head of the pipeline, so outbound events from any later handler or from the channel pass through it).
public enum ConnectionGuardEvent: Sendable, Hashable {
    /// The client is authenticated (or, where a listener has no log-in step, its first request arrived whole): the
    /// login deadline no longer applies.
    case loggedIn
    /// Whether a request is in progress on the connection (a statement the server is still working on): the idle
    /// timeout never fires while one is, even when no byte moves.
    case busy(Bool)
}

/// How the guard learns that the login phase is over.
public enum LoginCompletion: Sendable, Hashable {
    /// The front end sends `ConnectionGuardEvent.loggedIn`.
    case signalled
    /// The first HTTP/1 request head has arrived (its terminating empty line was read).
    case httpRequestHead
}

/// Enforces a listener's limits on one connection: the connection cap, the TLS handshake timeout, the login
/// deadline (from accept to an authenticated session, or to the first whole request), and the idle timeout (traffic
/// in either direction resets it; it never fires while the front end reports a request in progress). Counts TLS
/// handshake failures. Install it right after the `NIOSSLServerHandler` (or first, for plain listeners).
public final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = NIOAny

    let counter: ConnectionCounter
    let handshakeTimeout: TimeAmount?
    let idleTimeout: TimeAmount
    let loginTimeout: TimeAmount?
    let login: LoginCompletion
    /// Written (after the TLS handshake) before closing a connection whose login deadline passed: the protocol's own
    /// error (HTTP 408, a PostgreSQL FATAL).
    let loginTimeoutMessage: [UInt8]?
    var counted = false
    var handshakeDone: Bool
    var loggedIn = false
    var busy = false
    var handshakeTimer: Scheduled<Void>?
    var loginTimer: Scheduled<Void>?
    var idleTimer: Scheduled<Void>?
    /// By the event loop's clock (virtual time in tests).
    var lastActivity = NIODeadline.uptimeNanoseconds(0)
    /// The last two bytes read (`.httpRequestHead`), to find the empty line that ends a request head.
    var lastTwo: (UInt8, UInt8) = (0, 0)

    /// - Parameters:
    ///   - tls: whether a TLS handshake is expected (enables the handshake timeout).
    ///   - loginTimeout: nil for none.
    public init(
        counter: ConnectionCounter, tls: Bool, handshakeTimeout: TimeAmount, idleTimeout: TimeAmount,
        loginTimeout: TimeAmount? = nil, login: LoginCompletion = .signalled, loginTimeoutMessage: [UInt8]? = nil
    ) {
        self.counter = counter
        self.handshakeTimeout = tls ? handshakeTimeout : nil
        self.handshakeDone = !tls
        self.idleTimeout = idleTimeout
        self.loginTimeout = loginTimeout
        self.login = login
        self.loginTimeoutMessage = loginTimeoutMessage
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func start(_ context: ChannelHandlerContext) {
        guard !counted else { return }
        guard counter.tryOpen() else {
            context.close(promise: nil)
            return
        }
        counted = true
        lastActivity = context.eventLoop.now
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        if let handshakeTimeout, !handshakeDone {
            handshakeTimer = context.eventLoop.scheduleTask(in: handshakeTimeout) {
                let (handler, ctx) = loopBound.value
                if !handler.handshakeDone {
                    handler.counter.handshakeFailures.increment()
                    ctx.close(promise: nil)
                }
            }
        }
        if let loginTimeout {
            loginTimer = context.eventLoop.scheduleTask(in: loginTimeout) {
                let (handler, ctx) = loopBound.value
                guard !handler.loggedIn else { return }
                handler.counter.loginTimeouts.increment()
                if handler.handshakeDone, let message = handler.loginTimeoutMessage {
                    let channel = ctx.channel
                    ctx.writeAndFlush(NIOAny(ByteBuffer(bytes: message))).whenComplete { _ in
                        channel.close(promise: nil)
                    }
                } else {
                    ctx.close(promise: nil)
                }
            }
        }
        scheduleIdleCheck(context)
    }

    func scheduleIdleCheck(_ context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: lastActivity + idleTimeout) {
            let (handler, ctx) = loopBound.value
            if handler.busy {
                // A statement in flight: quiet is not idleness. The clock restarts when it ends.
                handler.lastActivity = ctx.eventLoop.now
                handler.scheduleIdleCheck(ctx)
            } else if ctx.eventLoop.now >= handler.lastActivity + handler.idleTimeout {
                ctx.close(promise: nil)
            } else {
                handler.scheduleIdleCheck(ctx)
            }
        }
    }

    func markLoggedIn() {
        guard !loggedIn else { return }
        loggedIn = true
        loginTimer?.cancel()
        loginTimer = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = context.eventLoop.now
        if !loggedIn, login == .httpRequestHead {
            scanForHeadEnd(unwrapInboundIn(data))
        }
        context.fireChannelRead(data)
    }

    /// Looks for the empty line that ends an HTTP/1 request head (only until the first one is found): CRLF CRLF, or
    /// bare LFs (RFC 9112 §2.2; NIO's parser then answers 400, but the head is complete either way).
    func scanForHeadEnd(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            for b in bytes {
                if b == 10, lastTwo.1 == 10 || (lastTwo.1 == 13 && lastTwo.0 == 10) {
                    markLoggedIn()
                    return
                }
                lastTwo = (lastTwo.1, b)
            }
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastActivity = context.eventLoop.now
        context.write(data, promise: promise)
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let signal = event as? ConnectionGuardEvent else {
            return context.triggerUserOutboundEvent(event, promise: promise)
        }
        switch signal {
        case .loggedIn: markLoggedIn()
        case .busy(let value):
            busy = value
            lastActivity = context.eventLoop.now
        }
        promise?.succeed(())
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            handshakeDone = true
            handshakeTimer?.cancel()
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !handshakeDone, error is NIOSSLError || error is BoringSSLError {
            counter.handshakeFailures.increment()
            handshakeDone = true  // count once
        }
        context.fireErrorCaught(error)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        loginTimer?.cancel()
        idleTimer?.cancel()
        if counted {
            counted = false
            counter.close()
        }
        context.fireChannelInactive()
    }
}
