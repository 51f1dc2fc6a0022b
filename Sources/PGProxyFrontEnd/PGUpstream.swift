import Crypto
import EngineAPI
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import PGWire
import X509

/// Why the proxy could not reach or log in to a resource. `description` is for the administrator and the logs;
/// clients of the proxy only ever get a generic message.
struct PGUpstreamError: Error, CustomStringConvertible {
    enum Kind { case unreachable, tls, refusedLogin, protocolError }
    var kind: Kind
    var description: String
    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// Sends SSLRequest on an upstream connection and installs the TLS client handler once the server answers `S`.
/// Until then nothing else is written or read: bytes after the `S` (plaintext injected before the handshake,
/// cf. CVE-2021-23222) fail the connection.
final class PGUpstreamTLSNegotiator: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let makeTLSHandler: () throws -> NIOSSLClientHandler
    let installed: EventLoopPromise<Void>
    var sent = false
    var tlsInstalled = false

    init(installed: EventLoopPromise<Void>, makeTLSHandler: @escaping () throws -> NIOSSLClientHandler) {
        self.installed = installed
        self.makeTLSHandler = makeTLSHandler
    }

    func handlerAdded(context: ChannelHandlerContext) { if context.channel.isActive { sendRequest(context) } }
    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context)
        context.fireChannelActive()
    }

    func sendRequest(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        let request = PGStartup.sslRequest.frame.bytes
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard buffer.readableBytes == 1, let answer = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
            fail(
                context,
                PGUpstreamError(
                    .protocolError,
                    "the server answered SSLRequest with \(buffer.readableBytes) bytes (not a PostgreSQL server, or bytes injected before TLS)"
                ))
            return
        }
        switch answer {
        case UInt8(ascii: "S"):
            do {
                // From here on, writes come from the TLS handler (its ClientHello first) and pass through.
                tlsInstalled = true
                let tls = try makeTLSHandler()
                try context.pipeline.syncOperations.addHandler(tls, position: .after(self))
                // The connection is ready once the handshake (and the certificate checks in it) has completed; the
                // watcher reports that, or the handshake's own error instead of a later write's "closed channel".
                try context.pipeline.syncOperations.addHandler(
                    PGUpstreamHandshakeWatcher(installed: installed), position: .after(tls))
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            } catch {
                fail(context, PGUpstreamError(.tls, "TLS setup: \(error)"))
            }
        case UInt8(ascii: "N"):
            fail(context, PGUpstreamError(.tls, "the server does not accept TLS connections (SSLRequest answered N)"))
        default:
            fail(context, PGUpstreamError(.protocolError, "unexpected answer to SSLRequest (not a PostgreSQL server?)"))
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Nothing but the SSLRequest may leave before TLS is in place.
        guard tlsInstalled else { return promise?.fail(PGUpstreamError(.tls, "write before TLS")) ?? () }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context, PGUpstreamError(.unreachable, "\(error)"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        installed.fail(PGUpstreamError(.unreachable, "the server closed the connection during SSLRequest"))
        context.fireChannelInactive()
    }

    /// A connection that never came up (refused, timed out) closes without ever being active: the promise fails
    /// here, or it would be left unfulfilled (a leaked promise, fatal in a debug build). Once TLS is in place the
    /// handshake watcher owns it. (A second completion of a promise is ignored.)
    func handlerRemoved(context: ChannelHandlerContext) {
        if !tlsInstalled {
            installed.fail(PGUpstreamError(.unreachable, "the connection closed before SSLRequest was answered"))
        }
    }

    func fail(_ context: ChannelHandlerContext, _ error: PGUpstreamError) {
        installed.fail(error)
        context.close(promise: nil)
    }
}

