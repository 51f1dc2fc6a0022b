import EngineAPI
import Foundation
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import PGWire
import ServerSupport
import ServiceLifecycle
import Synchronization

/// What the proxy calls on the engine: token authentication and one session's admission, deadline, manifest
/// signature and end.
public typealias PGProxyEngine = Authenticator & PAMSessionEngine

/// Proxy-issued cancel keys and where each session's backend lives.
final class PGCancelRegistry: Sendable {
    let keys = Mutex(PGCancelKeys())
    let targets = Mutex<[String: PAMTarget]>([:])
}

/// Session counters shared by the relay tasks.
final class StatsBox: Sendable {
    let value: Mutex<PAMSessionStats>
    init(_ initial: PAMSessionStats) { value = Mutex(initial) }
}

/// The PostgreSQL access proxy listener: PostgreSQL v3 clients (psql, libpq, psycopg, pgbench) connect with TLS,
/// authenticate with a Gatehouse client certificate (or a Gatehouse access token as the password), and select a
/// grant with `user=<account> dbname=<resource>`. The proxy logs in upstream with the account's credential, which
/// the client never sees, and relays both ways.
public struct PGProxyListener: Service {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var tls: ReloadableTLSContext
        public var maxMessageSize: Int
        public var handshakeTimeout: TimeAmount
        public var idleTimeout: TimeAmount
        /// From accept to an authenticated session (PostgreSQL's `authentication_timeout`).
        public var loginTimeout: TimeAmount
        /// How often live sessions re-check their grant (revocation; expiry is exact).
        public var grantCheckInterval: Duration
        /// Where session recordings are written (`<data_dir>/recordings`).
        public var recordingDirectory: String
        /// Failed log-ins a client address may have at once, and per second after that (0: no limit).
        public var failureBurst: Int = 100
        public var failuresPerMinute: Int = 600
        /// Why recordings cannot reach their store now (too large a backlog, a store that keeps failing), or nil: a
        /// fail-closed resource then refuses new sessions, as it does when the file cannot be written.
        public var recordingBlocked: @Sendable () -> String? = { nil }

        public init(
            host: String, port: Int, tls: ReloadableTLSContext, maxMessageSize: Int, handshakeTimeout: TimeAmount,
            idleTimeout: TimeAmount, loginTimeout: TimeAmount = .seconds(30), recordingDirectory: String,
            grantCheckInterval: Duration = .seconds(2)
        ) {
            self.loginTimeout = loginTimeout
            self.recordingDirectory = recordingDirectory
            self.host = host
            self.port = port
            self.tls = tls
            self.maxMessageSize = maxMessageSize
            self.handshakeTimeout = handshakeTimeout
            self.idleTimeout = idleTimeout
            self.grantCheckInterval = grantCheckInterval
        }
    }

    let settings: Settings
    let engine: any PGProxyEngine
    let counter: ConnectionCounter
    let logger: Logger
    let onBound: @Sendable (Int) async -> Void
    let cancels = PGCancelRegistry()
    let failures: FailureRateLimiter
    var openMarkers: PGOpenSessionMarkers { PGOpenSessionMarkers(recordingDirectory: settings.recordingDirectory) }

    public init(
        settings: Settings, engine: any PGProxyEngine, counter: ConnectionCounter, logger: Logger,
        onBound: @escaping @Sendable (Int) async -> Void
    ) {
        self.settings = settings
        self.engine = engine
        self.counter = counter
        self.logger = logger
        self.onBound = onBound
        self.failures = FailureRateLimiter(
            listener: "postgres", burst: settings.failureBurst, refillPerMinute: settings.failuresPerMinute)
    }

    /// The listener's policy: TLS after the client's SSLRequest (or directly), and the log-in ends with an
    /// authenticated session; a late one gets PostgreSQL's own `authentication_timeout` error.
    var policy: ListenerPolicy {
        let tls = settings.tls
        return ListenerPolicy(
            host: settings.host, port: settings.port,
            tls: .negotiated({ PGPreTLSHandler(makeTLSHandlers: { tls.makeServerHandlers() }) }),
            handshakeTimeout: settings.handshakeTimeout, idleTimeout: settings.idleTimeout,
            loginTimeout: settings.loginTimeout, loginTimeoutMessage: Self.loginTimeoutMessage)
    }

    public func run() async throws {
        await closeSessionsOfAStoppedNode()
        let logger = self.logger
        let onBound = self.onBound
        try await Listener.service(PGChildChannel(listener: self), policy: policy, counter: counter, logger: logger) {
            port in
            logger.info("PostgreSQL proxy listening", metadata: ["port": "\(port)"])
            await onBound(port)
        }.run()
    }

    /// Sessions this node was serving when it stopped without closing them (crash, `kill -9`, power loss): one daemon
    /// serves a data directory at a time, so none of them is still running. Each is closed in the store as
    /// `node-crashed`, and replay says so instead of "still running".
    func closeSessionsOfAStoppedNode() async {
        let markers = openMarkers
        for id in markers.list() {
            logger.warning("PAM session left open by a stopped daemon", metadata: ["sessionId": "\(id)"])
            await engine.closePAMSession(
                .system("pam-proxy"), sessionId: id, reason: .nodeCrashed, stats: PAMSessionStats())
            markers.remove(id)
        }
    }

    /// What PostgreSQL itself says when `authentication_timeout` passes.
    static let loginTimeoutMessage = PGBackendMessage.error(
        sqlState: "57014", message: "canceling authentication due to timeout", severity: "FATAL"
    ).frame.bytes

    func serve(_ connection: PGConnection) async {
        await PGProxySession(listener: self, client: connection).run()
        connection.close()
    }
}

