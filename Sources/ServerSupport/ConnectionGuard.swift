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

    public init(listener: String, maxConnections: Int) {
        self.listener = listener
        self.maxConnections = maxConnections
        let dims = [("listener", listener)]
        self.openGauge = Gauge(label: "gatehouse_connections_open", dimensions: dims)
        self.rejected = Counter(label: "gatehouse_connections_rejected_total", dimensions: dims)
        self.handshakeFailures = Counter(label: "gatehouse_tls_handshake_failures_total", dimensions: dims)
        self.accepted = Counter(label: "gatehouse_connections_accepted_total", dimensions: dims)
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

/// Enforces a listener's limits on one connection: the connection cap, the TLS handshake timeout and the idle
/// timeout, and counts TLS handshake failures. Install it right after the `NIOSSLServerHandler` (or first, for
/// plain listeners).
public final class ConnectionGuardHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    let counter: ConnectionCounter
    let handshakeTimeout: TimeAmount?
    let idleTimeout: TimeAmount
    var counted = false
    var handshakeDone: Bool
    var handshakeTimer: Scheduled<Void>?
    var idleTimer: Scheduled<Void>?
    var lastActivity = NIODeadline.now()

    /// - Parameters:
    ///   - tls: whether a TLS handshake is expected (enables the handshake timeout).
    public init(counter: ConnectionCounter, tls: Bool, handshakeTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.counter = counter
        self.handshakeTimeout = tls ? handshakeTimeout : nil
        self.handshakeDone = !tls
        self.idleTimeout = idleTimeout
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
        scheduleIdleCheck(context)
    }

    func scheduleIdleCheck(_ context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: lastActivity + idleTimeout) {
            let (handler, ctx) = loopBound.value
            if NIODeadline.now() >= handler.lastActivity + handler.idleTimeout {
                ctx.close(promise: nil)
            } else {
                handler.scheduleIdleCheck(ctx)
            }
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        context.fireChannelRead(data)
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
        idleTimer?.cancel()
        if counted {
            counted = false
            counter.close()
        }
        context.fireChannelInactive()
    }
}
