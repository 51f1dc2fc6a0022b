/// What the access proxy makes of a client's StartupMessage: `user` names the **account** on the resource and
/// `database` names the **resource** (the proxy then logs in upstream as that account, to the resource's own
/// database); a few session parameters pass through, everything else is refused with a reason. Replication
/// connections are refused: they bypass statement recording.
public struct PGStartupRequest: Sendable, Hashable {
    public var account: String
    public var resource: String
    /// Parameters forwarded to the upstream StartupMessage, in the client's order.
    public var passthrough: [String: String]
    public var passthroughOrder: [String]

    /// Session parameters a client may set at start-up (libpq, psycopg, JDBC and pgbench send these).
    public static let allowed: Set<String> = [
        "application_name", "client_encoding", "DateStyle", "datestyle", "TimeZone", "timezone", "extra_float_digits",
        "IntervalStyle", "intervalstyle", "search_path", "standard_conforming_strings", "statement_timeout",
        "lock_timeout", "idle_in_transaction_session_timeout", "bytea_output", "geqo",
    ]

    public enum Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        case missing(String)
        case replication
        case parameter(String)
        case options

        /// SQLSTATE for the ErrorResponse the proxy sends.
        public var sqlState: String {
            switch self {
            case .missing: return "28000"  // invalid_authorization_specification
            case .replication, .parameter, .options: return "0A000"  // feature_not_supported
            }
        }

        public var description: String {
            switch self {
            case .missing(let p): return "the start-up packet has no \(p) (use user=<account> dbname=<resource>)"
            case .replication: return "replication connections are not allowed through the access proxy"
            case .parameter(let p): return "start-up parameter \"\(p)\" is not allowed through the access proxy"
            case .options:
                return "command-line options (the \"options\" parameter) are not allowed through the access proxy"
            }
        }
    }

    /// Applies the convention to a decoded StartupMessage's parameters.
    public init(parameters: [(String, String)]) throws(Refusal) {
        var account: String?
        var resource: String?
        var passthrough: [String: String] = [:]
        var order: [String] = []
        for (name, value) in parameters {
            switch name {
            case "user": account = value
            case "database": resource = value
            case "replication":
                // "false"/"off"/"0"/"no" is an ordinary session (libpq sends no parameter at all then).
                if !["false", "off", "0", "no"].contains(value.lowercased()) { throw .replication }
            case "options":
                // `-c name=value` could set anything (e.g. session_replication_role); an empty value is harmless.
                if !value.allSatisfy(\.isWhitespace) { throw .options }
            default:
                guard Self.allowed.contains(name) else { throw .parameter(name) }
                passthrough[name] = value
                order.append(name)
            }
        }
        guard let account, !account.isEmpty else { throw .missing("user") }
        // libpq defaults the database to the user name when dbname is absent; the proxy wants it explicit.
        guard let resource, !resource.isEmpty else { throw .missing("database") }
        self.account = account
        self.resource = resource
        self.passthrough = passthrough
        self.passthroughOrder = order
    }

    /// Upstream start-up parameters: the account's real role and database, then the allowed client parameters.
    public func upstreamParameters(role: String, database: String) -> [(String, String)] {
        [("user", role), ("database", database)]
            + passthroughOrder.compactMap { name in passthrough[name].map { (name, $0) } }
    }
}

/// CancelRequest mapping (§55.2.7): clients only ever see keys the proxy issued; a cancel is forwarded to the upstream
/// backend only when both the process id and the secret match, compared in constant time.
public struct PGCancelKeys: Sendable {
    public struct Upstream: Sendable, Hashable {
        public var processID: Int32
        public var secretKey: Int32
        public var session: String
        public init(processID: Int32, secretKey: Int32, session: String) {
            self.processID = processID
            self.secretKey = secretKey
            self.session = session
        }
    }

    private var entries: [Int32: (secret: Int32, upstream: Upstream)] = [:]

    public init() {}

    public var count: Int { entries.count }

    /// Issues a fresh (process id, secret) pair for a session's upstream backend key.
    public mutating func issue(for upstream: Upstream) -> (processID: Int32, secretKey: Int32) {
        var rng = SystemRandomNumberGenerator()
        var pid: Int32
        repeat { pid = Int32.random(in: 1...Int32.max, using: &rng) } while entries[pid] != nil
        let secret = Int32(bitPattern: UInt32.random(in: .min ... .max, using: &rng))
        entries[pid] = (secret, upstream)
        return (pid, secret)
    }

    /// The upstream backend a cancel request names, or nil (unknown id or wrong secret: PostgreSQL answers neither).
    public func resolve(processID: Int32, secretKey: Int32) -> Upstream? {
        guard let entry = entries[processID] else { return nil }
        // One XOR and one comparison of the whole word: no early exit on the first differing byte.
        return entry.secret ^ secretKey == 0 ? entry.upstream : nil
    }

    /// Forgets a session's key when it ends.
    public mutating func remove(processID: Int32) { entries[processID] = nil }
}
