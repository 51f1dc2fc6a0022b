import AdminAPI
import ArgumentParser
import DaemonConfig
import Foundation

/// How the CLI reaches the admin API. Defaults: the running daemon's HTTPS port from `<data_dir>/run/listeners.json`
/// (else 8443), the CA and admin client certificate made by `init` under `<data_dir>/certs`.
struct APIOptions: ParsableArguments {
    @Option(help: "Admin API base URL (default: https://localhost:<https port of the local daemon>)")
    var server: String?
    @Option(help: "Data directory whose certs/ and run/ to use (default: ./.gatehouse or GATEHOUSE_DATA_DIR)")
    var dataDir: String?
    @Option(help: "CA certificate that signed the server certificate (default: <data_dir>/certs/ca.crt)")
    var caCert: String?
    @Option(help: "Client certificate (default: <data_dir>/certs/admin.crt)")
    var cert: String?
    @Option(help: "Client private key (default: <data_dir>/certs/admin.key)")
    var key: String?
    @Option(
        help: ArgumentHelp(
            "Read an access token from this file ('-': standard input) instead of using the client certificate.",
            discussion: "Or set GATEHOUSE_TOKEN. A token is never taken on the command line, where `ps` shows it.",
            valueName: "file"))
    var tokenFile: String?
    @Option(help: "Output format: table or json")
    var output: OutputFormat = .table

    enum OutputFormat: String, ExpressibleByArgument { case table, json }

    var dataDirectory: String {
        dataDir ?? ProcessInfo.processInfo.environment["GATEHOUSE_DATA_DIR"] ?? ".gatehouse"
    }

    var baseURL: String {
        if let server { return server.hasSuffix("/") ? String(server.dropLast()) : server }
        return "https://localhost:\(boundPort("https", dataDirectory: dataDirectory) ?? 8443)"
    }

    /// Prints a value: JSON as is, or a table of `columns` for a list (or one object).
    /// Rows printed as they are found (a JSON array written element by element, or table lines whose columns are
    /// separated by two spaces), for results that may be too many to hold.
    final class RowStream {
        let json: Bool
        let columns: [String]
        var rows = 0

        init(_ options: APIOptions, columns: [String]) {
            json = options.output == .json
            self.columns = columns
            if !json { print(columns.map { $0.uppercased() }.joined(separator: "  ")) }
        }

        func emit(_ row: [String: Any]) {
            if json {
                let data = (try? JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])) ?? Data("{}".utf8)
                print((rows == 0 ? "[" : ",") + String(decoding: data, as: UTF8.self))
            } else {
                print(columns.map { c in (row[c]).map { "\($0)" } ?? "" }.joined(separator: "  "))
            }
            rows += 1
            fflush(nil)  // every stream: each row reaches a pipe as soon as it is found
        }

        func finish() {
            if json { print(rows == 0 ? "[]" : "]") }
        }
    }

    func show(_ value: Any?, columns: [String]) {
        guard let value else { return }
        if output == .json {
            if let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys]) {
                print(String(decoding: data, as: UTF8.self))
            }
            return
        }
        let rows: [[String: Any]] = (value as? [[String: Any]]) ?? ((value as? [String: Any]).map { [$0] } ?? [])
        // A table cell is one line: PEM and other multi-line text are summarized (`--output json` has them whole).
        func cell(_ v: Any?) -> String {
            switch v {
            case let s as String:
                if s.hasPrefix("-----BEGIN") { return "(PEM)" }
                return s.contains("\n") ? (s.split(whereSeparator: \.isNewline).first.map(String.init) ?? "") + " …" : s
            case let n as NSNumber: return n.stringValue
            case let a as [Any]: return a.map { cell($0) }.joined(separator: ",")
            case let d as [String: Any]:
                if let role = d["role"] as? String {
                    return role + ((d["temporaryRange"] as? String).map { "(\($0))" } ?? "")
                }
                if let host = d["host"] as? String, let port = d["port"] as? NSNumber {
                    // A PAM target: where it connects, not its CA certificate.
                    let database = (d["database"] as? String).map { "/" + $0 } ?? ""
                    let mode = (d["tlsMode"] as? String).map { " tls=" + $0 } ?? ""
                    return "\(host):\(port)\(database)\(mode)"
                }
                return d.keys.sorted().map { "\($0)=\(cell(d[$0]))" }.joined(separator: ",")
            case nil: return ""
            default: return "\(v!)"
            }
        }
        let table = rows.map { row in columns.map { cell(row[$0]) } }
        let widths = columns.indices.map { i in max(columns[i].count, table.map { $0[i].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(
                separator: "  "
            )
            .trimmingCharacters(in: .whitespaces)
        }
        print(line(columns.map { $0.uppercased() }))
        for r in table { print(line(r)) }
    }
}

