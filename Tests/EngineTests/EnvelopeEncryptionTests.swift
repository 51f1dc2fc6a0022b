import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Testing

@testable import Engine

let admin = CallContext(
    principal: Principal(method: .tlsCertificate, id: "fp-admin", name: "gatehouse-admin", verifiedByListener: true),
    frontEnd: "test")
let stranger = CallContext(
    principal: Principal(method: .tlsCertificate, id: "fp-x", name: "someone", verifiedByListener: true),
    frontEnd: "test")

/// Opens an engine whose store has the projects `p` and `p1`.
func openEngine(
    _ storage: any Storage, key: SymmetricKey, clock: @escaping @Sendable () -> Date = { Date() }, node: String? = nil,
    kmipClientCAsCreated: @escaping @Sendable ([String]) -> Void = { _ in }
) async throws -> GatehouseEngine {
    let engine = try await GatehouseEngine.open(
        storage: storage, rootKey: StaticRootKeyProvider(key), bootstrapAdmins: ["gatehouse-admin"], clock: clock,
        node: node, kmipClientCAsCreated: kmipClientCAsCreated)
    for project in ["p", "p1"] {
        do {
            _ = try await engine.createProject(admin, slug: project, description: "")
        } catch let e as EngineError where e.code == .alreadyExists {}
    }
    return engine
}

@Suite struct EnvelopeEncryptionTests {
    @Test func roundTripAndNoPlaintextAtRest() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let marker = "correct horse battery staple"
        _ = try await engine.createSecret(admin, project: "p1", name: "db-password", value: SecretBytes(utf8: marker))
        let (meta, value) = try await engine.readSecret(admin, project: "p1", name: "db-password")
        #expect(value == SecretBytes(utf8: marker))
        #expect(meta.version == 1)
        let all = try await storage.withTransaction { tx in
            try await tx.list(kind: "secret", scope: nil, afterID: nil, limit: 10)
                + tx.list(kind: "datakey", scope: nil, afterID: nil, limit: 10)
        }
        for r in all { #expect(!String(decoding: r.body, as: UTF8.self).contains(marker)) }
        #expect(!"\(value)".contains(marker))
    }

    @Test func wrongRootKeyIsRefusedAtOpen() async throws {
        let storage = InMemoryStorage()
        _ = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        await #expect(throws: EngineError.self) {
            _ = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        }
    }

    @Test func swappedCiphertextsFailToDecrypt() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let a = try await engine.createSecret(admin, project: "p1", name: "a", value: SecretBytes(utf8: "alpha"))
        let b = try await engine.createSecret(admin, project: "p1", name: "b", value: SecretBytes(utf8: "bravo"))
        try await storage.withTransaction { tx in
            guard var ra = try await tx.get(kind: "secret", id: a.id),
                var rb = try await tx.get(kind: "secret", id: b.id)
            else { throw EngineError(.internal, "missing") }
            swap(&ra.body, &rb.body)
            _ = try await tx.update(ra)
            _ = try await tx.update(rb)
        }
        for name in ["a", "b"] {
            await #expect {
                _ = try await engine.readSecret(admin, project: "p1", name: name)
            } throws: { ($0 as? EngineError)?.code == .cryptographicFailure }
        }
    }

    @Test func flippedBitFailsToDecrypt() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let a = try await engine.createSecret(admin, project: "p1", name: "a", value: SecretBytes(utf8: "alpha"))
        try await storage.withTransaction { tx in
            guard var r = try await tx.get(kind: "secret", id: a.id) else { return }
            var body = try JSONDecoder().decode(SecretsService.SecretBody.self, from: r.body)
            body.value[body.value.count - 1] ^= 1
            r.body = try JSONEncoder().encode(body)
            _ = try await tx.update(r)
        }
        await #expect { _ = try await engine.readSecret(admin, project: "p1", name: "a") } throws: {
            ($0 as? EngineError)?.code == .cryptographicFailure
        }
    }

    @Test func rootKeyRotationKeepsSecretsReadable() async throws {
        let storage = InMemoryStorage()
        let oldKey = SymmetricKey(size: .bits256)
        let newKey = SymmetricKey(size: .bits256)
        let engine = try await openEngine(storage, key: oldKey)
        _ = try await engine.createSecret(admin, project: "p1", name: "s", value: SecretBytes(utf8: "kept"))
        let n = try await engine.rotateRootKey(to: StaticRootKeyProvider(newKey))
        #expect(n == 1)
        // The running engine still works, a fresh one opens with the new key only.
        #expect(try await engine.readSecret(admin, project: "p1", name: "s").1 == SecretBytes(utf8: "kept"))
        let reopened = try await openEngine(storage, key: newKey)
        #expect(try await reopened.readSecret(admin, project: "p1", name: "s").1 == SecretBytes(utf8: "kept"))
        await #expect(throws: EngineError.self) { _ = try await openEngine(storage, key: oldKey) }
        #expect(try await reopened.verifyAudit(admin).isIntact)
    }
}

@Suite struct AuthorizationHookTests {
    @Test func unknownCertificateAndAnonymousAreRefusedAndAudited() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let before = try await engine.auditEvents(admin, cursor: nil, limit: 100).items.count
        await #expect {
            _ = try await engine.createSecret(stranger, project: "p1", name: "x", value: SecretBytes([1]))
        } throws: {
            ($0 as? EngineError)?.code == .unauthenticated
        }
        let anon = CallContext(principal: .anonymous, frontEnd: "test")
        await #expect { _ = try await engine.readSecret(anon, project: "p1", name: "x") } throws: {
            ($0 as? EngineError)?.code == .unauthenticated
        }
        let events = Array(try await engine.auditEvents(admin, cursor: nil, limit: 100).items.dropFirst(before))
        #expect(events.map(\.event.event.type) == ["authentication.failed", "authentication.failed"])
        #expect(events.first?.event.actor.metadata["name"] == "someone")
        #expect(events.first?.event.event.metadata["action"] == "secrets.create")
    }

    @Test func duplicateNameIsAlreadyExists() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        _ = try await engine.createSecret(admin, project: "p1", name: "x", value: SecretBytes([1]))
        await #expect {
            _ = try await engine.createSecret(admin, project: "p1", name: "x", value: SecretBytes([2]))
        } throws: {
            ($0 as? EngineError)?.code == .alreadyExists
        }
    }

    @Test func badNamesAreInvalidArguments() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        for bad in ["", "../etc", "a b", String(repeating: "x", count: 201)] {
            await #expect {
                _ = try await engine.createSecret(admin, project: "p1", name: bad, value: SecretBytes([1]))
            } throws: {
                ($0 as? EngineError)?.code == .invalidArgument
            }
        }
    }
}
