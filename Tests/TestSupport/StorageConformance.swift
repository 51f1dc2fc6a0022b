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
        "migrateIdempotent", "binaryBodies", "concurrentRelaxed", "readTransactions", "deleteBefore", "pendingAudit",
        "auditSearch",
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
        case "pendingAudit": try await pendingAudit(storage)
        case "auditSearch": try await auditSearch(storage)
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
        let c = await code {
            try await s.withTransaction { try await $0.delete(kind: "thing", id: "d1", expectedVersion: 7) }
        }
        #expect(c == .versionConflict)
        try await s.withTransaction { try await $0.delete(kind: "thing", id: "d1", expectedVersion: 1) }
        let gone = try await s.withTransaction { try await $0.get(kind: "thing", id: "d1") }
        #expect(gone == nil)
        let c2 = await code {
            try await s.withTransaction { try await $0.delete(kind: "thing", id: "d1", expectedVersion: 1) }
        }
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
        // A list returned whole follows every page: in pages of 10, 7 or exactly the size, nothing is cut short.
        for pageSize in [10, 7, 25, 1000] {
            let every = try await s.withReadTransaction {
                try await $0.listEvery(kind: "thing", scope: "p1", pageSize: pageSize)
            }
            #expect(every.map(\.id) == (0..<25).map { String(format: "l%03d", $0) }, "pages of \(pageSize)")
        }
        let everywhere = try await s.withReadTransaction {
            try await $0.listEvery(kind: "thing", scope: nil, pageSize: 4)
        }
        #expect(everywhere.count == 26)
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
                            if i % 8 == 7 {
                                try await s.withTransaction(work)
                            } else {
                                try await s.withRelaxedTransaction(work)
                            }
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
                            } catch let e as StorageError
                                where e.code == .versionConflict || e.code == .transientConflict
                            {
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

    /// The test's chain head format: the last sequence (8 bytes, big-endian) and its hash.
    static func head(_ chain: String, _ seq: Int64, _ hash: Data) -> AuditChainHead {
        AuditChainHead(chain: chain, value: withUnsafeBytes(of: seq.bigEndian) { Data($0) } + hash)
    }

    static func parse(_ h: AuditChainHead?) -> (Int64, Data) {
        guard let h, h.value.count == 40 else { return (0, Data(count: 32)) }
        return (h.value.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }, Data(h.value.suffix(32)))
    }

    static func event(
        _ chain: String, _ seq: Int64, _ previous: Data, _ label: String, ts: Int64? = nil,
        fields: AuditFields = AuditFields(type: "t", actor: "a", project: "")
    ) -> AuditRecord {
        AuditRecord(
            chain: chain, sequence: seq, timestampMillis: ts ?? (1000 + seq), fields: fields, body: Data(label.utf8),
            previousHash: previous, hash: Data(repeating: UInt8(seq % 251), count: 31) + Data(label.utf8.prefix(1)))
    }

    /// Appends one event to `chain` after its stored head (retrying when another writer moved it).
    static func append(
        _ s: any Storage, _ label: String, chain: String = "n1", ts: Int64? = nil,
        fields: AuditFields = AuditFields(type: "t", actor: "a", project: "")
    ) async throws {
        try await s.withRetryingTransaction(attempts: 50) { tx in
            let previous = try await tx.auditChainHeads().first { $0.chain == chain }
            let (seq, hash) = parse(previous)
            let e = event(chain, seq + 1, hash, label, ts: ts, fields: fields)
            try await tx.appendAuditEvents([e], head: head(chain, e.sequence, e.hash), previous: previous, sealing: [])
        }
    }

    static func auditAppendOrder(_ s: any Storage) async throws {
        for i in 1...5 { try await append(s, "e\(i)", chain: "n2") }
        for i in 1...3 { try await append(s, "f\(i)", chain: "n1") }
        let events = try await s.withReadTransaction { try await $0.auditEvents(chain: nil, after: nil, limit: 100) }
        // (chain, sequence) order, chains compared bytewise.
        #expect(
            events.map { "\($0.chain)/\($0.sequence)" } == [
                "n1/1", "n1/2", "n1/3", "n2/1", "n2/2", "n2/3", "n2/4", "n2/5",
            ])
        #expect(
            events.map { String(decoding: $0.body, as: UTF8.self) } == ["f1", "f2", "f3", "e1", "e2", "e3", "e4", "e5"])
        #expect(events[4].previousHash == events[3].hash)
        #expect(events[0].fields == AuditFields(type: "t", actor: "a", project: ""))
        let tail = try await s.withReadTransaction {
            try await $0.auditEvents(chain: nil, after: AuditPosition(chain: "n1", sequence: 3), limit: 2)
        }
        #expect(tail.map { "\($0.chain)/\($0.sequence)" } == ["n2/1", "n2/2"])
        let one = try await s.withReadTransaction {
            try await $0.auditEvents(chain: "n2", after: AuditPosition(chain: "n2", sequence: 3), limit: 10)
        }
        #expect(one.map(\.sequence) == [4, 5])
        let heads = try await s.withReadTransaction { try await $0.auditChainHeads() }
        #expect(heads.map(\.chain) == ["n1", "n2"])
        #expect(parse(heads[1]).0 == 5)
        // An append that names a head that is no longer the stored one writes nothing.
        let stale = head("n2", 4, events[6].hash)
        let c = await code {
            try await s.withTransaction { tx in
                try await tx.appendAuditEvents(
                    [event("n2", 5, events[6].hash, "x")], head: head("n2", 5, Data(count: 32)), previous: stale,
                    sealing: [])
            }
        }
        #expect(c == .auditConflict)
        // So does starting a chain that exists.
        let c2 = await code {
            try await s.withTransaction { tx in
                try await tx.appendAuditEvents(
                    [event("n1", 1, Data(count: 32), "x")], head: head("n1", 1, Data(count: 32)), previous: nil,
                    sealing: [])
            }
        }
        #expect(c2 == .auditConflict)
        let after = try await s.withReadTransaction { try await $0.auditEvents(chain: nil, after: nil, limit: 100) }
        #expect(after == events)
    }

    static func concurrentAudit(_ s: any Storage) async throws {
        // Six writers on one chain (they take turns through the head) and three on another, at once.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<6 {
                group.addTask { for i in 0..<10 { try await append(s, "t\(t)-\(i)", chain: "shared") } }
            }
            for t in 0..<3 {
                group.addTask { for i in 0..<10 { try await append(s, "u\(t)-\(i)", chain: "other") } }
            }
            try await group.waitForAll()
        }
        for (chain, n) in [("shared", 60), ("other", 30)] {
            let events = try await s.withReadTransaction {
                try await $0.auditEvents(chain: chain, after: nil, limit: 1000)
            }
            #expect(events.map(\.sequence) == Array(1...Int64(n)))
            for (a, b) in zip(events, events.dropFirst()) { #expect(b.previousHash == a.hash) }
        }
    }

    static func pendingAudit(_ s: any Storage) async throws {
        @Sendable func pending(_ id: String, ts: Int64, chain: String = "n1") -> PendingAuditEvent {
            PendingAuditEvent(
                id: id, chain: chain, timestampMillis: ts, fields: AuditFields(type: "p", actor: "x", project: "pr"),
                body: Data("body-\(id)".utf8))
        }
        // A pending event commits or rolls back with its transaction.
        try await s.withTransaction { tx in
            try await tx.insert(record("pa1"))
            try await tx.addPendingAuditEvent(pending("p1", ts: 10))
        }
        _ = try? await s.withTransaction { tx in
            try await tx.addPendingAuditEvent(pending("p-gone", ts: 5))
            throw Boom()
        }
        try await s.withTransaction { tx in
            try await tx.addPendingAuditEvent(pending("p2", ts: 20))
            try await tx.addPendingAuditEvent(pending("p3", ts: 30, chain: "n2"))
        }
        let all = try await s.withReadTransaction {
            try await $0.pendingAuditEvents(chain: nil, before: Int64.max, limit: 10)
        }
        #expect(all.map(\.id) == ["p1", "p2", "p3"])
        #expect(all.first == pending("p1", ts: 10))
        let mine = try await s.withReadTransaction {
            try await $0.pendingAuditEvents(chain: "n1", before: 20, limit: 10)
        }
        #expect(mine.map(\.id) == ["p1"])
        // Sealing deletes the pending events with the append, all or nothing.
        let e1 = event("n1", 1, Data(count: 32), "p1")
        let missing = await code {
            try await s.withTransaction { tx in
                try await tx.appendAuditEvents(
                    [e1], head: head("n1", 1, e1.hash), previous: nil, sealing: ["p1", "nope"])
            }
        }
        #expect(missing == .auditConflict)
        let still = try await s.withReadTransaction { tx in
            (
                try await tx.pendingAuditEvents(chain: nil, before: Int64.max, limit: 10).count,
                try await tx.auditChainHeads().count,
                try await tx.auditEvents(chain: nil, after: nil, limit: 10).count
            )
        }
        #expect(still == (3, 0, 0))
        try await s.withTransaction { tx in
            try await tx.appendAuditEvents([e1], head: head("n1", 1, e1.hash), previous: nil, sealing: ["p1"])
        }
        let removed = try await s.withTransaction { try await $0.removePendingAuditEvents(["p1", "p2", "p9"]) }
        #expect(removed.sorted() == ["p2"])
        let left = try await s.withReadTransaction {
            try await $0.pendingAuditEvents(chain: nil, before: Int64.max, limit: 10)
        }
        #expect(left.map(\.id) == ["p3"])
        let wrote = await code {
            try await s.withReadTransaction { try await $0.addPendingAuditEvent(pending("p4", ts: 1)) }
        }
        #expect(wrote == .corrupt)
    }

    /// Audit searches equal a filter over every event, in order, and page through every match exactly once.
    static func auditSearch(_ s: any Storage) async throws {
        var g = SeededGenerator(seed: 7)
        let types = ["kms.get", "kms.create", "secret.read"]
        let actors = ["alice", "bob", ""]
        let projects = ["p1", "p2", ""]
        for i in 0..<120 {
            let f = AuditFields(
                type: types[Int(g.next() % 3)], actor: actors[Int(g.next() % 3)], project: projects[Int(g.next() % 3)])
            // Few distinct times, so ties are ordered by chain and sequence.
            try await append(s, "s\(i)", chain: i % 3 == 0 ? "b" : "a", ts: 5000 + Int64(g.next() % 40), fields: f)
        }
        let everything = try await s.withReadTransaction {
            try await $0.auditEvents(chain: nil, after: nil, limit: 1000)
        }
        #expect(everything.count == 120)
        let filters: [AuditQuery.Filter] = [
            .all, .type("kms.get"), .actor("bob"), .project("p2"), .project(""), .type("none"),
        ]
        for filter in filters {
            for (since, until) in [(nil, nil), (Int64(5010), nil), (nil, Int64(5020)), (Int64(5005), Int64(5030))]
                as [(Int64?, Int64?)]
            {
                for descending in [false, true] {
                    let q = AuditQuery(filter: filter, since: since, until: until, descending: descending, limit: 1000)
                    var expected = everything.filter { q.admits($0) }.sorted {
                        AuditQuery.precedes(
                            .init(timestampMillis: $0.timestampMillis, position: $0.position),
                            .init(timestampMillis: $1.timestampMillis, position: $1.position))
                    }
                    if descending { expected.reverse() }
                    let whole = try await s.withReadTransaction { try await $0.searchAudit(q) }
                    #expect(
                        whole == expected,
                        "\(filter) \(String(describing: since)) \(String(describing: until)) desc=\(descending)")
                    // Pages of 7 through the cursor.
                    var paged: [AuditRecord] = []
                    var cursor: AuditQuery.Cursor?
                    while true {
                        var pq = q
                        pq.limit = 7
                        pq.after = cursor
                        let current = pq
                        let page = try await s.withReadTransaction { try await $0.searchAudit(current) }
                        paged += page
                        guard page.count == 7, let last = page.last else { break }
                        cursor = .init(timestampMillis: last.timestampMillis, position: last.position)
                    }
                    #expect(paged == expected)
                }
            }
        }
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
            (
                try await tx.get(kind: "thing", id: "rd1"), try await tx.get(kind: "thing", id: "rd-written"),
                try await tx.metadata("rd")
            )
        }
        #expect(after == existing)
        #expect(written == nil)
        #expect(metaAfter == Data([9]))
        // The audit log is readable in a read transaction (heads included), but not appendable.
        try await append(s, "read-tx")
        let (heads, events) = try await s.withReadTransaction { tx in
            (try await tx.auditChainHeads(), try await tx.auditEvents(chain: nil, after: nil, limit: 10))
        }
        #expect(heads.count == 1 && parse(heads.first).0 == events.last?.sequence)
        let (seq, hash) = parse(heads.first)
        let appended = await code {
            try await s.withReadTransaction { tx in
                let e = event("n1", seq + 1, hash, "ro")
                try await tx.appendAuditEvents(
                    [e], head: head("n1", e.sequence, e.hash), previous: heads.first, sealing: [])
            }
        }
        #expect(appended == .corrupt)
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
                try await tx.insert(
                    Record(kind: "swept", id: id, scope: "s", name: "n\(t)", body: Data(), createdAt: Date()))
            }
            try await tx.insert(
                Record(
                    kind: "swept", id: "0000000000001-other-scope", scope: "t", name: nil, body: Data(),
                    createdAt: Date()))
            try await tx.insert(
                Record(
                    kind: "kept", id: "0000000000001-other-kind", scope: "s", name: nil, body: Data(), createdAt: Date()
                ))
        }
        let bound = "0000000010000"  // before 10_000: four records; "0000000010000-x" > bound, so it stays
        let c = await code {
            _ = try await s.withReadTransaction {
                try await $0.deleteBefore(kind: "swept", scope: "s", idBefore: bound, limit: 10)
            }
        }
        #expect(c == .corrupt)
        let first = try await s.withTransaction {
            try await $0.deleteBefore(kind: "swept", scope: "s", idBefore: bound, limit: 3)
        }
        #expect(first == 3)
        let second = try await s.withTransaction {
            try await $0.deleteBefore(kind: "swept", scope: "s", idBefore: bound, limit: 3)
        }
        #expect(second == 1)
        let third = try await s.withTransaction {
            try await $0.deleteBefore(kind: "swept", scope: "s", idBefore: bound, limit: 3)
        }
        #expect(third == 0)
        let (left, other, kept, nameFree) = try await s.withTransaction { tx in
            (
                try await tx.list(kind: "swept", scope: "s", afterID: nil, limit: 10).map(\.id),
                try await tx.get(kind: "swept", id: "0000000000001-other-scope"),
                try await tx.get(kind: "kept", id: "0000000000001-other-kind"),
                try await tx.find(kind: "swept", scope: "s", name: "n1000")
            )
        }
        #expect(left == ["0000000010000-x", "0000000020000-x"])
        #expect(other != nil)
        #expect(kept != nil)
        #expect(nameFree == nil)
        // The name of a swept record can be used again.
        try await s.withTransaction {
            try await $0.insert(
                Record(kind: "swept", id: "new", scope: "s", name: "n1000", body: Data(), createdAt: Date()))
        }
    }
}

/// A reproducible generator (SplitMix64) for property checks whose failures must replay.
public struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
