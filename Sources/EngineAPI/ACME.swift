import Foundation

/// New orders allowed per hour (0: no limit).
public struct ACMERateLimits: Sendable, Hashable {
    public var ordersPerAccountPerHour: Int
    public var ordersPerIdentifierPerHour: Int
    public init(ordersPerAccountPerHour: Int, ordersPerIdentifierPerHour: Int) {
        self.ordersPerAccountPerHour = ordersPerAccountPerHour
        self.ordersPerIdentifierPerHour = ordersPerIdentifierPerHour
    }
    public static let none = ACMERateLimits(ordersPerAccountPerHour: 0, ordersPerIdentifierPerHour: 0)
}

/// An ACME identifier (`dns` or `ip`, RFC 8555 §9.7.7 and RFC 8738).
public struct ACMEIdentifier: Sendable, Hashable, Codable {
    public var type: String
    public var value: String
    public init(type: String, value: String) {
        self.type = type
        self.value = value
    }
}

/// An ACME problem type (RFC 8555 §6.7 and its extensions): what the ACME front end sends as
/// `urn:ietf:params:acme:error:<rawValue>`, with the HTTP status it goes with. The engine attaches one to an
/// `EngineError` (whose `code` stays the category other front ends map); a new type is a new static member.
public struct ACMEProblemType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let accountDoesNotExist = Self(rawValue: "accountDoesNotExist")
    public static let alreadyReplaced = Self(rawValue: "alreadyReplaced")
    public static let alreadyRevoked = Self(rawValue: "alreadyRevoked")
    public static let badCSR = Self(rawValue: "badCSR")
    public static let badNonce = Self(rawValue: "badNonce")
    public static let badRevocationReason = Self(rawValue: "badRevocationReason")
    public static let badSignatureAlgorithm = Self(rawValue: "badSignatureAlgorithm")
    public static let caa = Self(rawValue: "caa")
    public static let connection = Self(rawValue: "connection")
    public static let dns = Self(rawValue: "dns")
    public static let externalAccountRequired = Self(rawValue: "externalAccountRequired")
    public static let incorrectResponse = Self(rawValue: "incorrectResponse")
    public static let invalidContact = Self(rawValue: "invalidContact")
    public static let invalidProfile = Self(rawValue: "invalidProfile")
    public static let malformed = Self(rawValue: "malformed")
    public static let orderNotReady = Self(rawValue: "orderNotReady")
    public static let rateLimited = Self(rawValue: "rateLimited")
    public static let rejectedIdentifier = Self(rawValue: "rejectedIdentifier")
    public static let serverInternal = Self(rawValue: "serverInternal")
    public static let tls = Self(rawValue: "tls")
    public static let unauthorized = Self(rawValue: "unauthorized")
    public static let unsupportedContact = Self(rawValue: "unsupportedContact")
    public static let unsupportedIdentifier = Self(rawValue: "unsupportedIdentifier")
    public static let userActionRequired = Self(rawValue: "userActionRequired")

    /// Every type declared above (tests check each has a status and a category).
    public static let all: [Self] = [
        .accountDoesNotExist, .alreadyReplaced, .alreadyRevoked, .badCSR, .badNonce, .badRevocationReason,
        .badSignatureAlgorithm, .caa, .connection, .dns, .externalAccountRequired, .incorrectResponse, .invalidContact,
        .invalidProfile, .malformed, .orderNotReady, .rateLimited, .rejectedIdentifier, .serverInternal, .tls,
        .unauthorized,
        .unsupportedContact, .unsupportedIdentifier, .userActionRequired,
    ]

    /// The full URN.
    public var urn: String { "urn:ietf:params:acme:error:" + rawValue }
    public var description: String { rawValue }

    /// The HTTP status of a response carrying this problem.
    public var status: Int {
        switch self {
        case .unauthorized, .orderNotReady, .userActionRequired: return 403
        case .alreadyReplaced: return 409
        case .rateLimited: return 429
        case .serverInternal: return 500
        default: return 400
        }
    }

    /// The engine's category for it, which front ends other than ACME map.
    public var category: EngineError.Code {
        switch self {
        case .unauthorized, .userActionRequired: return .permissionDenied
        case .accountDoesNotExist: return .notFound
        case .rateLimited: return .locked
        case .orderNotReady: return .wrongState
        case .alreadyReplaced, .alreadyRevoked: return .conflict
        case .serverInternal: return .internal
        case .connection, .dns, .tls, .caa, .incorrectResponse: return .unavailable
        default: return .invalidArgument
        }
    }
}

