import EngineAPI
import Foundation
import StorageAPI

/// A project's PAM settings (kind `pam-settings`, id = the project).
struct PAMSettingsBody: Codable, Sendable {
    var info: PAMProjectSettings
}

extension PAMKind {
    static let settings = "pam-settings"
}

// MARK: - Settings, legal hold and recording retention

extension PAMService {
    public func getPAMSettings(_ ctx: CallContext, project: String) async throws -> PAMProjectSettings {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .project, .read))
        return try await read { tx in
            _ = try await self.requireProject(project, tx)
            guard let r = try await tx.get(kind: PAMKind.settings, id: project) else {
                return PAMProjectSettings(project: project)
            }
            return try self.decode(PAMSettingsBody.self, r).info
        }
    }

    public func setPAMSettings(_ ctx: CallContext, _ settings: PAMProjectSettings) async throws -> PAMProjectSettings {
        let project = settings.project
        try Self.validateName(project, "project")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .project, .edit))
        var info = PAMProjectSettings(
            project: project, recordingRetention: settings.recordingRetention, updatedAt: clock())
        if let r = info.recordingRetention, r.isEmpty || r == "none" { info.recordingRetention = nil }
        // What the API documents: 1 to 7 digits without a leading zero, then s, m, h or d.
        if let r = info.recordingRetention,
            DurationText.seconds(r) == nil || r.count > 8 || r.first == "0"
                || !r.dropLast().allSatisfy({ $0.isASCII && $0.isNumber })
        {
            throw EngineError(
                .invalidArgument, "recordingRetention must be a duration such as 90d or 8h, or null to keep recordings")
        }
        let final = info
        try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let body = try Self.encode(PAMSettingsBody(info: final))
            if var existing = try await tx.get(kind: PAMKind.settings, id: project) {
                existing.body = body
                _ = try await tx.update(existing)
            } else {
                try await tx.insert(
                    Record(
                        kind: PAMKind.settings, id: project, scope: project, name: nil, body: body,
                        createdAt: final.updatedAt ?? Date()))
            }
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pam.settings.update", project: project,
                    ["recordingRetention": final.recordingRetention ?? "none"]), tx)
        }
        return final
    }

    public func setPAMLegalHold(_ ctx: CallContext, sessionId: String, reason: String?) async throws -> PAMSessionInfo {
        if let reason, reason.trimmingCharacters(in: .whitespaces).isEmpty || reason.utf8.count > 1000 {
            throw EngineError(.invalidArgument, "a legal hold needs a reason of 1 to 1000 bytes")
        }
        let (_, body) = try await read { tx in try await self.pamSession(sessionId, tx) }
        let decision = try await authorize(
            ctx, AccessRequest(.project(body.info.project), .pamSessions, .edit, ["name": body.info.resourceName]))
        let now = clock()
        return try await transact { tx in
            var (record, body) = try await self.pamSession(sessionId, tx)
            if reason != nil, let deleted = body.info.recordingDeletedAt {
                throw EngineError(
                    .wrongState,
                    "the recording of this session was deleted at \(Self.iso(deleted)); there is nothing left to hold")
            }
            if reason != nil, let claim = body.retentionClaimUntil, claim > now {
                throw EngineError(
                    .wrongState, "the recording of this session is being deleted under the project's retention")
            }
            let type: String
            if let reason {
                body.info.legalHold = PAMLegalHold(by: decision.caller.name, at: now, reason: reason)
                type = "pam.session.hold"
            } else {
                guard body.info.legalHold != nil else { return body.info }
                body.info.legalHold = nil
                type = "pam.session.release"
            }
            record.body = try Self.encode(body)
            _ = try await tx.update(record)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, type, project: body.info.project, ["sessionId": sessionId, "reason": reason ?? ""]),
                tx)
            return body.info
        }
    }

    func pamSession(_ id: String, _ tx: any StorageTransaction) async throws -> (Record, PAMSessionBody) {
        guard id.utf8.count <= 64, let r = try await tx.get(kind: PAMKind.session, id: id) else {
            throw EngineError(.notFound, "session '\(id.prefix(64))' not found")
        }
        return (r, try decode(PAMSessionBody.self, r))
    }

    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    /// Whether retention deleted the session's recording (for the shipper, which must not upload a spool copy of it
    /// again). False when the store cannot say.
    public func isPAMRecordingDeleted(sessionId: String) async -> Bool {
        guard let (_, body) = try? await read({ tx in try await self.pamSession(sessionId, tx) }) else { return false }
        return body.info.recordingDeletedAt != nil
    }

    /// For every project with a retention: the sessions whose recording outlived it, oldest end first, read from the
    /// `retained` index (ended sessions that still have a recording and no legal hold), so the cost follows what
    /// expires, not the history. Each one is claimed (one node deletes it; a claim lapses after 5 minutes), its
    /// bytes deleted from the recording store, and then, in one transaction, its data key destroyed, the deletion
    /// recorded on the session and audited (`pam.recording.delete`).
    public func deleteExpiredPAMRecordings() async -> Int {
        let now = clock()
        var deleted = 0
        var after: String?
        // Projects with settings, a page at a time.
        while true {
            let page: [PAMProjectSettings]
            do {
                let cursor = after
                page = try await read { tx in
                    try await tx.list(kind: PAMKind.settings, scope: nil, afterID: cursor, limit: 100).map {
                        try self.decode(PAMSettingsBody.self, $0).info
                    }
                }
            } catch {
                logger.error("cannot list PAM settings for recording retention", metadata: ["error": "\(error)"])
                return deleted
            }
            for settings in page {
                guard let retention = settings.recordingRetention, let seconds = DurationText.seconds(retention) else {
                    continue
                }
                deleted += await deleteExpiredRecordings(
                    project: settings.project, retention: retention,
                    cutoff: now.addingTimeInterval(-TimeInterval(seconds)))
            }
            guard page.count == 100, let last = page.last else { return deleted }
            after = last.project
        }
    }

    func deleteExpiredRecordings(project: String, retention: String, cutoff: Date) async -> Int {
        var deleted = 0
        let expired = IndexQuery(
            kind: PAMKind.session, index: PAMSessionIndex.retained, scope: project,
            upper: IndexKey().appending(Record.millis(cutoff)), limit: 100)
        do {
            try await forEachPage(expired) { hits in
                for hit in hits where await self.deleteRecording(hit.record.id, retention: retention, cutoff: cutoff) {
                    deleted += 1
                }
                return true
            }
        } catch {
            logger.error("cannot list expired recordings", metadata: ["project": "\(project)", "error": "\(error)"])
        }
        return deleted
    }

    /// Deletes one expired recording; false when another node holds it, it is no longer due, or the store failed.
    func deleteRecording(_ sessionId: String, retention: String, cutoff: Date) async -> Bool {
        let now = clock()
        let ctx = CallContext.system("pam-retention")
        // The claim: one node at a time deletes a recording.
        let claimed: PAMSessionBody?
        do {
            claimed = try await transact { tx -> PAMSessionBody? in
                var (record, body) = try await self.pamSession(sessionId, tx)
                guard let ended = body.info.endedAt, ended < cutoff, body.info.legalHold == nil,
                    body.info.recordingDeletedAt == nil,
                    (body.retentionClaimUntil ?? .distantPast) <= now
                else { return nil }
                body.retentionClaimUntil = now.addingTimeInterval(300)
                record.body = try Self.encode(body)
                _ = try await tx.update(record)
                return body
            }
        } catch {
            // Another node claimed it first (a version conflict), or the store is away: the next sweep sees it again.
            return false
        }
        guard let claimed else { return false }
        var bytes = 0
        if let recordings {
            do {
                bytes = try await recordings.length(sessionId: sessionId)
                try await recordings.delete(sessionId: sessionId)
            } catch {
                logger.error(
                    "cannot delete an expired session recording from the store",
                    metadata: ["sessionId": "\(sessionId)", "error": "\(error)"])
                return false
            }
        }
        let deletedBytes = String(bytes)
        do {
            try await transact { tx in
                var (record, body) = try await self.pamSession(sessionId, tx)
                body.info.recordingDeletedAt = now
                body.info.recordingDeletion = "retention \(retention) of project \(claimed.info.project)"
                body.sealedRecordingKey = nil  // the data key goes too: no copy left anywhere can be read
                body.retentionClaimUntil = nil
                record.body = try Self.encode(body)
                _ = try await tx.update(record)
                try await self.audit.append(
                    self.event(
                        ctx, "pam.recording.delete", project: claimed.info.project,
                        [
                            "sessionId": sessionId, "reason": "retention", "retention": retention,
                            "bytes": deletedBytes,
                            "endedAt": Self.iso(claimed.info.endedAt ?? now),
                        ]), tx)
            }
        } catch {
            logger.error(
                "cannot record the deletion of a session recording",
                metadata: ["sessionId": "\(sessionId)", "error": "\(error)"])
            return false
        }
        logger.info(
            "deleted an expired session recording",
            metadata: ["sessionId": "\(sessionId)", "retention": "\(retention)"])
        return true
    }
}
