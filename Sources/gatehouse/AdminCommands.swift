import ArgumentParser
import DaemonConfig
import Foundation
import HTTPFrontEnd
import NIOHTTP1
import ServerSupport

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
    @Option(help: "Use this access token instead of the client certificate (or set GATEHOUSE_TOKEN)")
    var token: String?
    @Option(help: "Output format: table or json")
    var output: OutputFormat = .table

    enum OutputFormat: String, ExpressibleByArgument { case table, json }

    var dataDirectory: String {
        dataDir ?? ProcessInfo.processInfo.environment["GATEHOUSE_DATA_DIR"] ?? ".gatehouse"
    }

    var baseURL: String {
        if let server { return server.hasSuffix("/") ? String(server.dropLast()) : server }
        var port = 8443
        if let data = FileManager.default.contents(atPath: dataDirectory + "/run/listeners.json"),
            let map = try? JSONSerialization.jsonObject(with: data) as? [String: Int], let p = map["https"]
        {
            port = p
        }
        return "https://localhost:\(port)"
    }

    /// Sends a request; prints the API's error and exits non-zero on failure; returns the decoded JSON.
    /// With `tolerant`, an error answer returns nil instead of exiting.
    func call(_ method: HTTPMethod, _ path: String, body: Any? = nil, anonymous: Bool = false, tolerant: Bool = false)
        async -> Any?
    {
        let bytes = await raw(method, path, body: body, anonymous: anonymous, tolerant: tolerant)
        return bytes.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(bytes))
    }

    /// Sends a request; prints the API's error and exits non-zero on failure; returns the response body.
    func raw(_ method: HTTPMethod, _ path: String, body: Any? = nil, anonymous: Bool = false, tolerant: Bool = false)
        async -> [UInt8]
    {
        guard let url = URL(string: baseURL + path) else { fail("invalid server URL \(baseURL)") }
        let certs = dataDirectory + "/certs"
        var headers: [(String, String)] = [("Accept", "application/json")]
        var payload: [UInt8]?
        if let body {
            guard let data = try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]) else {
                fail("cannot encode the request")
            }
            payload = Array(data)
            headers.append(("Content-Type", "application/json"))
        }
        let bearer = token ?? ProcessInfo.processInfo.environment["GATEHOUSE_TOKEN"]
        if let bearer, !anonymous { headers.append(("Authorization", "Bearer \(bearer)")) }
        let useCertificate = bearer == nil && !anonymous
        let response: (status: Int, body: [UInt8])
        do {
            response = try await OneShotHTTPClient.send(
                url: url, method: method, body: payload, headers: headers, caFile: caCert ?? certs + "/ca.crt",
                certificateFile: useCertificate ? (cert ?? certs + "/admin.crt") : nil,
                keyFile: useCertificate ? (key ?? certs + "/admin.key") : nil)
        } catch {
            fail("cannot reach the admin API at \(baseURL): \(error)")
        }
        guard (200..<300).contains(response.status) else {
            if tolerant { return [] }
            let json = response.body.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(response.body))
            if let e = (json as? [String: Any])?["error"] as? [String: Any] {
                fail("\(e["message"] as? String ?? "error") (HTTP \(response.status), \(e["code"] as? String ?? "?"))")
            }
            fail("HTTP \(response.status)")
        }
        return response.body
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
        func cell(_ v: Any?) -> String {
            switch v {
            case let s as String: return s
            case let n as NSNumber: return n.stringValue
            case let a as [Any]: return a.map { cell($0) }.joined(separator: ",")
            case let d as [String: Any]:
                if let role = d["role"] as? String {
                    return role + ((d["temporaryRange"] as? String).map { "(\($0))" } ?? "")
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

func field(_ json: Any?, _ key: String) -> Any? { (json as? [String: Any])?[key] }

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

    struct Create: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        @Argument var slug: String
        @Option var description: String = ""
        func run() async throws {
            let r = await api.call(.POST, "/api/v1/projects", body: ["slug": slug, "description": description])
            api.show(field(r, "project"), columns: ["slug", "description", "createdAt"])
        }
    }
    struct List: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        func run() async throws {
            api.show(await api.allPages("/api/v1/projects", "projects"), columns: ["slug", "description", "createdAt"])
        }
    }
    struct Delete: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        @Argument var slug: String
        func run() async throws {
            _ = await api.call(.DELETE, "/api/v1/projects/\(slug)")
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
        @OptionGroup var api: APIOptions
        @Argument var name: String
        @Option(help: "Organization role: admin, member or no-access") var orgRole: String = "no-access"
        @Option(name: .customLong("metadata"), help: "KEY=VALUE (repeatable)") var metadata: [String] = []
        func run() async throws {
            let r = await api.call(
                .POST, "/api/v1/identities",
                body: ["name": name, "orgRole": orgRole, "metadata": parseKeyValues(metadata)])
            api.show(field(r, "identity"), columns: IdentityCommand.columns)
        }
    }
    struct List: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        func run() async throws {
            api.show(await api.allPages("/api/v1/identities", "identities"), columns: IdentityCommand.columns)
        }
    }
    struct Get: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            api.show(
                field(await api.call(.GET, "/api/v1/identities/\(id)"), "identity"), columns: IdentityCommand.columns)
        }
    }
    struct Delete: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            _ = await api.call(.DELETE, "/api/v1/identities/\(id)")
            if api.output == .table { print("deleted identity \(id)") }
        }
    }
    struct TokenOptions: ParsableArguments {
        @Option(help: "Access token TTL in seconds") var accessTokenTtl: Int?
        @Option(help: "Access token max TTL in seconds") var accessTokenMaxTtl: Int?
        @Option(help: "Access token uses (0 = unlimited)") var accessTokenNumUsesLimit: Int?
        @Option(help: "Trusted CIDR for tokens (repeatable)") var accessTokenTrustedIp: [String] = []
        var body: [String: Any] {
            var b: [String: Any] = [:]
            if let accessTokenTtl { b["accessTokenTTL"] = accessTokenTtl }
            if let accessTokenMaxTtl { b["accessTokenMaxTTL"] = accessTokenMaxTtl }
            if let accessTokenNumUsesLimit { b["accessTokenNumUsesLimit"] = accessTokenNumUsesLimit }
            if !accessTokenTrustedIp.isEmpty { b["accessTokenTrustedIps"] = accessTokenTrustedIp }
            return b
        }
    }
    struct UniversalAuth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "universal-auth", abstract: "Attach Universal Auth to an identity.")
        @OptionGroup var api: APIOptions
        @OptionGroup var token: TokenOptions
        @Argument var id: String
        @Flag(help: "Disable lockout after failed logins") var noLockout = false
        func run() async throws {
            var body = token.body
            if noLockout { body["lockoutEnabled"] = false }
            let r = await api.call(.POST, "/api/v1/auth/universal-auth/identities/\(id)", body: body)
            api.show(field(r, "identityUniversalAuth"), columns: ["identityId", "clientId", "lockoutEnabled"])
        }
    }
    struct ClientSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "client-secret", abstract: "Create a Universal Auth client secret (printed once).")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        @Option var description: String = ""
        @Option(help: "Seconds the secret is valid (0 = no expiry)") var ttl: Int = 0
        func run() async throws {
            let r = await api.call(
                .POST, "/api/v1/auth/universal-auth/identities/\(id)/client-secrets",
                body: ["description": description, "ttl": ttl])
            if api.output == .json {
                api.show(r, columns: [])
            } else {
                print(field(r, "clientSecret") as? String ?? "")
            }
        }
    }
    struct TokenAuth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token", abstract: "Attach Token Auth if needed and create a token (printed once).")
        @OptionGroup var api: APIOptions
        @OptionGroup var token: TokenOptions
        @Argument var id: String
        func run() async throws {
            let info = await api.call(.GET, "/api/v1/identities/\(id)")
            let methods = field(field(info, "identity"), "authMethods") as? [String] ?? []
            if !methods.contains("token-auth") {
                _ = await api.call(.POST, "/api/v1/auth/token-auth/identities/\(id)", body: token.body)
            }
            let r = await api.call(.POST, "/api/v1/auth/token-auth/identities/\(id)/tokens")
            if api.output == .json { api.show(r, columns: []) } else { print(field(r, "accessToken") as? String ?? "") }
        }
    }
    struct TLSCertAuth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tls-cert-auth", abstract: "Attach TLS Certificate Auth (CA file + allowed common names).")
        @OptionGroup var api: APIOptions
        @OptionGroup var token: TokenOptions
        @Argument var id: String
        @Option(help: "PEM file of the CA client certificates chain to") var caFile: String
        @Option(help: "Allowed certificate common name (repeatable)") var commonName: [String]
        func run() async throws {
            guard let pem = try? String(contentsOfFile: caFile, encoding: .utf8) else { fail("cannot read \(caFile)") }
            var body = token.body
            body["caCertificate"] = pem
            body["allowedCommonNames"] = commonName
            let r = await api.call(.POST, "/api/v1/auth/tls-cert-auth/identities/\(id)", body: body)
            api.show(field(r, "identityTlsCertAuth"), columns: ["identityId", "allowedCommonNames"])
        }
    }
}