extension EngineError {
    /// An error whose ACME answer is `type` (its category for other front ends is the type's `category`).
    public static func acme(
        _ type: ACMEProblemType, _ message: String, subproblems: [Subproblem] = [], retryAfter: Int? = nil
    ) -> EngineError {
        var e = EngineError(type.category, message, subproblems: subproblems, retryAfter: retryAfter)
        e.acmeProblem = type
        return e
    }
}

extension EngineError.Subproblem {
    /// A per-identifier ACME problem.
    public static func acme(_ type: ACMEProblemType, _ message: String, itemType: String, itemValue: String) -> Self {
        var s = Self(type.category, message, itemType: itemType, itemValue: itemValue)
        s.acmeProblem = type
        return s
    }
}

/// The state of an ACME account, order, authorization or challenge (RFC 8555 §7.1.6), stored and sent as its
/// `rawValue`.
public struct ACMEStatus: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let pending = Self(rawValue: "pending")
    public static let processing = Self(rawValue: "processing")
    public static let ready = Self(rawValue: "ready")
    public static let valid = Self(rawValue: "valid")
    public static let invalid = Self(rawValue: "invalid")
    public static let deactivated = Self(rawValue: "deactivated")
    public static let revoked = Self(rawValue: "revoked")
    public static let expired = Self(rawValue: "expired")

    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// An ACME error as stored on a challenge, authorization or order (`type` is the full URN).
public struct ACMEError: Sendable, Hashable, Codable {
    public var type: String
    public var detail: String
    public init(type: String, detail: String) {
        self.type = type
        self.detail = detail
    }
}

public struct ACMEAccountInfo: Sendable, Hashable, Codable {
    public var id: String
    public var profileId: String
    /// `valid`, `deactivated` or `revoked`.
    public var status: ACMEStatus
    public var contact: [String]
    public var thumbprint: String
    /// The account key as RFC 7638 canonical JWK JSON.
    public var jwk: String
    public var eabKeyId: String?
    public var createdAt: Date
    public init(
        id: String, profileId: String, status: ACMEStatus, contact: [String], thumbprint: String, jwk: String,
        eabKeyId: String?,
        createdAt: Date
    ) {
        self.id = id
        self.profileId = profileId
        self.status = status
        self.contact = contact
        self.thumbprint = thumbprint
        self.jwk = jwk
        self.eabKeyId = eabKeyId
        self.createdAt = createdAt
    }
}

public struct ACMEChallengeInfo: Sendable, Hashable, Codable {
    public var id: String
    public var type: String
    public var token: String
    /// `pending`, `processing`, `valid`, `invalid`.
    public var status: ACMEStatus
    public var validated: Date?
    public var error: ACMEError?
    public init(
        id: String, type: String, token: String, status: ACMEStatus, validated: Date? = nil, error: ACMEError? = nil
    ) {
        self.id = id
        self.type = type
        self.token = token
        self.status = status
        self.validated = validated
        self.error = error
    }
}

public struct ACMEAuthorizationInfo: Sendable, Hashable, Codable {
    public var id: String
    public var orderId: String
    public var accountId: String
    public var identifier: ACMEIdentifier
    /// `pending`, `valid`, `invalid`, `deactivated`, `expired`, `revoked`.
    public var status: ACMEStatus
    public var expires: Date
    public var wildcard: Bool
    public var challenges: [ACMEChallengeInfo]
    public init(
        id: String, orderId: String, accountId: String, identifier: ACMEIdentifier, status: ACMEStatus, expires: Date,
        wildcard: Bool, challenges: [ACMEChallengeInfo]
    ) {
        self.id = id
        self.orderId = orderId
        self.accountId = accountId
        self.identifier = identifier
        self.status = status
        self.expires = expires
        self.wildcard = wildcard
        self.challenges = challenges
    }
}

