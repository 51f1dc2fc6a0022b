import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Testing

@testable import Engine

/// The engine's decoding caches (managed objects, CAs, profiles, ACME resources) must never serve bytes that were not
/// committed. A transaction that reads back its own update caches version N + 1; if it then rolls back, another
/// transaction (or node) can commit a different version N + 1 of the same size. Keyed by version (and size) alone,
/// the cache then served the rolled-back state: here, a revocation message that was never committed.
@Suite struct DecodeCacheTests {
    struct Rollback: Error {}

    func setMessage(_ engine: GatehouseEngine, _ id: String, _ message: String, _ tx: any StorageTransaction)
        async throws
    {
        var (record, body) = try await engine.keys.loadObject(id, tx)
        body.meta.revocationMessage = message
        record.body = try GatehouseEngine.encode(body)
        _ = try await tx.update(record)
    }

    @Test func managedObjectFromARolledBackTransactionIsNotServed() async throws {
        let storage = InMemoryStorage()
        let rootKey = SymmetricKey(size: .bits256)
        let engine = try await openEngine(storage, key: rootKey)
        // A second node on the same store commits the other change.
        let other = try await openEngine(storage, key: rootKey)
        let key = try await engine.createKey(
            admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256))
        await #expect(throws: Rollback.self) {
            try await storage.withTransaction { tx in
                try await setMessage(engine, key.id, "uncommitted-A", tx)
                // Read back inside the transaction: this caches the uncommitted version.
                #expect(try await engine.keys.loadObject(key.id, tx).1.meta.revocationMessage == "uncommitted-A")
                throw Rollback()
            }
        }
        try await storage.withTransaction { tx in try await setMessage(other, key.id, "committed---B", tx) }
        let (record, body) = try await storage.withReadTransaction { try await engine.keys.loadObject(key.id, $0) }
        #expect(body.meta.revocationMessage == "committed---B")
        #expect(try await engine.getObject(admin, id: key.id).0.revocationMessage == "committed---B")
        // Same version, same size: only the bytes tell the two apart.
        #expect(record.version == 2)
    }

    struct Box: Codable, Sendable, Equatable { var value: String }

    static func write(_ value: String, _ tx: any StorageTransaction) async throws -> Record {
        guard var r = try await tx.get(kind: "test-box", id: "b") else { throw Rollback() }
        r.body = try GatehouseEngine.encode(Box(value: value))
        return try await tx.update(r)
    }

    @Test func decodedRecordFromARolledBackTransactionIsNotServed() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        try await storage.withTransaction {
            try await $0.insert(
                Record(kind: "test-box", id: "b", body: try GatehouseEngine.encode(Box(value: "first"))))
        }
        await #expect(throws: Rollback.self) {
            try await storage.withTransaction { tx in
                #expect(try engine.cachedDecode(Box.self, try await Self.write("rolled", tx)) == Box(value: "rolled"))
                throw Rollback()
            }
        }
        _ = try await storage.withTransaction { try await Self.write("stays!", $0) }
        let r = try await storage.withReadTransaction { try await $0.get(kind: "test-box", id: "b") }
        #expect(r?.version == 2)
        #expect(try r.map { try engine.cachedDecode(Box.self, $0) } == Box(value: "stays!"))
    }
}
