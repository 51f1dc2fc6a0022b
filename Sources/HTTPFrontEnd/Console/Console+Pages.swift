import EngineAPI
import Foundation
import Hummingbird

/// The console's pages: each is the engine calls the admin API makes for the same data, turned into view data.
extension Console {
    typealias Row = [String: Any]

    // MARK: - Overview

    func overview(_ call: Call, _ request: Request) async throws -> ConsolePage {
        let (ready, detail) = await readiness()
        let q = Query(request)
        let projects = try await services.access.listProjects(call.ctx, after: q["after"], limit: try q.limit())
        var data: Row = [
            "ready": ready,
            "readiness": detail.split(separator: "\n").map { ["line": String($0)] },
            "projects": projects.items.map { p in
                ["slug": p.slug, "description": p.description, "created": ConsoleViews.time(p.createdAt)]
            },
        ]
        if let next = projects.next { data["next"] = q.link("/console", replacing: ["after": next]) }
        return ConsolePage(title: "Overview", template: "overview", data: data)
    }

    func projectOverview(_ call: Call, _ project: String) async throws -> ConsolePage {
        let now = Date()
        var data: Row = ["slug": project]
        // A member whose roles do not include reading the project itself still sees the panels it may.
        do {
            data["description"] = try await services.access.getProject(call.ctx, slug: project).description
        } catch let e as EngineError where e.code == .permissionDenied {
            data["description"] = ""
        }
        // Each panel is its own engine call: a viewer without one permission still sees the others.
        data["openSessions"] = await panel {
            let page = try await services.pam.listPAMSessions(
                call.ctx, project: project, PAMSessionQuery(endReason: "open", limit: 50))
            return [
                "rows": page.items.map { views.sessionRow($0) }, "more": page.next != nil,
                "count": ConsoleViews.count(page.items.count, more: page.next != nil),
            ]
        }
        data["grants"] = await panel {
            let page = try await services.pam.listPAMGrants(
                call.ctx, project: project, PAMGrantQuery(status: .approved, limit: 50))
            return [
                "rows": page.items.map { views.grantRow($0) }, "more": page.next != nil,
                "count": ConsoleViews.count(page.items.count, more: page.next != nil),
            ]
        }
        data["expiries"] = await panel {
            let page = try await services.pki.listCertificates(
                call.ctx, project: project, CertificateQuery(status: .active, expiresAfter: now, limit: 10))
            return ["rows": page.items.map { views.certificateRow($0, now: now) }]
        }
        data["cas"] = await panel {
            let cas = try await services.pki.listCAs(call.ctx, project: project)
            return ["count": String(cas.count)]
        }
        data["resources"] = await panel {
            let resources = try await services.pam.listPAMResources(call.ctx, project: project)
            return ["count": String(resources.count)]
        }
        return ConsolePage(title: "Project \(project)", template: "project", data: data, project: project)
    }

    /// A panel's data, or `denied` with the engine's message when the caller may not see it.
    func panel(_ load: () async throws -> Row) async -> Row {
        do {
            return try await load()
        } catch let e as EngineError {
            return ["denied": e.message]
        } catch {
            return ["denied": "unavailable"]
        }
    }

    // MARK: - PAM sessions

    func sessions(_ call: Call, _ project: String, _ request: Request) async throws -> ConsolePage {
        let q = Query(request)
        let query = PAMSessionQuery(
            since: try q.date("since"), until: try q.date("until"), granteeName: q["identity"],
            resourceName: q["resource"], username: q["account"], endReason: q["end"], after: q["after"],
            limit: try q.limit(default: 100))
        let page = try await services.pam.listPAMSessions(call.ctx, project: project, query)
        var data: Row = [
            "project": project,
            "rows": page.items.map { views.sessionRow($0) },
            "filters": [
                "since": q["since"] ?? "", "until": q["until"] ?? "", "identity": q["identity"] ?? "",
                "resource": q["resource"] ?? "", "account": q["account"] ?? "",
            ],
            "endReasons": ConsoleViews.endReasons.map { r in
                ["value": r, "selected": q["end"] == r] as Row
            },
            "shown": String(page.items.count),
        ]
        if let next = page.next {
            data["next"] = q.link(
                "/console/projects/\(ConsoleViews.path(project))/sessions", replacing: ["after": next])
        }
        return ConsolePage(title: "PAM sessions", template: "sessions", data: data, project: project)
    }

