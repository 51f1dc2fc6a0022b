import Crypto
import EngineAPI
import Foundation
import StorageAPI
import StorageSQLite
import TestSupport
import Testing

@testable import Engine

/// A full disk, simulated with SQLite's page limit (the same SQLITE_FULL path as a full file system): writes fail
/// cleanly as `unavailable`, nothing already stored is damaged, and writing works again once there is room.
@Suite struct FullDiskTests {
    @Test func fullStoreFailsWritesCleanlyAndRecovers() async throws {
        let dir = try TemporaryDirectory()
        let storage = try SQLiteStorage(path: dir.path + "/full.sqlite")
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        _ = try await engine.createSecret(admin, project: "p", name: "kept", value: SecretBytes(utf8: "still here"))
        let pages = try await storage.pageCount()
        try await storage.unsafeExecute("PRAGMA max_page_count = \(pages + 2)")
        var failure: EngineError?
        for i in 0..<200 {
            do {
                _ = try await engine.createSecret(
                    admin, project: "p", name: "filler-\(i)",
                    value: SecretBytes(Array(repeating: UInt8(i % 251), count: 16_384)))
            } catch let e as EngineError {
                failure = e
                break
            }
        }
        #expect(failure?.code == .unavailable, "a full store is reported as unavailable, not as a crash or corruption")
        #expect(try await engine.readSecret(admin, project: "p", name: "kept").1 == SecretBytes(utf8: "still here"))
        #expect(try await engine.verifyAudit(admin).isIntact)
        try await storage.unsafeExecute("PRAGMA max_page_count = 1073741823")
        _ = try await engine.createSecret(admin, project: "p", name: "after", value: SecretBytes(utf8: "room again"))
        #expect(try await engine.readSecret(admin, project: "p", name: "after").1 == SecretBytes(utf8: "room again"))
        try await storage.close()
    }
}
