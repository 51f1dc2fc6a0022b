import ArgumentParser
import Foundation

/// `gatehouse-bench console`: how long the web console takes to render its heaviest pages on a store with many
/// recorded sessions. Starts its own Gatehouse against an existing PostgreSQL (the upstream of the proxy), records
/// `--sessions` sessions through the proxy with `pgbench -C` (one session per transaction) and one session of
/// `--statements` statements (`pgbench -S -c 1`), then fetches the session list and the replay page with curl over
/// one keep-alive connection. Server time is curl's time to first byte after the request was sent (the console
/// renders a page whole before it answers); total adds the transfer.
struct ConsoleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console", abstract: "Web console: session list and replay render times on a large store.")

    @Option(help: "postgres://user:password@127.0.0.1:PORT/database the proxy protects (pgbench tables go there).")
    var pgURL: String
    @Option(help: "The gatehouse binary (default: next to this program).") var gatehouse: String?
    @Option(help: "Sessions to record (pgbench -C transactions through the proxy).") var sessions = 10_000
    @Option(help: "Statements of the one long session to replay.") var statements = 10_000
    @Option(help: "Requests per page measured.") var requests = 30
    @Option(help: "Seconds to wait before measuring (to attach a profiler to the daemon, whose pid is printed).")
    var settle = 0
    @Option(help: "Live-view watchers of a running session of --statements statements (0: not measured).")
    var liveViewers = 4
    @Option(help: "Seconds the live view is measured (and the idle daemon before it).") var liveSeconds = 10

    func run() async throws {
        let (upstream, binary, work, _) = try PAM.prepare(pgURL: pgURL, gatehouse: gatehouse, name: "console")
        var children: [Spawned] = []
        defer {
            for c in children.reversed() { c.terminate() }
            try? FileManager.default.removeItem(atPath: work)
        }

        let data = work + "/gh"
        let (daemon, ports) = try PAM.startGatehouse(binary, data: data, log: work + "/gatehouse.log")
        children.append(daemon)
        let proxy = try PAM.configure(ports: ports, data: data, work: work, upstream: upstream)

        // The sessions: each pgbench -C transaction is a new connection, so a new recorded session.
        print("recording \(sessions) sessions through the proxy (pgbench -C -S)")
        let clients = 4
        var start = Date()
        _ = try shell([
            "pgbench", "-n", "-C", "-S", "-c", "\(clients)", "-j", "2", "-t", "\(max(1, sessions / clients))", proxy,
        ])
        print(String(format: "  %.0f sessions/s", Double(sessions) / Date().timeIntervalSince(start)))
        print("recording one session of \(statements) statements (pgbench -S -c 1)")
        start = Date()
        _ = try shell(["pgbench", "-n", "-S", "-c", "1", "-t", "\(statements)", proxy])
        print(String(format: "  %.0f statements/s", Double(statements) / Date().timeIntervalSince(start)))

        let certs = data + "/certs"
        let base = "https://localhost:\(ports["https"] ?? 0)"
        let curlTLS = ["--cacert", certs + "/ca.crt", "--cert", certs + "/admin.crt", "--key", certs + "/admin.key"]
        // The long session is the newest.
        let newest = try shell(
            ["curl", "-sS"] + curlTLS + [base + "/api/v1/projects/bench/pam/sessions?limit=1"])
        guard let listed = try JSONSerialization.jsonObject(with: Data(newest.utf8)) as? [String: Any],
            let first = (listed["sessions"] as? [[String: Any]])?.first, let longSession = first["id"] as? String
        else {
            throw ValidationError("cannot find the long session: \(newest.prefix(300))")
        }

        // Written straight to the descriptor (print is buffered into a file): a profiler attaches when it appears.
        let pidLine = "daemon pid \(daemon.pid)\n"
        _ = pidLine.withCString { write(1, $0, strlen($0)) }
        if settle > 0 { try await Task.sleep(for: .seconds(settle)) }
        print(
            "\n"
                + "page (\(requests) requests, one keep-alive connection)".padding(
                    toLength: 52, withPad: " ", startingAt: 0)
                + " server p50 / p99 ms   total p50 ms      bytes")
        let pages: [(String, String, Double?)] = [
            ("session list, newest 100", "/console/projects/bench/sessions", 200),
            ("session list, 1000 rows", "/console/projects/bench/sessions?limit=1000", nil),
            (
                "session list, filtered (account, end reason)",
                "/console/projects/bench/sessions?account=\(upstream.user)&end=client-terminated", 200
            ),
            ("replay, \(statements) statements", "/console/sessions/\(longSession)", 1000),
            ("the same recording as JSON (admin API)", "/api/v1/pam/sessions/\(longSession)/recording", nil),
            ("project overview", "/console/projects/bench", nil),
            ("audit, newest 100", "/console/audit", nil),
        ]
        for (name, path, target) in pages {
            let out = try shell(
                ["curl", "-sS"] + curlTLS
                    + ["-w", "%{http_code} %{time_pretransfer} %{time_starttransfer} %{time_total} %{size_download}\n"]
                    + (0..<requests).flatMap { _ in ["-o", "/dev/null", base + path] })
            var server: [Double] = []
            var total: [Double] = []
            var bytes = 0
            var failures = 0
            for line in out.split(separator: "\n") {
                let f = line.split(separator: " ")
                guard f.count == 5, let pre = Double(f[1]), let ttfb = Double(f[2]), let all = Double(f[3]) else {
                    continue
                }
                if f[0] != "200" { failures += 1 }
                server.append(ttfb - pre)
                total.append(all - pre)
                bytes = Int(f[4]) ?? 0
            }
            let s = Result(ops: server.count, errors: failures, elapsed: 1, latencies: server)
            let t = Result(ops: total.count, errors: failures, elapsed: 1, latencies: total)
            var line =
                name.padding(toLength: 52, withPad: " ", startingAt: 0)
                + String(
                    format: " %7.1f / %7.1f   %9.1f   %8d", s.percentile(0.5), s.percentile(0.99), t.percentile(0.5),
                    bytes)
            if failures > 0 { line += "  (\(failures) not 200)" }
            if let target {
                line +=
                    s.percentile(0.99) < target
                    ? "  target p99 < \(Int(target)) ms: met" : "  target p99 < \(Int(target)) ms: MISSED"
            }
            print(line)
        }
        if liveViewers > 0 {
            try await measureLiveView(
                daemon: daemon, proxy: proxy, base: base, curlTLS: curlTLS, work: work, children: &children)
        }
        let rss =
            (try? String(contentsOfFile: "/proc/\(daemon.pid)/status", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("VmRSS") } ?? ""
        print("\ndaemon \(rss.replacingOccurrences(of: "\t", with: " "))")
    }

    /// The live view of a running session that has already recorded `statements` statements: psql runs them
    /// through the proxy and then sleeps in the session, while `liveViewers` curls follow its replay page's event
    /// stream. The daemon's CPU time (utime + stime) over `liveSeconds` with the viewers attached, less the same
    /// idle, is what watching costs. Each poll should cost what the session recorded since the last, not its size.
    func measureLiveView(
        daemon: Spawned, proxy: String, base: String, curlTLS: [String], work: String, children: inout [Spawned]
    ) async throws {
        let script = work + "/live.sql"
        let done = work + "/live.done"
        let sql =
            String(repeating: "select 1;\n", count: statements) + "\\! touch \(done)\n"
            + "select pg_sleep(\(liveSeconds * 3 + 30));\n"
        try sql.write(toFile: script, atomically: true, encoding: .utf8)
        let psql = try Spawned(["psql", "-X", "-q", "-o", "/dev/null", "-f", script, proxy])
        children.append(psql)
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: done) {
            guard Date() < deadline else { throw ValidationError("the live session did not run its statements") }
            try await Task.sleep(for: .milliseconds(200))
        }
        // The proxy seals what it has every second: let the last statements reach the recording.
        try await Task.sleep(for: .seconds(3))
        let open = try shell(
            ["curl", "-sS"] + curlTLS + [base + "/api/v1/projects/bench/pam/sessions?limit=1&endReason=open"])
        guard let listed = try JSONSerialization.jsonObject(with: Data(open.utf8)) as? [String: Any],
            let first = (listed["sessions"] as? [[String: Any]])?.first, let session = first["id"] as? String,
            first["endedAt"] == nil
        else {
            throw ValidationError("cannot find the running session: \(open.prefix(300))")
        }
        func cpuSeconds() -> Double {
            // /proc/PID/stat: fields 14 and 15 (utime, stime) in clock ticks, after the command in parentheses.
            guard let stat = try? String(contentsOfFile: "/proc/\(daemon.pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return 0 }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let u = Double(fields[11]), let k = Double(fields[12]) else { return 0 }
            return (u + k) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
        let idleStart = cpuSeconds()
        try await Task.sleep(for: .seconds(liveSeconds))
        let idle = (cpuSeconds() - idleStart) / Double(liveSeconds)
        var viewers: [Spawned] = []
        for i in 0..<liveViewers {
            let viewer = try Spawned(
                ["curl", "-sS", "-N", "--max-time", "\(liveSeconds * 2 + 10)"] + curlTLS
                    + [
                        "-o", work + "/live-\(i).out",
                        base + "/console/sessions/\(session)/live?from=\(statements + 2)",
                    ])
            viewers.append(viewer)
            children.append(viewer)
        }
        // The first poll of each view reads the recording from its start; what follows is the steady state.
        try await Task.sleep(for: .seconds(3))
        let liveStart = cpuSeconds()
        try await Task.sleep(for: .seconds(liveSeconds))
        let live = (cpuSeconds() - liveStart) / Double(liveSeconds)
        for v in viewers { v.terminate() }
        psql.terminate()
        print(
            String(
                format:
                    "live view of a running %d-statement session, %d viewers: daemon CPU %.1f ms/s (idle %.1f ms/s), %.2f ms per viewer per poll",
                statements, liveViewers, live * 1000, idle * 1000, max(0, live - idle) * 1000 / Double(liveViewers)))
    }
}
