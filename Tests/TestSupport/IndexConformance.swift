import Foundation
import StorageAPI
import Testing

/// The secondary-index part of the storage conformance suite: the same checks for every `Storage`, each on a store
/// migrated with `IndexConformance.catalog`. Results are compared with an oracle computed from a full scan of the
/// records (`list`) and the catalog's own entry function, so a store's index can never drift from its records
/// unnoticed.
public enum IndexConformance {
    public static let checks: [String] = [
        "indexMaintained", "indexRollback", "indexUnique", "indexPaging", "indexRanges", "indexConcurrentWriters",
        "indexRandomOps", "indexPagingWhileInserting", "indexRebuild", "indexDeleteBefore",
    ]

    /// A test kind, "item": a JSON body {color, size, tags, at, serial?}.
    public struct Item: Codable, Sendable, Hashable {
        public var color: String
        public var size: Int64
        public var tags: [String]
        public var at: Int64
        public var serial: String?

        public init(color: String, size: Int64, tags: [String] = [], at: Int64 = 0, serial: String? = nil) {
            self.color = color
            self.size = size
            self.tags = tags
            self.at = at
            self.serial = serial
        }
    }

    public static func catalog(version: Int = 1) -> IndexCatalog {
        IndexCatalog([
            RecordIndexer(
                kind: "item", version: version,
                [
                    IndexDefinition("color"), IndexDefinition("colorSize"), IndexDefinition("tag"),
                    IndexDefinition("at", scoped: false), IndexDefinition("serial", unique: true),
                ]
            ) { record in
                guard let item = try? JSONDecoder().decode(Item.self, from: record.body) else { return [] }
                var out = [
                    IndexEntry("color", IndexKey(item.color)),
                    IndexEntry("colorSize", IndexKey(item.color).appending(item.size)),
                    IndexEntry("at", IndexKey().appending(item.at)),
                ]
                // Version 2 indexes the size too (an upgrade that changes the keys).
                if version >= 2 { out.append(IndexEntry("color", IndexKey("size").appending(item.size))) }
                for t in item.tags { out.append(IndexEntry("tag", IndexKey(t))) }
                if let s = item.serial { out.append(IndexEntry("serial", IndexKey(s))) }
                return out
            }
        ])
    }

    public static func run(_ check: String, on s: any Storage) async throws {
        try await s.migrate(indexes: catalog())
        switch check {
        case "indexMaintained": try await maintained(s)
        case "indexRollback": try await rollback(s)
        case "indexUnique": try await unique(s)
        case "indexPaging": try await paging(s)
        case "indexRanges": try await ranges(s)
        case "indexConcurrentWriters": try await concurrentWriters(s)
        case "indexRandomOps": try await randomOps(s)
        case "indexPagingWhileInserting": try await pagingWhileInserting(s)
        case "indexRebuild": try await rebuild(s)
        case "indexDeleteBefore": try await deleteBefore(s)
        default: Issue.record("unknown check \(check)")
        }
    }

    static func record(_ id: String, scope: String = "p", _ item: Item) -> Record {
        Record(kind: "item", id: id, scope: scope, body: try! JSONEncoder().encode(item), createdAt: Date())
    }

    static func ids(_ s: any Storage, _ q: IndexQuery) async throws -> [String] {
        try await s.lookupAll(q, pageSize: 7).map(\.record.id)
    }

    /// What the index must return for `q`: every (key, id) entry of every record, filtered and ordered like the scan.
    static func oracle(_ s: any Storage, _ q: IndexQuery) async throws -> [String] {
        let catalog = s.indexes
        var all: [Record] = []
        var after: String?
        while true {
            let page = try await s.withReadTransaction { [after] in
                try await $0.list(kind: q.kind, scope: nil, afterID: after, limit: 500)
            }
            all += page
            guard page.count == 500, let last = page.last else { break }
            after = last.id
        }
        let scope = try q.storedScope(catalog)
        var hits: [(IndexKey, String)] = []
        for r in all {
            for e in try catalog.stored(r)
            where e.index == q.index && e.scope == scope && q.admits(key: e.key, id: r.id) {
                hits.append((e.key, r.id))
            }
        }
        hits.sort { a, b in a.0 != b.0 ? a.0 < b.0 : Array(a.1.utf8).lexicographicallyPrecedes(Array(b.1.utf8)) }
        if q.descending { hits.reverse() }
        return hits.map(\.1)
    }

