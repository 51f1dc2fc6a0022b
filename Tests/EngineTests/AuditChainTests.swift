import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Testing

@testable import Engine

@Suite struct AuditChainTests {
    /// An engine with seven audited operations (two project creations, then five secret operations), and its raw
    /// events, chain heads and checkpoint.
    func populated() async throws -> (GatehouseEngine, InMemoryStorage, [AuditRecord], [AuditChainHead], Data?) {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256), node: "node-a")
        for i in 0..<3 {
            _ = try await engine.createSecret(admin, project: "p", name: "s\(i)", value: SecretBytes([UInt8(i)]))
        }
        _ = try await engine.readSecret(admin, project: "p", name: "s1")
        try await engine.deleteSecret(admin, project: "p", name: "s2")
        try await engine.writeAuditCheckpoint()
        let (events, heads, checkpoint) = try await storage.withReadTransaction { tx in
            (
                try await tx.auditEvents(chain: nil, after: nil, limit: 100), try await tx.auditChainHeads(),
                try await tx.metadata(AuditChain.checkpointKey)
            )
        }
        return (engine, storage, events, heads, checkpoint)
    }

    func verify(_ engine: GatehouseEngine, _ events: [AuditRecord], _ heads: [AuditChainHead], _ checkpoint: Data?)
        -> AuditVerification
    {
        engine.audit.chain.verify(events, heads: heads, checkpoint: checkpoint)
    }

    @Test func intactChainVerifies() async throws {
        let (engine, storage, events, heads, checkpoint) = try await populated()
        #expect(events.count == 7)
        #expect(Set(events.map(\.chain)) == ["node-a"])
        let v = verify(engine, events, heads, checkpoint)
        #expect(v.isIntact, "\(v.problems)")
        #expect(v.checked == 7)
        #expect(try await engine.verifyAudit(admin).isIntact)
        let shown = try await engine.auditEvents(admin, cursor: nil, limit: 10).items
        #expect(
            shown.map(\.event.event.type) == [
                "project.create", "project.create", "secret.create", "secret.create", "secret.create", "secret.read",
                "secret.delete",
            ])
        #expect(shown[2].event.userAgentType == "test")
        #expect(shown[2].event.actor.type == "identity")
        #expect(shown[2].event.projectId == "p")
        #expect(shown[2].event.event.metadata["grantedBy"] == "bootstrap-admin")
        // Every event was sealed: nothing is left pending.
        let pending = try await storage.withReadTransaction {
            try await $0.pendingAuditEvents(chain: nil, before: Int64.max, limit: 10)
        }
        #expect(pending.isEmpty)
    }

    @Test func editIsDetected() async throws {
        let (engine, _, events, heads, checkpoint) = try await populated()
        var edited = events
        // Stored compressed; an editor may as well write it back plain (both are read).
        edited[4].body = Data(
            String(decoding: try StoredJSON.unpack(edited[4].body), as: UTF8.self).replacingOccurrences(
                of: "s2", with: "zz"
            ).utf8)
        let v = verify(engine, edited, heads, checkpoint)
        #expect(v.problems.contains { $0.contains("event 5") && $0.contains("edited") })
        // The searchable copy of a field is checked against the body too (an edit there would hide an event from
        // searches).
        var hidden = events
        hidden[5].fields.type = "secret.list"
        #expect(
            verify(engine, hidden, heads, checkpoint).problems.contains {
                $0.contains("event 6") && $0.contains("search fields")
            })
    }

    @Test func deletionIsDetected() async throws {
        let (engine, _, events, heads, checkpoint) = try await populated()
        var deleted = events
        deleted.remove(at: 1)
        #expect(!verify(engine, deleted, heads, checkpoint).isIntact)
        // Deleting the tail is caught by the signed head.
        let truncated = Array(events.dropLast())
        #expect(verify(engine, truncated, heads, nil).problems.contains { $0.contains("tail") })
        // Deleting the head as well is caught: events without a head.
        #expect(verify(engine, truncated, [], nil).problems.contains { $0.contains("head is missing") })
    }

    @Test func reorderingIsDetected() async throws {
        let (engine, _, events, heads, checkpoint) = try await populated()
        var swapped = events
        swapped.swapAt(1, 2)
        let (a, b) = (swapped[1].sequence, swapped[2].sequence)
        swapped[1].sequence = b
        swapped[2].sequence = a
        #expect(!verify(engine, swapped, heads, checkpoint).isIntact)
        // Swapping only the bodies (keeping sequence numbers and hashes in place) is caught too.
        var bodies = events
        let body = bodies[1].body
        bodies[1].body = bodies[2].body
        bodies[2].body = body
        #expect(!verify(engine, bodies, heads, checkpoint).isIntact)
    }

    @Test func recomputingHashesWithoutTheKeyDoesNotHelp() async throws {
        let (engine, _, events, heads, checkpoint) = try await populated()
        // An attacker who rewrites an event and recomputes the chain with a key of their own is caught.
        let forged = AuditChain(key: SymmetricKey(size: .bits256))
        var rewritten: [AuditRecord] = []
        var prev = forged.genesis("node-a")
        for var r in events {
            r.previousHash = prev
            r.hash = forged.hash(previous: prev, sequence: r.sequence, timestamp: r.timestampMillis, body: r.body)
            prev = r.hash
            rewritten.append(r)
        }
        let forgedHead = AuditChainHead(
            chain: "node-a", value: forged.head(sequence: rewritten.last?.sequence ?? 0, hash: prev))
        #expect(!verify(engine, rewritten, [forgedHead], nil).isIntact)
        #expect(verify(engine, events, heads, checkpoint).isIntact)
    }

    /// Two nodes (engines with their own chains) on one store write at once: each chain is intact, the log verifies
    /// as a whole, and reading it through the cursor returns every event once, even while appends go on.
    @Test func nodesWriteTheirOwnChains() async throws {
        let storage = InMemoryStorage()
        let key = SymmetricKey(size: .bits256)
        // Event times jitter, so a chain's times do not grow with its sequence (as when requests are sealed in a
        // different order than they were stamped): the reader must still get every event once.
        let jitter: @Sendable () -> Date = { Date(timeIntervalSince1970: 1_800_000_000 + Double.random(in: 0...0.5)) }
        let a = try await openEngine(storage, key: key, clock: jitter, node: "node-a")
        let b = try await openEngine(storage, key: key, clock: jitter, node: "node-b")
        var seen: [String: Int] = [:]
        var cursor: String?
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (engine, tag) in [(a, "a"), (b, "b")] {
                for t in 0..<4 {
                    group.addTask {
                        for i in 0..<10 {
                            _ = try await engine.createSecret(
                                admin, project: "p", name: "\(tag)\(t)-\(i)", value: SecretBytes([1]))
                        }
                    }
                }
            }
            // A reader pages through the log while the writers run.
            for _ in 0..<20 {
                let page = try await a.auditEvents(admin, cursor: cursor, limit: 7)
                for e in page.items { seen["\(e.chain)/\(e.sequence)", default: 0] += 1 }
                cursor = page.next
                try await Task.sleep(for: .milliseconds(2))
            }
            try await group.waitForAll()
        }
        while true {
            let page = try await b.auditEvents(admin, cursor: cursor, limit: 7)
            for e in page.items { seen["\(e.chain)/\(e.sequence)", default: 0] += 1 }
            cursor = page.next
            if page.items.isEmpty { break }
        }
        let events = try await storage.withReadTransaction {
            try await $0.auditEvents(chain: nil, after: nil, limit: 1000)
        }
        #expect(Set(events.map(\.chain)) == ["node-a", "node-b"])
        #expect(events.filter { $0.fields.type == "secret.create" }.count == 80)
        #expect(seen.count == events.count && seen.values.allSatisfy { $0 == 1 }, "every event read exactly once")
        let v = try await a.verifyAudit(admin)
        #expect(v.isIntact, "\(v.problems)")
        #expect(v.checked == Int64(events.count))
    }

    /// Without a checkpoint, a node's whole chain (events and head) could vanish unnoticed; the signed checkpoint
    /// names it, so its deletion is detected.
    @Test func deletingAWholeChainIsDetectedThroughTheCheckpoint() async throws {
        let storage = InMemoryStorage()
        let key = SymmetricKey(size: .bits256)
        let a = try await openEngine(storage, key: key, node: "node-a")
        let b = try await openEngine(storage, key: key, node: "node-b")
        _ = try await b.createSecret(admin, project: "p", name: "from-b", value: SecretBytes([1]))
        try await a.writeAuditCheckpoint()
        let (events, heads, checkpoint) = try await storage.withReadTransaction { tx in
            (
                try await tx.auditEvents(chain: nil, after: nil, limit: 100), try await tx.auditChainHeads(),
                try await tx.metadata(AuditChain.checkpointKey)
            )
        }
        #expect(verify(a, events, heads, checkpoint).isIntact)
        let withoutB = events.filter { $0.chain != "node-b" }
        let headsWithoutB = heads.filter { $0.chain != "node-b" }
        #expect(verify(a, withoutB, headsWithoutB, nil).isIntact, "undetectable without the checkpoint")
        let v = verify(a, withoutB, headsWithoutB, checkpoint)
        #expect(v.problems.contains { $0.contains("chain node-b") && $0.contains("checkpoint") }, "\(v.problems)")
        // A checkpoint signed with another key is refused.
        let forged = AuditChain(key: SymmetricKey(size: .bits256)).checkpoint(headsWithoutB)
        #expect(verify(a, withoutB, headsWithoutB, forged).problems.contains { $0.contains("checkpoint") })
    }

    /// A change whose event was written pending but never sealed (the process stopped in between) gets its event
    /// sealed when the node opens its store again, or by another node once it is old.
    @Test func pendingEventsAreSealedAfterACrash() async throws {
        let storage = InMemoryStorage()
        let key = SymmetricKey(size: .bits256)
        let a = try await openEngine(storage, key: key, node: "node-a")
        func orphan(_ id: String, chain: String, millis: Int64) async throws {
            let event = a.event(admin, "secret.create", project: "p", ["name": id])
            let d = AuditDraft(event, pending: true)
            try await storage.withTransaction { tx in
                try await tx.addPendingAuditEvent(
                    PendingAuditEvent(id: id, chain: chain, timestampMillis: millis, fields: d.fields, body: d.body))
            }
        }
        let now = Record.millis(Date())
        try await orphan("left-by-a", chain: "node-a", millis: now)
        try await orphan("left-by-c-recent", chain: "node-c", millis: now)
        try await orphan("left-by-c-old", chain: "node-c", millis: now - 120_000)
        // node-a comes back: it seals what it left.
        let reopened = try await openEngine(storage, key: key, node: "node-a")
        var pending = try await storage.withReadTransaction {
            try await $0.pendingAuditEvents(chain: nil, before: Int64.max, limit: 10)
        }
        #expect(pending.map(\.id).sorted() == ["left-by-c-old", "left-by-c-recent"])
        // node-c never comes back: another node seals its events once they are a minute old.
        #expect(try await reopened.sealAbandonedAuditEvents(olderThan: .seconds(60)) == 1)
        pending = try await storage.withReadTransaction {
            try await $0.pendingAuditEvents(chain: nil, before: Int64.max, limit: 10)
        }
        #expect(pending.map(\.id) == ["left-by-c-recent"])
        let names = try await reopened.searchAudit(admin, AuditSearch(type: "secret.create")).items.compactMap {
            $0.event.event.metadata["name"]
        }
        #expect(Set(names) == ["left-by-a", "left-by-c-old"])
        #expect(try await reopened.verifyAudit(admin).isIntact)
    }
}

