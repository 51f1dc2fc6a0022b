import EngineAPI
import Foundation
import Mustache

/// Engine values as the templates' data, and the rendering itself. Pure: no engine calls, no I/O.
struct ConsoleViews: Sendable {
    typealias Row = [String: Any]

    let library: MustacheLibrary

    init() {
        var library = MustacheLibrary()
        for (name, text) in ConsoleTemplates.all {
            do {
                try library.register(text, named: name)
            } catch {
                // The templates are constants compiled into the binary; every console test renders each one.
                preconditionFailure("console template \(name) does not parse: \(error)")
            }
        }
        self.library = library
    }

    /// A page inside the layout. Values are escaped by Mustache (`{{…}}`); only the rendered body goes in unescaped.
    func render(_ page: ConsolePage, principal: String?, signOut: Bool) -> String {
        let body = library.render(page.data, withTemplate: page.template) ?? ""
        var layout: Row = ["title": page.title, "body": body, "signOut": signOut]
        if let principal { layout["principal"] = principal }
        if let project = page.project {
            let base = "/console/projects/\(Self.path(project))"
            layout["project"] = [
                "slug": project, "overview": base, "sessions": base + "/sessions",
                "certificates": base + "/certificates", "kmip": base + "/kmip",
            ]
        }
        return library.render(layout, withTemplate: "layout") ?? ""
    }

    // MARK: - Rows

    func sessionRow(_ s: PAMSessionInfo) -> Row {
        var row: Row = [
            "id": s.id, "href": "/console/sessions/\(Self.path(s.id))", "identity": s.granteeName,
            "resource": s.resourceName, "account": s.username, "client": s.clientAddress ?? "",
            "started": Self.time(s.startedAt),
        ]
        if let ended = s.endedAt {
            row["ended"] = Self.time(ended)
            row["duration"] = Self.duration(ended.timeIntervalSince(s.startedAt))
        } else {
            row["running"] = true
        }
        if let reason = s.endReason { row["endReason"] = reason.rawValue }
        if let stats = s.stats {
            row["statementsCount"] = String(stats.statements)
            row["bytes"] = Self.bytes(stats.bytesFromClient + stats.bytesFromServer)
        }
        if let hold = s.legalHold { row["legalHold"] = "held by \(hold.by): \(hold.reason)" }
        if let deleted = s.recordingDeletedAt { row["recordingDeleted"] = Self.time(deleted) }
        return row
    }

    func grantRow(_ g: PAMGrantInfo) -> Row {
        var row: Row = [
            "identity": g.granteeName, "resource": g.resourceName, "account": g.username, "reason": g.reason,
            "status": g.status.rawValue, "decidedBy": g.decidedBy ?? "",
        ]
        if let e = g.expiresAt { row["expires"] = Self.time(e) }
        return row
    }

    func certificateRow(_ c: CertificateInfo, now: Date) -> Row {
        let days = Int((c.notAfter.timeIntervalSince(now) / 86_400).rounded(.down))
        var row: Row = [
            "serial": c.serialNumber, "href": "/console/certificates/\(Self.path(c.serialNumber))",
            "commonName": c.commonName, "altNames": c.altNames.joined(separator: ", "),
            "notAfter": Self.time(c.notAfter), "status": c.status.rawValue,
            "daysLeft": days >= 0 ? "\(days) d" : "expired", "soon": days < 30 && c.status == .active,
            "revoked": c.status == .revoked,
        ]
        if let r = c.revocationReason { row["revocationReason"] = "\(r)" }
        if let at = c.revokedAt { row["revokedAt"] = Self.time(at) }
        return row
    }

    func kmipRow(_ m: ManagedObject) -> Row {
        var row: Row = [
            "id": m.id, "href": "/console/kmip/objects/\(Self.path(m.id))", "type": m.objectType.rawValue,
            "state": Self.stateName(m.state),
            "created": Self.time(m.initialDate),
        ]
        if !m.names.isEmpty { row["names"] = m.names.joined(separator: ", ") }
        if let a = m.algorithm { row["algorithm"] = Self.algorithmName(a) }
        if let l = m.cryptographicLength { row["length"] = String(l) }
        if let d = m.activationDate { row["activated"] = Self.time(d) }
        if let d = m.deactivationDate { row["deactivated"] = Self.time(d) }
        return row
    }

    func auditRow(_ e: ChainedAuditEvent) -> Row {
        let meta = e.event.event.metadata
        let actor = e.event.actor.metadata
        var row: Row = [
            "time": Self.time(e.event.timestamp), "chain": e.chain, "sequence": String(e.sequence),
            "type": e.event.event.type,
            "actor": "\(e.event.actor.type): "
                + (actor["name"] ?? actor["identityName"] ?? actor["identityId"] ?? actor["id"] ?? ""),
            "ip": e.event.ipAddress ?? "",
            "details": meta.sorted { $0.key < $1.key }.map { k, v in
                var d: Row = ["key": k, "value": v]
                if let href = Self.objectLink(key: k, value: v) { d["href"] = href }
                return d
            },
            "denied": e.event.event.type.hasSuffix(".denied") || meta["outcome"] == "denied",
        ]
        if let p = e.event.projectId {
            row["project"] = p
            row["projectHref"] = "/console/projects/\(Self.path(p))"
        }
        return row
    }

