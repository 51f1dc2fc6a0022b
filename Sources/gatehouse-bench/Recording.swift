import ArgumentParser
import EngineAPI
import Foundation
import Logging
import PGProxyFrontEnd
import StorageAPI
import StoragePostgres
import StorageS3

/// `gatehouse-bench recording`: the PAM session recorder on its own — the proxy's code path (event JSON, 64 KiB
/// AES-256-GCM chunks bound to session and index, the hash chain, `write(2)` to a file) — in MB/s of encrypted
/// output, for a pgbench-like stream of small statements and for large statements with parameters. Then the recording
/// stores: the rate a node ships recordings (1 MiB pieces, resuming at the store's length, as `RecordingShipper` does)
/// to its local directory, to PostgreSQL and to an S3-compatible server, in the same run, and reads them back.
struct RecordingBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recording", abstract: "Session recording throughput (MB/s of encrypted output).")

    @Option(help: "Seconds per workload.") var seconds = 3.0
    @Option(help: "Threads recording concurrently (one session each).") var threads = 1
    @Option(help: "MiB shipped to each recording store.") var storeMb = 64
    @Option(help: "A PostgreSQL database (postgres://…) to ship to; its Gatehouse tables are dropped first.")
    var postgresUrl: String?
    @Option(help: "moto_server to start on loopback and ship to (an S3-compatible server).") var motoServer: String?
    @Option(
        help:
            "An S3-compatible endpoint to ship to instead (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)."
    )
    var s3Endpoint: String?
    @Option(help: "The bucket at --s3-endpoint.") var s3Bucket = "gatehouse-bench"

    func run() async throws {
        try recorder()
        try await stores()
    }

    func recorder() throws {
        let dir = NSTemporaryDirectory() + "gatehouse-bench-recording-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let workloads: [(String, [PAMRecordingEvent])] = [
            (
                "small statements (pgbench -S)",
                [
                    PAMRecordingEvent(
                        t: 1.234, kind: "query", text: "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"),
                    PAMRecordingEvent(t: 1.235, kind: "complete", text: "SELECT 1", rows: 1),
                ]
            ),
            (
                "large statements (4 KiB text + 4 KiB parameter)",
                [
                    PAMRecordingEvent(
                        t: 1.234, kind: "parse",
                        text: "INSERT INTO audit_log (payload) VALUES ($1) /* " + String(repeating: "x", count: 4000)
                            + " */", name: ""),
                    PAMRecordingEvent(
                        t: 1.234, kind: "bind", parameters: [String(repeating: "{\"k\": \"v\"}, ", count: 372)],
                        formats: [0]),
                    PAMRecordingEvent(t: 1.235, kind: "complete", text: "INSERT 0 1", rows: 1),
                ]
            ),
        ]
        print("recording: \(threads) thread(s), \(seconds) s per workload")
        for (name, events) in workloads {
            let results = LockedResults()
            let group = DispatchGroup()
            for i in 0..<threads {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    do {
                        let key = SecretBytes((0..<32).map { _ in UInt8.random(in: 0...255) })
                        let recorder = try PGSessionRecorder(
                            directory: dir, sessionId: "bench-\(i)-\(UUID().uuidString)", key: key)
                        let start = Date()
                        var count = 0
                        while Date().timeIntervalSince(start) < seconds {
                            for _ in 0..<1000 { for e in events { recorder.record(e) } }
                            count += 1000 * events.count
                        }
                        recorder.flush()
                        let elapsed = Date().timeIntervalSince(start)
                        let size =
                            (try? FileManager.default.attributesOfItem(atPath: recorder.path)[.size] as? Int) ?? 0
                        results.add(events: count, bytes: size, seconds: elapsed)
                    } catch {
                        print("recorder failed: \(error)")
                    }
                }
            }
            group.wait()
            let (events, bytes, elapsed) = results.totals
            print(
                String(
                    format: "recording %@: %.0f MB/s encrypted output, %.0f events/s (%d threads)", name,
                    Double(bytes) / elapsed / 1e6, Double(events) / elapsed, threads))
        }
    }
}

