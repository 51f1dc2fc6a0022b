import ArgumentParser
import ExtrasBase64
import Foundation
import KMIPProtocol
import TTLV

/// `gatehouse-bench stores`: the PostgreSQL store against the SQLite store, and two nodes on one PostgreSQL, with
/// the same KMIP workload in the same run.
struct Stores: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "KMIP Get and Create on the SQLite store, the PostgreSQL store, and two nodes sharing PostgreSQL.",
        discussion: """
            Starts a daemon on SQLite and one on PostgreSQL (--postgres-url, emptied first!), measures KMIP Get of one
            key and durable Create at --concurrency persistent connections on each, and prints PostgreSQL/SQLite ratios.
            The two stores are measured in alternation for --rounds rounds (on a small machine one window of a few
            seconds varies by a quarter from the next), and each ratio is that of the median rates.
            Then starts a second daemon on the same PostgreSQL database and runs the same load split over both nodes,
            while a sampler in the database reads pg_stat_activity every 10 ms: it prints the share of the sampled
            busy database sessions that were waiting on a lock (heavyweight Lock, or LWLock), an upper bound on the
            share of request time spent waiting on locks, since a request also spends time outside the database.
            """)

    @Option(help: "The gatehouse binary.") var gatehouse = ".build/release/gatehouse"
    @Option(help: "PostgreSQL database to use (emptied first!).") var postgresURL: String
    @Option(help: "Connections per measurement.") var concurrency = 16
    @Option(help: "Seconds per measurement.") var seconds: Double = 5
    @Option(help: "Alternating rounds over the two stores (the ratios compare median rates).") var rounds = 3

    func kmip() -> KMIP {
        var k = KMIP()
        k.seconds = seconds
        return k
    }

    func endpoint(_ d: FreshDaemon, certs: String) -> Endpoint {
        Endpoint(
            host: "127.0.0.1", port: d.ports["kmip"] ?? 0, ca: certs + "/ca.crt", cert: certs + "/admin.crt",
            key: certs + "/admin.key")
    }

    /// The median-rate result of several.
    static func median(_ results: [Result]) -> Result {
        results.sorted { $0.rate < $1.rate }[results.count / 2]
    }

    /// The same load split over two endpoints at once (half the connections each).
    func measureSplit(_ a: Endpoint, _ b: Endpoint, _ op: String) async throws -> Result {
        let v = ProtocolVersion(1, 4)
        let bodyA = op == "get" ? try await KMIP.workload("get", a, v) : KMIP.createRequest(v)
        let bodyB = op == "get" ? try await KMIP.workload("get", b, v) : KMIP.createRequest(v)
        let half = max(1, concurrency / 2)
        async let ra = kmip().measure(a, workers: half, body: bodyA)
        async let rb = kmip().measure(b, workers: concurrency - half, body: bodyB)
        let (x, y) = try await (ra, rb)
        return Result(
            ops: x.ops + y.ops, errors: x.errors + y.errors, elapsed: max(x.elapsed, y.elapsed),
            latencies: x.latencies + y.latencies)
    }

    /// Samples the database's sessions every 10 ms for `seconds` (run beside a load): busy sessions, and those
    /// waiting on a heavyweight lock or a lightweight one.
    static func sampler(_ url: String, seconds: Double) -> Process {
        let sql = """
            DO $$
            DECLARE busy BIGINT := 0; locked BIGINT := 0; lw BIGINT := 0; n INT := 0; b BIGINT; l BIGINT; w BIGINT;
            BEGIN
              WHILE n < \(Int(seconds * 100)) LOOP
                PERFORM pg_stat_clear_snapshot();
                SELECT count(*) FILTER (WHERE state = 'active'),
                       count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock'),
                       count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'LWLock')
                  INTO b, l, w FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid();
                busy := busy + b; locked := locked + l; lw := lw + w; n := n + 1;
                PERFORM pg_sleep(0.01);
              END LOOP;
              RAISE NOTICE 'samples=% busy=% lock=% lwlock=%', n, busy, locked, lw;
            END $$;
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["psql", "-X", "-q", url, "-c", sql]
        p.standardError = Pipe()
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        return p
    }

    static func samples(_ p: Process) -> (busy: Double, lock: Double, lwlock: Double)? {
        guard let pipe = p.standardError as? Pipe else { return nil }
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        func value(_ key: String) -> Double? {
            guard let r = text.range(of: key + "=") else { return nil }
            return Double(text[r.upperBound...].prefix { $0.isNumber })
        }
        guard let busy = value("busy"), let lock = value("lock"), let lw = value("lwlock") else { return nil }
        return (busy, lock, lw)
    }

    func run() async throws {
        let dir = NSTemporaryDirectory() + "gatehouse-stores-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Scale.psql(
            postgresURL,
            "DROP TABLE IF EXISTS record_index, records, audit_events, audit_log, audit_chains, audit_pending, metadata, recording_pieces, schema_migrations"
        )
        let rootKey = Base64.encodeToString(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) })
        let pgEnv = [
            "GATEHOUSE_STORAGE_BACKEND": "postgres", "GATEHOUSE_STORAGE_POSTGRES_URL": postgresURL,
            "GATEHOUSE_ROOT_KEY_SOURCE": "env",
            "GATEHOUSE_ROOT_KEY": rootKey, "GATEHOUSE_LISTENERS_KMIP_MAX_CONNECTIONS": "1024",
        ]

        let sqlite = try await FreshDaemon.start(
            gatehouse, data: dir + "/sqlite", environment: ["GATEHOUSE_LISTENERS_KMIP_MAX_CONNECTIONS": "1024"])
        defer { sqlite.stop() }
        let nodeA = try await FreshDaemon.start(gatehouse, data: dir + "/pg-a", environment: pgEnv)
        defer { nodeA.stop() }
        let certs = dir + "/pg-a/certs"
        let a = endpoint(nodeA, certs: certs)
        let stores = [("sqlite", endpoint(sqlite, certs: dir + "/sqlite/certs")), ("postgres", a)]
        let v = ProtocolVersion(1, 4)
        var gets: [String: [Result]] = [:]
        var creates: [String: [Result]] = [:]
        var getBodies: [String: [UInt8]] = [:]
        for (name, e) in stores { getBodies[name] = try await KMIP.workload("get", e, v) }
        for round in 1...max(1, rounds) {
            for (name, e) in stores {
                let r = try await kmip().measure(e, workers: concurrency, body: getBodies[name] ?? [])
                print(r.line("round \(round) \(name)", "get", concurrency))
                gets[name, default: []].append(r)
            }
            for (name, e) in stores {
                let r = try await kmip().measure(e, workers: concurrency, body: KMIP.createRequest(v))
                print(r.line("round \(round) \(name)", "create", concurrency))
                creates[name, default: []].append(r)
            }
        }
        var medians: [String: (get: Result, create: Result)] = [:]
        for (name, _) in stores {
            let m = (get: Self.median(gets[name] ?? []), create: Self.median(creates[name] ?? []))
            medians[name] = m
            print(m.get.line("\(name) median", "get", concurrency))
            print(m.create.line("\(name) median", "create", concurrency))
        }
        guard let s = medians["sqlite"], let p = medians["postgres"] else { return }
        sqlite.stop()
        print(String(format: "ratio postgres/sqlite get c=%d: %.2fx", concurrency, p.get.rate / max(s.get.rate, 0.001)))
        print(
            String(
                format: "ratio postgres/sqlite create c=%d: %.2fx", concurrency,
                p.create.rate / max(s.create.rate, 0.001)))

        // A second node on the same database, serving the same certificates.
        try FileManager.default.createDirectory(atPath: dir + "/pg-b", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: certs, toPath: dir + "/pg-b/certs")
        let nodeB = try await FreshDaemon.start(gatehouse, data: dir + "/pg-b", environment: pgEnv)
        defer { nodeB.stop() }
        let b = endpoint(nodeB, certs: certs)
        for op in ["get", "create"] {
            let sampler = Self.sampler(postgresURL, seconds: seconds)
            try sampler.run()
            let r = try await measureSplit(a, b, op)
            print(r.line("2 nodes", op, concurrency))
            if let (busy, lock, lw) = Self.samples(sampler), busy > 0 {
                let requestSeconds = r.latencies.reduce(0, +)
                print(
                    String(
                        format:
                            "2 nodes %@: busy database sessions waiting on a lock %.2f%% (Lock %.2f%%, LWLock %.2f%%); lock waits %.2f%% of request time",
                        op, (lock + lw) / busy * 100, lock / busy * 100, lw / busy * 100,
                        (lock + lw) * 0.01 / max(requestSeconds, 0.001) * 100))
            } else {
                print("2 nodes \(op): the lock sampler reported nothing")
            }
        }
        print(
            String(
                format: "ratio 2 nodes/1 node postgres get: %.2fx",
                0.0 + (try await measureSplit(a, b, "get")).rate / max(p.get.rate, 0.001)))
    }
}
