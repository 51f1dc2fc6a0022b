import Foundation
import StorageAPI
import StoragePostgres
import TestSupport
import Testing

/// The recording store conformance suite on each implementation.
@Suite struct RecordingStoreTests {
    @Test func localDirectory() async throws {
        let dir = try TemporaryDirectory()
        let store = LocalRecordingStore(directory: dir.path)
        try await RecordingStoreConformance.run(store)
        // Files are the proxy's format on disk: <session>.ghrec, owner-only.
        let id = UUID().uuidString.lowercased()
        try await store.write(sessionId: id, offset: 0, [1, 2, 3])
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.path + "/" + id + ".ghrec")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }
}

/// The same checks on the shared PostgreSQL store (`PG_TEST_URL`), directly and through PgBouncer.
@Suite(.serialized) struct PostgresRecordingStoreTests {
    @Test func postgres() async throws {
        guard let url = PostgresStorageConformance.url else { return }
        let s = try PostgresStorage(url: url, logger: quietLogger, maxConnections: 4)
        try await s.unsafeDropAll()
        try await s.migrate()
        try await RecordingStoreConformance.run(s.recordings)
        // A second client of the same database reads what the first wrote (another node replaying a session).
        let other = try PostgresStorage(url: url, logger: quietLogger, maxConnections: 2)
        let id = UUID().uuidString.lowercased()
        try await s.recordings.write(sessionId: id, offset: 0, Array("GHREC001".utf8))
        try await s.recordings.write(sessionId: id, offset: 8, [1, 2, 3])
        #expect(try await other.recordings.read(sessionId: id) == Array("GHREC001".utf8) + [1, 2, 3])
        try await other.close()
        try await s.close()
    }

    @Test func behindPgBouncer() async throws {
        guard let url = ProcessInfo.processInfo.environment["PG_POOLER_TEST_URL"], !url.isEmpty else {
            if dependencyRequired("PG") {
                Issue.record("PG_POOLER_TEST_URL is not set but a PostgreSQL server is required")
            }
            return
        }
        let s = try PostgresStorage(url: url, logger: quietLogger, maxConnections: 4, preparedStatements: false)
        try await within(60) { try await s.unsafeDropAll() }
        try await within(60) { try await s.migrate() }
        try await RecordingStoreConformance.run(s.recordings)
        try await s.close()
    }
}
