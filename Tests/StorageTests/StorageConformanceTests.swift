import Foundation
import Logging
import StorageAPI
import StoragePostgres
import StorageSQLite
import Synchronization
import TestSupport
import Testing

let quietLogger: Logger = {
    var l = Logger(label: "test.pg")
    l.logLevel = .critical
    return l
}()

@Suite struct InMemoryStorageConformance {
    @Test(arguments: StorageConformance.checks)
    func check(_ name: String) async throws {
        let s = InMemoryStorage()
        try await s.migrate()
        try await StorageConformance.run(name, on: s)
    }

    @Test(arguments: IndexConformance.checks)
    func index(_ name: String) async throws {
        try await IndexConformance.run(name, on: InMemoryStorage())
    }
}

@Suite struct SQLiteStorageConformance {
    @Test(arguments: StorageConformance.checks)
    func check(_ name: String) async throws {
        let dir = try TemporaryDirectory()
        let s = try SQLiteStorage(path: dir.path + "/store.sqlite")
        try await s.migrate()
        try await StorageConformance.run(name, on: s)
        try await s.close()
    }

    @Test(arguments: IndexConformance.checks)
    func index(_ name: String) async throws {
        let dir = try TemporaryDirectory()
        let s = try SQLiteStorage(path: dir.path + "/store.sqlite")
        try await IndexConformance.run(name, on: s)
        try await s.close()
    }

    @Test(.timeLimit(.minutes(1))) func readBesideOpenWriter() async throws {
        let dir = try TemporaryDirectory()
        let s = try SQLiteStorage(path: dir.path + "/store.sqlite")
        try await s.migrate()
        try await StorageConformance.readBesideOpenWriter(s)
        try await s.close()
    }

    @Test func reopenKeepsCommittedData() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/store.sqlite"
        do {
            let s = try SQLiteStorage(path: path)
            try await s.migrate()
            try await s.withTransaction {
                try await $0.insert(Record(kind: "k", id: "1", body: Data("durable".utf8)))
            }
            try await s.close()
        }
        let s2 = try SQLiteStorage(path: path)
        try await s2.migrate()
        let r = try await s2.withTransaction { try await $0.get(kind: "k", id: "1") }
        #expect(r?.body == Data("durable".utf8))
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    @Test func refusesAFileThatIsNotADatabase() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/garbage.sqlite"
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        #expect(throws: StorageError.self) { _ = try SQLiteStorage(path: path) }
    }
}

/// The same suite against a real PostgreSQL server: `PG_TEST_URL` (set by Tests/run-all.sh, which starts one).
/// With `GATEHOUSE_REQUIRE_PG=1` (or in CI) a missing URL is a failure, not a skip, in every test of the suite.
@Suite(.serialized) struct PostgresStorageConformance {
    static var url: String? {
        guard let url = ProcessInfo.processInfo.environment["PG_TEST_URL"] else {
            if dependencyRequired("PG") { Issue.record("PG_TEST_URL is not set but a PostgreSQL server is required") }
            return nil
        }
        return url
    }

    @Test(arguments: StorageConformance.checks)
    func check(_ name: String) async throws {
        guard let url = Self.url else { return }
        let s = try PostgresStorage(url: url, logger: quietLogger, maxConnections: 8)
        try await s.unsafeDropAll()
        try await s.migrate()
        try await StorageConformance.run(name, on: s)
        try await s.close()
    }

    @Test(arguments: IndexConformance.checks)
    func index(_ name: String) async throws {
        guard let url = Self.url else { return }
        let s = try PostgresStorage(url: url, logger: quietLogger, maxConnections: 8)
        try await s.unsafeDropAll()
        try await IndexConformance.run(name, on: s)
        try await s.close()
    }

    @Test(.timeLimit(.minutes(1))) func readBesideOpenWriter() async throws {
        guard let url = Self.url else { return }
        let s = try PostgresStorage(url: url, logger: quietLogger, maxConnections: 8)
        try await s.unsafeDropAll()
        try await s.migrate()
        try await StorageConformance.readBesideOpenWriter(s)
        try await s.close()
    }

    @Test func twoClientsShareOneDatabase() async throws {
        guard let url = Self.url else { return }
        let a = try PostgresStorage(url: url, logger: quietLogger, maxConnections: 8)
        let b = try PostgresStorage(url: url, logger: quietLogger, maxConnections: 8)
        try await a.unsafeDropAll()
        try await a.migrate()
        try await b.migrate()
        try await a.withTransaction { try await $0.insert(Record(kind: "k", id: "x", name: "shared", body: Data([7]))) }
        let seen = try await b.withTransaction { try await $0.find(kind: "k", scope: "", name: "shared") }
        #expect(seen?.body == Data([7]))
        try await a.close()
        try await b.close()
    }

    @Test func unreachableServerIsUnavailable() async throws {
        let s = try PostgresStorage(url: "postgres://nobody:x@127.0.0.1:1/none?sslmode=disable", logger: quietLogger)
        await #expect(throws: StorageError.self) { try await within(30) { try await s.ping() } }
        try await s.close()
    }
}

