import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Testing

@testable import Engine

@Suite struct AuditChainTests {
    /// An engine with seven audited operations (two project creations, then five secret operations), and its raw
    /// events.
    func populated() async throws -> (GatehouseEngine, InMemoryStorage, [AuditRecord], Data?) {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        for i in 0..<3 { _ = try await engine.createSecret(admin, project: "p", name: "s\(i)", value: SecretBytes([UInt8(i)])) }
        _ = try await engine.readSecret(admin, project: "p", name: "s1")
        try await engine.deleteSecret(admin, project: "p", name: "s2")
        let (events, head) = try await storage.withTransaction { tx in
            (try await tx.auditEvents(after: 0, limit: 100), try await tx.metadata("audit_head"))
        }
        return (engine, storage, events, head)
    }

    @Test func intactChainVerifies() async throws {
        let (engine, _, events, head) = try await populated()
        #expect(events.count == 7)
        let v = engine.audit.verify(events, head: head)
        #expect(v.isIntact)
        #expect(v.checked == 7)
        #expect(try await engine.verifyAudit(admin).isIntact)
        let shown = try await engine.auditEvents(admin, after: 0, limit: 10)
        #expect(shown.map(\.event.event.type) == ["project.create", "project.create", "secret.create", "secret.create", "secret.create", "secret.read", "secret.delete"])
        #expect(shown[2].event.userAgentType == "test")
        #expect(shown[2].event.actor.type == "identity")
        #expect(shown[2].event.projectId == "p")
        #expect(shown[2].event.event.metadata["grantedBy"] == "bootstrap-admin")
    }

    @Test func editIsDetected() async throws {
        let (engine, _, events, head) = try await populated()
        var edited = events
        edited[4].body = Data(String(decoding: edited[4].body, as: UTF8.self).replacingOccurrences(of: "s2", with: "zz").utf8)
        let v = engine.audit.verify(edited, head: head)
        #expect(!v.isIntact)
        #expect(v.problems.contains { $0.contains("event 5") && $0.contains("edited") })
    }

    @Test func deletionIsDetected() async throws {
        let (engine, _, events, head) = try await populated()
        var deleted = events
        deleted.remove(at: 1)
        #expect(!engine.audit.verify(deleted, head: head).isIntact)
        // Deleting the tail is caught by the signed head.
        let truncated = Array(events.dropLast())
        let v = engine.audit.verify(truncated, head: head)
        #expect(v.problems.contains { $0.contains("tail") })
    }

    @Test func reorderingIsDetected() async throws {
        let (engine, _, events, head) = try await populated()
        var swapped = events
        swapped.swapAt(1, 2)
        #expect(!engine.audit.verify(swapped, head: head).isIntact)
        // Swapping only the bodies (keeping sequence numbers and hashes in place) is caught too.
        var bodies = events
        let b = bodies[1].body
        bodies[1].body = bodies[2].body
        bodies[2].body = b
        #expect(!engine.audit.verify(bodies, head: head).isIntact)
    }

    @Test func recomputingHashesWithoutTheKeyDoesNotHelp() async throws {
        let (engine, _, events, head) = try await populated()
        // An attacker who rewrites an event and recomputes the chain with a key of their own is caught.
        let forged = AuditChain(key: SymmetricKey(size: .bits256))
        var rewritten: [AuditRecord] = []
        var prev = AuditChain.zeroHash
        for var r in events {
            r.previousHash = prev
            r.hash = forged.hash(previous: prev, sequence: r.sequence, timestamp: r.timestampMillis, body: r.body)
            prev = r.hash
            rewritten.append(r)
        }
        let forgedHead = forged.head(sequence: rewritten.last?.sequence ?? 0, hash: prev)
        #expect(!engine.audit.verify(rewritten, head: forgedHead).isIntact)
        #expect(engine.audit.verify(events, head: head).isIntact)
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
            let pool: [Unicode.Scalar] = ["a", "Z", "/", "\\", "\"", "\n", "\r", "\t", "\u{08}", "\u{0C}", "\u{00}", "\u{1F}", "\u{7F}", "é", "✓", "𝄞", "\u{2028}", " ", "_", "-", "0"]
            for _ in 0..<Int.random(in: 0...n, using: &rng) { s.unicodeScalars.append(pool.randomElement(using: &rng) ?? "a") }
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
                event: .init(type: "kms.get", metadata: ["objectId": "abc", "Zeta": "1", "alpha": "2", "_x": "3", "B": "4"]),
                actor: .init(type: "identity", metadata: ["identityId": "id/1", "name": "admin"]), projectId: "prod",
                ipAddress: "127.0.0.1", userAgent: "curl/8", userAgentType: "other", timestamp: Date(timeIntervalSince1970: 1_764_300_000.123)),
            AuditEvent(event: .init(type: "x"), actor: .init(type: "system"), projectId: nil, ipAddress: nil, userAgent: nil, userAgentType: "",
                       timestamp: Date(timeIntervalSince1970: 0)),
        ]
        for _ in 0..<300 {
            events.append(AuditEvent(
                event: .init(type: text(12), metadata: metadata()), actor: .init(type: text(6), metadata: metadata()),
                projectId: Bool.random(using: &rng) ? text(10) : nil, ipAddress: Bool.random(using: &rng) ? text(10) : nil,
                userAgent: Bool.random(using: &rng) ? text(30) : nil, userAgentType: text(5),
                timestamp: Date(timeIntervalSince1970: Double.random(in: -1e9...4e9, using: &rng))))
        }
        for event in events {
            let expected = try encoder.encode(event)
            let ours = AuditChain.body(event)
            #expect(ours == expected, "\(String(decoding: ours, as: UTF8.self))\n\(String(decoding: expected, as: UTF8.self))")
        }
    }
}
