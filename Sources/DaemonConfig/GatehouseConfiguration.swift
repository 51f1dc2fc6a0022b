import Foundation
import SSHProtocol

/// How a TLS listener treats client certificates.
public enum ClientAuthMode: String, Sendable, CaseIterable {
    /// A certificate chained to the client CA is required; the handshake fails without one.
    case required
    /// A certificate is verified if presented; requests without one are anonymous.
    case optional
    /// No client certificates are requested.
    case off
}

/// One listener's settings (`[listeners.NAME]`).
public struct ListenerConfiguration: Sendable, Hashable {
    public var name: String
    public var enabled: Bool
    public var address: String
    /// 0 picks a free port; the daemon prints and records the one it got.
    public var port: Int
    /// TLS on or off (the operations listener defaults to plain HTTP on loopback).
    public var tls: Bool
    public var certificatePath: String
    public var keyPath: String
    public var clientCAPath: String
    public var clientAuth: ClientAuthMode
    public var maxConnections: Int
    public var idleTimeout: Duration
    public var handshakeTimeout: Duration
    /// From accept to an authenticated session (PostgreSQL) or to the first whole request (KMIP, HTTP).
    public var loginTimeout: Duration
    public var maxMessageSize: Int
    /// Failed authentications a client address may have at once (0: no limit), and per second after that.
    public var failureBurst: Int
    public var failuresPerMinute: Int
}

/// `[tunnel]`: the SSH reverse tunnel to a relay (a stock OpenSSH sshd).
public struct TunnelConfiguration: Sendable, Hashable {
    /// One `forwards` entry, `EXPOSE=LISTEN_HOST:PORT`: EXPOSE is a listener name (`https`, `kmip`, …) or a local
    /// `host:port`; the relay listens on LISTEN_HOST:PORT (port 0 = the relay picks).
    public struct Forward: Sendable, Hashable {
        public var expose: String
        /// Set when EXPOSE is `host:port` rather than a listener name.
        public var targetHost: String?
        public var targetPort: Int?
        public var remoteHost: String
        public var remotePort: Int
    }
    public var relayHost: String
    public var relayPort: Int
    public var user: String
    public var keyPath: String
    /// The relay's host key as a known_hosts line or `type base64`.
    public var relayHostKey: String
    public var forwards: [Forward]
    public var keepaliveInterval: Duration
    public var keepaliveCountMax: Int
    public var reconnectMin: Duration
    public var reconnectMax: Duration
    public var connectTimeout: Duration
}

/// Which store to use.
public enum StorageConfiguration: Sendable, Hashable {
    case sqlite(path: String)
    /// `preparedStatements`: see `storage.postgres_prepared_statements`.
    case postgres(url: String, preparedStatements: Bool = true)
}

/// Where session recordings are kept (`pam.recording_store`).
public enum RecordingStoreKind: String, Sendable, Hashable {
    case local, postgres, s3
}