public struct ACMEOrderInfo: Sendable, Hashable, Codable {
    public var id: String
    public var accountId: String
    public var profileId: String
    /// `pending`, `ready`, `processing`, `valid`, `invalid`.
    public var status: ACMEStatus
    public var expires: Date
    public var identifiers: [ACMEIdentifier]
    public var notBefore: Date?
    public var notAfter: Date?
    public var authorizations: [String]
    public var certificateSerial: String?
    public var error: ACMEError?
    /// The ARI certID of the certificate this order replaces (RFC 9773 §5).
    public var replaces: String?
    /// The profile the client chose in newOrder (its slug), when it chose one (draft-ietf-acme-profiles).
    public var profile: String?
    public init(
        id: String, accountId: String, profileId: String, status: ACMEStatus, expires: Date,
        identifiers: [ACMEIdentifier],
        notBefore: Date?, notAfter: Date?, authorizations: [String], certificateSerial: String?, error: ACMEError?,
        replaces: String? = nil, profile: String? = nil
    ) {
        self.replaces = replaces
        self.profile = profile
        self.id = id
        self.accountId = accountId
        self.profileId = profileId
        self.status = status
        self.expires = expires
        self.identifiers = identifiers
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.authorizations = authorizations
        self.certificateSerial = certificateSerial
        self.error = error
    }
}

/// What a challenge validator must check.
public struct ACMEValidationTask: Sendable, Hashable, Codable {
    public var challenge: ACMEChallengeInfo
    public var identifier: ACMEIdentifier
    public var keyAuthorization: String
    public init(challenge: ACMEChallengeInfo, identifier: ACMEIdentifier, keyAuthorization: String) {
        self.challenge = challenge
        self.identifier = identifier
        self.keyAuthorization = keyAuthorization
    }
}

