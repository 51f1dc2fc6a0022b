import Foundation

// MARK: - Privileged access management (PostgreSQL)

/// How the proxy connects to a resource (libpq's `sslmode` names).
public enum PAMTLSMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Plain TCP (only for loopback or a trusted network).
    case disable
    /// TLS without certificate checks.
    case require
    /// TLS; the server certificate must chain to the resource's CA.
    case verifyCA = "verify-ca"
    /// TLS; chain to the resource's CA and the host name must match (the default).
    case verifyFull = "verify-full"
}

/// Where a resource lives and how to reach it.
public struct PAMTarget: Sendable, Hashable, Codable {
    public var host: String
    public var port: Int
    public var database: String
    public var tlsMode: PAMTLSMode
    /// PEM CA certificate(s) for `verify-ca` / `verify-full`; empty means the system trust store.
    public var caCertificate: String?
    public init(host: String, port: Int, database: String, tlsMode: PAMTLSMode, caCertificate: String? = nil) {
        self.host = host
        self.port = port
        self.database = database
        self.tlsMode = tlsMode
        self.caCertificate = caCertificate
    }
}

/// What a resource (a PostgreSQL target) is created with.
public struct PAMResourceSpec: Sendable, Hashable, Codable {
    /// Unique across the appliance: clients select it as the `database` of their start-up message.
    public var name: String
    public var host: String
    public var port: Int?
    public var database: String
    public var tlsMode: PAMTLSMode?
    public var caCertificate: String?
    /// Terminate a session when its recording cannot be written (default true).
    public var failClosed: Bool?
    /// The account (username on this resource) that changes other accounts' passwords when they rotate; without
    /// one, each account changes its own (PostgreSQL lets a role set its own password).
    public var rotationAccount: String?
    /// Record up to this many result rows per statement (values capped at 4 KiB each); default 0: no rows.
    public var recordRows: Int?
    public init(
        name: String, host: String, port: Int? = nil, database: String, tlsMode: PAMTLSMode? = nil,
        caCertificate: String? = nil, failClosed: Bool? = nil, rotationAccount: String? = nil, recordRows: Int? = nil
    ) {
        self.rotationAccount = rotationAccount
        self.recordRows = recordRows
        self.name = name
        self.host = host
        self.port = port
        self.database = database
        self.tlsMode = tlsMode
        self.caCertificate = caCertificate
        self.failClosed = failClosed
    }
}

/// A PostgreSQL resource.
public struct PAMResourceInfo: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var name: String
    public var target: PAMTarget
    public var failClosed: Bool
    public var rotationAccount: String?
    /// Result rows recorded per statement (0: none).
    public var recordRows: Int?
    public var createdAt: Date
    public init(
        id: String, project: String, name: String, target: PAMTarget, failClosed: Bool, rotationAccount: String? = nil,
        recordRows: Int? = nil, createdAt: Date
    ) {
        self.rotationAccount = rotationAccount
        self.recordRows = recordRows
        self.id = id
        self.project = project
        self.name = name
        self.target = target
        self.failClosed = failClosed
        self.createdAt = createdAt
    }
}

/// A database login on a resource. The password never leaves the engine except to the proxy that injects it.
public struct PAMAccountInfo: Sendable, Hashable, Codable {
    public var id: String
    public var resourceId: String
    public var project: String
    public var username: String
    public var createdAt: Date
    /// When the credential last changed.
    public var passwordChangedAt: Date
    /// Rotate the password this often (e.g. `30d`); nil: only on demand.
    public var rotationInterval: String?
    /// Why the last rotation failed (cleared by a successful one); the old credential stays in use.
    public var lastRotationError: String?
    public init(
        id: String, resourceId: String, project: String, username: String, createdAt: Date, passwordChangedAt: Date,
        rotationInterval: String? = nil, lastRotationError: String? = nil
    ) {
        self.rotationInterval = rotationInterval
        self.lastRotationError = lastRotationError
        self.id = id
        self.resourceId = resourceId
        self.project = project
        self.username = username
        self.createdAt = createdAt
        self.passwordChangedAt = passwordChangedAt
    }
}

