import Foundation

/// One stored object: a typed, versioned, opaque body with an optional unique name inside its scope.
///
/// Every engine object (keys, secrets, CAs, identities, data keys, …) is a `Record`. The engine owns the
/// body's format; storage only guarantees identity, uniqueness of `(kind, scope, name)`, and versioning.
public struct Record: Sendable, Hashable {
    /// The object type, e.g. `secret`, `datakey`. Together with `id` it identifies the record.
    public var kind: String
    /// Globally unique identifier (chosen by the engine, usually a UUID).
    public var id: String
    /// Namespace for uniqueness and listing, e.g. a project id. Empty for global objects.
    public var scope: String
    /// Optional name, unique within `(kind, scope)` when set.
    public var name: String?
    /// Optimistic-concurrency version: 1 on insert, incremented by every successful update.
    public var version: Int64
    /// Opaque body; the engine encrypts secret fields before they get here.
    public var body: Data
    /// Creation time (set by the caller).
    public var createdAt: Date
    /// Last update time (set by the caller).
    public var updatedAt: Date

    /// Creates a record value.
    public init(
        kind: String, id: String, scope: String = "", name: String? = nil, version: Int64 = 1, body: Data,
        createdAt: Date = Date(), updatedAt: Date? = nil
    ) {
        self.kind = kind
        self.id = id
        self.scope = scope
        self.name = name
        self.version = version
        self.body = body
        self.createdAt = Self.truncated(createdAt)
        self.updatedAt = Self.truncated(updatedAt ?? createdAt)
    }

    /// Storage keeps time at millisecond precision; values are truncated on creation so round trips compare equal.
    public static func truncated(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }

    /// Milliseconds since the epoch, the stored representation of a date.
    public static func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }

    /// Inverse of `millis(_:)`.
    public static func date(millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }
}

/// Errors every backend reports the same way, so the engine can map them without knowing the backend.
public struct StorageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stable category of a storage error.
    public enum Code: String, Sendable, Hashable {
        /// `(kind, id)` or `(kind, scope, name)` already exists.
        case uniqueViolation
        /// The record changed since it was read (optimistic concurrency).
        case versionConflict
        /// No such record.
        case notFound
        /// The audit chain head moved (another writer appended first).
        case auditConflict
        /// A concurrent transaction won (serialization failure, deadlock); the whole transaction may be retried.
        case transientConflict
        /// The backend could not be reached or failed; retrying later may help.
        case unavailable
        /// The stored data is not what this version expects (schema too new, corrupt file, …).
        case corrupt
    }

    /// The category.
    public var code: Code
    /// Diagnostic text for logs; never sent to peers.
    public var detail: String

    /// Creates an error.
    public init(_ code: Code, _ detail: String = "") {
        self.code = code
        self.detail = detail
    }

    public var description: String {
        detail.isEmpty ? "storage: \(code.rawValue)" : "storage: \(code.rawValue): \(detail)"
    }
}
