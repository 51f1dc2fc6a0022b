import Crypto
import EngineAPI
import Foundation
import StorageAPI
import StorageSQLite
import TestSupport
import Testing

@testable import Engine

/// A recording store that counts deletions per session.
actor CountingRecordingStore: RecordingStore {
    nonisolated var description: String { "counting" }
    var bytes: [String: [UInt8]] = [:]
    var deletions: [String: Int] = [:]

    func write(sessionId: String, offset: Int, _ piece: [UInt8]) async throws {
        var b = bytes[sessionId] ?? []
        guard offset == b.count else { throw StorageError(.corrupt, "gap") }
        b += piece
        bytes[sessionId] = b
    }
    func read(sessionId: String) async throws -> [UInt8]? { bytes[sessionId] }
    func read(sessionId: String, from offset: Int) async throws -> [UInt8]? {
        bytes[sessionId].map { Array($0.dropFirst(offset)) }
    }
    func length(sessionId: String) async throws -> Int { bytes[sessionId]?.count ?? 0 }
    func delete(sessionId: String) async throws {
        // Slow enough that two nodes sweeping at once overlap.
        try await Task.sleep(for: .milliseconds(2))
        deletions[sessionId, default: 0] += 1
        bytes[sessionId] = nil
    }
}

/// Retention on two nodes sharing one store: each expired recording is deleted by one node, once, and audited once;
/// recent, held and unrecorded sessions are left alone; a sweep past more than one index page finds them all.
@Suite struct RecordingRetentionTests {
    @Test func twoNodesDeleteEachExpiredRecordingOnce() async throws {
        let dir = try TemporaryDirectory()
        let storage = try SQLiteStorage(path: dir.path + "/store.sqlite")
        let recordings = CountingRecordingStore()
        let key = SymmetricKey(size: .bits256)
        let now = Date()
        func node(_ name: String) async throws -> GatehouseEngine {
            let engine = try await GatehouseEngine.open(
                storage: storage, rootKey: StaticRootKeyProvider(key), bootstrapAdmins: ["gatehouse-admin"], node: name,
                recordings: recordings)
            do { _ = try await engine.createProject(admin, slug: "p", description: "") } catch let e as EngineError
                where e.code == .alreadyExists
            {}
            return engine
        }
        let a = try await node("a")
        let b = try await node("b")
        // 250 sessions that ended 40 days ago, 20 that ended an hour ago, 10 old ones under legal hold, 10 old ones
        // never recorded.
        var expired: Set<String> = []
        var kept: Set<String> = []
        var sessions: [PAMSessionBody] = []
        for i in 0..<290 {
            let old = i < 250 || i >= 270
            let ended = old ? now.addingTimeInterval(-40 * 86400 - Double(i)) : now.addingTimeInterval(-3600)
            var info = PAMSessionInfo(
                id: UUID().uuidString.lowercased(), project: "p", grantId: "g", resourceName: "orders", username: "app",
                granteeId: "id",
                granteeName: "alice", clientAddress: nil, startedAt: ended.addingTimeInterval(-60), endedAt: ended,
                endReason: .clientDisconnected)
            if (270..<280).contains(i) { info.legalHold = PAMLegalHold(by: "legal", at: now, reason: "case-7") }
            let recorded = i < 280
            sessions.append(PAMSessionBody(info: info, sealedRecordingKey: recorded ? Data([1, 2, 3]) : nil))
            if recorded { try await recordings.write(sessionId: info.id, offset: 0, [1, 2, 3]) }
            if i < 250 { expired.insert(info.id) } else { kept.insert(info.id) }
        }
        let all = sessions
        try await storage.withTransaction { tx in
            for s in all {
                try await tx.insert(
                    Record(
                        kind: PAMKind.session, id: s.info.id, scope: "p", body: try JSONEncoder().encode(s),
                        createdAt: s.info.startedAt))
            }
        }
        // Retention is what the API documents: 1 to 7 digits, no leading zero, then s, m, h or d.
        for bad in ["10000000d", "01d", "30", "30w", "-1d", " 30d", "0s"] {
            await #expect(throws: EngineError.self, "\(bad)") {
                _ = try await a.setPAMSettings(admin, PAMProjectSettings(project: "p", recordingRetention: bad))
            }
        }
        #expect(
            try await a.setPAMSettings(admin, PAMProjectSettings(project: "p", recordingRetention: "none"))
                .recordingRetention == nil)
        _ = try await a.setPAMSettings(admin, PAMProjectSettings(project: "p", recordingRetention: "30d"))

        async let fromA = a.deleteExpiredPAMRecordings()
        async let fromB = b.deleteExpiredPAMRecordings()
        let (deletedByA, deletedByB) = await (fromA, fromB)
        #expect(deletedByA + deletedByB == 250, "\(deletedByA) + \(deletedByB)")
        let deletions = await recordings.deletions
        #expect(Set(deletions.keys) == expired, "exactly the expired recordings are deleted")
        #expect(deletions.values.allSatisfy { $0 == 1 }, "each by one node, once")
        for id in kept where sessions.first(where: { $0.info.id == id })?.sealedRecordingKey != nil {
            #expect(try await recordings.read(sessionId: id) != nil, "\(id) is kept")
        }
        // Each deletion is on the session and audited once; the data key is gone; replay says 410.
        let audited = try await a.searchAudit(admin, AuditSearch(type: "pam.recording.delete", limit: 1000)).items
            .compactMap { $0.event.event.metadata["sessionId"] }
        #expect(audited.count == 250 && Set(audited) == expired)
        let sample = try #require(expired.first)
        let record = try #require(
            try await storage.withTransaction { tx in try await tx.get(kind: PAMKind.session, id: sample) })
        let body = try JSONDecoder().decode(PAMSessionBody.self, from: record.body)
        #expect(
            body.sealedRecordingKey == nil && body.info.recordingDeletedAt != nil
                && body.info.recordingDeletion?.contains("30d") == true)
        await #expect(throws: EngineError.self) { _ = try await b.readPAMRecording(admin, sessionId: sample) }
        // Nothing is left to do; a hold on a deleted recording is refused.
        #expect(await a.deleteExpiredPAMRecordings() == 0)
        await #expect(throws: EngineError.self) {
            _ = try await a.setPAMLegalHold(admin, sessionId: sample, reason: "late")
        }
    }
}
