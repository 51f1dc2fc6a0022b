import EngineAPI
import Foundation
import NIOCore
import NIOEmbedded
import NIOSSL
import PGWire
import ServerSupport
import Synchronization
import TestSupport
import Testing

@testable import PGProxyFrontEnd

/// What the proxy asks of the engine, scripted: tokens equal to `goodToken` authenticate; sessions are refused
/// with `refusal`. It remembers what it was asked.
final class ScriptedProxyEngine: PAMSessionEngineDouble, Authenticator, @unchecked Sendable {
    static let goodToken = "gh-token-for-tests"
    let refusal: EngineError
    let asked = Mutex<[String]>([])

    init(refusal: EngineError = EngineError(.permissionDenied, "no active grant for db-admin on orders")) {
        self.refusal = refusal
    }

    func authenticate(bearerToken: String, ipAddress: String?, frontEnd: String) async throws -> Principal {
        asked.withLock { $0.append("authenticate \(frontEnd) from \(ipAddress ?? "-")") }
        guard bearerToken == Self.goodToken else { throw EngineError(.unauthenticated, "bad token") }
        return Principal(method: .token, id: "id-1", name: "alice")
    }

    override func openPAMSession(_ ctx: CallContext, resource: String, username: String) async throws
        -> PAMSessionTicket
    {
        asked.withLock { $0.append("open \(username)@\(resource) as \(ctx.principal.name)") }
        throw refusal
    }
}

/// Start-up packets and messages as a client sends them.
enum PGClient {
    static func packet(_ code: Int32, _ body: [UInt8] = []) -> [UInt8] {
        var w = PGWriter()
        w.int32(code)
        w.raw(body)
        return PGFrame(type: nil, body: w.bytes).bytes
    }

    static func startup(minor: Int32 = 0, _ parameters: [(String, String)]) -> [UInt8] {
        var body: [UInt8] = []
        for (name, value) in parameters { body += Array(name.utf8) + [0] + Array(value.utf8) + [0] }
        return packet(3 << 16 | minor, body + [0])
    }

    static func password(_ text: String) -> [UInt8] {
        PGFrame(type: UInt8(ascii: "p"), body: Array(text.utf8) + [0]).bytes
    }
}

/// Splits what the proxy wrote into backend messages.
func backendMessages(_ bytes: [UInt8]) throws -> [PGBackendMessage] {
    var decoder = PGFrameDecoder(expectStartup: false)
    decoder.feed(bytes)
    var out: [PGBackendMessage] = []
    while let frame = try decoder.next() { out.append(try PGBackendMessage(frame)) }
    return out
}

/// The SQLSTATE and message of a FATAL ErrorResponse.
func fatal(_ message: PGBackendMessage?) -> (code: String, text: String)? {
    guard case .errorOrNotice(true, let fields)? = message, fields[UInt8(ascii: "S")] == "FATAL" else { return nil }
    return (fields[UInt8(ascii: "C")] ?? "", fields[UInt8(ascii: "M")] ?? "")
}