/// A just-in-time access request and, once approved, the grant it became.
public struct PAMGrantInfo: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable {
        case pending, approved, rejected, revoked, expired
    }
    public var id: String
    public var project: String
    public var resourceId: String
    public var resourceName: String
    public var accountId: String
    public var username: String
    /// Who asked (identity id, or the principal id of an administrator certificate) and their name.
    public var granteeId: String
    public var granteeName: String
    public var reason: String
    /// The requested duration, e.g. `2h`.
    public var duration: String
    public var status: Status
    public var requestedAt: Date
    public var decidedAt: Date?
    public var decidedBy: String?
    /// Set once approved: the grant ends then.
    public var expiresAt: Date?
    public init(
        id: String, project: String, resourceId: String, resourceName: String, accountId: String, username: String,
        granteeId: String, granteeName: String, reason: String, duration: String, status: Status, requestedAt: Date,
        decidedAt: Date? = nil, decidedBy: String? = nil, expiresAt: Date? = nil
    ) {
        self.id = id
        self.project = project
        self.resourceId = resourceId
        self.resourceName = resourceName
        self.accountId = accountId
        self.username = username
        self.granteeId = granteeId
        self.granteeName = granteeName
        self.reason = reason
        self.duration = duration
        self.status = status
        self.requestedAt = requestedAt
        self.decidedAt = decidedAt
        self.decidedBy = decidedBy
        self.expiresAt = expiresAt
    }
}

/// What the proxy gets when the engine lets a caller into a resource: where to connect and with which credential.
public struct PAMSessionTicket: Sendable, CustomStringConvertible {
    public var sessionId: String
    public var grantId: String
    public var project: String
    public var resource: PAMResourceInfo
    public var username: String
    /// The injected credential. Never logged (redacted by `SecretBytes`).
    public var password: SecretBytes
    public var expiresAt: Date
    /// The session's recording data key (its sealed form stays in the store); the proxy encrypts the recording with it.
    public var recordingKey: SecretBytes
    /// Who is connecting, for the recording's first event.
    public var granteeName: String
    public init(
        sessionId: String, grantId: String, project: String, resource: PAMResourceInfo, username: String,
        password: SecretBytes, expiresAt: Date, recordingKey: SecretBytes, granteeName: String
    ) {
        self.sessionId = sessionId
        self.grantId = grantId
        self.project = project
        self.resource = resource
        self.username = username
        self.password = password
        self.expiresAt = expiresAt
        self.recordingKey = recordingKey
        self.granteeName = granteeName
    }
    public var description: String { "PAMSessionTicket(\(sessionId), \(resource.name)/\(username))" }
}

/// Counters of a finished proxy session.
public struct PAMSessionStats: Sendable, Hashable, Codable {
    public var statements: Int
    public var bytesFromClient: Int64
    public var bytesFromServer: Int64
    /// What the recording's signed manifest states, kept by the store when the session ends: replay compares the
    /// file with it, so a removed manifest or chunk is tampering, not a crash.
    public var recordingChunks: UInt64?
    public var recordingChain: String?
    public init(
        statements: Int = 0, bytesFromClient: Int64 = 0, bytesFromServer: Int64 = 0, recordingChunks: UInt64? = nil,
        recordingChain: String? = nil
    ) {
        self.statements = statements
        self.bytesFromClient = bytesFromClient
        self.bytesFromServer = bytesFromServer
        self.recordingChunks = recordingChunks
        self.recordingChain = recordingChain
    }
}

/// Which access requests and grants a listing returns: every condition given must hold.
public struct PAMGrantQuery: Sendable, Hashable {
    /// As reported: `approved` is in force now, `expired` was approved and has ended, `pending` awaits a decision.
    public var status: PAMGrantInfo.Status?
    public var granteeName: String?
    /// The database account (username).
    public var username: String?
    /// The `next` of the previous page.
    public var after: String?
    public var limit = 100

    public init(
        status: PAMGrantInfo.Status? = nil, granteeName: String? = nil, username: String? = nil, after: String? = nil,
        limit: Int = 100
    ) {
        self.status = status
        self.granteeName = granteeName
        self.username = username
        self.after = after
        self.limit = limit
    }
}

