import Crypto
import EngineAPI
import Foundation
import StorageAPI
import StoragePostgres
import StorageSQLite
import SwiftASN1
import TestSupport
import Testing
import X509

@testable import Engine

/// KMIP Locate runs on the store's secondary indexes. A property test: on random objects (names, groups, algorithms,
/// lengths, states, client attributes, links, certificate subjects and issuers, two projects) after random lifecycle changes and edits, every random filter
/// gives exactly what a full scan of the project gives (same objects, newest first, Offset and Maximum Items applied).
@Suite struct LocateIndexTests {
    static func oracle(_ storage: any Storage, project: String, _ filter: LocateFilter) async throws -> [String] {
        var all: [Record] = []
        var after: String?
        while true {
            let page = try await storage.withReadTransaction { [after] in
                try await $0.list(kind: KeysService.objectKind, scope: project, afterID: after, limit: 500)
            }
            all += page
            guard page.count == 500, let last = page.last else { break }
            after = last.id
        }
        let metas = try all.map {
            try JSONDecoder().decode(ManagedObjectBody.self, from: try StoredJSON.unpack($0.body)).meta
        }
        .filter { KeysService.locateMatches($0, filter) }
        .sorted { a, b in
            let (ta, tb) = (Record.millis(a.initialDate), Record.millis(b.initialDate))
            return ta != tb ? ta > tb : Array(b.id.utf8).lexicographicallyPrecedes(Array(a.id.utf8))
        }
        var ids = Array(metas.dropFirst(filter.offsetItems).map(\.id))
        if let max = filter.maximumItems, max >= 0 { ids = Array(ids.prefix(max)) }
        return ids
    }

