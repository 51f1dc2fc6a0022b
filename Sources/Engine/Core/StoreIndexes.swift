import EngineAPI
import Foundation
import StorageAPI

/// The secondary indexes the engine's lookups use. The store maintains them in the same transaction as every write
/// of the kind (StorageAPI/Index.swift); `GatehouseEngine.open` declares them, and bumping an indexer's version
/// rebuilds its entries at the next start.
extension GatehouseEngine {
    public static let indexCatalog = IndexCatalog([
        KeysService.kmsObjectIndexer, PAMService.pamSessionIndexer, PKIService.certificateIndexer,
        PAMService.pamGrantIndexer, PAMService.pamAccountIndexer,
        AccessService.membershipIndexer, AccessService.privilegeIndexer, AccessService.tokenIndexer,
        AccessService.tlsCertAuthIndexer,
    ])
}

extension KeysService {
    /// KMIP managed objects, per project. Every key ends with the Initial Date (milliseconds), so a descending scan
    /// of one value returns the newest objects first, the order Locate answers in.
    enum KMSIndex {
        static let name = "name"
        static let objectType = "type"
        static let algorithm = "alg"
        static let state = "state"
        static let group = "group"
        static let created = "created"
        static let custom = "custom"
        static let length = "len"
        static let digest = "digest"
        /// (link type, linked object id): the server's links (a key pair's halves, ReKey's replacement).
        static let link = "link"
        /// ("s" or "i", component type, text): each component of a certificate's subject and issuer.
        static let certificateField = "cert"
    }

    /// Only the metadata of a stored object (the sealed material is not decoded).
    private struct StoredMeta: Decodable {
        var meta: ManagedObject
    }

    static let kmsObjectIndexer = RecordIndexer(
        kind: objectKind, version: 3,
        [
            IndexDefinition(KMSIndex.name), IndexDefinition(KMSIndex.objectType), IndexDefinition(KMSIndex.algorithm),
            IndexDefinition(KMSIndex.state), IndexDefinition(KMSIndex.group), IndexDefinition(KMSIndex.created),
            IndexDefinition(KMSIndex.custom), IndexDefinition(KMSIndex.length), IndexDefinition(KMSIndex.digest),
            IndexDefinition(KMSIndex.link), IndexDefinition(KMSIndex.certificateField),
        ]
    ) { record in
        guard let json = try? StoredJSON.unpack(record.body),
            let m = try? JSONDecoder().decode(StoredMeta.self, from: json).meta
        else {
            return []
        }
        let t = Record.millis(m.initialDate)
        var out = [
            IndexEntry(KMSIndex.created, IndexKey().appending(t)),
            IndexEntry(KMSIndex.objectType, IndexKey(m.objectType.rawValue).appending(t)),
            IndexEntry(KMSIndex.state, IndexKey().appending(Int64(m.state.rawValue)).appending(t)),
        ]
        if let a = m.algorithm {
            out.append(IndexEntry(KMSIndex.algorithm, IndexKey().appending(Int64(a)).appending(t)))
        }
        if let l = m.cryptographicLength {
            out.append(IndexEntry(KMSIndex.length, IndexKey().appending(Int64(l)).appending(t)))
        }
        if let d = m.digest { out.append(IndexEntry(KMSIndex.digest, IndexKey().appending(bytes: d).appending(t))) }
        for n in m.names { out.append(IndexEntry(KMSIndex.name, IndexKey(n).appending(t))) }
        for g in m.objectGroups { out.append(IndexEntry(KMSIndex.group, IndexKey(g).appending(t))) }
        if let c = m.certificate {
            for f in Set(
                c.subject.map { CertificateFieldCondition(issuer: false, component: $0) }
                    + c.issuer.map { CertificateFieldCondition(issuer: true, component: $0) })
            {
                out.append(IndexEntry(KMSIndex.certificateField, KeysService.certificateFieldKey(f).appending(t)))
            }
        }
        for l in Set(m.links ?? []) { out.append(IndexEntry(KMSIndex.link, KeysService.linkKey(l).appending(t))) }
        for (attribute, values) in m.customAttributes ?? [:] {
            for v in values {
                out.append(IndexEntry(KMSIndex.custom, IndexKey(attribute).appending(bytes: v).appending(t)))
            }
        }
        return out
    }

    static func certificateFieldKey(_ f: CertificateFieldCondition) -> IndexKey {
        IndexKey(f.issuer ? "i" : "s", f.component.type, f.component.value)
    }

    static func linkKey(_ l: ObjectLink) -> IndexKey { IndexKey().appending(Int64(l.type)).appending(l.id) }