extension RecordingBench {
    /// Ships `storeMb` MiB to each store in 1 MiB pieces (length, then write, as the shipper does), then reads it back.
    func stores() async throws {
        var stores: [any RecordingStore] = []
        let dir = NSTemporaryDirectory() + "gatehouse-bench-stores-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        stores.append(LocalRecordingStore(directory: dir))
        var postgres: PostgresStorage?
        if let postgresUrl {
            _ = try shell([
                "psql", "-X", "-q", postgresUrl, "-c",
                "DROP TABLE IF EXISTS record_index, records, audit_events, audit_log, audit_chains, audit_pending, metadata, recording_pieces, schema_migrations",
            ])
            let pg = try PostgresStorage(url: postgresUrl, logger: Logger(label: "bench"))
            try await pg.migrate(indexes: .none)
            postgres = pg
            stores.append(pg.recordings)
        }
        var moto: Spawned?
        defer { moto?.terminate() }
        var endpoint = s3Endpoint
        var credentials = SigV4.Credentials(
            accessKeyId: ProcessInfo.processInfo.environment["AWS_ACCESS_KEY_ID"] ?? "",
            secretAccessKey: ProcessInfo.processInfo.environment["AWS_SECRET_ACCESS_KEY"] ?? "")
        if let motoServer {
            let port = try freeLoopbackPort()
            moto = try Spawned([motoServer, "-H", "127.0.0.1", "-p", String(port)], output: dir + "/moto.log")
            try waitForPort(port, seconds: 30)
            endpoint = "http://127.0.0.1:\(port)"
            credentials = SigV4.Credentials(accessKeyId: "bench", secretAccessKey: "bench")
            _ = try shell(["curl", "-sS", "-X", "PUT", "\(endpoint ?? "")/\(s3Bucket)"])
        }
        if let endpoint {
            let location = S3Location(
                endpoint: endpoint, region: "us-east-1", bucket: s3Bucket, prefix: "bench-\(getpid())/")
            stores.append(S3RecordingStore(client: try S3Client(location: location, credentials: credentials)))
        }
        print("")
        print(
            "recording stores: \(storeMb) MiB shipped to each in 1 MiB pieces (length + write per piece, as the shipper does), then read back"
        )
        let piece = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255) }
        var localRate: Double?
        for store in stores {
            let session = UUID().uuidString.lowercased()
            var latencies: [Double] = []
            let start = Date()
            for _ in 0..<storeMb {
                let t = Date()
                let offset = try await store.length(sessionId: session)
                try await store.write(sessionId: session, offset: offset, piece)
                latencies.append(Date().timeIntervalSince(t))
            }
            let shipSeconds = Date().timeIntervalSince(start)
            let readStart = Date()
            let back = try await store.read(sessionId: session)
            let readSeconds = Date().timeIntervalSince(readStart)
            guard back?.count == storeMb << 20 else {
                throw ValidationError("\(store.description) read back \(back?.count ?? 0) bytes")
            }
            try await store.delete(sessionId: session)
            latencies.sort()
            let rate = Double(storeMb) * 1.048576 / shipSeconds
            if localRate == nil { localRate = rate }
            print(
                String(
                    format:
                        "store %@ ship %7.1f MB/s  piece p50 %6.1f ms  p99 %6.1f ms  read %7.1f MB/s  ship rate / local %.3fx",
                    String(store.description.prefix(36)).padding(toLength: 36, withPad: " ", startingAt: 0), rate,
                    latencies[latencies.count / 2] * 1000,
                    latencies[min(latencies.count - 1, latencies.count * 99 / 100)] * 1000,
                    Double(storeMb) * 1.048576 / readSeconds,
                    rate / (localRate ?? rate)))
        }
        try await postgres?.close()
    }
}

final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var events = 0
    private var bytes = 0
    private var seconds = 0.0
    func add(events e: Int, bytes b: Int, seconds s: Double) {
        lock.withLock {
            events += e
            bytes += b
            seconds = max(seconds, s)
        }
    }
    var totals: (Int, Int, Double) { lock.withLock { (events, bytes, seconds) } }
}
