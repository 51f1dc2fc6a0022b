import ArgumentParser
import Foundation
import KMIPProtocol
import NIOConcurrencyHelpers
import NIOCore
import TTLV

/// `gatehouse-bench scale`: how query latency grows with the store. Starts a fresh daemon, seeds KMIP keys through
/// the KMIP listener up to each size, and at each size measures the lookups an appliance with years of data runs.
struct Scale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Query latency from a small to a large store (fresh daemon, KMIP keys seeded through KMIP).",
        discussion: """
            Starts `gatehouse serve` on a new data directory (SQLite, or PostgreSQL with --postgres-url), then for
            each --sizes value seeds AES-256 keys (each named scale-N, created through KMIP Create in batches over
            --seed-connections connections, so every key is stored and audited as a client's would be) and measures,
            one request at a time: Locate by Name (one of the seeded names), Locate by Cryptographic Algorithm with
            Maximum Items 10, Get of a seeded key, two audit searches over HTTPS (the latest 10 kms.create events;
            10 events from an hour ago on), the 10 certificates expiring soonest in the next 30 days (one certificate
            per 10 objects is issued through the API), and with --pam-pg-url the first 10 PAM sessions of the last
            hour (one session per 100 objects is opened through the proxy with pgbench -C). Prints p50/p99 per query and size, the largest size's p50 over
            the smallest's, the store's bytes per KMIP object (records, indexes and audit included) and the daemon's
            resident memory.
            """)

    @Option(help: "The gatehouse binary.") var gatehouse = ".build/release/gatehouse"
    @Option(help: "Comma-separated store sizes (KMIP objects).") var sizes = "1000,100000"
    @Option(help: "Requests per query and size.") var requests = 300
    @Option(help: "Connections that seed.") var seedConnections = 16
    @Option(help: "Creates per KMIP message while seeding.") var batch = 25
    @Option(help: "Use this PostgreSQL database (emptied first!) instead of SQLite.") var postgresURL: String?
    @Option(help: "Keep the data directory here (default: a temporary one, removed at the end).") var dataDir: String?
    @Option(help: "Certificates issued (API, server-made keys, 1–90 day lifetimes) per KMIP object.")
    var certificatesPerObject = 0.1
    @Option(
        help:
            "An upstream PostgreSQL (postgres://user:password@127.0.0.1:PORT/db) to open PAM sessions to through the proxy (pgbench -C), one per 100 KMIP objects; without it no sessions are measured."
    )
    var pamPgURL: String?

    struct Sample {
        var name: String
        var p50: Double
        var p99: Double
        var errors: Int
    }

    func run() async throws {
        let dir = dataDir ?? (NSTemporaryDirectory() + "gatehouse-scale-\(getpid())")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if dataDir == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let data = dir + "/.gatehouse"
        var env = ["GATEHOUSE_LISTENERS_KMIP_MAX_CONNECTIONS": "1024"]
        if let postgresURL {
            env["GATEHOUSE_STORAGE_BACKEND"] = "postgres"
            env["GATEHOUSE_STORAGE_POSTGRES_URL"] = postgresURL
            try Self.psql(
                postgresURL,
                "DROP TABLE IF EXISTS record_index, records, audit_events, audit_log, audit_chains, audit_pending, metadata, recording_pieces, schema_migrations"
            )
        }
        let fresh = try await FreshDaemon.start(gatehouse, data: data, environment: env)
        let daemon = fresh.process
        defer { fresh.stop() }
        guard let kmip = fresh.ports["kmip"], let httpsPort = fresh.ports["https"] else {
            throw ValidationError("the daemon did not start listening")
        }
        let certs = data + "/certs"
        let endpoint = Endpoint(
            host: "127.0.0.1", port: kmip, ca: certs + "/ca.crt", cert: certs + "/admin.crt", key: certs + "/admin.key")
        let v = ProtocolVersion(1, 4)

        let https = Endpoint(
            host: "127.0.0.1", port: httpsPort, ca: certs + "/ca.crt", cert: certs + "/admin.crt",
            key: certs + "/admin.key")
        let world = try await Self.setUpWorld(
            https: httpsPort, proxy: fresh.ports["postgres"] ?? 0, certs: certs, work: dir, pamPgURL: pamPgURL)

        var seeded = 0
        var certificates = 0
        var sessions = 0
        // Store bytes that certificates and sessions added (measured around their seeding), left out of the bytes per
        // KMIP object.
        var otherBytes = 0
        var uids: [String] = []
        var results: [(size: Int, samples: [Sample], bytesPerObject: Double, rssMB: Double)] = []
        for size in sizes.split(separator: ",").compactMap({ Int($0) }).sorted() {
            let start = ContinuousClock.now
            let fresh = try await seed(endpoint, v, from: seeded, to: size)
            let seconds = (ContinuousClock.now - start).seconds
            if size > seeded {
                print(
                    String(
                        format: "seeded %d objects in %.1f s (%.0f/s)", size - seeded, seconds,
                        Double(size - seeded) / max(seconds, 0.001)))
            }
            let wantCertificates = Int(Double(size) * certificatesPerObject)
            if wantCertificates > certificates {
                let before = try storeBytes(data: data)
                let t0 = ContinuousClock.now
                try await Self.issue(https, profile: world.profile, from: certificates, to: wantCertificates)
                let dt = (ContinuousClock.now - t0).seconds
                print(
                    String(
                        format: "issued %d certificates in %.1f s (%.0f/s)", wantCertificates - certificates, dt,
                        Double(wantCertificates - certificates) / max(dt, 0.001)))
                certificates = wantCertificates
                otherBytes += try storeBytes(data: data) - before
            }
            let wantSessions = size / 100
            if let proxy = world.proxy, wantSessions > sessions {
                let before = try storeBytes(data: data)
                let t0 = ContinuousClock.now
                let n = wantSessions - sessions
                let clients = min(8, n)
                _ = try shell([
                    "pgbench", "-n", "-C", "-S", "-c", "\(clients)", "-t", "\((n + clients - 1) / clients)", proxy,
                ])
                let dt = (ContinuousClock.now - t0).seconds
                print(
                    String(
                        format: "opened %d PAM sessions through the proxy in %.1f s (%.0f/s)", n, dt,
                        Double(n) / max(dt, 0.001)))
                sessions += ((n + clients - 1) / clients) * clients
                otherBytes += try storeBytes(data: data) - before
            }
            uids += fresh.prefix(max(0, 20_000 - uids.count))
            seeded = max(seeded, size)
            var samples: [Sample] = []
            var rng = SystemRandomNumberGenerator()
            samples.append(
                try await measure("locate-name", endpoint) {
                    Self.locate(
                        v, [KMIP.attribute("Name", Self.nameValue("scale-\(Int.random(in: 0..<size, using: &rng))"))],
                        maximum: nil)
                } check: {
                    Self.locatedCount($0) == 1
                })
            samples.append(
                try await measure("locate-alg-10", endpoint) {
                    Self.locate(v, [KMIP.attribute("Cryptographic Algorithm", .enumeration(3))], maximum: 10)
                } check: {
                    Self.locatedCount($0) == 10
                })
            samples.append(
                try await measure("get", endpoint) {
                    KMIP.message(v, .get, KMIP.uidPayload(uids.randomElement(using: &rng) ?? ""))
                } check: { _ in
                    true
                })
            // Every seeded key left a kms.create event: the latest ten of a type, and ten from a time an hour ago.
            samples.append(
                try await measureHTTP("audit-type-10", https) {
                    "/api/v1/audit/events?type=kms.create&order=desc&limit=10"
                } check: {
                    $0.components(separatedBy: "\"kms.create\"").count - 1 == 10
                })
            let hourAgo = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3600))
            samples.append(
                try await measureHTTP("audit-since-10", https) {
                    "/api/v1/audit/events?since=\(hourAgo)&limit=10"
                } check: {
                    $0.components(separatedBy: "\"sequence\"").count - 1 == 10
                })
            if certificates >= 10 {
                let now = Date()
                let soon = ISO8601DateFormatter().string(from: now.addingTimeInterval(30 * 86400))
                let from = ISO8601DateFormatter().string(from: now)
                samples.append(
                    try await measureHTTP("certs-expiring-10", https) {
                        "/api/v1/projects/scale/pki/certificates?expiresAfter=\(from)&expiresBefore=\(soon)&limit=10"
                    } check: {
                        $0.components(separatedBy: "\"serialNumber\"").count - 1 == 10
                    })
            }
            if sessions >= 10 {
                let hourAgo = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3600))
                samples.append(
                    try await measureHTTP("sessions-since-10", https) {
                        "/api/v1/projects/scale/pam/sessions?since=\(hourAgo)&order=asc&limit=10"
                    } check: {
                        $0.components(separatedBy: "\"startedAt\"").count - 1 == 10
                    })
            }
            let bytes = try storeBytes(data: data)
            let rss = Self.rssMB(pid: daemon.processIdentifier)
            let perObject = Double(bytes - otherBytes) / Double(max(size, 1))
            for s in samples {
                print(
                    String(
                        format: "n=%-8d %-14@ p50 %8.3f ms  p99 %8.3f ms  errors %d", size, s.name, s.p50, s.p99,
                        s.errors))
            }
            print(
                String(
                    format:
                        "n=%-8d store %.0f bytes per KMIP object (%.1f MB in all, %.1f MB of it for %d certificates and %d sessions), daemon RSS %.0f MB",
                    size, perObject, Double(bytes) / 1e6, Double(otherBytes) / 1e6, certificates, sessions, rss))
            results.append((size, samples, perObject, rss))
        }
        if let small = results.first, let large = results.last, results.count > 1 {
            for (i, s) in large.samples.enumerated() {
                print(
                    String(
                        format: "ratio %@ p50 n=%d / n=%d: %.2fx", s.name, large.size, small.size,
                        s.p50 / max(small.samples[i].p50, 0.000_001)))
            }
        }
    }

    static func nameValue(_ text: String) -> TTLVValue {
        .structure([
            TTLVItem(tag: KMIPTag.nameValue, .textString(text)), TTLVItem(tag: KMIPTag.nameType, .enumeration(1)),
        ])
    }

    static func locate(_ v: ProtocolVersion, _ attributes: [TTLVItem], maximum: Int32?) -> [UInt8] {
        KMIP.message(
            v, .locate, (maximum.map { [TTLVItem(tag: KMIPTag.maximumItems, .integer($0))] } ?? []) + attributes)
    }

    static func locatedCount(_ frame: ByteBuffer) -> Int {
        guard let message = try? TTLVDecoder().decode(Array(buffer: frame)),
            case .structure(let items)? = message.child(KMIPTag.batchItem)?.child(KMIPTag.responsePayload)?.value
        else { return -1 }
        return items.filter { $0.tag == KMIPTag.uniqueIdentifier }.count
    }

    /// Seeds keys scale-`from` ..< scale-`to` over `seedConnections` connections; returns their UIDs.
    func seed(_ e: Endpoint, _ v: ProtocolVersion, from: Int, to: Int) async throws -> [String] {
        guard to > from else { return [] }
        // The next seed number: each connection takes a batch's worth at a time.
        let next = NIOLockedValueBox(from)
        return try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<seedConnections {
                group.addTask {
                    let connection = try await KMIPConnection.open(e)
                    return try await connection.channel.executeThenClose { inbound, outbound in
                        var iterator = inbound.makeAsyncIterator()
                        var uids: [String] = []
                        while true {
                            let first = next.withLockedValue { n in
                                defer { n += batch }
                                return n
                            }
                            guard first < to else { break }
                            let names = (first..<min(to, first + batch)).map { "scale-\($0)" }
                            try await outbound.write(ByteBuffer(bytes: Self.createBatch(v, names)))
                            guard let frame = try await iterator.next(),
                                let m = try? TTLVDecoder().decode(Array(buffer: frame))
                            else {
                                throw ValidationError("no response while seeding")
                            }
                            for item in m.children(KMIPTag.batchItem) {
                                guard case .enumeration(0)? = item.child(KMIPTag.resultStatus)?.value,
                                    case .textString(let uid)? = item.child(KMIPTag.responsePayload)?.child(
                                        KMIPTag.uniqueIdentifier)?.value
                                else {
                                    throw ValidationError("a Create failed while seeding: \(item)")
                                }
                                uids.append(uid)
                            }
                        }
                        return uids
                    }
                }
            }
            var all: [String] = []
            for try await part in group { all += part }
            return all
        }
    }

    static func createBatch(_ v: ProtocolVersion, _ names: [String]) -> [UInt8] {
        KMIP.batch(
            v,
            names.map { name in
                (
                    .create,
                    [
                        TTLVItem(tag: KMIPTag.objectType, .enumeration(KMIPObjectType.symmetricKey.rawValue)),
                        TTLVItem(
                            tag: KMIPTag.templateAttribute,
                            .structure([
                                KMIP.attribute("Cryptographic Algorithm", .enumeration(3)),
                                KMIP.attribute("Cryptographic Length", .integer(256)),
                                KMIP.attribute("Cryptographic Usage Mask", .integer(0x4 | 0x8)),
                                KMIP.attribute("Name", nameValue(name)),
                            ])),
                    ]
                )
            })
    }

    /// `requests` sequential requests on one connection (after 20 unmeasured ones); `check` judges each response.
    func measure(_ name: String, _ e: Endpoint, _ request: () -> [UInt8], check: (ByteBuffer) -> Bool) async throws
        -> Sample
    {
        let connection = try await KMIPConnection.open(e)
        var latencies: [Double] = []
        var errors = 0
        let bodies = (0..<(requests + 20)).map { _ in request() }
        try await connection.channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            for (i, body) in bodies.enumerated() {
                let t0 = ContinuousClock.now
                try await outbound.write(ByteBuffer(bytes: body))
                guard let frame = try await iterator.next() else { throw ValidationError("connection closed") }
                let dt = (ContinuousClock.now - t0).seconds
                if i >= 20 {
                    latencies.append(dt)
                    if !KMIP.succeeded(frame) || !check(frame) { errors += 1 }
                }
            }
        }
        let r = Result(ops: latencies.count, errors: errors, elapsed: 1, latencies: latencies)
        return Sample(name: name, p50: r.percentile(0.5), p99: r.percentile(0.99), errors: errors)
    }

    struct World {
        var profile: String
        /// The libpq connection string of PAM sessions through the proxy, when an upstream was given.
        var proxy: String?
    }

    /// A project "scale" with a root CA, a template and an API profile; with an upstream PostgreSQL, a PAM resource,
    /// its account and an approved access request for the administrator.
    static func setUpWorld(https: Int, proxy: Int, certs: String, work: String, pamPgURL: String?) async throws -> World
    {
        func api(_ path: String, _ body: String) throws -> [String: Any] {
            let out = try shell([
                "curl", "-sS", "--cacert", certs + "/ca.crt", "--cert", certs + "/admin.crt", "--key",
                certs + "/admin.key",
                "-H", "Content-Type: application/json", "-d", body, "https://localhost:\(https)/api/v1" + path,
            ])
            return (try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
        }
        func id(_ object: [String: Any], _ key: String) throws -> String {
            guard let id = (object[key] as? [String: Any])?["id"] as? String ?? object["id"] as? String else {
                throw ValidationError("setup failed: \(object)")
            }
            return id
        }
        _ = try api("/projects", #"{"slug":"scale"}"#)
        let ca = try id(
            try api(
                "/projects/scale/pki/cas",
                #"{"type":"root","subject":{"commonName":"Scale Root"},"keyAlgorithm":"EC_prime256v1","maxPathLength":0}"#
            ),
            "ca")
        let template = try id(
            try api(
                "/projects/scale/pki/templates",
                #"{"name":"scale","subject":[{"type":"commonName","allowed":["**"]}],"sans":[{"type":"dns","allowed":["**"]}],"keyAlgorithms":["EC_prime256v1"],"maxTTL":"365d"}"#
            ),
            "template")
        let profile = try id(
            try api(
                "/projects/scale/pki/profiles",
                #"{"slug":"scale","caId":"\#(ca)","templateId":"\#(template)","enrollment":"api"}"#), "profile")
        guard let pamPgURL else { return World(profile: profile, proxy: nil) }
        guard let url = URLComponents(string: pamPgURL), let pgPort = url.port, let user = url.user,
            let password = url.password
        else {
            throw ValidationError("--pam-pg-url must be postgres://user:password@host:port/database")
        }
        let database = String(url.path.dropFirst())
        let resource = try id(
            try api(
                "/projects/scale/pam/resources",
                #"{"name":"scale","host":"127.0.0.1","port":\#(pgPort),"database":"\#(database)","tlsMode":"disable"}"#),
            "resource")
        let account = try id(
            try api("/pam/resources/\(resource)/accounts", #"{"username":"\#(user)","password":"\#(password)"}"#),
            "account")
        _ = try api("/pam/accounts/\(account)/access-requests", #"{"duration":"1d","reason":"scale benchmark"}"#)
        let key = work + "/admin.key"
        try? FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: certs + "/admin.key", toPath: key)
        chmod(key, 0o600)
        return World(
            profile: profile,
            proxy:
                "host=127.0.0.1 port=\(proxy) user=\(user) dbname=scale sslmode=require sslcert=\(certs)/admin.crt sslkey=\(key)"
        )
    }

    /// Issues certificates svc-`from` ..< svc-`to` over 16 keep-alive HTTPS connections, lifetimes of 1 to 90 days.
    static func issue(_ e: Endpoint, profile: String, from: Int, to: Int) async throws {
        let next = NIOLockedValueBox(from)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    let connection = try await HTTPConnection.open(e)
                    try await connection.run { request in
                        while true {
                            let n = next.withLockedValue { n in
                                defer { n += 1 }
                                return n
                            }
                            guard n < to else { return }
                            let body =
                                #"{"commonName":"svc-\#(n)","altNames":["svc-\#(n).scale.test"],"ttl":"\#(1 + n % 90)d"}"#
                            let (status, answer) = try await request(
                                .POST, "/api/v1/pki/profiles/\(profile)/issue", [("Content-Type", "application/json")],
                                Array(body.utf8))
                            guard status == 201 else {
                                throw ValidationError(
                                    "issuance failed (\(status)): \(String(decoding: answer.prefix(300), as: UTF8.self))"
                                )
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Like `measure`, for GET requests over one keep-alive HTTPS connection; `check` judges each 200 response body.
    func measureHTTP(_ name: String, _ e: Endpoint, _ path: () -> String, check: (String) -> Bool) async throws
        -> Sample
    {
        let connection = try await HTTPConnection.open(e)
        let paths = (0..<(requests + 20)).map { _ in path() }
        let (latencies, errors) = try await connection.run { request -> ([Double], Int) in
            var latencies: [Double] = []
            var errors = 0
            for (i, p) in paths.enumerated() {
                let t0 = ContinuousClock.now
                let (status, body) = try await request(.GET, p, [], [])
                let dt = (ContinuousClock.now - t0).seconds
                if i >= 20 {
                    latencies.append(dt)
                    if status != 200 || !check(String(decoding: body, as: UTF8.self)) { errors += 1 }
                }
            }
            return (latencies, errors)
        }
        let r = Result(ops: latencies.count, errors: errors, elapsed: 1, latencies: latencies)
        return Sample(name: name, p50: r.percentile(0.5), p99: r.percentile(0.99), errors: errors)
    }

    /// The store's size: the SQLite database and its WAL, or the PostgreSQL database.
    func storeBytes(data: String) throws -> Int {
        if let postgresURL {
            return Int(
                try Self.psql(postgresURL, "SELECT pg_database_size(current_database())").trimmingCharacters(
                    in: .whitespacesAndNewlines)) ?? 0
        }
        let fm = FileManager.default
        return ["gatehouse.sqlite", "gatehouse.sqlite-wal"].reduce(0) { sum, f in
            sum + ((try? fm.attributesOfItem(atPath: data + "/" + f))?[.size] as? Int ?? 0)
        }
    }

    static func rssMB(pid: Int32) -> Double {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
    }

    @discardableResult
    static func psql(_ url: String, _ sql: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["psql", "-X", "-At", url, "-c", sql]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ValidationError("psql failed: \(sql)") }
        return text
    }
}
