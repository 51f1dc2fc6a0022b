import DaemonConfig
import Foundation
import Testing

/// Finds the repository root from this file's path (tests run from the package directory anyway).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

func write(_ text: String) throws -> String {
    let path = NSTemporaryDirectory() + "gh-config-\(UUID().uuidString).toml"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite struct ConfigurationTests {
    @Test func annotatedDefaultFileLoadsAndCoversEveryKey() throws {
        let path = repositoryRoot + "/Config/gatehouse.toml"
        let config = try ConfigurationLoader.load(file: path, environment: [:])
        #expect(config.dataDirectory == ".gatehouse")
        #expect(config.storage == .sqlite(path: ".gatehouse/gatehouse.sqlite"))
        #expect(config.listeners["https"]?.port == 8443)
        #expect(config.listeners["https"]?.clientAuth == .optional)
        let doc = try TOMLDocument(parsing: String(contentsOfFile: path, encoding: .utf8))
        #expect(Set(doc.entries.keys) == Set(ConfigurationLoader.knownKeys), "the annotated file documents every key")
    }

    /// The annotated file says "every key below shows its default": each value in it is the built-in default.
    @Test func annotatedFileShowsTheBuiltInDefaults() throws {
        let doc = try TOMLDocument(
            parsing: String(contentsOfFile: repositoryRoot + "/Config/gatehouse.toml", encoding: .utf8))
        let defaults = ConfigurationLoader.defaultValues
        #expect(!doc.entries.isEmpty)
        for (path, entry) in doc.entries.sorted(by: { $0.key < $1.key }) {
            #expect(
                defaults[path] == entry.value,
                "Config/gatehouse.toml:\(entry.line) \(path) = \(entry.value), built in: \(defaults[path].map { "\($0)" } ?? "none")"
            )
        }
        // The loaded values agree too (no default applied elsewhere behind the key's back).
        let none = try ConfigurationLoader.load(file: nil, environment: [:])
        for name in ["https", "kmip", "operations", "postgres"] {
            let l = try #require(none.listeners[name])
            func entry(_ key: String) -> TOMLValue? { doc.entries["listeners.\(name).\(key)"]?.value }
            #expect(entry("max_connections") == .integer(Int64(l.maxConnections)), "\(name).max_connections")
            #expect(entry("max_message_size") == .integer(Int64(l.maxMessageSize)), "\(name).max_message_size")
            for (key, value) in [
                ("idle_timeout", l.idleTimeout), ("handshake_timeout", l.handshakeTimeout),
                ("login_timeout", l.loginTimeout),
            ] {
                if case .string(let text)? = entry(key) {
                    #expect(ConfigurationLoader.parseDuration(text) == value, "\(name).\(key)")
                } else {
                    Issue.record("\(name).\(key) is not documented")
                }
            }
        }
    }

    @Test func tunnelSettingsAreValidatedWithReasons() throws {
        let relayKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJyqU1XB+gW89h37OOcFwNmTDJVEjKqRrHjmJa6R2wjw relay"
        let good = try ConfigurationLoader.load(
            file: nil,
            environment: [
                "GATEHOUSE_TUNNEL_ENABLED": "true", "GATEHOUSE_TUNNEL_RELAY": "relay.example.net",
                "GATEHOUSE_TUNNEL_RELAY_HOST_KEY": "[relay.example.net]:22 " + relayKey,
                "GATEHOUSE_TUNNEL_FORWARDS": "https=127.0.0.1:8443, 127.0.0.1:5432=[::1]:0",
            ])
        let t = try #require(good.tunnel)
        #expect(t.relayHost == "relay.example.net" && t.relayPort == 22 && t.user == "gatehouse")
        #expect(t.keyPath == ".gatehouse/tunnel/gateway_ed25519")
        #expect(t.forwards.count == 2)
        #expect(t.forwards[0].expose == "https" && t.forwards[0].targetHost == nil && t.forwards[0].remotePort == 8443)
        #expect(
            t.forwards[1].targetHost == "127.0.0.1" && t.forwards[1].targetPort == 5432
                && t.forwards[1].remoteHost == "::1")
        #expect(t.keepaliveInterval == .seconds(30) && t.keepaliveCountMax == 3)
        #expect(try ConfigurationLoader.load(file: nil, environment: [:]).tunnel == nil, "disabled by default")

        func problems(_ env: [String: String]) -> String {
            do {
                _ = try ConfigurationLoader.load(
                    file: nil, environment: ["GATEHOUSE_TUNNEL_ENABLED": "true"].merging(env) { $1 })
                return ""
            } catch { return "\(error)" }
        }
        let missing = problems([:])
        #expect(missing.contains("tunnel.relay: must be HOST or HOST:PORT"), "\(missing)")
        #expect(missing.contains("tunnel.relay_host_key: is required"), "\(missing)")
        #expect(missing.contains("tunnel.forwards: must list at least one forward"), "\(missing)")
        let bad = problems([
            "GATEHOUSE_TUNNEL_RELAY": "relay:99999", "GATEHOUSE_TUNNEL_RELAY_HOST_KEY": "ssh-dss AAAA",
            "GATEHOUSE_TUNNEL_FORWARDS": "nosuchlistener=127.0.0.1:1,https", "GATEHOUSE_TUNNEL_RECONNECT_MAX": "10ms",
        ])
        #expect(bad.contains("tunnel.relay: must be HOST or HOST:PORT"), "\(bad)")
        #expect(bad.contains("tunnel.relay_host_key: is not a known_hosts line"), "\(bad)")
        #expect(bad.contains("'nosuchlistener' is neither a listener name"), "\(bad)")
        #expect(bad.contains("'https' must be EXPOSE=LISTEN_HOST:PORT"), "\(bad)")
        let disabledListener = problems([
            "GATEHOUSE_TUNNEL_RELAY": "relay", "GATEHOUSE_TUNNEL_RELAY_HOST_KEY": relayKey,
            "GATEHOUSE_TUNNEL_FORWARDS": "kmip=127.0.0.1:5696", "GATEHOUSE_LISTENERS_KMIP_ENABLED": "false",
            "GATEHOUSE_TUNNEL_RECONNECT_MIN": "5s", "GATEHOUSE_TUNNEL_RECONNECT_MAX": "1s",
        ])
        #expect(disabledListener.contains("listener kmip is not enabled"), "\(disabledListener)")
        #expect(disabledListener.contains("tunnel.reconnect_max: must not be below"), "\(disabledListener)")
    }

    @Test func defaultsWithoutAFile() throws {
        let config = try ConfigurationLoader.load(file: nil, environment: [:])
        #expect(config.rootKey == .file(path: ".gatehouse/root.key"))
        #expect(config.listeners["operations"]?.tls == false)
        #expect(config.adminCommonNames == ["gatehouse-admin"])
    }

    @Test func environmentOverridesFileAndCommandLineOverridesBoth() throws {
        let path = try write("data_dir = \"/from/file\"\n[listeners.https]\nport = 1111\n")
        let config = try ConfigurationLoader.load(
            file: path,
            environment: [
                "GATEHOUSE_LISTENERS_HTTPS_PORT": "2222", "GATEHOUSE_STORAGE_BACKEND": "postgres",
                "GATEHOUSE_STORAGE_POSTGRES_URL": "postgres://u:p@db.internal:5432/gh",
                "GATEHOUSE_ADMIN_COMMON_NAMES": "a, b",
            ], dataDirectoryOverride: "/cli")
        #expect(config.listeners["https"]?.port == 2222)
        #expect(config.storage == .postgres(url: "postgres://u:p@db.internal:5432/gh", preparedStatements: true))
        let pooled = try ConfigurationLoader.load(
            file: path,
            environment: [
                "GATEHOUSE_STORAGE_BACKEND": "postgres",
                "GATEHOUSE_STORAGE_POSTGRES_URL": "postgres://u:p@pooler:6432/gh",
                "GATEHOUSE_STORAGE_POSTGRES_PREPARED_STATEMENTS": "false",
            ], dataDirectoryOverride: nil)
        #expect(pooled.storage == .postgres(url: "postgres://u:p@pooler:6432/gh", preparedStatements: false))
        #expect(config.dataDirectory == "/cli")
        #expect(config.adminCommonNames == ["a", "b"])
        #expect(config.sources["listeners.https.port"] == "environment GATEHOUSE_LISTENERS_HTTPS_PORT")
    }

    @Test func everyErrorNamesFileLineKeyAndReason() throws {
        let path = try write(
            """
            data_dir = "/tmp/x"
            colour = "blue"
            [storage]
            backend = "mysql"
            [listeners.https]
            port = 70000
            idle_timeout = "soon"
            client_auth = "sometimes"
            max_connections = "many"
            """)
        do {
            _ = try ConfigurationLoader.load(file: path, environment: [:])
            Issue.record("expected errors")
        } catch let e as ConfigurationError {
            let text = e.description
            #expect(text.contains("\(path):2: colour: unknown key"))
            #expect(text.contains("\(path):4: storage.backend: must be one of sqlite, postgres"))
            #expect(text.contains("listeners.https.port: must be between 0 and 65535"))
            #expect(text.contains("\(path):7: listeners.https.idle_timeout: must be a duration"))
            #expect(text.contains("\(path):8: listeners.https.client_auth: must be one of required, optional, off"))
            #expect(text.contains("\(path):9: listeners.https.max_connections: must be an integer"))
        }
    }

    @Test func pkcs11RootKeyNeedsAURI() throws {
        let uri =
            "pkcs11:token=gh;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/gh/pin"
        let good = try ConfigurationLoader.load(
            file: nil, environment: ["GATEHOUSE_ROOT_KEY_SOURCE": "pkcs11", "GATEHOUSE_ROOT_KEY_PKCS11": uri])
        #expect(good.rootKey == .pkcs11(uri: uri))
        #expect(throws: ConfigurationError.self) {
            _ = try ConfigurationLoader.load(file: nil, environment: ["GATEHOUSE_ROOT_KEY_SOURCE": "pkcs11"])
        }
        do {
            _ = try ConfigurationLoader.load(
                file: nil, environment: ["GATEHOUSE_ROOT_KEY_SOURCE": "pkcs11", "GATEHOUSE_ROOT_KEY_PKCS11": "/x.so"])
            Issue.record("a path is not a PKCS#11 URI")
        } catch let e as ConfigurationError {
            #expect(e.description.contains("root_key.pkcs11: must be a PKCS#11 URI"), "\(e.description)")
        }
    }

    @Test func syntaxErrorsNameTheLine() throws {
        for (text, line) in [
            ("a = \"unterminated\n", 1), ("\n\n[broken\n", 3), ("x = what\n", 1), ("a = 1\na = 2\n", 2),
        ] {
            let path = try write(text)
            #expect(throws: ConfigurationError.self) { _ = try ConfigurationLoader.load(file: path, environment: [:]) }
            do { _ = try ConfigurationLoader.load(file: path, environment: [:]) } catch let e as ConfigurationError {
                #expect(e.problems.first?.location == "\(path):\(line)")
            }
        }
    }

    @Test func missingFileAndPostgresWithoutURL() throws {
        #expect(throws: ConfigurationError.self) {
            _ = try ConfigurationLoader.load(file: "/nonexistent/gh.toml", environment: [:])
        }
        do {
            _ = try ConfigurationLoader.load(file: nil, environment: ["GATEHOUSE_STORAGE_BACKEND": "postgres"])
            Issue.record("expected an error")
        } catch let e as ConfigurationError {
            #expect(e.description.contains("storage.postgres_url: is required"))
        }
    }

    @Test func durations() {
        #expect(ConfigurationLoader.parseDuration("500ms") == .milliseconds(500))
        #expect(ConfigurationLoader.parseDuration("30s") == .seconds(30))
        #expect(ConfigurationLoader.parseDuration("5m") == .seconds(300))
        #expect(ConfigurationLoader.parseDuration("2h") == .seconds(7200))
        #expect(ConfigurationLoader.parseDuration("3d") == .seconds(259_200))
        #expect(ConfigurationLoader.parseDuration("3") == nil)
        #expect(ConfigurationLoader.parseDuration("-3s") == nil)
        #expect(ConfigurationLoader.parseDuration("s") == nil)
    }

    @Test func duplicatePortsAreRefused() throws {
        let path = try write("[listeners.operations]\nport = 8443\n")
        #expect(throws: ConfigurationError.self) { _ = try ConfigurationLoader.load(file: path, environment: [:]) }
    }
}
