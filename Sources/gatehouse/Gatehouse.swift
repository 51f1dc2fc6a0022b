import ArgumentParser
import AsyncHTTPClient
import Daemon
import DaemonConfig
import Engine
import EngineAPI
import Foundation
import Logging

/// Options shared by every command that reads the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(
        name: .long, help: "Configuration file (TOML). Default: none (built-in defaults + GATEHOUSE_* environment).")
    var config: String?

    @Option(name: .long, help: "Data directory (overrides data_dir). Default: ./.gatehouse")
    var dataDir: String?

    func load() throws -> GatehouseConfiguration {
        let file = config ?? ProcessInfo.processInfo.environment["GATEHOUSE_CONFIG"]
        do {
            return try ConfigurationLoader.load(file: file, dataDirectoryOverride: dataDir)
        } catch let e as ConfigurationError {
            throw ValidationError("invalid configuration:\n" + e.description)
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("gatehouse: \(message)\n".utf8))
    exit(1)
}

func quietLogger() -> Logger {
    var l = Logger(label: "gatehouse.cli")
    l.logLevel = .error
    return l
}

@main
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract:
            "Gatehouse security appliance: KMIP, EST, ACME, SSH tunnels and a PostgreSQL access proxy on one engine.",
        version: GatehouseVersion.current,
        subcommands: [
            Serve.self, Init.self, StatusCommand.self, ConfigCommand.self, Audit.self, RotateRootKey.self,
            RotateDataKey.self, RootKeyCommand.self, BackupCommand.self, RestoreCommand.self,
            ProjectCommand.self,
            IdentityCommand.self,
            RoleCommand.self, LoginCommand.self, WhoamiCommand.self, OpenAPICommand.self, PKICommand.self,
            SSHCommand.self, TunnelCommand.self, PAMCommand.self, KMIPCommand.self,
        ])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon (creates the data directory on first start).")
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        let registry = GatehouseDaemon.bootstrapObservability(config)
        let logger = Logger(label: "gatehouse")
        do {
            try await GatehouseDaemon(config: config, logger: logger, registry: registry).run()
        } catch let e as DaemonError {
            fail(e.description)
        }
    }
}

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "First-start step: data directory, root key file, development PKI, and the store.")
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        do {
            let result = try FirstStart.run(config)
            try await StoreFactory.withEngine(config, logger: quietLogger()) { _ in }
            for path in result.created { print("created \(path)") }
            if result.created.isEmpty { print("already initialized: \(config.dataDirectory)") }
            print("CA certificate:           \(result.pki.caCertificate)")
            print("server certificate:       \(result.pki.serverCertificate)")
            print("admin client certificate: \(result.pki.adminCertificate) (key \(result.pki.adminKey))")
            let gateway = GatewayKey.defaultPath(dataDirectory: config.dataDirectory)
            print(
                "gateway SSH key:          \(gateway) (public: \((try? GatewayKey.publicKeyLine(path: gateway)) ?? "?"))"
            )
        } catch let e as DaemonError {
            fail(e.description)
        }
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Configuration tools.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file; every error names the file and line, the key and the reason.")
        @Argument(help: "The TOML file to check.") var file: String

        func run() throws {
            // The file alone first: an environment override must not hide (or cause) an error of the file.
            var failed = false
            var fileProblems: Set<ConfigurationProblem> = []
            do {
                let config = try ConfigurationLoader.load(file: file, environment: [:])
                print("\(file): OK")
                describe(config)
            } catch let e as ConfigurationError {
                for p in e.problems { FileHandle.standardError.write(Data("\(p)\n".utf8)) }
                fileProblems = Set(e.problems)
                failed = true
            }
            // Then what this environment changes, reported apart.
            let environment = ProcessInfo.processInfo.environment
            let overrides = ConfigurationLoader.knownKeys.compactMap { key -> String? in
                let name = ConfigurationLoader.environmentName(key)
                return environment[name] == nil ? nil : "\(name) overrides \(key)"
            }
            if !overrides.isEmpty {
                print("environment overrides (not in \(file); `gatehouse serve` applies them):")
                for line in overrides { print("  \(line)") }
                do {
                    _ = try ConfigurationLoader.load(file: file, environment: environment)
                    if !failed { print("with these overrides: OK") }
                } catch let e as ConfigurationError {
                    let fromEnvironment = e.problems.filter { !fileProblems.contains($0) }
                    for p in fromEnvironment {
                        FileHandle.standardError.write(Data("\(p) (from the environment, not the file)\n".utf8))
                    }
                    if !fromEnvironment.isEmpty { failed = true }
                }
            }
            if failed { throw ExitCode(1) }
        }

        private func describe(_ config: GatehouseConfiguration) {
            for name in config.listeners.keys.sorted() {
                guard let l = config.listeners[name], l.enabled else { continue }
                print(
                    "  listener \(name): \(l.tls ? "https" : "http")://\(l.address):\(l.port) client_auth=\(l.clientAuth.rawValue)"
                )
            }
            switch config.storage {
            case .sqlite(let path): print("  storage: sqlite \(path)")
            case .postgres: print("  storage: postgres")
            }
            if let t = config.tunnel {
                let forwards = t.forwards.map { "\($0.expose)→\($0.remoteHost):\($0.remotePort)" }.joined(
                    separator: ", ")
                print("  tunnel: \(t.user)@\(t.relayHost):\(t.relayPort) forwards \(forwards)")
            }
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read and verify the hash-chained audit log (local operator access to the store).",
        subcommands: [Verify.self, Tail.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Detect any edited, deleted or reordered audit event.")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let config = try options.load()
            do {
                try await StoreFactory.withEngine(config, logger: quietLogger()) { engine in
                    let result = try await engine.verifyAudit(.system("cli"))
                    if result.isIntact {
                        print("audit chain intact: \(result.checked) events verified")
                    } else {
                        print("audit chain BROKEN (\(result.checked) events read):")
                        for p in result.problems { print("  - \(p)") }
                        throw ExitCode(2)
                    }
                }
            } catch let e as DaemonError {
                fail(e.description)
            } catch let e as EngineError {
                fail(e.message)
            }
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print audit events as JSON lines: the latest, or a search by type, actor, project and time.",
            discussion: """
                Searches use the store's indexes (their cost does not grow with the log). With --since, events from that
                time on are printed oldest first (all of them, or --lines); without it, the latest --lines.
                """)
        @OptionGroup var options: ConfigOptions
        @Option(name: [.customShort("n"), .long], help: "How many events (the latest, or the first after --since).")
        var lines: Int?
        @Option(help: "Only events of this type (e.g. kms.get).") var type: String?
        @Option(help: "Only events by this actor (principal id).") var actor: String?
        @Option(help: "Only events about this project.") var project: String?
        @Option(help: "Only events at or after this time (RFC 3339, or a duration ago: 15m, 2h, 7d).") var since:
            String?
        @Option(help: "Only events before this time (RFC 3339, or a duration ago).") var until: String?
        @Flag(name: .shortAndLong, help: "Keep printing new events.") var follow = false

        func run() async throws {
            let config = try options.load()
            do {
                try await StoreFactory.withEngine(config, logger: quietLogger()) { engine in
                    let ctx = CallContext.system("cli")
                    let now = Date()
                    let sinceDate = try since.map { try AuditTimes.parse($0, now: now) }
                    let untilDate = try until.map { try AuditTimes.parse($0, now: now) }
                    let filters = [type, actor, project].compactMap { $0 }
                    guard filters.count <= 1 else { fail("give one of --type, --actor or --project") }
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys]
                    encoder.dateEncodingStrategy = .iso8601
                    func emit(_ e: ChainedAuditEvent) throws {
                        struct Line: Encodable {
                            var chain: String
                            var sequence: Int64
                            var hash: String
                            var event: AuditEvent
                        }
                        let data = try encoder.encode(
                            Line(chain: e.chain, sequence: e.sequence, hash: e.hash, event: e.event))
                        print(String(decoding: data, as: UTF8.self))
                    }
                    // Where following starts: every chain's end now.
                    let end = try await engine.auditLogEnd(ctx)
                    var search = AuditSearch(
                        type: type, actor: actor, project: project, since: sinceDate, until: untilDate)
                    if sinceDate != nil {
                        var left = lines ?? Int.max
                        search.limit = min(left, 1000)
                        while left > 0 {
                            let page = try await engine.searchAudit(ctx, search)
                            for e in page.items.prefix(left) { try emit(e) }
                            left -= page.items.count
                            guard let next = page.next else { break }
                            search.cursor = next
                            search.limit = min(left, 1000)
                        }
                    } else {
                        search.newestFirst = true
                        search.limit = max(1, min(lines ?? 20, 1000))
                        for e in try await engine.searchAudit(ctx, search).items.reversed() { try emit(e) }
                    }
                    var cursor = end
                    while follow {
                        try await Task.sleep(for: .seconds(1))
                        let page = try await engine.auditEvents(ctx, cursor: cursor, limit: 1000)
                        for e in page.items
                        where AuditTimes.matches(e.event, type: type, actor: actor, project: project) {
                            try emit(e)
                        }
                        cursor = page.next ?? cursor
                    }
                }
            } catch let e as DaemonError {
                fail(e.description)
            } catch let e as EngineError {
                fail(e.message)
            }
        }
    }
}

