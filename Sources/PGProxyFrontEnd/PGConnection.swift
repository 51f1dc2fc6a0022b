import EngineAPI
import Foundation
import NIOCore
import PGWire
import ServerSupport
import Synchronization

/// One side of a proxied session (the client's connection or the upstream one), as a channel handler with two
/// modes.
///
/// **Hand-shake**: the session task pulls bytes with `PGConnection.receive()` and writes with `send(_:)` (start-up,
/// authentication, upstream login). The socket is read only while fewer than 64 KiB wait here.
///
/// **Relay**: `PGConnection.relay` joins the two sides on their shared event loop: each read is checked and observed
/// (length limit, statements, recording) and written straight to the partner's channel with no task hop; a side
/// reads only while its partner's channel is writable (back-pressure both ways).
final class PGSideHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Mode { case handshake, relay }
    var mode = Mode.handshake
    var context: ChannelHandlerContext?
    // Hand-shake mode.
    var buffered = ByteBuffer()
    var waiter: EventLoopPromise<ByteBuffer?>?
    var ended: (any Error)?
    var eof = false
    var readWanted = false
    static let handshakeLimit = 64 * 1024
    // Relay mode.
    weak var partner: PGSideHandler?
    var observer: PGStreamObserver?
    var relay: PGRelayState?
    var isClient = false
    /// Set when the session is being ended: what the client still sends goes nowhere.
    var dropInput = false
    /// Client side: whether the listener's guard was last told that a statement is in flight.
    var reportedBusy = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch mode {
        case .handshake:
            if let waiter {
                self.waiter = nil
                waiter.succeed(bytes)
            } else {
                buffered.writeBuffer(&bytes)
            }
        case .relay:
            forward(bytes)
        }
    }

    /// Relay: observe (client side: before the bytes leave; server side: after) and hand to the partner.
    func forward(_ bytes: ByteBuffer) {
        guard let relay, let partner, let partnerContext = partner.context, !dropInput else { return }
        defer { reportBusy() }
        if isClient {
            do {
                try observer?.observe(bytes, recorder: relay.recorder)
            } catch {
                // Nothing of a frame with an impossible length reaches the server: a message the recording could not
                // hold whole is refused, never forwarded in part (fail closed).
                let sqlState: String
                let text: String
                if case .invalidLength(let length, let limit) = error as? PGWireError, length > limit {
                    relay.end(.messageTooLarge)
                    sqlState = "54000"
                    text =
                        "a message of \(length) bytes exceeds listeners.postgres.max_message_size (\(limit) bytes): "
                        + "it was not sent to the database, and the session ends"
                } else {
                    relay.end(.clientProtocolViolation)
                    sqlState = "08P01"
                    text = "\(error)"
                }
                if let recorder = relay.recorder {
                    recorder.record(
                        PAMRecordingEvent(t: recorder.seconds, kind: "refused", text: text, sqlState: sqlState))
                }
                let message = PGBackendMessage.error(sqlState: sqlState, message: text, severity: "FATAL").frame.bytes
                context?.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: message)), promise: nil)
                closeBoth()
                return
            }
            if relay.failClosed, let failure = relay.recorder?.failure {
                relay.end(.recordingFailed)
                let message = PGBackendMessage.error(
                    sqlState: "58030", message: "terminating the session: the recording failed (\(failure))",
                    severity: "FATAL"
                ).frame.bytes
                context?.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: message)), promise: nil)
                closeBoth()
                return
            }
            relay.stats.value.withLock {
                $0.bytesFromClient += Int64(bytes.readableBytes)
                $0.statements = observer?.statements ?? 0
            }
            partnerContext.write(wrapOutboundOut(bytes), promise: nil)
            if observer?.terminated == true { relay.end(.clientTerminated) }
        } else {
            partnerContext.write(wrapOutboundOut(bytes), promise: nil)
            relay.stats.value.withLock { $0.bytesFromServer += Int64(bytes.readableBytes) }
            // Parsed after delivery: the recording never holds back the server's answer.
            try? observer?.observe(bytes, recorder: relay.recorder)
        }
    }

    /// Tells the client connection's guard whether a statement is in flight (a Query, Sync or FunctionCall the
    /// server has not answered with ReadyForQuery yet), so its idle timeout never cuts a long statement.
    func reportBusy() {
        guard let clientSide = isClient ? self : partner, let context = clientSide.context,
            let sent = clientSide.observer?.awaitingReady, let answered = clientSide.partner?.observer?.readyForQuery
        else { return }
        let busy = sent > answered
        if busy != clientSide.reportedBusy {
            clientSide.reportedBusy = busy
            context.triggerUserOutboundEvent(ConnectionGuardEvent.busy(busy), promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if mode == .relay { partner?.context?.flush() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        switch mode {
        case .handshake:
            if buffered.readableBytes < Self.handshakeLimit || waiter != nil {
                context.read()
            } else {
                readWanted = true
            }
        case .relay:
            if partner?.context?.channel.isWritable ?? false { context.read() } else { readWanted = true }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if mode == .relay, context.channel.isWritable, let partner, partner.readWanted, let pc = partner.context {
            partner.readWanted = false
            pc.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        eof = true
        waiter?.succeed(nil)
        waiter = nil
        if mode == .relay {
            relay?.end(isClient ? .clientDisconnected : .upstreamClosed)
            // What the partner still has to send (e.g. the server's FATAL) is flushed before it closes.
            if let pc = partner?.context {
                let partnerChannel = pc.channel
                pc.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in partnerChannel.close(promise: nil) }
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if mode == .handshake {
            ended = error
            waiter?.fail(error)
            waiter = nil
        } else {
            relay?.end(isClient ? .clientError : .upstreamError)
        }
        context.close(promise: nil)
    }

    func closeBoth() {
        context?.close(promise: nil)
        partner?.context?.close(promise: nil)
    }

    // MARK: hand-shake API (on the event loop)

    func take(_ promise: EventLoopPromise<ByteBuffer?>) {
        if buffered.readableBytes > 0 {
            let out = buffered
            buffered = ByteBuffer()
            promise.succeed(out)
            if readWanted, let context {
                readWanted = false
                context.read()
            }
        } else if let ended {
            promise.fail(ended)
        } else if eof {
            promise.succeed(nil)
        } else {
            waiter = promise
            if readWanted, let context {
                readWanted = false
                context.read()
            }
        }
    }
}

/// Shared by the two sides of one relayed session: why it ended (the first reason wins), counters, recording.
final class PGRelayState: Sendable {
    let stats: StatsBox
    let recorder: PGSessionRecorder?
    let failClosed: Bool
    let reason = Mutex<PAMSessionEndReason?>(nil)
    init(stats: StatsBox, recorder: PGSessionRecorder?, failClosed: Bool) {
        self.stats = stats
        self.recorder = recorder
        self.failClosed = failClosed
    }
    func end(_ why: PAMSessionEndReason) { reason.withLock { if $0 == nil { $0 = why } } }
}

/// The session task's handle on one side.
struct PGConnection: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<PGSideHandler>

    init(channel: any Channel, handler: PGSideHandler) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }

    /// Installs the side handler on a channel being initialized (on its event loop).
    static func install(on channel: any Channel, isClient: Bool) throws -> PGConnection {
        let handler = PGSideHandler()
        handler.isClient = isClient
        try channel.pipeline.syncOperations.addHandler(handler)
        return PGConnection(channel: channel, handler: handler)
    }

    /// The next bytes from the peer; nil when it closed. Hand-shake mode only.
    func receive() async throws -> ByteBuffer? {
        let handler = self.handler
        let promise = channel.eventLoop.makePromise(of: ByteBuffer?.self)
        channel.eventLoop.execute { handler.value.take(promise) }
        return try await promise.futureResult.get()
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes)
    }

    func close() { channel.close(promise: nil) }

    /// Joins two sides on their (shared) event loop; bytes either side still holds from the hand-shake are relayed
    /// first, in order.
    static func relay(
        client: PGConnection, server: PGConnection, state: PGRelayState, clientObserver: PGStreamObserver,
        serverObserver: PGStreamObserver, clientLeftover: ByteBuffer, serverLeftover: ByteBuffer
    ) async throws {
        precondition(client.channel.eventLoop === server.channel.eventLoop)
        let c = client.handler
        let s = server.handler
        try await client.channel.eventLoop.submit {
            let ch = c.value
            let sh = s.value
            ch.partner = sh
            sh.partner = ch
            ch.observer = clientObserver
            sh.observer = serverObserver
            ch.relay = state
            sh.relay = state
            ch.mode = .relay
            sh.mode = .relay
            for (side, leftover) in [(sh, serverLeftover), (ch, clientLeftover)] {
                var pending = leftover
                pending.writeBuffer(&side.buffered)
                side.buffered = ByteBuffer()
                guard pending.readableBytes > 0 else { continue }
                side.forward(pending)
                side.partner?.context?.flush()
            }
            for side in [ch, sh] {
                if side.eof {
                    side.relay?.end(side.isClient ? .clientDisconnected : .upstreamClosed)
                    side.closeBoth()
                } else if let context = side.context {
                    side.readWanted = false
                    context.read()
                }
            }
        }.get()
    }
}
