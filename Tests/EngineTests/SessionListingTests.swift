import Crypto
import EngineAPI
import Foundation
import StorageAPI
import StorageSQLite
import TestSupport
import Testing

@testable import Engine

/// PAM session listings come from the store's indexes: random queries (time windows, grantee, resource, account,
/// end reason, both orders) paged with small pages give exactly what a full scan of the project gives, every session
/// once, and a cursor from one query is refused by another.
@Suite struct SessionListingTests {
    @Test func randomQueriesMatchAFullScan() async throws {
        let dir = try TemporaryDirectory()
        let storage = try SQLiteStorage(path: dir.path + "/store.sqlite")
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        var rng = SystemRandomNumberGenerator()
        let base = Date(timeIntervalSince1970: 1_790_000_000)
        let grantees = ["alice", "bob", "carol"]
        let resources = ["orders", "ledger"]
        let users = ["app", "report", "postgres"]
        let reasons: [PAMSessionEndReason?] = [nil, .clientDisconnected, .grantRevoked, .grantExpired]
        var all: [PAMSessionInfo] = []
        for i in 0..<400 {
            let project = i % 8 == 7 ? "p1" : "p"
            let started = base.addingTimeInterval(Double(Int.random(in: 0..<5000, using: &rng)))
            let reason = reasons.randomElement(using: &rng)!
            all.append(
                PAMSessionInfo(
                    id: UUID().uuidString.lowercased(), project: project, grantId: "g",
                    resourceName: resources.randomElement(using: &rng)!,
                    username: users.randomElement(using: &rng)!, granteeId: "id",
                    granteeName: grantees.randomElement(using: &rng)!,
                    clientAddress: nil, startedAt: started,
                    endedAt: reason == nil ? nil : started.addingTimeInterval(5), endReason: reason))
        }
        let stored = all
        try await storage.withTransaction { tx in
            for s in stored {
                try await tx.insert(
                    Record(
                        kind: PAMKind.session, id: s.id, scope: s.project,
                        body: try JSONEncoder().encode(PAMSessionBody(info: s)), createdAt: s.startedAt))
            }
        }
        let sessions = all.filter { $0.project == "p" }
        var nonTrivial = 0
        for round in 0..<80 {
            var q = PAMSessionQuery(limit: Int.random(in: 1...40, using: &rng))
            if Int.random(in: 0..<3, using: &rng) == 0 { q.granteeName = grantees.randomElement(using: &rng)! }
            if Int.random(in: 0..<3, using: &rng) == 0 { q.resourceName = resources.randomElement(using: &rng)! }
            if Int.random(in: 0..<3, using: &rng) == 0 { q.username = users.randomElement(using: &rng)! }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                q.endReason = reasons.randomElement(using: &rng)!?.rawValue ?? "open"
            }
            if Bool.random(using: &rng) {
                q.since = base.addingTimeInterval(Double(Int.random(in: 0..<2500, using: &rng)))
            }
            if Bool.random(using: &rng) {
                q.until = base.addingTimeInterval(Double(Int.random(in: 2500..<5000, using: &rng)))
            }
            q.oldestFirst = Bool.random(using: &rng)
            var got: [String] = []
            var pages = 0
            repeat {
                let page = try await engine.listPAMSessions(admin, project: "p", q)
                got += page.items.map(\.id)
                #expect(page.items.count <= q.limit)
                q.after = page.next
                pages += 1
            } while q.after != nil && pages < 500
            let want = sessions.filter { s in
                (q.granteeName.map { s.granteeName == $0 } ?? true)
                    && (q.resourceName.map { s.resourceName == $0 } ?? true)
                    && (q.username.map { s.username == $0 } ?? true)
                    && (q.endReason.map { (s.endReason?.rawValue ?? "open") == $0 } ?? true)
                    && (q.since.map { Record.millis(s.startedAt) >= Record.millis($0) } ?? true)
                    && (q.until.map { Record.millis(s.startedAt) < Record.millis($0) } ?? true)
            }.sorted { a, b in
                let (ta, tb) = (Record.millis(a.startedAt), Record.millis(b.startedAt))
                let before = ta != tb ? ta < tb : Array(a.id.utf8).lexicographicallyPrecedes(Array(b.id.utf8))
                return q.oldestFirst ? before : !before
            }.map(\.id)
            #expect(got == want, "round \(round): \(q)")
            if want.count > q.limit { nonTrivial += 1 }
        }
        #expect(nonTrivial >= 15, "only \(nonTrivial) queries needed more than one page")
        // A cursor is tied to its query's index.
        let first = try await engine.listPAMSessions(admin, project: "p", PAMSessionQuery(limit: 5))
        let next = try #require(first.next)
        await #expect(throws: EngineError.self) {
            _ = try await engine.listPAMSessions(
                admin, project: "p", PAMSessionQuery(granteeName: "alice", after: next, limit: 5))
        }
        await #expect(throws: EngineError.self) {
            _ = try await engine.listPAMSessions(admin, project: "p", PAMSessionQuery(after: "garbage", limit: 5))
        }
        try await storage.close()
    }
}

