import NIOCore
import NIOHTTP1

/// Sits between NIO's HTTP/1 decoder and the conversion to HTTP types, which drops the request's version (so
/// Hummingbird keeps every connection open after a response). Hand-written because no library in the graph does this
/// for Hummingbird 2:
/// - **Persistence** (RFC 9112 §9.3): an HTTP/1.0 request is answered as HTTP/1.0 and the connection closes after
///   the response unless the client asked for keep-alive and the response has a Content-Length (then it says
///   `Connection: keep-alive`); an HTTP/1.1 request with `Connection: close` gets `Connection: close` and a close.
///   The request head is given `Connection: close` in those cases, so the server stops reading after it.
/// - **HSTS** (RFC 6797) on TLS listeners: every response carries `Strict-Transport-Security`.
/// - **Oversized request heads** get 431 Request Header Fields Too Large (RFC 6585 §5) and a close, where NIO's
///   protocol error handler would answer every decoder error with a bare 400.
final class HTTPConnectionPolicyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    static let hstsValue = "max-age=31536000"
    /// What a client that sent no whole request head within the login deadline gets before the connection closes.
    static let requestTimeout = Array(
        "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".utf8)

    struct Pending {
        var http10: Bool
        var keepAlive: Bool
    }

    let hsts: Bool
    /// One entry per request whose response head has not gone out yet (HTTP/1 answers in order).
    var pending = CircularBuffer<Pending>(initialCapacity: 2)
    /// Whether the response being written ends the connection.
    var closeAfterResponse = false

    init(hsts: Bool) { self.hsts = hsts }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        let entry = Pending(http10: head.version.major == 1 && head.version.minor == 0, keepAlive: head.isKeepAlive)
        pending.append(entry)
        if !entry.keepAlive {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            return context.fireChannelRead(wrapInboundOut(.head(head)))
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Only when no earlier request is still waiting for its response: HTTP/1 answers in order.
        guard let parser = error as? HTTPParserError, parser == .headerOverflow, pending.isEmpty else {
            return context.fireErrorCaught(error)
        }
        var headers = HTTPHeaders([("content-length", "0"), ("connection", "close")])
        if hsts { headers.add(name: "strict-transport-security", value: Self.hstsValue) }
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: .http1_1, status: .requestHeaderFieldsTooLarge, headers: headers))),
            promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.code >= 200:
            let request = pending.popFirst() ?? Pending(http10: false, keepAlive: true)
            if hsts { head.headers.replaceOrAdd(name: "strict-transport-security", value: Self.hstsValue) }
            var keepAlive =
                request.keepAlive && !head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
            if request.http10 {
                head.version = .http1_0
                // Without a length an HTTP/1.0 body ends with the connection.
                if !head.headers.contains(name: "content-length") { keepAlive = false }
                head.headers.replaceOrAdd(name: "connection", value: keepAlive ? "keep-alive" : "close")
            } else if !keepAlive {
                head.headers.replaceOrAdd(name: "connection", value: "close")
            }
            closeAfterResponse = !keepAlive
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where closeAfterResponse:
            closeAfterResponse = false
            let channel = context.channel
            let done = context.eventLoop.makePromise(of: Void.self)
            if let promise { done.futureResult.cascade(to: promise) }
            context.writeAndFlush(data, promise: done)
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        default:
            context.write(data, promise: promise)
        }
    }
}
