import HummingbirdCore
import Logging
import NIOCore
import NIOEmbedded
import ServerSupport
import Testing

let testLogger = Logger(label: "listener-test")

/// One connection through a listener's real child-channel setup (its policy's guard, then the protocol's handlers)
/// and its real `handle`, on an `NIOAsyncTestingChannel`: no socket, and time moves only when the test says.
func withConnection<Base: ServerChildChannel>(
    _ base: Base, policy: ListenerPolicy, counter: ConnectionCounter, from remote: String = "192.0.2.10",
    _ body: (NIOAsyncTestingChannel) async throws -> Void
) async throws {
    let channel = NIOAsyncTestingChannel()
    let child = GuardedChildChannel(base, policy: policy, counter: counter)
    // As the server does: the pipeline is set up before the connection becomes active.
    let value = try await channel.testingEventLoop.executeInContext {
        child.setup(channel: channel, logger: testLogger)
    }.get()
    try await channel.connect(to: SocketAddress(ipAddress: remote, port: 40_000))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await child.handle(value: value, logger: testLogger) }
        try await body(channel)
        _ = try? await channel.close()
        try await group.waitForAll()
    }
}

/// A policy without TLS (the tests speak the protocol in clear) and with short, virtual deadlines.
func testPolicy(login: TimeAmount = .seconds(5), idle: TimeAmount = .seconds(60)) -> ListenerPolicy {
    ListenerPolicy(
        host: "127.0.0.1", port: 0, tls: .none, handshakeTimeout: .seconds(5), idleTimeout: idle,
        loginTimeout: login)
}

extension NIOAsyncTestingChannel {
    /// Everything written to the peer so far, as one byte array.
    func written() async throws -> [UInt8] {
        var out: [UInt8] = []
        while let buffer = try await readOutbound(as: ByteBuffer.self) { out += Array(buffer: buffer) }
        return out
    }

    /// Waits for the next write to the peer.
    func nextWrite() async throws -> [UInt8] {
        Array(buffer: try await waitForOutboundWrite(as: ByteBuffer.self))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await writeInbound(ByteBuffer(bytes: bytes))
    }

    /// Sends bytes that the protocol's decoder refuses: the testing channel rethrows the decoder's error, which the
    /// listener has answered meanwhile (the test checks the answer).
    func sendRefused<E: Error>(_ bytes: [UInt8], as: E.Type) async throws {
        await #expect(throws: E.self) { try await self.writeInbound(ByteBuffer(bytes: bytes)) }
    }

    /// Whether the connection is closed, once the event loop has run what is queued.
    func isClosed() async throws -> Bool {
        try await testingEventLoop.executeInContext { [self] in !self.isActive }
    }
}
