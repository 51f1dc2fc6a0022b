import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Testing

@testable import Engine

@Suite struct KeyEngineTests {
    @Test func keyMaterialIsSealedAtRestAndErasedByDestroy() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let marker: [UInt8] = Array("0123456789abcdef".utf8)
        let m = try await engine.registerObject(
            admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, names: ["k"]), material: SecretBytes(marker))
        #expect(m.cryptographicLength == 128 && m.state == .preActive)
        func stored() async throws -> Record? {
            try await storage.withTransaction { tx in try await tx.get(kind: "kms-object", id: m.id) }
        }
        let before = try #require(try await stored())
        #expect(before.body.range(of: Data(marker)) == nil, "no plaintext key material at rest")
        #expect(before.body.range(of: Data(Data(marker).base64EncodedString().utf8)) == nil)
        #expect(try await engine.getObject(admin, id: m.id).1 == SecretBytes(marker))
        _ = try await engine.destroyObject(admin, id: m.id)
        let after = try #require(try await stored())
        let body = try JSONDecoder().decode(ManagedObjectBody.self, from: after.body)
        #expect(body.material == nil && body.meta.state == .destroyed && body.meta.destroyDate != nil)
        #expect(try await engine.getObject(admin, id: m.id).1 == nil)
    }

    @Test func lifecycleRules() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let k = try await engine.createKey(admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256))
        #expect(await code { _ = try await engine.encrypt(admin, id: k.id, CipherParameters(), data: [1], iv: nil, aad: nil) } == .wrongState)
        _ = try await engine.activateObject(admin, id: k.id)
        #expect(await code { _ = try await engine.activateObject(admin, id: k.id) } == .wrongState)
        #expect(await code { _ = try await engine.destroyObject(admin, id: k.id) } == .wrongState)
        // GCM round trip with AAD; a flipped tag or other AAD fails as a cryptographic failure.
        let r = try await engine.encrypt(admin, id: k.id, CipherParameters(blockCipherMode: 9), data: Array("hello".utf8), iv: nil, aad: [7])
        let iv = try #require(r.iv)
        let tag = try #require(r.tag)
        let back = try await engine.decrypt(admin, id: k.id, CipherParameters(blockCipherMode: 9), data: r.data, iv: iv, aad: [7], tag: tag)
        #expect(back.data == Array("hello".utf8))
        #expect(await code { _ = try await engine.decrypt(admin, id: k.id, CipherParameters(blockCipherMode: 9), data: r.data, iv: iv, aad: [8], tag: tag) } == .cryptographicFailure)
        // Compromise: Compromised, then Destroyed Compromised.
        let c = try await engine.revokeObject(admin, id: k.id, reason: 2, message: "leaked", compromiseOccurrence: nil)
        #expect(c.state == .compromised && c.compromiseDate != nil)
        #expect(try await engine.destroyObject(admin, id: k.id).state == .destroyedCompromised)
        #expect(await code { _ = try await engine.createKey(admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 100)) } == .invalidArgument)
        #expect(await code { _ = try await engine.getObject(admin, id: "nope") } == .notFound)
    }

    @Test func locateFiltersAndPages() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        for i in 0..<5 {
            _ = try await engine.createKey(admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: i % 2 == 0 ? 128 : 256, names: ["n\(i)"]))
        }
        #expect(try await engine.locateObjects(admin, project: "p", LocateFilter(name: "n3")).count == 1)
        #expect(try await engine.locateObjects(admin, project: "p", LocateFilter(cryptographicLength: 128)).count == 3)
        #expect(try await engine.locateObjects(admin, project: "p", LocateFilter(maximumItems: 2, offsetItems: 1)).count == 2)
        #expect(try await engine.locateObjects(admin, project: "p", LocateFilter(state: .active)).isEmpty)
        #expect(try await engine.locateObjects(admin, project: "p1", LocateFilter()).isEmpty)
    }
}
