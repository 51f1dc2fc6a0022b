import ArgumentParser
import EngineAPI
import Foundation
import PGProxyFrontEnd

/// `gatehouse-bench recording`: the PAM session recorder on its own — the proxy's code path (event JSON, 64 KiB
/// AES-256-GCM chunks bound to session and index, the hash chain, `write(2)` to a file) — in MB/s of encrypted
/// output, for a pgbench-like stream of small statements and for large statements with parameters.
struct RecordingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recording", abstract: "Session recording throughput (MB/s of encrypted output).")

    @Option(help: "Seconds per workload.") var seconds = 3.0
    @Option(help: "Threads recording concurrently (one session each).") var threads = 1

    func run() throws {
        let dir = NSTemporaryDirectory() + "gatehouse-bench-recording-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let workloads: [(String, [PAMRecordingEvent])] = [
            ("small statements (pgbench -S)", [
                PAMRecordingEvent(t: 1.234, kind: "query", text: "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"),
                PAMRecordingEvent(t: 1.235, kind: "complete", text: "SELECT 1", rows: 1),
            ]),
            ("large statements (4 KiB text + 4 KiB parameter)", [
                PAMRecordingEvent(t: 1.234, kind: "parse", text: "INSERT INTO audit_log (payload) VALUES ($1) /* " + String(repeating: "x", count: 4000) + " */", name: ""),
                PAMRecordingEvent(t: 1.234, kind: "bind", parameters: [String(repeating: "{\"k\": \"v\"}, ", count: 372)], formats: [0]),
                PAMRecordingEvent(t: 1.235, kind: "complete", text: "INSERT 0 1", rows: 1),
            ]),
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
                        let recorder = try PGSessionRecorder(directory: dir, sessionId: "bench-\(i)-\(UUID().uuidString)", key: key)
                        let start = Date()
                        var count = 0
                        while Date().timeIntervalSince(start) < seconds {
                            for _ in 0..<1000 { for e in events { recorder.record(e) } }
                            count += 1000 * events.count
                        }
                        recorder.flush()
                        let elapsed = Date().timeIntervalSince(start)
                        let size = (try? FileManager.default.attributesOfItem(atPath: recorder.path)[.size] as? Int) ?? 0
                        results.add(events: count, bytes: size, seconds: elapsed)
                    } catch {
                        print("recorder failed: \(error)")
                    }
                }
            }
            group.wait()
            let (events, bytes, elapsed) = results.totals
            print(String(
                format: "recording %@: %.0f MB/s encrypted output, %.0f events/s (%d threads)", name,
                Double(bytes) / elapsed / 1e6, Double(events) / elapsed, threads))
        }
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
