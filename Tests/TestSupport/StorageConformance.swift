import Foundation
import StorageAPI
import Testing

/// The storage conformance suite: the same checks for every `Storage` implementation.
///
/// Each check receives a freshly migrated, empty store from `make`.
public enum StorageConformance {
    /// Names of all checks, for parameterized tests.
    public static let checks: [String] = [
        "insertGetFind", "uniqueID", "uniqueName", "optimisticConcurrency", "deleteVersioned", "listPaging",
        "rollback", "concurrentWriters", "concurrentUniqueNames", "auditAppendOrder", "concurrentAudit", "metadata",
        "migrateIdempotent", "binaryBodies", "concurrentRelaxed", "readTransactions", "deleteBefore",
    ]

    /// Runs one named check against a store.
    public static func run(_ check: String, on storage: any Storage) async throws {
        switch check {
        case "insertGetFind": try await insertGetFind(storage)
        case "uniqueID": try await uniqueID(storage)
        case "uniqueName": try await uniqueName(storage)
        case "optimisticConcurrency": try await optimisticConcurrency(storage)
        case "deleteVersioned": try await deleteVersioned(storage)
        case "listPaging": try await listPaging(storage)
        case "rollback": try await rollback(storage)
        case "concurrentWriters": try await concurrentWriters(storage)
        case "concurrentUniqueNames": try await concurrentUniqueNames(storage)
        case "auditAppendOrder": try await auditAppendOrder(storage)
        case "concurrentAudit": try await concurrentAudit(storage)
        case "metadata": try await metadata(storage)
        case "migrateIdempotent": try await migrateIdempotent(storage)
        case "binaryBodies": try await binaryBodies(storage)
        case "concurrentRelaxed": try await concurrentRelaxed(storage)
        case "readTransactions": try await readTransactions(storage)
        case "deleteBefore": try await deleteBefore(storage)
        default: Issue.record("unknown check \(check)")
        }
    }

    static func record(_ id: String, scope: String = "p1", name: String? = nil, body: String = "x") -> Record {
        Record(kind: "thing", id: id, scope: scope, name: name, body: Data(body.utf8), createdAt: Date())
    }