/// The same suite through PgBouncer in transaction mode (`PG_POOLER_TEST_URL`, started by Tests/run-all.sh in front
/// of the test server): the store must work behind a transaction pooler, so it keeps no session state and sends no
/// startup parameters that a pooler refuses (PgBouncer rejects unknown ones, such as `synchronous_commit`). Debian's
/// PgBouncer (1.18) does not track prepared statements, so these run with `preparedStatements: false`
/// (`storage.postgres_prepared_statements`); the suite above runs them prepared.
@Suite(.serialized) struct PostgresBehindPgBouncerConformance {
    @Test(arguments: StorageConformance.checks)
    func check(_ name: String) async throws {
        guard let url = ProcessInfo.processInfo.environment["PG_POOLER_TEST_URL"], !url.isEmpty else {
            if dependencyRequired("PG") {
                Issue.record(
                    "PG_POOLER_TEST_URL is not set but a PostgreSQL server is required (is pgbouncer installed?)")
            }
            return
        }
        let s = try PostgresStorage(url: url, logger: quietLogger, maxConnections: 8, preparedStatements: false)
        try await within(60) { try await s.unsafeDropAll() }
        try await within(60) { try await s.migrate() }
        try await StorageConformance.run(name, on: s)
        try await s.close()
    }

    @Test(arguments: IndexConformance.checks)
    func index(_ name: String) async throws {
        guard let url = ProcessInfo.processInfo.environment["PG_POOLER_TEST_URL"], !url.isEmpty else {
            if dependencyRequired("PG") {
                Issue.record("PG_POOLER_TEST_URL is not set but a PostgreSQL server is required")
            }
            return
        }
        let s = try PostgresStorage(url: url, logger: quietLogger, maxConnections: 8, preparedStatements: false)
        try await within(60) { try await s.unsafeDropAll() }
        try await IndexConformance.run(name, on: s)
        try await s.close()
    }
}

/// PostgreSQL going away and coming back: requests fail cleanly (`.unavailable`, within the deadline) while it is
/// away, and succeed again without a restart when it returns; nothing committed is lost.
/// Runs `body` but gives up after `seconds` (the body's task is left behind and cancelled): a storage call that
/// hangs becomes a recorded failure instead of a stalled suite.
func within<T: Sendable>(_ seconds: Int, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let box = OnceBox<Result<T, any Error>>()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let work = Task {
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            if box.set(r) { continuation.resume(with: r) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            let r: Result<T, any Error> = .failure(StorageError(.unavailable, "timed out after \(seconds) s"))
            if box.set(r) {
                work.cancel()
                continuation.resume(with: r)
            }
        }
    }
}

/// Holds the first value set.
final class OnceBox<T: Sendable>: Sendable {
    private let value = Mutex<T?>(nil)
    func set(_ v: T) -> Bool {
        value.withLock { current in
            guard current == nil else { return false }
            current = v
            return true
        }
    }
}

@Suite(.serialized) struct PostgresOutageTests {
    @Test(.timeLimit(.minutes(3))) func serverGoesAwayAndComesBack() async throws {
        guard let url = PostgresStorageConformance.url else { return }
        let components = try #require(URLComponents(string: url), "PG_TEST_URL is not a URL")
        let pgPort = try #require(components.port, "PG_TEST_URL has no port")
        let forwarder = TCPForwarder(upstreamPort: pgPort)
        try forwarder.start()
        // Its own database, so the conformance suite running in parallel is not disturbed.
        var viaForwarder = components
        viaForwarder.port = forwarder.port
        viaForwarder.path = "/gatehouse_outage"
        let s = try PostgresStorage(
            url: viaForwarder.string ?? url, logger: quietLogger, transactionTimeout: .seconds(5))
        try await s.unsafeDropAll()
        try await s.migrate()
        try await s.withTransaction { try await $0.insert(Record(kind: "k", id: "before", body: Data([1]))) }

        forwarder.stop()
        let start = ContinuousClock.now
        do {
            try await within(30) {
                try await s.withTransaction { try await $0.insert(Record(kind: "k", id: "during", body: Data([2]))) }
            }
            Issue.record("a write succeeded while the database was away")
        } catch let e as StorageError {
            #expect(e.code == .unavailable)
        }
        #expect(ContinuousClock.now - start < .seconds(15), "fails within the deadline, not forever")
        await #expect(throws: StorageError.self) { try await within(30) { try await s.ping() } }

        try forwarder.start()
        // The pool reconnects by itself (with its own backoff): retry for up to 60 s, no restart.
        func eventually<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async -> T? {
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                if let value = try? await within(15, body) { return value }
                try? await Task.sleep(for: .milliseconds(250))
            }
            return nil
        }
        let recovered = await eventually {
            try await s.withTransaction { try await $0.insert(Record(kind: "k", id: "after", body: Data([3]))) }
        }
        #expect(recovered != nil, "the pool reconnects by itself")
        let ids = await eventually {
            try await s.withTransaction { try await $0.list(kind: "k", scope: nil, afterID: nil, limit: 10).map(\.id) }
        }
        #expect(ids == ["after", "before"])
        _ = try? await within(30) { try await s.close() }
        forwarder.stop()
    }
}
