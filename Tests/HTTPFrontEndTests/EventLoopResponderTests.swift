import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import ServerSupport
import Testing

@testable import HTTPFrontEnd

/// The event-loop answers (`EventLoopResponder`): in order with the router's, and the same answer the router gives.
@Suite struct EventLoopResponderTests {
    func channel(_ failures: FailureRateLimiter? = nil) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(
            handler: EventLoopResponder(listener: "test", routes: HTTPListener.healthRoutes(failures: failures)))
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.7", port: 40000)).wait()
        return channel
    }

    func request(_ path: String, method: HTTPRequest.Method = .get) -> HTTPRequestPart {
        .head(HTTPRequest(method: method, scheme: nil, authority: "x", path: path))
    }

    /// What reached the router (the parts passed inward).
    func forwarded(_ channel: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            switch part {
            case .head(let h): out.append("head \(h.method.rawValue) \(h.path ?? "")")
            case .body(let b): out.append("body \(b.readableBytes)")
            case .end: out.append("end")
            }
        }
        return out
    }

    /// What went out towards the client.
    func written(_ channel: EmbeddedChannel) throws -> (HTTPResponse?, String, Bool) {
        var head: HTTPResponse?
        var body = ""
        var ended = false
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            switch part {
            case .head(let h): head = h
            case .body(let b): body += String(buffer: b)
            case .end: ended = true
            }
        }
        return (head, body, ended)
    }

    @Test func healthzIsAnsweredOnTheEventLoopWithTheRoutersHeaders() throws {
        let channel = try channel()
        try channel.writeInbound(request("/healthz"))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "ignored")))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try forwarded(channel).isEmpty)
        let (head, body, ended) = try written(channel)
        #expect(head?.status == .ok && body == "ok\n" && ended)
        #expect(head?.headerFields[.contentType] == "text/plain; charset=utf-8")
        #expect(head?.headerFields[.contentLength] == "3")
        #expect(head?.headerFields[.date]?.hasSuffix(" GMT") == true)
        _ = try channel.finish()
    }

    @Test func otherRequestsAndVariantsGoToTheRouter() throws {
        let channel = try channel()
        for (method, path) in [(HTTPRequest.Method.get, "/healthz?x=1"), (.post, "/healthz"), (.get, "/readyz")] {
            try channel.writeInbound(request(path, method: method))
            try channel.writeInbound(HTTPRequestPart.end(nil))
            #expect(try forwarded(channel) == ["head \(method.rawValue) \(path)", "end"])
            try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .notFound)))
            try channel.writeOutbound(HTTPResponsePart.end(nil))
            #expect(try written(channel).0?.status == .notFound)
        }
        _ = try channel.finish()
    }

    /// HTTP/1 answers in order: while a request given to the router has no whole response, a pipelined `/healthz`
    /// goes to the router too; once every response has ended, the next one is answered here again.
    @Test func pipelinedRequestsKeepTheirOrder() throws {
        let channel = try channel()
        for path in ["/api/v1/slow", "/healthz"] {
            try channel.writeInbound(request(path))
            try channel.writeInbound(HTTPRequestPart.end(nil))
        }
        #expect(try forwarded(channel) == ["head GET /api/v1/slow", "end", "head GET /healthz", "end"])
        #expect(try written(channel).0 == nil)
        // The router answers both, in order.
        for status in [HTTPResponse.Status.accepted, .ok] {
            try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: status)))
            try channel.writeOutbound(HTTPResponsePart.end(nil))
        }
        try channel.writeInbound(request("/healthz"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try forwarded(channel).isEmpty)
        _ = try written(channel)
        _ = try channel.finish()
    }

    /// A router response that ends before its request's body has all arrived: the rest of that body still goes to
    /// the router, and the next `/healthz` is answered here.
    @Test func anEarlyRouterAnswerDoesNotSplitItsRequest() throws {
        let channel = try channel()
        try channel.writeInbound(request("/api/v1/upload", method: .post))
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .contentTooLarge)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "rest")))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try forwarded(channel) == ["head POST /api/v1/upload", "body 4", "end"])
        _ = try written(channel)
        try channel.writeInbound(request("/healthz"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try forwarded(channel).isEmpty)
        #expect(try written(channel).1 == "ok\n")
        _ = try channel.finish()
    }

    /// A source out of failed authentications is left to the router, which refuses it (429) like any request.
    @Test func aSourceOutOfFailuresIsLeftToTheRouter() throws {
        let failures = FailureRateLimiter(listener: "test", burst: 1, refillPerMinute: 1)
        failures.recordFailure("192.0.2.7")
        let channel = try channel(failures)
        try channel.writeInbound(request("/healthz"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try forwarded(channel) == ["head GET /healthz", "end"])
        _ = try channel.finish()
    }

    @Test func httpDateIsIMFFixdate() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_796_601_600) == "Mon, 07 Dec 2026 00:00:00 GMT")
        #expect(HTTPDate.format(951_868_799) == "Tue, 29 Feb 2000 23:59:59 GMT")
    }
}
