import ArgumentParser
import Daemon
import DaemonConfig
import Foundation

/// `gatehouse tunnel …`: the reverse tunnel to a relay.
struct TunnelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tunnel", abstract: "The outbound SSH reverse tunnel to a relay ([tunnel] in the configuration).",
        subcommands: [Status.self, RelayConfig.self])

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the running daemon's tunnel: state, relay, forwards, connections, bytes, last error. "
                + "Exit status 0 when established, 3 when not, 1 when no daemon serves the data directory.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "Output format: table or json") var output: APIOptions.OutputFormat = .table

        func run() throws {
            let config = try options.load()
            // run/tunnel.json outlives a daemon that was killed: only a daemon holding the directory's lock speaks.
            guard DataDirectoryLock.holder(dataDirectory: config.dataDirectory) != nil else {
                fail("not running: no gatehouse daemon serves the data directory \(config.dataDirectory)")
            }
            let path = (config.dataDirectory as NSString).appendingPathComponent("run/tunnel.json")
            guard let data = FileManager.default.contents(atPath: path),
                let status = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else {
                fail("no tunnel status at \(path): the daemon is not running or [tunnel] is not enabled")
            }
            if output == .json {
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("state:        \(status["state"] as? String ?? "?")")
                print("relay:        \(status["relay"] as? String ?? "?")")
                print("since:        \(status["since"] as? String ?? "?")")
                print("sessions:     \(status["sessions"] as? Int ?? 0)")
                print(
                    "connections:  \(status["activeConnections"] as? Int ?? 0) active, \(status["totalConnections"] as? Int ?? 0) total"
                )
                print(
                    "bytes:        \(status["bytesFromRelay"] as? Int ?? 0) from relay, \(status["bytesToRelay"] as? Int ?? 0) to relay"
                )
                if let next = status["nextAttempt"] as? String { print("next attempt: \(next)") }
                if let error = status["lastError"] as? String { print("last error:   \(error)") }
                for f in status["forwards"] as? [[String: Any]] ?? [] {
                    let bound = (f["boundPort"] as? Int).map { " (bound port \($0))" } ?? ""
                    let error = (f["error"] as? String).map { ": \($0)" } ?? ""
                    let name = f["name"] as? String ?? "?"
                    let target = f["target"] as? String ?? "?"
                    let exposed = name == target ? target : "\(name) (\(target))"
                    print(
                        "forward:      \(f["listen"] as? String ?? "?") → \(exposed) \(f["state"] as? String ?? "?")\(bound)\(error)"
                    )
                }
            }
            if status["state"] as? String != "established" { throw ExitCode(3) }
        }
    }

    struct RelayConfig: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "relay-config",
            abstract:
                "Print the sshd_config and authorized_keys snippets that restrict the relay account to exactly the configured forwards."
        )
        @OptionGroup var options: ConfigOptions
        @Option(help: "Forward (EXPOSE=LISTEN_HOST:PORT) when [tunnel] is not configured; repeatable.") var forward:
            [String] = []
        @Option(help: "Relay account name (default: tunnel.user).") var user: String?
        @Flag(help: "Print only the authorized_keys line.") var authorizedKeys = false

        func run() throws {
            let config = try options.load()
            var listens: [(host: String, port: Int)] =
                config.tunnel?.forwards.map { ($0.remoteHost, $0.remotePort) } ?? []
            for f in forward {
                guard
                    let listen = f.split(separator: "=", maxSplits: 1).last.flatMap({
                        ConfigurationLoader.splitHostPort(String($0))
                    })
                else {
                    throw ValidationError("--forward '\(f)' must be EXPOSE=LISTEN_HOST:PORT")
                }
                listens.append(listen)
            }
            guard !listens.isEmpty else {
                throw ValidationError(
                    "no forwards: enable [tunnel] with tunnel.forwards, or pass --forward EXPOSE=LISTEN_HOST:PORT")
            }
            let account = user ?? config.tunnel?.user ?? "gatehouse"
            let keyPath = config.tunnel?.keyPath ?? GatewayKey.defaultPath(dataDirectory: config.dataDirectory)
            let publicKey: String
            do {
                publicKey = try GatewayKey.publicKeyLine(path: keyPath)
            } catch {
                fail("\(error)")
            }
            func spec(_ l: (host: String, port: Int)) -> String {
                (l.host.contains(":") ? "[\(l.host)]" : l.host) + ":" + (l.port == 0 ? "*" : String(l.port))
            }
            let permits = listens.map { "permitlisten=\"\(spec($0))\"" }.joined(separator: ",")
            let line = "restrict,port-forwarding,\(permits) \(publicKey)"
            if authorizedKeys {
                print(line)
                return
            }
            let loopbackOnly = listens.allSatisfy { ["127.0.0.1", "::1", "localhost"].contains($0.host) }
            print(
                """
                # Relay set-up for this gateway (a stock OpenSSH sshd, 7.8 or later).
                # The relay only ever carries the clients' own TLS sessions with Gatehouse: it cannot read them.
                #
                # 1. A forwarding-only account (no password, no shell):
                #      useradd --system --create-home --shell /usr/sbin/nologin \(account)
                #
                # 2. Append to /etc/ssh/sshd_config, then: sshd -t && systemctl reload ssh
                Match User \(account)
                    AuthenticationMethods publickey
                    AllowTcpForwarding remote
                    PermitListen \(listens.map(spec).joined(separator: " "))
                    PermitOpen none
                    AllowStreamLocalForwarding no
                    AllowAgentForwarding no
                    X11Forwarding no
                    PermitTTY no
                    ForceCommand /usr/sbin/nologin
                    GatewayPorts \(loopbackOnly ? "no" : "clientspecified")
                    ClientAliveInterval 30
                    ClientAliveCountMax 3

                # 3. ~\(account)/.ssh/authorized_keys (mode 0600, owned by \(account)):
                \(line)

                # 4. Pin the relay's host key in the gateway's configuration (tunnel.relay_host_key), for example the
                #    output of `cat /etc/ssh/ssh_host_ed25519_key.pub` on the relay. Ed25519 or ECDSA host keys.
                """)
        }
    }
}