func parseKeyValues(_ pairs: [String]) -> [String: String] {
    var out: [String: String] = [:]
    for pair in pairs {
        guard let eq = pair.firstIndex(of: "=") else { fail("expected KEY=VALUE, got '\(pair)'") }
        out[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
    }
    return out
}

struct ProjectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "project", abstract: "Manage projects.", subcommands: [Create.self, List.self, Delete.self])

    static let columns = ["slug", "description", "createdAt"]

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a project (a namespace for secrets, CAs, SSH, PAM resources and KMIP objects).")
        @OptionGroup var api: APIOptions
        @Argument(help: "The project's slug: lowercase letters, digits and '-', used in every URL.") var slug: String
        @Option(help: "A free-text description.") var description: String = ""
        func run() async throws {
            let project = await api.withClient { client in
                try await client.createProject(body: .json(.init(slug: slug, description: description)))
                    .created.body.json.project
            }
            api.show(project, columns: ProjectCommand.columns)
        }
    }
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the projects, oldest first.")
        @OptionGroup var api: APIOptions
        @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
        func run() async throws {
            let projects = await api.withClient { client in
                try await allPages(max: max) { after in
                    let page = try await client.listProjects(query: .init(after: after, limit: 1000)).ok.body.json
                    return (page.projects, page.next)
                }
            }
            api.show(projects, columns: ProjectCommand.columns)
        }
    }
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a project and everything in it.")
        @OptionGroup var api: APIOptions
        @Argument(help: "The project's slug.") var slug: String
        func run() async throws {
            await api.withClient { client in _ = try await client.deleteProject(path: .init(project: slug)).noContent }
            if api.output == .table { print("deleted project \(slug)") }
        }
    }
}

