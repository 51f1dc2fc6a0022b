import EngineAPI
import Foundation
import HTTPFrontEnd
import NIOCore
import NIOPosix
import Synchronization
import TestSupport
import Testing

@testable import HTTPFrontEnd

/// An http-01 responder on loopback: answers `/.well-known/acme-challenge/{token}` with what `answers` holds, and
/// never answers tokens starting with `slow` (the connection stays open). Counts connections open at once.
final class ChallengeResponder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let answers: [String: String]
    let open = Mutex((now: 0, most: 0, total: 0))

    init(answers: [String: String]) { self.answers = answers }

    func channelActive(context: ChannelHandlerContext) {
        open.withLock {
            $0.now += 1
            $0.total += 1
            $0.most = max($0.most, $0.now)
        }
    }

    func channelInactive(context: ChannelHandlerContext) { open.withLock { $0.now -= 1 } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let text = String(buffer: unwrapInboundIn(data))
        guard let line = text.split(separator: "\r\n").first, let path = line.split(separator: " ").dropFirst().first
        else { return }
        let token = String(path.split(separator: "/").last ?? "")
        if token.hasPrefix("slow") { return }
        let body = answers[token] ?? ""
        let status = answers[token] == nil ? "404 Not Found" : "200 OK"
        let response = "HTTP/1.1 \(status)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
        context.close(promise: nil)
    }

    func start() async throws -> (any Channel) {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.pipeline.addHandler(self) }
            .bind(host: "127.0.0.1", port: 0).get()
    }
}

/// ACME validation as a service, against a scripted engine and a loopback responder: bounded concurrency, no verdict
/// when cancelled, and lapsed validations claimed from the store are finished.
@Suite struct ACMEValidatorTests {
    final class Engine: ACMEEngineDouble, @unchecked Sendable {
        let verdicts = Mutex<[String]>([])
        let claimable = Mutex<[ACMEValidationTask]>([])
        override func acmeCompleteValidation(_ ctx: CallContext, challengeId: String, error: ACMEError?) async throws {
            #expect(ctx.principal.method == .system)
            verdicts.withLock {
                $0.append(
                    "\(challengeId) \(error.map { $0.type.split(separator: ":").last.map(String.init) ?? "" } ?? "valid")"
                )
            }
        }
        override func acmeClaimValidations(_ ctx: CallContext, lease: TimeInterval, limit: Int) async throws
            -> [ACMEValidationTask]
        {
            claimable.withLock { all in
                let taken = Array(all.prefix(limit))
                all.removeFirst(taken.count)
                return taken
            }
        }
    }

    static func task(_ token: String, _ keyAuthorization: String = "ka") -> ACMEValidationTask {
        ACMEValidationTask(
            challenge: ACMEChallengeInfo(id: "ch-\(token)", type: "http-01", token: token, status: .processing),
            identifier: ACMEIdentifier(type: "dns", value: "site.localhost"), keyAuthorization: keyAuthorization)
    }

    static func eventually(_ what: String, _ condition: () -> Bool) async throws {
        for _ in 0..<200 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what)")
    }

    @Test func theFirstAttemptAnswersInTheRequestAndFailuresAreRetriedInTheService() async throws {
        let responder = ChallengeResponder(answers: ["good": "ka", "wrong": "not-it"])
        let channel = try await responder.start()
        let port = try #require(channel.localAddress?.port)
        let engine = Engine()
        let validator = ACMEValidator(
            engine: engine, settings: ACMESettings(http01Port: port), sweepInterval: .seconds(3600))
        let valid = await validator.validateFirst(Self.task("good"))
        #expect(valid?.status == .valid && valid?.validated != nil)
        #expect(engine.verdicts.withLock { $0 } == ["ch-good valid"])
        let running = Task { try await validator.run() }
        #expect(await validator.validateFirst(Self.task("wrong")) == nil, "still processing")
        try await Self.eventually("the retried verdict") { engine.verdicts.withLock { $0.count } == 2 }
        #expect(engine.verdicts.withLock { $0 }.last == "ch-wrong unauthorized")
        #expect(responder.open.withLock { $0.total } == 4, "one attempt for the good answer, three for the wrong one")
        running.cancel()
        try await running.value
        try await channel.close()
    }

    @Test func atMostMaxConcurrentRunAndShutdownLeavesThemWithoutAVerdict() async throws {
        let responder = ChallengeResponder(answers: [:])
        let channel = try await responder.start()
        let port = try #require(channel.localAddress?.port)
        let engine = Engine()
        engine.claimable.withLock { $0 = (0..<5).map { Self.task("slow-\($0)") } }
        let validator = ACMEValidator(
            engine: engine, settings: ACMESettings(http01Port: port), maxConcurrent: 2, sweepInterval: .seconds(3600))
        let running = Task { try await validator.run() }
        await validator.sweepOnce()
        try await Self.eventually("two validations in flight") { responder.open.withLock { $0.now } == 2 }
        try await Task.sleep(for: .milliseconds(500))
        #expect(responder.open.withLock { $0.most } == 2, "never more than maxConcurrent")
        let start = ContinuousClock.now
        running.cancel()
        try await running.value
        #expect(ContinuousClock.now - start < .seconds(3), "shutdown does not wait for slow peers")
        #expect(
            engine.verdicts.withLock { $0 }.isEmpty,
            "a cancelled validation records no verdict: its lease lapses and it is claimed again")
        try await channel.close()
    }

    @Test func theSweepFinishesValidationsClaimedFromTheStore() async throws {
        let responder = ChallengeResponder(answers: ["t1": "ka1", "t2": "ka2"])
        let channel = try await responder.start()
        let port = try #require(channel.localAddress?.port)
        let engine = Engine()
        engine.claimable.withLock { $0 = [Self.task("t1", "ka1"), Self.task("t2", "ka2")] }
        let validator = ACMEValidator(
            engine: engine, settings: ACMESettings(http01Port: port), sweepInterval: .milliseconds(100))
        let running = Task { try await validator.run() }
        try await Self.eventually("both verdicts") { engine.verdicts.withLock { $0.count } == 2 }
        #expect(Set(engine.verdicts.withLock { $0 }) == ["ch-t1 valid", "ch-t2 valid"])
        running.cancel()
        try await running.value
        try await channel.close()
    }
}