struct RoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "role", abstract: "Manage project roles and who holds them.",
        subcommands: [Create.self, List.self, Delete.self, Assign.self, Members.self])

    struct Create: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        @Option var project: String
        @Argument var slug: String
        @Option(help: "Permissions as a JSON array, or @FILE") var permissions: String
        @Option var description: String = ""
        func run() async throws {
            let text =
                permissions.hasPrefix("@")
                ? ((try? String(contentsOfFile: String(permissions.dropFirst()), encoding: .utf8)) ?? "") : permissions
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else {
                fail("--permissions must be a JSON array of {\"subject\",\"actions\",\"conditions\"?,\"inverted\"?}")
            }
            let r = await api.call(
                .POST, "/api/v1/projects/\(project)/roles",
                body: ["slug": slug, "description": description, "permissions": parsed])
            api.show(field(r, "role"), columns: ["slug", "project", "isBuiltIn", "description"])
        }
    }
    struct List: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        @Option var project: String
        func run() async throws {
            api.show(
                field(await api.call(.GET, "/api/v1/projects/\(project)/roles"), "roles"),
                columns: ["slug", "isBuiltIn", "description"])
        }
    }
    struct Delete: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        @Option var project: String
        @Argument var slug: String
        func run() async throws {
            _ = await api.call(.DELETE, "/api/v1/projects/\(project)/roles/\(slug)")
            if api.output == .table { print("deleted role \(slug)") }
        }
    }
    struct Assign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set an identity's roles in a project (ROLE or ROLE:DURATION for temporary access).")
        @OptionGroup var api: APIOptions
        @Option var project: String
        @Argument var identityId: String
        @Argument(help: "Roles, e.g. developer or admin:2h") var roles: [String]
        func run() async throws {
            let grants: [[String: Any]] = roles.map { r in
                let parts = r.split(separator: ":", maxSplits: 1).map(String.init)
                if parts.count == 2 { return ["role": parts[0], "isTemporary": true, "temporaryRange": parts[1]] }
                return ["role": r]
            }
            let r = await api.call(
                .PUT, "/api/v1/projects/\(project)/identity-memberships/\(identityId)", body: ["roles": grants])
            api.show(field(r, "identityMembership"), columns: ["project", "identityId", "roles"])
        }
    }
    struct Members: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        @Option var project: String
        func run() async throws {
            api.show(
                field(await api.call(.GET, "/api/v1/projects/\(project)/identity-memberships"), "identityMemberships"),
                columns: ["identityId", "roles"])
        }
    }
}

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Universal Auth login: prints an access token (use it with --token or GATEHOUSE_TOKEN).")
    @OptionGroup var api: APIOptions
    @Option var clientId: String
    @Option(help: "Client secret (or set GATEHOUSE_CLIENT_SECRET)") var clientSecret: String?
    func run() async throws {
        guard let secret = clientSecret ?? ProcessInfo.processInfo.environment["GATEHOUSE_CLIENT_SECRET"] else {
            fail("give --client-secret or GATEHOUSE_CLIENT_SECRET")
        }
        let r = await api.call(
            .POST, "/api/v1/auth/universal-auth/login", body: ["clientId": clientId, "clientSecret": secret],
            anonymous: true)
        if api.output == .json { api.show(r, columns: []) } else { print(field(r, "accessToken") as? String ?? "") }
    }
}

