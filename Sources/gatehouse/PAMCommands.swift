import AdminAPI
import ArgumentParser
import Foundation

/// `gatehouse pam …`: PostgreSQL resources and accounts, just-in-time access, `connect`, and session recordings.
struct PAMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pam",
        abstract: "PostgreSQL access: resources, accounts, access requests, connect, session recordings.",
        subcommands: [
            Resource.self, Account.self, Request.self, Approve.self, Reject.self, Revoke.self, Grants.self,
            Connect.self, Sessions.self,
            Settings.self,
        ])

    static let resourceColumns = ["id", "name", "target", "failClosed"]
    static let accountColumns = ["id", "username", "resourceId", "passwordChangedAt"]
    static let grantColumns = [
        "id", "resourceName", "username", "granteeName", "status", "duration", "expiresAt", "reason",
    ]
    static let sessionColumns = ["id", "resourceName", "username", "granteeName", "startedAt", "endedAt", "endReason"]

    /// Every resource of a project.
    static func resources(_ client: Client, _ project: String, max: Int? = nil) async throws
        -> [Components.Schemas.PAMResource]
    {
        try await allPages(max: max) { after in
            let page = try await client.listPAMResources(
                path: .init(project: project), query: .init(after: after, limit: 1000)
            ).ok.body.json
            return (page.resources, page.next)
        }
    }

    /// Every account of a resource.
    static func accounts(_ client: Client, _ resource: String, max: Int? = nil) async throws
        -> [Components.Schemas.PAMAccount]
    {
        try await allPages(max: max) { after in
            let page = try await client.listPAMAccounts(
                path: .init(resourceId: resource), query: .init(after: after, limit: 1000)
            ).ok.body.json
            return (page.accounts, page.next)
        }
    }

    struct Resource: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "PostgreSQL resources.", subcommands: [Create.self, List.self, Delete.self])
        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add a resource (the appliance tests the connection first).")
            @OptionGroup var api: APIOptions
            @Option(help: "The project's slug.") var project: String
            @Option(help: "Name clients use as dbname") var name: String
            @Option(help: "The PostgreSQL server's host name or address") var host: String
            @Option(help: "The PostgreSQL server's port") var port: Int = 5432
            @Option(help: "The database on the server") var database: String
            @Option(help: "disable, require, verify-ca, verify-full (default)") var tlsMode: String?
            @Option(help: "PEM file of the CA that signed the server's certificate") var caFile: String?
            @Flag(help: "Keep sessions running when their recording cannot be written (default: terminate them)")
            var failOpen = false
            @Option(help: "Account (username) that changes the others' passwords on rotation (default: each its own)")
            var rotationAccount: String?
            @Option(help: "Record up to N result rows per statement (default 0: statements only)") var recordRows: Int?
            func run() async throws {
                let mode: Components.Schemas.PAMResourceSpec.TlsModePayload? = choice(tlsMode, "tls-mode")
                let spec = Components.Schemas.PAMResourceSpec(
                    name: name, host: host, port: port, database: database, tlsMode: mode,
                    caCertificate: caFile.map(PKICommand.readFile), failClosed: !failOpen,
                    rotationAccount: rotationAccount, recordRows: recordRows)
                let resource = await api.withClient { client in
                    try await client.createPAMResource(path: .init(project: project), body: .json(spec))
                        .created.body.json.resource
                }
                api.show(resource, columns: PAMCommand.resourceColumns)
            }
        }
        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List a project's resources (`--output json` includes their CA certificates).")
            @OptionGroup var api: APIOptions
            @Option(help: "The project's slug.") var project: String
            @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
            func run() async throws {
                api.show(
                    await api.withClient { client in try await PAMCommand.resources(client, project, max: max) },
                    columns: PAMCommand.resourceColumns)
            }
        }
        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete a resource and its accounts.")
            @OptionGroup var api: APIOptions
            @Argument(help: "The resource's id.") var id: String
            func run() async throws {
                await api.withClient { client in
                    _ = try await client.deletePAMResource(path: .init(resourceId: id)).noContent
                }
            }
        }
    }

    struct Account: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Database accounts on a resource.", subcommands: [Add.self, List.self, Rotate.self, Delete.self])
        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Add an account; the password is read from stdin (never from the command line) and checked by a real login."
            )
            @OptionGroup var api: APIOptions
            @Option(help: "Resource id") var resource: String
            @Option(help: "The database user name") var username: String
            @Option(help: "Rotate the password this often, e.g. 30d (default: only on demand)") var rotationInterval:
                String?
            func run() async throws {
                let input = FileHandle.standardInput.readDataToEndOfFile()
                let password = String(decoding: input, as: UTF8.self).trimmingCharacters(in: .newlines)
                guard !password.isEmpty else { fail("give the password on stdin") }
                let account = await api.withClient { client in
                    try await client.createPAMAccount(
                        path: .init(resourceId: resource),
                        body: .json(.init(username: username, password: password, rotationInterval: rotationInterval))
                    ).created.body.json.account
                }
                api.show(account, columns: PAMCommand.accountColumns)
            }
        }
        struct Rotate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Rotate an account's password now (nobody sees the new one).")
            @OptionGroup var api: APIOptions
            @Argument(help: "The account's id.") var id: String
            func run() async throws {
                let account = await api.withClient { client in
                    try await client.rotatePAMAccount(path: .init(accountId: id)).ok.body.json.account
                }
                api.show(account, columns: PAMCommand.accountColumns + ["lastRotationError"])
            }
        }
        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a resource's accounts.")
            @OptionGroup var api: APIOptions
            @Option(help: "Resource id") var resource: String
            @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
            func run() async throws {
                api.show(
                    await api.withClient { client in try await PAMCommand.accounts(client, resource, max: max) },
                    columns: PAMCommand.accountColumns)
            }
        }
        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete an account (its grants end).")
            @OptionGroup var api: APIOptions
            @Argument(help: "The account's id.") var id: String
            func run() async throws {
                await api.withClient { client in
                    _ = try await client.deletePAMAccount(path: .init(accountId: id)).noContent
                }
            }
        }
    }

    struct Request: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask for just-in-time access to an account.")
        @OptionGroup var api: APIOptions
        @Argument(help: "Account id") var account: String
        @Option(help: "e.g. 30m, 2h, 3d") var duration: String
        @Option(help: "Why you need access (shown to approvers and audited)") var reason: String
        func run() async throws {
            let grant = await api.withClient { client in
                try await client.requestPAMAccess(
                    path: .init(accountId: account), body: .json(.init(duration: duration, reason: reason))
                ).created.body.json.grant
            }
            api.show(grant, columns: PAMCommand.grantColumns)
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a pending access request (not your own): its access starts now.")
        @OptionGroup var api: APIOptions
        @Argument(help: "The grant's id.") var grant: String
        func run() async throws {
            let decided = await api.withClient { client in
                try await client.approvePAMGrant(path: .init(grantId: grant)).ok.body.json.grant
            }
            api.show(decided, columns: PAMCommand.grantColumns)
        }
    }
    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a pending access request.")
        @OptionGroup var api: APIOptions
        @Argument(help: "The grant's id.") var grant: String
        func run() async throws {
            let decided = await api.withClient { client in
                try await client.rejectPAMGrant(path: .init(grantId: grant)).ok.body.json.grant
            }
            api.show(decided, columns: PAMCommand.grantColumns)
        }
    }
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End an approved grant now (its live sessions are terminated).")
        @OptionGroup var api: APIOptions
        @Argument(help: "The grant's id.") var grant: String
        func run() async throws {
            let decided = await api.withClient { client in
                try await client.revokePAMGrant(path: .init(grantId: grant)).ok.body.json.grant
            }
            api.show(decided, columns: PAMCommand.grantColumns)
        }
    }
    struct Grants: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List access requests and grants, newest first.",
            discussion:
                "--status approved lists the grants in force now (latest to expire first); pending, the requests to decide."
        )
        @OptionGroup var api: APIOptions
        @Option(help: "The project's slug.") var project: String
        @Option(help: "pending, approved (in force now), expired, rejected or revoked.") var status: String?
        @Option(help: "Requested by this identity (name).") var grantee: String?
        @Option(help: "For this database account (username).") var account: String?
        @Option(help: "At most this many.") var max: Int?
        func run() async throws {
            let statusFilter: Operations.ListPAMGrants.Input.Query.StatusPayload? = choice(status, "status")
            let grants = await api.withClient { client in
                try await allPages(max: max) { after in
                    let page = try await client.listPAMGrants(
                        path: .init(project: project),
                        query: .init(
                            after: after, limit: 1000, status: statusFilter, grantee: grantee, account: account)
                    ).ok.body.json
                    return (page.grants, page.next)
                }
            }
            api.show(grants, columns: PAMCommand.grantColumns)
        }
    }

    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Connect with psql through the access proxy, reusing your grant (or requesting one with --reason).",
            discussion: """
                Reuses an approved grant of yours for the account; otherwise requests one for --duration with --reason. An \
                auto-approved request connects at once; a pending one prints its id for an approver and exits 3. psql gets \
                your client certificate (or your access token as the password) and never the database password. Arguments \
                after -- go to psql.
                """)
        @OptionGroup var api: APIOptions
        @Argument(help: "Resource name") var resource: String
        @Option(help: "The project's slug.") var project: String
        @Option(help: "Database account (username) on the resource") var account: String
        @Option(help: "How long a new grant lasts, e.g. 30m, 2h") var duration = "1h"
        @Option(help: "Why you need access; needed when no approved grant of yours can be reused") var reason: String?
        @Option(help: "The proxy's HOST:PORT (default: the local daemon's postgres listener)") var proxy: String?
        @Option(help: "psql binary") var psql = "psql"
        @Argument(parsing: .postTerminator, help: "Arguments after -- go to psql, e.g. -c 'select 1'")
        var psqlArguments: [String] = []

        func run() async throws {
            let pending: String? = await api.withClient { client in
                let resources = try await PAMCommand.resources(client, project)
                guard let rid = resources.first(where: { $0.name == resource })?.id else {
                    fail("no resource '\(resource)' in project \(project)")
                }
                guard let aid = try await PAMCommand.accounts(client, rid).first(where: { $0.username == account })?.id
                else { fail("no account '\(account)' on \(resource)") }
                let me = try await client.whoami().ok.body.json.additionalProperties["name"] ?? ""
                // Only this caller's grants in force for this account (an index lookup, whatever the project's
                // history).
                let grants = try await allPages { after in
                    let page = try await client.listPAMGrants(
                        path: .init(project: project),
                        query: .init(after: after, limit: 1000, status: .approved, grantee: me, account: account)
                    ).ok.body.json
                    return (page.grants, page.next)
                }
                if grants.contains(where: { $0.accountId == aid && $0.status == .approved && $0.granteeName == me }) {
                    return nil
                }
                guard let reason else { fail("no active grant: give --reason to request one") }
                let grant = try await client.requestPAMAccess(
                    path: .init(accountId: aid), body: .json(.init(duration: duration, reason: reason))
                ).created.body.json.grant
                return grant.status == .approved ? nil : grant.id
            }
            if let pending {
                FileHandle.standardError.write(
                    Data("access request \(pending) is pending approval (gatehouse pam approve ID)\n".utf8))
                throw ExitCode(3)
            }
            var host = "127.0.0.1"
            var port = 15432
            if let proxy {
                let parts = proxy.split(separator: ":")
                guard parts.count == 2, let p = Int(parts[1]) else { fail("--proxy must be HOST:PORT") }
                host = String(parts[0])
                port = p
            } else if let p = boundPort("postgres", dataDirectory: api.dataDirectory) {
                port = p
            }
            let certs = api.dataDirectory + "/certs"
            var conninfo =
                "host=\(host) port=\(port) user=\(account) dbname=\(resource) sslmode=verify-ca sslrootcert=\(api.caCert ?? certs + "/ca.crt")"
            var environment = ProcessInfo.processInfo.environment
            if let token = api.tokenFile.map({ readSecret(file: $0, what: "access token") })
                ?? environment["GATEHOUSE_TOKEN"]
            {
                environment["PGPASSWORD"] = token
            } else {
                conninfo += " sslcert=\(api.cert ?? certs + "/admin.crt") sslkey=\(api.key ?? certs + "/admin.key")"
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [psql, conninfo] + psqlArguments
            process.environment = environment
            do { try process.run() } catch { fail("cannot run \(psql): \(error)") }
            process.waitUntilExit()
            if process.terminationStatus != 0 { throw ExitCode(process.terminationStatus) }
        }
    }

    struct Sessions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Proxy sessions and their encrypted recordings.",
            subcommands: [List.self, Show.self, Replay.self, Search.self, Verify.self, Hold.self, Release.self])

        /// The filters both `list` and `search` take; the server applies them (on its indexes) and pages the result.
        struct Filters: ParsableArguments {
            @Option(help: "The project's slug.") var project: String
            @Option(help: "Only sessions of this resource") var resource: String?
            @Option(help: "Only sessions of this user (grantee name)") var user: String?
            @Option(help: "Only sessions as this database account") var account: String?
            @Option(help: "Only sessions that ended so (grant-revoked, grant-expired, client-closed, …), or 'open'")
            var endReason: String?
            @Option(help: "Only sessions started at or after this RFC 3339 time") var since: String?
            @Option(help: "Only sessions started before this RFC 3339 time") var until: String?
            @Option(help: "Stop after this many sessions (default: all)") var max: Int?

            /// One page of the matching sessions, newest first.
            func page(_ client: Client, after: String?) async throws -> ([Components.Schemas.PAMSession], String?) {
                let query = Operations.ListPAMSessions.Input.Query(
                    after: after, limit: 1000, since: rfc3339(since, "since"), until: rfc3339(until, "until"),
                    grantee: user, resource: resource, account: account, endReason: endReason)
                let page = try await client.listPAMSessions(path: .init(project: project), query: query).ok.body.json
                return (page.sessions, page.next)
            }

            /// Every matching session, newest first, following the server's pages.
            func sessions(_ client: Client) async throws -> [Components.Schemas.PAMSession] {
                try await allPages(max: max) { try await page(client, after: $0) }
            }

            /// Each matching session in turn, newest first, one page of the server's at a time: what a command that
            /// reads every recording uses, so it holds a page and a recording whatever the project's history.
            func forEachSession(
                _ client: Client, _ body: (Components.Schemas.PAMSession) async throws -> Void
            ) async throws {
                try await forEachPage(
                    max: max, { try await page(client, after: $0) },
                    { sessions in for session in sessions { try await body(session) } })
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "A project's sessions, newest first (all pages).")
            @OptionGroup var api: APIOptions
            @OptionGroup var filters: Filters
            func run() async throws {
                api.show(
                    await api.withClient { client in try await filters.sessions(client) },
                    columns: PAMCommand.sessionColumns)
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "A session's metadata and the integrity of its recording.")
            @OptionGroup var api: APIOptions
            @Argument(help: "The session's id.") var id: String
            func run() async throws {
                let recording = await api.withClient { client in
                    try await client.getPAMRecording(path: .init(sessionId: id)).ok.body.json
                }
                var session = jsonObject(recording.session) as? [String: Any] ?? [:]
                session["integrity"] = recording.integrity.rawValue
                session["events"] = recording.events.count
                api.show(session, columns: PAMCommand.sessionColumns + ["integrity", "events"])
            }
        }

        struct Replay: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print a session as a timeline (reading it is audited).")
            @OptionGroup var api: APIOptions
            @Argument(help: "The session's id.") var id: String
            func run() async throws {
                let recording = await api.withClient { client in
                    try await client.getPAMRecording(path: .init(sessionId: id)).ok.body.json
                }
                if api.output == .json {
                    api.show(recording, columns: [])
                    return
                }
                print("integrity: \(recording.integrity.rawValue)\(recording.integrityDetail.map { " (\($0))" } ?? "")")
                for event in recording.events { print(Self.line(event)) }
            }

            static func line(_ e: Components.Schemas.PAMRecordingEvent) -> String {
                let t = String(format: "%9.3fs", e.t)
                let kind = e.kind.padding(toLength: 12, withPad: " ", startingAt: 0)
                var parts: [String] = []
                if let name = e.name, !name.isEmpty { parts.append("[\(name)]") }
                if let state = e.sqlState { parts.append(state) }
                if let text = e.text { parts.append(text) }
                if let p = e.parameters {
                    parts.append("(" + p.map { $0.map { "'\($0)'" } ?? "NULL" }.joined(separator: ", ") + ")")
                }
                if let rows = e.rows, e.kind == "complete" { parts.append("rows=\(rows)") }
                if let bytes = e.bytes { parts.append("bytes=\(bytes)") }
                if let detail = e.detail?.additionalProperties {
                    parts.append(detail.keys.sorted().map { "\($0)=\(detail[$0] ?? "")" }.joined(separator: " "))
                }
                return "\(t)  \(kind) \(parts.joined(separator: " "))"
            }
        }

        struct Verify: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Check that ended sessions have a complete, untampered recording in the store (each check is audited).",
                discussion: """
                    With a session id, checks that session. With --all, checks every ended session the filters select (all \
                    pages), shows progress on a terminal (standard error), lists the sessions whose recording is missing, incomplete or \
                    tampered, and exits 1 if there is one. Recordings deleted under the project's retention are counted, \
                    not listed.
                    """)
            @OptionGroup var api: APIOptions
            @OptionGroup var filters: Filters
            @Argument(help: "A session id") var session: String?
            @Flag(help: "Every ended session the filters select") var all = false
            func run() async throws {
                if let session {
                    let verdict = await api.withClient { client in
                        try await client.verifyPAMRecording(path: .init(sessionId: session)).ok.body.json
                    }
                    api.show([verdict], columns: ["sessionId", "integrity", "bytes", "integrityDetail"])
                    if verdict.integrity != .complete { throw ExitCode(1) }
                    return
                }
                guard all else { throw ValidationError("give a session id, or --all") }
                // Streamed: one page of sessions at a time, each verdict as it comes, progress on standard error.
                let columns = ["sessionId", "integrity", "resourceName", "granteeName", "integrityDetail"]
                let rows = APIOptions.RowStream(api, columns: columns)
                var (checked, bad, deleted) = (0, 0, 0)
                func progress() {
                    FileHandle.standardError.write(
                        Data(
                            "verified \(checked) ended sessions, \(bad) not complete, \(deleted) deleted under retention\n"
                                .utf8))
                }
                await api.withClient { client in
                    try await filters.forEachSession(client) { s in
                        guard s.endedAt != nil else { return }
                        let verdict = try await client.verifyPAMRecording(path: .init(sessionId: s.id)).ok.body.json
                        checked += 1
                        if verdict.integrity == .deleted { deleted += 1 }
                        if verdict.integrity != .complete && verdict.integrity != .deleted {
                            bad += 1
                            rows.emit([
                                "sessionId": s.id, "integrity": verdict.integrity.rawValue,
                                "resourceName": s.resourceName, "granteeName": s.granteeName,
                                "integrityDetail": verdict.integrityDetail ?? "",
                            ])
                        }
                        // Running counts only for a person watching; the summary below is always printed.
                        if checked % 100 == 0, isatty(STDERR_FILENO) != 0 { progress() }
                    }
                }
                rows.finish()
                progress()
                if bad > 0 { throw ExitCode(1) }
            }
        }

        struct Hold: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Put a session under legal hold: its recording outlives the project's retention (audited).")
            @OptionGroup var api: APIOptions
            @Argument(help: "The session's id.") var id: String
            @Option(help: "Why (a case or ticket reference)") var reason: String
            func run() async throws {
                let session = await api.withClient { client in
                    try await client.setPAMLegalHold(path: .init(sessionId: id), body: .json(.init(reason: reason)))
                        .ok.body.json.session
                }
                api.show(session, columns: PAMCommand.sessionColumns + ["legalHold"])
            }
        }

        struct Release: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Release a session's legal hold (audited).")
            @OptionGroup var api: APIOptions
            @Argument(help: "The session's id.") var id: String
            func run() async throws {
                let session = await api.withClient { client in
                    try await client.releasePAMLegalHold(path: .init(sessionId: id)).ok.body.json.session
                }
                api.show(session, columns: PAMCommand.sessionColumns)
            }
        }

        struct Search: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Find statements containing TEXT across a project's sessions (each recording read is audited).")
            @OptionGroup var api: APIOptions
            @OptionGroup var filters: Filters
            @Argument(help: "Text to find in the recorded statements (case-insensitive).") var text: String
            func run() async throws {
                // Streamed: one page of sessions and one recording at a time; each hit is printed when found, and
                // progress goes to standard error. Every matching session is searched (--max bounds it).
                let rows = APIOptions.RowStream(
                    api, columns: ["session", "granteeName", "resourceName", "t", "statement"])
                var (searched, hits) = (0, 0)
                await api.withClient { client in
                    try await filters.forEachSession(client) { s in
                        // Sessions refused before their recording began have none; deleted ones answer 410.
                        let events: [Components.Schemas.PAMRecordingEvent]
                        do {
                            events = try await client.getPAMRecording(path: .init(sessionId: s.id)).ok.body.json.events
                        } catch  where apiFailure(error) != nil {
                            events = []
                        }
                        for e in events where ["query", "parse"].contains(e.kind) {
                            if let sql = e.text, let match = sql.range(of: text, options: .caseInsensitive) {
                                hits += 1
                                rows.emit([
                                    "session": s.id, "granteeName": s.granteeName, "resourceName": s.resourceName,
                                    "t": e.t, "statement": Self.excerpt(sql, around: match),
                                ])
                            }
                        }
                        searched += 1
                        if searched % 50 == 0, isatty(STDERR_FILENO) != 0 {
                            FileHandle.standardError.write(
                                Data("searched \(searched) sessions, \(hits) matches\n".utf8))
                        }
                    }
                }
                rows.finish()
                FileHandle.standardError.write(Data("searched \(searched) sessions, \(hits) matches\n".utf8))
            }

            /// A long statement (a megabyte of comment in front of a `delete`) is shown around the match, with its size.
            static func excerpt(_ sql: String, around match: Range<String.Index>) -> String {
                guard sql.utf8.count > 400 else { return sql }
                let start = sql.index(match.lowerBound, offsetBy: -120, limitedBy: sql.startIndex) ?? sql.startIndex
                let end = sql.index(match.upperBound, offsetBy: 160, limitedBy: sql.endIndex) ?? sql.endIndex
                return (start > sql.startIndex ? "…" : "") + sql[start..<end] + (end < sql.endIndex ? "…" : "")
                    + " [\(sql.utf8.count) bytes]"
            }
        }
    }

    struct Settings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set a project's PAM settings.",
            discussion: """
                --recording-retention 365d keeps each session's recording for 365 days after the session ends (s, m, h, d); \
                expired recordings are deleted and each deletion audited; a session under legal hold keeps its recording. \
                'none' keeps recordings for ever.
                """)
        @OptionGroup var api: APIOptions
        @Option(help: "The project's slug.") var project: String
        @Option(help: "How long recordings are kept after their session ends (e.g. 365d), or 'none'")
        var recordingRetention: String?
        func run() async throws {
            let settings = await api.withClient { client in
                if let recordingRetention {
                    // 'none' sends no retention: recordings are kept.
                    let value = recordingRetention == "none" ? nil : recordingRetention
                    return try await client.setPAMSettings(
                        path: .init(project: project), body: .json(.init(recordingRetention: value))
                    ).ok.body.json.settings
                }
                return try await client.getPAMSettings(path: .init(project: project)).ok.body.json.settings
            }
            api.show(settings, columns: ["project", "recordingRetention", "updatedAt"])
        }
    }
}
