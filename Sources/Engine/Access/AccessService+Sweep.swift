import EngineAPI
import Foundation
import StorageAPI

// Expired access tokens do not stay in the store forever.
extension AccessService {
    /// How long an expired token is kept before the sweep deletes it: long enough that a client retrying with it is
    /// told "token expired" for a while, short enough that logins and console sign-ins do not pile up.
    static let expiredTokenGrace: TimeInterval = 86400
    static let tokenSweepPage = 200

    /// Deletes the access tokens (API, login and console session tokens, revoked or not) that expired more than
    /// `expiredTokenGrace` ago. They are read from the `expires` index, so a sweep costs what expired, not how many
    /// tokens there are. Each page is deleted in one transaction that checks every expiry again (a token renewed
    /// since the scan stays), and audited as one `token.expired.delete` with the count. Nodes sweeping at once
    /// conflict on the same page; the loser stops and the next sweep goes on. Returns how many were deleted.
    public func deleteExpiredTokens() async -> Int {
        let cutoff = clock().addingTimeInterval(-Self.expiredTokenGrace)
        let ctx = CallContext.system("token-sweep")
        var deleted = 0
        let expired = IndexQuery(
            kind: AccessKind.accessToken, index: TokenIndex.expires, scope: nil,
            upper: IndexKey().appending(Record.millis(cutoff)), limit: Self.tokenSweepPage)
        do {
            try await forEachPage(expired) { hits in
                let ids = hits.map(\.record.id)
                do {
                    deleted += try await self.transact { tx in
                        var n = 0
                        for id in ids {
                            guard let record = try await tx.get(kind: AccessKind.accessToken, id: id),
                                try self.decode(TokenBody.self, record).expiresAt < cutoff
                            else { continue }
                            try await tx.delete(kind: AccessKind.accessToken, id: id, expectedVersion: record.version)
                            n += 1
                        }
                        if n > 0 {
                            try await self.audit.append(
                                self.event(
                                    ctx, "token.expired.delete", project: nil,
                                    ["count": String(n), "expiredBefore": PAMService.iso(cutoff)]), tx)
                        }
                        return n
                    }
                    return true
                } catch {
                    // Another node deleted this page first (a conflict), or the store is away: the next sweep goes on.
                    logger.notice("the expired token sweep stopped early", metadata: ["error": "\(error)"])
                    return false
                }
            }
        } catch {
            logger.error("cannot list expired access tokens", metadata: ["error": "\(error)"])
        }
        return deleted
    }
}