/// Deleting an identity removes its memberships and privileges in every project (found through their identity
/// indexes) and nobody else's.
@Suite struct IdentityDeletionTests {
    @Test func membershipsAndPrivilegesGoWithTheIdentityOnly() async throws {
        let dir = try TemporaryDirectory()
        let storage = try SQLiteStorage(path: dir.path + "/store.sqlite")
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let leaving = try await engine.createIdentity(admin, IdentitySpec(name: "leaving"))
        let staying = try await engine.createIdentity(admin, IdentitySpec(name: "staying"))
        let read = [Permission(subject: "secrets", actions: ["read"])]
        for project in ["p", "p1"] {
            for who in [leaving, staying] {
                _ = try await engine.setMembership(
                    admin, project: project, identityId: who.id, roles: [RoleGrant(role: "viewer")])
                _ = try await engine.createPrivilege(
                    admin, project: project, PrivilegeSpec(identityId: who.id, slug: "r-\(who.name)", permissions: read)
                )
            }
        }
        try await engine.deleteIdentity(admin, id: leaving.id)
        for project in ["p", "p1"] {
            let members = try await engine.listMemberships(admin, project: project, after: nil, limit: 1000).items.map(
                \.identityId)
            let privileges = try await engine.listPrivileges(admin, project: project).map(\.identityId)
            #expect(!members.contains(leaving.id) && members.contains(staying.id), "\(project): \(members)")
            #expect(privileges == [staying.id], "\(project): \(privileges)")
        }
        try await IndexConformance.verify(storage, kind: "membership")
        try await IndexConformance.verify(storage, kind: "privilege")
        try await storage.close()
    }
}

/// Access requests and grants are listed from the store's indexes too: random queries (status, as reported at the
/// engine's clock, with `approved` meaning in force now; grantee; account) paged with small pages give exactly what a
/// full scan of the project gives, every grant once. Time moves between queries, so grants expire under them.
@Suite struct GrantListingTests {
    @Test func randomQueriesMatchAFullScan() async throws {
        let dir = try TemporaryDirectory()
        let storage = try SQLiteStorage(path: dir.path + "/store.sqlite")
        let clock = TestClock()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256), clock: clock.read)
        var rng = SystemRandomNumberGenerator()
        let start = clock.read()
        let grantees = ["alice", "bob", "carol"]
        let users = ["app", "report", "postgres"]
        let statuses: [PAMGrantInfo.Status] = [.pending, .approved, .approved, .approved, .rejected, .revoked]
        var all: [PAMGrantInfo] = []
        for i in 0..<300 {
            let requested = start.addingTimeInterval(-Double(Int.random(in: 0..<7200, using: &rng)))
            let status = statuses.randomElement(using: &rng)!
            let user = users.randomElement(using: &rng)!
            all.append(
                PAMGrantInfo(
                    id: UUID().uuidString.lowercased(), project: i % 7 == 6 ? "p1" : "p", resourceId: "r",
                    resourceName: "orders",
                    accountId: "acct-" + user, username: user, granteeId: "id",
                    granteeName: grantees.randomElement(using: &rng)!,
                    reason: "why", duration: "1h", status: status, requestedAt: requested,
                    decidedAt: status == .pending ? nil : requested, decidedBy: status == .pending ? nil : "approver",
                    expiresAt: status == .approved
                        ? start.addingTimeInterval(Double(Int.random(in: -3600..<3600, using: &rng))) : nil))
        }
        let stored = all
        try await storage.withTransaction { tx in
            for g in stored {
                try await tx.insert(
                    Record(
                        kind: PAMKind.grant, id: g.id, scope: g.accountId,
                        body: try JSONEncoder().encode(PAMGrantBody(info: g)), createdAt: g.requestedAt))
            }
        }
        let grants = all.filter { $0.project == "p" }
        var nonTrivial = 0
        var inForce = 0
        for round in 0..<80 {
            // Time passes: some approved grants expire between rounds.
            clock.advance(Double(Int.random(in: 0..<60, using: &rng)))
            let now = clock.read()
            var q = PAMGrantQuery(limit: Int.random(in: 1...30, using: &rng))
            if Int.random(in: 0..<3, using: &rng) != 0 {
                q.status = [PAMGrantInfo.Status.pending, .approved, .expired, .rejected, .revoked].randomElement(
                    using: &rng)!
            }
            if Int.random(in: 0..<3, using: &rng) == 0 { q.granteeName = grantees.randomElement(using: &rng)! }
            if Int.random(in: 0..<3, using: &rng) == 0 { q.username = users.randomElement(using: &rng)! }
            var got: [String] = []
            var pages = 0
            repeat {
                let page = try await engine.listPAMGrants(admin, project: "p", q)
                got += page.items.map(\.id)
                #expect(page.items.count <= q.limit)
                q.after = page.next
                pages += 1
            } while q.after != nil && pages < 500
            func reported(_ g: PAMGrantInfo) -> PAMGrantInfo.Status {
                g.status == .approved && (g.expiresAt.map { Record.millis($0) <= Record.millis(now) } ?? false)
                    ? .expired : g.status
            }
            // Newest request first; grants in force (and expired ones) by expiry, latest first.
            func time(_ g: PAMGrantInfo) -> Int64 {
                q.status == .approved || q.status == .expired
                    ? Record.millis(g.expiresAt ?? g.requestedAt) : Record.millis(g.requestedAt)
            }
            let want = grants.filter { g in
                (q.status.map { reported(g) == $0 } ?? true) && (q.granteeName.map { g.granteeName == $0 } ?? true)
                    && (q.username.map { g.username == $0 } ?? true)
            }.sorted { a, b in
                time(a) != time(b) ? time(a) > time(b) : Array(b.id.utf8).lexicographicallyPrecedes(Array(a.id.utf8))
            }.map(\.id)
            #expect(got == want, "round \(round): \(q)")
            if want.count > q.limit { nonTrivial += 1 }
            if q.status == .approved, !want.isEmpty { inForce += 1 }
        }
        #expect(nonTrivial >= 15, "only \(nonTrivial) queries needed more than one page")
        #expect(inForce >= 3, "only \(inForce) queries found grants in force")
    }
}
