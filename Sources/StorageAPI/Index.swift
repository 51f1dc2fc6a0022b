import ExtrasBase64
import Foundation

/// An order-preserving tuple key for secondary indexes: a sequence of typed parts whose encoding compares bytewise
/// in the same order as the parts compare one by one (strings by their UTF-8 bytes, integers numerically). So an
/// index on (object type, algorithm, length) answers equality on any leading parts as a prefix range, and a time
/// part after them answers a range on time.
///
/// Hand-written: no package in the dependency graph has an order-preserving tuple encoding. The layout follows the
/// usual tuple-layer scheme: a type byte per part; a string's bytes with 0x00 escaped as 0x00 0xFF and a 0x00
/// terminator (so a string sorts before its extensions); an integer as 8 big-endian bytes with the sign bit flipped.
public struct IndexKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public private(set) var bytes: [UInt8]

    static let bytesType: UInt8 = 0x01
    static let stringType: UInt8 = 0x02
    static let intType: UInt8 = 0x15

    /// The empty key: a prefix of every key.
    public init() { bytes = [] }

    /// A key of the given raw encoding (as stored).
    public init(encoded: [UInt8]) { bytes = encoded }

    /// A key of string parts.
    public init(_ parts: String...) {
        bytes = []
        for p in parts { append(p) }
    }

    public mutating func append(_ s: String) {
        bytes.append(Self.stringType)
        for b in s.utf8 {
            bytes.append(b)
            if b == 0 { bytes.append(0xFF) }
        }
        bytes.append(0)
    }

    /// Raw bytes (escaped and terminated like a string, under their own type byte).
    public mutating func append(bytes: [UInt8]) {
        self.bytes.append(Self.bytesType)
        for b in bytes {
            self.bytes.append(b)
            if b == 0 { self.bytes.append(0xFF) }
        }
        self.bytes.append(0)
    }

    public mutating func append(_ i: Int64) {
        bytes.append(Self.intType)
        let flipped = UInt64(bitPattern: i) ^ (1 << 63)
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: flipped >> UInt64(shift)))
        }
    }

    public func appending(_ s: String) -> IndexKey {
        var k = self
        k.append(s)
        return k
    }

    public func appending(bytes: [UInt8]) -> IndexKey {
        var k = self
        k.append(bytes: bytes)
        return k
    }

    public func appending(_ i: Int64) -> IndexKey {
        var k = self
        k.append(i)
        return k
    }

    /// The smallest key greater than every key that starts with this one (the exclusive end of a prefix range).
    /// Every part starts with a type byte below 0xFF, so appending 0xFF bounds all extensions.
    public var prefixEnd: IndexKey { IndexKey(encoded: bytes + [0xFF]) }

    public static func < (a: IndexKey, b: IndexKey) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    public var description: String { bytes.map { String(format: "%02x", $0) }.joined() }
}

/// One entry a record contributes to one of its kind's indexes.
public struct IndexEntry: Sendable, Hashable {
    /// The index's name, unique within the record kind.
    public var index: String
    public var key: IndexKey

    public init(_ index: String, _ key: IndexKey) {
        self.index = index
        self.key = key
    }
}

/// A secondary index declared for a record kind.
public struct IndexDefinition: Sendable, Hashable {
    public var name: String
    /// At most one record of the kind may hold a key in this index (within the scope, for a scoped index).
    public var unique: Bool
    /// Entries live in their record's scope, and queries name a scope; an unscoped index spans all scopes (its
    /// entries are stored with the empty scope).
    public var scoped: Bool

    public init(_ name: String, unique: Bool = false, scoped: Bool = true) {
        self.name = name
        self.unique = unique
        self.scoped = scoped
    }
}

/// The indexes of one record kind and how to compute a record's entries: the owner of the body's format (the
/// engine) declares it, and the store maintains the entries in the same transaction as every insert, update and
/// delete of the kind.
public struct RecordIndexer: Sendable {
    public var kind: String
    public var definitions: [IndexDefinition]
    /// Changes whenever `entries` would compute different keys for stored records: the store rebuilds the kind's
    /// entries at the next `migrate()` (upgrade in place).
    public var version: Int
    /// The record's entries. A record whose body cannot be read contributes none.
    public var entries: @Sendable (Record) -> [IndexEntry]

    public init(
        kind: String, version: Int, _ definitions: [IndexDefinition],
        entries: @escaping @Sendable (Record) -> [IndexEntry]
    ) {
        self.kind = kind
        self.version = version
        self.definitions = definitions
        self.entries = entries
    }
}

/// Every indexed kind of a store.
public struct IndexCatalog: Sendable {
    public let indexers: [String: RecordIndexer]

    public static let none = IndexCatalog([])

    public init(_ indexers: [RecordIndexer]) {
        var map: [String: RecordIndexer] = [:]
        for i in indexers { map[i.kind] = i }
        self.indexers = map
    }

    public func definition(kind: String, index: String) throws -> IndexDefinition {
        guard let d = indexers[kind]?.definitions.first(where: { $0.name == index }) else {
            throw StorageError(.corrupt, "no index \(index) on \(kind)")
        }
        return d
    }

    /// A stored entry: the index's definition, the scope it is stored under, and its key.
    public struct Stored: Sendable, Hashable {
        public var index: String
        public var scope: String
        public var key: IndexKey
        public var unique: Bool
    }

