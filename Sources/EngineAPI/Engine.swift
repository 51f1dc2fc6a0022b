import Foundation

/// Secret bytes that never print themselves.
public struct SecretBytes: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The plaintext. Handle with care; never log.
    public var bytes: [UInt8]
    /// Wraps bytes.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    /// Wraps UTF-8 text.
    public init(utf8 text: String) { self.bytes = Array(text.utf8) }
    public var description: String { "<redacted \(bytes.count) bytes>" }
    public var debugDescription: String { description }
}

/// Public facts about a stored secret (no value).
public struct SecretMetadata: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var name: String
    public var version: Int64
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: String, project: String, name: String, version: Int64, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.project = project
        self.name = name
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One page of a listing; `next` is the cursor for the following page, nil on the last one.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var next: String?
    public init(items: [Item], next: String?) {
        self.items = items
        self.next = next
    }
}

/// One audit event in the documented shape (see README "Audit log").
public struct AuditEvent: Sendable, Codable, Hashable {
    /// `event.type` and `event.metadata`.
    public struct Event: Sendable, Codable, Hashable {
        public var type: String
        public var metadata: [String: String]
        public init(type: String, metadata: [String: String] = [:]) {
            self.type = type
            self.metadata = metadata
        }
    }
    /// `actor.type` and `actor.metadata`.
    public struct Actor: Sendable, Codable, Hashable {
        public var type: String
        public var metadata: [String: String]
        public init(type: String, metadata: [String: String] = [:]) {
            self.type = type
            self.metadata = metadata
        }
    }

    public var event: Event
    public var actor: Actor
    public var projectId: String?
    public var ipAddress: String?
    public var userAgent: String?
    public var userAgentType: String
    public var timestamp: Date

    public init(
        event: Event, actor: Actor, projectId: String?, ipAddress: String?, userAgent: String?, userAgentType: String,
        timestamp: Date
    ) {
        self.event = event
        self.actor = actor
        self.projectId = projectId
        self.ipAddress = ipAddress
        self.userAgent = userAgent
        self.userAgentType = userAgentType
        self.timestamp = timestamp
    }
}

/// An audit event with its place in the hash chain.
public struct ChainedAuditEvent: Sendable, Hashable {
    public var sequence: Int64
    public var event: AuditEvent
    public var hash: String
    public init(sequence: Int64, event: AuditEvent, hash: String) {
        self.sequence = sequence
        self.event = event
        self.hash = hash
    }
}

/// The result of checking the whole audit chain.
public struct AuditVerification: Sendable, Hashable {
    /// Number of events checked.
    public var checked: Int64
    /// Empty when the chain is intact; otherwise one line per problem found (first problems first).
    public var problems: [String]
    public var isIntact: Bool { problems.isEmpty }
    public init(checked: Int64, problems: [String]) {
        self.checked = checked
        self.problems = problems
    }
}

/// Readiness facts for `/readyz`.
public struct HealthReport: Sendable, Hashable {
    public var storageBackend: String
    public var storageReachable: Bool
    public var detail: String
    public init(storageBackend: String, storageReachable: Bool, detail: String) {
        self.storageBackend = storageBackend
        self.storageReachable = storageReachable
        self.detail = detail
    }
}

/// The single API every front end calls. Authorization and audit happen behind it, once.
///
/// Each call takes the caller explicitly (`CallContext`) and throws only `EngineError`.
public protocol Engine: Sendable {
    /// Storage reachability and other readiness facts. Not authorized, not audited.
    func health() async -> HealthReport

    /// Creates a secret; fails with `.alreadyExists` when the name is taken in the project.
    func createSecret(_ ctx: CallContext, project: String, name: String, value: SecretBytes) async throws -> SecretMetadata
    /// Replaces a secret's value (optionally only if its version is `expectedVersion`).
    func updateSecret(_ ctx: CallContext, project: String, name: String, value: SecretBytes, expectedVersion: Int64?)
        async throws -> SecretMetadata
    /// Reads a secret's value (audited as a secret read).
    func readSecret(_ ctx: CallContext, project: String, name: String) async throws -> (SecretMetadata, SecretBytes)
    /// Lists secrets of a project, `limit` at a time, after the cursor `after`.
    func listSecrets(_ ctx: CallContext, project: String, after: String?, limit: Int) async throws -> Page<SecretMetadata>
    /// Deletes a secret.
    func deleteSecret(_ ctx: CallContext, project: String, name: String) async throws

    /// Reads audit events after a sequence number.
    func auditEvents(_ ctx: CallContext, after: Int64, limit: Int) async throws -> [ChainedAuditEvent]
    /// Checks the whole audit chain for edits, deletions and reordering.
    func verifyAudit(_ ctx: CallContext) async throws -> AuditVerification
}