    /// The index ranges a Locate scans, merged newest first: one range (`locatePlan`), or for a Link condition the
    /// server's links and the client Link attributes with that value (a link can be either).
    static func locatePlans(_ filter: LocateFilter) -> [(index: String, lower: IndexKey, upper: IndexKey)] {
        guard filter.digest == nil, filter.name == nil, let l = filter.links.first else { return [locatePlan(filter)] }
        let server = linkKey(l.link)
        var plans = [(KMSIndex.link, server, server.prefixEnd)]
        if let value = l.clientValue {
            let client = IndexKey("Link").appending(bytes: value)
            plans.append((KMSIndex.custom, client, client.prefixEnd))
        }
        return plans
    }

    /// The index range a Locate scans: the most selective condition the filter has (a digest, a name, a certificate
    /// subject or issuer component, a client attribute, a group, the algorithm, the length, the state, the object type), else every object, narrowed by
    /// an Initial Date range when the scan is of every object. The rest of the filter is checked on each object the
    /// scan returns.
    static func locatePlan(_ filter: LocateFilter) -> (index: String, lower: IndexKey, upper: IndexKey) {
        func prefix(_ index: String, _ key: IndexKey) -> (String, IndexKey, IndexKey) { (index, key, key.prefixEnd) }
        if let d = filter.digest { return prefix(KMSIndex.digest, IndexKey().appending(bytes: d)) }
        if let n = filter.name { return prefix(KMSIndex.name, IndexKey(n)) }
        if let f = filter.certificateFields.first { return prefix(KMSIndex.certificateField, certificateFieldKey(f)) }
        // An attribute whose filter value is the implicit default also matches objects without it: not indexable.
        if let (attribute, value) = filter.customAttributes.sorted(by: { $0.key < $1.key })
            .first(where: { !filter.customAttributeDefaults.contains($0.key) })
        {
            return prefix(KMSIndex.custom, IndexKey(attribute).appending(bytes: value))
        }
        if let g = filter.objectGroup { return prefix(KMSIndex.group, IndexKey(g)) }
        if let a = filter.algorithm { return prefix(KMSIndex.algorithm, IndexKey().appending(Int64(a))) }
        if let l = filter.cryptographicLength { return prefix(KMSIndex.length, IndexKey().appending(Int64(l))) }
        if let s = filter.state { return prefix(KMSIndex.state, IndexKey().appending(Int64(s.rawValue))) }
        if let t = filter.objectType { return prefix(KMSIndex.objectType, IndexKey(t.rawValue)) }
        if filter.certificateType != nil {
            return prefix(KMSIndex.objectType, IndexKey(ManagedObjectType.certificate.rawValue))
        }
        if let range = filter.dateRanges[.initial] {
            // Whole seconds, inclusive: the milliseconds from the first second's start to the last one's end.
            let from = range.lowerBound.multipliedReportingOverflow(by: 1000)
            let to = (range.upperBound + 1).multipliedReportingOverflow(by: 1000)
            if !from.overflow, !to.overflow {
                return (
                    KMSIndex.created, IndexKey().appending(from.partialValue), IndexKey().appending(to.partialValue)
                )
            }
        }
        return prefix(KMSIndex.created, IndexKey())
    }
}

// MARK: - PAM sessions

extension PAMService {
    /// PAM sessions, per project; every key ends with the start time.
    enum PAMSessionIndex {
        static let started = "started"
        static let grantee = "grantee"
        static let resource = "resource"
        static let user = "user"
        static let reason = "reason"
        /// Ended sessions that still have a recording and no legal hold, by end time: what retention may delete.
        static let retained = "retained"
    }

    static let pamSessionIndexer = RecordIndexer(
        kind: PAMKind.session, version: 2,
        [
            IndexDefinition(PAMSessionIndex.started), IndexDefinition(PAMSessionIndex.grantee),
            IndexDefinition(PAMSessionIndex.resource),
            IndexDefinition(PAMSessionIndex.user), IndexDefinition(PAMSessionIndex.reason),
            IndexDefinition(PAMSessionIndex.retained),
        ]
    ) { record in
        guard let body = try? JSONDecoder().decode(PAMSessionBody.self, from: record.body) else { return [] }
        let s = body.info
        let t = Record.millis(s.startedAt)
        var entries = [
            IndexEntry(PAMSessionIndex.started, IndexKey().appending(t)),
            IndexEntry(PAMSessionIndex.grantee, IndexKey(s.granteeName).appending(t)),
            IndexEntry(PAMSessionIndex.resource, IndexKey(s.resourceName).appending(t)),
            IndexEntry(PAMSessionIndex.user, IndexKey(s.username).appending(t)),
            IndexEntry(PAMSessionIndex.reason, IndexKey(s.endReason?.rawValue ?? "open").appending(t)),
        ]
        if let ended = s.endedAt, body.sealedRecordingKey != nil, s.recordingDeletedAt == nil, s.legalHold == nil {
            entries.append(IndexEntry(PAMSessionIndex.retained, IndexKey().appending(Record.millis(ended))))
        }
        return entries
    }