struct IdentityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity", abstract: "Manage machine identities and their authentication methods.",
        subcommands: [
            Create.self, List.self, Get.self, Delete.self, UniversalAuth.self, ClientSecret.self, TokenAuth.self,
            TLSCertAuth.self,
        ])

    static let columns = ["id", "name", "orgRole", "authMethods", "createdAt"]

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a machine identity (then attach an authentication method to it).")
        @OptionGroup var api: APIOptions
        @Argument(help: "The identity's name.") var name: String
        @Option(help: "Organization role: admin, member or no-access") var orgRole: String = "no-access"
        @Option(name: .customLong("metadata"), help: "KEY=VALUE (repeatable)") var metadata: [String] = []
        func run() async throws {
            let role: Components.Schemas.IdentityCreate.OrgRolePayload = choice(orgRole, "org-role")
            let spec = Components.Schemas.IdentityCreate(
                name: name, orgRole: role, metadata: .init(additionalProperties: parseKeyValues(metadata)))
            let identity = await api.withClient { client in
                try await client.createIdentity(body: .json(spec)).created.body.json.identity
            }
            api.show(identity, columns: IdentityCommand.columns)
        }
    }
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the machine identities, oldest first.")
        @OptionGroup var api: APIOptions
        @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
        func run() async throws {
            let identities = await api.withClient { client in
                try await allPages(max: max) { after in
                    let page = try await client.listIdentities(query: .init(after: after, limit: 1000)).ok.body.json
                    return (page.identities, page.next)
                }
            }
            api.show(identities, columns: IdentityCommand.columns)
        }
    }
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one identity and its authentication methods.")
        @OptionGroup var api: APIOptions
        @Argument(help: "The identity's id.") var id: String
        func run() async throws {
            let identity = await api.withClient { client in
                try await client.getIdentity(path: .init(identityId: id)).ok.body.json.identity
            }
            api.show(identity, columns: IdentityCommand.columns)
        }
    }
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete an identity: its tokens, secrets and memberships stop working.")
        @OptionGroup var api: APIOptions
        @Argument(help: "The identity's id.") var id: String
        func run() async throws {
            await api.withClient { client in _ = try await client.deleteIdentity(path: .init(identityId: id)).noContent
            }
            if api.output == .table { print("deleted identity \(id)") }
        }
    }
    struct TokenOptions: ParsableArguments {
        @Option(help: "Access token TTL in seconds") var accessTokenTtl: Int?
        @Option(help: "Access token max TTL in seconds") var accessTokenMaxTtl: Int?
        @Option(help: "Access token uses (0 = unlimited)") var accessTokenNumUsesLimit: Int?
        @Option(help: "Trusted CIDR for tokens (repeatable)") var accessTokenTrustedIp: [String] = []
        var spec: Components.Schemas.AuthMethodSpec {
            .init(
                accessTokenTTL: accessTokenTtl, accessTokenMaxTTL: accessTokenMaxTtl,
                accessTokenNumUsesLimit: accessTokenNumUsesLimit,
                accessTokenTrustedIps: accessTokenTrustedIp.isEmpty ? nil : accessTokenTrustedIp)
        }
    }
    struct UniversalAuth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "universal-auth", abstract: "Attach Universal Auth to an identity.")
        @OptionGroup var api: APIOptions
        @OptionGroup var token: TokenOptions
        @Argument(help: "The identity's id.") var id: String
        @Flag(help: "Disable lockout after failed logins") var noLockout = false
        func run() async throws {
            var spec = token.spec
            if noLockout { spec.lockoutEnabled = false }
            let auth = await api.withClient { client in
                try await client.attachUniversalAuth(path: .init(identityId: id), body: .json(spec))
                    .created.body.json.identityUniversalAuth
            }
            api.show(auth, columns: ["identityId", "clientId", "lockoutEnabled"])
        }
    }
    struct ClientSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "client-secret", abstract: "Create a Universal Auth client secret (printed once).")
        @OptionGroup var api: APIOptions
        @Argument(help: "The identity's id.") var id: String
        @Option(help: "A note on what the secret is for.") var description: String = ""
        @Option(help: "Seconds the secret is valid (0 = no expiry)") var ttl: Int = 0
        func run() async throws {
            let created = await api.withClient { client in
                try await client.createClientSecret(
                    path: .init(identityId: id), body: .json(.init(description: description, ttl: ttl))
                ).created.body.json
            }
            if api.output == .json { api.show(created, columns: []) } else { print(created.clientSecret) }
        }
    }
    struct TokenAuth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token", abstract: "Attach Token Auth if needed and create a token (printed once).")
        @OptionGroup var api: APIOptions
        @OptionGroup var token: TokenOptions
        @Argument(help: "The identity's id.") var id: String
        func run() async throws {
            let spec = token.spec
            let created = await api.withClient { client in
                let identity = try await client.getIdentity(path: .init(identityId: id)).ok.body.json.identity
                if !identity.authMethods.contains("token-auth") {
                    do {
                        _ = try await client.attachTokenAuth(path: .init(identityId: id), body: .json(spec)).created
                    } catch  where apiFailure(error)?.status == 409 {
                        // Attached meanwhile (another `identity token` for the same identity): its settings stand.
                    }
                } else if spec != Components.Schemas.AuthMethodSpec() {
                    FileHandle.standardError.write(
                        Data("token auth is already attached to \(id): its settings apply, not these options\n".utf8))
                }
                return try await client.createAccessToken(path: .init(identityId: id)).created.body.json
            }
            if api.output == .json { api.show(created, columns: []) } else { print(created.accessToken) }
        }
    }
    struct TLSCertAuth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tls-cert-auth", abstract: "Attach TLS Certificate Auth (CA file + allowed common names).")
        @OptionGroup var api: APIOptions
        @OptionGroup var token: TokenOptions
        @Argument(help: "The identity's id.") var id: String
        @Option(help: "PEM file of the CA client certificates chain to") var caFile: String
        @Option(help: "Allowed certificate common name (repeatable)") var commonName: [String]
        func run() async throws {
            guard let pem = try? String(contentsOfFile: caFile, encoding: .utf8) else { fail("cannot read \(caFile)") }
            var spec = token.spec
            spec.caCertificate = pem
            spec.allowedCommonNames = commonName
            let auth = await api.withClient { [spec] client in
                try await client.attachTLSCertAuth(path: .init(identityId: id), body: .json(spec))
                    .created.body.json.identityTlsCertAuth
            }
            api.show(auth, columns: ["identityId", "allowedCommonNames"])
        }
    }
}

