import ArgumentParser
import Foundation
import KMIPProtocol
import NIOCore
import NIOPosix
import NIOSSL
import ServerSupport
import TTLV
import X509

/// Unauthenticated floods against a fresh daemon on every listener at once, with an authenticated KMIP client
/// measured before and during them. Prints what the floods cost the store (bytes, audit events) and how much of its
/// throughput the authenticated client kept.
struct Flood: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Unauthenticated floods (wrk on HTTPS, KMIP with an unknown certificate, PostgreSQL with a bad token) against a fresh daemon.",
        discussion: """
            Starts `gatehouse serve` on a new data directory (SQLite store, ports chosen by the system), measures an
            authenticated KMIP Get client alone, then again while the floods run for --seconds, and prints the store's
            growth (database and WAL files), the audit events written, each flood's request rate and the kept
            throughput. Needs wrk (Debian package wrk) for the HTTPS flood.
            """)

    @Option(help: "The gatehouse binary.") var gatehouse = ".build/release/gatehouse"
    @Option(help: "Seconds of flood.") var seconds: Double = 60
    @Option(help: "Seconds of the authenticated baseline.") var baseline: Double = 10
    @Option(help: "Authenticated KMIP workers.") var workers = 4
    @Option(help: "Connections of each flood client.") var connections = 16

    func run() async throws {
        let dir = NSTemporaryDirectory() + "gatehouse-flood-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/.gatehouse"
        let fresh = try await FreshDaemon.start(gatehouse, data: data)
        defer { fresh.stop() }
        guard let https = fresh.ports["https"], let kmip = fresh.ports["kmip"], let pg = fresh.ports["postgres"] else {
            throw ValidationError("the daemon did not start listening")
        }
        let certs = data + "/certs"
        let admin = Endpoint(
            host: "127.0.0.1", port: kmip, ca: certs + "/ca.crt", cert: certs + "/admin.crt", key: certs + "/admin.key")
        // A certificate the listener's CA signed for a name no identity has: TLS passes, the engine refuses.
        let caPEM = try String(contentsOfFile: certs + "/ca.crt", encoding: .utf8)
        let caKeyPEM = try String(contentsOfFile: certs + "/ca.key", encoding: .utf8)
        let issuer = CertificateFactory.Issued(
            certificate: try Certificate(pemEncoded: caPEM), privateKey: try .init(pemRepresentation: caKeyPEM))
        let stranger = try CertificateFactory.issue(
            commonName: "flood-stranger", usage: .client, issuer: issuer, validity: 3600)
        try stranger.certificatePEM.write(toFile: dir + "/stranger.crt", atomically: true, encoding: .utf8)
        try stranger.privateKeyPEM.write(toFile: dir + "/stranger.key", atomically: true, encoding: .utf8)
        let strangerEndpoint = Endpoint(
            host: "127.0.0.1", port: kmip, ca: certs + "/ca.crt", cert: dir + "/stranger.crt",
            key: dir + "/stranger.key")

        let v = ProtocolVersion(1, 4)
        let get = try await KMIP.workload("get", admin, v)
        var alone = try KMIP.parse(["--seconds", String(baseline)])
        alone.seconds = baseline
        let quiet = try await alone.measure(admin, workers: workers, body: get)
        print(quiet.line("alone", "get", workers))
        let before = try await Self.storeState(data: data, https: https, certs: certs)

        // 1. The floods alone for --seconds: what they cost the store (the authenticated client's own Gets are
        //    audited reads, so it does not run here).
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let locate = KMIP.message(v, .locate, [])
        async let wrk = Self.wrk(port: https, seconds: seconds, connections: connections)
        async let kmipFlood = Self.kmipFlood(
            strangerEndpoint, body: locate, deadline: deadline, connections: connections)
        async let pgFlood = Self.pgFlood(port: pg, ca: certs + "/ca.crt", deadline: deadline, connections: connections)
        let (wrkLine, kmipCount, pgCount) = await (wrk, kmipFlood, pgFlood)
        // The refusal summaries of the last window are written within 15 s of its end.
        try await Task.sleep(for: .seconds(80))
        let after = try await Self.storeState(data: data, https: https, certs: certs)
        print("flood https (wrk, no client certificate, \(connections) connections): \(wrkLine)")
        print(
            String(
                format: "flood kmip (unknown certificate, Locate, %d connections): %.0f requests/s", connections,
                Double(kmipCount) / seconds))
        print(
            String(
                format: "flood postgres (bad access token, %d connections): %.0f log-ins/s", connections,
                Double(pgCount) / seconds))
        let grown = after.bytes - before.bytes
        let events = after.events - before.events
        print("store growth: \(grown) bytes (database + WAL), audit events: \(events)")
        let byType = after.types.map { ($0.key, $0.value - (before.types[$0.key] ?? 0)) }.filter { $0.1 > 0 }.sorted {
            $0.1 > $1.1
        }
        print("audit events by type: " + byType.map { "\($0.0) \($0.1)" }.joined(separator: ", "))

        // 2. The floods again (their sources still over their limits), with the authenticated client.
        var during = alone
        during.seconds = baseline
        let deadline2 = ContinuousClock.now + .milliseconds(Int64((baseline + 2) * 1000))
        async let wrk2 = Self.wrk(port: https, seconds: baseline + 2, connections: connections)
        async let kmipFlood2 = Self.kmipFlood(
            strangerEndpoint, body: locate, deadline: deadline2, connections: connections)
        async let pgFlood2 = Self.pgFlood(
            port: pg, ca: certs + "/ca.crt", deadline: deadline2, connections: connections)
        try await Task.sleep(for: .seconds(1))
        let loaded = try await during.measure(admin, workers: workers, body: get)
        _ = await (wrk2, kmipFlood2, pgFlood2)
        print(loaded.line("flooded", "get", workers))
        print(
            String(
                format: "authenticated throughput kept: %.0f%% (%.0f of %.0f Get/s)",
                100 * loaded.rate / max(quiet.rate, 0.001), loaded.rate, quiet.rate))
        print(
            "targets: store ≤ 1000000 bytes \(grown <= 1_000_000 ? "met" : "MISSED"); audit ≤ 200 events \(events <= 200 ? "met" : "MISSED"); "
                + "kept ≥ 50% \(loaded.rate >= 0.5 * quiet.rate ? "met" : "MISSED")")
    }

    /// Bytes of the SQLite store (database and WAL) and the number of audit events (paged through the admin API).
    static func storeState(data: String, https: Int, certs: String) async throws -> (
        bytes: Int, events: Int, types: [String: Int]
    ) {
        var bytes = 0
        for suffix in ["", "-wal"] {
            let attributes = try? FileManager.default.attributesOfItem(atPath: data + "/gatehouse.sqlite" + suffix)
            bytes += (attributes?[.size] as? Int) ?? 0
        }
        var events = 0
        var types: [String: Int] = [:]
        var cursor = ""
        while true {
            let out = try run([
                "curl", "-sS", "--cacert", certs + "/ca.crt", "--cert", certs + "/admin.crt", "--key",
                certs + "/admin.key",
                "https://localhost:\(https)/api/v1/audit/events?limit=1000"
                    + (cursor.isEmpty ? "" : "&cursor=\(cursor)"),
            ])
            guard let object = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
                let page = object["events"] as? [[String: Any]]
            else { throw ValidationError("cannot read the audit log: \(out.prefix(200))") }
            events += page.count
            for e in page {
                let type = ((e["event"] as? [String: Any])?["event"] as? [String: Any])?["type"] as? String ?? "?"
                types[type, default: 0] += 1
            }
            guard page.count == 1000, let next = object["next"] as? String else { break }
            cursor = next
        }
        return (bytes, events, types)
    }

    static func run(_ arguments: [String]) throws -> String { try commandOutput(arguments) }

    /// wrk's summary (requests/s and the non-2xx count) for unauthenticated GETs of an admin API path.
    static func wrk(port: Int, seconds: Double, connections: Int) async -> String {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            return "not run: wrk is not installed (apt-get install wrk)"
        }
        let out =
            (try? run([
                "wrk", "-t1", "-c\(connections)", "-d\(Int(seconds))s", "https://127.0.0.1:\(port)/api/v1/projects",
            ])) ?? ""
        let keep = out.split(separator: "\n").filter {
            $0.contains("Requests/sec") || $0.contains("Non-2xx") || $0.contains("requests in")
        }
        return keep.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; ")
    }

    /// KMIP requests with a certificate no identity has, on persistent connections, until the deadline.
    static func kmipFlood(_ e: Endpoint, body: [UInt8], deadline: ContinuousClock.Instant, connections: Int) async
        -> Int
    {
        await withTaskGroup(of: Int.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    var sent = 0
                    while ContinuousClock.now < deadline {
                        guard let connection = try? await KMIPConnection.open(e) else { continue }
                        try? await connection.channel.executeThenClose { inbound, outbound in
                            var iterator = inbound.makeAsyncIterator()
                            while ContinuousClock.now < deadline {
                                try await outbound.write(ByteBuffer(bytes: body))
                                guard try await iterator.next() != nil else { break }
                                sent += 1
                            }
                        }
                    }
                    return sent
                }
            }
            return await group.reduce(0, +)
        }
    }

    /// PostgreSQL log-ins with a bad access token as the password (no client certificate), each on a new connection.
    static func pgFlood(port: Int, ca: String, deadline: ContinuousClock.Instant, connections: Int) async -> Int {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(ca)
        tls.certificateVerification = .noHostnameVerification
        guard let context = try? TLSContextBox(tls) else { return 0 }
        return await withTaskGroup(of: Int.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    var attempts = 0
                    while ContinuousClock.now < deadline {
                        if await pgAttempt(port: port, context: context.context) {
                            attempts += 1
                        } else {
                            try? await Task.sleep(for: .milliseconds(10))
                        }
                    }
                    return attempts
                }
            }
            return await group.reduce(0, +)
        }
    }

    /// One log-in: SSLRequest, TLS, StartupMessage, a bad password, read until the server closes.
    static func pgAttempt(port: Int, context: NIOSSLContext) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            return try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var request = ByteBuffer()
                request.writeInteger(UInt32(8))
                request.writeInteger(UInt32(80_877_103))
                try await outbound.write(request)
                guard var answer = try await iterator.next(), answer.readInteger(as: UInt8.self) == UInt8(ascii: "S")
                else { return false }
                try await channel.channel.pipeline.addHandler(
                    try NIOSSLClientHandler(context: context, serverHostname: nil), position: .first)
                var startup = ByteBuffer()
                let params = Array("user\0flood\0database\0flood\0\0".utf8)
                startup.writeInteger(UInt32(8 + params.count))
                startup.writeInteger(UInt32(196_608))
                startup.writeBytes(params)
                try await outbound.write(startup)
                guard try await iterator.next() != nil else { return false }
                var password = ByteBuffer()
                let token = Array("ghat_flood-not-a-token\0".utf8)
                password.writeInteger(UInt8(ascii: "p"))
                password.writeInteger(UInt32(4 + token.count))
                password.writeBytes(token)
                try await outbound.write(password)
                while try await iterator.next() != nil {}
                return true
            }
        } catch {
            return false
        }
    }
}

/// An `NIOSSLContext` made once for many connections.
struct TLSContextBox: Sendable {
    let context: NIOSSLContext
    init(_ configuration: TLSConfiguration) throws { context = try NIOSSLContext(configuration: configuration) }
}