    /// The index a session query scans (its most selective condition) and the key prefix before the start time.
    static func sessionPlan(_ q: PAMSessionQuery) -> (index: String, prefix: IndexKey) {
        if let g = q.granteeName { return (PAMSessionIndex.grantee, IndexKey(g)) }
        if let u = q.username { return (PAMSessionIndex.user, IndexKey(u)) }
        if let r = q.resourceName { return (PAMSessionIndex.resource, IndexKey(r)) }
        if let e = q.endReason { return (PAMSessionIndex.reason, IndexKey(e)) }
        return (PAMSessionIndex.started, IndexKey())
    }
}

// MARK: - Project memberships

/// Access-domain indexes that other domains read too (a caller's projects).
enum MembershipIndex {
    /// Across projects: the identity (a membership's name is its identity id, its scope the project).
    static let identity = "identity"
    /// Per project: the identity, for the project's member list in identity order, a page at a time.
    static let member = "member"
}

enum PrivilegeIndex {
    /// Across projects: (the identity a privilege is granted to, its project), so an authorization reads the
    /// caller's privileges in one project and an identity's deletion finds them in every project.
    static let identity = "identity"
}

enum TLSCertAuthIndex {
    /// Each common name a TLS Certificate Auth method accepts: a certificate login reads the methods that name its
    /// certificate, not every identity's.
    static let commonName = "cn"
}

extension AccessService {
    static let membershipIndexer = RecordIndexer(
        kind: AccessKind.membership, version: 2,
        [IndexDefinition(MembershipIndex.identity, scoped: false), IndexDefinition(MembershipIndex.member)]
    ) { record in
        record.name.map {
            [IndexEntry(MembershipIndex.identity, IndexKey($0)), IndexEntry(MembershipIndex.member, IndexKey($0))]
        } ?? []
    }
}

extension AccessService {
    static let privilegeIndexer = RecordIndexer(
        kind: AccessKind.privilege, version: 2, [IndexDefinition(PrivilegeIndex.identity, scoped: false)]
    ) { record in
        guard let p = try? JSONDecoder().decode(PrivilegeBody.self, from: record.body) else { return [] }
        return [IndexEntry(PrivilegeIndex.identity, IndexKey(p.identityId).appending(record.scope))]
    }

    /// Only the common names of a stored TLS Certificate Auth method.
    private struct AcceptedNames: Decodable {
        var allowedCommonNames: [String]
    }

    static let tlsCertAuthIndexer = RecordIndexer(
        kind: AccessKind.tlsCertAuth, version: 1, [IndexDefinition(TLSCertAuthIndex.commonName, scoped: false)]
    ) { record in
        guard let json = try? StoredJSON.unpack(record.body),
            let names = try? JSONDecoder().decode(AcceptedNames.self, from: json).allowedCommonNames
        else { return [] }
        return Set(names).map { IndexEntry(TLSCertAuthIndex.commonName, IndexKey($0)) }
    }
}

// MARK: - PAM accounts

extension PAMService {
    enum PAMAccountIndex {
        /// Across resources: when an account with a rotation interval is next due (a failed rotation waits before
        /// the next attempt), so the scheduler reads the accounts that are due, not every account.
        static let due = "due"
    }

    static let pamAccountIndexer = RecordIndexer(
        kind: PAMKind.account, version: 1, [IndexDefinition(PAMAccountIndex.due, scoped: false)]
    ) { record in
        guard let json = try? StoredJSON.unpack(record.body),
            let body = try? JSONDecoder().decode(PAMAccountBody.self, from: json),
            let due = rotationDue(body)
        else { return [] }
        return [IndexEntry(PAMAccountIndex.due, IndexKey().appending(Record.millis(due)))]
    }