    func replay(_ call: Call, _ id: String) async throws -> ConsolePage {
        let recording: PAMRecording
        do {
            recording = try await services.pam.readPAMRecording(call.ctx, sessionId: id)
        } catch let e as EngineError where e.code == .gone {
            return ConsolePage(
                title: "Recording deleted", status: .gone, template: "error", data: ["message": e.message])
        }
        let timeline = ConsoleViews.timeline(recording.events)
        var data = views.sessionRow(recording.session)
        data["integrity"] = recording.integrity
        data["integrityDetail"] = recording.integrityDetail ?? ""
        if recording.session.endedAt == nil && recording.integrity == "incomplete" {
            // Still being recorded: incomplete only because it has not ended.
            data["integrity_running"] = true
        } else {
            data["integrity_" + recording.integrity] = true
        }
        data["timelineRows"] = ConsoleViews.timelineHTML(timeline.rows)
        data["statements"] = String(timeline.statements)
        data["events"] = String(recording.events.count)
        return ConsolePage(
            title: "Session \(recording.session.granteeName) → \(recording.session.resourceName)",
            template: "replay", data: data, project: recording.session.project)
    }

    // MARK: - Audit

    func audit(_ call: Call, _ request: Request) async throws -> ConsolePage {
        let q = Query(request)
        let search = AuditSearch(
            type: q["type"], actor: q["actor"], project: q["project"], since: try q.date("since"),
            until: try q.date("until"), newestFirst: true, cursor: q["cursor"], limit: try q.limit(default: 100))
        let page = try await services.audit.searchAudit(call.ctx, search)
        var data: Row = [
            "rows": page.items.map { views.auditRow($0) },
            "filters": [
                "type": q["type"] ?? "", "actor": q["actor"] ?? "", "project": q["project"] ?? "",
                "since": q["since"] ?? "", "until": q["until"] ?? "",
            ],
        ]
        if let next = page.next { data["next"] = q.link("/console/audit", replacing: ["cursor": next]) }
        return ConsolePage(title: "Audit log", template: "audit", data: data)
    }

    func auditVerify(_ call: Call) async throws -> ConsolePage {
        let result = try await services.audit.verifyAudit(call.ctx)
        return ConsolePage(
            title: "Audit chain verification", template: "verify",
            data: [
                "intact": result.isIntact, "checked": String(result.checked),
                "problems": result.problems.map { ["line": $0] },
            ])
    }

    // MARK: - Certificates

    func certificates(_ call: Call, _ project: String, _ request: Request) async throws -> ConsolePage {
        let q = Query(request)
        let now = Date()
        let status = try q["status"].map { s in
            guard let status = CertificateInfo.Status(rawValue: s) else {
                throw ConsoleInputError(message: "status must be active, revoked or expired")
            }
            return status
        }
        let cas = try await services.pki.listCAs(call.ctx, project: project)
        let profiles = try await services.pki.listProfiles(call.ctx, project: project)
        let caNames = Dictionary(cas.map { ($0.id, $0.subject.commonName) }, uniquingKeysWith: { a, _ in a })
        let profileNames = Dictionary(profiles.map { ($0.id, $0.slug) }, uniquingKeysWith: { a, _ in a })
        let page = try await services.pki.listCertificates(
            call.ctx, project: project,
            CertificateQuery(
                caId: q["ca"], profileId: q["profile"], status: status, name: q["name"], after: q["after"],
                limit: try q.limit(default: 100)))
        var data: Row = [
            "project": project,
            "cas": cas.map { ca in
                var row: Row = [
                    "id": ca.id, "name": ca.subject.commonName, "dn": ca.dn, "type": ca.type.rawValue,
                    "status": ca.status.rawValue, "crl": "/pki/crl/\(ConsoleViews.path(ca.id)).crl",
                    "selected": q["ca"] == ca.id,
                ]
                if let notAfter = ca.notAfter { row["notAfter"] = ConsoleViews.time(notAfter) }
                return row
            },
            "profiles": profiles.map { p in
                ["id": p.id, "slug": p.slug, "enrollment": p.enrollment.rawValue, "selected": q["profile"] == p.id]
                    as Row
            },
            "rows": page.items.map { c in
                var row = views.certificateRow(c, now: now)
                row["ca"] = c.caId.flatMap { caNames[$0] } ?? ""
                row["profile"] = c.profileId.flatMap { profileNames[$0] } ?? ""
                return row
            },
            "statuses": ["active", "revoked", "expired"].map { ["value": $0, "selected": q["status"] == $0] as Row },
            "name": q["name"] ?? "",
        ]
        if let next = page.next {
            data["next"] = q.link(
                "/console/projects/\(ConsoleViews.path(project))/certificates", replacing: ["after": next])
        }
        return ConsolePage(title: "Certificates", template: "certificates", data: data, project: project)
    }

    func certificate(_ call: Call, _ serial: String) async throws -> ConsolePage {
        let c = try await services.pki.getCertificate(call.ctx, serial: serial)
        var data = views.certificateRow(c, now: Date())
        data["subject"] = c.subject
        data["pem"] = c.certificate
        data["notBefore"] = ConsoleViews.time(c.notBefore)
        if let caId = c.caId { data["crl"] = "/pki/crl/\(ConsoleViews.path(caId)).crl" }
        return ConsolePage(
            title: "Certificate \(c.commonName)", template: "certificate", data: data, project: c.project)
    }