    /// The entries `record` contributes, deduplicated, in a stable order; empty for a kind without indexes.
    /// Entries naming an index the kind does not declare are a programming error, reported as `.corrupt`.
    public func stored(_ record: Record) throws -> [Stored] {
        guard let indexer = indexers[record.kind] else { return [] }
        var seen = Set<Stored>()
        var out: [Stored] = []
        for e in indexer.entries(record) {
            guard let d = indexer.definitions.first(where: { $0.name == e.index }) else {
                throw StorageError(.corrupt, "\(record.kind) has no index \(e.index)")
            }
            let s = Stored(index: e.index, scope: d.scoped ? record.scope : "", key: e.key, unique: d.unique)
            if seen.insert(s).inserted { out.append(s) }
        }
        return out
    }

    /// What must change when a record goes from `old` to `new` (either may be nil): entries to remove, to add.
    public func changes(from old: Record?, to new: Record?) throws -> (removed: [Stored], added: [Stored]) {
        let before = try old.map(stored) ?? []
        let after = try new.map(stored) ?? []
        let a = Set(after)
        let b = Set(before)
        return (before.filter { !a.contains($0) }, after.filter { !b.contains($0) })
    }

    /// The metadata key under which a store keeps the version its entries of `kind` were built with.
    public static func versionKey(_ kind: String) -> String { "index-version:" + kind }
}

/// Where a page of an index scan resumes: the last entry returned (its key and record id). Opaque to clients as a
/// string (`token`), which a store accepts back only if it decodes.
public struct IndexCursor: Sendable, Hashable {
    public var key: IndexKey
    public var id: String

    public init(key: IndexKey, id: String) {
        self.key = key
        self.id = id
    }

    /// base64url of (key length, key, id).
    public var token: String {
        var data = Data()
        var n = UInt32(key.bytes.count).bigEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(contentsOf: key.bytes)
        data.append(contentsOf: Array(id.utf8))
        return Base64.encodeToString(bytes: data, options: [.base64UrlAlphabet, .omitPaddingCharacter])
    }

    /// Decodes a `token`; nil when it is not one.
    public init?(token: String) {
        guard token.count <= 4096 else { return nil }
        guard let bytes = try? Base64.decode(string: token, options: [.base64UrlAlphabet, .omitPaddingCharacter]),
            bytes.count >= 4
        else {
            return nil
        }
        let n = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard n <= bytes.count - 4, let id = String(bytes: bytes[(4 + n)...], encoding: .utf8) else { return nil }
        self.key = IndexKey(encoded: Array(bytes[4..<(4 + n)]))
        self.id = id
    }
}

/// A scan of one index in key order (then record id): the entries with `lower <= key < upper` in `scope`, after
/// `after`, at most `limit`.
public struct IndexQuery: Sendable, Hashable {
    public var kind: String
    public var index: String
    /// The scope for a scoped index (required); ignored for an unscoped one.
    public var scope: String?
    public var lower: IndexKey
    /// Exclusive; nil for no upper bound.
    public var upper: IndexKey?
    public var after: IndexCursor?
    public var descending: Bool
    public var limit: Int

    public init(
        kind: String, index: String, scope: String?, lower: IndexKey = IndexKey(), upper: IndexKey? = nil,
        after: IndexCursor? = nil,
        descending: Bool = false, limit: Int
    ) {
        self.kind = kind
        self.index = index
        self.scope = scope
        self.lower = lower
        self.upper = upper
        self.after = after
        self.descending = descending
        self.limit = limit
    }

    /// Every entry whose key starts with `prefix`.
    public static func prefix(
        kind: String, index: String, scope: String?, _ prefix: IndexKey, after: IndexCursor? = nil,
        descending: Bool = false, limit: Int
    ) -> IndexQuery {
        IndexQuery(
            kind: kind, index: index, scope: scope, lower: prefix, upper: prefix.prefixEnd, after: after,
            descending: descending, limit: limit)
    }

    /// The scope entries are stored under for this query, checked against the definition.
    public func storedScope(_ catalog: IndexCatalog) throws -> String {
        let d = try catalog.definition(kind: kind, index: index)
        guard d.scoped else { return "" }
        guard let scope else {
            throw StorageError(.corrupt, "index \(index) of \(kind) is scoped: the query must name a scope")
        }
        return scope
    }

    /// Whether an entry (key, id) is inside the range and past the cursor, in the query's direction.
    public func admits(key: IndexKey, id: String) -> Bool {
        guard key >= lower else { return false }
        if let upper, !(key < upper) { return false }
        guard let after else { return true }
        if key != after.key { return descending ? key < after.key : after.key < key }
        return descending
            ? Array(id.utf8).lexicographicallyPrecedes(Array(after.id.utf8))
            : Array(after.id.utf8).lexicographicallyPrecedes(Array(id.utf8))
    }
}

/// A record found through an index, with the entry's key (for the next page's cursor).
public struct IndexedRecord: Sendable, Hashable {
    public var record: Record
    public var key: IndexKey

    public init(record: Record, key: IndexKey) {
        self.record = record
        self.key = key
    }

    public var cursor: IndexCursor { IndexCursor(key: key, id: record.id) }
}