    /// When a scheduled rotation of the account is due: its interval after the last change, and after a failure not
    /// before 10 minutes (or the interval, if shorter) after the last attempt. Nil without an interval.
    static func rotationDue(_ body: PAMAccountBody) -> Date? {
        guard let interval = body.info.rotationInterval, let seconds = DurationText.seconds(interval) else {
            return nil
        }
        let due = body.info.passwordChangedAt.addingTimeInterval(TimeInterval(seconds))
        guard body.info.lastRotationError != nil, let attempt = body.lastRotationAttempt else { return due }
        return max(due, attempt.addingTimeInterval(min(600, TimeInterval(seconds))))
    }
}

// MARK: - PAM grants

extension PAMService {
    enum PAMGrantIndex {
        /// Across accounts: (project, requested at), for a project's listing, newest first.
        static let project = "project"
        /// Per account: (grantee, expires at), for the grants a session may open under.
        static let grantee = "grantee"
        /// Across accounts: (project, stored status, time): the expiry of an approved grant (in force until then),
        /// the request time of the others.
        static let status = "status"
        /// Across accounts: (project, grantee name, requested at).
        static let granteeName = "grantee-name"
    }

    static let pamGrantIndexer = RecordIndexer(
        kind: PAMKind.grant, version: 2,
        [
            IndexDefinition(PAMGrantIndex.project, scoped: false), IndexDefinition(PAMGrantIndex.grantee),
            IndexDefinition(PAMGrantIndex.status, scoped: false),
            IndexDefinition(PAMGrantIndex.granteeName, scoped: false),
        ]
    ) { record in
        guard let g = try? JSONDecoder().decode(PAMGrantBody.self, from: record.body).info else { return [] }
        let requested = Record.millis(g.requestedAt)
        let statusTime = g.status == .approved ? g.expiresAt.map(Record.millis) ?? 0 : requested
        return [
            IndexEntry(PAMGrantIndex.project, IndexKey(g.project).appending(requested)),
            IndexEntry(PAMGrantIndex.grantee, IndexKey(g.granteeId).appending(g.expiresAt.map(Record.millis) ?? 0)),
            IndexEntry(PAMGrantIndex.status, IndexKey(g.project, g.status.rawValue).appending(statusTime)),
            IndexEntry(PAMGrantIndex.granteeName, IndexKey(g.project, g.granteeName).appending(requested)),
        ]
    }

    /// The index range a grant listing scans (newest first): for a status, that status's entries (an approved grant
    /// is in force until its expiry, so `approved` and `expired` split one range at now); else a grantee's; else the
    /// project's.
    static func grantPlan(project: String, _ q: PAMGrantQuery, now: Date) -> (
        index: String, lower: IndexKey, upper: IndexKey
    ) {
        switch q.status {
        case .approved?:
            let base = IndexKey(project, PAMGrantInfo.Status.approved.rawValue)
            return (PAMGrantIndex.status, base.appending(Record.millis(now) + 1), base.prefixEnd)
        case .expired?:
            let base = IndexKey(project, PAMGrantInfo.Status.approved.rawValue)
            return (PAMGrantIndex.status, base, base.appending(Record.millis(now) + 1))
        case let status?:
            let base = IndexKey(project, status.rawValue)
            return (PAMGrantIndex.status, base, base.prefixEnd)
        case nil:
            if let g = q.granteeName {
                let base = IndexKey(project, g)
                return (PAMGrantIndex.granteeName, base, base.prefixEnd)
            }
            let base = IndexKey(project)
            return (PAMGrantIndex.project, base, base.prefixEnd)
        }
    }
}

// MARK: - Certificates

extension PKIService {
    enum CertificateIndex {
        /// (stored status, notAfter): what expires when, per project (the expiry alerts' index).
        static let expiry = "expiry"
        /// (notAfter).
        static let notAfter = "not-after"
        /// (CA id, notAfter).
        static let ca = "ca"
        /// (profile id, notAfter).
        static let profile = "profile"
        /// (name, notAfter), one entry per distinct name: the common name and each subject alternative name,
        /// lowercased.
        static let name = "name"
    }

    static let certificateIndexer = RecordIndexer(
        kind: PKIKind.certificate, version: 2,
        [
            IndexDefinition(CertificateIndex.expiry), IndexDefinition(CertificateIndex.notAfter),
            IndexDefinition(CertificateIndex.ca),
            IndexDefinition(CertificateIndex.profile), IndexDefinition(CertificateIndex.name),
        ]
    ) { record in
        guard let c = try? JSONDecoder().decode(CertificateBody.self, from: record.body).info else { return [] }
        let end = Record.millis(c.notAfter)
        var entries = [
            IndexEntry(CertificateIndex.expiry, IndexKey(c.status.rawValue).appending(end)),
            IndexEntry(CertificateIndex.notAfter, IndexKey().appending(end)),
            IndexEntry(CertificateIndex.ca, IndexKey(c.caId ?? "").appending(end)),
            IndexEntry(CertificateIndex.profile, IndexKey(c.profileId ?? "").appending(end)),
        ]
        for name in Set(([c.commonName] + c.altNames).map { $0.lowercased() }).sorted() where !name.isEmpty {
            entries.append(IndexEntry(CertificateIndex.name, IndexKey(name).appending(end)))
        }
        return entries
    }