/// One proxy connection: the side handler the session task drives.
struct PGChildChannel: ServerChildChannel {
    let listener: PGProxyListener

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<PGConnection> {
        channel.eventLoop.makeCompletedFuture { try PGConnection.install(on: channel, isClient: true) }
    }

    func handle(value: PGConnection, logger: Logger) async {
        await listener.serve(value)
    }
}

extension PGConnection: ServerChildChannelValue {}

/// One client connection, from the start-up packet to the end of the relayed session.
struct PGProxySession {
    let listener: PGProxyListener
    let client: PGConnection
    var openMarkers: PGOpenSessionMarkers { listener.openMarkers }
    var channel: any Channel { client.channel }
    var engine: any PGProxyEngine { listener.engine }
    var logger: Logger { listener.logger }

    func send(_ messages: [PGBackendMessage]) async throws {
        var buffer = ByteBuffer()
        for m in messages { buffer.writeBytes(m.frame.bytes) }
        try await client.send(buffer)
    }

    func fatal(_ sqlState: String, _ message: String) async {
        try? await send([.error(sqlState: sqlState, message: message, severity: "FATAL")])
    }

    func run() async {
        var decoder = PGFrameDecoder(expectStartup: true, maxMessageLength: listener.settings.maxMessageSize)
        let ip = channel.remoteAddress?.ipAddress
        do {
            guard let first = try await PGUpstream.nextFrame(client, &decoder) else { return }
            let startup: PGStartup
            do { startup = try PGStartup(body: first.body) } catch {
                return await fatal("08P01", "invalid start-up packet")
            }
            var parameters: [(String, String)]
            switch startup {
            case .cancel(let pid, let key):
                return await cancel(processID: pid, secretKey: key)
            case .sslRequest, .gssEncRequest:
                return await fatal("08P01", "SSLRequest or GSSENCRequest inside TLS")
            case .startup(let minor, let params):
                parameters = params
                // Protocol 3.x with x > 0 and `_pq_.` options: the proxy speaks 3.0 and says so (§55.2.2).
                let extensions = params.map(\.0).filter { $0.hasPrefix("_pq_.") }
                parameters.removeAll { $0.0.hasPrefix("_pq_.") }
                if minor > 0 || !extensions.isEmpty {
                    try await send([.negotiateProtocolVersion(minor: 0, unrecognized: extensions)])
                }
            }
            let request: PGStartupRequest
            do { request = try PGStartupRequest(parameters: parameters) } catch {
                return await fatal(error.sqlState, error.description)
            }
            decoder.expectStartup = false
            // Who is this: the client certificate, or else a Gatehouse access token given as the password.
            var principal = await PeerPrincipal.principal(of: channel)
            // An address that keeps failing is turned away before any work, unless its certificate was verified.
            if !principal.verifiedByListener, case (false, let retryAfter) = listener.failures.check(ip) {
                await listener.failures.delayRefusal()
                return await fatal("53300", "too many failed log-ins from this address; retry in \(retryAfter) s")
            }
            if principal.method == .anonymous {
                try await send([.authentication(code: 3, data: [])])
                guard let frame = try await PGUpstream.nextFrame(client, &decoder), frame.type == UInt8(ascii: "p")
                else {
                    return await fatal("08P01", "expected a password message")
                }
                var reader = PGReader(frame.body)
                let token = (try? reader.cString()) ?? ""
                do {
                    principal = try await engine.authenticate(bearerToken: token, ipAddress: ip, frontEnd: "pg-proxy")
                } catch {
                    listener.failures.recordFailure(ip)
                    return await fatal(
                        "28P01",
                        "authentication failed: present a Gatehouse client certificate or an access token as the password"
                    )
                }
            }
            let ctx = CallContext(
                principal: principal, frontEnd: "pg-proxy", ipAddress: ip,
                userAgent: request.passthrough["application_name"])
            let ticket: PAMSessionTicket
            do {
                ticket = try await engine.openPAMSession(ctx, resource: request.resource, username: request.account)
            } catch let e as EngineError {
                if e.code == .unauthenticated || e.code == .permissionDenied { listener.failures.recordFailure(ip) }
                switch e.code {
                case .unauthenticated:
                    return await fatal(
                        "28000", "authentication failed: no Gatehouse identity accepts this client certificate")
                case .permissionDenied: return await fatal("28000", e.message)
                default:
                    logger.error("PAM session refused", metadata: ["error": "\(e)"])
                    return await fatal("08006", "the access proxy cannot open the session")
                }
            }
            try await relay(ticket, request, ctx, &decoder)
        } catch {
            logger.debug("PostgreSQL proxy session failed", metadata: ["error": "\(error)"])
            if let e = error as? PGWireError { await fatal("08P01", e.description) }
        }
    }