@Suite struct AuditTimestampTests {
    @Test func sameTextAsISO8601DateFormatter() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for t in [0.0, 1_800_000_000.123, 1_764_298_445.999, 951_782_400.5, 4_102_444_799.001, 1_700_000_000] {
            let d = Date(timeIntervalSince1970: t)
            #expect(AuditChain.timestamp(d) == f.string(from: d), "\(t)")
        }
    }

    /// The hand-written event body is byte for byte what `JSONEncoder` (the chain's configured encoder) writes, for
    /// ordinary and awkward events alike.
    @Test func handWrittenBodiesMatchJSONEncoder() throws {
        var rng = SystemRandomNumberGenerator()
        func text(_ n: Int) -> String {
            var s = ""
            let pool: [Unicode.Scalar] = [
                "a", "Z", "/", "\\", "\"", "\n", "\r", "\t", "\u{08}", "\u{0C}", "\u{00}", "\u{1F}", "\u{7F}", "é", "✓",
                "𝄞", "\u{2028}", " ", "_", "-", "0",
            ]
            for _ in 0..<Int.random(in: 0...n, using: &rng) {
                s.unicodeScalars.append(pool.randomElement(using: &rng) ?? "a")
            }
            return s
        }
        func metadata() -> [String: String] {
            var m: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &rng) { m[text(8)] = text(20) }
            return m
        }
        let encoder = AuditChain.encoder()
        var events = [
            AuditEvent(
                event: .init(
                    type: "kms.get", metadata: ["objectId": "abc", "Zeta": "1", "alpha": "2", "_x": "3", "B": "4"]),
                actor: .init(type: "identity", metadata: ["identityId": "id/1", "name": "admin"]), projectId: "prod",
                ipAddress: "127.0.0.1", userAgent: "curl/8", userAgentType: "other",
                timestamp: Date(timeIntervalSince1970: 1_764_300_000.123)),
            AuditEvent(
                event: .init(type: "x"), actor: .init(type: "system"), projectId: nil, ipAddress: nil, userAgent: nil,
                userAgentType: "",
                timestamp: Date(timeIntervalSince1970: 0)),
        ]
        for _ in 0..<300 {
            events.append(
                AuditEvent(
                    event: .init(type: text(12), metadata: metadata()),
                    actor: .init(type: text(6), metadata: metadata()),
                    projectId: Bool.random(using: &rng) ? text(10) : nil,
                    ipAddress: Bool.random(using: &rng) ? text(10) : nil,
                    userAgent: Bool.random(using: &rng) ? text(30) : nil, userAgentType: text(5),
                    timestamp: Date(timeIntervalSince1970: Double.random(in: -1e9...4e9, using: &rng))))
        }
        for event in events {
            let expected = try encoder.encode(event)
            let ours = AuditChain.body(event)
            #expect(
                ours == expected,
                "\(String(decoding: ours, as: UTF8.self))\n\(String(decoding: expected, as: UTF8.self))")
        }
    }
}