/// The PostgreSQL proxy listener's connection logic, up to the point where it would dial the database: the clear-text
/// negotiation, the start-up packet, authentication, the engine's refusals, the failure limiter and the login
/// deadline, through `PGChildChannel` behind the listener's `ListenerPolicy`, without sockets.
@Suite(.timeLimit(.minutes(1))) struct PGProxyListenerTests {
    let counter = ConnectionCounter(listener: "postgres-test", maxConnections: 10)
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    func listener(_ engine: ScriptedProxyEngine = ScriptedProxyEngine(), failureBurst: Int = 100) throws
        -> PGProxyListener
    {
        let pki = DevelopmentPKI(directory: directory.path + "/pki")
        _ = try pki.ensure(adminCommonName: "admin")
        let tls = try ReloadableTLSContext(
            settings: TLSServerSettings(
                certificatePath: pki.serverCertificate, keyPath: pki.serverKey, clientCAPath: pki.caCertificate,
                clientAuth: .optional))
        var settings = PGProxyListener.Settings(
            host: "127.0.0.1", port: 0, tls: tls, maxMessageSize: 1 << 20, handshakeTimeout: .seconds(5),
            idleTimeout: .seconds(60), loginTimeout: .seconds(5), recordingDirectory: directory.path + "/recordings")
        settings.failureBurst = failureBurst
        settings.failuresPerMinute = 1
        return PGProxyListener(
            settings: settings, engine: engine, counter: counter, logger: testLogger, onBound: { _ in })
    }

    /// The listener's policy without TLS: the session logic in clear, as it runs inside TLS.
    func inClear(_ l: PGProxyListener) -> ListenerPolicy {
        var policy = l.policy
        policy.tls = .none
        return policy
    }

    @Test func anAnonymousClientIsAskedForAPasswordAndABadTokenIsRefused28P01() async throws {
        let engine = ScriptedProxyEngine()
        let l = try listener(engine)
        try await withConnection(PGChildChannel(listener: l), policy: inClear(l), counter: counter) { channel in
            try await channel.send(PGClient.startup([("user", "db-admin"), ("database", "orders")]))
            #expect(try backendMessages(try await channel.nextWrite()) == [.authentication(code: 3, data: [])])
            try await channel.send(PGClient.password("not-a-token"))
            try await channel.closeFuture.get()
            let refusal = try #require(fatal(try backendMessages(try await channel.written()).first))
            #expect(refusal.code == "28P01")
        }
        #expect(engine.asked.withLock { $0 } == ["authenticate pg-proxy from 192.0.2.10"])
    }

    @Test func aValidTokenWithoutAGrantGetsTheEnginesReason28000() async throws {
        let engine = ScriptedProxyEngine()
        let l = try listener(engine)
        try await withConnection(PGChildChannel(listener: l), policy: inClear(l), counter: counter) { channel in
            try await channel.send(
                PGClient.startup([("user", "db-admin"), ("database", "orders"), ("application_name", "psql")]))
            _ = try await channel.nextWrite()
            try await channel.send(PGClient.password(ScriptedProxyEngine.goodToken))
            try await channel.closeFuture.get()
            let refusal = try #require(fatal(try backendMessages(try await channel.written()).first))
            #expect(refusal.code == "28000")
            #expect(refusal.text.contains("no active grant"))
        }
        #expect(engine.asked.withLock { $0 }.last == "open db-admin@orders as alice")
    }

    @Test func aNewerMinorVersionAndProtocolOptionsAreNegotiatedDownTo3_0() async throws {
        let l = try listener()
        try await withConnection(PGChildChannel(listener: l), policy: inClear(l), counter: counter) { channel in
            try await channel.send(
                PGClient.startup(
                    minor: 2, [("user", "db-admin"), ("database", "orders"), ("_pq_.compression", "on")]))
            var messages: [PGBackendMessage] = []
            while messages.count < 2 { messages += try backendMessages(try await channel.nextWrite()) }
            #expect(
                messages == [
                    .negotiateProtocolVersion(minor: 0, unrecognized: ["_pq_.compression"]),
                    .authentication(code: 3, data: []),
                ])
        }
    }

    @Test(arguments: [
        (PGClient.packet(1 << 16), "08P01"),  // protocol 1.0
        (PGClient.packet(PGStartup.sslRequestCode), "08P01"),  // an SSLRequest inside TLS
        (PGClient.startup([("user", "db-admin")]), "28000"),  // no database: which resource?
        (PGClient.startup([("user", "a"), ("database", "b"), ("replication", "database")]), "0A000"),
    ])
    func aStartUpPacketTheProxyCannotServeIsAFatalError(_ packet: [UInt8], _ code: String) async throws {
        let l = try listener()
        try await withConnection(PGChildChannel(listener: l), policy: inClear(l), counter: counter) { channel in
            try await channel.send(packet)
            try await channel.closeFuture.get()
            #expect(fatal(try backendMessages(try await channel.written()).first)?.code == code)
        }
    }

    @Test func anAddressOverItsFailureBudgetIsTurnedAwayBeforeAuthenticating() async throws {
        let engine = ScriptedProxyEngine()
        let l = try listener(engine, failureBurst: 1)
        for attempt in 0..<2 {
            try await withConnection(PGChildChannel(listener: l), policy: inClear(l), counter: counter) { channel in
                try await channel.send(PGClient.startup([("user", "db-admin"), ("database", "orders")]))
                if attempt == 0 {
                    _ = try await channel.nextWrite()
                    try await channel.send(PGClient.password("wrong"))
                }
                try await channel.closeFuture.get()
                let refusal = fatal(try backendMessages(try await channel.written()).last)
                #expect(refusal?.code == (attempt == 0 ? "28P01" : "53300"))
            }
        }
        #expect(engine.asked.withLock { $0 }.count == 1)
    }

    @Test func theLoginDeadlineSendsPostgresAuthenticationTimeoutError() async throws {
        let l = try listener()
        try await withConnection(PGChildChannel(listener: l), policy: inClear(l), counter: counter) { channel in
            try await channel.send(PGClient.startup([("user", "db-admin"), ("database", "orders")]))
            _ = try await channel.nextWrite()  // the password request; the client never answers
            try await channel.testingEventLoop.advanceTime(by: .seconds(6))
            try await channel.closeFuture.get()
            let refusal = try #require(fatal(try backendMessages(try await channel.written()).first))
            #expect(refusal.code == "57014")
            #expect(refusal.text == "canceling authentication due to timeout")
        }
        #expect(counter.open == 0)
    }

    // The clear-text start, with the listener's real policy (TLS negotiated by the proxy itself).

    /// A resource whose server refuses the connection: a clear "connection test failed", for every TLS mode. (The
    /// upstream TLS negotiator used to leave its promise unfulfilled when the connection never came up, which a
    /// debug build stops the process for.)
    @Test(arguments: PAMTLSMode.allCases) func anUnreachableResourceFailsItsConnectionTestClearly(_ mode: PAMTLSMode)
        async throws
    {
        let port = try freeLoopbackPort()
        let target = PAMTarget(host: "127.0.0.1", port: port, database: "x", tlsMode: mode)
        await #expect {
            try await PGConnector().checkReachable(target)
        } throws: { error in
            "\(error)".contains("connection test failed") && "\(error)".contains("127.0.0.1:\(port)")
        }
    }

    @Test func anSSLRequestIsAnsweredSAndTLSStartsOnTheSameConnection() async throws {
        let l = try listener()
        try await withConnection(PGChildChannel(listener: l), policy: l.policy, counter: counter) { channel in
            try await channel.send(PGClient.packet(PGStartup.sslRequestCode))
            #expect(try await channel.nextWrite() == [UInt8(ascii: "S")])
            _ = try await channel.pipeline.handler(type: NIOSSLServerHandler.self).get()  // throws without TLS
            #expect(try await !channel.isClosed())
        }
    }

    @Test func aGSSENCRequestIsDeclinedAndAStartUpInClearIsToldToUseTLS() async throws {
        let l = try listener()
        try await withConnection(PGChildChannel(listener: l), policy: l.policy, counter: counter) { channel in
            try await channel.send(PGClient.packet(PGStartup.gssEncRequestCode))
            #expect(try await channel.nextWrite() == [UInt8(ascii: "N")])
            try await channel.send(PGClient.startup([("user", "db-admin"), ("database", "orders")]))
            try await channel.closeFuture.get()
            let refusal = try #require(fatal(try backendMessages(try await channel.written()).first))
            #expect(refusal.code == "28000")
            #expect(refusal.text.contains("sslmode=require"))
        }
    }

    @Test func bytesInClearBehindAnSSLRequestAreNeverAnswered() async throws {
        let l = try listener()
        try await withConnection(PGChildChannel(listener: l), policy: l.policy, counter: counter) { channel in
            try await channel.send(
                PGClient.packet(PGStartup.sslRequestCode) + PGClient.startup([("user", "x"), ("database", "y")]))
            try await channel.closeFuture.get()
            #expect(try await channel.written().isEmpty)
        }
    }
}
