import Crypto
import EngineAPI
import Foundation
import StorageAPI
import StorageSQLite
import Synchronization
import TestSupport
import Testing

@testable import Engine

/// Expired access tokens are deleted a day after they expire, found through the expiry index: logins and console
/// sign-ins over a year do not pile up in the store.
@Suite struct TokenSweepTests {
    @Test func twoNodesDeleteTheTokensThatExpiredOverADayAgoAndNothingElse() async throws {
        let dir = try TemporaryDirectory()
        let storage = try SQLiteStorage(path: dir.path + "/store.sqlite")
        let rootKey = SymmetricKey(size: .bits256)
        let start = Date()
        let now = Mutex(start)
        func node(_ name: String) async throws -> GatehouseEngine {
            try await GatehouseEngine.open(
                storage: storage, rootKey: StaticRootKeyProvider(rootKey), bootstrapAdmins: [],
                clock: { now.withLock { $0 } }, node: name)
        }
        let a = try await node("a")
        let b = try await node("b")
        let system = CallContext.system("test")
        func identity(_ name: String, ttl: Int) async throws -> String {
            let id = try await a.createIdentity(system, IdentitySpec(name: name, orgRole: .admin)).id
            _ = try await a.attachTokenAuth(
                system, identityId: id, AuthMethodSpec(accessTokenTTL: ttl, accessTokenMaxTTL: ttl))
            return id
        }
        let hourly = try await identity("hourly", ttl: 3600)
        let monthly = try await identity("monthly", ttl: 30 * 86400)
        // 450 one-hour tokens (more than two sweep pages) and a console session from one of them, now.
        var expiring: [String] = []
        for _ in 0..<450 { expiring.append(try await a.createIdentityToken(system, identityId: hourly).accessToken) }
        let session = try await a.startSession(
            bearerToken: expiring[0], ipAddress: nil, frontEnd: "test", lifetime: 8 * 3600
        ).session.accessToken
        let lasting = try await a.createIdentityToken(system, identityId: monthly).accessToken
        // Two hours later, five more one-hour tokens: expired by the sweep, but less than a day ago.
        now.withLock { $0 = start.addingTimeInterval(2 * 3600) }
        var recent: [String] = []
        for _ in 0..<5 { recent.append(try await a.createIdentityToken(system, identityId: hourly).accessToken) }

        func stored(_ identity: String) async throws -> Int {
            try await storage.withReadTransaction { tx in
                try await tx.count(kind: AccessKind.accessToken, scope: identity)
            }
        }
        #expect(try await stored(hourly) == 456)
        // A day and an hour after the first tokens expired: both nodes sweep at once.
        now.withLock { $0 = start.addingTimeInterval(3600 + 86400 + 60) }
        async let byA = a.deleteExpiredTokens()
        async let byB = b.deleteExpiredTokens()
        var (deletedByA, deletedByB) = await (byA, byB)
        // A node that lost a page to the other stops; the next sweep (an hour later in the daemon) finishes.
        deletedByA += await a.deleteExpiredTokens()
        #expect(deletedByA + deletedByB == 451, "\(deletedByA) + \(deletedByB)")
        #expect(try await stored(hourly) == 5)
        #expect(try await stored(monthly) == 1)
        #expect(await b.deleteExpiredTokens() == 0)
        let audited = try await a.searchAudit(system, AuditSearch(type: "token.expired.delete", limit: 100)).items
            .compactMap { $0.event.event.metadata["count"].flatMap(Int.init) }
        #expect(audited.reduce(0, +) == 451)

        // What is left still answers as before: the lasting token works, the recent ones are expired, and the
        // deleted ones (and the session) are unknown.
        #expect(try await a.authenticate(bearerToken: lasting, ipAddress: nil, frontEnd: "test").name == "monthly")
        for token in [recent[0], expiring[1], session] {
            await #expect(throws: EngineError.self) {
                _ = try await a.authenticate(bearerToken: token, ipAddress: nil, frontEnd: "test")
            }
        }
        let reasons = try await a.searchAudit(system, AuditSearch(type: "authentication.failed", limit: 100)).items
            .compactMap { $0.event.event.metadata["reason"] }
        #expect(reasons.contains("token expired") && reasons.contains("unknown token"), "\(reasons)")
    }
}