/// An S3-compatible bucket for session recordings (`[pam.recording_s3]`).
public struct RecordingS3Configuration: Sendable, Hashable {
    /// `https://s3.<region>.amazonaws.com` unless set.
    public var endpoint: String
    public var region: String
    public var bucket: String
    /// Put before every key, as is (e.g. `gatehouse/recordings/`).
    public var prefix: String
    /// Credentials come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`), else from this
    /// shared credentials file (`[profile]`).
    public var credentialsFile: String?
    public var profile: String
    /// CAs to trust for an https endpoint, instead of the system's.
    public var caFile: String?
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key`.
    public var pathStyle: Bool
}

/// Where the root key comes from.
public enum RootKeySource: Sendable, Hashable {
    case file(path: String)
    case environment(variable: String)
    /// A key in a PKCS#11 token, named by a PKCS#11 URI (RFC 7512) with module-path and pin-source.
    case pkcs11(uri: String)
}

/// The daemon's whole, validated configuration.
public struct GatehouseConfiguration: Sendable {
    public var dataDirectory: String
    public var storage: StorageConfiguration
    public var rootKey: RootKeySource
    public var logLevel: String
    public var logFormat: String
    public var adminCommonNames: [String]
    public var auditStreamURL: String?
    public var auditStreamToken: String?
    /// Base URL written into issued certificates for the CRL and OCSP endpoints (default: the HTTPS listener).
    public var pkiPublicURL: String?
    /// The EST profile served at `/.well-known/est/…` without a label.
    public var estDefaultProfile: String?
    /// How often certificate expiry alerts are evaluated.
    public var pkiAlertInterval: Duration = .seconds(3600)
    /// How often the scheduler looks for PAM accounts whose rotation interval has passed.
    public var pamRotationCheckInterval: Duration = .seconds(60)
    /// How often expired session recordings (a project's `recordingRetention`) are looked for and deleted.
    public var pamRetentionCheckInterval: Duration = .seconds(3600)
    /// How often the KMIP listener re-reads the KMIP client CA from storage (for one created on another node).
    public var kmipTrustRefreshInterval: Duration = .seconds(30)
    /// Where PAM notifications (access requests and decisions, sessions, rotation failures) are POSTed.
    public var pamNotifyURL: String?
    public var pamNotifyToken: String?
    /// Where session recordings are kept: this node's directory, or the shared PostgreSQL store (the proxy's files
    /// are then a spool, shipped as the session runs).
    public var pamRecordingStore: RecordingStoreKind = .local
    /// The bucket when `pamRecordingStore` is `.s3`.
    public var pamRecordingS3: RecordingS3Configuration?
    /// Bytes of recordings waiting to reach a shared store past which fail-closed resources refuse new sessions.
    public var pamRecordingMaxBacklog: Int = 256 << 20
    /// Port the ACME http-01 validator connects to.
    public var acmeHTTP01Port: Int = 80
    /// Terms of service URL in ACME directories (nil: none, and no agreement required).
    public var acmeTermsOfService: String?
    /// DNS server (HOST:PORT) for dns-01 validation; nil: the system's first nameserver.
    public var acmeDNSResolver: String?
    /// `website` and `caaIdentities` (RFC 8555 §7.1.1, RFC 8659) announced in ACME directories.
    public var acmeWebsite: String?
    public var acmeCAAIdentities: [String] = []
    /// Port the ACME tls-alpn-01 validator connects to.
    public var acmeTLSALPN01Port: Int = 443
    /// ACME new orders per account and per identifier per hour (0 = unlimited).
    public var acmeOrdersPerAccountPerHour: Int = 3000
    public var acmeOrdersPerIdentifierPerHour: Int = 300
    /// How long a node's validator holds an ACME validation it started; past it (the node stopped) another takes over.
    public var acmeValidationLease: Duration = .seconds(60)
    /// ACME validations one node runs at once.
    public var acmeMaxConcurrentValidations: Int = 16
    public var listeners: [String: ListenerConfiguration]
    /// The outbound reverse tunnel to a relay (`[tunnel]`), nil when disabled.
    public var tunnel: TunnelConfiguration?
    /// Where each setting came from, for `config check`.
    public var sources: [String: String]

    /// The certificate directory made by `gatehouse init`.
    public var certsDirectory: String { (dataDirectory as NSString).appendingPathComponent("certs") }
}

/// One problem found while loading the configuration: where, which key, and why.
public struct ConfigurationProblem: Sendable, Hashable, CustomStringConvertible {
    public var location: String
    public var key: String
    public var reason: String
    public var description: String { "\(location): \(key): \(reason)" }
}

/// All problems found; thrown by `ConfigurationLoader.load`.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigurationProblem]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Loads, overlays and validates configuration: defaults ← file ← environment (`GATEHOUSE_…`) ← command line.
public enum ConfigurationLoader {
    enum Kind { case string, integer, boolean, stringArray, duration }

    struct Key {
        let path: String
        let kind: Kind
        let defaultValue: TOMLValue
        let allowed: [String]?
    }

    /// Listener names the daemon knows, with their default ports and whether they speak TLS.
    public static let listenerDefaults:
        [(
            name: String, port: Int64, tls: Bool, clientAuth: String, idle: String, maxMessage: Int64,
            maxConnections: Int64
        )] = [
            ("https", 8443, true, "optional", "60s", 1_048_576, 1024),
            // KMIP clients (storage arrays, databases) keep a connection open between bursts of key requests.
            ("kmip", 5696, true, "required", "300s", 1_048_576, 1024),
            // Health probes and a Prometheus scraper: few connections, small GET requests.
            ("operations", 9090, false, "off", "60s", 65_536, 64),
            // The PostgreSQL access proxy: engineers' sessions sit idle for long stretches; COPY and large statements
            // need more than the HTTP limit.
            ("postgres", 15432, true, "optional", "8h", 67_108_864, 1024),
        ]

    static let keys: [Key] = {
        var k: [Key] = [
            Key(path: "data_dir", kind: .string, defaultValue: .string(".gatehouse"), allowed: nil),
            Key(
                path: "storage.backend", kind: .string, defaultValue: .string("sqlite"),
                allowed: ["sqlite", "postgres"]),
            Key(path: "storage.sqlite_path", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "storage.postgres_url", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(
                path: "storage.postgres_prepared_statements", kind: .boolean, defaultValue: .boolean(true), allowed: nil
            ),
            Key(
                path: "root_key.source", kind: .string, defaultValue: .string("file"),
                allowed: ["file", "env", "pkcs11"]),
            Key(path: "root_key.pkcs11", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "root_key.file", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "root_key.env", kind: .string, defaultValue: .string("GATEHOUSE_ROOT_KEY"), allowed: nil),
            Key(
                path: "logging.level", kind: .string, defaultValue: .string("info"),
                allowed: ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
            Key(
                path: "logging.format", kind: .string, defaultValue: .string("auto"),
                allowed: ["auto", "json", "text"]),
            Key(
                path: "admin.common_names", kind: .stringArray, defaultValue: .array([.string("gatehouse-admin")]),
                allowed: nil),
            Key(path: "audit.stream_url", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "audit.stream_token", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "pki.public_url", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "pki.alert_interval", kind: .duration, defaultValue: .string("1h"), allowed: nil),
            Key(path: "pki.kmip_trust_refresh_interval", kind: .duration, defaultValue: .string("30s"), allowed: nil),
            Key(path: "pam.rotation_check_interval", kind: .duration, defaultValue: .string("1m"), allowed: nil),
            Key(path: "pam.retention_check_interval", kind: .duration, defaultValue: .string("1h"), allowed: nil),
            Key(path: "pam.notify_url", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "pam.notify_token", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(
                path: "pam.recording_store", kind: .string, defaultValue: .string("auto"),
                allowed: ["auto", "local", "postgres", "s3"]),
            Key(path: "pam.recording_s3.endpoint", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "pam.recording_s3.region", kind: .string, defaultValue: .string("us-east-1"), allowed: nil),
            Key(path: "pam.recording_s3.bucket", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "pam.recording_s3.prefix", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "pam.recording_s3.credentials_file", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "pam.recording_s3.profile", kind: .string, defaultValue: .string("default"), allowed: nil),
            Key(path: "pam.recording_s3.ca_file", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "pam.recording_s3.path_style", kind: .boolean, defaultValue: .boolean(true), allowed: nil),
            Key(path: "pam.recording_max_backlog_mb", kind: .integer, defaultValue: .integer(256), allowed: nil),
            Key(path: "est.default_profile", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "acme.http01_port", kind: .integer, defaultValue: .integer(80), allowed: nil),
            Key(path: "acme.terms_of_service", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "acme.dns_resolver", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "acme.website", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "acme.caa_identities", kind: .stringArray, defaultValue: .array([]), allowed: nil),
            Key(path: "acme.tlsalpn01_port", kind: .integer, defaultValue: .integer(443), allowed: nil),
            Key(path: "acme.orders_per_account_per_hour", kind: .integer, defaultValue: .integer(3000), allowed: nil),
            Key(path: "acme.orders_per_identifier_per_hour", kind: .integer, defaultValue: .integer(300), allowed: nil),
            Key(path: "acme.validation_lease", kind: .duration, defaultValue: .string("60s"), allowed: nil),
            Key(path: "acme.max_concurrent_validations", kind: .integer, defaultValue: .integer(16), allowed: nil),
            Key(path: "tunnel.enabled", kind: .boolean, defaultValue: .boolean(false), allowed: nil),
            Key(path: "tunnel.relay", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "tunnel.user", kind: .string, defaultValue: .string("gatehouse"), allowed: nil),
            Key(path: "tunnel.key", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "tunnel.relay_host_key", kind: .string, defaultValue: .string(""), allowed: nil),
            Key(path: "tunnel.forwards", kind: .stringArray, defaultValue: .array([]), allowed: nil),
            Key(path: "tunnel.keepalive_interval", kind: .duration, defaultValue: .string("30s"), allowed: nil),
            Key(path: "tunnel.keepalive_count_max", kind: .integer, defaultValue: .integer(3), allowed: nil),
            Key(path: "tunnel.reconnect_min", kind: .duration, defaultValue: .string("1s"), allowed: nil),
            Key(path: "tunnel.reconnect_max", kind: .duration, defaultValue: .string("60s"), allowed: nil),
            Key(path: "tunnel.connect_timeout", kind: .duration, defaultValue: .string("10s"), allowed: nil),
        ]
        for l in listenerDefaults {
            let p = "listeners.\(l.name)."
            k += [
                Key(path: p + "enabled", kind: .boolean, defaultValue: .boolean(true), allowed: nil),
                Key(path: p + "address", kind: .string, defaultValue: .string("127.0.0.1"), allowed: nil),
                Key(path: p + "port", kind: .integer, defaultValue: .integer(l.port), allowed: nil),
                Key(path: p + "tls", kind: .boolean, defaultValue: .boolean(l.tls), allowed: nil),
                Key(path: p + "tls_certificate", kind: .string, defaultValue: .string(""), allowed: nil),
                Key(path: p + "tls_key", kind: .string, defaultValue: .string(""), allowed: nil),
                Key(path: p + "client_ca", kind: .string, defaultValue: .string(""), allowed: nil),
                Key(
                    path: p + "client_auth", kind: .string, defaultValue: .string(l.clientAuth),
                    allowed: ["required", "optional", "off"]),
                Key(
                    path: p + "max_connections", kind: .integer, defaultValue: .integer(l.maxConnections), allowed: nil),
                Key(path: p + "idle_timeout", kind: .duration, defaultValue: .string(l.idle), allowed: nil),
                Key(path: p + "handshake_timeout", kind: .duration, defaultValue: .string("10s"), allowed: nil),
                Key(path: p + "login_timeout", kind: .duration, defaultValue: .string("30s"), allowed: nil),
                Key(path: p + "max_message_size", kind: .integer, defaultValue: .integer(l.maxMessage), allowed: nil),
                Key(path: p + "failure_burst", kind: .integer, defaultValue: .integer(100), allowed: nil),
                Key(path: p + "failures_per_minute", kind: .integer, defaultValue: .integer(600), allowed: nil),
            ]
        }
        return k
    }()

    /// Splits `host:port` / `[v6]:port`; nil when malformed.
    public static func splitHostPort(_ text: String, defaultPort: Int? = nil) -> (host: String, port: Int)? {
        var host = text
        var portText: String?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") { portText = String(rest.dropFirst()) } else if !rest.isEmpty { return nil }
        } else if let colon = text.lastIndex(of: ":") {
            if text[..<colon].contains(":") { return nil }  // bare IPv6 needs brackets
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "=" }) else { return nil }
        if let portText {
            guard let p = Int(portText), (0...65535).contains(p) else { return nil }
            return (host, p)
        }
        guard let defaultPort else { return nil }
        return (host, defaultPort)
    }

    static func parseTunnel(
        relay: String, user: String, keyPath: String, hostKey: String, forwards: TOMLValue?, listenerNames: Set<String>,
        problem: (String, String) -> Void
    ) -> TunnelConfiguration? {
        var ok = true
        let relayParts = splitHostPort(relay, defaultPort: 22)
        if relay.isEmpty || relayParts == nil || relayParts?.port == 0 {
            problem("tunnel.relay", "must be HOST or HOST:PORT of the relay's sshd when the tunnel is enabled")
            ok = false
        }
        if user.isEmpty || user.contains(where: { $0.isWhitespace || $0 == "@" || $0 == ":" }) {
            problem("tunnel.user", "must be a user name on the relay")
            ok = false
        }
        if hostKey.isEmpty {
            problem(
                "tunnel.relay_host_key",
                "is required: pin the relay's host key (a known_hosts line or 'ssh-ed25519 AAAA…')")
            ok = false
        } else if (try? SSHHostKeyPin(hostKey)) == nil {
            problem("tunnel.relay_host_key", "is not a known_hosts line or 'type base64' public key")
            ok = false
        }
        var parsed: [TunnelConfiguration.Forward] = []
        var seen = Set<String>()
        if case .array(let items)? = forwards {
            for case .string(let item) in items {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let listen = splitHostPort(parts[1]) else {
                    problem(
                        "tunnel.forwards",
                        "'\(item)' must be EXPOSE=LISTEN_HOST:PORT (EXPOSE: a listener name or host:port)")
                    ok = false
                    continue
                }
                var f = TunnelConfiguration.Forward(expose: parts[0], remoteHost: listen.host, remotePort: listen.port)
                if !listenerNames.contains(parts[0]) {
                    guard let target = splitHostPort(parts[0]), target.port > 0 else {
                        problem(
                            "tunnel.forwards",
                            "'\(parts[0])' is neither a listener name (\(listenerNames.sorted().joined(separator: ", "))) nor host:port"
                        )
                        ok = false
                        continue
                    }
                    f.targetHost = target.host
                    f.targetPort = target.port
                }
                if listen.port != 0, !seen.insert("\(listen.host):\(listen.port)").inserted {
                    problem("tunnel.forwards", "\(parts[1]) is requested twice")
                    ok = false
                }
                parsed.append(f)
            }
        }
        var listed = 0
        if case .array(let items)? = forwards { listed = items.count }
        if listed == 0 {
            problem("tunnel.forwards", "must list at least one forward, e.g. [\"https=127.0.0.1:8443\"]")
            ok = false
        }
        guard ok, let relayParts else { return nil }
        return TunnelConfiguration(
            relayHost: relayParts.host, relayPort: relayParts.port, user: user, keyPath: keyPath, relayHostKey: hostKey,
            forwards: parsed, keepaliveInterval: .seconds(30), keepaliveCountMax: 3, reconnectMin: .seconds(1),
            reconnectMax: .seconds(60), connectTimeout: .seconds(10))
    }

    /// The environment variable that overrides a key: `listeners.https.port` → `GATEHOUSE_LISTENERS_HTTPS_PORT`.
    public static func environmentName(_ path: String) -> String {
        "GATEHOUSE_" + path.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Every known key path, for documentation and tests.
    public static var knownKeys: [String] { keys.map(\.path) }

    /// Every key's built-in default (what applies with no file and no environment), for documentation and tests.
    public static var defaultValues: [String: TOMLValue] {
        Dictionary(uniqueKeysWithValues: keys.map { ($0.path, $0.defaultValue) })
    }

    /// Parses a duration such as `500ms`, `30s`, `5m`, `2h`, `3d`.
    public static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, millis) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            // "ms" must win over "s" and "m": check the longest suffix first by requiring digits only.
            guard !number.isEmpty, number.allSatisfy(\.isNumber), let n = Int64(number), n >= 0, n < 1_000_000_000
            else {
                continue
            }
            return .milliseconds(n * millis)
        }
        return nil
    }

    /// Loads the configuration from an optional file plus the environment.
    /// - Parameters:
    ///   - file: path of a TOML file, or nil for defaults only.
    ///   - environment: variables to read overrides from.
    ///   - dataDirectoryOverride: `--data-dir` from the command line (wins over everything).
    public static func load(
        file: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        dataDirectoryOverride: String? = nil
    ) throws -> GatehouseConfiguration {
        var document = TOMLDocument()
        var problems: [ConfigurationProblem] = []
        let fileLabel = file ?? "(defaults)"
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError(problems: [
                    ConfigurationProblem(
                        location: file, key: "-", reason: "cannot read the file (missing or not readable)")
                ])
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw ConfigurationError(problems: [
                    ConfigurationProblem(location: file, key: "-", reason: "not UTF-8 text")
                ])
            }
            do {
                document = try TOMLDocument(parsing: text)
            } catch let e as TOMLDocument.SyntaxError {
                throw ConfigurationError(problems: [
                    ConfigurationProblem(location: "\(file):\(e.line)", key: "-", reason: e.message)
                ])
            }
        }
        let known = Dictionary(uniqueKeysWithValues: keys.map { ($0.path, $0) })
        for (path, entry) in document.entries.sorted(by: { $0.value.line < $1.value.line }) where known[path] == nil {
            problems.append(
                ConfigurationProblem(location: "\(fileLabel):\(entry.line)", key: path, reason: "unknown key"))
        }

        var values: [String: TOMLValue] = [:]
        var sources: [String: String] = [:]
        for key in keys {
            var value = key.defaultValue
            var source = "default"
            if let entry = document.entries[key.path] {
                value = entry.value
                source = "\(fileLabel):\(entry.line)"
            }
            let envName = environmentName(key.path)
            if let env = environment[envName] {
                source = "environment \(envName)"
                switch key.kind {
                case .string, .duration: value = .string(env)
                case .integer:
                    if let n = Int64(env) { value = .integer(n) } else { value = .string(env) }
                case .boolean:
                    if ["true", "1", "yes"].contains(env.lowercased()) {
                        value = .boolean(true)
                    } else if ["false", "0", "no"].contains(env.lowercased()) {
                        value = .boolean(false)
                    } else {
                        value = .string(env)
                    }
                case .stringArray:
                    value = .array(env.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) })
                }
            }
            if key.path == "data_dir", let dataDirectoryOverride {
                value = .string(dataDirectoryOverride)
                source = "command line --data-dir"
            }
            // Type checks.
            let ok: Bool
            switch (key.kind, value) {
            case (.string, .string), (.integer, .integer), (.boolean, .boolean): ok = true
            case (.duration, .string(let s)): ok = parseDuration(s) != nil
            case (.stringArray, .array(let a)):
                ok = a.allSatisfy { if case .string = $0 { return true } else { return false } }
            default: ok = false
            }
            if !ok {
                let expected: String
                switch key.kind {
                case .string: expected = "a string"
                case .integer: expected = "an integer"
                case .boolean: expected = "true or false"
                case .stringArray: expected = "an array of strings"
                case .duration: expected = "a duration such as \"500ms\", \"30s\", \"5m\", \"2h\" or \"3d\""
                }
                problems.append(
                    ConfigurationProblem(location: source, key: key.path, reason: "must be \(expected), got \(value)"))
                continue
            }
            if let allowed = key.allowed, case .string(let s) = value, !allowed.contains(s) {
                problems.append(
                    ConfigurationProblem(
                        location: source, key: key.path,
                        reason: "must be one of \(allowed.joined(separator: ", ")), got \"\(s)\""))
                continue
            }
            values[key.path] = value
            sources[key.path] = source
        }
        func str(_ p: String) -> String { if case .string(let s)? = values[p] { return s } else { return "" } }
        func int(_ p: String) -> Int64 { if case .integer(let i)? = values[p] { return i } else { return 0 } }
        func bool(_ p: String) -> Bool { if case .boolean(let b)? = values[p] { return b } else { return false } }
        func problem(_ p: String, _ reason: String) {
            problems.append(ConfigurationProblem(location: sources[p] ?? fileLabel, key: p, reason: reason))
        }

        let dataDir = str("data_dir")
        if dataDir.isEmpty { problem("data_dir", "must not be empty") }
        func inData(_ name: String) -> String { (dataDir as NSString).appendingPathComponent(name) }

        let storage: StorageConfiguration
        if str("storage.backend") == "postgres" {
            let url = str("storage.postgres_url")
            if url.isEmpty {
                problem("storage.postgres_url", "is required when storage.backend = \"postgres\"")
            } else if !(url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"))
                || URLComponents(string: url)?.host == nil
            {
                problem("storage.postgres_url", "must be a postgres://user:password@host:port/database URL")
            }
            storage = .postgres(url: url, preparedStatements: bool("storage.postgres_prepared_statements"))
        } else {
            storage = .sqlite(
                path: str("storage.sqlite_path").isEmpty ? inData("gatehouse.sqlite") : str("storage.sqlite_path"))
        }
        let rootKey: RootKeySource
        switch str("root_key.source") {
        case "env": rootKey = .environment(variable: str("root_key.env"))
        case "pkcs11":
            let uri = str("root_key.pkcs11")
            if !uri.lowercased().hasPrefix("pkcs11:") {
                problem(
                    "root_key.pkcs11",
                    "must be a PKCS#11 URI, pkcs11:token=LABEL;object=KEY?module-path=/path/module.so&pin-source=file:/path/pin"
                )
            }
            rootKey = .pkcs11(uri: uri)
        default: rootKey = .file(path: str("root_key.file").isEmpty ? inData("root.key") : str("root_key.file"))
        }

        var listeners: [String: ListenerConfiguration] = [:]
        var usedPorts: [String: String] = [:]
        for l in listenerDefaults {
            let p = "listeners.\(l.name)."
            let port = int(p + "port")
            if port < 0 || port > 65535 { problem(p + "port", "must be between 0 and 65535") }
            let maxConnections = int(p + "max_connections")
            if maxConnections < 1 { problem(p + "max_connections", "must be at least 1") }
            let maxMessage = int(p + "max_message_size")
            if maxMessage < 1024 || maxMessage > 1 << 30 {
                problem(p + "max_message_size", "must be between 1024 and 1073741824")
            }
            if parseDuration(str(p + "login_timeout")) == .zero { problem(p + "login_timeout", "must be more than 0") }
            if int(p + "failure_burst") < 0 { problem(p + "failure_burst", "must be 0 (no limit) or more") }
            if int(p + "failures_per_minute") < 1 { problem(p + "failures_per_minute", "must be at least 1") }
            let address = str(p + "address")
            if address.isEmpty { problem(p + "address", "must not be empty") }
            let enabled = bool(p + "enabled")
            if enabled, port != 0 {
                let slot = "\(address):\(port)"
                if let other = usedPorts[slot] { problem(p + "port", "\(slot) is already used by listener \(other)") }
                usedPorts[slot] = l.name
            }
            let tls = bool(p + "tls")
            let clientAuth = ClientAuthMode(rawValue: str(p + "client_auth")) ?? .off
            if !tls, clientAuth != .off {
                problem(p + "client_auth", "requires tls = true")
            }
            listeners[l.name] = ListenerConfiguration(
                name: l.name, enabled: enabled, address: address, port: Int(port), tls: tls,
                certificatePath: str(p + "tls_certificate").isEmpty
                    ? inData("certs/server.crt") : str(p + "tls_certificate"),
                keyPath: str(p + "tls_key").isEmpty ? inData("certs/server.key") : str(p + "tls_key"),
                clientCAPath: str(p + "client_ca").isEmpty ? inData("certs/ca.crt") : str(p + "client_ca"),
                clientAuth: clientAuth, maxConnections: Int(max(1, maxConnections)),
                idleTimeout: parseDuration(str(p + "idle_timeout")) ?? .seconds(60),
                handshakeTimeout: parseDuration(str(p + "handshake_timeout")) ?? .seconds(10),
                loginTimeout: parseDuration(str(p + "login_timeout")) ?? .seconds(30),
                maxMessageSize: Int(maxMessage), failureBurst: Int(max(0, int(p + "failure_burst"))),
                failuresPerMinute: Int(max(1, int(p + "failures_per_minute"))))
        }
        var admins: [String] = []
        if case .array(let a)? = values["admin.common_names"] {
            admins = a.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        }
        var caaIdentities: [String] = []
        if case .array(let a)? = values["acme.caa_identities"] {
            caaIdentities = a.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        }
        for name in caaIdentities
        where name.isEmpty || name.count > 253 || name.contains(where: { $0.isWhitespace || $0 == "/" }) {
            problem("acme.caa_identities", "'\(name)' is not a domain name")
        }
        let website = str("acme.website")
        if !website.isEmpty, !(website.hasPrefix("http://") || website.hasPrefix("https://")) {
            problem("acme.website", "must be an http:// or https:// URL")
        }
        let streamURL = str("audit.stream_url")
        if !streamURL.isEmpty, !(streamURL.hasPrefix("http://") || streamURL.hasPrefix("https://")) {
            problem("audit.stream_url", "must be an http:// or https:// URL")
        }
        let notifyURL = str("pam.notify_url")
        if !notifyURL.isEmpty, !(notifyURL.hasPrefix("http://") || notifyURL.hasPrefix("https://")) {
            problem("pam.notify_url", "must be an http:// or https:// URL")
        }
        var recordingStore: RecordingStoreKind = .local
        switch (str("pam.recording_store"), storage) {
        case ("postgres", .sqlite):
            problem("pam.recording_store", "\"postgres\" needs storage.backend = \"postgres\"")
        case ("postgres", _), ("auto", .postgres): recordingStore = .postgres
        case ("s3", _): recordingStore = .s3
        default: recordingStore = .local
        }
        var recordingS3: RecordingS3Configuration?
        if recordingStore == .s3 {
            let region = str("pam.recording_s3.region")
            let endpoint =
                str("pam.recording_s3.endpoint").isEmpty
                ? "https://s3.\(region).amazonaws.com" : str("pam.recording_s3.endpoint")
            if !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) || URL(string: endpoint)?.host == nil
            {
                problem("pam.recording_s3.endpoint", "must be an http:// or https:// URL")
            }
            if region.isEmpty || region.contains(where: { !($0.isLetter || $0.isNumber || $0 == "-") }) {
                problem("pam.recording_s3.region", "must be a region name such as us-east-1")
            }
            let bucket = str("pam.recording_s3.bucket")
            if bucket.isEmpty { problem("pam.recording_s3.bucket", "is required with pam.recording_store = \"s3\"") }
            func optionalPath(_ key: String) -> String? {
                let value = str(key)
                return value.isEmpty ? nil : (value.hasPrefix("/") ? value : inData(value))
            }
            recordingS3 = RecordingS3Configuration(
                endpoint: endpoint, region: region, bucket: bucket, prefix: str("pam.recording_s3.prefix"),
                credentialsFile: optionalPath("pam.recording_s3.credentials_file"),
                profile: str("pam.recording_s3.profile"),
                caFile: optionalPath("pam.recording_s3.ca_file"), pathStyle: bool("pam.recording_s3.path_style"))
        }
        var acmePort = 80
        if case .integer(let n)? = values["acme.http01_port"] {
            if (1...65535).contains(n) { acmePort = Int(n) } else { problem("acme.http01_port", "must be 1–65535") }
        }
        var alpnPort = 443
        if case .integer(let n)? = values["acme.tlsalpn01_port"] {
            if (1...65535).contains(n) { alpnPort = Int(n) } else { problem("acme.tlsalpn01_port", "must be 1–65535") }
        }
        let publicURL = str("pki.public_url")
        if !publicURL.isEmpty, !(publicURL.hasPrefix("http://") || publicURL.hasPrefix("https://")) {
            problem("pki.public_url", "must be an http:// or https:// URL")
        }
        var tunnel: TunnelConfiguration?
        if bool("tunnel.enabled") {
            tunnel = parseTunnel(
                relay: str("tunnel.relay"), user: str("tunnel.user"),
                keyPath: str("tunnel.key").isEmpty ? inData("tunnel/gateway_ed25519") : str("tunnel.key"),
                hostKey: str("tunnel.relay_host_key"), forwards: values["tunnel.forwards"],
                listenerNames: Set(listenerDefaults.map(\.name)), problem: problem)
            if var t = tunnel {
                t.keepaliveInterval = parseDuration(str("tunnel.keepalive_interval")) ?? .seconds(30)
                if t.keepaliveInterval < .seconds(1) { problem("tunnel.keepalive_interval", "must be at least 1s") }
                t.keepaliveCountMax = Int(int("tunnel.keepalive_count_max"))
                if !(1...100).contains(t.keepaliveCountMax) { problem("tunnel.keepalive_count_max", "must be 1–100") }
                t.reconnectMin = parseDuration(str("tunnel.reconnect_min")) ?? .seconds(1)
                t.reconnectMax = parseDuration(str("tunnel.reconnect_max")) ?? .seconds(60)
                if t.reconnectMin < .milliseconds(10) { problem("tunnel.reconnect_min", "must be at least 10ms") }
                if t.reconnectMax < t.reconnectMin {
                    problem("tunnel.reconnect_max", "must not be below tunnel.reconnect_min")
                }
                t.connectTimeout = parseDuration(str("tunnel.connect_timeout")) ?? .seconds(10)
                if t.connectTimeout < .milliseconds(100) { problem("tunnel.connect_timeout", "must be at least 100ms") }
                for f in t.forwards where f.targetHost == nil && listeners[f.expose]?.enabled != true {
                    problem("tunnel.forwards", "listener \(f.expose) is not enabled")
                }
                tunnel = t
            }
        }
        let validationLease = parseDuration(str("acme.validation_lease")) ?? .seconds(60)
        if validationLease < .seconds(1) || validationLease > .seconds(3600) {
            problem("acme.validation_lease", "must be 1s–1h")
        }
        let maxValidations = int("acme.max_concurrent_validations")
        if !(1...1000).contains(maxValidations) { problem("acme.max_concurrent_validations", "must be 1–1000") }
        if !problems.isEmpty { throw ConfigurationError(problems: problems) }
        return GatehouseConfiguration(
            dataDirectory: dataDir, storage: storage, rootKey: rootKey, logLevel: str("logging.level"),
            logFormat: str("logging.format"), adminCommonNames: admins,
            auditStreamURL: streamURL.isEmpty ? nil : streamURL,
            auditStreamToken: str("audit.stream_token").isEmpty ? nil : str("audit.stream_token"),
            pkiPublicURL: publicURL.isEmpty ? nil : publicURL,
            estDefaultProfile: str("est.default_profile").isEmpty ? nil : str("est.default_profile"),
            pkiAlertInterval: parseDuration(str("pki.alert_interval")) ?? .seconds(3600),
            pamRotationCheckInterval: parseDuration(str("pam.rotation_check_interval")) ?? .seconds(60),
            pamRetentionCheckInterval: max(
                .seconds(1), parseDuration(str("pam.retention_check_interval")) ?? .seconds(3600)),
            kmipTrustRefreshInterval: parseDuration(str("pki.kmip_trust_refresh_interval")) ?? .seconds(30),
            pamNotifyURL: notifyURL.isEmpty ? nil : notifyURL,
            pamNotifyToken: str("pam.notify_token").isEmpty ? nil : str("pam.notify_token"),
            pamRecordingStore: recordingStore,
            pamRecordingS3: recordingS3,
            pamRecordingMaxBacklog: Int(max(0, int("pam.recording_max_backlog_mb"))) << 20,
            acmeHTTP01Port: acmePort,
            acmeTermsOfService: str("acme.terms_of_service").isEmpty ? nil : str("acme.terms_of_service"),
            acmeDNSResolver: str("acme.dns_resolver").isEmpty ? nil : str("acme.dns_resolver"),
            acmeWebsite: str("acme.website").isEmpty ? nil : str("acme.website"),
            acmeCAAIdentities: caaIdentities,
            acmeTLSALPN01Port: alpnPort,
            acmeOrdersPerAccountPerHour: Int(max(0, int("acme.orders_per_account_per_hour"))),
            acmeOrdersPerIdentifierPerHour: Int(max(0, int("acme.orders_per_identifier_per_hour"))),
            acmeValidationLease: validationLease, acmeMaxConcurrentValidations: Int(maxValidations),
            listeners: listeners, tunnel: tunnel, sources: sources)
    }
}
