import NIOCore
import NIOSSL
import NIOTLS
import PGWire

/// The clear-text start of a proxy connection (§55.2.10): answers GSSENCRequest with `N`, SSLRequest with `S` and
/// then installs TLS in the same event-loop turn, passes a CancelRequest on, and refuses everything else. Nothing
/// received in clear after the SSLRequest is ever interpreted (the connection closes: cf. CVE-2021-23214), and a
/// StartupMessage without TLS gets an ErrorResponse asking for `sslmode=require`.
final class PGPreTLSHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let makeTLSHandlers: () -> [any ChannelHandler]
    var buffer = ByteBuffer()
    var done = false

    init(makeTLSHandlers: @escaping () -> [any ChannelHandler]) {
        self.makeTLSHandlers = makeTLSHandlers
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        // Direct TLS (PostgreSQL 17's `sslnegotiation=direct`): a TLS handshake record instead of a start-up packet
        // (whose first byte, the top of a length below 16 MiB, is always 0). TLS starts at once and the client must
        // negotiate ALPN `postgresql`, which keeps other protocols' TLS clients out.
        if !done, buffer.readableBytes >= 1, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0x16 {
            done = true
            let handshake = buffer
            buffer = ByteBuffer()
            do {
                try context.pipeline.syncOperations.addHandlers(
                    makeTLSHandlers() + [PGDirectTLSALPNCheck()], position: .after(self))
                context.fireChannelRead(wrapInboundOut(handshake))
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            } catch {
                context.close(promise: nil)
            }
            return
        }
        while !done {
            guard buffer.readableBytes >= 8, let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self),
                let code = buffer.getInteger(at: buffer.readerIndex + 4, as: Int32.self)
            else {
                if buffer.readableBytes >= 4, let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self),
                    length < 8 || length > Int32(PGFrameDecoder.maxStartupLength)
                {
                    refuse(context, "08P01", "invalid start-up packet length")
                }
                return
            }
            guard length >= 8, length <= Int32(PGFrameDecoder.maxStartupLength) else {
                refuse(context, "08P01", "invalid start-up packet length")
                return
            }
            switch code {
            case PGStartup.sslRequestCode:
                guard length == 8 else { return refuse(context, "08P01", "malformed SSLRequest") }
                buffer.moveReaderIndex(forwardBy: 8)
                guard buffer.readableBytes == 0 else {
                    // Bytes sent in clear behind the SSLRequest: a man in the middle's injection. Never answer them.
                    done = true
                    context.close(promise: nil)
                    return
                }
                done = true
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [UInt8(ascii: "S")])), promise: nil)
                do {
                    try context.pipeline.syncOperations.addHandlers(makeTLSHandlers(), position: .after(self))
                    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                } catch {
                    context.close(promise: nil)
                }
                return
            case PGStartup.gssEncRequestCode:
                guard length == 8 else { return refuse(context, "08P01", "malformed GSSENCRequest") }
                buffer.moveReaderIndex(forwardBy: 8)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [UInt8(ascii: "N")])), promise: nil)
            case PGStartup.cancelRequestCode:
                // Cancels come on their own connection, usually in clear; the session code checks the keys.
                done = true
                let rest = buffer
                buffer = ByteBuffer()
                context.fireChannelRead(wrapInboundOut(rest))
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                return
            default:
                if code >> 16 == 3 {
                    refuse(
                        context, "28000",
                        "the Gatehouse access proxy requires TLS: connect with sslmode=require (or verify-full)")
                } else {
                    refuse(context, "08P01", "unsupported frontend protocol")
                }
                return
            }
        }
    }

    func refuse(_ context: ChannelHandlerContext, _ sqlState: String, _ message: String) {
        done = true
        let error = PGBackendMessage.error(sqlState: sqlState, message: message, severity: "FATAL").frame.bytes
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: error))).whenComplete { _ in channel.close(promise: nil)
        }
    }
}

/// After a direct TLS handshake: the client must have negotiated ALPN `postgresql` (as PostgreSQL 17 requires), else
/// it gets a FATAL `08P01` inside TLS and the connection closes; nothing it sent is passed on before the check.
final class PGDirectTLSALPNCheck: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer
    static let protocolName = "postgresql"
    var verified = false

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = tls {
            if negotiated == Self.protocolName {
                verified = true
                context.fireUserInboundEventTriggered(event)
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                return
            }
            let error = PGBackendMessage.error(
                sqlState: "08P01", message: "direct TLS connections must negotiate the ALPN protocol \"postgresql\"",
                severity: "FATAL"
            ).frame.bytes
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: error))).whenComplete { _ in
                channel.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if verified { context.fireChannelRead(data) }
    }
}
