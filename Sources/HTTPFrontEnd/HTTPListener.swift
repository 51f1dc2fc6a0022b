import EngineAPI
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
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

    /// The server builder: HTTP/1.1 behind the connection guard (and TLS when configured).
    static func server(_ settings: Settings, counter: ConnectionCounter) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedChannel(
                HTTP1Channel(responder: responder, configuration: .init(idleTimeout: timeAmount(settings.idleTimeout))),
                tls: settings.tls, counter: counter, handshakeTimeout: timeAmount(settings.handshakeTimeout),
                idleTimeout: timeAmount(settings.idleTimeout), loginTimeout: timeAmount(settings.loginTimeout))
        }
    }

    /// Makes a listener service from a router.
    public static func make(
        _ settings: Settings, router: Router<GatehouseRequestContext>, counter: ConnectionCounter, logger: Logger,
        onBound: @escaping @Sendable (Int) async -> Void
    ) -> some Service {
        Application(
            router: router, server: server(settings, counter: counter),
            configuration: ApplicationConfiguration(
                address: .hostname(settings.host, port: settings.port), serverName: nil),
            onServerRunning: { channel in await onBound(channel.localAddress?.port ?? settings.port) },
            logger: logger)
    }

    /// The HTTPS API listener's router.
    public static func apiRouter(
        services: AdminServices, settings: Settings, estDefaultProfile: String? = nil,
        acme: ACMESettings = ACMESettings(),
        acmeValidator: ACMEValidator, readiness: @escaping @Sendable () async -> (Bool, String)
    ) -> Router<GatehouseRequestContext> {
        let router = Router(context: GatehouseRequestContext.self)
        let table = RouteTable()
        router.add(
            middleware: ErrorAndMetricsMiddleware(
                listener: settings.name, routes: table,
                failures: FailureRateLimiter(
                    listener: settings.name, burst: settings.failureBurst, refillPerMinute: settings.failuresPerMinute))
        )
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
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            let (ready, detail) = await readiness()
            return Response(
                status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain"],
                body: .init(byteBuffer: ByteBuffer(string: detail + "\n")))
        }
    }
}