    /// Where an audit event's detail points in the console, for the detail keys that name an object.
    static func objectLink(key: String, value: String) -> String? {
        switch key {
        case "sessionId": "/console/sessions/\(path(value))"
        case "serialNumber", "serial": "/console/certificates/\(path(value))"
        case "objectId", "keyId": "/console/kmip/objects/\(path(value))"
        default: nil
        }
    }

    // MARK: - The replay timeline

    struct Timeline {
        var rows: [Row] = []
        var statements = 0
        // What later events refer to: prepared statements, bound portals, and the statement still open (its row and
        // when it began), which outcomes fold into.
        var prepared: [String: String] = [:]
        var portals: [String: (text: String, parameters: [String?])] = [:]
        var pending: Int?
        var pendingStart = 0.0

        /// Rows no later event can change: every row before the open statement, or all but the last when none is
        /// open (a live view sends these and holds the rest back).
        var settled: Int { min(pending ?? rows.count - 1, rows.count - 1) }

        /// Adds events in recording order: a live view adds what each poll brought, so the whole recording is not
        /// folded again every second.
        mutating func add(_ events: some Sequence<PAMRecordingEvent>) {
            for e in events { add(e) }
        }

        mutating func add(_ e: PAMRecordingEvent) {
            switch e.kind {
            case "start":
                let detail = (e.detail ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                rows.append([
                    "t": ConsoleViews.seconds(e.t), "kind": "start", "note": detail.joined(separator: " "),
                    "duration": "",
                ])
            case "query":
                openStatement(e, kind: "query", sql: e.text ?? "", parameters: [])
            case "parse":
                prepared[e.name ?? ""] = e.text ?? ""
            case "bind":
                let text = prepared[e.statement ?? ""] ?? ""
                portals[e.name ?? ""] = (text, e.parameters ?? [])
            case "execute":
                let portal = portals[e.name ?? ""]
                openStatement(e, kind: "execute", sql: portal?.text ?? "", parameters: portal?.parameters ?? [])
            case "functionCall":
                openStatement(e, kind: "function call", sql: "function OID \(e.text ?? "?")", parameters: [])
            case "complete":
                var fields: Row = ["tag": e.text ?? ""]
                if let rows = e.rows { fields["rows"] = rows == 1 ? "1 row" : "\(rows) rows" }
                note(e, fields)
            case "error":
                note(e, ["error": "\(e.sqlState ?? "") \(e.text ?? "")", "failed": true])
            case "copyIn":
                note(e, ["copy": "COPY in " + ConsoleViews.bytes(e.bytes ?? 0)])
            case "copyOut":
                note(e, ["copy": "COPY out " + ConsoleViews.bytes(e.bytes ?? 0)])
            case "end":
                pending = nil
                rows.append([
                    "t": ConsoleViews.seconds(e.t), "kind": "end", "note": e.text ?? "", "end": true, "duration": "",
                ])
            default:
                rows.append(["t": ConsoleViews.seconds(e.t), "kind": e.kind, "note": e.text ?? "", "duration": ""])
            }
        }

        mutating func openStatement(_ e: PAMRecordingEvent, kind: String, sql: String, parameters: [String?]) {
            var row: Row = [
                "t": ConsoleViews.seconds(e.t), "kind": kind, "sql": sql, "statement": true, "duration": "",
            ]
            if !parameters.isEmpty {
                row["parameters"] = parameters.enumerated().map { i, p in
                    ["n": "$\(i + 1)", "value": p ?? "NULL"] as Row
                }
            }
            rows.append(row)
            statements += 1
            pending = rows.count - 1
            pendingStart = e.t
        }

        mutating func note(_ e: PAMRecordingEvent, _ fields: Row) {
            if let i = pending {
                rows[i].merge(fields) { old, new in
                    if let a = old as? String, let b = new as? String { return a + "; " + b }
                    return new
                }
                rows[i]["duration"] = ConsoleViews.milliseconds(e.t - pendingStart)
            } else {
                var row = fields
                row["duration"] = ""
                row["t"] = ConsoleViews.seconds(e.t)
                row["kind"] = e.kind
                rows.append(row)
            }
        }
    }

    /// The recording's events as the reviewer reads them: one row per statement (simple query, or an extended
    /// protocol execute with its statement text and bound parameters), with its outcome (command tag, rows, error,
    /// COPY bytes) and its duration (from the statement to its completion) folded in; the session's start and end.
    static func timeline(_ events: [PAMRecordingEvent]) -> Timeline {
        var t = Timeline()
        t.rows.reserveCapacity(events.count / 2 + 2)
        t.add(events)
        return t
    }

