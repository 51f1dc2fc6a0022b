import EngineAPI
import KMIPFrontEnd
import KMIPProtocol
import KMIPService
import NIOCore
import NIOEmbedded
import ServerSupport
import TTLV
import TestSupport
import Testing

/// A key service that admits every caller and has no objects (Discover Versions needs nothing more).
final class AnyKMIPCaller: KeyEngineDouble, @unchecked Sendable {
    override func verifyKMIPCredential(_ ctx: CallContext, username: String?, password: SecretBytes?) async throws {}
}

/// A Discover Versions request in `major.minor`.
func discoverVersions(_ major: Int32, _ minor: Int32) -> [UInt8] {
    let version = TTLVItem(
        tag: KMIPTag.protocolVersion,
        .structure([
            TTLVItem(tag: KMIPTag.protocolVersionMajor, .integer(major)),
            TTLVItem(tag: KMIPTag.protocolVersionMinor, .integer(minor)),
        ]))
    let header = TTLVItem(
        tag: KMIPTag.requestHeader, .structure([version, TTLVItem(tag: KMIPTag.batchCount, .integer(1))]))
    let item = TTLVItem(
        tag: KMIPTag.batchItem,
        .structure([
            TTLVItem(tag: KMIPTag.operation, .enumeration(KMIPOperation.discoverVersions.rawValue)),
            TTLVItem(tag: KMIPTag.requestPayload, .structure([])),
        ]))
    return TTLVEncoder.encode(TTLVItem(tag: KMIPTag.requestMessage, .structure([header, item])))
}

/// The response's protocol version and its one batch item's status and reason.
func kmipAnswer(_ bytes: [UInt8]) throws -> (version: String, status: UInt32?, reason: UInt32?) {
    let message = try TTLVDecoder().decode(bytes)
    #expect(message.tag == KMIPTag.responseMessage)
    let pv = message.child(KMIPTag.responseHeader)?.child(KMIPTag.protocolVersion)
    var version = "?"
    if case .integer(let major)? = pv?.child(KMIPTag.protocolVersionMajor)?.value,
        case .integer(let minor)? = pv?.child(KMIPTag.protocolVersionMinor)?.value
    {
        version = "\(major).\(minor)"
    }
    let item = message.child(KMIPTag.batchItem)
    var status: UInt32?
    var reason: UInt32?
    if case .enumeration(let s)? = item?.child(KMIPTag.resultStatus)?.value { status = s }
    if case .enumeration(let r)? = item?.child(KMIPTag.resultReason)?.value { reason = r }
    return (version, status, reason)
}

/// The KMIP listener's connection logic (framing, one request at a time, the frame limit, the guard's deadlines)
/// through `KMIPChildChannel` behind a `ListenerPolicy`, without sockets or TLS.
@Suite(.timeLimit(.minutes(1))) struct KMIPListenerTests {
    let counter = ConnectionCounter(listener: "kmip-test", maxConnections: 10)

    func kmip(maxMessageSize: Int = 1 << 16) -> KMIPChildChannel {
        KMIPChildChannel(
            dispatcher: KMIPDispatcher(maxMessageSize: maxMessageSize, engine: AnyKMIPCaller(), clock: { 0 }),
            maxMessageSize: maxMessageSize)
    }

    @Test func requestsOnOneConnectionAreAnsweredInTurnAndItStaysOpen() async throws {
        try await withConnection(kmip(), policy: testPolicy(), counter: counter) { channel in
            #expect(counter.open == 1)
            for (major, minor) in [(2, 1), (1, 4), (1, 0)] as [(Int32, Int32)] {
                try await channel.send(discoverVersions(major, minor))
                let answer = try kmipAnswer(try await channel.nextWrite())
                #expect(answer.version == "\(major).\(minor)")
                #expect(answer.status == ResultStatus.success.rawValue)
            }
            #expect(try await !channel.isClosed())
        }
        #expect(counter.open == 0)
    }

    @Test func aRequestSplitAcrossReadsIsReassembled() async throws {
        try await withConnection(kmip(), policy: testPolicy(), counter: counter) { channel in
            let request = discoverVersions(2, 0)
            for piece in [request[0..<3], request[3..<11], request[11...]] { try await channel.send(Array(piece)) }
            #expect(try kmipAnswer(try await channel.nextWrite()).version == "2.0")
        }
    }

    @Test func aFrameOverTheLimitGetsInvalidMessageAndTheConnectionCloses() async throws {
        try await withConnection(kmip(maxMessageSize: 4096), policy: testPolicy(), counter: counter) { channel in
            // A Request Message header that declares 1 MiB: refused from the header, before the body arrives.
            try await channel.sendRefused(
                [0x42, 0x00, 0x78, 0x01, 0x00, 0x10, 0x00, 0x00], as: TTLVFrameDecoder.FrameTooLarge.self)
            let answer = try kmipAnswer(try await channel.nextWrite())
            #expect(answer.status == ResultStatus.operationFailed.rawValue)
            #expect(answer.reason == ResultReason.invalidMessage.rawValue)
            try await channel.closeFuture.get()
        }
        #expect(counter.open == 0)
    }

    @Test func anHTTPRequestOnTheKMIPPortGetsAKMIPErrorNotASilentHang() async throws {
        try await withConnection(kmip(), policy: testPolicy(), counter: counter) { channel in
            try await channel.sendRefused(
                Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), as: TTLVFrameDecoder.FrameTooLarge.self)
            let answer = try kmipAnswer(try await channel.nextWrite())
            #expect(answer.reason == ResultReason.invalidMessage.rawValue)
            try await channel.closeFuture.get()
        }
    }

    @Test func withoutARequestTheLoginDeadlineClosesTheConnection() async throws {
        try await withConnection(kmip(), policy: testPolicy(login: .seconds(5)), counter: counter) { channel in
            try await channel.testingEventLoop.advanceTime(by: .seconds(4))
            #expect(try await !channel.isClosed())
            try await channel.testingEventLoop.advanceTime(by: .seconds(2))
            try await channel.closeFuture.get()
            #expect(try await channel.written().isEmpty)
        }
    }

    @Test func afterTheFirstRequestOnlyTheIdleTimeoutApplies() async throws {
        let policy = testPolicy(login: .seconds(5), idle: .seconds(60))
        try await withConnection(kmip(), policy: policy, counter: counter) { channel in
            try await channel.send(discoverVersions(2, 1))
            _ = try await channel.nextWrite()
            try await channel.testingEventLoop.advanceTime(by: .seconds(30))
            #expect(try await !channel.isClosed())
            try await channel.testingEventLoop.advanceTime(by: .seconds(31))
            try await channel.closeFuture.get()
        }
    }

    @Test func theConnectionCapTurnsTheNextConnectionAway() async throws {
        let capped = ConnectionCounter(listener: "kmip-cap", maxConnections: 1)
        try await withConnection(kmip(), policy: testPolicy(), counter: capped) { first in
            try await withConnection(kmip(), policy: testPolicy(), counter: capped) { second in
                try await second.closeFuture.get()
            }
            #expect(try await !first.isClosed())
            #expect(capped.open == 1)
        }
        #expect(capped.open == 0)
    }
}
