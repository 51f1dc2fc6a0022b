import Foundation
import StorageAPI
import Synchronization
import TestSupport
import Testing

@testable import StorageSQLite

/// The SQLite store acknowledges a write only once its commit is on stable storage: the WAL's fsync (injected here
/// to watch it) runs after the commit wrote its frames, and the write does not return before that fsync ends.
/// Writers that commit while one fsync runs share the next one (group commit), and a failed fsync fails the write.
@Suite struct DurabilityTests {
    /// An fsync that records what the WAL held when it was called, and can hold the caller until released.
    final class SyncProbe: Sendable {
        struct State {
            var walSyncs: [[UInt8]] = []
            var holding = false
            var failing = false
        }
        let state = Mutex(State())
        let gate = DispatchSemaphore(value: 0)
        let walPath: String
        init(walPath: String) { self.walPath = walPath }

        func sync(_ fd: Int32) -> Int32 {
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return fsync(fd) }  // the directory
            let wal = [UInt8](FileManager.default.contents(atPath: walPath) ?? Data())
            let (hold, fail) = state.withLock { s -> (Bool, Bool) in
                s.walSyncs.append(wal)
                return (s.holding, s.failing)
            }
            if hold { gate.wait() }
            if fail {
                errno = EIO
                return -1
            }
            return fsync(fd)
        }
        var walSyncCount: Int { state.withLock { $0.walSyncs.count } }
        func hold() { state.withLock { $0.holding = true } }
        func release() {
            state.withLock { $0.holding = false }
            gate.signal()
        }
    }

    final class Flag: Sendable {
        private let state = Mutex(false)
        func set() { state.withLock { $0 = true } }
        var value: Bool { state.withLock { $0 } }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        return (0...(haystack.count - needle.count)).contains {
            haystack[$0..<($0 + needle.count)].elementsEqual(needle)
        }
    }

    @Test(.timeLimit(.minutes(1))) func aWriteIsAcknowledgedOnlyAfterItsCommitIsSynced() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/store.sqlite"
        let probe = SyncProbe(walPath: path + "-wal")
        let store = try SQLiteStorage(path: path, sync: { probe.sync($0) })
        try await store.migrate()
        let before = probe.walSyncCount
        #expect(before >= 1, "the migration's writes were synced")

        probe.hold()
        let marker = Array("durable-marker-\(UInt32.random(in: 1...UInt32.max))".utf8)
        let acknowledged = Flag()
        let writer = Task {
            try await store.withTransaction { try await $0.insert(Record(kind: "k", id: "1", body: Data(marker))) }
            acknowledged.set()
        }
        // The commit reaches the WAL, then the sync starts; the write is not acknowledged while it runs.
        let deadline = Date().addingTimeInterval(10)
        while probe.walSyncCount == before && Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(probe.walSyncCount == before + 1, "the write asked for a sync")
        let walAtSync = try #require(probe.state.withLock { $0.walSyncs.last })
        #expect(Self.contains(walAtSync, marker), "the commit's frames were in the WAL when the sync began")
        try await Task.sleep(for: .milliseconds(300))
        let early = acknowledged.value
        #expect(!early, "acknowledged before its sync finished")

        // Five writers commit while that sync runs: they wait for the next one, which they share.
        let others = (0..<5).map { i in
            Task {
                try await store.withTransaction {
                    try await $0.insert(Record(kind: "k", id: "other-\(i)", body: Data([UInt8(i)])))
                }
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(probe.walSyncCount == before + 1, "no second sync while the first runs")
        probe.release()
        try await writer.value
        let late = acknowledged.value
        #expect(late)
        for t in others { try await t.value }
        #expect(probe.walSyncCount == before + 2, "the five share one sync: \(probe.walSyncCount - before) syncs")

        // Reads never sync; a failed sync fails the write instead of acknowledging it.
        _ = try await store.withReadTransaction { try await $0.get(kind: "k", id: "1") }
        #expect(probe.walSyncCount == before + 2)
        probe.state.withLock { $0.failing = true }
        await #expect(throws: StorageError.self) {
            try await store.withTransaction { try await $0.insert(Record(kind: "k", id: "2", body: Data([2]))) }
        }
        try await store.close()
    }
}
