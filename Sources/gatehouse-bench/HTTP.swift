import ArgumentParser
import Foundation

/// `gatehouse-bench http`: the per-request cost of the HTTPS front end against Debian's nginx, in the same run.
struct HTTPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract:
            "Gatehouse's HTTPS front end against nginx (wrk, keep-alive) and full mTLS handshakes (openssl s_time).",
        discussion: """
            Starts `gatehouse serve` on a new data directory (SQLite, self-made certificates) and Debian's nginx with \
            the daemon's own server certificate and key (so the same key type and chain), then measures with wrk \
            (keep-alive, --threads threads, --connections connections):
              nginx     GET /healthz over HTTPS: a static `return 200` (the reference)
              gatehouse GET /healthz over HTTPS
              gatehouse GET /api/v1/whoami with a bearer token (an identity made for the run)
              gatehouse HEAD new-nonce of an ACME directory
            and full handshakes: --handshake-clients `openssl s_time -new` processes, each a new TLS connection with the \
            client certificate per request, against nginx (ssl_verify_client on, GET /healthz) and Gatehouse (GET \
            /api/v1/whoami, answered for the client certificate's principal). Prints requests/s, \
            p50/p99 and the ratio to nginx's static answer.
            """)

    @Option(help: "The gatehouse binary.") var gatehouse = ".build/release/gatehouse"
    @Option(help: "The nginx binary.") var nginx = "/usr/sbin/nginx"
    @Option(help: "The wrk binary.") var wrk = "/usr/bin/wrk"
    @Option(help: "Seconds per measurement.") var seconds = 10
    @Option(help: "wrk threads.") var threads = 2
    @Option(help: "wrk connections.") var connections = 16
    @Option(help: "openssl s_time processes for the handshake measurement.") var handshakeClients = 4
    @Option(help: "Which measurements: comma-separated of healthz, whoami, nonce, handshake.")
    var only = "healthz,whoami,nonce,handshake"

    struct WrkResult {
        var rate: Double
        var p50: Double
        var p99: Double
        var non2xx: Int
        var errors: String?
        var line: String {
            String(format: "%9.0f req/s  p50 %7.3f ms  p99 %7.3f ms", rate, p50, p99)
                + (non2xx > 0 ? "  non-2xx \(non2xx)" : "") + (errors.map { "  socket errors: \($0)" } ?? "")
        }
    }

    static func output(_ arguments: [String], environment: [String: String]? = nil) throws -> String {
        try commandOutput(arguments, environment: environment)
    }

    /// wrk's latency figure ("812.00us", "1.23ms", "2.01s") in milliseconds.
    static func milliseconds(_ text: Substring) -> Double {
        let units: [(String, Double)] = [("us", 0.001), ("ms", 1), ("s", 1000), ("m", 60_000)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            return (Double(text.dropLast(suffix.count)) ?? .nan) * factor
        }
        return .nan
    }

    func runWrk(_ url: String, headers: [String] = [], script: String? = nil) throws -> WrkResult {
        var args = [wrk, "-t\(threads)", "-c\(connections)", "-d\(seconds)s", "--latency"]
        for h in headers { args += ["-H", h] }
        if let script { args += ["-s", script] }
        let out = try Self.output(args + [url])
        var result = WrkResult(rate: 0, p50: .nan, p99: .nan, non2xx: 0)
        for raw in out.split(separator: "\n") {
            let fields = raw.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first == "Requests/sec:", fields.count >= 2 { result.rate = Double(fields[1]) ?? 0 }
            if first == "50%", fields.count >= 2 { result.p50 = Self.milliseconds(fields[1]) }
            if first == "99%", fields.count >= 2 { result.p99 = Self.milliseconds(fields[1]) }
            if raw.contains("Non-2xx or 3xx responses:"), let n = fields.last.flatMap({ Int($0) }) { result.non2xx = n }
            if raw.contains("Socket errors:") {
                result.errors = raw.trimmingCharacters(in: .whitespaces)
            }
        }
        return result
    }

    /// Full TLS handshakes per second: `clients` `openssl s_time -new` processes for `seconds`, each connection
    /// presenting the client certificate and fetching `path`.
    func handshakes(port: Int, certs: String, path: String) async throws -> Double {
        let start = ContinuousClock.now
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<handshakeClients {
                group.addTask {
                    let out = try Self.output([
                        "openssl", "s_time", "-connect", "127.0.0.1:\(port)", "-new", "-time", "\(seconds)",
                        "-cert", certs + "/admin.crt", "-key", certs + "/admin.key", "-CAfile", certs + "/ca.crt",
                        "-www", path,
                    ])
                    // "1234 connections in 10.01s; …" (the first summary line, user time) then "… in 11 real seconds".
                    for line in out.split(separator: "\n") where line.contains("connections in") {
                        return Int(line.split(separator: " ").first ?? "") ?? 0
                    }
                    return 0
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(counts) / (ContinuousClock.now - start).seconds
    }

    /// Starts nginx on a free port with the daemon's certificate; returns (process, HTTPS port, mTLS port).
    func startNginx(dir: String, certs: String) throws -> (Process, Int, Int) {
        let port = try freeLoopbackPort()
        let mtlsPort = try freeLoopbackPort()
        let conf = """
            worker_processes auto;
            daemon off;
            pid \(dir)/nginx.pid;
            error_log \(dir)/nginx-error.log warn;
            events { worker_connections 4096; }
            http {
                access_log off;
                client_body_temp_path \(dir)/body;
                proxy_temp_path \(dir)/proxy;
                fastcgi_temp_path \(dir)/fastcgi;
                uwsgi_temp_path \(dir)/uwsgi;
                scgi_temp_path \(dir)/scgi;
                ssl_certificate \(certs)/server.crt;
                ssl_certificate_key \(certs)/server.key;
                ssl_protocols TLSv1.2 TLSv1.3;
                server {
                    listen 127.0.0.1:\(port) ssl;
                    location /healthz { return 200 "ok\\n"; }
                }
                server {
                    listen 127.0.0.1:\(mtlsPort) ssl;
                    ssl_verify_client on;
                    ssl_client_certificate \(certs)/ca.crt;
                    location /healthz { return 200 "ok\\n"; }
                }
            }

            """
        try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: nginx)
        p.arguments = ["-c", dir + "/nginx.conf", "-p", dir]
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        for _ in 0..<100 {
            if (try? Self.output(["curl", "-sk", "https://127.0.0.1:\(port)/healthz"])) == "ok\n" {
                return (p, port, mtlsPort)
            }
            usleep(100_000)
        }
        p.terminate()
        throw ValidationError("nginx did not start (see \(dir)/nginx-error.log)")
    }

    func run() async throws {
        for tool in [gatehouse, nginx, wrk] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw ValidationError("\(tool) not found (apt-get install nginx wrk; swift build -c release)")
        }
        let wanted = Set(only.split(separator: ",").map(String.init))
        let dir = NSTemporaryDirectory() + "gatehouse-bench-http-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let daemon = try await FreshDaemon.start(gatehouse, data: dir + "/data")
        defer { daemon.stop() }
        let certs = dir + "/data/certs"
        let (nginxProcess, nginxPort, nginxMTLSPort) = try startNginx(dir: dir, certs: certs)
        defer {
            nginxProcess.terminate()
            nginxProcess.waitUntilExit()
        }
        guard let https = daemon.ports["https"] else { throw ValidationError("the daemon has no HTTPS port") }
        // "Private-Key: (256 bit)" and "ASN1 OID: prime256v1" (EC) or "Private-Key: (2048 bit, 2 primes)" (RSA).
        let keyText = (try? Self.output(["openssl", "pkey", "-in", certs + "/server.key", "-noout", "-text"])) ?? ""
        let keyType = keyText.split(separator: "\n").filter {
            $0.hasPrefix("Private-Key:") || $0.hasPrefix("ASN1 OID:")
        }.joined(separator: ", ")
        say(
            "server key: \(keyType); wrk -t\(threads) -c\(connections) -d\(seconds)s; \(ProcessInfo.processInfo.activeProcessorCount) cores"
        )

        let reference = try runWrk("https://127.0.0.1:\(nginxPort)/healthz")
        say("nginx      GET /healthz (static)      " + reference.line)
        func compare(_ label: String, _ r: WrkResult) {
            say(
                label + r.line
                    + String(format: "  = %.2fx nginx", r.rate / max(reference.rate, 0.001)))
        }
        if wanted.contains("healthz") {
            compare("gatehouse  GET /healthz               ", try runWrk("https://127.0.0.1:\(https)/healthz"))
        }
        if wanted.contains("whoami") {
            let environment = ProcessInfo.processInfo.environment.merging(["GATEHOUSE_DATA_DIR": dir + "/data"]) {
                $1
            }
            let identity = try Self.output(
                [gatehouse, "identity", "create", "bench-http-\(getpid())", "--output", "json"],
                environment: environment)
            guard
                let id = (try? JSONSerialization.jsonObject(with: Data(identity.utf8)) as? [String: Any])?["id"]
                    as? String,
                let tokenJSON = try? Self.output(
                    [gatehouse, "identity", "token", id, "--output", "json"], environment: environment),
                let token = (try? JSONSerialization.jsonObject(with: Data(tokenJSON.utf8)) as? [String: Any])?[
                    "accessToken"] as? String
            else { throw ValidationError("cannot make an identity and token for the run") }
            compare(
                "gatehouse  GET /api/v1/whoami (token) ",
                try runWrk("https://127.0.0.1:\(https)/api/v1/whoami", headers: ["Authorization: Bearer \(token)"]))
        }
        if wanted.contains("nonce") {
            let endpoint = Endpoint(
                host: "127.0.0.1", port: https, ca: certs + "/ca.crt", cert: certs + "/admin.crt",
                key: certs + "/admin.key")
            let (directory, _, _) = try await ACME().setUp(endpoint)
            let nonce = directory.replacingOccurrences(of: "/directory", with: "/new-nonce")
                .replacingOccurrences(of: "https://localhost:", with: "https://127.0.0.1:")
            let script = dir + "/head.lua"
            try "wrk.method = \"HEAD\"\n".write(toFile: script, atomically: true, encoding: .utf8)
            compare("gatehouse  HEAD ACME new-nonce        ", try runWrk(nonce, script: script))
        }
        if wanted.contains("handshake") {
            let n = try await handshakes(port: nginxMTLSPort, certs: certs, path: "/healthz")
            // `/api/v1/whoami` authenticated by the client certificate, so that Gatehouse verifies the presented chain
            // and maps it to a principal on every connection, as nginx's `ssl_verify_client on` verifies it in the
            // handshake (`/healthz` would not look at the certificate at all).
            let g = try await handshakes(port: https, certs: certs, path: "/api/v1/whoami")
            say(
                String(
                    format: "nginx      full mTLS handshakes       %9.0f /s  (%d openssl s_time -new)", n,
                    handshakeClients))
            say(
                String(
                    format: "gatehouse  full mTLS handshakes       %9.0f /s  = %.2fx nginx", g, g / max(n, 0.001)))
        }
    }
}