/// A proxy session as the store remembers it.
/// Which sessions a listing returns: every condition given must hold.
public struct PAMSessionQuery: Sendable, Hashable {
    /// Started at or after.
    public var since: Date?
    /// Started before.
    public var until: Date?
    public var granteeName: String?
    public var resourceName: String?
    /// The database account (with `resourceName`, or across resources).
    public var username: String?
    /// How the session ended (`grant-revoked`, `client-closed`, …), or `open` for sessions still running.
    public var endReason: String?
    public var oldestFirst = false
    /// The `next` of the previous page.
    public var after: String?
    public var limit = 100

    public init(
        since: Date? = nil, until: Date? = nil, granteeName: String? = nil, resourceName: String? = nil,
        username: String? = nil,
        endReason: String? = nil, oldestFirst: Bool = false, after: String? = nil, limit: Int = 100
    ) {
        self.since = since
        self.until = until
        self.granteeName = granteeName
        self.resourceName = resourceName
        self.username = username
        self.endReason = endReason
        self.oldestFirst = oldestFirst
        self.after = after
        self.limit = limit
    }
}

/// Why a proxied session ended, stored and sent as its `rawValue` (the session list filters on it).
public struct PAMSessionEndReason: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let clientDisconnected = Self(rawValue: "client-disconnected")
    public static let clientTerminated = Self(rawValue: "client-terminated")
    public static let clientError = Self(rawValue: "client-error")
    public static let clientProtocolViolation = Self(rawValue: "client-protocol-violation")
    public static let messageTooLarge = Self(rawValue: "message-too-large")
    public static let upstreamClosed = Self(rawValue: "upstream-closed")
    public static let upstreamError = Self(rawValue: "upstream-error")
    public static let upstreamUnreachable = Self(rawValue: "upstream-unreachable")
    public static let upstreamLoginFailed = Self(rawValue: "upstream-login-failed")
    public static let grantExpired = Self(rawValue: "grant-expired")
    public static let grantRevoked = Self(rawValue: "grant-revoked")
    public static let recordingFailed = Self(rawValue: "recording-failed")
    /// Found open at the start of the node that ran it: that node stopped (crash or kill).
    public static let nodeCrashed = Self(rawValue: "node-crashed")
    public static let ended = Self(rawValue: "ended")

    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

public struct PAMSessionInfo: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var grantId: String
    public var resourceName: String
    public var username: String
    public var granteeId: String
    public var granteeName: String
    public var clientAddress: String?
    public var startedAt: Date
    public var endedAt: Date?
    public var endReason: PAMSessionEndReason?
    public var stats: PAMSessionStats?
    /// Set while the session is under legal hold: its recording outlives the project's retention.
    public var legalHold: PAMLegalHold?
    /// When the recording was deleted (the project's retention), and why; replay then answers 410.
    public var recordingDeletedAt: Date?
    public var recordingDeletion: String?
    public init(
        id: String, project: String, grantId: String, resourceName: String, username: String, granteeId: String,
        granteeName: String, clientAddress: String?, startedAt: Date, endedAt: Date? = nil,
        endReason: PAMSessionEndReason? = nil,
        stats: PAMSessionStats? = nil
    ) {
        self.id = id
        self.project = project
        self.grantId = grantId
        self.resourceName = resourceName
        self.username = username
        self.granteeId = granteeId
        self.granteeName = granteeName
        self.clientAddress = clientAddress
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.endReason = endReason
        self.stats = stats
    }
}

/// Who put a session under legal hold, when and why.
public struct PAMLegalHold: Sendable, Hashable, Codable {
    public var by: String
    public var at: Date
    public var reason: String
    public init(by: String, at: Date, reason: String) {
        self.by = by
        self.at = at
        self.reason = reason
    }
}

