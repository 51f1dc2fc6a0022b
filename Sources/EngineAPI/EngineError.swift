import Foundation

/// The one error type the engine throws. Front ends map `code` to their protocol's error (KMIP result reason,
/// ACME problem type, HTTP status, SQLSTATE); `diagnostic` is for logs only and never reaches a peer.
public struct EngineError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A growable set of error categories.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// The caller is not authenticated.
        public static let unauthenticated = Code(rawValue: "unauthenticated")
        /// The caller is authenticated but not allowed.
        public static let permissionDenied = Code(rawValue: "permission_denied")
        /// No such object (or the caller may not know it exists).
        public static let notFound = Code(rawValue: "not_found")
        /// An object with that name already exists.
        public static let alreadyExists = Code(rawValue: "already_exists")
        /// The request is malformed or violates a limit.
        public static let invalidArgument = Code(rawValue: "invalid_argument")
        /// A concurrent change won; re-read and retry.
        public static let conflict = Code(rawValue: "conflict")
        /// The object is in a state that does not allow the operation.
        public static let wrongState = Code(rawValue: "wrong_state")
        /// The object's lifecycle dates do not allow this use now: before its Process Start Date, or past its Protect
        /// Stop Date (KMIP §3.25–3.26).
        public static let outsideUseWindow = Code(rawValue: "outside_use_window")
        /// A cryptographic operation failed (bad tag, wrong key).
        public static let cryptographicFailure = Code(rawValue: "cryptographic_failure")
        /// Storage or another dependency is unavailable; retry later.
        public static let unavailable = Code(rawValue: "unavailable")
        /// The request is valid but asks for something this server does not implement (mode, algorithm).
        public static let featureNotSupported = Code(rawValue: "feature_not_supported")
        /// The object's material may leave the server only wrapped by another key (KMIP Sensitive).
        public static let sensitive = Code(rawValue: "sensitive")
        /// The object's material may not leave the server at all (KMIP Extractable false).
        public static let notExtractable = Code(rawValue: "not_extractable")
        /// Too many failed attempts: the identity is locked out for a while.
        public static let locked = Code(rawValue: "locked")
        /// It existed and was deleted on purpose (a recording past its project's retention).
        public static let gone = Code(rawValue: "gone")
        /// A bug or an unexpected condition.
        public static let `internal` = Code(rawValue: "internal")

        /// Every code declared above: each front end's mapping is tested against this list, so a new code cannot
        /// fall through to a default unnoticed.
        public static let all: [Code] = [
            .unauthenticated, .permissionDenied, .notFound, .alreadyExists, .invalidArgument, .conflict, .wrongState,
            .outsideUseWindow, .cryptographicFailure, .unavailable, .featureNotSupported, .sensitive, .notExtractable,
            .locked, .gone,
            .internal,
        ]

        public var description: String { rawValue }
    }

    /// The category.
    public var code: Code
    /// A short message safe to show to the peer.
    public var message: String
    /// Details for the logs.
    public var diagnostic: String
    /// Per-item errors of a request about several items (ACME identifiers, RFC 8555 §6.7.1), safe to show.
    public var subproblems: [Subproblem]
    /// Seconds after which the same request may succeed (rate limits): front ends send it as `Retry-After`.
    public var retryAfter: Int?
    /// The ACME problem type, when the engine refused an ACME request for a reason ACME names (`EngineError.acme`).
    public var acmeProblem: ACMEProblemType?

    /// One item's error: its category, message and the item (`type`, `value`), e.g. an identifier.
    public struct Subproblem: Sendable, Hashable {
        public var code: Code
        public var message: String
        public var itemType: String
        public var itemValue: String
        /// The ACME problem type of this item, if ACME names it.
        public var acmeProblem: ACMEProblemType?
        public init(_ code: Code, _ message: String, itemType: String, itemValue: String) {
            self.code = code
            self.message = message
            self.itemType = itemType
            self.itemValue = itemValue
        }
    }

    /// Creates an error.
    public init(
        _ code: Code, _ message: String, diagnostic: String = "", subproblems: [Subproblem] = [], retryAfter: Int? = nil
    ) {
        self.code = code
        self.message = message
        self.diagnostic = diagnostic
        self.subproblems = subproblems
        self.retryAfter = retryAfter
    }

    public var description: String {
        diagnostic.isEmpty ? "\(code): \(message)" : "\(code): \(message) [\(diagnostic)]"
    }
}
