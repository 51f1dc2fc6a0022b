import Foundation

/// Who is calling: the result of a front end authenticating its peer. The engine decides what it may do.
public struct Principal: Sendable, Hashable, CustomStringConvertible {
    /// The `authMethod` attribute of a principal authenticated with a browser session token
    /// (`Authenticator.startSession`).
    public static let sessionAuthMethod = "session"

    /// How the peer proved its identity.
    public enum Method: String, Sendable, Hashable, Codable {
        /// A TLS client certificate verified against the listener's client-CA chain.
        case tlsCertificate
        /// A bearer token (issued by the identity subsystem).
        case token
        /// The daemon itself or a local operator command (`gatehouse audit verify`, schedulers).
        case system
        /// An ACME account whose key signed the request (the front end verified the JWS).
        case acmeAccount
        /// No credentials.
        case anonymous
    }

    /// How the peer authenticated.
    public var method: Method
    /// Stable identifier: for certificates the SHA-256 fingerprint of the leaf; for tokens the identity id.
    public var id: String
    /// Human name: certificate subject common name, identity name.
    public var name: String
    /// Extra facts for policy conditions and audit (`issuer`, `serial`, `notAfter`, …).
    public var attributes: [String: String]
    /// For certificate principals: the DER certificates the peer presented, leaf first. The engine checks them
    /// against identities' TLS Certificate Auth CAs. Not audited.
    public var certificateChain: [[UInt8]]
    /// For certificate principals: whether the listener verified the chain against its own client CA (the
    /// bootstrap administrators' CA).
    public var verifiedByListener: Bool

    /// Creates a principal.
    public init(
        method: Method, id: String, name: String, attributes: [String: String] = [:], certificateChain: [[UInt8]] = [],
        verifiedByListener: Bool = false
    ) {
        self.method = method
        self.id = id
        self.name = name
        self.attributes = attributes
        self.certificateChain = certificateChain
        self.verifiedByListener = verifiedByListener
    }

    /// The daemon acting on its own behalf.
    public static let system = Principal(method: .system, id: "system", name: "gatehouse")
    /// A peer that presented no credentials.
    public static let anonymous = Principal(method: .anonymous, id: "anonymous", name: "anonymous")

    public var description: String { "\(method.rawValue):\(name)" }
}

/// Everything the engine needs to know about one call besides its arguments.
public struct CallContext: Sendable {
    /// The authenticated caller.
    public var principal: Principal
    /// Which front end made the call: `kmip`, `est`, `acme`, `admin-api`, `cli`, `pg-proxy`, `ssh`.
    public var frontEnd: String
    /// Correlates log lines and audit events of one request.
    public var requestID: String
    /// The peer's address, if there is one.
    public var ipAddress: String?
    /// The peer's user agent, if the protocol has one.
    public var userAgent: String?

    /// Creates a context.
    public init(
        principal: Principal, frontEnd: String, requestID: String = RandomUUID.string(), ipAddress: String? = nil,
        userAgent: String? = nil
    ) {
        self.principal = principal
        self.frontEnd = frontEnd
        self.requestID = requestID
        self.ipAddress = ipAddress
        self.userAgent = userAgent
    }

    /// A context for the daemon's own operations.
    public static func system(_ frontEnd: String = "system") -> CallContext {
        CallContext(principal: .system, frontEnd: frontEnd)
    }
}
