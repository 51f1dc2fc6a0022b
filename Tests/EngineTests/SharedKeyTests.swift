import Crypto
import EngineAPI
import Foundation
import Logging
import StorageAPI
import StoragePostgres
import TestSupport
import Testing

@testable import Engine

/// Several nodes on one PostgreSQL store using the same key at once. Some operations update the key's record as
/// they use it: the first Get of a Fresh key clears Fresh, and a use under Usage Limits takes from the count. When
/// two nodes race on that record, the loser retries; it does not fail. This needs a real PostgreSQL (`PG_TEST_URL`'s
/// server, database gatehouse_keys), with one connection pool per node, where the races are real.
@Suite struct SharedKeyTests {
    func nodes() async throws -> [GatehouseEngine]? {
        guard let url = ProcessInfo.processInfo.environment["PG_TEST_URL"], var components = URLComponents(string: url)
        else {
            if dependencyRequired("PG") { Issue.record("PG_TEST_URL is not set") }
            return nil
        }
        components.path = "/gatehouse_keys"
        var logger = Logger(label: "test.pg")
        logger.logLevel = .critical
        let target = components.string ?? url
        let pools = [
            try PostgresStorage(url: target, logger: logger, maxConnections: 8),
            try PostgresStorage(url: target, logger: logger, maxConnections: 8),
        ]
        try await pools[0].unsafeDropAll()
        let key = SymmetricKey(size: .bits256)
        let first = try await openEngine(pools[0], key: key)
        return [first, try await openEngine(pools[1], key: key)]
    }

    /// Runs `operation` `count` times at once; the error codes of those that failed.
    static func failures(_ count: Int, _ operation: @escaping @Sendable (Int) async throws -> Void) async
        -> [EngineError.Code]
    {
        await withTaskGroup(of: EngineError.Code?.self) { group in
            for i in 0..<count {
                group.addTask {
                    do {
                        try await operation(i)
                        return nil
                    } catch let e as EngineError { return e.code } catch { return .internal }
                }
            }
            var failures: [EngineError.Code] = []
            for await f in group { if let f { failures.append(f) } }
            return failures
        }
    }

    @Test func concurrentFirstGetsAndCountedUsesAllSucceed() async throws {
        guard let nodes = try await nodes() else { return }
        let fresh = try await nodes[0].createKey(
            admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 128))
        #expect(fresh.fresh == true)
        let gets = await Self.failures(16) { i in _ = try await nodes[i % 2].getObject(admin, id: fresh.id) }
        #expect(gets.isEmpty, "concurrent first Gets failed: \(gets)")
        #expect(try await nodes[1].objectAttributes(admin, id: fresh.id).fresh == false)

        var spec = ObjectSpec(
            objectType: .symmetricKey, algorithm: 3, cryptographicLength: 128,
            activationDate: Date(timeIntervalSince1970: 0))
        spec.usageLimits = UsageLimits(total: 64, count: 64, unit: 1)
        let limited = try await nodes[0].createKey(admin, project: "p", spec)
        let ecb = CipherParameters(blockCipherMode: 2, paddingMethod: 1)
        let uses = await Self.failures(4) { i in
            _ = try await nodes[i % 2].encrypt(
                admin, id: limited.id, ecb, data: [UInt8](repeating: 7, count: 16), iv: nil, aad: nil)
        }
        #expect(uses.isEmpty, "concurrent counted uses failed: \(uses)")
        // Every use was counted exactly once: 4 × 16 bytes of 64.
        #expect(try await nodes[1].objectAttributes(admin, id: limited.id).usageLimits?.count == 0)
    }
}