    /// The timeline's rows as HTML, as the replay template would write them. Written here rather than as a Mustache
    /// section because a replay has a row per statement (10,000 and more), and swift-mustache looks every value up
    /// through dynamic casts of `Any`: about 50 µs a row, half a second for a 10,000-statement session (profiled
    /// with `gatehouse-bench console`). Every value goes through `escape`.
    static func timelineHTML(_ rows: [Row]) -> String {
        var out = ""
        out.reserveCapacity(rows.count * 200)
        func text(_ row: Row, _ key: String) -> String { (row[key] as? String).map(escape) ?? "" }
        for row in rows {
            out += "<tr class=\""
            if row["failed"] as? Bool == true { out += "failed" }
            if row["end"] as? Bool == true { out += " end" }
            out += "\"><td>" + text(row, "t") + "</td><td>" + text(row, "kind") + "</td>\n<td>"
            if row["statement"] as? Bool == true {
                out += "<pre class=\"sql\">" + text(row, "sql") + "</pre>"
                for p in row["parameters"] as? [Row] ?? [] {
                    out += "<span class=\"param\">" + text(p, "n") + " = " + text(p, "value") + "</span>"
                }
            }
            out += text(row, "note") + "</td>\n<td>" + text(row, "tag")
            if let rows = row["rows"] as? String { out += " · " + escape(rows) }
            if let copy = row["copy"] as? String { out += " · " + escape(copy) }
            if let error = row["error"] as? String { out += "<span class=\"error\">" + escape(error) + "</span>" }
            out += "</td>\n<td>" + text(row, "duration") + "</td></tr>"
        }
        return out
    }

    /// HTML-escapes text for an element or a quoted attribute (`&`, `<`, `>`, `"`, `'`), as Mustache does.
    static func escape(_ s: String) -> String {
        let utf8 = s.utf8
        guard utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else {
            return s
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count + 16)
        for b in utf8 {
            switch b {
            case 0x26: out += Array("&amp;".utf8)
            case 0x3C: out += Array("&lt;".utf8)
            case 0x3E: out += Array("&gt;".utf8)
            case 0x22: out += Array("&quot;".utf8)
            case 0x27: out += Array("&#39;".utf8)
            default: out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Formatting

    static let endReasons = [
        "open", "ended", "client-disconnected", "client-terminated", "client-error", "client-protocol-violation",
        "message-too-large", "upstream-closed", "upstream-error", "upstream-unreachable", "upstream-login-failed",
        "grant-expired", "grant-revoked", "recording-failed", "node-crashed",
    ]

    /// `2026-01-31 12:00:00Z`.
    static func time(_ d: Date) -> String {
        var t = time_t(d.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : String(n) }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    static func parseTime(_ text: String) -> Date? {
        if let d = try? Date(text, strategy: .iso8601) { return d }
        if let d = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return d }
        let day = Date.ISO8601FormatStyle().year().month().day()
        if let d = try? day.parse(text) { return d }
        // A `datetime-local` field: no seconds, no zone.
        if text.count == 16, let d = try? Date(text + ":00Z", strategy: .iso8601) { return d }
        return nil
    }

    static func seconds(_ t: Double) -> String { String(format: "%.3f s", t) }
    static func milliseconds(_ t: Double) -> String { String(format: "%.1f ms", max(0, t) * 1000) }

    static func duration(_ s: TimeInterval) -> String {
        let s = Int(s.rounded())
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        return "\(s / 3600) h \(s % 3600 / 60) min"
    }

    static func bytes(_ n: Int64) -> String {
        if n < 1024 { return "\(n) B" }
        if n < 1024 * 1024 { return String(format: "%.1f KiB", Double(n) / 1024) }
        return String(format: "%.1f MiB", Double(n) / 1_048_576)
    }

    static func count(_ n: Int, more: Bool) -> String { more ? "\(n)+" : String(n) }

    static func stateName(_ s: KeyState) -> String {
        switch s {
        case .preActive: "pre-active"
        case .active: "active"
        case .deactivated: "deactivated"
        case .compromised: "compromised"
        case .destroyed: "destroyed"
        case .destroyedCompromised: "destroyed (compromised)"
        }
    }

    static func algorithmName(_ a: UInt32) -> String {
        switch a {
        case 1: "DES"
        case 2: "3DES"
        case 3: "AES"
        case 4: "RSA"
        case 5: "DSA"
        case 6: "ECDSA"
        case 7: "HMAC-SHA1"
        case 8: "HMAC-SHA224"
        case 9: "HMAC-SHA256"
        case 10: "HMAC-SHA384"
        case 11: "HMAC-SHA512"
        case 24: "EC"
        case 0x1C: "ChaCha20"
        case 0x1D: "ChaCha20-Poly1305"
        default: "algorithm \(a)"
        }
    }

    /// A value as one path segment of a link (ids, serials and slugs are plain, but a link must not break on one
    /// that is not).
    static func path(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? ""
    }

    /// The fields of an `application/x-www-form-urlencoded` body.
    static func formFields(_ body: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            guard let name = parts.first else { continue }
            out[decode(name)] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return out
    }

    static func isTokenCharacter(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "A"..."Z", "a"..."z", "0"..."9", "-", "_", ".", "~", "+", "/", "=": true
        default: false
        }
    }
}
