import EngineAPI
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import ServerSupport
import ServiceLifecycle

/// Builds Hummingbird applications for Gatehouse's HTTP listeners.
public enum HTTPListener {
    /// Settings shared by every HTTP listener.
    public struct Settings: Sendable {
        public var name: String
        public var host: String
        public var port: Int
        public var tls: ReloadableTLSContext?
        public var maxConnections: Int
        public var idleTimeout: Duration
        public var handshakeTimeout: Duration
        public var loginTimeout: Duration
        public var maxMessageSize: Int
        /// Failed authentications a client address may have at once, and per second after that (0: no limit).
        public var failureBurst: Int
        public var failuresPerMinute: Int

        public init(
            name: String, host: String, port: Int, tls: ReloadableTLSContext?, maxConnections: Int,
            idleTimeout: Duration,
            handshakeTimeout: Duration, loginTimeout: Duration = .seconds(30), maxMessageSize: Int,
            failureBurst: Int = 100,
            failuresPerMinute: Int = 600
        ) {
            self.loginTimeout = loginTimeout
            self.failureBurst = failureBurst
            self.failuresPerMinute = failuresPerMinute
            self.name = name
            self.host = host
            self.port = port
            self.tls = tls
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
            self.handshakeTimeout = handshakeTimeout
            self.maxMessageSize = maxMessageSize
        }
    }

    /// Converts a Swift `Duration` to NIO's `TimeAmount`.
    public static func timeAmount(_ d: Duration) -> TimeAmount {
        .nanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }

    /// The listener policy of an HTTP listener: the connection guard's log-in ends with the first request head,
    /// and a late one is answered 408.
    static func policy(_ settings: Settings) -> ListenerPolicy {
        ListenerPolicy(
            host: settings.host, port: settings.port,
            tls: settings.tls.map { .direct($0) } ?? .none, handshakeTimeout: timeAmount(settings.handshakeTimeout),
            idleTimeout: timeAmount(settings.idleTimeout), loginTimeout: timeAmount(settings.loginTimeout),
            login: .httpRequestHead, loginTimeoutMessage: HTTPConnectionPolicyHandler.requestTimeout,
            allowHalfClosure: true)
    }

    /// The server builder: HTTP/1.1 behind the listener policy (TLS when configured, and the connection guard).
    static func server(_ settings: Settings, counter: ConnectionCounter, eventLoopRoutes: [EventLoopRoute])
        -> HTTPServerBuilder
    {
        let hsts = settings.tls != nil
        return HTTPServerBuilder { responder in
            GuardedChildChannel(
                HTTP1Channel(responder: responder, configuration: .init(idleTimeout: timeAmount(settings.idleTimeout))),
                policy: policy(settings), counter: counter
            ) { channel in
                // Between NIO's HTTP/1 decoder (which knows the request's version) and the conversion to HTTP types
                // (which drops it): HTTP/1.0 connection handling and HSTS.
                let sync = channel.pipeline.syncOperations
                let decoder = try sync.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
                try sync.addHandler(HTTPConnectionPolicyHandler(hsts: hsts), position: .after(decoder))
                // Answers that need no engine call, on the event loop (after the state handler, before the router).
                if !eventLoopRoutes.isEmpty {
                    let state = try sync.handler(type: HTTPConnectionStateHandler.self)
                    try sync.addHandler(
                        EventLoopResponder(listener: settings.name, routes: eventLoopRoutes), position: .after(state))
                }
            }
        }
    }

    /// The failure limiter of an API listener, shared by its router and its event-loop routes.
    public static func failureLimiter(_ settings: Settings) -> FailureRateLimiter {
        FailureRateLimiter(
            listener: settings.name, burst: settings.failureBurst, refillPerMinute: settings.failuresPerMinute)
    }

    /// `/healthz` answered on the event loop. With a failure limiter, a source that is out of failures is left to
    /// the router (which turns it away unless its client certificate was verified).
    public static func healthRoutes(failures: FailureRateLimiter? = nil) -> [EventLoopRoute] {
        [
            EventLoopRoute(path: "/healthz") { peer in
                guard failures?.allows(peer) ?? true else { return nil }
                return alive
            }
        ]
    }

    /// `/healthz`'s answer, the same from the router and from the event loop.
    static let alive = EventLoopRoute.Answer(contentType: "text/plain; charset=utf-8", body: ByteBuffer(string: "ok\n"))

    /// Makes a listener service from a router.
    public static func make(
        _ settings: Settings, router: Router<GatehouseRequestContext>, eventLoopRoutes: [EventLoopRoute] = [],
        counter: ConnectionCounter, logger: Logger, onBound: @escaping @Sendable (Int) async -> Void
    ) -> some Service {
        Application(
            router: router, server: server(settings, counter: counter, eventLoopRoutes: eventLoopRoutes),
            configuration: ApplicationConfiguration(
                address: .hostname(settings.host, port: settings.port), serverName: nil),
            onServerRunning: { channel in await onBound(channel.localAddress?.port ?? settings.port) },
            logger: logger)
    }

    /// The HTTPS API listener's router.
    public static func apiRouter(
        services: AdminServices, settings: Settings, estDefaultProfile: String? = nil,
        acme: ACMESettings = ACMESettings(),
        acmeValidator: ACMEValidator, failures: FailureRateLimiter? = nil,
        readiness: @escaping @Sendable () async -> (Bool, String)
    ) -> Router<GatehouseRequestContext> {
        let router = Router(context: GatehouseRequestContext.self)
        let table = RouteTable()
        router.add(
            middleware: ErrorAndMetricsMiddleware(
                listener: settings.name, routes: table, failures: failures ?? failureLimiter(settings)))
        AdminAPI(
            services: services, maxBodySize: settings.maxMessageSize, estDefaultProfile: estDefaultProfile, acme: acme,
            acmeValidator: acmeValidator
        )
        .register(on: router, readiness: readiness)
        table.record(router)
        return router
    }

    /// The operations listener's router: `/healthz`, `/readyz`, `/metrics`.
    public static func operationsRouter(
        settings: Settings, registry: PrometheusCollectorRegistry,
        readiness: @escaping @Sendable () async -> (Bool, String)
    ) -> Router<GatehouseRequestContext> {
        let router = Router(context: GatehouseRequestContext.self)
        router.add(middleware: ErrorAndMetricsMiddleware(listener: settings.name))
        addHealthRoutes(to: router, readiness: readiness)
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return router
    }

    /// `/healthz` (alive) and `/readyz` (200 when ready, else 503 with the reason).
    static func addHealthRoutes(
        to router: Router<GatehouseRequestContext>, readiness: @escaping @Sendable () async -> (Bool, String)
    ) {
        router.get("/healthz") { _, _ -> Response in
            Response(
                status: alive.status, headers: [.contentType: alive.contentType], body: .init(byteBuffer: alive.body))
        }
        router.get("/readyz") { _, _ -> Response in
            let (ready, detail) = await readiness()
            return Response(
                status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain"],
                body: .init(byteBuffer: ByteBuffer(string: detail + "\n")))
        }
    }
}