    // MARK: - KMIP

    func kmip(_ call: Call, _ project: String, _ request: Request) async throws -> ConsolePage {
        let q = Query(request)
        let limit = try q.limit(default: 100)
        guard let offset = Int(q["offset"] ?? "0"), offset >= 0 else {
            throw ConsoleInputError(message: "offset must be a whole number")
        }
        // One Locate for the page, with the attributes it shows (not a read per object).
        let objects = try await services.keys.locateObjectAttributes(
            call.ctx, project: project, LocateFilter(maximumItems: limit + 1, offsetItems: offset))
        let rows: [Row] = objects.prefix(limit).map(views.kmipRow)
        var data: Row = ["project": project, "rows": rows]
        if objects.count > limit {
            data["next"] = q.link(
                "/console/projects/\(ConsoleViews.path(project))/kmip", replacing: ["offset": String(offset + limit)])
        }
        // KMIP clients: the project's identities that log in with a certificate of the KMIP client CA.
        data["clients"] = await panel {
            let ca = try await services.kmipPKI.kmipPKI(call.ctx)
            // Every member, a page at a time (each one's TLS Certificate Auth is read: a cost per member).
            var members: [MembershipInfo] = []
            var after: String?
            repeat {
                let page = try await services.access.listMemberships(
                    call.ctx, project: project, after: after, limit: 1000)
                members += page.items
                after = page.next
            } while after != nil
            var clients: [Row] = []
            for m in members {
                guard let auth = try? await services.access.getTLSCertAuth(call.ctx, identityId: m.identityId),
                    auth.caCertificate == ca.caCertificate
                else { continue }
                let identity = try? await services.access.getIdentity(call.ctx, id: m.identityId)
                clients.append([
                    "name": identity?.name ?? m.identityId,
                    "commonNames": auth.allowedCommonNames.joined(separator: ", "),
                    "roles": m.roles.map(\.role).joined(separator: ", "),
                ])
            }
            return [
                "rows": clients, "ca": ca.serialNumber, "caNotAfter": ConsoleViews.time(ca.notAfter),
                "members": String(members.count),
            ]
        }
        return ConsolePage(title: "KMIP", template: "kmip", data: data, project: project)
    }

    func kmipObject(_ call: Call, _ id: String) async throws -> ConsolePage {
        let object = try await services.keys.objectAttributes(call.ctx, id: id)
        var data = views.kmipRow(object)
        data["groups"] = object.objectGroups.joined(separator: ", ")
        data["usageMask"] = String(object.usageMask)
        data["lastChange"] = ConsoleViews.time(object.lastChangeDate)
        if let d = object.deactivationDate { data["deactivated"] = ConsoleViews.time(d) }
        if let d = object.destroyDate { data["destroyed"] = ConsoleViews.time(d) }
        if let d = object.compromiseDate { data["compromised"] = ConsoleViews.time(d) }
        if let m = object.revocationMessage { data["revocationMessage"] = m }
        return ConsolePage(title: "KMIP object", template: "kmip-object", data: data, project: object.project)
    }
}

/// A request's query parameters, read for a console page.
struct Query {
    let request: Request

    init(_ request: Request) { self.request = request }

    /// A non-empty parameter (an empty form field counts as absent), at most 200 characters.
    subscript(_ name: String) -> String? {
        guard let value = request.uri.queryParameters.get(name), !value.isEmpty else { return nil }
        return String(value.prefix(200))
    }

    func limit(default value: Int = 100) throws -> Int {
        guard let text = self["limit"] else { return value }
        guard let n = Int(text), (1...1000).contains(n) else {
            throw ConsoleInputError(message: "limit must be a whole number from 1 to 1000")
        }
        return n
    }

    /// A time: RFC 3339 (`2026-01-31T12:00:00Z`), a date (`2026-01-31`, midnight UTC) or what a
    /// `datetime-local` field sends (`2026-01-31T12:00`, UTC).
    func date(_ name: String) throws -> Date? {
        guard let text = self[name] else { return nil }
        if let d = ConsoleViews.parseTime(text) { return d }
        throw ConsoleInputError(message: "\(name) must be a time such as 2026-01-31 or 2026-01-31T12:00:00Z")
    }

    /// This page's address with some parameters replaced (the paging links keep the filters).
    func link(_ path: String, replacing: [String: String]) -> String {
        var items = (URLComponents(string: "?" + (request.uri.query ?? ""))?.queryItems ?? []).filter {
            replacing[$0.name] == nil && !($0.value ?? "").isEmpty
        }
        for (k, v) in replacing.sorted(by: { $0.key < $1.key }) { items.append(URLQueryItem(name: k, value: v)) }
        var c = URLComponents()
        c.path = path
        c.queryItems = items
        // URLComponents leaves "+" alone in a query; a server reads it as a space.
        return (c.string ?? path).replacingOccurrences(of: "+", with: "%2B")
    }
}
