import DaemonConfig
import Engine
import EngineAPI
import Foundation
import HTTPFrontEnd
import Hummingbird
import KMIPFrontEnd
import Logging
import Metrics
import NIOCore
import PGProxyFrontEnd
import Prometheus
import SSHTunnel
import ServerSupport
import ServiceLifecycle
import StorageAPI
import Synchronization
import UnixSignals

/// The composition root: builds storage, the engine and every listener into one `ServiceGroup`.
///
/// SIGTERM/SIGINT drain gracefully (listeners stop accepting, in-flight requests finish, then exit 0);
/// SIGHUP reloads TLS certificates for new connections without dropping existing ones.
public final class GatehouseDaemon: Sendable {
    let config: GatehouseConfiguration
    let logger: Logger
    let registry: PrometheusCollectorRegistry
    let bound = Mutex<[String: Int]>([:])
    let announcedReady = Mutex(false)

    public init(config: GatehouseConfiguration, logger: Logger, registry: PrometheusCollectorRegistry) {
        self.config = config
        self.logger = logger
        self.registry = registry
    }

    /// Sets up logging and metrics for the process (call once).
    public static func bootstrapObservability(_ config: GatehouseConfiguration) -> PrometheusCollectorRegistry {
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        // `auto`: readable lines on a terminal, JSON (one object per line) for a journal, a pipe or a file.
        let json = config.logFormat == "json" || (config.logFormat == "auto" && isatty(STDERR_FILENO) == 0)
        if json {
            LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level) }
        } else {
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level
                return h
            }
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        registry.makeGauge(
            name: "gatehouse_build_info", labels: [("version", GatehouseVersion.current)],
            help: "Always 1; the label names the release of the running build."
        ).set(Int64(1))
        return registry
    }

    func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// Runs until SIGTERM/SIGINT. Throws `DaemonError` for start-up failures.
    public func run() async throws {
        let first = try FirstStart.run(config)
        let lock = try DataDirectoryLock.acquire(dataDirectory: config.dataDirectory)
        defer { lock.release() }
        for path in first.created { logger.info("created", metadata: ["path": "\(path)"]) }
        // CRL and OCSP URLs in certificates: the configured public URL, else the HTTPS listener as bound.
        let httpsAddress = Self.hostForURL(config.listeners["https"]?.address ?? "127.0.0.1")
        let httpsPort = config.listeners["https"]?.port ?? 8443
        let pkiBaseURL: @Sendable () -> String = { [self] in
            config.pkiPublicURL ?? "https://\(httpsAddress):\(self.bound.withLock { $0["https"] } ?? httpsPort)"
        }
        // A KMIP client CA this node creates is trusted by its KMIP listener at once (KMIPTrustService reads these).
        let (kmipTrustUpdates, kmipTrust) = AsyncStream.makeStream(
            of: [String].self, bufferingPolicy: .bufferingNewest(1))
        let runDir = (config.dataDirectory as NSString).appendingPathComponent("run")
        let opened = try await openEngine(runDir: runDir) { [config, logger] in
            try await StoreFactory.engine(
                config, logger: logger, pamConnector: PGConnector(), pkiBaseURL: pkiBaseURL,
                kmipClientCAsCreated: { kmipTrust.yield($0) })
        }
        guard let (engine, storage) = opened else {
            say("gatehouse: stopped")
            return
        }

        // Session recordings (encrypted; only the engine can open them): owner-only.
        let recordingDirectory = StoreFactory.recordingDirectory(config)
        try? FileManager.default.createDirectory(
            atPath: recordingDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try? FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: runDir + "/listeners.json")

        say("gatehouse: data directory \(config.dataDirectory)")
        switch config.storage {
        case .sqlite(let path): say("gatehouse: storage sqlite \(path)")
        case .postgres: say("gatehouse: storage postgres (shared)")
        }
        say("gatehouse: CA certificate \(first.pki.caCertificate)")
        say("gatehouse: admin client certificate \(first.pki.adminCertificate) key \(first.pki.adminKey)")

        let enabled = config.listeners.values.filter(\.enabled).sorted { $0.name < $1.name }
        let tunnelService = config.tunnel.map { t in
            TunnelService(
                configuration: t, listeners: config.listeners, statusFile: runDir + "/tunnel.json", logger: logger,
                boundPorts: { [self] in self.bound.withLock { $0 } })
        }
        try? FileManager.default.removeItem(atPath: runDir + "/tunnel.json")
        // Recordings shipped to a shared store: the shipper's backlog and health.
        let shipping =
            config.pamRecordingStore == .local
            ? nil : RecordingShipper.Status(maxBacklog: config.pamRecordingMaxBacklog)
        let readiness: @Sendable () async -> (Bool, String) = { [self] in
            let health = await engine.health()
            let up = self.bound.withLock { $0 }
            let missing = enabled.map(\.name).filter { up[$0] == nil }
            let recordingsBlocked = shipping?.blocked()
            let ready = health.storageReachable && missing.isEmpty && recordingsBlocked == nil
            var detail = "storage \(health.storageBackend): \(health.storageReachable ? "reachable" : "UNREACHABLE")"
            if let shipping {
                detail += "; " + shipping.summary + (recordingsBlocked.map { " (BLOCKED: \($0))" } ?? "")
            }
            detail += missing.isEmpty ? "; listeners: all up" : "; listeners not up: \(missing.joined(separator: ", "))"
            var tunnelUp = true
            if let tunnelService {
                // An enabled tunnel is part of readiness: a gateway whose relay forwards are down serves nobody remote.
                if let status = tunnelService.status {
                    tunnelUp = status.isUp
                    detail += "; tunnel \(status.relay): \(status.state.rawValue)"
                    let forwards = status.forwards.map { "\($0.name)→\($0.listen) \($0.state)" }.joined(separator: ", ")
                    if !forwards.isEmpty { detail += " (\(forwards))" }
                    if let error = status.lastError, !status.isUp { detail += ": \(error)" }
                } else {
                    tunnelUp = false
                    detail += "; tunnel: starting"
                }
            }
            let allReady = ready && tunnelUp
            return (allReady, (allReady ? "ready; " : "not ready; ") + detail + "; version \(GatehouseVersion.current)")
        }

        var services: [any Service] = []
        var tlsContexts: [ReloadableTLSContext] = []
        // ACME challenges are validated by one service per node, shared by every HTTPS listener.
        let acmeSettings = ACMESettings(
            http01Port: config.acmeHTTP01Port, termsOfService: config.acmeTermsOfService,
            website: config.acmeWebsite, caaIdentities: config.acmeCAAIdentities, dnsResolver: config.acmeDNSResolver,
            tlsALPN01Port: config.acmeTLSALPN01Port, ordersPerAccountPerHour: config.acmeOrdersPerAccountPerHour,
            ordersPerIdentifierPerHour: config.acmeOrdersPerIdentifierPerHour)
        let acmeValidator = ACMEValidator(
            engine: engine, settings: acmeSettings, lease: config.acmeValidationLease,
            maxConcurrent: config.acmeMaxConcurrentValidations,
            sweepInterval: min(.seconds(10), config.acmeValidationLease),
            logger: Logger(label: "gatehouse.acme.validator"))
        services.append(acmeValidator)
        for listener in enabled {
            var tls: ReloadableTLSContext?
            if listener.tls {
                do {
                    tls = try ReloadableTLSContext(
                        settings: TLSServerSettings(
                            certificatePath: listener.certificatePath, keyPath: listener.keyPath,
                            clientCAPath: listener.clientCAPath,
                            clientAuth: TLSServerSettings.ClientAuth(rawValue: listener.clientAuth.rawValue)
                                ?? .required,
                            // PostgreSQL 17 clients offer ALPN "postgresql" (required for direct TLS).
                            applicationProtocols: listener.name == "postgres" ? ["postgresql"] : []))
                } catch {
                    throw DaemonError("listeners.\(listener.name): \(error)")
                }
                if let tls { tlsContexts.append(tls) }
            }
            let settings = Self.settings(listener, tls: tls)
            let counter = ConnectionCounter(listener: listener.name, maxConnections: listener.maxConnections)
            let name = listener.name
            let scheme =
                listener.name == "kmip"
                ? "kmip+tls" : listener.name == "postgres" ? "postgresql" : listener.tls ? "https" : "http"
            let onBound: @Sendable (Int) async -> Void = { [self] port in
                self.bound.withLock { $0[name] = port }
                self.say("gatehouse: listening \(name) \(scheme)://\(Self.hostForURL(listener.address)):\(port)")
                self.listenersBound(runDir: runDir, expected: enabled.count)
            }
            switch listener.name {
            case "kmip":
                guard let tls, listener.clientAuth == .required else {
                    throw DaemonError("listeners.kmip: KMIP needs tls = true and client_auth = \"required\"")
                }
                var kmipSettings = KMIPListener.Settings(
                    host: listener.address, port: listener.port, tls: tls, maxMessageSize: listener.maxMessageSize,
                    handshakeTimeout: HTTPListener.timeAmount(listener.handshakeTimeout),
                    idleTimeout: HTTPListener.timeAmount(listener.idleTimeout),
                    loginTimeout: HTTPListener.timeAmount(listener.loginTimeout))
                kmipSettings.failureBurst = listener.failureBurst
                kmipSettings.failuresPerMinute = listener.failuresPerMinute
                services.append(
                    KMIPListener(
                        settings: kmipSettings, engine: engine, counter: counter, logger: logger, onBound: onBound))
                // Trust the KMIP client CA from the first connection on (the service keeps it current).
                do { try tls.setExtraClientRoots(try await engine.kmipClientCACertificates()) } catch {
                    throw DaemonError("listeners.kmip: cannot load the KMIP client CA: \(error)")
                }
                services.append(
                    KMIPTrustService(
                        engine: engine, tls: tls, created: kmipTrustUpdates, logger: logger,
                        interval: config.kmipTrustRefreshInterval))
            case "postgres":
                guard let tls else { throw DaemonError("listeners.postgres: the PostgreSQL proxy needs tls = true") }
                var pgSettings = PGProxyListener.Settings(
                    host: listener.address, port: listener.port, tls: tls, maxMessageSize: listener.maxMessageSize,
                    handshakeTimeout: HTTPListener.timeAmount(listener.handshakeTimeout),
                    idleTimeout: HTTPListener.timeAmount(listener.idleTimeout),
                    loginTimeout: HTTPListener.timeAmount(listener.loginTimeout), recordingDirectory: recordingDirectory
                )
                pgSettings.failureBurst = listener.failureBurst
                pgSettings.failuresPerMinute = listener.failuresPerMinute
                if let shipping { pgSettings.recordingBlocked = { shipping.blocked() } }
                services.append(
                    PGProxyListener(
                        settings: pgSettings, engine: engine, counter: counter, logger: logger, onBound: onBound))
            case "operations":
                let router = HTTPListener.operationsRouter(settings: settings, registry: registry, readiness: readiness)
                services.append(
                    HTTPListener.make(
                        settings, router: router, eventLoopRoutes: HTTPListener.healthRoutes(), counter: counter,
                        logger: logger, onBound: onBound))
            default:
                let failures = HTTPListener.failureLimiter(settings)
                let router = HTTPListener.apiRouter(
                    services: AdminServices(serving: engine), settings: settings,
                    estDefaultProfile: config.estDefaultProfile,
                    acme: acmeSettings, acmeValidator: acmeValidator, failures: failures, readiness: readiness)
                services.append(
                    HTTPListener.make(
                        settings, router: router, eventLoopRoutes: HTTPListener.healthRoutes(failures: failures),
                        counter: counter, logger: logger, onBound: onBound))
            }
        }
        services.append(ReloadService(contexts: tlsContexts, logger: logger))
        if let tunnelService, let t = config.tunnel {
            services.append(tunnelService)
            say("gatehouse: tunnel to \(t.relayHost):\(t.relayPort) as \(t.user) (\(t.forwards.count) forwards)")
        }
        services.append(PeriodicService.rootKeyWatch(engine, logger: logger))
        services.append(PeriodicService.crlRefresh(engine, logger: logger))
        services.append(PeriodicService.acmeSweep(engine, logger: logger))
        services.append(PeriodicService.tokenSweep(engine, logger: logger))
        services.append(PeriodicService.refusalSummaries(engine, logger: logger))
        services.append(PeriodicService.auditCheckpoint(engine, logger: logger))
        services.append(ExpiryAlertService(engine: engine, interval: config.pkiAlertInterval, logger: logger))
        services.append(PeriodicService.pamRotation(engine, interval: config.pamRotationCheckInterval, logger: logger))
        services.append(
            PeriodicService.pamRetention(engine, interval: config.pamRetentionCheckInterval, logger: logger))
        if let shipping, let store = engine.recordings {
            var shipper = RecordingShipper(
                spool: recordingDirectory, store: store, interval: .seconds(2), logger: logger, status: shipping)
            shipper.recordingDeleted = { [engine] id in await engine.pam.isPAMRecordingDeleted(sessionId: id) }
            services.append(shipper)
            say("gatehouse: session recordings shipped to the \(store.description) recording store")
        }
        if let notify = config.pamNotifyURL, let url = URL(string: notify) {
            // PAM notifications: the audit events an approver or an on-call engineer acts on, through the same
            // at-least-once delivery as the audit stream, with its own cursor.
            services.append(
                AuditStreamService(
                    engine: engine, client: WebhookClient(url: url, bearerToken: config.pamNotifyToken), logger: logger,
                    cursorName: "pam_notify_cursor",
                    types: [
                        "pam.access.", "pam.session.start", "pam.session.end", "pam.session.denied",
                        "pam.account.rotate.failed",
                    ]))
        }
        if let stream = config.auditStreamURL, let url = URL(string: stream) {
            services.append(
                AuditStreamService(
                    engine: engine, client: WebhookClient(url: url, bearerToken: config.auditStreamToken),
                    logger: logger))
            say(
                "gatehouse: streaming audit events to \(url.scheme ?? "")://\(url.host ?? "")\(url.port.map { ":\($0)" } ?? "")"
            )
        }

        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [], logger: logger))
        do {
            try await group.run()
        } catch {
            SystemdNotifier.notify("STOPPING=1")
            try? await storage.close()
            throw DaemonError("a listener failed: \(error)")
        }
        SystemdNotifier.notify("STOPPING=1")
        try? await storage.close()
        say("gatehouse: stopped")
    }

    static func hostForURL(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// A listener's HTTP settings from its configuration.
    static func settings(_ listener: ListenerConfiguration, tls: ReloadableTLSContext?) -> HTTPListener.Settings {
        HTTPListener.Settings(
            name: listener.name, host: listener.address, port: listener.port, tls: tls,
            maxConnections: listener.maxConnections, idleTimeout: listener.idleTimeout,
            handshakeTimeout: listener.handshakeTimeout, loginTimeout: listener.loginTimeout,
            maxMessageSize: listener.maxMessageSize,
            failureBurst: listener.failureBurst, failuresPerMinute: listener.failuresPerMinute)
    }

    /// Opens the engine. When the root key is unavailable (an HSM missing or unreachable, a wrong PIN, an unknown key
    /// label) the daemon starts sealed: it serves nothing but the operations listener, whose `/readyz` answers 503
    /// with the reason, and tries again every `sealedRetryInterval` until the key loads (then starts as usual) or
    /// it is told to stop (then returns nil). It never serves a protocol without its root key.
    func openEngine(
        runDir: String, open: @escaping @Sendable () async throws -> (GatehouseEngine, any Storage)
    ) async throws -> (GatehouseEngine, any Storage)? {
        let firstReason: String
        do {
            return try await open()
        } catch let e as DaemonError where e.rootKeyUnavailable {
            firstReason = e.description
        }
        let reason = Mutex(firstReason)
        let result = Mutex<(GatehouseEngine, any Storage)?>(nil)
        logger.error("sealed: waiting for the root key", metadata: ["reason": "\(firstReason)"])
        say("gatehouse: sealed (\(firstReason)); serving /readyz only, trying again every \(sealedRetryInterval)")
        SystemdNotifier.notify("STATUS=sealed: \(firstReason)")
        try? FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: runDir + "/listeners.json")
        let enabled = config.listeners.values.filter(\.enabled)
        var services: [any Service] = []
        if let listener = config.listeners["operations"], listener.enabled {
            let settings = Self.settings(listener, tls: nil)
            let readiness: @Sendable () async -> (Bool, String) = {
                (false, "not ready; sealed: \(reason.withLock { $0 }); version \(GatehouseVersion.current)")
            }
            let router = HTTPListener.operationsRouter(settings: settings, registry: registry, readiness: readiness)
            let counter = ConnectionCounter(listener: listener.name, maxConnections: listener.maxConnections)
            services.append(
                HTTPListener.make(
                    settings, router: router, counter: counter, logger: logger,
                    onBound: { [self] port in
                        self.bound.withLock { $0[listener.name] = port }
                        self.say(
                            "gatehouse: listening \(listener.name) http://\(Self.hostForURL(listener.address)):\(port)")
                        self.listenersBound(runDir: runDir, expected: enabled.count)
                    }))
        }
        let interval = sealedRetryInterval
        services.append(
            SealedRetry { [self] in
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                    if Task.isCancelled || Task.isShuttingDownGracefully { return }
                    do {
                        let engine = try await open()
                        result.withLock { $0 = engine }
                        self.logger.notice("root key loaded: unsealed")
                        self.say("gatehouse: root key loaded; starting")
                        return  // stops the sealed listener; `run` then starts every listener with the engine
                    } catch let e as DaemonError where e.rootKeyUnavailable {
                        reason.withLock { $0 = e.description }
                    }
                }
            })
        let group = ServiceGroup(
            configuration: .init(
                services: services.map {
                    .init(
                        service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup)
                },
                gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
        try await group.run()
        bound.withLock { $0.removeAll() }
        return result.withLock { $0 }
    }

    /// How often a sealed daemon tries its root key again.
    var sealedRetryInterval: Duration { .seconds(5) }

    /// Records bound ports in `<data_dir>/run/listeners.json` and tells systemd once all are up.
    func listenersBound(runDir: String, expected: Int) {
        // Written under the lock so concurrent listeners cannot interleave their writes; the file always holds the
        // latest complete snapshot.
        let snapshot = bound.withLock { ports -> [String: Int] in
            if let data = try? JSONSerialization.data(withJSONObject: ports, options: [.sortedKeys]) {
                let tmp = runDir + "/listeners.json.tmp"
                if FileManager.default.createFile(atPath: tmp, contents: data) {
                    _ = rename(tmp, runDir + "/listeners.json")
                }
            }
            return ports
        }
        let first = announcedReady.withLock { done -> Bool in
            if done || snapshot.count != expected { return false }
            done = true
            return true
        }
        if first {
            SystemdNotifier.notify("READY=1\nSTATUS=serving")
            say("gatehouse: ready")
        }
    }
}

/// A sealed daemon's attempts to load its root key.
struct SealedRetry: Service {
    let body: @Sendable () async throws -> Void
    func run() async throws { try await body() }
}

/// Reloads TLS certificates on SIGHUP. A failed reload keeps the old certificates and logs why.
struct ReloadService: Service {
    let contexts: [ReloadableTLSContext]
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            SystemdNotifier.notify("RELOADING=1")
            for context in contexts {
                do {
                    try context.reload()
                    logger.notice(
                        "reloaded TLS certificate", metadata: ["certificate": "\(context.settings.certificatePath)"])
                } catch {
                    logger.error("TLS reload failed; keeping the old certificate", metadata: ["error": "\(error)"])
                }
            }
            SystemdNotifier.notify("READY=1")
        }
    }
}

extension AdminServices {
    /// Every route group served by the one engine.
    init(serving engine: GatehouseEngine) {
        self.init(
            authenticator: engine, access: engine, secrets: engine, audit: engine, pki: engine, alerts: engine,
            kmipPKI: engine, ssh: engine, pam: engine, est: engine, acme: engine, keys: engine)
    }
}