struct RoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "role", abstract: "Manage project roles and who holds them.",
        subcommands: [Create.self, List.self, Delete.self, Assign.self, Members.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a custom role in a project from a list of permissions.")
        @OptionGroup var api: APIOptions
        @Option(help: "The project's slug.") var project: String
        @Argument(help: "The role's slug.") var slug: String
        @Option(
            help:
                "Permissions as a JSON array of {\"subject\",\"actions\",\"conditions\"?,\"inverted\"?}, or @FILE to read them from a file."
        ) var permissions: String
        @Option(help: "A free-text description.") var description: String = ""
        func run() async throws {
            let text =
                permissions.hasPrefix("@")
                ? ((try? String(contentsOfFile: String(permissions.dropFirst()), encoding: .utf8)) ?? "") : permissions
            let parsed: [Components.Schemas.Permission]
            do { parsed = try JSONDecoder().decode([Components.Schemas.Permission].self, from: Data(text.utf8)) } catch
            {
                fail(
                    "--permissions must be a JSON array of {\"subject\",\"actions\",\"conditions\"?,\"inverted\"?}: \(error)"
                )
            }
            let role = await api.withClient { client in
                try await client.createRole(
                    path: .init(project: project),
                    body: .json(.init(slug: slug, description: description, permissions: parsed))
                ).created.body.json.role
            }
            api.show(role, columns: ["slug", "project", "isBuiltIn", "description"])
        }
    }
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a project's roles, built-in ones included.")
        @OptionGroup var api: APIOptions
        @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
        @Option(help: "The project's slug.") var project: String
        func run() async throws {
            let roles = await api.withClient { client in
                try await allPages(max: max) { after in
                    let page = try await client.listRoles(
                        path: .init(project: project), query: .init(after: after, limit: 1000)
                    ).ok.body.json
                    return (page.roles, page.next)
                }
            }
            api.show(roles, columns: ["slug", "isBuiltIn", "description"])
        }
    }
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a custom role.")
        @OptionGroup var api: APIOptions
        @Option(help: "The project's slug.") var project: String
        @Argument(help: "The role's slug.") var slug: String
        func run() async throws {
            await api.withClient { client in
                _ = try await client.deleteRole(path: .init(project: project, slug: slug)).noContent
            }
            if api.output == .table { print("deleted role \(slug)") }
        }
    }
    struct Assign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set an identity's roles in a project (ROLE or ROLE:DURATION for temporary access).")
        @OptionGroup var api: APIOptions
        @Option(help: "The project's slug.") var project: String
        @Argument(help: "The identity's id.") var identityId: String
        @Argument(help: "Roles, e.g. developer or admin:2h") var roles: [String]
        func run() async throws {
            let grants = roles.map { r -> Components.Schemas.RoleGrant in
                let parts = r.split(separator: ":", maxSplits: 1).map(String.init)
                if parts.count == 2 { return .init(role: parts[0], isTemporary: true, temporaryRange: parts[1]) }
                return .init(role: r)
            }
            let membership = await api.withClient { client in
                try await client.setMembership(
                    path: .init(project: project, identityId: identityId), body: .json(.init(roles: grants))
                ).ok.body.json.identityMembership
            }
            api.show(membership, columns: ["project", "identityId", "roles"])
        }
    }
    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List who holds which roles in a project.")
        @OptionGroup var api: APIOptions
        @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
        @Option(help: "The project's slug.") var project: String
        func run() async throws {
            let members = await api.withClient { client in
                try await allPages(max: max) { after in
                    let page = try await client.listMemberships(
                        path: .init(project: project), query: .init(after: after, limit: 1000)
                    ).ok.body.json
                    return (page.identityMemberships, page.next)
                }
            }
            api.show(members, columns: ["identityId", "roles"])
        }
    }
}

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Universal Auth login: prints an access token (use it with GATEHOUSE_TOKEN or --token-file).")
    @OptionGroup var api: APIOptions
    @Option(help: "The identity's Universal Auth client id (from `gatehouse identity universal-auth`).")
    var clientId: String
    @Option(
        help: ArgumentHelp(
            "Read the client secret from this file ('-': standard input).",
            discussion:
                "Or set GATEHOUSE_CLIENT_SECRET; with neither, the secret is asked for on the terminal without echo. "
                + "A secret is never taken on the command line, where `ps` shows it.",
            valueName: "file"))
    var clientSecretFile: String?
    func run() async throws {
        let secret: String
        if let clientSecretFile {
            secret = readSecret(file: clientSecretFile, what: "client secret")
        } else if let value = ProcessInfo.processInfo.environment["GATEHOUSE_CLIENT_SECRET"] {
            secret = value
        } else if isatty(STDIN_FILENO) != 0, let typed = getpass("client secret: ") {
            secret = String(cString: typed)
        } else {
            fail("give the client secret: --client-secret-file FILE (or -), or GATEHOUSE_CLIENT_SECRET")
        }
        let token = await api.withClient(anonymous: true) { client in
            try await client.universalAuthLogin(body: .json(.init(clientId: clientId, clientSecret: secret)))
                .ok.body.json
        }
        if api.output == .json { api.show(token, columns: []) } else { print(token.accessToken) }
    }
}

