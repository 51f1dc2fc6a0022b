import ACMEProtocol
import Crypto
import EngineAPI
import Foundation
import Logging
import StorageAPI
import StoragePostgres
import TestSupport
import Testing

@testable import Engine

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
        for n in first.prefix(5) {
            #expect(try await nodeA.acmeConsumeNonce(n) == false, "an expired nonce stays refused")
        }
        for n in second.prefix(3) { #expect(try await nodeB.acmeConsumeNonce(n) == false) }
        #expect(try await usedNonces(storage) == 10, "refusing an expired nonce records nothing")

        clock.advance(720)
        #expect(try await nodeA.acmeSweep() == 10)
        #expect(try await usedNonces(storage) == 0)
    }
}

/// New-order rate limits live in the store: every node of a shared store counts the same orders.
@Suite struct ACMERateLimitTests {
    func admit(
        _ engine: GatehouseEngine, _ storage: any Storage, _ clock: TestClock, account: String, _ names: [String],
        _ limits: ACMERateLimits
    )
        async -> EngineError?
    {
        do {
            try await storage.withRetryingTransaction { tx in
                try await engine.acme.admitOrder(
                    accountId: account, identifiers: names.map { ACMEIdentifier(type: "dns", value: $0) },
                    limits: limits, now: clock.read(), tx)
            }
            return nil
        } catch let e as EngineError {
            return e
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test func sharedAcrossNodesSlidingAndSwept() async throws {
        let storage = InMemoryStorage()
        let clock = TestClock()  // starts on a window boundary
        let key = SymmetricKey(size: .bits256)
        let nodeA = try await openEngine(storage, key: key, clock: clock.read)
        let nodeB = try await openEngine(storage, key: key, clock: clock.read)
        let perName = ACMERateLimits(ordersPerAccountPerHour: 0, ordersPerIdentifierPerHour: 4)

        // Four orders for one name, two on each node (names compare case-insensitively); the fifth is refused on both.
        #expect(await admit(nodeA, storage, clock, account: "a1", ["www.example.test"], perName) == nil)
        #expect(await admit(nodeB, storage, clock, account: "a2", ["WWW.example.test"], perName) == nil)
        #expect(await admit(nodeA, storage, clock, account: "a3", ["www.example.test"], perName) == nil)
        #expect(await admit(nodeB, storage, clock, account: "a1", ["www.EXAMPLE.test", "other.test"], perName) == nil)
        clock.advance(600)
        for node in [nodeA, nodeB] {
            let refused = await admit(
                node, storage, clock, account: "a9", ["other2.test", "www.example.test"], perName)
            #expect(refused?.acmeProblem == .rateLimited)
            #expect(refused?.message.contains("www.example.test") == true)
            // The window ends in 3000 s, after which this window's 4 fade like the last one: (1 - 3/4) of an hour more.
            #expect(refused?.retryAfter == 3000 + 900)
        }
        // A refused order counted nothing: other2.test still has its full allowance.
        for _ in 0..<4 { #expect(await admit(nodeA, storage, clock, account: "a9", ["other2.test"], perName) == nil) }
        #expect(await admit(nodeA, storage, clock, account: "a9", ["other2.test"], perName) != nil)

        // Half-way through the next window the last one weighs half (4 -> 2): two more orders, then a wait.
        clock.advance(3000 + 1800)
        #expect(await admit(nodeB, storage, clock, account: "a1", ["www.example.test"], perName) == nil)
        #expect(await admit(nodeA, storage, clock, account: "a1", ["www.example.test"], perName) == nil)
        let later = await admit(nodeB, storage, clock, account: "a1", ["www.example.test"], perName)
        #expect(later?.acmeProblem == .rateLimited)
        // 2 in this window + 4 x (1 - e/W) must drop to 1: e = 3/4 of the hour, 900 s from now.
        #expect(later?.retryAfter == 900)
        clock.advance(901)
        #expect(await admit(nodeB, storage, clock, account: "a1", ["www.example.test"], perName) == nil)

        // Accounts have their own limit, whatever the names.
        let perAccount = ACMERateLimits(ordersPerAccountPerHour: 2, ordersPerIdentifierPerHour: 0)
        #expect(await admit(nodeA, storage, clock, account: "acct", ["n1.test"], perAccount) == nil)
        #expect(await admit(nodeB, storage, clock, account: "acct", ["n2.test"], perAccount) == nil)
        let acct = await admit(nodeA, storage, clock, account: "acct", ["n3.test"], perAccount)
        #expect(acct?.acmeProblem == .rateLimited)
        #expect(acct?.message.contains("this account") == true)
        #expect(await admit(nodeA, storage, clock, account: "other-acct", ["n3.test"], perAccount) == nil)
        #expect(await admit(nodeA, storage, clock, account: "acct", ["n3.test"], .none) == nil, "no limits configured")

        // Counters of windows that no longer count are swept.
        let counters = { try await storage.withTransaction { try await $0.count(kind: "acme-rate", scope: nil) } }
        #expect(try await counters() > 0)
        clock.advance(2 * 3600)
        _ = try await nodeA.acmeSweep()
        #expect(try await counters() == 0)
    }

    /// Concurrent first orders of a window on two nodes: each is counted once (a lost race to create the counter
    /// is retried, not reported). In memory, and on a real PostgreSQL (`PG_TEST_URL`'s server, database
    /// gatehouse_engine) with one connection pool per node, where the races are real.
    @Test(arguments: ["memory", "postgres"]) func concurrentOrdersAreAllCounted(_ backend: String) async throws {
        let clock = TestClock()
        let key = SymmetricKey(size: .bits256)
        let stores: [any Storage]
        var pools: [PostgresStorage] = []
        if backend == "postgres" {
            guard let url = ProcessInfo.processInfo.environment["PG_TEST_URL"],
                var components = URLComponents(string: url)
            else {
                if dependencyRequired("PG") { Issue.record("PG_TEST_URL is not set") }
                return
            }
            components.path = "/gatehouse_engine"
            var logger = Logger(label: "test.pg")
            logger.logLevel = .critical
            let target = components.string ?? url
            pools = [
                try PostgresStorage(url: target, logger: logger, maxConnections: 8),
                try PostgresStorage(url: target, logger: logger, maxConnections: 8),
            ]
            try await pools[0].unsafeDropAll()
            stores = pools
        } else {
            let shared = InMemoryStorage()
            stores = [shared, shared]
        }
        let nodes = [
            try await openEngine(stores[0], key: key, clock: clock.read),
            try await openEngine(stores[1], key: key, clock: clock.read),
        ]
        let limits = ACMERateLimits(ordersPerAccountPerHour: 0, ordersPerIdentifierPerHour: 10)
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<16 {
                group.addTask {
                    await self.admit(nodes[i % 2], stores[i % 2], clock, account: "a\(i)", ["busy.test"], limits) == nil
                }
            }
            var admitted = 0
            for await ok in group where ok { admitted += 1 }
            return admitted
        }
        #expect(results == 10)
        let counted = try await stores[0].withTransaction { tx in
            try await tx.list(kind: "acme-rate", scope: "acme", afterID: nil, limit: 10).map {
                String(decoding: $0.body, as: UTF8.self)
            }
        }
        #expect(counted == ["10"])
        for pool in pools { try await pool.close() }
    }
}

/// A challenge the client answered is a validation in the store, held by the node that started it for a lease: if
/// that node stops, another node (or the same one after a restart) claims it once the lease lapses.
@Suite struct ACMEValidationLeaseTests {
    struct World {
        var storage: InMemoryStorage
        var clock: TestClock
        var nodeA: GatehouseEngine
        var nodeB: GatehouseEngine
        var accountId: String
        var account: CallContext
        var profileId: String
    }

    static let system = CallContext(principal: .system, frontEnd: "acme-validator", requestID: "t")

    func world() async throws -> World {
        let storage = InMemoryStorage()
        let clock = TestClock()
        let key = SymmetricKey(size: .bits256)
        let nodeA = try await openEngine(storage, key: key, clock: clock.read)
        let nodeB = try await openEngine(storage, key: key, clock: clock.read)
        let ca = try await nodeA.createCA(
            admin, project: "p", CASpec(type: .root, subject: CASubject(commonName: "ACME Root"), keyAlgorithm: .ecP256)
        )
        let template = try await nodeA.createTemplate(
            admin, project: "p",
            TemplateSpec(
                name: "acme", subject: [], sans: [PatternRule(type: "dns", allowed: ["*.localhost"])],
                keyAlgorithms: [.ecP256],
                signatureAlgorithms: ["SHA256-ECDSA"], keyUsages: ["digitalSignature"],
                extendedKeyUsages: ["serverAuth"], maxTTL: "30d"))
        let profile = try await nodeA.createProfile(
            admin, project: "p", ProfileSpec(slug: "web", caId: ca.id, templateId: template.id, enrollment: .acme))
        let (kid, hmacKey) = try await nodeA.acmeEABCredentials(admin, profile: profile.id)
        let signingInput = Array("protected.payload".utf8)
        let mac = Array(
            HMAC<SHA256>.authenticationCode(
                for: signingInput, using: SymmetricKey(data: try #require(Base64URL.decode(hmacKey)))))
        let (account, _) = try await nodeA.acmeNewAccount(
            CallContext(
                principal: Principal(method: .acmeAccount, id: "jwk:tp", name: "tp"), frontEnd: "acme", requestID: "r"),
            profileId: profile.id, jwk: #"{"crv":"P-256","kty":"EC","x":"x","y":"y"}"#, thumbprint: "tp", contact: [],
            termsAgreed: true, onlyReturnExisting: false, eab: (kid, "HS256", signingInput, mac))
        let ctx = CallContext(
            principal: Principal(method: .acmeAccount, id: account.id, name: account.id), frontEnd: "acme",
            requestID: "r")
        return World(
            storage: storage, clock: clock, nodeA: nodeA, nodeB: nodeB, accountId: account.id, account: ctx,
            profileId: profile.id)
    }

    /// A new order for `name`; returns its http-01 challenge id and authorization id.
    func challenge(_ w: World, _ name: String) async throws -> (challenge: String, authz: String) {
        let order = try await w.nodeA.acmeNewOrder(
            w.account, accountId: w.accountId, identifiers: [ACMEIdentifier(type: "dns", value: name)], notBefore: nil,
            notAfter: nil,
            replaces: nil, profile: nil, limits: .none)
        let authzId = try #require(order.authorizations.first)
        let authz = try await w.nodeA.acmeAuthorization(w.account, accountId: w.accountId, authorizationId: authzId)
        return (try #require(authz.challenges.first { $0.type == "http-01" }).id, authzId)
    }

    func pending(_ w: World) async throws -> Int {
        try await w.storage.withTransaction { try await $0.count(kind: "acme-validation", scope: nil) }
    }

    @Test func aLapsedLeaseIsClaimedOnceByAnotherNodeAndTheVerdictEndsIt() async throws {
        let w = try await world()
        let (challengeId, authzId) = try await challenge(w, "a.localhost")
        let (processing, _, task) = try await w.nodeA.acmeRespondChallenge(
            w.account, accountId: w.accountId, challengeId: challengeId, lease: 60)
        #expect(processing.status == .processing)
        #expect(task?.keyAuthorization == processing.token + ".tp")
        #expect(try await pending(w) == 1)

        #expect(try await w.nodeB.acmeClaimValidations(Self.system, lease: 60, limit: 10).isEmpty, "node A holds it")
        w.clock.advance(61)  // node A stopped without a verdict
        let claimed = try await w.nodeB.acmeClaimValidations(Self.system, lease: 60, limit: 10)
        #expect(claimed == [try #require(task)])
        #expect(
            try await w.nodeA.acmeClaimValidations(Self.system, lease: 60, limit: 10).isEmpty, "node B holds it now")
        #expect(try await w.nodeB.acmeClaimValidations(Self.system, lease: 60, limit: 10).isEmpty, "claimed once")

        try await w.nodeB.acmeCompleteValidation(Self.system, challengeId: challengeId, error: nil)
        let authz = try await w.nodeA.acmeAuthorization(w.account, accountId: w.accountId, authorizationId: authzId)
        #expect(authz.status == .valid)
        #expect(try await pending(w) == 0, "the verdict ends the validation")
        w.clock.advance(61)
        #expect(try await w.nodeA.acmeClaimValidations(Self.system, lease: 60, limit: 10).isEmpty)
        // A late verdict from the node that stopped changes nothing.
        try await w.nodeA.acmeCompleteValidation(
            Self.system, challengeId: challengeId,
            error: ACMEError(type: ACMEProblemType.connection.urn, detail: "late"))
        #expect(
            try await w.nodeA.acmeAuthorization(w.account, accountId: w.accountId, authorizationId: authzId).status
                == .valid)
    }

    @Test func onlyValidatorsClaimAndAValidationOfAnExpiredAuthorizationFails() async throws {
        let w = try await world()
        await #expect(throws: EngineError.self) {
            _ = try await w.nodeA.acmeClaimValidations(w.account, lease: 60, limit: 10)
        }
        await #expect(throws: EngineError.self) {
            _ = try await w.nodeA.acmeClaimValidations(admin, lease: 60, limit: 10)
        }
        var ids: [(String, String)] = []
        for i in 0..<3 {
            let c = try await challenge(w, "n\(i).localhost")
            _ = try await w.nodeA.acmeRespondChallenge(
                w.account, accountId: w.accountId, challengeId: c.challenge, lease: 30)
            ids.append(c)
        }
        w.clock.advance(31)
        #expect(
            try await w.nodeB.acmeClaimValidations(Self.system, lease: 30, limit: 2).count == 2, "at most the limit")
        #expect(try await w.nodeB.acmeClaimValidations(Self.system, lease: 30, limit: 2).count == 1, "then the rest")
        w.clock.advance(30 * 86400)  // every authorization has expired
        #expect(try await w.nodeB.acmeClaimValidations(Self.system, lease: 30, limit: 10).isEmpty)
        for (_, authzId) in ids {
            let authz = try await w.nodeA.acmeAuthorization(w.account, accountId: w.accountId, authorizationId: authzId)
            #expect(authz.status == .invalid)
            #expect(authz.challenges.first { $0.type == "http-01" }?.error?.detail.contains("expired") == true)
        }
        #expect(try await pending(w) == 0)
    }
}