    func relay(
        _ ticket: PAMSessionTicket, _ request: PGStartupRequest, _ ctx: CallContext,
        _ clientDecoder: inout PGFrameDecoder
    ) async throws {
        let target = ticket.resource.target
        let upstream: PGConnection
        do {
            upstream = try await PGUpstream.open(target, on: channel.eventLoop)
        } catch {
            logger.error(
                "PAM upstream unreachable", metadata: ["sessionId": "\(ticket.sessionId)", "error": "\(error)"])
            await engine.closePAMSession(ctx, sessionId: ticket.sessionId, reason: .upstreamUnreachable, stats: .init())
            return await fatal("08006", "cannot connect to the resource (the Gatehouse log has the reason)")
        }
        defer { upstream.close() }
        let clientLeftover = clientDecoder.drain()
        var upDecoder = PGFrameDecoder(expectStartup: false, maxMessageLength: 1 << 30)
        let greeting: PGUpstream.Greeting
        do {
            greeting = try await PGUpstream.login(
                upstream, decoder: &upDecoder, target: target,
                parameters: request.upstreamParameters(role: ticket.username, database: target.database),
                username: ticket.username, password: ticket.password)
        } catch {
            // The upstream's words stay in the log: the client is told only that the login failed.
            logger.error(
                "PAM upstream login failed", metadata: ["sessionId": "\(ticket.sessionId)", "error": "\(error)"])
            await engine.closePAMSession(ctx, sessionId: ticket.sessionId, reason: .upstreamLoginFailed, stats: .init())
            return await fatal("08006", "the resource refused the proxy's login (the Gatehouse log has the reason)")
        }
        var proxyKey: (processID: Int32, secretKey: Int32)?
        if let key = greeting.backendKey {
            proxyKey = listener.cancels.keys.withLock {
                $0.issue(for: .init(processID: key.processID, secretKey: key.secretKey, session: ticket.sessionId))
            }
            listener.cancels.targets.withLock { $0[ticket.sessionId] = target }
        }
        defer {
            if let proxyKey { listener.cancels.keys.withLock { $0.remove(processID: proxyKey.processID) } }
            listener.cancels.targets.withLock { $0[ticket.sessionId] = nil }
        }
        // Until the session is closed in the store, a marker says this node serves it: one left at start-up means
        // the node stopped (crash, kill -9) with the session open. It exists before the recording file does, so the
        // recording shipper never takes a file without a marker for a finished session's.
        openMarkers.add(ticket.sessionId)
        if ticket.resource.failClosed, let reason = listener.settings.recordingBlocked() {
            logger.error(
                "PAM session refused: recordings cannot reach the store",
                metadata: ["sessionId": "\(ticket.sessionId)", "reason": "\(reason)"])
            await engine.closePAMSession(ctx, sessionId: ticket.sessionId, reason: .recordingFailed, stats: .init())
            openMarkers.remove(ticket.sessionId)
            return await fatal(
                "58030", "session recordings cannot reach their store (\(reason)), and this resource requires one")
        }
        // The recording starts before the first relayed byte; without it a fail-closed resource serves nothing.
        var recorder: PGSessionRecorder?
        do {
            recorder = try PGSessionRecorder(
                directory: listener.settings.recordingDirectory, sessionId: ticket.sessionId, key: ticket.recordingKey)
        } catch {
            logger.error(
                "PAM recording cannot start", metadata: ["sessionId": "\(ticket.sessionId)", "error": "\(error)"])
            if ticket.resource.failClosed {
                await engine.closePAMSession(ctx, sessionId: ticket.sessionId, reason: .recordingFailed, stats: .init())
                openMarkers.remove(ticket.sessionId)
                return await fatal("58030", "the session recording cannot be written, and this resource requires one")
            }
        }
        recorder?.record(
            PAMRecordingEvent(
                t: 0, kind: "start",
                detail: [
                    "session": ticket.sessionId, "grant": ticket.grantId, "resource": ticket.resource.name,
                    "account": ticket.username,
                    "who": ticket.granteeName, "principal": ctx.principal.id, "client": ctx.ipAddress ?? "",
                    "application": request.passthrough["application_name"] ?? "",
                    "upstreamTLS": target.tlsMode.rawValue, "upstreamAuth": greeting.method,
                ]))
        var hello: [PGBackendMessage] = [.authentication(code: 0, data: [])]
        hello += greeting.parameters.map { .parameterStatus(name: $0.0, value: $0.1) }
        hello += greeting.notices
        if let proxyKey { hello.append(.backendKeyData(processID: proxyKey.processID, secretKey: proxyKey.secretKey)) }
        hello.append(.readyForQuery(status: UInt8(ascii: "I")))
        let state = PGRelayState(
            stats: StatsBox(PAMSessionStats()), recorder: recorder, failClosed: ticket.resource.failClosed)
        let maxMessage = listener.settings.maxMessageSize
        // From here on the session is always closed in the store (and its recording sealed), whatever happens.
        var relaying = true
        do {
            try await send(hello)
            channel.triggerUserOutboundEvent(ConnectionGuardEvent.loggedIn, promise: nil)
            logger.info(
                "PAM session started",
                metadata: [
                    "sessionId": "\(ticket.sessionId)", "resource": "\(ticket.resource.name)",
                    "account": "\(ticket.username)",
                    "caller": "\(ctx.principal.name)",
                ])
            try await PGConnection.relay(
                client: client, server: upstream, state: state,
                clientObserver: PGStreamObserver(.client, maxMessageLength: maxMessage),
                serverObserver: PGStreamObserver(
                    .server, maxMessageLength: 1 << 30, recordRows: ticket.resource.recordRows ?? 0),
                clientLeftover: ByteBuffer(bytes: clientLeftover), serverLeftover: ByteBuffer(bytes: upDecoder.drain()))
        } catch {
            state.end(.clientDisconnected)
            relaying = false
        }

        let clientChannel = channel
        let client = self.client
        let upChannel = upstream.channel
        let engine = self.engine
        let logger = self.logger
        let checkEvery = listener.settings.grantCheckInterval
        let reason: PAMSessionEndReason =
            !relaying
            ? (state.reason.withLock { $0 } ?? .clientDisconnected)
            : await withTaskGroup(of: PAMSessionEndReason?.self) { group in
                group.addTask {
                    try? await clientChannel.closeFuture.get()
                    return nil
                }
                group.addTask {
                    try? await upChannel.closeFuture.get()
                    return nil
                }
                group.addTask {
                    // Ends the session exactly at the grant's end, at once on a revocation through this node, and within
                    // `checkEvery` of one through another node.
                    var deadline = ticket.expiresAt
                    while !Task.isCancelled {
                        let wait = min(
                            deadline.timeIntervalSinceNow,
                            Double(checkEvery.components.seconds) + Double(checkEvery.components.attoseconds) / 1e18)
                        if wait > 0 {
                            await engine.waitForPAMGrantChange(
                                grantId: ticket.grantId, timeout: .milliseconds(Int(wait * 1000) + 1))
                            if Task.isCancelled { return nil }
                        }
                        guard
                            let current = await engine.pamSessionDeadline(
                                sessionId: ticket.sessionId, grantId: ticket.grantId)
                        else {
                            // Gone: by its own end (the clocks of the check and the grant agree to the second), or early.
                            return ticket.expiresAt.timeIntervalSinceNow < 1 ? .grantExpired : .grantRevoked
                        }
                        deadline = min(current, ticket.expiresAt)
                        if deadline <= Date() { return .grantExpired }
                    }
                    return nil
                }
                if let recorder {
                    group.addTask {
                        // Seals what is pending every second: a crash loses at most that much.
                        while !Task.isCancelled {
                            do { try await Task.sleep(for: .seconds(1)) } catch { return nil }
                            if !recorder.flush(), state.failClosed { return .recordingFailed }
                        }
                        return nil
                    }
                }
                let first = await group.next() ?? nil
                if let first {
                    state.end(first)
                    if [.grantExpired, .grantRevoked, .recordingFailed].contains(first) {
                        // The client hears nothing more from the database: what it still sends is dropped, and it is told
                        // why. The statement in flight is cancelled with the backend's own key, so it stops and its
                        // transaction rolls back, before the upstream connection is closed (closing alone leaves the
                        // backend running the statement until it next writes to the socket, and a commit can land).
                        let clientSide = client.handler
                        try? await clientChannel.eventLoop.submit { clientSide.value.dropInput = true }.get()
                        let text =
                            first == .grantExpired
                            ? "the access grant expired"
                            : first == .grantRevoked ? "the access grant was revoked" : "the recording failed"
                        try? await clientChannel.writeAndFlush(
                            ByteBuffer(
                                bytes: PGBackendMessage.error(
                                    sqlState: first == .recordingFailed ? "58030" : "57P01",
                                    message: "terminating the session: \(text)", severity: "FATAL"
                                ).frame.bytes))
                        if let key = greeting.backendKey {
                            await PGUpstream.cancel(
                                target, processID: key.processID, secretKey: key.secretKey, on: upChannel.eventLoop,
                                logger: logger)
                        }
                    }
                }
                clientChannel.close(promise: nil)
                upChannel.close(promise: nil)
                group.cancelAll()
                return state.reason.withLock { $0 } ?? .ended
            }
        var final = state.stats.value.withLock { $0 }
        if let recorder {
            recorder.record(PAMRecordingEvent(t: recorder.seconds, kind: "end", text: reason.rawValue))
            if let sealed = await recorder.close(reason: reason.rawValue, engine: engine, sessionId: ticket.sessionId) {
                final.recordingChunks = sealed.chunks
                final.recordingChain = sealed.chain
            }
        }
        await engine.closePAMSession(ctx, sessionId: ticket.sessionId, reason: reason, stats: final)
        openMarkers.remove(ticket.sessionId)
        logger.info(
            "PAM session ended",
            metadata: ["sessionId": "\(ticket.sessionId)", "reason": "\(reason)", "statements": "\(final.statements)"])
    }

    /// Forwards a CancelRequest to the backend the proxy key names; unknown keys are ignored, as PostgreSQL does.
    func cancel(processID: Int32, secretKey: Int32) async {
        guard let upstream = listener.cancels.keys.withLock({ $0.resolve(processID: processID, secretKey: secretKey) }),
            let target = listener.cancels.targets.withLock({ $0[upstream.session] })
        else { return }
        if await PGUpstream.cancel(
            target, processID: upstream.processID, secretKey: upstream.secretKey, on: channel.eventLoop, logger: logger)
        {
            logger.info("PAM cancel forwarded", metadata: ["sessionId": "\(upstream.session)"])
        }
    }
}

/// One empty file per session this node serves (`<recordings>/.open/<session id>`), removed when the session is
/// closed in the store; what is left at start-up names the sessions a crash left open.
public struct PGOpenSessionMarkers: Sendable {
    let directory: String

    public init(recordingDirectory: String) { directory = recordingDirectory + "/.open" }

    public func add(_ id: String) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: directory + "/" + id, contents: nil)
    }

    public func remove(_ id: String) { try? FileManager.default.removeItem(atPath: directory + "/" + id) }

    public func list() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }
    }
}