struct WhoamiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show who the API sees.")
    @OptionGroup var api: APIOptions
    func run() async throws {
        api.show(await api.call(.GET, "/api/v1/whoami"), columns: ["kind", "name", "identityId", "orgRole", "method"])
    }
}

struct OpenAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi", abstract: "Print the admin API's OpenAPI 3.1 document.")
    func run() async throws { print(OpenAPIDocument.json) }
}

extension APIOptions {
    /// Every item of a paged listing (up to `max`), following `next` to the last page; `query` adds parameters.
    func allPages(_ path: String, _ key: String, query: [(String, String)] = [], max: Int? = nil) async -> [[String:
        Any]]
    {
        var all: [[String: Any]] = []
        await forEachPage(path, key, query: query, max: max) { all += $0 }
        return all
    }

    /// Calls `body` with each page of the listing as it arrives (at most `max` items in all), so a caller that
    /// handles items one page at a time holds one page, whatever the listing's length.
    func forEachPage(
        _ path: String, _ key: String, query: [(String, String)] = [], max: Int? = nil,
        _ body: ([[String: Any]]) async throws -> Void
    ) async rethrows {
        var after: String?
        var seen = 0
        repeat {
            let parameters = [("limit", "1000")] + query + (after.map { [("after", $0)] } ?? [])
            let page = await call(
                .GET, path + "?" + parameters.map { $0 + "=" + Self.queryValue($1) }.joined(separator: "&"))
            var items = field(page, key) as? [[String: Any]] ?? []
            if let max, seen + items.count > max { items = Array(items.prefix(max - seen)) }
            seen += items.count
            try await body(items)
            after = field(page, "next") as? String
        } while after != nil && seen < (max ?? Int.max)
    }

    /// A query parameter value: everything but unreserved characters percent-encoded (RFC 3986 §2.3).
    static func queryValue(_ value: String) -> String {
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}