/// Completes `installed` when the upstream TLS handshake completes, or fails it with the handshake's error (an
/// untrusted chain, a name mismatch, an alert from the server), then leaves the pipeline.
final class PGUpstreamHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    let installed: EventLoopPromise<Void>
    var done = false

    init(installed: EventLoopPromise<Void>) { self.installed = installed }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls, !done {
            done = true
            installed.succeed()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            installed.fail(PGUpstreamError(.tls, "TLS handshake failed: \(Self.describe(error))"))
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            installed.fail(PGUpstreamError(.tls, "the server closed the connection during the TLS handshake"))
        }
        context.fireChannelInactive()
    }

    /// BoringSSL's reason, e.g. "CERTIFICATE_VERIFY_FAILED", rather than the whole error stack's dump.
    static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "the server's certificate did not verify (CERTIFICATE_VERIFY_FAILED): \(text)"
        }
        return text
    }
}

/// Client connections to PostgreSQL resources: TCP, TLS per the resource's mode, and authentication with the
/// injected credential (SCRAM-SHA-256; MD5 and cleartext only over TLS).
enum PGUpstream {
    static func tlsConfiguration(_ target: PAMTarget) throws -> TLSConfiguration {
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = .tlsv12
        switch target.tlsMode {
        case .disable, .require:
            config.certificateVerification = .none
        case .verifyCA, .verifyFull:
            config.certificateVerification = target.tlsMode == .verifyFull ? .fullVerification : .noHostnameVerification
            if let pem = target.caCertificate, !pem.isEmpty {
                do {
                    config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)))
                } catch {
                    throw PGUpstreamError(.tls, "the resource's CA certificate cannot be read: \(error)")
                }
            }
        }
        return config
    }

    /// Opens TCP (+ TLS) to the target on `eventLoop` (the client connection's, so the relay never hops threads).
    /// The returned connection is ready for the StartupMessage.
    static func open(_ target: PAMTarget, on eventLoop: any EventLoop, timeout: TimeAmount = .seconds(10)) async throws
        -> PGConnection
    {
        let useTLS = target.tlsMode != .disable
        let context = useTLS ? try NIOSSLContext(configuration: try tlsConfiguration(target)) : nil
        let isIP = IPAddressText.isLiteral(target.host)
        let (channel, installed): (PGConnection, EventLoopFuture<Void>?)
        do {
            (channel, installed) = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(timeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: target.host, port: target.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        var installed: EventLoopFuture<Void>?
                        if let context {
                            let promise = channel.eventLoop.makePromise(of: Void.self)
                            let negotiator = PGUpstreamTLSNegotiator(installed: promise) {
                                // SNI needs a name: an IP literal gets none, and then verify-full checks the chain
                                // only (like verify-ca); docs/pam.md notes it.
                                try NIOSSLClientHandler(context: context, serverHostname: isIP ? nil : target.host)
                            }
                            try channel.pipeline.syncOperations.addHandler(negotiator)
                            installed = promise.futureResult
                        }
                        return (try PGConnection.install(on: channel, isClient: false), installed)
                    }
                }
        } catch {
            throw PGUpstreamError(.unreachable, "cannot connect to \(target.host):\(target.port): \(error)")
        }
        if let installed {
            do { try await installed.get() } catch {
                channel.close()
                if let e = error as? PGUpstreamError { throw e }
                throw PGUpstreamError(.tls, "\(error)")
            }
        }
        return channel
    }

    /// Sends a CancelRequest for the backend `processID`/`secretKey` on a new connection to the target and waits
    /// (at most `timeout`) for the server to close it, which it does once it has signalled the backend. False when
    /// the request could not be delivered.
    @discardableResult
    static func cancel(
        _ target: PAMTarget, processID: Int32, secretKey: Int32, on eventLoop: any EventLoop, logger: Logger,
        timeout: Duration = .seconds(3)
    ) async -> Bool {
        do {
            let connection = try await open(target, on: eventLoop, timeout: .seconds(3))
            defer { connection.close() }
            try await connection.send(
                ByteBuffer(bytes: PGStartup.cancel(processID: processID, secretKey: secretKey).frame.bytes))
            // The server answers nothing and closes the connection after delivering the signal.
            return try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    while try await connection.receive() != nil {}
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return false
                }
                let first = try await group.next() ?? false
                group.cancelAll()
                connection.close()
                return first
            }
        } catch {
            logger.warning(
                "PAM cancel failed", metadata: ["target": "\(target.host):\(target.port)", "error": "\(error)"])
            return false
        }
    }

    /// What the server said between AuthenticationOk and the first ReadyForQuery.
    struct Greeting: Sendable {
        /// How the proxy authenticated upstream (SCRAM-SHA-256-PLUS, SCRAM-SHA-256, md5, password, trust).
        var method = "trust"
        var parameters: [(String, String)] = []
        var backendKey: (processID: Int32, secretKey: Int32)?
        var notices: [PGBackendMessage] = []
    }

    /// Logs in on an open channel: sends the StartupMessage, answers the authentication exchange, and reads up to the
    /// first ReadyForQuery. `decoder` keeps any bytes that followed it.
    static func login(
        _ connection: PGConnection, decoder: inout PGFrameDecoder, target: PAMTarget, parameters: [(String, String)],
        username: String, password: SecretBytes
    ) async throws -> Greeting {
        let outbound = connection
        try await outbound.send(
            ByteBuffer(bytes: PGStartup.startup(minorVersion: 0, parameters: parameters).frame.bytes))
        var scram: SCRAMClient?
        var greeting = Greeting()
        var authenticated = false
        let passwordText = String(decoding: password.bytes, as: UTF8.self)
        while true {
            guard let frame = try await nextFrame(connection, &decoder) else {
                throw PGUpstreamError(.protocolError, "the server closed the connection during login")
            }
            let message: PGBackendMessage
            do { message = try PGBackendMessage(frame) } catch {
                throw PGUpstreamError(.protocolError, "undecodable server message during login: \(error)")
            }
            switch message {
            case .authentication(let code, let data):
                guard !authenticated else {
                    throw PGUpstreamError(.protocolError, "authentication request after AuthenticationOk")
                }
                switch code {
                case 0: authenticated = true
                case 10:
                    let offered = SCRAMClient.mechanisms(data)
                    // Channel binding whenever the server offers it over TLS.
                    var binding: [UInt8]?
                    if offered.contains(SCRAMClient.mechanismPlus) { binding = await serverEndPoint(connection) }
                    guard binding != nil || offered.contains(SCRAMClient.mechanism) else {
                        throw PGUpstreamError(
                            .refusedLogin, "the server offers no SASL mechanism the proxy supports (\(offered))")
                    }
                    let mechanism = binding == nil ? SCRAMClient.mechanism : SCRAMClient.mechanismPlus
                    let client = SCRAMClient(password: passwordText, channelBinding: binding)
                    scram = client
                    greeting.method = mechanism
                    try await outbound.send(
                        ByteBuffer(
                            bytes: PGFrontendMessage.saslInitialResponse(mechanism: mechanism, data: client.clientFirst)
                                .frame.bytes))
                case 11:
                    guard var client = scram else {
                        throw PGUpstreamError(.protocolError, "SASL continue without SASL")
                    }
                    let final: [UInt8]
                    do { final = try client.clientFinal(serverFirst: data) } catch {
                        throw PGUpstreamError(.protocolError, "SCRAM: \(error)")
                    }
                    scram = client
                    try await outbound.send(
                        ByteBuffer(bytes: PGFrontendMessage.authenticationResponse(final).frame.bytes))
                case 12:
                    guard let client = scram else { throw PGUpstreamError(.protocolError, "SASL final without SASL") }
                    do { try client.verify(serverFinal: data) } catch {
                        throw PGUpstreamError(.refusedLogin, "SCRAM: \(error)")
                    }
                case 3, 5:
                    // A password (or its MD5) must not cross an unencrypted connection.
                    guard target.tlsMode != .disable else {
                        throw PGUpstreamError(
                            .refusedLogin,
                            "the server asks for a \(code == 3 ? "cleartext" : "MD5") password on an unencrypted connection; use scram-sha-256 or TLS"
                        )
                    }
                    var answer = password.bytes
                    greeting.method = code == 3 ? "password" : "md5"
                    if code == 5 {
                        guard data.count == 4 else {
                            throw PGUpstreamError(.protocolError, "MD5 request without a salt")
                        }
                        let inner = Hex.encode(Insecure.MD5.hash(data: password.bytes + Array(username.utf8)))
                        answer = Array(("md5" + Hex.encode(Insecure.MD5.hash(data: Array(inner.utf8) + data))).utf8)
                    }
                    try await outbound.send(
                        ByteBuffer(bytes: PGFrontendMessage.authenticationResponse(answer + [0]).frame.bytes))
                default:
                    throw PGUpstreamError(
                        .refusedLogin,
                        "the server asks for an authentication method the proxy does not support (\(code))")
                }
            case .errorOrNotice(true, let fields):
                let text = [fields[UInt8(ascii: "C")].map { "SQLSTATE \($0)" }, fields[UInt8(ascii: "M")]].compactMap {
                    $0
                }.joined(separator: ": ")
                throw PGUpstreamError(
                    authenticated ? .protocolError : .refusedLogin, text.isEmpty ? "the server refused the login" : text
                )
            case .errorOrNotice(false, _):
                greeting.notices.append(message)
            case .parameterStatus(let name, let value):
                greeting.parameters.append((name, value))
            case .backendKeyData(let pid, let key):
                greeting.backendKey = (pid, key)
            case .negotiateProtocolVersion:
                break
            case .readyForQuery:
                guard authenticated else {
                    throw PGUpstreamError(.protocolError, "ReadyForQuery before AuthenticationOk")
                }
                return greeting
            default:
                throw PGUpstreamError(.protocolError, "unexpected server message during login")
            }
        }
    }

    /// RFC 5929 `tls-server-end-point`: the hash of the server's certificate, with SHA-256 unless its signature
    /// uses SHA-384 or SHA-512 (then that hash). nil without TLS.
    static func serverEndPoint(_ connection: PGConnection) async -> [UInt8]? {
        guard let certificate = try? await connection.channel.nioSSL_peerCertificate().get(),
            let der = try? certificate.toDERBytes(),
            let parsed = try? Certificate(derEncoded: der)
        else { return nil }
        switch parsed.signatureAlgorithm {
        case .ecdsaWithSHA384, .sha384WithRSAEncryption: return Array(SHA384.hash(data: der))
        case .ecdsaWithSHA512, .sha512WithRSAEncryption: return Array(SHA512.hash(data: der))
        default: return Array(SHA256.hash(data: der))
        }
    }

    static func nextFrame(_ connection: PGConnection, _ decoder: inout PGFrameDecoder) async throws -> PGFrame? {
        while true {
            if let frame = try decoder.next() { return frame }
            guard let buffer = try await connection.receive() else { return nil }
            decoder.feed(buffer.readableBytesView)
        }
    }
}

