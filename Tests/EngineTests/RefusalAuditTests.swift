import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Testing

@testable import Engine

/// A flood of refused calls costs a bounded amount of audit log: a few refusals per source and window in full, then
/// one summary event with the count.
@Suite struct RefusalAuditTests {
    func events(_ engine: GatehouseEngine, type: String) async throws -> [AuditEvent] {
        // Through the type index, page by page.
        var all: [AuditEvent] = []
        var search = AuditSearch(type: type, limit: 1000)
        while true {
            let page = try await engine.searchAudit(admin, search)
            all += page.items.map(\.event)
            guard let next = page.next else { break }
            search.cursor = next
        }
        #expect(all.allSatisfy { $0.event.type == type })
        return all
    }

    @Test func aFloodOfRefusalsIsAuditedInFullAFewTimesThenCounted() async throws {
        let storage = InMemoryStorage()
        let clock = TestClock()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256), clock: clock.read)
        let flooder = CallContext(principal: .anonymous, frontEnd: "test", ipAddress: "198.51.100.7")
        let other = CallContext(principal: .anonymous, frontEnd: "test", ipAddress: "198.51.100.8")
        for _ in 0..<200 {
            #expect(
                await code { _ = try await engine.listProjects(flooder, after: nil, limit: 10) } == .unauthenticated)
        }
        for _ in 0..<3 {
            #expect(await code { _ = try await engine.listProjects(other, after: nil, limit: 10) } == .unauthenticated)
        }
        let failed = try await events(engine, type: "authentication.failed")
        #expect(failed.filter { $0.ipAddress == "198.51.100.7" }.count == engine.refusalLimiter.fullPerWindow)
        #expect(failed.filter { $0.ipAddress == "198.51.100.8" }.count == 3, "another source has its own allowance")
        #expect(
            try await events(engine, type: "audit.refusals.suppressed").isEmpty, "no summary before the window ends")

        // The window ends: one summary with the count, written by the periodic flush.
        clock.advance(61)
        #expect(await engine.flushRefusalSummaries() == 1)
        let summaries = try await events(engine, type: "audit.refusals.suppressed")
        #expect(summaries.count == 1)
        let meta = try #require(summaries.first?.event.metadata)
        #expect(
            meta["suppressed"] == "195" && meta["auditedInFull"] == "5" && meta["type"] == "authentication.failed",
            "\(meta)")
        #expect(summaries.first?.ipAddress == "198.51.100.7")
        // A new window: in full again; a window that ends while refusals go on is summarized by the next refusal.
        for _ in 0..<8 { _ = await code { _ = try await engine.listProjects(flooder, after: nil, limit: 10) } }
        clock.advance(61)
        _ = await code { _ = try await engine.listProjects(flooder, after: nil, limit: 10) }
        let second = try await events(engine, type: "audit.refusals.suppressed")
        #expect(
            second.count == 2 && second.last?.event.metadata["suppressed"] == "3", "\(second.map(\.event.metadata))")
        #expect(
            try await events(engine, type: "authentication.failed").filter { $0.ipAddress == "198.51.100.7" }.count
                == 11)
    }

    @Test func manySourcesShareOneOverflowGroup() {
        let limiter = RefusalAuditLimiter(fullPerWindow: 2, window: 60, maxGroups: 100)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var written = 0
        for i in 0..<10_000 {
            if case (.write, _) = limiter.admit(
                source: "10.0.\(i / 256).\(i % 256)", type: "authentication.failed", project: nil, metadata: [:],
                now: now)
            {
                written += 1
            }
        }
        #expect(limiter.count == 101, "100 groups and the overflow group")
        #expect(written == 100 + 2, "each tracked source's refusal, and the overflow group's first two")
        let due = limiter.due(now: now.addingTimeInterval(60))
        #expect(
            due.count == 1 && due.first?.key.source == RefusalAuditLimiter.overflowSource
                && due.first?.window.suppressed == 9_898)
        #expect(limiter.count == 0)
    }
}
