import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Testing

@testable import Engine

/// The online root switch with several nodes on one store: nodes configured with either root, started before,
/// during or after the switch, all read everything; an interrupted switch is finished by running it again.
@Suite struct RootKeySwitchTests {
    struct Crash: Error {}

    let a = SymmetricKey(size: .bits256)
    let b = SymmetricKey(size: .bits256)
    let c = SymmetricKey(size: .bits256)

    /// How every node loads a root the store names.
    var resolver: Keyring.RootResolver {
        let (a, b, c) = (a, b, c)
        return { descriptor in
            switch descriptor {
            case "test:a": return SoftwareRootKey(a)
            case "test:b": return SoftwareRootKey(b)
            case "test:c": return SoftwareRootKey(c)
            default: throw EngineError(.unavailable, "no root \(descriptor)")
            }
        }
    }

    func provider(_ name: String) -> LoadedRootKeyProvider {
        let key = name == "a" ? a : name == "b" ? b : c
        return LoadedRootKeyProvider(SoftwareRootKey(key), descriptor: "test:" + name)
    }

    func node(_ storage: any Storage, root: String, resolver: Keyring.RootResolver? = nil) async throws
        -> GatehouseEngine
    {
        try await GatehouseEngine.open(
            storage: storage, rootKey: provider(root), bootstrapAdmins: ["gatehouse-admin"],
            rootKeyResolver: resolver ?? self.resolver)
    }

    func readsEverything(_ engine: GatehouseEngine, _ count: Int) async throws {
        for i in 0..<count {
            #expect(try await engine.readSecret(admin, project: "p", name: "s\(i)").1 == SecretBytes(utf8: "v\(i)"))
        }
    }

    @Test func switchingOnlineKeepsEveryNodeReadingAndResumesAfterACrash() async throws {
        let storage = InMemoryStorage()
        let first = try await node(storage, root: "a")
        _ = try await first.createProject(admin, slug: "p", description: "")
        // Values sealed under many data keys: one rotation after each secret.
        for i in 0..<30 {
            _ = try await first.createSecret(admin, project: "p", name: "s\(i)", value: SecretBytes(utf8: "v\(i)"))
            _ = try await first.rotateDataKey()
        }
        let dataKeys = 31
        let cli = try await node(storage, root: "a")

        // Interrupted after two batches of five, like a kill -9 of the command.
        await #expect(throws: Crash.self) {
            _ = try await cli.switchRootKey(to: provider("b"), batch: 5) { moved, seen in
                guard seen == 10 else { return }
                #expect(moved == 10)
                // Mid-switch: a node that was running, one started now with the old root, one already configured
                // with the new root: all read everything; a value sealed now opens everywhere.
                try await readsEverything(first, 30)
                let startedWithOld = try await node(storage, root: "a")
                try await readsEverything(startedWithOld, 30)
                #expect(startedWithOld.rootKeyDescriptors == ["test:a", "test:b"])
                let startedWithNew = try await node(storage, root: "b")
                try await readsEverything(startedWithNew, 30)
                #expect(startedWithNew.rootKeyDescriptors == ["test:a", "test:b"])
                _ = try await startedWithOld.rotateDataKey()
                _ = try await startedWithOld.createSecret(
                    admin, project: "p", name: "s30", value: SecretBytes(utf8: "v30"))
                try await readsEverything(startedWithNew, 31)
                // A node that cannot load the new root is told which root it needs.
                await #expect {
                    _ = try await node(storage, root: "a", resolver: { _ in throw EngineError(.unavailable, "no HSM") })
                } throws: {
                    let e = $0 as? EngineError
                    return e?.diagnostic == Keyring.rootKeyUnavailableDiagnostic
                        && e?.message.contains("test:b") == true
                }
                throw Crash()
            }
        }
        // Another switch cannot start before this one ends.
        await #expect {
            _ = try await cli.switchRootKey(to: provider("c"))
        } throws: { ($0 as? EngineError)?.code == .conflict }

        // Run again: it finishes, touching only what is left.
        let resumed = try await cli.switchRootKey(to: provider("b"), batch: 5)
        #expect(resumed.resumed)
        #expect(resumed.total == dataKeys + 1)
        #expect(resumed.rewrapped == dataKeys + 1 - 10 - 1)  // 10 moved before the crash, 1 made under b
        let again = try await cli.switchRootKey(to: provider("b"))
        #expect(again.rewrapped == 0)

        // After: the node running all along, a node still configured with the old root (it finds the new one
        // through the store), and one configured with the new root: all read everything.
        try await readsEverything(first, 31)
        #expect(try await first.refreshRootKeys().first == "test:b")
        let oldConfig = try await node(storage, root: "a")
        #expect(oldConfig.rootKeyDescriptors == ["test:b"])
        try await readsEverything(oldConfig, 31)
        let newConfig = try await node(storage, root: "b")
        #expect(newConfig.rootKeyDescriptors == ["test:b"])
        try await readsEverything(newConfig, 31)
        // Without a way to load the store's root, the old root alone is refused.
        await #expect {
            _ = try await node(storage, root: "a", resolver: { _ in throw EngineError(.unavailable, "gone") })
        } throws: { ($0 as? EngineError)?.code == .unavailable }
        #expect(try await newConfig.verifyAudit(admin).isIntact)
        let types = try await newConfig.auditEvents(admin, cursor: nil, limit: 1000).items.map(\.event.event.type)
        #expect(types.filter { $0 == "root-key.rotate" }.count == 2)
        #expect(types.filter { $0 == "data-key.rotate" }.count == 31)
    }

    @Test func newValuesAreSealedUnderTheActiveDataKey() async throws {
        let storage = InMemoryStorage()
        let engine = try await node(storage, root: "a")
        _ = try await engine.createProject(admin, slug: "p", description: "")
        let s0 = try await engine.createSecret(admin, project: "p", name: "s0", value: SecretBytes(utf8: "v0"))
        let id = try await engine.rotateDataKey()
        let s1 = try await engine.createSecret(admin, project: "p", name: "s1", value: SecretBytes(utf8: "v1"))
        func dataKeyOf(_ secretID: String) async throws -> String {
            let record = try await storage.withTransaction { try await $0.get(kind: "secret", id: secretID) }
            let body = try JSONDecoder().decode(SecretsService.SecretBody.self, from: try #require(record).body)
            let bytes = [UInt8](body.value)
            return String(decoding: bytes[2..<(2 + Int(bytes[1]))], as: UTF8.self)
        }
        #expect(try await dataKeyOf(s0.id) == "dek-initial")
        #expect(try await dataKeyOf(s1.id) == id)
        // Another node picks up the active key (it reads it when its copy is older than the TTL; a new node at once).
        let other = try await node(storage, root: "a")
        let s2 = try await other.createSecret(admin, project: "p", name: "s2", value: SecretBytes(utf8: "v2"))
        #expect(try await dataKeyOf(s2.id) == id)
        for (name, value) in [("s0", "v0"), ("s1", "v1"), ("s2", "v2")] {
            #expect(try await other.readSecret(admin, project: "p", name: name).1 == SecretBytes(utf8: value))
        }
    }
}