/// Time arguments of `audit tail`.
enum AuditTimes {
    struct Invalid: Error, CustomStringConvertible { var description: String }

    /// RFC 3339 (`2026-12-06T10:00:00Z`), or a duration before `now` (`90s`, `15m`, `2h`, `7d`).
    static func parse(_ text: String, now: Date) throws -> Date {
        let f = ISO8601DateFormatter()
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let unit = text.last, let scale = units[unit], let n = Double(text.dropLast()), n >= 0 {
            return now.addingTimeInterval(-n * scale)
        }
        throw ValidationError("not a time: \(text) (RFC 3339, or 90s, 15m, 2h, 7d)")
    }

    static func matches(_ e: AuditEvent, type: String?, actor: String?, project: String?) -> Bool {
        (type == nil || e.event.type == type) && (actor == nil || e.actor.metadata["id"] == actor)
            && (project == nil || e.projectId == project)
    }

}

/// `gatehouse status`: the local daemon's readiness, from its operations listener's `/readyz`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show whether the daemon of a data directory is ready (its /readyz); --wait waits for it.",
        discussion: """
            Finds the operations listener's port in <data_dir>/run/listeners.json (written once every listener is \
            bound) and prints /readyz. Exit status 0 when ready, 1 when not (or not running).
            """)
    @OptionGroup var options: ConfigOptions
    @Option(help: "Wait up to this long for the daemon to be ready, e.g. 30s (default: ask once).") var wait: String?

    func run() async throws {
        let config = try options.load()
        let deadline: ContinuousClock.Instant
        if let wait {
            guard let d = ConfigurationLoader.parseDuration(wait) else {
                fail("--wait must be a duration such as 30s or 2m")
            }
            deadline = .now + d
        } else {
            deadline = .now
        }
        guard let listener = config.listeners["operations"], listener.enabled else {
            fail("the operations listener is disabled in this configuration: ask /readyz on the HTTPS listener")
        }
        let host = ["0.0.0.0", "::", ""].contains(listener.address) ? "127.0.0.1" : listener.address
        let runFile = (config.dataDirectory as NSString).appendingPathComponent("run/listeners.json")
        let http = HTTPClient.shared
        var last = "no daemon has written \(runFile) (not started, or still starting)"
        while true {
            if let port = boundPort("operations", dataDirectory: config.dataDirectory) {
                let url = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/readyz"
                do {
                    let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
                    let body = String(buffer: try await response.body.collect(upTo: 1 << 16))
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                    if response.status == .ok {
                        print(body)
                        return
                    }
                    last = body
                } catch {
                    last = "no answer at \(url): \(error)"
                }
            }
            if ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        fail(last)
    }
}