/// A project's PAM settings.
public struct PAMProjectSettings: Sendable, Hashable, Codable {
    public var project: String
    /// How long a session's recording is kept after the session ends, e.g. `365d` (`s`, `m`, `h`, `d`); nil keeps
    /// recordings for ever. Expired recordings are deleted by one node at a time, each deletion audited
    /// (`pam.recording.delete`); a session under legal hold keeps its recording.
    public var recordingRetention: String?
    public var updatedAt: Date?
    public init(project: String, recordingRetention: String? = nil, updatedAt: Date? = nil) {
        self.project = project
        self.recordingRetention = recordingRetention
        self.updatedAt = updatedAt
    }
}

/// One entry of a session recording's timeline (JSON lines inside the encrypted chunks).
///
/// `kind`: `start` (detail: who, grant, resource, account, client), `query` (text), `parse` (name, text,
/// parameterTypes), `bind` (name = portal, statement, formats, parameters: text values as UTF-8, binary ones as
/// `\x…` hex, each capped at 4 KiB), `execute` (name = portal, rows = max rows), `functionCall` (text = function
/// OID), `complete` (text = command tag, rows), `error` (sqlState, text), `copyIn` / `copyOut` (bytes), `end`
/// (text = reason).
public struct PAMRecordingEvent: Sendable, Hashable, Codable {
    /// Seconds since the session started.
    public var t: Double
    public var kind: String
    public var text: String?
    public var name: String?
    public var statement: String?
    public var sqlState: String?
    public var parameters: [String?]?
    public var parameterTypes: [Int32]?
    public var formats: [Int16]?
    public var rows: Int64?
    public var bytes: Int64?
    public var detail: [String: String]?
    public init(
        t: Double, kind: String, text: String? = nil, name: String? = nil, statement: String? = nil,
        sqlState: String? = nil,
        parameters: [String?]? = nil, parameterTypes: [Int32]? = nil, formats: [Int16]? = nil, rows: Int64? = nil,
        bytes: Int64? = nil, detail: [String: String]? = nil
    ) {
        self.t = t
        self.kind = kind
        self.text = text
        self.name = name
        self.statement = statement
        self.sqlState = sqlState
        self.parameters = parameters
        self.parameterTypes = parameterTypes
        self.formats = formats
        self.rows = rows
        self.bytes = bytes
        self.detail = detail
    }
}

/// A decrypted, checked session recording.
/// A recording's integrity without its contents (`verifyPAMRecording`).
public struct PAMRecordingVerdict: Sendable, Hashable, Codable {
    public var sessionId: String
    /// `complete`, `incomplete`, `tampered`, `missing` (the store has no recording of the session), or `deleted`
    /// (removed under the project's retention).
    public var integrity: String
    public var integrityDetail: String?
    /// The recording's size in the store.
    public var bytes: Int
    public init(sessionId: String, integrity: String, integrityDetail: String?, bytes: Int) {
        self.sessionId = sessionId
        self.integrity = integrity
        self.integrityDetail = integrityDetail
        self.bytes = bytes
    }
}

public struct PAMRecording: Sendable, Hashable, Codable {
    /// `complete` (signed manifest matches), `incomplete` (no manifest: the proxy stopped before the session
    /// ended; readable up to the last flushed chunk) or `tampered` (changed, reordered, truncated or spliced:
    /// events up to the damage are returned).
    public var integrity: String
    public var integrityDetail: String?
    public var session: PAMSessionInfo
    public var events: [PAMRecordingEvent]
    public init(integrity: String, integrityDetail: String?, session: PAMSessionInfo, events: [PAMRecordingEvent]) {
        self.integrity = integrity
        self.integrityDetail = integrityDetail
        self.session = session
        self.events = events
    }
}

/// What a live view of a recording receives at each poll (`followPAMRecording`).
public struct PAMRecordingUpdate: Sendable {
    /// The events recorded since the previous update (often none).
    public var events: [PAMRecordingEvent]
    /// The session as stored now: `endedAt` is set in the last update.
    public var session: PAMSessionInfo
    public var integrity: String
    public init(events: [PAMRecordingEvent], session: PAMSessionInfo, integrity: String) {
        self.events = events
        self.session = session
        self.integrity = integrity
    }
}