/// ACME (RFC 8555) state behind the ACME front end. The front end parses and verifies each JWS (with the account
/// key this API returns) and calls with a principal of method `.acmeAccount` whose id is the account id; the engine
/// checks ownership, states and the profile's template, and audits. Errors: `EngineError` carrying an
/// `acmeProblem` (`.badCSR`, `.orderNotReady`, …) for ACME-specific problems.
public protocol ACMEEngine: Sendable {
    /// The ACME profile by id or slug (must use ACME enrollment).
    func acmeProfile(_ ctx: CallContext, profile: String) async throws -> ProfileInfo
    /// The profiles a directory offers (its `meta.profiles`, draft-ietf-acme-profiles): its own first, then the
    /// other ACME profiles of its project that issue from the same CA. newOrder may name any of them.
    func acmeDirectoryProfiles(_ ctx: CallContext, profile: String) async throws -> [ProfileInfo]
    /// A fresh nonce, valid once on any node sharing the store.
    func acmeNewNonce() async throws -> String
    /// Consumes a nonce; false when unknown, expired or already used.
    func acmeConsumeNonce(_ nonce: String) async throws -> Bool
    /// The account for a `kid` (its key verifies the JWS).
    func acmeAccount(profileId: String, accountId: String) async throws -> ACMEAccountInfo
    /// Finds or creates the account of a key. `eab` is the inner JWS's (kid, alg, signing input, MAC).
    func acmeNewAccount(
        _ ctx: CallContext, profileId: String, jwk: String, thumbprint: String, contact: [String], termsAgreed: Bool,
        onlyReturnExisting: Bool, eab: (kid: String, alg: String, signingInput: [UInt8], mac: [UInt8])?
    ) async throws -> (ACMEAccountInfo, created: Bool)
    func acmeUpdateAccount(_ ctx: CallContext, accountId: String, contact: [String]?, deactivate: Bool) async throws
        -> ACMEAccountInfo
    /// `replaces`: (certID text, its authority key id, its serial) of a certificate of this account (RFC 9773 §5).
    /// `limits`: new orders per hour per account and per identifier, counted in the store (so every node of a
    /// shared store counts the same orders); over a limit the order is refused with `.rateLimited` and
    /// `retryAfter`.
    func acmeNewOrder(
        _ ctx: CallContext, accountId: String, identifiers: [ACMEIdentifier], notBefore: Date?, notAfter: Date?,
        replaces: (certID: String, authorityKeyId: [UInt8], serial: [UInt8])?, profile: String?, limits: ACMERateLimits
    ) async throws -> ACMEOrderInfo
    func acmeOrder(_ ctx: CallContext, accountId: String, orderId: String) async throws -> ACMEOrderInfo
    /// An account's orders (ids), `limit` at a time after the cursor `after`.
    func acmeOrders(_ ctx: CallContext, accountId: String, after: String?, limit: Int) async throws -> Page<String>
    func acmeAuthorization(_ ctx: CallContext, accountId: String, authorizationId: String) async throws
        -> ACMEAuthorizationInfo
    /// Deactivates a `pending` or `valid` authorization of the account (RFC 8555 §7.5.2): it becomes `deactivated`,
    /// is never reused by a later order, and the orders still waiting on it (pending or ready) become `invalid`.
    func acmeDeactivateAuthorization(_ ctx: CallContext, accountId: String, authorizationId: String) async throws
        -> ACMEAuthorizationInfo
    /// The client asks for validation: the challenge becomes `processing` and a validation is recorded in the store,
    /// claimed by the caller's validator for `lease` seconds; the returned task is for that validator. If no verdict
    /// comes within the lease (the node stopped), `acmeClaimValidations` hands the task to another validator.
    func acmeRespondChallenge(_ ctx: CallContext, accountId: String, challengeId: String, lease: TimeInterval)
        async throws
        -> (ACMEChallengeInfo, ACMEAuthorizationInfo, ACMEValidationTask?)
    /// Validations whose claim has lapsed (their validator stopped, or had no room), up to `limit`, each claimed for
    /// the caller for `lease` seconds; validations of authorizations that expired meanwhile are failed instead.
    /// System callers only. Costs what is pending, not the history.
    func acmeClaimValidations(_ ctx: CallContext, lease: TimeInterval, limit: Int) async throws -> [ACMEValidationTask]
    /// A validator's verdict (system callers): the challenge, its authorization and order move on (§7.1.6), and the
    /// validation is no longer pending.
    func acmeCompleteValidation(_ ctx: CallContext, challengeId: String, error: ACMEError?) async throws
    func acmeFinalize(_ ctx: CallContext, accountId: String, orderId: String, csr: [UInt8]) async throws
        -> ACMEOrderInfo
    /// The certificate chain (DER, leaf first) of an order of this account.
    func acmeCertificate(_ ctx: CallContext, accountId: String, serial: String) async throws -> [[UInt8]]
    /// Revokes a certificate, as its account (`accountId`) or as the holder of its key (`accountId` nil: the front
    /// end verified the JWS with the certificate's key).
    func acmeRevoke(_ ctx: CallContext, profileId: String, accountId: String?, certificate: [UInt8], reason: Int)
        async throws
    /// Rolls the account over to a new key (RFC 8555 §7.3.5; the front end verified both signatures). Fails with
    /// `acme:conflict`-style `alreadyExists` when another account of the profile holds that key.
    func acmeChangeKey(
        _ ctx: CallContext, accountId: String, oldThumbprint: String, newJWK: String, newThumbprint: String
    ) async throws
        -> ACMEAccountInfo
    /// ACME Renewal Information (RFC 9773) for a certificate of this profile: the suggested renewal window.
    func acmeRenewalInfo(profileId: String, authorityKeyId: [UInt8], serial: [UInt8]) async throws -> (
        start: Date, end: Date
    )
}
