import Crypto
import Engine
import EngineAPI
import Foundation
import StorageAPI
import Testing

@Suite struct ACMENonceTests {
    func usedNonces(_ storage: any Storage) async throws -> Int {
        try await storage.withTransaction { try await $0.count(kind: "acme-nonce-used", scope: nil) }
    }

    /// Nonces are single-use on every node of a store, expire, and their replay records are swept once expired
    /// (before, every ACME request left one record behind for good).
    @Test func singleUseAcrossNodesExpiryAndSweep() async throws {
        let storage = InMemoryStorage()
        let clock = TestClock()
        let key = SymmetricKey(size: .bits256)
        let nodeA = try await openEngine(storage, key: key, clock: clock.read)
        let nodeB = try await openEngine(storage, key: key, clock: clock.read)

        var first: [String] = []
        for _ in 0..<50 { first.append(try await nodeA.acmeNewNonce()) }
        for n in first { #expect(try await nodeA.acmeConsumeNonce(n)) }
        for n in first.prefix(5) {
            #expect(try await nodeA.acmeConsumeNonce(n) == false, "replayed on the same node")
            #expect(try await nodeB.acmeConsumeNonce(n) == false, "replayed on another node")
        }
        #expect(try await nodeB.acmeConsumeNonce("not-a-nonce") == false)
        #expect(try await usedNonces(storage) == 50)

        clock.advance(300)
        #expect(try await nodeA.acmeSweep() == 0, "nothing has expired yet")
        var second: [String] = []
        for _ in 0..<10 { second.append(try await nodeB.acmeNewNonce()) }
        for n in second { #expect(try await nodeA.acmeConsumeNonce(n)) }
        #expect(try await usedNonces(storage) == 60)

        // 12 minutes after the first batch: it expired (10 min lifetime + 1 min margin) and goes; the second stays.
        clock.advance(420)
        #expect(try await nodeB.acmeSweep(batch: 7) == 50, "swept in several batches")
        #expect(try await usedNonces(storage) == 10)
        for n in first.prefix(5) { #expect(try await nodeA.acmeConsumeNonce(n) == false, "an expired nonce stays refused") }
        for n in second.prefix(3) { #expect(try await nodeB.acmeConsumeNonce(n) == false) }
        #expect(try await usedNonces(storage) == 10, "refusing an expired nonce records nothing")

        clock.advance(720)
        #expect(try await nodeA.acmeSweep() == 10)
        #expect(try await usedNonces(storage) == 0)
    }
}