/// The updates of a live view of a recording, one per poll, pulled by the reader (no task runs between polls): ends
/// after the update that reports the session ended, and when the reading task is cancelled.
public struct PAMRecordingFollow: AsyncSequence, Sendable {
    public typealias Element = PAMRecordingUpdate
    let from: Int
    let interval: Duration
    /// The session and its events after the given count.
    let poll: @Sendable (Int) async throws -> PAMRecordingUpdate

    public init(from: Int, interval: Duration, poll: @escaping @Sendable (Int) async throws -> PAMRecordingUpdate) {
        self.from = from
        self.interval = interval
        self.poll = poll
    }

    public func makeAsyncIterator() -> Iterator { Iterator(seen: from, interval: interval, poll: poll) }

    public struct Iterator: AsyncIteratorProtocol {
        var seen: Int
        let interval: Duration
        let poll: @Sendable (Int) async throws -> PAMRecordingUpdate
        var first = true
        var ended = false

        public mutating func next() async throws -> PAMRecordingUpdate? {
            if ended { return nil }
            if first {
                first = false
            } else {
                try await Task.sleep(for: interval)
            }
            let update = try await poll(seen)
            seen += update.events.count
            ended = update.session.endedAt != nil
            return update
        }
    }
}

/// Reaches a PostgreSQL server on the engine's behalf (connection tests, credential checks). Implemented by the
/// proxy front end, which owns the wire protocol; the engine never opens sockets itself.
public protocol PAMConnector: Sendable {
    /// Connects to `target` and negotiates TLS as its mode says (a PostgreSQL server must answer the SSLRequest);
    /// throws `EngineError(.unavailable)` with the reason.
    func checkReachable(_ target: PAMTarget) async throws
    /// Connects to `target` and logs in as `username`; throws `EngineError` (`.unavailable` for network/TLS
    /// failures, `.invalidArgument` for a refused login) with a message fit for the administrator.
    func checkLogin(_ target: PAMTarget, username: String, password: SecretBytes) async throws
    /// Logs in as `username` and runs `ALTER ROLE role PASSWORD 'verifier'` with a SCRAM-SHA-256 verifier the engine
    /// computed, so no plaintext password reaches the server (or its logs).
    func setPassword(_ target: PAMTarget, username: String, password: SecretBytes, role: String, verifier: String)
        async throws
}

/// Resources, accounts, just-in-time grants and proxy sessions (part of `Engine`).
public protocol PAMEngine: Sendable {

    func createPAMResource(_ ctx: CallContext, project: String, _ spec: PAMResourceSpec) async throws -> PAMResourceInfo
    func listPAMResources(_ ctx: CallContext, project: String) async throws -> [PAMResourceInfo]
    func getPAMResource(_ ctx: CallContext, id: String) async throws -> PAMResourceInfo
    func deletePAMResource(_ ctx: CallContext, id: String) async throws
    /// Adds an account after logging in with it (a refused login is a clear `.invalidArgument`).
    func createPAMAccount(
        _ ctx: CallContext, resourceId: String, username: String, password: SecretBytes, rotationInterval: String?
    ) async throws -> PAMAccountInfo
    /// Gives the account a fresh random password: ALTER ROLE with its SCRAM verifier, a login with the new password,
    /// and only then the new credential is stored. A failure keeps the old one (restored on the server if it had
    /// changed), is recorded on the account and audited.
    func rotatePAMAccount(_ ctx: CallContext, id: String) async throws -> PAMAccountInfo
    /// Rotates every account whose interval has passed (the daemon calls this periodically); returns how many.
    func rotateDuePAMAccounts() async -> Int
    func listPAMAccounts(_ ctx: CallContext, resourceId: String) async throws -> [PAMAccountInfo]
    func deletePAMAccount(_ ctx: CallContext, id: String) async throws