    /// The index range a certificate query scans: the most selective filter given (name, CA, profile, status), its
    /// notAfter range bounded by the expiry filters (and by now, for the active and expired statuses).
    func certificatePlan(_ q: CertificateQuery, now: Date) -> (index: String, lower: IndexKey, upper: IndexKey) {
        var from = q.expiresAfter.map(Record.millis)
        var until = q.expiresBefore.map(Record.millis)
        let prefix: IndexKey
        let index: String
        if let name = q.name {
            (index, prefix) = (CertificateIndex.name, IndexKey(name.lowercased()))
        } else if let ca = q.caId {
            (index, prefix) = (CertificateIndex.ca, IndexKey(ca))
        } else if let profile = q.profileId {
            (index, prefix) = (CertificateIndex.profile, IndexKey(profile))
        } else if let status = q.status {
            index = CertificateIndex.expiry
            let millis = Record.millis(now)
            switch status {
            case .revoked: prefix = IndexKey(CertificateInfo.Status.revoked.rawValue)
            case .active:
                prefix = IndexKey(CertificateInfo.Status.active.rawValue)
                from = max(from ?? millis, millis)
            case .expired:
                prefix = IndexKey(CertificateInfo.Status.active.rawValue)
                until = min(until ?? millis, millis)
            }
        } else {
            (index, prefix) = (CertificateIndex.notAfter, IndexKey())
        }
        let lower = from.map { prefix.appending($0) } ?? prefix
        let upper = until.map { prefix.appending($0) } ?? prefix.prefixEnd
        return (index, lower, upper)
    }
}

// MARK: - Paging over an index

extension EngineService {
    /// One page of the records in an index range, in key order (descending: newest first for keys ending with a
    /// time), keeping those `accept` turns into an item. The `next` token names the index, so a token from another
    /// query is refused rather than misread. Reads the index in chunks until `limit` items are found or the range
    /// ends.
    func indexedPage<T: Sendable>(
        kind: String, index: String, scope: String?, lower: IndexKey, upper: IndexKey?, descending: Bool,
        after: String?,
        limit: Int, accept: @escaping @Sendable (Record) throws -> T?
    ) async throws -> Page<T> {
        guard (1...1000).contains(limit) else { throw EngineError(.invalidArgument, "limit must be from 1 to 1000") }
        var cursor: IndexCursor?
        if let after {
            let parts = after.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0] == index, let c = IndexCursor(token: parts[1]) else {
                throw EngineError(.invalidArgument, "the 'after' cursor does not belong to this query")
            }
            cursor = c
        }
        var query = IndexQuery(
            kind: kind, index: index, scope: scope, lower: lower, upper: upper, after: cursor, descending: descending,
            limit: min(500, max(50, limit + 1)))
        var items: [T] = []
        var lastCursor: IndexCursor?
        while true {
            let current = query
            let chunk = try await read { tx in try await tx.lookup(current) }
            for hit in chunk {
                guard let item = try accept(hit.record) else { continue }
                if items.count == limit {
                    // One more match exists: the page ends at the previous one.
                    return Page(items: items, next: lastCursor.map { index + "." + $0.token })
                }
                items.append(item)
                lastCursor = hit.cursor
            }
            guard chunk.count == query.limit, let last = chunk.last else { return Page(items: items, next: nil) }
            query.after = last.cursor
        }
    }
}

extension AccessService {
    enum TokenIndex {
        /// Every access token by its expiry (milliseconds), unscoped: the sweep of expired tokens reads it.
        static let expires = "expires"
    }

    /// Only the expiry of a stored token.
    private struct TokenExpiry: Decodable {
        var expiresAt: Date
    }

    static let tokenIndexer = RecordIndexer(
        kind: AccessKind.accessToken, version: 1, [IndexDefinition(TokenIndex.expires, scoped: false)]
    ) { record in
        guard let json = try? StoredJSON.unpack(record.body),
            let token = try? JSONDecoder().decode(TokenExpiry.self, from: json)
        else { return [] }
        return [IndexEntry(TokenIndex.expires, IndexKey().appending(Record.millis(token.expiresAt)))]
    }
}
