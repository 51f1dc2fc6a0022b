import Crypto
import EngineAPI
import Foundation
import Recording
import StorageAPI
import Synchronization
import TestSupport
import Testing

@testable import Engine

/// A recording store in memory that logs every ranged read: where it started and how many bytes it returned.
final class ReadLoggingStore: RecordingStore, Sendable {
    let data = Mutex<[String: [UInt8]]>([:])
    let reads = Mutex<[(offset: Int, count: Int)]>([])
    var description: String { "read-logging" }
    func write(sessionId: String, offset: Int, _ bytes: [UInt8]) async throws {
        try data.withLock { d in
            guard offset == d[sessionId]?.count ?? 0 else { throw StorageError(.corrupt, "gap") }
            d[sessionId, default: []] += bytes
        }
    }
    func read(sessionId: String) async throws -> [UInt8]? {
        let all = data.withLock { $0[sessionId] }
        reads.withLock { $0.append((0, all?.count ?? 0)) }
        return all
    }
    func read(sessionId: String, from offset: Int) async throws -> [UInt8]? {
        let rest = data.withLock { $0[sessionId].map { Array($0.dropFirst(offset)) } }
        reads.withLock { $0.append((offset, rest?.count ?? 0)) }
        return rest
    }
    func length(sessionId: String) async throws -> Int { data.withLock { $0[sessionId]?.count ?? 0 } }
    func delete(sessionId: String) async throws { _ = data.withLock { $0.removeValue(forKey: sessionId) } }
}

/// Following a running session's recording (the console's live view): each poll reads only the bytes the recording
/// gained, a statement cut across chunks or a chunk cut across reads comes out once and whole, and the end of the
/// session settles the verdict.
@Suite struct RecordingFollowTests {
    let admin = CallContext(
        principal: Principal(method: .tlsCertificate, id: "fp", name: "gatehouse-admin", verifiedByListener: true),
        frontEnd: "test")

    func event(_ i: Int) -> [UInt8] {
        Array(#"{"t":\#(Double(i) / 10),"kind":"query","text":"select \#(i)"}"#.utf8) + [UInt8(ascii: "\n")]
    }

    @Test func aFollowReadsEachByteOnceAndEachStatementOnce() async throws {
        let store = ReadLoggingStore()
        let engine = try await GatehouseEngine.open(
            storage: InMemoryStorage(), rootKey: StaticRootKeyProvider(SymmetricKey(size: .bits256)),
            bootstrapAdmins: ["gatehouse-admin"], recordings: store)
        _ = try await engine.createProject(admin, slug: "p", description: "")
        let id = UUID().uuidString.lowercased()
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { [UInt8]($0) }
        var info = PAMSessionInfo(
            id: id, project: "p", grantId: "g", resourceName: "orders", username: "app", granteeId: "i",
            granteeName: "dana", clientAddress: nil, startedAt: Date())
        func put(_ info: PAMSessionInfo) async throws {
            let pam = engine.pam
            try await pam.transact { tx in
                let sealed = try await pam.keyring.seal(key, binding: "pam-recording/\(id)", tx)
                let body = try JSONEncoder().encode(PAMSessionBody(info: info, sealedRecordingKey: sealed))
                if var existing = try await tx.get(kind: PAMKind.session, id: id) {
                    existing.body = body
                    _ = try await tx.update(existing)
                } else {
                    try await tx.insert(
                        Record(kind: PAMKind.session, id: id, scope: "p", body: body, createdAt: info.startedAt))
                }
            }
        }
        try await put(info)
        var encoder = RecordingEncoder(session: id, key: key)
        var written = 0
        func append(_ bytes: [UInt8]) async throws {
            try await store.write(sessionId: id, offset: written, bytes)
            written += bytes.count
        }
        let e = (0..<5).map(event)

        var follow = try await engine.followPAMRecording(admin, sessionId: id, from: 0, interval: .milliseconds(1))
            .makeAsyncIterator()
        // Nothing recorded yet: no events, and nothing to say of the recording.
        var update = try #require(try await follow.next())
        #expect(update.events.isEmpty && update.integrity == "missing")

        // Statement 0 whole and statement 1 cut in the middle, across two chunks.
        try await append(encoder.header)
        try await append(try encoder.seal(e[0] + e[1].prefix(10)))
        update = try #require(try await follow.next())
        #expect(update.events.map(\.text) == ["select 0"])
        #expect(update.integrity == "incomplete")

        // The rest of statement 1 and statement 2, and then half of the next chunk record (a write caught midway).
        try await append(try encoder.seal(Array(e[1].dropFirst(10)) + e[2]))
        let third = try encoder.seal(e[3])
        try await append(Array(third.prefix(20)))
        update = try #require(try await follow.next())
        #expect(update.events.map(\.text) == ["select 1", "select 2"])

        // The record completed, and statement 4 without its newline yet.
        try await append(Array(third.dropFirst(20)))
        try await append(try encoder.seal(Array(e[4].dropLast())))
        update = try #require(try await follow.next())
        #expect(update.events.map(\.text) == ["select 3"])

        // The session ends: the manifest comes, and the last line is all there will be.
        let manifest = encoder.manifest(endedAt: Date(), endReason: "client-terminated")
        let signature = try await engine.signPAMRecordingManifest(
            sessionId: id, RecordingFormat.signedManifestBytes(manifest))
        try await append(RecordingEncoder.manifestRecord(manifest, signature: signature))
        info.endedAt = Date()
        info.endReason = .clientDisconnected
        try await put(info)
        update = try #require(try await follow.next())
        #expect(update.events.map(\.text) == ["select 4"])
        #expect(update.integrity == "complete")
        #expect(update.session.endedAt != nil)
        #expect(try await follow.next() == nil)

        // Every poll read from where the previous one stopped: each byte was fetched once.
        let reads = store.reads.withLock { $0 }
        var expected = 0
        for read in reads {
            #expect(read.offset == expected, "\(reads)")
            expected = read.offset + read.count
        }
        #expect(expected == written)

        // A view that already shows three events gets the rest; the follow was audited once per view.
        var later = try await engine.followPAMRecording(admin, sessionId: id, from: 3, interval: .milliseconds(1))
            .makeAsyncIterator()
        #expect(try await later.next()?.events.map(\.text) == ["select 3", "select 4"])
        let follows = try await engine.searchAudit(admin, AuditSearch(type: "pam.recording.follow", limit: 10))
        #expect(follows.items.count == 2)
    }
}