struct WhoamiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show who the API sees.")
    @OptionGroup var api: APIOptions
    func run() async throws {
        let caller = await api.withClient { client in try await client.whoami().ok.body.json }
        api.show(caller.additionalProperties, columns: ["kind", "name", "identityId", "orgRole", "method"])
    }
}

struct OpenAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi", abstract: "Print the admin API's OpenAPI 3.1 document.")
    func run() async throws { print(AdminAPIDocument.json) }
}

/// A secret read from a file or, for "-", from standard input: its first line, without the line end. An empty or
/// unreadable source ends the command.
func readSecret(file: String, what: String) -> String {
    let data: Data?
    if file == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        data = FileManager.default.contents(atPath: file)
    }
    guard let data else { fail("cannot read the \(what) from \(file)") }
    let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
    guard !line.isEmpty else { fail("the \(what) in \(file == "-" ? "standard input" : file) is empty") }
    return line
}

/// The port a running daemon bound for a listener, from `<data_dir>/run/listeners.json` (written once every
/// listener is up); nil when no daemon has written it.
func boundPort(_ listener: String, dataDirectory: String) -> Int? {
    guard let data = FileManager.default.contents(atPath: dataDirectory + "/run/listeners.json"),
        let ports = try? JSONSerialization.jsonObject(with: data) as? [String: Int]
    else { return nil }
    return ports[listener]
}

/// Every item of a paged listing (at most `max`), following `next` to the last page: `page` fetches the page
/// after a cursor (nil for the first) and returns its items and the next cursor.
func allPages<Item>(max: Int? = nil, _ page: (_ after: String?) async throws -> ([Item], String?)) async throws
    -> [Item]
{
    var all: [Item] = []
    try await forEachPage(max: max, page) { all += $0 }
    return all
}

/// Calls `body` with each page of a listing as it arrives (at most `max` items in all), so a caller that handles
/// items one page at a time holds one page, whatever the listing's length.
func forEachPage<Item>(
    max: Int? = nil, _ page: (_ after: String?) async throws -> ([Item], String?),
    _ body: ([Item]) async throws -> Void
) async throws {
    var after: String?
    var seen = 0
    repeat {
        var (items, next) = try await page(after)
        if let max, seen + items.count > max { items = Array(items.prefix(max - seen)) }
        seen += items.count
        try await body(items)
        after = next
    } while after != nil && seen < (max ?? Int.max)
}
