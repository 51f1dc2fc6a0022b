import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// A request that can be answered on the connection's event loop: no engine call, nothing that blocks or waits.
public struct EventLoopRoute: Sendable {
    /// What the route answers; nil leaves the request to the router.
    public struct Answer: Sendable {
        public var status: HTTPResponse.Status
        public var contentType: String
        public var body: ByteBuffer

        public init(status: HTTPResponse.Status = .ok, contentType: String, body: ByteBuffer) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    public let method: HTTPRequest.Method
    /// The exact path (a request with a query string goes to the router).
    public let path: String
    /// Given the client's address; nil defers to the router (which answers the same request its own way).
    public let answer: @Sendable (_ peerAddress: String?) -> Answer?
    /// The request metrics' operation label, as the router's middleware writes it ("GET /healthz").
    let operation: String

    public init(
        method: HTTPRequest.Method = .get, path: String, answer: @escaping @Sendable (_ peerAddress: String?) -> Answer?
    ) {
        self.method = method
        self.path = path
        self.answer = answer
        self.operation = "\(method.rawValue) \(path)"
    }
}

/// Answers `EventLoopRoute`s on the connection's event loop, before the request reaches Hummingbird's async
/// pipeline (an inbound async sequence read by the connection's task on the concurrency pool, and an outbound writer
/// back to the event loop). On a keep-alive HTTPS `/healthz` those hops were most of the daemon's CPU per request
/// (task switches, retain/release). Hand-written because Hummingbird 2 has no synchronous responder.
///
/// Sits after Hummingbird's connection state handler (so idle timeout and graceful shutdown see these requests too)
/// and before the async channel. HTTP/1 answers in order: a request is answered here only when every request the
/// router was given has had its whole response written; otherwise it goes to the router like any other. The
/// response passes outward through the same handlers as the router's (the HTTP/1.0 and `Connection: close`
/// handling and HSTS of `HTTPConnectionPolicyHandler`) and gets the same `Date` and metrics.
final class EventLoopResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    enum State {
        case idle
        /// The request matched a route; its body (if any) is dropped, and the answer goes out with its end.
        case answering(EventLoopRoute, EventLoopRoute.Answer, start: ContinuousClock.Instant)
        /// The request is the router's; its parts pass through until its end.
        case forwarding
    }

    let listener: String
    let routes: [EventLoopRoute]
    var state = State.idle
    /// Requests given to the router whose response has not ended yet.
    var outstanding = 0

    init(listener: String, routes: [EventLoopRoute]) {
        self.listener = listener
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.idle, .head(let request)):
            if outstanding == 0, let path = request.path,
                let route = routes.first(where: { $0.method == request.method && $0.path == path }),
                let answer = route.answer(context.channel.remoteAddress?.ipAddress)
            {
                state = .answering(route, answer, start: .now)
                return
            }
            outstanding += 1
            state = .forwarding
            context.fireChannelRead(data)
        case (.answering, .body):
            return
        case (.answering(let route, let answer, let start), .end):
            state = .idle
            respond(context: context, answer)
            RequestMetrics.record(
                listener: listener, operation: route.operation, status: answer.status.code, elapsed: .now - start)
        case (.forwarding, .end):
            state = .idle
            context.fireChannelRead(data)
        default:
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), outstanding > 0 { outstanding -= 1 }
        context.write(data, promise: promise)
    }

    private func respond(context: ChannelHandlerContext, _ answer: EventLoopRoute.Answer) {
        var fields = HTTPFields()
        fields[.contentType] = answer.contentType
        fields[.contentLength] = String(answer.body.readableBytes)
        fields[.date] = HTTPDate.now()
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: fields))), promise: nil)
        if answer.body.readableBytes > 0 { context.write(wrapOutboundOut(.body(answer.body)), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// The `Date` header's value (RFC 9110 §5.6.7, IMF-fixdate), made once per second. Hand-written: Hummingbird's own
/// date cache is internal to it.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let second = spec.tv_sec
        return cache.withLock { cached in
            if cached.second == second { return cached.text }
            let text = format(second)
            cached = (second, text)
            return text
        }
    }

    static func format(_ second: Int) -> String {
        var t = second
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let day = days[Int(parts.tm_wday) % 7]
        let month = months[Int(parts.tm_mon) % 12]
        return "\(day), \(two(parts.tm_mday)) \(month) \(1900 + parts.tm_year) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
