import EngineAPI
import Foundation
import StorageAPI

struct NoticeBody: Codable {
    var notice: ExpiryNotice
    var delivered: Bool
    var claimedAt: Date
}

/// Certificate expiry alerts: rules per project, evaluated by a scheduled job that any number of nodes may run.
/// Each (rule, certificate) pair is claimed by inserting a notice record whose id is unique, so exactly one node
/// reports it; a claim not confirmed in time is taken over by the next run.
extension PKIService {
    static let alertKind = "pki-alert"
    static let noticeKind = "pki-alert-notice"
    static let alertFields = ["commonName", "subject", "altName", "profile", "caId", "serialNumber"]
    static let alertOperators = ["equals", "notEquals", "contains", "startsWith", "endsWith", "glob"]

    public func createAlert(_ ctx: CallContext, project: String, _ spec: AlertSpec) async throws -> AlertInfo {
        try Self.validateName(project, "project")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .pkiAlerts, .create))
        try Self.validateName(spec.name, "alert name")
        guard let before = DurationText.seconds(spec.alertBefore), before > 0 else {
            throw EngineError(.invalidArgument, "alertBefore must be a duration such as 30d")
        }
        _ = before
        guard !spec.recipients.isEmpty, spec.recipients.count <= 20 else {
            throw EngineError(.invalidArgument, "recipients must list 1–20 webhook URLs")
        }
        for r in spec.recipients {
            guard let url = URL(string: r), url.scheme == "https" || url.scheme == "http", url.host != nil,
                r.utf8.count <= 2048
            else {
                throw EngineError(.invalidArgument, "recipient '\(r)' is not an http(s) URL")
            }
        }
        guard spec.filters.count <= 20 else { throw EngineError(.invalidArgument, "at most 20 filters") }
        for f in spec.filters {
            guard Self.alertFields.contains(f.field) else {
                throw EngineError(
                    .invalidArgument, "filter field must be one of \(Self.alertFields.joined(separator: ", "))")
            }
            guard Self.alertOperators.contains(f.operator) else {
                throw EngineError(
                    .invalidArgument, "filter operator must be one of \(Self.alertOperators.joined(separator: ", "))")
            }
            guard f.value.utf8.count <= 256 else { throw EngineError(.invalidArgument, "filter value is too long") }
        }
        let now = clock()
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let info = AlertInfo(id: RecordID.make(), project: project, spec: spec, createdAt: now)
            try await tx.insert(
                Record(
                    kind: Self.alertKind, id: info.id, scope: project, name: spec.name, body: try Self.encode(info),
                    createdAt: now))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.alert.create", project: project, ["alertId": info.id, "name": spec.name]), tx)
            return info
        }
    }

    public func listAlerts(_ ctx: CallContext, project: String) async throws -> [AlertInfo] {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .pkiAlerts, .read))
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            return try await tx.listEvery(kind: Self.alertKind, scope: project).map {
                try self.decode(AlertInfo.self, $0)
            }
        }
    }

    public func deleteAlert(_ ctx: CallContext, id: String) async throws {
        let (record, info) = try await transact { tx -> (Record, AlertInfo) in
            guard id.utf8.count <= 64, let r = try await tx.get(kind: Self.alertKind, id: id) else {
                throw EngineError(.notFound, "alert not found")
            }
            return (r, try self.decode(AlertInfo.self, r))
        }
        let decision = try await authorize(ctx, AccessRequest(.project(info.project), .pkiAlerts, .delete))
        try await transact { tx in
            try await tx.delete(kind: Self.alertKind, id: id, expectedVersion: record.version)
            try await self.audit.append(
                self.allowed(ctx, decision, "pki.alert.delete", project: info.project, ["alertId": id]), tx)
        }
    }

    static func matches(_ f: AlertFilter, _ c: CertificateInfo) -> Bool {
        let values: [String]
        switch f.field {
        case "commonName": values = [c.commonName]
        case "subject": values = [c.subject]
        case "altName": values = c.altNames.map { String($0.split(separator: ":", maxSplits: 1).last ?? "") }
        case "profile": values = [c.profileId ?? ""]
        case "caId": values = [c.caId ?? ""]
        case "serialNumber": values = [c.serialNumber]
        default: return false
        }
        func one(_ v: String) -> Bool {
            switch f.operator {
            case "equals": return v == f.value
            case "notEquals": return v != f.value
            case "contains": return v.contains(f.value)
            case "startsWith": return v.hasPrefix(f.value)
            case "endsWith": return v.hasSuffix(f.value)
            case "glob": return Glob.matches(f.value, v, separator: ".")
            default: return false
            }
        }
        return f.operator == "notEquals" ? values.allSatisfy(one) : values.contains(where: one)
    }

    public func claimExpiryNotices(_ ctx: CallContext, retryAfter: TimeInterval) async throws -> [ExpiryNotice] {
        guard ctx.principal.method == .system else {
            throw EngineError(.permissionDenied, "only the daemon runs expiry alerts")
        }
        let now = clock()
        let rules = try await transact(relaxed: true) { tx in
            try await tx.listEvery(kind: Self.alertKind, scope: nil).map {
                try self.decode(AlertInfo.self, $0)
            }
        }
        var claimed: [ExpiryNotice] = []
        for rule in rules {
            guard let before = DurationText.seconds(rule.spec.alertBefore) else { continue }
            // Only the active certificates whose notAfter falls in (now, now + alertBefore]: a range of the expiry
            // index, so a run reads what is due, not every certificate of the project.
            let active = IndexKey(CertificateInfo.Status.active.rawValue)
            var query = IndexQuery(
                kind: PKIKind.certificate, index: CertificateIndex.expiry, scope: rule.project,
                lower: active.appending(Record.millis(now) + 1),
                upper: active.appending(Record.millis(now.addingTimeInterval(TimeInterval(before))) + 1),
                limit: 500)
            var due: [CertificateInfo] = []
            while true {
                let current = query
                let batch = try await read { tx in try await tx.lookup(current) }
                for hit in batch {
                    let c = try decode(CertificateBody.self, hit.record).info
                    guard c.status == .active, c.notAfter > now,
                        c.notAfter.timeIntervalSince(now) <= TimeInterval(before),
                        rule.spec.filters.allSatisfy({ Self.matches($0, c) })
                    else { continue }
                    due.append(c)
                }
                guard batch.count == query.limit, let last = batch.last else { break }
                query.after = last.cursor
            }
            for c in due {
                let notice = ExpiryNotice(
                    id: "\(rule.id)/\(c.serialNumber)", alertId: rule.id, alertName: rule.spec.name,
                    project: rule.project,
                    serialNumber: c.serialNumber, commonName: c.commonName, notAfter: c.notAfter,
                    recipients: rule.spec.recipients)
                let mine: Bool
                do {
                    mine = try await transact { tx -> Bool in
                        if var existing = try await tx.get(kind: Self.noticeKind, id: notice.id) {
                            var body = try self.decode(NoticeBody.self, existing)
                            // Delivered, or claimed recently by some node: not ours.
                            guard !body.delivered, now.timeIntervalSince(body.claimedAt) >= retryAfter else {
                                return false
                            }
                            body.claimedAt = now
                            existing.body = try Self.encode(body)
                            existing.updatedAt = now
                            _ = try await tx.update(existing)  // a concurrent claimer loses on the version
                            return true
                        }
                        try await tx.insert(
                            Record(
                                kind: Self.noticeKind, id: notice.id, scope: rule.project, name: nil,
                                body: try Self.encode(NoticeBody(notice: notice, delivered: false, claimedAt: now)),
                                createdAt: now))
                        try await self.audit.append(
                            self.event(
                                ctx, "pki.alert.expiry", project: rule.project,
                                [
                                    "alertId": rule.id, "serialNumber": c.serialNumber, "commonName": c.commonName,
                                    "notAfter": AuditChain.timestamp(c.notAfter),
                                ]),
                            tx)
                        return true
                    }
                } catch let e as EngineError where e.code == .alreadyExists || e.code == .conflict {
                    mine = false  // another node claimed it first
                }
                if mine { claimed.append(notice) }
            }
        }
        return claimed
    }

    public func confirmExpiryNotice(_ ctx: CallContext, id: String) async throws {
        guard ctx.principal.method == .system else {
            throw EngineError(.permissionDenied, "only the daemon runs expiry alerts")
        }
        try await transact { tx in
            guard var record = try await tx.get(kind: Self.noticeKind, id: id) else {
                throw EngineError(.notFound, "notice not found")
            }
            var body = try self.decode(NoticeBody.self, record)
            body.delivered = true
            record.body = try Self.encode(body)
            record.updatedAt = self.clock()
            _ = try await tx.update(record)
        }
    }
}