/// The engine's connector: connection tests and credential checks with the proxy's own upstream code.
public struct PGConnector: PAMConnector {
    public init() {}

    public func checkReachable(_ target: PAMTarget) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        if target.tlsMode != .disable {
            // A TLS mode: the SSLRequest, the handshake and the certificate checks are the test. The handshake runs
            // when the first bytes go out; a verification failure closes the connection with the error.
            let connection = try await mapped { try await PGUpstream.open(target, on: loop) }
            defer { connection.close() }
            try await mapped {
                try await connection.send(ByteBuffer(bytes: PGFrontendMessage.terminate.frame.bytes))
                _ = try await connection.receive()
            }
            return
        }
        // Plain TCP: a PostgreSQL server answers an SSLRequest with one byte, S or N.
        let connection = try await mapped {
            try await ClientBootstrap(group: loop).connectTimeout(.seconds(10))
                .connect(host: target.host, port: target.port) { channel in
                    channel.eventLoop.makeCompletedFuture { try PGConnection.install(on: channel, isClient: false) }
                }
        }
        defer { connection.close() }
        try await mapped {
            try await connection.send(ByteBuffer(bytes: PGStartup.sslRequest.frame.bytes))
            guard let answer = try await connection.receive(), answer.readableBytes == 1,
                let byte = answer.getInteger(at: answer.readerIndex, as: UInt8.self),
                byte == UInt8(ascii: "S") || byte == UInt8(ascii: "N")
            else {
                throw PGUpstreamError(
                    .protocolError, "\(target.host):\(target.port) does not answer like a PostgreSQL server")
            }
        }
    }

    /// A connection logged in as `username` (the caller closes it) and the decoder holding what followed the login.
    func loggedIn(_ target: PAMTarget, username: String, password: SecretBytes, application: String) async throws
        -> (PGConnection, PGFrameDecoder)
    {
        let connection = try await mapped {
            try await PGUpstream.open(target, on: MultiThreadedEventLoopGroup.singleton.next())
        }
        do {
            var decoder = PGFrameDecoder(expectStartup: false)
            try await mapped {
                _ = try await PGUpstream.login(
                    connection, decoder: &decoder, target: target,
                    parameters: [("user", username), ("database", target.database), ("application_name", application)],
                    username: username, password: password)
            }
            return (connection, decoder)
        } catch {
            connection.close()
            throw error
        }
    }

    public func checkLogin(_ target: PAMTarget, username: String, password: SecretBytes) async throws {
        let (connection, _) = try await loggedIn(
            target, username: username, password: password, application: "gatehouse-check")
        defer { connection.close() }
        try await mapped { try await connection.send(ByteBuffer(bytes: PGFrontendMessage.terminate.frame.bytes)) }
    }

    public func setPassword(
        _ target: PAMTarget, username: String, password: SecretBytes, role: String, verifier: String
    ) async throws {
        // The verifier is base64, digits and `$:`; anything else would not be one (and could break the literal).
        guard verifier.hasPrefix("SCRAM-SHA-256$"),
            verifier.utf8.allSatisfy({ $0 < 0x80 && $0 != UInt8(ascii: "'") && $0 != UInt8(ascii: "\\") })
        else {
            throw EngineError(.internal, "not a SCRAM verifier")
        }
        let quotedRole = "\"" + role.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        var (connection, decoder) = try await loggedIn(
            target, username: username, password: password, application: "gatehouse-rotation")
        defer { connection.close() }
        try await mapped {
            try await connection.send(
                ByteBuffer(
                    bytes: PGFrontendMessage.query("ALTER ROLE \(quotedRole) PASSWORD '\(verifier)'").frame.bytes))
            var error: String?
            while let frame = try await PGUpstream.nextFrame(connection, &decoder) {
                guard let message = try? PGBackendMessage(frame) else { continue }
                if case .errorOrNotice(true, let fields) = message {
                    error = [fields[UInt8(ascii: "C")], fields[UInt8(ascii: "M")]].compactMap { $0 }.joined(
                        separator: ": ")
                }
                if case .readyForQuery = message { break }
            }
            if let error { throw PGUpstreamError(.refusedLogin, "ALTER ROLE: \(error)") }
            try await connection.send(ByteBuffer(bytes: PGFrontendMessage.terminate.frame.bytes))
        }
    }

    func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as PGUpstreamError {
            switch e.kind {
            case .refusedLogin: throw EngineError(.invalidArgument, "login refused: \(e.description)")
            // The administrator named a target the appliance cannot use: a request error with the reason.
            case .unreachable, .tls, .protocolError:
                throw EngineError(.invalidArgument, "connection test failed: \(e.description)")
            }
        } catch let e as EngineError {
            throw e
        } catch {
            throw EngineError(.invalidArgument, "connection test failed: \(error)")
        }
    }
}

/// Whether a host string is an IPv4 or IPv6 literal.
enum IPAddressText {
    static func isLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
