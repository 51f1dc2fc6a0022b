import Foundation
import Logging
import StorageAPI
import Synchronization
import TestSupport
import Testing

@testable import Daemon

/// The recording shipper on a spool directory and a store that can be made to fail: it uploads what each file
/// gained, resumes where the store's copy ends, deletes a file only once stored whole and its session is over, and
/// reports its backlog and failures to the proxy's fail-closed check.
@Suite struct RecordingShipperTests {
    /// An in-memory store that fails while `failing` is set.
    final class MemoryStore: RecordingStore, Sendable {
        let data = Mutex<[String: [UInt8]]>([:])
        let failing = Mutex(false)
        let writes = Mutex(0)
        var description: String { "memory" }
        func write(sessionId: String, offset: Int, _ bytes: [UInt8]) async throws {
            if failing.withLock({ $0 }) { throw StorageError(.unavailable, "the store is down") }
            try data.withLock { d in
                var current = d[sessionId] ?? []
                guard offset == current.count else {
                    throw StorageError(.corrupt, "write at \(offset) of \(current.count)")
                }
                current += bytes
                d[sessionId] = current
            }
            writes.withLock { $0 += 1 }
        }
        func read(sessionId: String) async throws -> [UInt8]? { data.withLock { $0[sessionId] } }
        func read(sessionId: String, from offset: Int) async throws -> [UInt8]? {
            data.withLock { $0[sessionId].map { Array($0.dropFirst(offset)) } }
        }
        func length(sessionId: String) async throws -> Int {
            if failing.withLock({ $0 }) { throw StorageError(.unavailable, "the store is down") }
            return data.withLock { $0[sessionId]?.count ?? 0 }
        }
        func delete(sessionId: String) async throws { _ = data.withLock { $0.removeValue(forKey: sessionId) } }
    }

    @Test func shipsResumesDeletesAndReports() async throws {
        let dir = try TemporaryDirectory()
        let spool = dir.path
        try FileManager.default.createDirectory(atPath: spool + "/.open", withIntermediateDirectories: true)
        let finished = UUID().uuidString.lowercased()
        let running = UUID().uuidString.lowercased()
        let finishedBytes = (0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var runningBytes = Array("GHREC001 running".utf8)
        FileManager.default.createFile(atPath: spool + "/\(finished).ghrec", contents: Data(finishedBytes))
        FileManager.default.createFile(atPath: spool + "/\(running).ghrec", contents: Data(runningBytes))
        FileManager.default.createFile(atPath: spool + "/.open/\(running)", contents: nil)
        let store = MemoryStore()
        let status = RecordingShipper.Status(maxBacklog: 64 << 20)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let shipper = RecordingShipper(
            spool: spool, store: store, interval: .seconds(1), logger: logger, status: status)

        // The store is down: everything waits, and after the grace period fail-closed resources are refused.
        store.failing.withLock { $0 = true }
        #expect(await shipper.shipAll() == finishedBytes.count + runningBytes.count)
        #expect(status.blocked() == nil, "a short failure does not refuse sessions yet")
        #expect(status.blocked(now: .now + .seconds(11))?.contains("unreachable") == true)
        #expect(status.summary.contains("store failing"))
        #expect(
            FileManager.default.fileExists(atPath: spool + "/\(finished).ghrec"),
            "nothing is deleted before it is stored")

        // Back: both are stored (in pieces of at most 1 MiB), the finished one's spool copy is deleted, the running
        // one's kept.
        store.failing.withLock { $0 = false }
        #expect(await shipper.shipAll() == 0)
        #expect(status.blocked() == nil && !status.summary.contains("failing"))
        #expect(try await store.read(sessionId: finished) == finishedBytes)
        #expect(try await store.read(sessionId: running) == runningBytes)
        #expect(store.writes.withLock { $0 } == 5, "4 pieces of the 3 MiB file and 1 of the other")
        #expect(!FileManager.default.fileExists(atPath: spool + "/\(finished).ghrec"))
        #expect(FileManager.default.fileExists(atPath: spool + "/\(running).ghrec"))

        // The running session's file grows: only what is new is uploaded, by a new shipper too (a restart).
        let more = Array(" and more".utf8)
        let handle = try #require(FileHandle(forWritingAtPath: spool + "/\(running).ghrec"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(more))
        try handle.close()
        runningBytes += more
        let restarted = RecordingShipper(
            spool: spool, store: store, interval: .seconds(1), logger: logger, status: status)
        #expect(await restarted.shipAll() == 0)
        #expect(try await store.read(sessionId: running) == runningBytes)
        #expect(store.writes.withLock { $0 } == 6)
        // The session ends (its marker goes): the next round deletes the spool copy, uploading nothing again.
        try FileManager.default.removeItem(atPath: spool + "/.open/\(running)")
        #expect(await restarted.shipAll() == 0)
        #expect(!FileManager.default.fileExists(atPath: spool + "/\(running).ghrec"))
        #expect(store.writes.withLock { $0 } == 6)

        // A backlog over the limit refuses at once.
        let small = RecordingShipper.Status(maxBacklog: 10)
        let other = UUID().uuidString.lowercased()
        FileManager.default.createFile(atPath: spool + "/\(other).ghrec", contents: Data(repeating: 1, count: 100))
        FileManager.default.createFile(atPath: spool + "/.open/\(other)", contents: nil)
        store.failing.withLock { $0 = true }
        _ = await RecordingShipper(spool: spool, store: store, interval: .seconds(1), logger: logger, status: small)
            .shipAll()
        #expect(small.blocked()?.contains("100 bytes") == true, "\(small.blocked() ?? "nil")")

        // A spool copy of a recording retention has already deleted (the store was away longer than the retention)
        // is removed, not uploaded again.
        store.failing.withLock { $0 = false }
        let expired = UUID().uuidString.lowercased()
        FileManager.default.createFile(atPath: spool + "/\(expired).ghrec", contents: Data(repeating: 2, count: 50))
        let writesBefore = store.writes.withLock { $0 }
        var pruning = RecordingShipper(
            spool: spool, store: store, interval: .seconds(1), logger: logger, status: status)
        pruning.recordingDeleted = { $0 == expired }
        _ = await pruning.shipAll()
        #expect(!FileManager.default.fileExists(atPath: spool + "/\(expired).ghrec"))
        #expect(try await store.length(sessionId: expired) == 0)
        #expect(store.writes.withLock { $0 } == writesBefore + 1, "only the other, running session's file was uploaded")
    }
}