    /// Asks for access to an account for `duration` (e.g. `2h`); approved at once when the caller may
    /// `auto-approve` on `pam-access`.
    func requestPAMAccess(_ ctx: CallContext, accountId: String, duration: String, reason: String) async throws
        -> PAMGrantInfo
    func approvePAMAccess(_ ctx: CallContext, grantId: String) async throws -> PAMGrantInfo
    func rejectPAMAccess(_ ctx: CallContext, grantId: String) async throws -> PAMGrantInfo
    /// Ends an approved grant early; live sessions on it are terminated by the proxy.
    func revokePAMGrant(_ ctx: CallContext, grantId: String) async throws -> PAMGrantInfo
    /// A project's access requests and grants, one page (`query.after`: the previous page's `next`): newest request
    /// first, or for `status: .approved` (grants in force now) the latest to expire first.
    func listPAMGrants(_ ctx: CallContext, project: String, _ query: PAMGrantQuery) async throws -> Page<PAMGrantInfo>
    func getPAMGrant(_ ctx: CallContext, grantId: String) async throws -> PAMGrantInfo

    /// A project's sessions matching `query`, one page in start order (newest first unless asked otherwise), read
    /// from the store's indexes: the cost follows the page, not the project's history.
    func listPAMSessions(_ ctx: CallContext, project: String, _ query: PAMSessionQuery) async throws -> Page<
        PAMSessionInfo
    >
    /// Opens a session's recording from the recording store: authorized (`pam-sessions` `read`) before anything is
    /// read, and audited; checks the signature, the chain and every chunk.
    func readPAMRecording(_ ctx: CallContext, sessionId: String) async throws -> PAMRecording
    /// A live view of a session's recording: authorized like a read and audited once (`pam.recording.follow`).
    /// The sequence polls the recording store every `interval`; each element has the events after the ones already
    /// returned (after `from` at first), and the last one comes once the session has ended. Every poll is authorized
    /// again, so a viewer whose permission is withdrawn stops receiving.
    func followPAMRecording(_ ctx: CallContext, sessionId: String, from: Int, interval: Duration) async throws
        -> PAMRecordingFollow
    /// Checks a session's recording in the store (signature, chain, every chunk, and the manifest against what was
    /// kept when the session ended) without returning its events: authorized like a read, audited.
    func verifyPAMRecording(_ ctx: CallContext, sessionId: String) async throws -> PAMRecordingVerdict

    func getPAMSettings(_ ctx: CallContext, project: String) async throws -> PAMProjectSettings
    /// Replaces a project's PAM settings (`project` `edit`), audited as `pam.settings.update`.
    func setPAMSettings(_ ctx: CallContext, _ settings: PAMProjectSettings) async throws -> PAMProjectSettings
    /// Puts a session under legal hold (`reason` set) or releases it (nil): `pam-sessions` `edit`, audited.
    func setPAMLegalHold(_ ctx: CallContext, sessionId: String, reason: String?) async throws -> PAMSessionInfo
    /// Deletes the recordings that have outlived their project's retention (the daemon calls this periodically);
    /// returns how many it deleted.
    func deleteExpiredPAMRecordings() async -> Int
}

/// What the PostgreSQL proxy calls for one session: admission, the grant's deadline, the manifest signature and the
/// end (part of `Engine`).
public protocol PAMSessionEngine: Sendable {
    /// Lets the caller into `resource` (by name) as `username` if it holds an approved, unexpired grant; records
    /// the session start and returns where to connect with which credential.
    func openPAMSession(_ ctx: CallContext, resource: String, username: String) async throws -> PAMSessionTicket
    /// The grant's current end, or nil when it no longer allows the session (revoked, expired, deleted).
    func pamSessionDeadline(sessionId: String, grantId: String) async -> Date?
    /// Returns when the grant was revoked through this node, or after `timeout`: live sessions end at once on a
    /// local revocation and poll `pamSessionDeadline` for the other nodes'.
    func waitForPAMGrantChange(grantId: String, timeout: Duration) async
    /// Records the end of a session.
    func closePAMSession(_ ctx: CallContext, sessionId: String, reason: PAMSessionEndReason, stats: PAMSessionStats)
        async
    /// Signs a recording's manifest (the bytes `RecordingFormat.signedManifestBytes` makes) with the appliance's
    /// recording key, for a session that exists.
    func signPAMRecordingManifest(sessionId: String, _ bytes: [UInt8]) async throws -> [UInt8]
}
