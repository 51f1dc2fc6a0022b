import Crypto
import EngineAPI
import Foundation
import StorageAPI
import TestSupport
import Testing

@testable import Engine

/// The scheduler's view of PAM accounts: the `due` index holds the accounts with a rotation interval at the time
/// their rotation is due (a failed one waits 10 minutes), so a sweep reads the due accounts and nothing else.
@Suite struct RotationDueIndexTests {
    @Test func onlyDueAccountsAreFound() async throws {
        let storage = InMemoryStorage()
        let now = Date()
        _ = try await openEngine(storage, key: SymmetricKey(size: .bits256), clock: { now })
        func account(_ id: String, interval: String?, changed: TimeInterval, error: String? = nil, attempt: Date? = nil)
            -> Record
        {
            let info = PAMAccountInfo(
                id: id, resourceId: "r1", project: "p", username: id, createdAt: now.addingTimeInterval(-86400),
                passwordChangedAt: now.addingTimeInterval(-changed), rotationInterval: interval,
                lastRotationError: error)
            let body = PAMAccountBody(info: info, sealedPassword: Data([1]), lastRotationAttempt: attempt)
            return Record(
                kind: PAMKind.account, id: id, scope: "r1", name: id, body: (try? JSONEncoder().encode(body)) ?? Data(),
                createdAt: now)
        }
        let records = [
            account("due", interval: "1h", changed: 7200),
            account("not-yet", interval: "1d", changed: 3600),
            account("never", interval: nil, changed: 10 * 86400),
            account("failed-recently", interval: "1h", changed: 7200, error: "refused", attempt: now - 60),
            account("failed-long-ago", interval: "1h", changed: 7200, error: "refused", attempt: now - 3600),
        ]
        try await storage.withTransaction { tx in for r in records { try await tx.insert(r) } }
        let found = try await storage.withReadTransaction { tx in
            try await tx.lookup(
                IndexQuery(
                    kind: PAMKind.account, index: PAMService.PAMAccountIndex.due, scope: nil,
                    upper: IndexKey().appending(Record.millis(now) + 1), limit: 100))
        }
        #expect(Set(found.map(\.record.id)) == ["due", "failed-long-ago"])
        // A failure pushes the account's entry 10 minutes past the attempt: the next sweep does not retry at once.
        let retry = try await storage.withReadTransaction { tx in
            try await tx.lookup(
                IndexQuery(kind: PAMKind.account, index: PAMService.PAMAccountIndex.due, scope: nil, limit: 100))
        }
        let failed = try #require(retry.first { $0.record.id == "failed-recently" })
        #expect(failed.key == IndexKey().appending(Record.millis(now - 60 + 600)))
        #expect(!retry.contains { $0.record.id == "never" })
    }
}
