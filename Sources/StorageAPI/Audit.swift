import ExtrasBase64
import Foundation

/// The fields of an audit event that searches filter on, copied out of its body when it is written. The body (which
/// the chain's hash covers) stays authoritative: `gatehouse audit verify` checks that each copy matches it.
public struct AuditFields: Sendable, Hashable {
    /// The event type (`kms.get`, `secret.read`, …).
    public var type: String
    /// The acting principal's id ("" when none).
    public var actor: String
    /// The project the event concerns ("" when none).
    public var project: String

    /// Creates the searchable fields of an event.
    public init(type: String, actor: String, project: String) {
        self.type = type
        self.actor = actor
        self.project = project
    }
}

/// A hash-chained audit event as stored. The engine computes `hash`; storage assigns nothing but keeps order.
///
/// The log is a set of chains, one per writer node, so that nodes sharing a store never wait for one another to
/// append. `chain` "" is the single chain that stores written before per-node chains had.
public struct AuditRecord: Sendable, Hashable {
    /// The chain (the writing node's id).
    public var chain: String
    /// Position in the chain, starting at 1, without gaps.
    public var sequence: Int64
    /// Event time in milliseconds since the epoch.
    public var timestampMillis: Int64
    /// Searchable copies of fields of `body`.
    public var fields: AuditFields
    /// Canonical JSON of the event.
    public var body: Data
    /// Hash of the previous event (the chain's genesis value for the first).
    public var previousHash: Data
    /// MAC over the previous hash, sequence, timestamp and body.
    public var hash: Data

    /// Creates an audit record value.
    public init(
        chain: String, sequence: Int64, timestampMillis: Int64, fields: AuditFields, body: Data, previousHash: Data,
        hash: Data
    ) {
        self.chain = chain
        self.sequence = sequence
        self.timestampMillis = timestampMillis
        self.fields = fields
        self.body = body
        self.previousHash = previousHash
        self.hash = hash
    }

    /// Where the record sits in its chain.
    public var position: AuditPosition { AuditPosition(chain: chain, sequence: sequence) }
}

/// A position in the audit log: an event's chain and sequence.
public struct AuditPosition: Sendable, Hashable, Comparable {
    /// The chain.
    public var chain: String
    /// The sequence in the chain.
    public var sequence: Int64

    /// Creates a position.
    public init(chain: String, sequence: Int64) {
        self.chain = chain
        self.sequence = sequence
    }

    /// Chain (bytewise), then sequence: the order `StorageTransaction.auditEvents` scans in.
    public static func < (a: AuditPosition, b: AuditPosition) -> Bool {
        a.chain != b.chain
            ? Array(a.chain.utf8).lexicographicallyPrecedes(Array(b.chain.utf8)) : a.sequence < b.sequence
    }
}

/// The stored head of one chain: its last event and the MAC that makes truncating the chain detectable. The
/// engine signs it; storage compares it whole (an append names the head it extends).
public struct AuditChainHead: Sendable, Hashable {
    /// The chain.
    public var chain: String
    /// The signed head value (the engine's format: sequence, hash, MAC).
    public var value: Data

    /// Creates a head value.
    public init(chain: String, value: Data) {
        self.chain = chain
        self.value = value
    }
}

/// An audit event written in the transaction of the change it describes, before it joins its chain: the change and
/// its event commit together, and the node's audit writer seals pending events into the chain in batches (so that a
/// crash between the two loses nothing: whoever finds a pending event later seals it).
public struct PendingAuditEvent: Sendable, Hashable {
    /// A unique id (random).
    public var id: String
    /// The chain meant to take it (the writing node).
    public var chain: String
    /// Event time in milliseconds since the epoch.
    public var timestampMillis: Int64
    /// Searchable copies of fields of `body`.
    public var fields: AuditFields
    /// Canonical JSON of the event.
    public var body: Data

    /// Creates a pending event.
    public init(id: String, chain: String, timestampMillis: Int64, fields: AuditFields, body: Data) {
        self.id = id
        self.chain = chain
        self.timestampMillis = timestampMillis
        self.fields = fields
        self.body = body
    }
}

/// A search of the audit log by one field (or none) and a time range, in time order.
public struct AuditQuery: Sendable, Hashable {
    /// What to match besides the time range.
    public enum Filter: Sendable, Hashable {
        /// Every event.
        case all
        /// Events of this type.
        case type(String)
        /// Events by this actor.
        case actor(String)
        /// Events about this project.
        case project(String)
    }

    /// The search's cursor: the last event returned (its time, chain and sequence).
    public struct Cursor: Sendable, Hashable {
        /// The event's time in milliseconds.
        public var timestampMillis: Int64
        /// The event's position.
        public var position: AuditPosition

        /// Creates a cursor.
        public init(timestampMillis: Int64, position: AuditPosition) {
            self.timestampMillis = timestampMillis
            self.position = position
        }

        /// An opaque text form for APIs.
        public var token: String {
            let text = "\(timestampMillis)\u{0}\(position.sequence)\u{0}\(position.chain)"
            return Base64.encodeToString(bytes: Array(text.utf8), options: [.base64UrlAlphabet, .omitPaddingCharacter])
        }

        /// Parses `token`; nil for anything else.
        public init?(token: String) {
            guard token.utf8.count <= 512,
                let data = try? Base64.decode(string: token, options: [.base64UrlAlphabet, .omitPaddingCharacter])
            else { return nil }
            let parts = String(decoding: data, as: UTF8.self).split(
                separator: "\u{0}", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, let ts = Int64(parts[0]), let seq = Int64(parts[1]) else { return nil }
            self.init(timestampMillis: ts, position: AuditPosition(chain: String(parts[2]), sequence: seq))
        }
    }

    /// The field to match.
    public var filter: Filter
    /// Events at or after this time (milliseconds).
    public var since: Int64?
    /// Events before this time (milliseconds).
    public var until: Int64?
    /// Newest first.
    public var descending: Bool
    /// Continue after this event (in the query's order).
    public var after: Cursor?
    /// At most this many events.
    public var limit: Int

    /// Creates a search.
    public init(
        filter: Filter = .all, since: Int64? = nil, until: Int64? = nil, descending: Bool = false, after: Cursor? = nil,
        limit: Int = 100
    ) {
        self.filter = filter
        self.since = since
        self.until = until
        self.descending = descending
        self.after = after
        self.limit = limit
    }

    /// Whether `r` is in the search's range (the reference the backends' queries are compared against).
    public func admits(_ r: AuditRecord) -> Bool {
        switch filter {
        case .all: break
        case .type(let v): if r.fields.type != v { return false }
        case .actor(let v): if r.fields.actor != v { return false }
        case .project(let v): if r.fields.project != v { return false }
        }
        if let since, r.timestampMillis < since { return false }
        if let until, r.timestampMillis >= until { return false }
        if let after {
            let mine = Cursor(timestampMillis: r.timestampMillis, position: r.position)
            return descending ? Self.precedes(mine, after) : Self.precedes(after, mine)
        }
        return true
    }

    /// The search order: time, then chain (bytewise), then sequence.
    public static func precedes(_ a: Cursor, _ b: Cursor) -> Bool {
        a.timestampMillis != b.timestampMillis ? a.timestampMillis < b.timestampMillis : a.position < b.position
    }
}