    static func matchesOracle(_ s: any Storage, _ q: IndexQuery, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let got = try await ids(s, q)
        let want = try await oracle(s, q)
        #expect(got == want, "\(q.index) \(q.scope ?? "-")", sourceLocation: sourceLocation)
    }

    static func color(_ c: String, scope: String = "p", descending: Bool = false) -> IndexQuery {
        .prefix(kind: "item", index: "color", scope: scope, IndexKey(c), descending: descending, limit: 1000)
    }

    static func maintained(_ s: any Storage) async throws {
        try await s.withTransaction { tx in
            try await tx.insert(record("a", Item(color: "red", size: 1, tags: ["x", "y"])))
            try await tx.insert(record("b", Item(color: "red", size: 2, tags: ["y"])))
            try await tx.insert(record("c", Item(color: "blue", size: 1)))
            try await tx.insert(record("d", scope: "q", Item(color: "red", size: 1)))
        }
        #expect(try await ids(s, color("red")) == ["a", "b"])
        #expect(try await ids(s, color("red", scope: "q")) == ["d"])
        #expect(
            try await ids(s, .prefix(kind: "item", index: "tag", scope: "p", IndexKey("y"), limit: 10)) == ["a", "b"])
        // The returned record is the current one, with the entry's key.
        let hit = try await s.withReadTransaction { try await $0.lookup(color("red")) }
        #expect(hit.first?.key == IndexKey("red") && hit.first?.record.version == 1)
        // Update: entries move (color red -> blue, a tag dropped), others stay.
        try await s.withTransaction { tx in
            var a = try #require(try await tx.get(kind: "item", id: "a"))
            a.body = try JSONEncoder().encode(Item(color: "blue", size: 1, tags: ["x"]))
            _ = try await tx.update(a)
        }
        #expect(try await ids(s, color("red")) == ["b"])
        #expect(try await ids(s, color("blue")) == ["a", "c"])
        #expect(try await ids(s, .prefix(kind: "item", index: "tag", scope: "p", IndexKey("y"), limit: 10)) == ["b"])
        // An update with a stale version changes neither the record nor its entries.
        var stale = record("b", Item(color: "green", size: 9))
        stale.version = 7
        let conflict = await StorageConformance.code {
            _ = try await s.withTransaction { [stale] in try await $0.update(stale) }
        }
        #expect(conflict == .versionConflict)
        #expect(try await ids(s, color("green")).isEmpty)
        // An update to a record this transaction did not read first (no cached copy): still consistent.
        try await s.withTransaction { tx in
            var b = record("b", Item(color: "green", size: 2))
            b.version = 1
            _ = try await tx.update(b)
        }
        #expect(try await ids(s, color("green")) == ["b"])
        #expect(try await ids(s, color("red")).isEmpty)
        // Moving scope moves scoped entries.
        try await s.withTransaction { tx in
            var d = try #require(try await tx.get(kind: "item", id: "d"))
            d.scope = "p"
            _ = try await tx.update(d)
        }
        #expect(try await ids(s, color("red", scope: "q")).isEmpty)
        #expect(try await ids(s, color("red")) == ["d"])
        // Delete removes every entry, including the unscoped ones.
        try await s.withTransaction { tx in try await tx.delete(kind: "item", id: "a", expectedVersion: 2) }
        #expect(try await ids(s, color("blue")) == ["c"])
        let at = IndexQuery(kind: "item", index: "at", scope: nil, limit: 100)
        #expect(try await ids(s, at).sorted() == ["b", "c", "d"])
        try await matchesOracle(s, at)
        // A scoped index queried without a scope is a programming error.
        let unscoped = await StorageConformance.code {
            _ = try await s.withReadTransaction {
                try await $0.lookup(IndexQuery(kind: "item", index: "color", scope: nil, limit: 1))
            }
        }
        #expect(unscoped == .corrupt)
    }

    static func rollback(_ s: any Storage) async throws {
        try await s.withTransaction { try await $0.insert(record("keep", Item(color: "red", size: 1))) }
        struct Boom: Error {}
        do {
            try await s.withTransaction { tx in
                try await tx.insert(record("gone", Item(color: "red", size: 2)))
                var keep = try #require(try await tx.get(kind: "item", id: "keep"))
                keep.body = try JSONEncoder().encode(Item(color: "blue", size: 1))
                _ = try await tx.update(keep)
                throw Boom()
            }
        } catch is Boom {}
        #expect(try await ids(s, color("red")) == ["keep"])
        #expect(try await ids(s, color("blue")).isEmpty)
        // A failed statement inside a transaction that then commits leaves no stray entries either.
        try await s.withTransaction { tx in
            let dup = await StorageConformance.code {
                try await tx.insert(record("keep", Item(color: "green", size: 3)))
            }
            #expect(dup == .uniqueViolation)
        }
        #expect(try await ids(s, color("green")).isEmpty)
    }

    static func unique(_ s: any Storage) async throws {
        try await s.withTransaction { try await $0.insert(record("u1", Item(color: "red", size: 1, serial: "S1"))) }
        let taken = await StorageConformance.code {
            try await s.withTransaction { try await $0.insert(record("u2", Item(color: "red", size: 1, serial: "S1"))) }
        }
        #expect(taken == .uniqueViolation)
        #expect(
            try await s.withReadTransaction { try await $0.get(kind: "item", id: "u2") } == nil,
            "the refused insert left no record")
        // In another scope the same serial is free (scoped unique index).
        try await s.withTransaction {
            try await $0.insert(record("u3", scope: "other", Item(color: "red", size: 1, serial: "S1")))
        }
        // An update to a taken key is refused; an update that keeps its own key is not.
        try await s.withTransaction { try await $0.insert(record("u2", Item(color: "red", size: 1, serial: "S2"))) }
        let moved = await StorageConformance.code {
            try await s.withTransaction { tx in
                var r = try #require(try await tx.get(kind: "item", id: "u2"))
                r.body = try JSONEncoder().encode(Item(color: "red", size: 1, serial: "S1"))
                _ = try await tx.update(r)
            }
        }
        #expect(moved == .uniqueViolation)
        try await s.withTransaction { tx in
            var r = try #require(try await tx.get(kind: "item", id: "u1"))
            r.body = try JSONEncoder().encode(Item(color: "blue", size: 5, serial: "S1"))
            _ = try await tx.update(r)
        }
        // Deleting frees the key.
        try await s.withTransaction { tx in try await tx.delete(kind: "item", id: "u1", expectedVersion: 2) }
        try await s.withTransaction { try await $0.insert(record("u4", Item(color: "red", size: 1, serial: "S1"))) }
        let serial = IndexQuery.prefix(kind: "item", index: "serial", scope: "p", IndexKey("S1"), limit: 10)
        #expect(try await ids(s, serial) == ["u4"])
        // Concurrent inserts of one key: exactly one wins.
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<8 {
                group.addTask {
                    (try? await s.withTransaction {
                        try await $0.insert(record("race\(i)", Item(color: "c", size: 0, serial: "RACE")))
                    }) != nil
                }
            }
            var wins = 0
            for await ok in group where ok { wins += 1 }
            return wins
        }
        #expect(results == 1)
        #expect(
            try await ids(s, .prefix(kind: "item", index: "serial", scope: "p", IndexKey("RACE"), limit: 10)).count == 1
        )
    }

    static func paging(_ s: any Storage) async throws {
        try await s.withTransaction { tx in
            for i in 0..<53 {
                try await tx.insert(
                    record(String(format: "r%03d", i), Item(color: i % 3 == 0 ? "red" : "blue", size: Int64(i % 5))))
            }
        }
        for q in [color("red"), color("blue"), color("blue", descending: true)] {
            let paged = try await ids(s, q)
            let want = try await oracle(s, q)
            #expect(paged == want)
            #expect(Set(paged).count == paged.count, "no record twice")
        }
        // Cursor tokens survive a round trip and resume where they left off.
        var q = color("blue")
        q.limit = 10
        let first = try await s.withReadTransaction { [q] in try await $0.lookup(q) }
        let token = try #require(first.last?.cursor.token)
        let resumed = IndexCursor(token: token)
        #expect(resumed == first.last?.cursor)
        q.after = resumed
        let second = try await s.withReadTransaction { [q] in try await $0.lookup(q) }
        let all = try await ids(s, color("blue"))
        #expect((first + second).map(\.record.id) == Array(all.prefix(20)))
        #expect(IndexCursor(token: "!!!") == nil)
        // A limit of 0 returns nothing.
        q.limit = 0
        let none = try await s.withReadTransaction { [q] in try await $0.lookup(q) }
        #expect(none.isEmpty)
    }

    static func ranges(_ s: any Storage) async throws {
        try await s.withTransaction { tx in
            for i in 0..<40 {
                try await tx.insert(
                    record(
                        "t\(i)",
                        Item(color: i % 2 == 0 ? "red" : "blue", size: Int64(i - 20), at: Int64(i) * 1000 - 5000)))
            }
        }
        // Equality on a leading part plus a range on the next (negative numbers order before positive ones).
        let base = IndexKey("red")
        let sized = IndexQuery(
            kind: "item", index: "colorSize", scope: "p", lower: base.appending(-10), upper: base.appending(5),
            limit: 100)
        let got = try await ids(s, sized)
        try await matchesOracle(s, sized)
        #expect(got.count == 8, "\(got)")  // sizes -10, -8, …, 4
        // An unscoped time range, both directions.
        for descending in [false, true] {
            let window = IndexQuery(
                kind: "item", index: "at", scope: nil, lower: IndexKey().appending(-2000),
                upper: IndexKey().appending(12_000),
                descending: descending, limit: 100)
            let w = try await ids(s, window)
            try await matchesOracle(s, window)
            #expect(w.count == 14)
            #expect(w.first == (descending ? "t16" : "t3"))
        }
        // Strings: a prefix never matches a longer string, and a string with an embedded NUL keeps its order.
        try await s.withTransaction { tx in
            try await tx.insert(record("s1", Item(color: "re", size: 0)))
            try await tx.insert(record("s2", Item(color: "re\u{0}d", size: 0)))
            try await tx.insert(record("s3", Item(color: "reda", size: 0)))
        }
        #expect(try await ids(s, color("re")) == ["s1"])
        #expect(try await ids(s, color("re\u{0}d")) == ["s2"])
        let everything = IndexQuery(kind: "item", index: "color", scope: "p", limit: 1000)
        try await matchesOracle(s, everything)
    }

    static func concurrentWriters(_ s: any Storage) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<6 {
                group.addTask {
                    for i in 0..<15 {
                        let id = "w\(w)-\(i)"
                        try await s.withRetryingTransaction(versionConflicts: true) { tx in
                            try await tx.insert(
                                record(
                                    id, Item(color: ["red", "blue", "green"][i % 3], size: Int64(i), tags: ["w\(w)"])))
                        }
                        if i % 2 == 0 {
                            try await s.withRetryingTransaction(versionConflicts: true) { tx in
                                var r = try #require(try await tx.get(kind: "item", id: id))
                                r.body = try JSONEncoder().encode(
                                    Item(color: "yellow", size: Int64(i), tags: ["w\(w)", "even"]))
                                _ = try await tx.update(r)
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        for c in ["red", "blue", "green", "yellow"] {
            try await matchesOracle(s, color(c))
        }
        #expect(try await ids(s, color("yellow")).count == 6 * 8)
        let even = IndexQuery.prefix(kind: "item", index: "tag", scope: "p", IndexKey("even"), limit: 1000)
        #expect(try await ids(s, even).count == 6 * 8)
    }

    /// Random inserts, updates, deletes and rolled-back transactions; after each round every query equals the
    /// oracle's full scan.
    static func randomOps(_ s: any Storage) async throws {
        var rng = SystemRandomNumberGenerator()
        let colors = ["red", "blue", "green"]
        let scopes = ["p", "q"]
        var live: [String: Int64] = [:]  // id -> version
        for round in 0..<6 {
            for _ in 0..<25 {
                let pick = Int.random(in: 0..<10, using: &rng)
                let item = Item(
                    color: colors.randomElement(using: &rng)!, size: Int64.random(in: -3...3, using: &rng),
                    tags: Array(["a", "b", "c"].shuffled(using: &rng).prefix(Int.random(in: 0...2, using: &rng))),
                    at: Int64.random(in: -100...100, using: &rng))
                let scope = scopes.randomElement(using: &rng)!
                if pick < 4 || live.isEmpty {
                    let id = "n\(round)-\(UInt32.random(in: 0...UInt32.max, using: &rng))"
                    try await s.withTransaction { try await $0.insert(record(id, scope: scope, item)) }
                    live[id] = 1
                } else if pick < 7, let (id, version) = live.randomElement(using: &rng) {
                    var r = record(id, scope: scope, item)
                    r.version = version
                    let stored = try await s.withTransaction { [r] in try await $0.update(r) }
                    live[id] = stored.version
                } else if pick < 9, let (id, version) = live.randomElement(using: &rng) {
                    try await s.withTransaction { try await $0.delete(kind: "item", id: id, expectedVersion: version) }
                    live[id] = nil
                } else {
                    struct Abort: Error {}
                    _ = try? await s.withTransaction { tx in
                        try await tx.insert(record("rolled-back", scope: scope, item))
                        throw Abort()
                    }
                }
            }
            var queries: [IndexQuery] = []
            for scope in scopes {
                for c in colors {
                    queries.append(color(c, scope: scope))
                    queries.append(color(c, scope: scope, descending: true))
                    queries.append(
                        IndexQuery(
                            kind: "item", index: "colorSize", scope: scope, lower: IndexKey(c).appending(-1),
                            upper: IndexKey(c).appending(2), limit: 1000))
                }
                for t in ["a", "b", "c"] {
                    queries.append(.prefix(kind: "item", index: "tag", scope: scope, IndexKey(t), limit: 1000))
                }
            }
            queries.append(
                IndexQuery(
                    kind: "item", index: "at", scope: nil, lower: IndexKey().appending(-50),
                    upper: IndexKey().appending(50), limit: 1000))
            for q in queries {
                let got = try await ids(s, q)
                let want = try await oracle(s, q)
                #expect(got == want, "round \(round) \(q.index) \(q.scope ?? "-"): \(got) vs \(want)")
            }
        }
    }

    /// A paged scan while other writers insert into the same range: every record that existed when the scan began
    /// is returned exactly once (new ones may or may not be).
    static func pagingWhileInserting(_ s: any Storage) async throws {
        try await s.withTransaction { tx in
            for i in 0..<120 {
                try await tx.insert(record(String(format: "base%04d", i), Item(color: "red", size: Int64(i))))
            }
        }
        let writer = Task {
            for i in 0..<60 {
                try await s.withTransaction {
                    try await $0.insert(record(String(format: "new%04d", i), Item(color: "red", size: 0)))
                }
            }
        }
        var seen: [String] = []
        var q = color("red")
        q.limit = 9
        while true {
            let current = q
            let page = try await s.withReadTransaction { try await $0.lookup(current) }
            seen += page.map(\.record.id)
            guard page.count == q.limit, let last = page.last else { break }
            q.after = last.cursor
        }
        try await writer.value
        let base = seen.filter { $0.hasPrefix("base") }
        #expect(base.count == 120 && Set(base).count == 120, "\(base.count) base records, \(Set(base).count) distinct")
        #expect(Set(seen).count == seen.count, "a record appeared twice")
    }

    /// Upgrade in place: records written before the kind had indexes (or under an older indexer version) get their
    /// entries at the next migrate; a migrate with an unchanged version does not rebuild.
    static func rebuild(_ s: any Storage) async throws {
        try await s.migrate(indexes: .none)
        try await s.withTransaction { tx in
            for i in 0..<30 {
                try await tx.insert(record("old\(i)", Item(color: i % 2 == 0 ? "red" : "blue", size: Int64(i))))
            }
        }
        try await s.migrate(indexes: catalog())
        #expect(try await ids(s, color("red")).count == 15)
        try await matchesOracle(s, color("red"))
        // Version 2 adds size entries to "color": rebuilt.
        try await s.migrate(indexes: catalog(version: 2))
        let sized = IndexQuery.prefix(
            kind: "item", index: "color", scope: "p", IndexKey("size").appending(4), limit: 10)
        #expect(try await ids(s, sized) == ["old4"])
        // Back to version 1: the size entries are gone again.
        try await s.migrate(indexes: catalog())
        #expect(try await ids(s, sized).isEmpty)
        #expect(try await ids(s, color("blue")).count == 15)
    }

    static func deleteBefore(_ s: any Storage) async throws {
        try await s.withTransaction { tx in
            for i in 0..<10 {
                try await tx.insert(
                    record(String(format: "%013d-x", i * 1000), Item(color: "red", size: Int64(i), tags: ["t"])))
            }
        }
        let n = try await s.withTransaction {
            try await $0.deleteBefore(kind: "item", scope: "p", idBefore: "0000000005000", limit: 100)
        }
        #expect(n == 5)
        #expect(try await ids(s, color("red")).count == 5)
        try await matchesOracle(s, color("red"))
        let at = IndexQuery(kind: "item", index: "at", scope: nil, limit: 100)
        #expect(try await ids(s, at).count == 5)
    }
}

extension IndexConformance {
    /// Checks a store's entries for `kind` against its records: for every scope and every declared index, the
    /// entries a full index scan returns are exactly those the catalog computes from the records. Returns the number
    /// of records checked; records a mismatch with `Issue.record`.
    @discardableResult
    public static func verify(_ s: any Storage, kind: String, sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> Int
    {
        let catalog = s.indexes
        guard let indexer = catalog.indexers[kind] else {
            Issue.record("\(kind) has no indexes in this store", sourceLocation: sourceLocation)
            return 0
        }
        var records: [Record] = []
        var after: String?
        while true {
            let page = try await s.withReadTransaction { [after] in
                try await $0.list(kind: kind, scope: nil, afterID: after, limit: 1000)
            }
            records += page
            guard page.count == 1000, let last = page.last else { break }
            after = last.id
        }
        struct Entry: Hashable {
            var scope: String
            var key: IndexKey
            var id: String
        }
        for definition in indexer.definitions {
            var expected = Set<Entry>()
            for r in records {
                for e in try catalog.stored(r) where e.index == definition.name {
                    expected.insert(Entry(scope: e.scope, key: e.key, id: r.id))
                }
            }
            var actual = Set<Entry>()
            for scope in definition.scoped ? Set(records.map(\.scope)) : [""] {
                let hits = try await s.lookupAll(
                    IndexQuery(kind: kind, index: definition.name, scope: definition.scoped ? scope : nil, limit: 0))
                for h in hits { actual.insert(Entry(scope: scope, key: h.key, id: h.record.id)) }
            }
            let stray = actual.subtracting(expected).count
            let missing = expected.subtracting(actual).count
            #expect(
                stray == 0 && missing == 0, "\(kind).\(definition.name): \(stray) stray, \(missing) missing entries",
                sourceLocation: sourceLocation)
        }
        return records.count
    }
}
