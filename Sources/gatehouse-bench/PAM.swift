import ArgumentParser
import Foundation

/// `gatehouse-bench pam`: pgbench through the PostgreSQL access proxy, against the same server directly and through
/// pgbouncer (session mode) in the same run. Starts its own Gatehouse (and pgbouncer, when installed) on loopback
/// against an existing PostgreSQL (`Tests/scripts/pg-server.sh start DIR PORT` prints a suitable URL).
struct PAM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pam", abstract: "pgbench: direct vs pgbouncer (session) vs the Gatehouse PostgreSQL proxy.")

    @Option(help: "postgres://user:password@127.0.0.1:PORT/database of the server to measure (scram-sha-256).")
    var pgURL: String
    @Option(help: "The gatehouse binary (default: next to this program).") var gatehouse: String?
    @Option(help: "Seconds per pgbench run.") var seconds = 10
    @Option(help: "Client counts, comma-separated.") var concurrency = "4,16"
    @Option(help: "Workloads: select-only (pgbench -S) and/or tpcb (the default script), comma-separated.")
    var workloads = "select-only,tpcb"
    @Option(help: "pgbench -M (simple, extended, prepared).") var queryMode = "simple"
    @Option(
        help: """
            A PostgreSQL database (postgres://…) for Gatehouse's own store: then also measure recording shipping, pgbench through \
            Gatehouse on that store with recordings kept local (off) and shipped to the store (on), in alternating rounds.
            """) var shippingPgUrl: String?
    @Option(help: "Rounds of the shipping comparison (each runs off, then on).") var shippingRounds = 3

    func run() throws {
        let (upstream, binary, work, direct) = try Self.prepare(pgURL: pgURL, gatehouse: gatehouse, name: "pam")
        let (pgPort, user, password, database) = (upstream.port, upstream.user, upstream.password, upstream.database)
        var children: [Spawned] = []
        defer {
            for c in children.reversed() { c.terminate() }
            try? FileManager.default.removeItem(atPath: work)
        }

        // Gatehouse with the resource, the account and an approved grant for its administrator.
        let data = work + "/gh"
        let (daemon, ports) = try Self.startGatehouse(binary, data: data, log: work + "/gatehouse.log")
        children.append(daemon)
        let viaGatehouse = try Self.configure(ports: ports, data: data, work: work, upstream: upstream)

        // pgbouncer in session mode with scram-sha-256 both ways, when it is installed.
        var targets: [(String, String)] = [("direct", direct)]
        // The same server over TLS, when it has TLS: the proxy always has TLS on the client side, so this is the
        // like-for-like baseline.
        let directTLS = direct.replacingOccurrences(of: "sslmode=disable", with: "sslmode=require")
        if (try? shell(["psql", "-X", "-At", directTLS, "-c", "select 1"])) != nil {
            targets.append(("direct-tls", directTLS))
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/sbin/pgbouncer") {
            let bouncerPort = try freeLoopbackPort()
            try "\"\(user)\" \"\(password)\"\n".write(toFile: work + "/userlist.txt", atomically: true, encoding: .utf8)
            try """
            [databases]
            \(database) = host=127.0.0.1 port=\(pgPort) dbname=\(database)
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(bouncerPort)
            unix_socket_dir =
            auth_type = scram-sha-256
            auth_file = \(work)/userlist.txt
            pool_mode = session
            max_client_conn = 200
            default_pool_size = 40
            logfile = \(work)/pgbouncer.log
            ignore_startup_parameters = extra_float_digits
            client_tls_sslmode = allow
            client_tls_cert_file = \(work)/bouncer.crt
            client_tls_key_file = \(work)/bouncer.key

            """.write(toFile: work + "/pgbouncer.ini", atomically: true, encoding: .utf8)
            _ = try shell(
                [
                    "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=localhost",
                    "-days", "1", "-keyout", work + "/bouncer.key", "-out", work + "/bouncer.crt",
                ], stderr: true)
            // pgbouncer refuses to run as root.
            var command = ["/usr/sbin/pgbouncer", work + "/pgbouncer.ini"]
            if getuid() == 0 {
                _ = try shell(["chown", "-R", "postgres", work])
                command = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] + command
            }
            children.append(try Spawned(command, output: work + "/pgbouncer.out"))
            try waitForPort(bouncerPort, seconds: 10)
            targets.append(
                ("pgbouncer", "host=127.0.0.1 port=\(bouncerPort) user=\(user) dbname=\(database) sslmode=disable"))
            targets.append(
                ("pgbouncer-tls", "host=127.0.0.1 port=\(bouncerPort) user=\(user) dbname=\(database) sslmode=require"))
        } else {
            print("pgbouncer: not installed (apt-get install pgbouncer) — skipped")
        }
        targets.append(("gatehouse", viaGatehouse))
        print(
            "Gatehouse: client TLS (client certificate) → proxy (every statement recorded) → plain TCP, SCRAM-SHA-256 upstream;"
        )
        print(
            "direct and pgbouncer: plain TCP; direct-tls and pgbouncer-tls: TLS from pgbench (sslmode=require), as to Gatehouse"
        )

        let levels = concurrency.split(separator: ",").compactMap { Int($0) }
        for workload in workloads.split(separator: ",").map(String.init) {
            for c in levels {
                var tps: [String: Double] = [:]
                for (name, conninfo) in targets {
                    let out = pgbench(workload, clients: c, conninfo)
                    let rate = Self.number(after: "tps = ", in: out)
                    let latency = Self.number(after: "latency average = ", in: out)
                    tps[name] = rate
                    print(
                        String(
                            format: "%-11@ %-10@ c=%-3d %9.0f tps  latency avg %6.3f ms", workload, name, c,
                            rate ?? .nan, latency ?? .nan))
                }
                if let g = tps["gatehouse"] {
                    var line = String(format: "%-11@ ratio      c=%-3d", workload, c)
                    for (name, _) in targets where name != "gatehouse" {
                        if let other = tps[name], other > 0 {
                            line += String(format: "  gatehouse/%@ %.2fx", name, g / other)
                        }
                    }
                    print(line)
                }
            }
        }
        if let shippingPgUrl {
            try shippingComparison(
                storeURL: shippingPgUrl, binary: binary, work: work, pgPort: pgPort, user: user, password: password,
                database: database)
        }
    }

    /// pgbench through Gatehouse on PostgreSQL storage, recordings kept in the node's directory (`off`) or shipped to
    /// the shared store as the session runs (`on`): one daemon per run, the same data directory and database, the
    /// modes alternating so that drift on the machine falls on both. Prints each run, the medians and on/off.
    func shippingComparison(
        storeURL: String, binary: String, work: String, pgPort: Int, user: String, password: String, database: String
    ) throws {
        print("")
        print(
            "shipping: Gatehouse on PostgreSQL storage; off = recordings kept local, on = shipped to the store every 2 s"
        )
        _ = try shell([
            "psql", "-X", "-q", storeURL, "-c",
            "DROP TABLE IF EXISTS record_index, records, audit_events, audit_log, audit_chains, audit_pending, metadata, recording_pieces, schema_migrations",
        ])
        let data = work + "/gh-pg"
        let upstream = Upstream(port: pgPort, user: user, password: password, database: database)
        // The proxy's conninfo once the store has the resource, account and grant (its port differs per start).
        var configured: String?
        func run(_ shipping: Bool, workload: String, clients: Int) throws -> (tps: Double, drain: Double?) {
            let (daemon, ports) = try Self.startGatehouse(
                binary, data: data, log: work + "/gatehouse-pg.log",
                environment: [
                    "GATEHOUSE_STORAGE_BACKEND=postgres", "GATEHOUSE_STORAGE_POSTGRES_URL=\(storeURL)",
                    "GATEHOUSE_PAM_RECORDING_STORE=\(shipping ? "postgres" : "local")",
                ])
            defer { daemon.terminate() }
            let conninfo: String
            if let known = configured {
                conninfo = known.replacingOccurrences(of: "port=PROXY", with: "port=\(ports["postgres"] ?? 0)")
            } else {
                conninfo = try Self.configure(ports: ports, data: data, work: work, upstream: upstream)
                configured = conninfo.replacingOccurrences(of: "port=\(ports["postgres"] ?? 0) ", with: "port=PROXY ")
            }
            let tps = Self.number(after: "tps = ", in: pgbench(workload, clients: clients, conninfo)) ?? .nan
            guard shipping else { return (tps, nil) }
            // How long the node takes to ship what the run recorded once the sessions are over: until its spool is
            // empty (a file goes once the store holds all of it and its session has ended).
            let start = Date()
            let spool = data + "/recordings"
            while Date().timeIntervalSince(start) < 120 {
                let left = ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter {
                    $0.hasSuffix(".ghrec")
                }
                if left.isEmpty { return (tps, Date().timeIntervalSince(start)) }
                usleep(100_000)
            }
            return (tps, nil)
        }
        let levels = concurrency.split(separator: ",").compactMap { Int($0) }
        for workload in workloads.split(separator: ",").map(String.init) {
            for c in levels {
                var off: [Double] = []
                var on: [Double] = []
                for round in 1...max(1, shippingRounds) {
                    let a = try run(false, workload: workload, clients: c)
                    let b = try run(true, workload: workload, clients: c)
                    off.append(a.tps)
                    on.append(b.tps)
                    print(
                        String(
                            format:
                                "%-11@ c=%-3d round %d  off %8.0f tps  on %8.0f tps  (backlog shipped %@ after the run)",
                            workload, c, round, a.tps, b.tps,
                            b.drain.map { String(format: "%.1f s", $0) } ?? "not"))
                }
                func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
                print(
                    String(
                        format: "%-11@ c=%-3d shipping on/off %.3fx (median %.0f / %.0f tps)", workload, c,
                        median(on) / median(off), median(on), median(off)))
            }
        }
    }

    /// One pgbench run's output (empty when it fails).
    func pgbench(_ workload: String, clients: Int, _ conninfo: String) -> String {
        var args = [
            "pgbench", "-n", "-c", String(clients), "-j", String(min(clients, 2)), "-T", String(seconds), "-M",
            queryMode,
        ]
        if workload == "select-only" { args.append("-S") }
        return (try? shell(args + [conninfo])) ?? ""
    }

    /// What the proxy benchmarks start from: the upstream of `--pg-url`, the gatehouse binary (the option, else next
    /// to this program), a new work folder, PGPASSWORD, and pgbench's tables made directly on the upstream.
    static func prepare(pgURL: String, gatehouse: String?, name: String) throws -> (
        upstream: Upstream, binary: String, work: String, direct: String
    ) {
        guard let url = URLComponents(string: pgURL), let pgPort = url.port, let user = url.user,
            let password = url.password
        else {
            throw ValidationError("--pg-url must be postgres://user:password@host:port/database")
        }
        let database = String(url.path.dropFirst())
        let binary =
            gatehouse
            ?? (URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/gatehouse")
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ValidationError("no gatehouse binary at \(binary)")
        }
        let work = NSTemporaryDirectory() + "gatehouse-bench-\(name)-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        chmod(work, 0o755)
        setenv("PGPASSWORD", password, 1)
        let direct = "host=127.0.0.1 port=\(pgPort) user=\(user) dbname=\(database) sslmode=disable"
        print("pgbench -i -s 1 (direct)")
        _ = try shell(["pgbench", "-i", "-q", "-s", "1", direct])
        return (Upstream(port: pgPort, user: user, password: password, database: database), binary, work, direct)
    }

    struct Upstream {
        var port: Int
        var user: String
        var password: String
        var database: String
    }

    /// `gatehouse serve` on `data` with every listener on a free port; returns once all four are bound.
    static func startGatehouse(_ binary: String, data: String, log: String, environment: [String] = []) throws -> (
        Spawned, [String: Int]
    ) {
        try? FileManager.default.removeItem(atPath: data + "/run/listeners.json")
        let daemon = try Spawned(
            [binary, "serve", "--data-dir", data],
            environment: [
                "GATEHOUSE_LISTENERS_HTTPS_PORT=0", "GATEHOUSE_LISTENERS_KMIP_PORT=0",
                "GATEHOUSE_LISTENERS_OPERATIONS_PORT=0",
                "GATEHOUSE_LISTENERS_POSTGRES_PORT=0", "GATEHOUSE_LOGGING_LEVEL=warning",
            ] + environment,
            output: log)
        var ports: [String: Int] = [:]
        let deadline = Date().addingTimeInterval(30)
        while ports.count < 4, Date() < deadline {
            usleep(100_000)
            if let d = FileManager.default.contents(atPath: data + "/run/listeners.json") {
                ports = (try? JSONSerialization.jsonObject(with: d) as? [String: Int]) ?? [:]
            }
        }
        guard ports["https"] != nil, ports["postgres"] != nil else {
            daemon.terminate()
            throw ValidationError("gatehouse did not start (\(log))")
        }
        return (daemon, ports)
    }

    /// Project `bench`, resource `bench` on the upstream, its account and an approved grant for the administrator;
    /// returns the libpq conninfo to reach it through the proxy with the administrator's certificate.
    static func configure(ports: [String: Int], data: String, work: String, upstream u: Upstream) throws -> String {
        let certs = data + "/certs"
        let https = ports["https"] ?? 0
        func api(_ path: String, _ body: String) throws -> [String: Any] {
            let out = try shell([
                "curl", "-sS", "--cacert", certs + "/ca.crt", "--cert", certs + "/admin.crt", "--key",
                certs + "/admin.key",
                "-H", "Content-Type: application/json", "-d", body, "https://localhost:\(https)/api/v1" + path,
            ])
            return (try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
        }
        _ = try api("/projects", #"{"slug":"bench"}"#)
        let resource = try api(
            "/projects/bench/pam/resources",
            #"{"name":"bench","host":"127.0.0.1","port":\#(u.port),"database":"\#(u.database)","tlsMode":"disable"}"#)
        guard let rid = (resource["resource"] as? [String: Any])?["id"] as? String else {
            throw ValidationError("resource: \(resource)")
        }
        let account = try api(
            "/pam/resources/\(rid)/accounts", #"{"username":"\#(u.user)","password":"\#(u.password)"}"#)
        guard let aid = (account["account"] as? [String: Any])?["id"] as? String else {
            throw ValidationError("account: \(account)")
        }
        _ = try api("/pam/accounts/\(aid)/access-requests", #"{"duration":"1d","reason":"benchmark"}"#)
        // libpq wants the key owner-only.
        let key = work + "/admin-\(URL(fileURLWithPath: data).lastPathComponent).key"
        try? FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: certs + "/admin.key", toPath: key)
        chmod(key, 0o600)
        return
            "host=127.0.0.1 port=\(ports["postgres"] ?? 0) user=\(u.user) dbname=bench sslmode=require sslcert=\(certs)/admin.crt sslkey=\(key)"
    }

    static func number(after marker: String, in text: String) -> Double? {
        guard let r = text.range(of: marker) else { return nil }
        return Double(text[r.upperBound...].prefix { $0.isNumber || $0 == "." })
    }
}