    static func exercise(_ storage: any Storage) async throws {
        // A clock one second apart per object, so Initial Date ranges select some objects and not others.
        let clock = TestClock()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256), clock: clock.read)
        var rng = SystemRandomNumberGenerator()
        let start = Int64(clock.read().timeIntervalSince1970)
        var digests: [[UInt8]] = []
        let names = ["disk", "tape", "db", "backup", "vm"]
        let groups = ["g1", "g2", "g3"]
        var made: [String] = []
        for i in 0..<240 {
            let project = i % 6 == 5 ? "p1" : "p"
            var spec = ObjectSpec(
                objectType: [.symmetricKey, .secretData, .opaqueObject][Int.random(in: 0..<3, using: &rng)],
                names: Bool.random(using: &rng)
                    ? [names.randomElement(using: &rng)! + "-\(Int.random(in: 0..<4, using: &rng))"] : [],
                objectGroups: Bool.random(using: &rng) ? [groups.randomElement(using: &rng)!] : [])
            if spec.objectType == .symmetricKey {
                spec.algorithm = [3, 3, 3, 9][Int.random(in: 0..<4, using: &rng)]
                spec.cryptographicLength = [128, 256][Int.random(in: 0..<2, using: &rng)]
            } else {
                spec.dataType = 1
            }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                spec.customAttributes["x-tier"] = [[UInt8(Int.random(in: 0..<3, using: &rng))]]
            }
            if Bool.random(using: &rng) { spec.activationDate = Date(timeIntervalSince1970: 0) }
            let m = try await engine.registerObject(
                admin, project: project, spec,
                material: SecretBytes(
                    (0..<(Int(spec.cryptographicLength ?? 128) / 8)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                ))
            if project == "p" { made.append(m.id) }
            if let d = m.digest { digests.append(d) }
            clock.advance(1)
        }
        #expect(digests.count > 40, "registered symmetric keys have digests")
        // Certificates with a few subjects and issuers (Locate by "Certificate Subject CN" …).
        let commonNames = ["a.example", "b.example", "c.example"]
        let organizations = ["Acme", "Beta"]
        let issuers = ["CA one", "CA two"]
        for _ in 0..<30 {
            let key = P256.Signing.PrivateKey()
            let cn = commonNames.randomElement(using: &rng)!
            let o = organizations.randomElement(using: &rng)!
            let issuerCN = issuers.randomElement(using: &rng)!
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                notValidBefore: Date() - 60, notValidAfter: Date() + 3600,
                issuer: try DistinguishedName { CommonName(issuerCN) },
                subject: try DistinguishedName {
                    OrganizationName(o)
                    CommonName(cn)
                },
                signatureAlgorithm: .ecdsaWithSHA256, extensions: Certificate.Extensions(), issuerPrivateKey: .init(key)
            )
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            let m = try await engine.registerObject(
                admin, project: "p", ObjectSpec(objectType: .certificate),
                material: SecretBytes(serializer.serializedBytes))
            made.append(m.id)
            clock.advance(1)
        }
        // Links, as the server sets them (a key pair's halves) and as a client does (a Link attribute, kept as its
        // encoded value): a Link filter matches either.
        let linkPool = made.prefix(4).flatMap { id in
            [ObjectLink(type: ObjectLink.publicKey, id: id), ObjectLink(type: ObjectLink.privateKey, id: id)]
        }
        @Sendable func clientValue(_ l: ObjectLink) -> [UInt8] { Array("\(l.type)/\(l.id)".utf8) }
        for id in made.shuffled(using: &rng).prefix(80) {
            let l = linkPool.randomElement(using: &rng)!
            if Bool.random(using: &rng) {
                // The server's links are set by CreateKeyPair and ReKey (asymmetric keys): written here directly.
                try await storage.withTransaction { tx in
                    guard var r = try await tx.get(kind: KeysService.objectKind, id: id) else { return }
                    var body = try JSONDecoder().decode(ManagedObjectBody.self, from: try StoredJSON.unpack(r.body))
                    body.meta.links = (body.meta.links ?? []) + [l]
                    r.body = try GatehouseEngine.encode(body)
                    _ = try await tx.update(r)
                }
            } else {
                _ = try await engine.editObjectAttributes(admin, id: id) {
                    $0.customAttributes = ["Link": [clientValue(l)]]
                }
            }
        }
        // Lifecycle changes and edits move objects between index entries.
        for id in made.shuffled(using: &rng).prefix(60) {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: _ = try? await engine.activateObject(admin, id: id)
            case 1:
                _ = try? await engine.revokeObject(admin, id: id, reason: 5, message: nil, compromiseOccurrence: nil)
            case 2: _ = try? await engine.destroyObject(admin, id: id)
            default:
                let newName = names.randomElement(using: &rng)! + "-\(Int.random(in: 0..<4, using: &rng))"
                _ = try await engine.editObjectAttributes(admin, id: id) { $0.names = [newName] }
            }
        }
        var nonEmpty = 0
        var linkHits = 0
        var certificateHits = 0
        for round in 0..<150 {
            var f = LocateFilter()
            if Int.random(in: 0..<3, using: &rng) == 0 {
                f.name = names.randomElement(using: &rng)! + "-\(Int.random(in: 0..<4, using: &rng))"
            }
            if Int.random(in: 0..<4, using: &rng) == 0 { f.objectGroup = groups.randomElement(using: &rng)! }
            if Int.random(in: 0..<3, using: &rng) == 0 { f.algorithm = [3, 9][Int.random(in: 0..<2, using: &rng)] }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                f.cryptographicLength = [128, 256][Int.random(in: 0..<2, using: &rng)]
            }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                f.state = [.preActive, .active, .deactivated, .destroyed][Int.random(in: 0..<4, using: &rng)]
            }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                f.objectType = [.symmetricKey, .secretData, .opaqueObject][Int.random(in: 0..<3, using: &rng)]
            }
            if Int.random(in: 0..<6, using: &rng) == 0 {
                f.customAttributes["x-tier"] = [UInt8(Int.random(in: 0..<3, using: &rng))]
                if Bool.random(using: &rng) { f.customAttributeDefaults.insert("x-tier") }
            }
            if Int.random(in: 0..<8, using: &rng) == 0 {
                f.digest =
                    Bool.random(using: &rng) ? digests.randomElement(using: &rng) : Array(repeating: 7, count: 32)
            }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                let a = start + Int64.random(in: 0..<240, using: &rng)
                f.dateRanges[.initial] = a...(a + Int64.random(in: 0..<80, using: &rng))
            }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                let l = linkPool.randomElement(using: &rng)!
                f.links = [LinkCondition(link: l, clientValue: Bool.random(using: &rng) ? clientValue(l) : nil)]
            }
            if Int.random(in: 0..<5, using: &rng) == 0 {
                let (issuer, type, values) =
                    [(false, "CN", commonNames), (false, "O", organizations), (true, "CN", issuers)].randomElement(
                        using: &rng)!
                f.certificateFields = [
                    CertificateFieldCondition(
                        issuer: issuer, component: .init(type: type, value: values.randomElement(using: &rng)!))
                ]
            }
            if Int.random(in: 0..<5, using: &rng) == 0 { f.includeDestroyed = true }
            if Int.random(in: 0..<3, using: &rng) == 0 { f.maximumItems = Int.random(in: 0..<12, using: &rng) }
            if Int.random(in: 0..<4, using: &rng) == 0 { f.offsetItems = Int.random(in: 0..<20, using: &rng) }
            // Every fifth round filters on a link or a certificate name alone (combined with the rest, they rarely
            // match anything).
            if round % 5 == 0 {
                let l = linkPool.randomElement(using: &rng)!
                f = LocateFilter()
                f.links = [LinkCondition(link: l, clientValue: Bool.random(using: &rng) ? clientValue(l) : nil)]
            } else if round % 5 == 1 {
                let (issuer, type, values) =
                    [(false, "CN", commonNames), (false, "O", organizations), (true, "CN", issuers)].randomElement(
                        using: &rng)!
                f = LocateFilter()
                f.certificateFields = [
                    CertificateFieldCondition(
                        issuer: issuer, component: .init(type: type, value: values.randomElement(using: &rng)!))
                ]
                if Bool.random(using: &rng) { f.offsetItems = Int.random(in: 0..<4, using: &rng) }
            }
            let got = try await engine.locateObjects(admin, project: "p", f)
            let want = try await oracle(storage, project: "p", f)
            #expect(got == want, "round \(round): \(f)")
            if want.count > 1 { nonEmpty += 1 }
            if !f.links.isEmpty, !want.isEmpty { linkHits += 1 }
            if !f.certificateFields.isEmpty, !want.isEmpty { certificateHits += 1 }
        }
        #expect(
            nonEmpty >= 40, "only \(nonEmpty) of 150 filters found more than one object: the comparison says little")
        #expect(linkHits >= 8, "only \(linkHits) Link filters found objects")
        #expect(certificateHits >= 5, "only \(certificateHits) certificate name filters found objects")
        // A Unique Identifier in the filter finds that object in its own project only.
        let one = try #require(made.first)
        #expect(
            try await engine.locateObjects(
                admin, project: "p",
                {
                    var f = LocateFilter()
                    f.id = one
                    f.includeDestroyed = true
                    return f
                }()) == [one])
        #expect(
            try await engine.locateObjects(
                admin, project: "p1",
                {
                    var f = LocateFilter()
                    f.id = one
                    return f
                }()
            ).isEmpty)
    }

    @Test func sqlite() async throws {
        let dir = try TemporaryDirectory()
        let storage = try SQLiteStorage(path: dir.path + "/store.sqlite")
        try await Self.exercise(storage)
        try await storage.close()
    }

    @Test func postgres() async throws {
        guard let url = ProcessInfo.processInfo.environment["PG_TEST_URL"] else {
            if dependencyRequired("PG") { Issue.record("PG_TEST_URL is not set but a PostgreSQL server is required") }
            return
        }
        // Its own database: the storage suites drop and recreate the tables of the default one.
        guard var components = URLComponents(string: url) else { return }
        components.path = "/gatehouse_locate"
        let storage = try PostgresStorage(url: components.string ?? url, maxConnections: 4)
        try await storage.unsafeDropAll()
        try await Self.exercise(storage)
        try await storage.close()
    }

    @Test func memory() async throws {
        try await Self.exercise(InMemoryStorage())
    }
}

/// The first KMIP requests of administrators create the default KMIP project; several at once on a shared store race
/// to create it, and every one of them must succeed (the losers' unique violation means it exists).
@Suite struct DefaultKMIPProjectRaceTests {
    @Test func concurrentFirstCreatesAllSucceedOnPostgres() async throws {
        guard let url = ProcessInfo.processInfo.environment["PG_TEST_URL"], var components = URLComponents(string: url)
        else {
            if dependencyRequired("PG") { Issue.record("PG_TEST_URL is not set but a PostgreSQL server is required") }
            return
        }
        components.path = "/gatehouse_race"
        let storage = try PostgresStorage(url: components.string ?? url, maxConnections: 16)
        try await storage.unsafeDropAll()
        let engine = try await GatehouseEngine.open(
            storage: storage, rootKey: StaticRootKeyProvider(SymmetricKey(size: .bits256)),
            bootstrapAdmins: ["gatehouse-admin"])
        let created = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    try await engine.createKey(
                        admin, project: nil,
                        ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256)
                    ).project
                }
            }
            var projects: [String] = []
            for try await p in group { projects.append(p) }
            return projects
        }
        #expect(created.count == 16 && Set(created) == [KeysService.defaultKMIPProject])
        try await storage.close()
    }
}