    static func code(_ body: () async throws -> Void) async -> StorageError.Code? {
        do {
            try await body()
            return nil
        } catch let e as StorageError {
            return e.code
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    static func insertGetFind(_ s: any Storage) async throws {
        let r = record("a1", name: "alpha", body: "hello")
        try await s.withTransaction { try await $0.insert(r) }
        let got = try await s.withTransaction { try await $0.get(kind: "thing", id: "a1") }
        #expect(got == r)
        #expect(got?.version == 1)
        let found = try await s.withTransaction { try await $0.find(kind: "thing", scope: "p1", name: "alpha") }
        #expect(found?.id == "a1")
        let other = try await s.withTransaction { try await $0.find(kind: "thing", scope: "p2", name: "alpha") }
        #expect(other == nil)
        let missing = try await s.withTransaction { try await $0.get(kind: "other", id: "a1") }
        #expect(missing == nil)
    }

    static func uniqueID(_ s: any Storage) async throws {
        try await s.withTransaction { try await $0.insert(record("u1")) }
        let c = await code { try await s.withTransaction { try await $0.insert(record("u1", name: "n")) } }
        #expect(c == .uniqueViolation)
        // Same id under another kind is fine.
        var r = record("u1")
        r.kind = "otherkind"
        try await s.withTransaction { [r] in try await $0.insert(r) }
    }

    static func uniqueName(_ s: any Storage) async throws {
        try await s.withTransaction { try await $0.insert(record("n1", name: "same")) }
        let c = await code { try await s.withTransaction { try await $0.insert(record("n2", name: "same")) } }
        #expect(c == .uniqueViolation)
        // Other scope, or no name: allowed (NULL names never collide).
        try await s.withTransaction { try await $0.insert(record("n3", scope: "p2", name: "same")) }
        try await s.withTransaction { try await $0.insert(record("n4")) }
        try await s.withTransaction { try await $0.insert(record("n5")) }
        // Renaming onto a taken name fails too.
        let c2 = await code {
            try await s.withTransaction { tx in
                guard var r = try await tx.get(kind: "thing", id: "n4") else { return }
                r.name = "same"
                _ = try await tx.update(r)
            }
        }
        #expect(c2 == .uniqueViolation)
    }

    static func optimisticConcurrency(_ s: any Storage) async throws {
        try await s.withTransaction { try await $0.insert(record("o1", body: "v1")) }
        let read = try #require(try await s.withTransaction { try await $0.get(kind: "thing", id: "o1") })
        var first = read
        first.body = Data("v2".utf8)
        let stored = try await s.withTransaction { [first] in try await $0.update(first) }
        #expect(stored.version == 2)
        #expect(stored.body == Data("v2".utf8))
        var stale = read
        stale.body = Data("lost".utf8)
        let c = await code { try await s.withTransaction { [stale] in _ = try await $0.update(stale) } }
        #expect(c == .versionConflict)
        let now = try await s.withTransaction { try await $0.get(kind: "thing", id: "o1") }
        #expect(now?.body == Data("v2".utf8))
        let c2 = await code { try await s.withTransaction { _ = try await $0.update(record("nope")) } }
        #expect(c2 == .notFound)
    }

    static func deleteVersioned(_ s: any Storage) async throws {
        try await s.withTransaction { try await $0.insert(record("d1", name: "dn")) }
        let c = await code { try await s.withTransaction { try await $0.delete(kind: "thing", id: "d1", expectedVersion: 7) } }
        #expect(c == .versionConflict)
        try await s.withTransaction { try await $0.delete(kind: "thing", id: "d1", expectedVersion: 1) }
        let gone = try await s.withTransaction { try await $0.get(kind: "thing", id: "d1") }
        #expect(gone == nil)
        let c2 = await code { try await s.withTransaction { try await $0.delete(kind: "thing", id: "d1", expectedVersion: 1) } }
        #expect(c2 == .notFound)
        // The name is free again.
        try await s.withTransaction { try await $0.insert(record("d2", name: "dn")) }
    }

    static func listPaging(_ s: any Storage) async throws {
        try await s.withTransaction { tx in
            for i in 0..<25 { try await tx.insert(record(String(format: "l%03d", i))) }
            try await tx.insert(record("zz-other-scope", scope: "p9"))
        }
        var seen: [String] = []
        var after: String?
        while true {
            let page = try await s.withTransaction { [after] in
                try await $0.list(kind: "thing", scope: "p1", afterID: after, limit: 10)
            }
            seen += page.map(\.id)
            if page.count < 10 { break }
            after = page.last?.id
        }
        #expect(seen == (0..<25).map { String(format: "l%03d", $0) })
        let all = try await s.withTransaction { try await $0.count(kind: "thing", scope: nil) }
        #expect(all == 26)
        let p1 = try await s.withTransaction { try await $0.count(kind: "thing", scope: "p1") }
        #expect(p1 == 25)
    }

    struct Boom: Error {}

    static func rollback(_ s: any Storage) async throws {
        do {
            try await s.withTransaction { tx in
                try await tx.insert(record("r1"))
                try await tx.setMetadata("rb", Data([1]))
                throw Boom()
            }
            Issue.record("transaction should have thrown")
        } catch is Boom {}
        let r = try await s.withTransaction { try await $0.get(kind: "thing", id: "r1") }
        #expect(r == nil)
        let m = try await s.withTransaction { try await $0.metadata("rb") }
        #expect(m == nil)
    }

    /// 96 concurrent relaxed transactions (which a store may commit together) mixed with durable ones: each keeps
    /// exactly its own work — one in three throws after writing and leaves nothing; the rest all land, in order of
    /// the counter they each bumped.
    static func concurrentRelaxed(_ s: any Storage) async throws {
        try await s.withTransaction { try await $0.insert(record("relaxed-counter", body: "0")) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<96 {
                group.addTask {
                    let work: @Sendable (any StorageTransaction) async throws -> Void = { tx in
                        try await tx.insert(record("relaxed-\(i)"))
                        guard var r = try await tx.get(kind: "thing", id: "relaxed-counter") else { throw Boom() }
                        r.body = Data(String((Int(String(decoding: r.body, as: UTF8.self)) ?? -1000) + 1).utf8)
                        _ = try await tx.update(r)
                        if i % 3 == 0 { throw Boom() }
                    }
                    while true {
                        do {
                            if i % 8 == 7 { try await s.withTransaction(work) } else { try await s.withRelaxedTransaction(work) }
                            #expect(i % 3 != 0)
                        } catch is Boom {
                            #expect(i % 3 == 0)
                        } catch let e as StorageError where e.code == .versionConflict || e.code == .transientConflict {
                            continue  // optimistic concurrency (PostgreSQL): retry
                        }
                        break
                    }
                }
            }
            try await group.waitForAll()
        }
        let (counter, present) = try await s.withTransaction { tx in
            let c = try await tx.get(kind: "thing", id: "relaxed-counter")
            var present: [Int] = []
            for i in 0..<96 where try await tx.get(kind: "thing", id: "relaxed-\(i)") != nil { present.append(i) }
            return (c.map { String(decoding: $0.body, as: UTF8.self) }, present)
        }
        #expect(present == (0..<96).filter { $0 % 3 != 0 })
        #expect(counter == "64")
    }

    /// 8 tasks × 25 read-modify-write increments on one counter, retrying on version conflicts: no lost update.
    static func concurrentWriters(_ s: any Storage) async throws {
        try await s.withTransaction { try await $0.insert(record("counter", body: "0")) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<25 {
                        while true {
                            do {
                                try await s.withTransaction { tx in
                                    guard var r = try await tx.get(kind: "thing", id: "counter") else { throw Boom() }
                                    let n = Int(String(decoding: r.body, as: UTF8.self)) ?? -1_000_000
                                    r.body = Data(String(n + 1).utf8)
                                    _ = try await tx.update(r)
                                }
                                break
                            } catch let e as StorageError where e.code == .versionConflict || e.code == .transientConflict {
                                continue
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let r = try await s.withTransaction { try await $0.get(kind: "thing", id: "counter") }
        #expect(r.map { String(decoding: $0.body, as: UTF8.self) } == "200")
        #expect(r?.version == 201)
    }

    /// 16 concurrent inserts of the same name: exactly one wins, the rest see uniqueViolation.
    static func concurrentUniqueNames(_ s: any Storage) async throws {
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<16 {
                group.addTask {
                    do {
                        try await s.withTransaction { try await $0.insert(record("cu\(i)", name: "contended")) }
                        return true
                    } catch let e as StorageError where e.code == .uniqueViolation {
                        return false
                    }
                }
            }
            var out: [Bool] = []
            for try await r in group { out.append(r) }
            return out
        }
        #expect(results.filter { $0 }.count == 1)
        let n = try await s.withTransaction { try await $0.count(kind: "thing", scope: "p1") }
        #expect(n == 1)
    }

    static func append(_ s: any Storage, _ label: String) async throws {
        try await s.withRetryingTransaction { tx in
            let last = try await tx.lastAuditEvent()
            let seq = (last?.sequence ?? 0) + 1
            try await tx.appendAuditEvent(
                AuditRecord(
                    sequence: seq, timestampMillis: 1000 + seq, body: Data(label.utf8),
                    previousHash: last?.hash ?? Data(count: 32), hash: Data(repeating: UInt8(seq % 251), count: 32)))
        }
    }

    static func auditAppendOrder(_ s: any Storage) async throws {
        for i in 1...5 { try await append(s, "e\(i)") }
        let events = try await s.withTransaction { try await $0.auditEvents(after: 0, limit: 100) }
        #expect(events.map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(events.map { String(decoding: $0.body, as: UTF8.self) } == ["e1", "e2", "e3", "e4", "e5"])
        #expect(events[1].previousHash == events[0].hash)
        let tail = try await s.withTransaction { try await $0.auditEvents(after: 3, limit: 1) }
        #expect(tail.map(\.sequence) == [4])
        let c = await code {
            try await s.withTransaction {
                try await $0.appendAuditEvent(
                    AuditRecord(sequence: 9, timestampMillis: 1, body: Data(), previousHash: Data(), hash: Data()))
            }
        }
        #expect(c == .auditConflict)
    }

    static func concurrentAudit(_ s: any Storage) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<6 {
                group.addTask { for i in 0..<10 { try await append(s, "t\(t)-\(i)") } }
            }
            try await group.waitForAll()
        }
        let events = try await s.withTransaction { try await $0.auditEvents(after: 0, limit: 1000) }
        #expect(events.map(\.sequence) == Array(1...60))
        for (a, b) in zip(events, events.dropFirst()) { #expect(b.previousHash == a.hash) }
    }

    static func metadata(_ s: any Storage) async throws {
        let none = try await s.withTransaction { try await $0.metadata("k") }
        #expect(none == nil)
        try await s.withTransaction { try await $0.setMetadata("k", Data([1, 2])) }
        try await s.withTransaction { try await $0.setMetadata("k", Data([3])) }
        let v = try await s.withTransaction { try await $0.metadata("k") }
        #expect(v == Data([3]))
    }

    static func migrateIdempotent(_ s: any Storage) async throws {
        try await s.withTransaction { try await $0.insert(record("m1")) }
        try await s.migrate()
        try await s.migrate()
        let r = try await s.withTransaction { try await $0.get(kind: "thing", id: "m1") }
        #expect(r != nil)
    }

    static func binaryBodies(_ s: any Storage) async throws {
        let bytes = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var r = record("b1")
        r.body = bytes
        var e = record("b2")
        e.body = Data()
        try await s.withTransaction { [r, e] tx in
            try await tx.insert(r)
            try await tx.insert(e)
        }
        let got = try await s.withTransaction { try await $0.get(kind: "thing", id: "b1") }
        #expect(got?.body == bytes)
        let empty = try await s.withTransaction { try await $0.get(kind: "thing", id: "b2") }
        #expect(empty?.body == Data())
    }

    /// A read transaction sees every write that returned before it started (durable and relaxed), and refuses to
    /// write (`.corrupt`) without leaving anything behind.
    static func readTransactions(_ s: any Storage) async throws {
        try await s.withTransaction { tx in
            try await tx.insert(record("rd1", name: "read-one", body: "durable"))
            try await tx.setMetadata("rd", Data([9]))
        }
        try await s.withRelaxedTransaction { try await $0.insert(record("rd2", body: "relaxed")) }
        let (one, two, byName, meta, listed) = try await s.withReadTransaction { tx in
            (
                try await tx.get(kind: "thing", id: "rd1"), try await tx.get(kind: "thing", id: "rd2"),
                try await tx.find(kind: "thing", scope: "p1", name: "read-one"), try await tx.metadata("rd"),
                try await tx.list(kind: "thing", scope: "p1", afterID: nil, limit: 10).map(\.id)
            )
        }
        #expect(one?.body == Data("durable".utf8))
        #expect(two?.body == Data("relaxed".utf8))
        #expect(byName?.id == "rd1")
        #expect(meta == Data([9]))
        #expect(listed == ["rd1", "rd2"])

        // Reads right after each of a run of writes see them (no stale snapshot kept by a pooled reader).
        for i in 0..<20 {
            try await s.withTransaction { try await $0.insert(record("seq-\(i)")) }
            let seen = try await s.withReadTransaction { try await $0.get(kind: "thing", id: "seq-\(i)") }
            #expect(seen != nil, "read \(i) sees the write before it")
        }

        guard let existing = one else { return }
        let writes: [(String, @Sendable (any StorageTransaction) async throws -> Void)] = [
            ("insert", { try await $0.insert(record("rd-written")) }),
            ("update", { tx in _ = try await tx.update(existing) }),
            ("delete", { try await $0.delete(kind: "thing", id: "rd1", expectedVersion: existing.version) }),
            ("setMetadata", { try await $0.setMetadata("rd", Data([1])) }),
        ]
        for (label, write) in writes {
            let c = await code { try await s.withReadTransaction(write) }
            #expect(c == .corrupt, "\(label) in a read transaction")
        }
        let (after, written, metaAfter) = try await s.withTransaction { tx in
            (try await tx.get(kind: "thing", id: "rd1"), try await tx.get(kind: "thing", id: "rd-written"), try await tx.metadata("rd"))
        }
        #expect(after == existing)
        #expect(written == nil)
        #expect(metaAfter == Data([9]))
        // The audit chain is readable in a read transaction (its head included), but not appendable.
        try await append(s, "read-tx")
        let (head, events) = try await s.withReadTransaction { tx in (try await tx.lastAuditEvent(), try await tx.auditEvents(after: 0, limit: 10)) }
        #expect(head != nil && head?.sequence == events.last?.sequence)
        if let head {
            let appended = await code {
                try await s.withReadTransaction { tx in
                    try await tx.appendAuditEvent(
                        AuditRecord(sequence: head.sequence + 1, timestampMillis: 0, body: Data(), previousHash: head.hash, hash: Data(repeating: 1, count: 32)))
                }
            }
            #expect(appended == .corrupt)
        }
        // A read transaction whose body throws leaves the store usable for reads and writes.
        do {
            _ = try await s.withReadTransaction { _ -> Int in throw Boom() }
            Issue.record("read transaction should have thrown")
        } catch is Boom {}
        try await s.withTransaction { try await $0.insert(record("rd3")) }
        let three = try await s.withReadTransaction { try await $0.get(kind: "thing", id: "rd3") }
        #expect(three != nil)
    }

    /// For stores that run reads beside writers (SQLite's reader connections, PostgreSQL's pool): while a write
    /// transaction is open and has written, a read transaction completes, without seeing that uncommitted write.
    public static func readBesideOpenWriter(_ s: any Storage) async throws {
        try await s.withTransaction { try await $0.insert(record("before-writer")) }
        let (writerWrote, wroteContinuation) = AsyncStream<Void>.makeStream()
        let (readerDone, doneContinuation) = AsyncStream<Void>.makeStream()
        let writer = Task {
            try await s.withTransaction { tx in
                try await tx.insert(record("uncommitted"))
                wroteContinuation.yield()
                // Hold the transaction open until the reader has finished (or 20 s pass).
                let deadline = ContinuousClock.now + .seconds(20)
                for await _ in readerDone { break }
                #expect(ContinuousClock.now < deadline)
            }
        }
        for await _ in writerWrote { break }
        let started = ContinuousClock.now
        let (before, uncommitted) = try await s.withReadTransaction { tx in
            (try await tx.get(kind: "thing", id: "before-writer"), try await tx.get(kind: "thing", id: "uncommitted"))
        }
        let took = ContinuousClock.now - started
        doneContinuation.yield()
        doneContinuation.finish()
        try await writer.value
        #expect(before != nil)
        #expect(uncommitted == nil, "a read does not see an uncommitted write")
        #expect(took < .seconds(5), "the read did not wait for the writer")
        let committed = try await s.withReadTransaction { try await $0.get(kind: "thing", id: "uncommitted") }
        #expect(committed != nil)
    }

    /// The expiry sweep: only records of the kind and scope whose ids sort bytewise before the bound go, lowest
    /// first, at most `limit` per call; names are freed; a read transaction may not sweep.
    static func deleteBefore(_ s: any Storage) async throws {
        // Time-prefixed ids as the ACME nonce sweep uses them, plus neighbours that must survive.
        let stamps = [1_000, 2_000, 3_000, 9_000, 10_000, 20_000]
        try await s.withTransaction { tx in
            for t in stamps {
                let id = String(repeating: "0", count: 13 - String(t).count) + String(t) + "-x"
                try await tx.insert(Record(kind: "swept", id: id, scope: "s", name: "n\(t)", body: Data(), createdAt: Date()))
            }
            try await tx.insert(Record(kind: "swept", id: "0000000000001-other-scope", scope: "t", name: nil, body: Data(), createdAt: Date()))
            try await tx.insert(Record(kind: "kept", id: "0000000000001-other-kind", scope: "s", name: nil, body: Data(), createdAt: Date()))
        }
        let bound = "0000000010000"  // before 10_000: four records; "0000000010000-x" > bound, so it stays
        let c = await code { _ = try await s.withReadTransaction { try await $0.deleteBefore(kind: "swept", scope: "s", idBefore: bound, limit: 10) } }
        #expect(c == .corrupt)
        let first = try await s.withTransaction { try await $0.deleteBefore(kind: "swept", scope: "s", idBefore: bound, limit: 3) }
        #expect(first == 3)
        let second = try await s.withTransaction { try await $0.deleteBefore(kind: "swept", scope: "s", idBefore: bound, limit: 3) }
        #expect(second == 1)
        let third = try await s.withTransaction { try await $0.deleteBefore(kind: "swept", scope: "s", idBefore: bound, limit: 3) }
        #expect(third == 0)
        let (left, other, kept, nameFree) = try await s.withTransaction { tx in
            (
                try await tx.list(kind: "swept", scope: "s", afterID: nil, limit: 10).map(\.id),
                try await tx.get(kind: "swept", id: "0000000000001-other-scope"), try await tx.get(kind: "kept", id: "0000000000001-other-kind"),
                try await tx.find(kind: "swept", scope: "s", name: "n1000")
            )
        }
        #expect(left == ["0000000010000-x", "0000000020000-x"])
        #expect(other != nil)
        #expect(kept != nil)
        #expect(nameFree == nil)
        // The name of a swept record can be used again.
        try await s.withTransaction { try await $0.insert(Record(kind: "swept", id: "new", scope: "s", name: "n1000", body: Data(), createdAt: Date())) }
    }
}
