import ACMEProtocol
import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Synchronization
import X509

struct ACMEAccountBody: Codable { var info: ACMEAccountInfo }
struct ACMEOrderBody: Codable { var info: ACMEOrderInfo }
struct ACMEAuthzBody: Codable { var info: ACMEAuthorizationInfo }

enum ACMEKind {
    static let account = "acme-account"
    static let order = "acme-order"
    static let authz = "acme-authz"
    static let usedNonce = "acme-nonce-used"
    /// New-order counters per account or identifier and hour: id = window start (13-digit milliseconds) "-"
    /// SHA-256 of the key, body = the count.
    static let rate = "acme-rate"
    /// Which account a certificate was issued to: id = serial, scope = account id.
    static let certificateOwner = "acme-cert-owner"
    /// Certificates an order has declared it replaces (RFC 9773): id = serial, body = the order id.
    static let replaced = "acme-replaced"
    /// The latest valid authorization of an account for an identifier, for reuse by later orders:
    /// id = account id, identifier type, value and wildcard flag; body = the authorization id.
    static let validAuthz = "acme-authz-valid"
    /// A challenge being validated: id = challenge id, scope = `pending`, body = the task and who holds it until when.
    /// Deleted with the verdict, so listing them costs what is in flight.
    static let validation = "acme-validation"
}

/// A pending validation: the task, and until when a validator holds it.
struct ACMEValidationBody: Codable {
    var task: ACMEValidationTask
    var claimUntil: Date
    var claims: Int
}

/// ACME (RFC 8555) state: accounts per profile, orders, authorizations and challenges, nonces. Certificates are
/// issued through the profile's template and CA like every other enrollment.
/// ACME (RFC 8555): accounts, orders, authorizations, challenges, finalization and revocation for the ACME
/// directories (profiles with `enrollment: acme`). Certificates come from the PKI domain through `CertificateIssuing`.
final class ACMEService: EngineService {
    let core: EngineCore
    let issuer: any CertificateIssuing
    /// Seals ACME nonces (derived once from the audit key).
    let nonceKey: SymmetricKey
    /// ACME accounts by id, reused for two seconds by JWS verification.
    let acmeAccounts = Mutex<[String: (info: ACMEAccountInfo, until: Date)]>([:])

    init(core: EngineCore, issuer: any CertificateIssuing) {
        self.core = core
        self.issuer = issuer
        self.nonceKey = Self.nonceKey(core.audit.key)
    }
}

extension ACMEService {
    static let nonceLifetime: TimeInterval = 600
    static let orderLifetime: TimeInterval = 7 * 86400
    /// A valid authorization is reused by new orders of the same account for the same identifier while it has at
    /// least this long to live (RFC 8555 §7.1.3 lets servers reuse; renewals then need no new validation).
    static let authzReuseMargin: TimeInterval = 3600

    static func validAuthzKey(_ accountId: String, _ identifier: ACMEIdentifier, wildcard: Bool) -> String {
        "\(accountId)|\(identifier.type)|\(identifier.value.lowercased())|\(wildcard ? "*" : "")"
    }

    static func acme(_ type: ACMEProblemType, _ message: String) -> EngineError { .acme(type, message) }

    /// `rejectedIdentifier` naming each refused identifier in a subproblem (the top-level detail repeats a lone one).
    static func rejected(_ subproblems: [EngineError.Subproblem], of total: Int) -> EngineError {
        let detail =
            subproblems.count == 1 && total == 1
            ? subproblems[0].message
            : "\(subproblems.count) of \(total) identifiers were rejected: "
                + subproblems.map(\.message).joined(separator: "; ")
        let type: ACMEProblemType =
            subproblems.allSatisfy { $0.acmeProblem == .unsupportedIdentifier }
            ? .unsupportedIdentifier : .rejectedIdentifier
        return .acme(type, detail, subproblems: subproblems)
    }

    /// The key ACME nonces are sealed with, derived from the audit key (shared by every node of a store).
    static func nonceKey(_ auditKey: SymmetricKey) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: auditKey, info: Array("gatehouse acme nonce v1".utf8), outputByteCount: 32)
    }

    static func b64url(_ data: some Sequence<UInt8>) -> String { Base64URL.encode(data) }

    static func unb64url(_ s: String) -> [UInt8]? { Base64URL.decode(s) }

    // MARK: Profiles and EAB

    public func acmeProfile(_ ctx: CallContext, profile: String) async throws -> ProfileInfo {
        let body = try await issuer.recentProfile(profile)
        guard body.info.enrollment == .acme, body.info.caId != nil else {
            throw EngineError(.notFound, "no ACME profile '\(profile)'")
        }
        return body.info
    }

    public func acmeDirectoryProfiles(_ ctx: CallContext, profile: String) async throws -> [ProfileInfo] {
        let own = try await acmeProfile(ctx, profile: profile)
        let siblings = try await read { tx in
            try await tx.listEvery(kind: PKIKind.profile, scope: AccessKind.org).compactMap {
                r -> ProfileInfo? in
                let info = try self.cachedDecode(ProfileBody.self, r).info
                return info.id != own.id && Self.sameDirectory(info, own) ? info : nil
            }
        }
        return [own] + siblings.sorted { $0.slug < $1.slug }
    }

    /// Whether two profiles are offered by one ACME directory: both ACME, same project, same issuing CA.
    static func sameDirectory(_ a: ProfileInfo, _ b: ProfileInfo) -> Bool {
        a.id == b.id
            || (a.enrollment == .acme && b.enrollment == .acme && a.project == b.project && a.caId != nil
                && a.caId == b.caId)
    }

    /// Whether a certificate issued under `certificateProfile` belongs to the directory of `directoryProfile`.
    func issuedByDirectory(_ certificateProfile: String?, _ directoryProfile: String) async throws -> Bool {
        guard let certificateProfile else { return false }
        if certificateProfile == directoryProfile { return true }
        return try await read { tx in
            guard let a = try? await self.issuer.loadProfile(certificateProfile, tx).1.info,
                let b = try? await self.issuer.loadProfile(directoryProfile, tx).1.info
            else { return false }
            return Self.sameDirectory(a, b)
        }
    }

    public func acmeEABCredentials(_ ctx: CallContext, profile: String) async throws -> (keyId: String, hmacKey: String)
    {
        let (_, body) = try await read { tx in try await self.issuer.loadProfile(profile, tx) }
        let decision = try await authorize(ctx, AccessRequest(.project(body.info.project), .certificateProfiles, .edit))
        guard let kid = body.eabKeyId, let sealed = body.eabSealedKey else {
            throw EngineError(.wrongState, "profile '\(profile)' has no external account binding (not an ACME profile)")
        }
        return try await transact { tx in
            let key = try await self.keyring.open(sealed, binding: "pki-profile/\(body.info.id)/eab", tx)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pki.profile.acme-eab.read", project: body.info.project, ["profileId": body.info.id]),
                tx)
            return (kid, Self.b64url(key))
        }
    }

    // MARK: Nonces

    public func acmeNewNonce() async throws -> String {
        var plain = withUnsafeBytes(of: UInt64(clock().timeIntervalSince1970 * 1000).bigEndian) { Array($0) }
        plain += RandomBytes.make(8)
        guard let sealed = try? AES.GCM.seal(plain, using: nonceKey).combined else {
            throw EngineError(.internal, "cannot make a nonce")
        }
        return Self.b64url(sealed)
    }

    public func acmeConsumeNonce(_ nonce: String) async throws -> Bool {
        guard nonce.utf8.count <= 128, let bytes = Self.unb64url(nonce),
            let box = try? AES.GCM.SealedBox(combined: bytes),
            let plain = try? AES.GCM.open(box, using: nonceKey), plain.count == 16
        else { return false }
        let millis = plain.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let age = clock().timeIntervalSince1970 - Double(millis) / 1000
        guard age >= -5, age <= Self.nonceLifetime else { return false }
        // Single use on every node: the first to record it wins. Recorded without waiting for the disk (a crash may
        // forget the last few used nonces; each request they signed is still checked in full, and they expire
        // within minutes), which saves a flush on every ACME request.
        // The id starts with the nonce's issue time (13 digits of milliseconds), so the sweep drops expired ones by
        // id range (`acmeSweep`); the same nonce always maps to the same id.
        let id = Self.timeOrderedID(millis: millis, hash: Hex.encode(SHA256.hash(data: bytes)))
        do {
            try await storage.withRelaxedTransaction { tx in
                try await tx.insert(
                    Record(
                        kind: ACMEKind.usedNonce, id: id, scope: "acme", name: nil, body: Data(),
                        createdAt: self.clock()))
            }
            return true
        } catch let e as StorageError where e.code == .uniqueViolation {
            return false
        } catch {
            throw EngineError(.unavailable, "storage unavailable")
        }
    }

    /// A record id that sorts by time: 13 digits of milliseconds, "-", then `hash` (used nonces, rate counters), so
    /// `acmeSweep` deletes the old ones by id range.
    static func timeOrderedID(millis: UInt64, hash: String) -> String {
        let digits = String(millis)
        return String(repeating: "0", count: max(0, 13 - digits.count)) + digits + "-" + hash
    }

    // MARK: Rate limits

    static let rateWindow: TimeInterval = 3600

    /// Counts one new order against the account's and each identifier's hourly limits, in the order's transaction,
    /// or refuses it (`rateLimited` with `retryAfter`, counting nothing). A sliding window approximated from fixed
    /// one-hour windows: the previous window's count, weighted by how much of it still overlaps the last hour, plus
    /// the current one's. Counters are records whose ids start with their window, swept like nonces.
    func admitOrder(
        accountId: String, identifiers: [ACMEIdentifier], limits: ACMERateLimits, now: Date,
        _ tx: any StorageTransaction
    )
        async throws
    {
        var keys: [(key: String, limit: Int, what: String)] = []
        if limits.ordersPerAccountPerHour > 0 {
            keys.append(("account:" + accountId, limits.ordersPerAccountPerHour, "this account"))
        }
        if limits.ordersPerIdentifierPerHour > 0 {
            for id in identifiers {
                keys.append(
                    (
                        "\(id.type):\(id.value.lowercased())", limits.ordersPerIdentifierPerHour,
                        "\(id.type) identifier \(id.value)"
                    ))
            }
        }
        guard !keys.isEmpty else { return }
        let t = now.timeIntervalSince1970
        let windowStart = (t / Self.rateWindow).rounded(.down) * Self.rateWindow
        let elapsed = t - windowStart
        let currentWindow = UInt64(windowStart * 1000)
        let previousWindow = UInt64((windowStart - Self.rateWindow) * 1000)
        func count(_ r: Record?) -> Int { r.flatMap { Int(String(decoding: $0.body, as: UTF8.self)) } ?? 0 }
        var updates: [(id: String, record: Record?, count: Int)] = []
        var refusal: (wait: TimeInterval, what: String)?
        for k in keys {
            let hash = Hex.encode(SHA256.hash(data: Array(k.key.utf8)))
            let currentID = Self.timeOrderedID(millis: currentWindow, hash: hash)
            let current = try await tx.get(kind: ACMEKind.rate, id: currentID)
            let previous = count(
                try await tx.get(kind: ACMEKind.rate, id: Self.timeOrderedID(millis: previousWindow, hash: hash)))
            let cur = count(current)
            let weight = 1 - elapsed / Self.rateWindow
            if Double(previous) * weight + Double(cur) + 1 > Double(k.limit) {
                // When the estimate drops below the limit again, if no other order comes.
                let wait: TimeInterval
                if cur + 1 > k.limit {
                    // Past this window, where this window's count fades as the previous one did.
                    wait = (Self.rateWindow - elapsed) + Self.rateWindow * (1 - Double(k.limit - 1) / Double(cur))
                } else {
                    wait = Self.rateWindow * (1 - Double(k.limit - 1 - cur) / Double(max(previous, 1))) - elapsed
                }
                if wait > (refusal?.wait ?? -1) { refusal = (wait, k.what) }
                continue
            }
            updates.append((currentID, current, cur + 1))
        }
        if let refusal {
            let seconds = max(1, Int(refusal.wait.rounded(.up)))
            throw EngineError.acme(
                .rateLimited, "too many new orders for \(refusal.what); retry in \(seconds) s", retryAfter: seconds)
        }
        for u in updates {
            let body = Data(String(u.count).utf8)
            // Another node counting an order for the same key at the same time makes this transaction lose on the
            // counter's version (or on creating it): a transient conflict, which runs the order again.
            do {
                if var r = u.record {
                    r.body = body
                    _ = try await tx.update(r)
                } else {
                    try await tx.insert(
                        Record(kind: ACMEKind.rate, id: u.id, scope: "acme", name: nil, body: body, createdAt: now))
                }
            } catch let e as StorageError where e.code == .uniqueViolation || e.code == .versionConflict {
                throw StorageError(.transientConflict, "rate counter: \(e.detail)")
            }
        }
    }

    /// Deletes the replay records of nonces that expired (they are refused by their sealed time anyway) and the
    /// rate counters of windows that no longer count, in batches, so the store holds at most about
    /// `nonceLifetime` worth of nonces. Run periodically by the daemon on every node (concurrent sweeps just find
    /// less to delete). Returns how many went.
    public func acmeSweep(batch: Int = 2000, maxBatches: Int = 500) async throws -> Int {
        let now = clock().timeIntervalSince1970
        let horizon = now - Self.nonceLifetime - 60
        guard horizon > 0 else { return 0 }
        let bound = Self.timeOrderedID(millis: UInt64(horizon * 1000), hash: "")
        // Rate counters of windows that no longer overlap the last hour.
        let rateWindow = ((now / Self.rateWindow).rounded(.down) - 1) * Self.rateWindow
        let rateBound = Self.timeOrderedID(millis: UInt64(max(0, rateWindow) * 1000), hash: "")
        var total = 0
        for (kind, idBefore) in [(ACMEKind.usedNonce, bound), (ACMEKind.rate, rateBound)] {
            for _ in 0..<maxBatches {
                // A relaxed commit (no audit event: the sweep removes only expired replay and rate records).
                let n = try await mappingStorageErrors {
                    try await storage.withRetryingTransaction(relaxed: true) { tx in
                        try await tx.deleteBefore(kind: kind, scope: "acme", idBefore: idBefore, limit: batch)
                    }
                }
                total += n
                if n < batch { break }
            }
        }
        return total
    }

    // MARK: Accounts

    func acmeCaller(_ ctx: CallContext, _ accountId: String) throws {
        guard ctx.principal.method == .acmeAccount, ctx.principal.id == accountId else {
            throw Self.acme(.unauthorized, "the request is not signed by this account")
        }
    }

    func loadAccount(_ id: String, _ tx: any StorageTransaction) async throws -> (Record, ACMEAccountInfo) {
        guard id.utf8.count <= 64, let r = try await tx.get(kind: ACMEKind.account, id: id) else {
            throw Self.acme(.accountDoesNotExist, "no such account")
        }
        return (r, try decode(ACMEAccountBody.self, r).info)
    }

    public func acmeAccount(profileId: String, accountId: String) async throws -> ACMEAccountInfo {
        // Every ACME request looks its account up to verify the JWS: reuse a read for two seconds. Changes made on
        // this node (update, deactivation, key change) drop the entry at once; the operation itself re-reads the
        // account from the store in its transaction.
        let now = clock()
        if let hit = acmeAccounts.withLock({ $0[accountId] }), hit.until > now, hit.info.profileId == profileId {
            return hit.info
        }
        let info = try await read { tx in try await self.loadAccount(accountId, tx).1 }
        acmeAccounts.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[accountId] = (info, now + 2)
        }
        guard info.profileId == profileId else {
            throw Self.acme(.accountDoesNotExist, "no such account for this directory")
        }
        return info
    }

    public func acmeNewAccount(
        _ ctx: CallContext, profileId: String, jwk: String, thumbprint: String, contact: [String], termsAgreed: Bool,
        onlyReturnExisting: Bool, eab: (kid: String, alg: String, signingInput: [UInt8], mac: [UInt8])?
    ) async throws -> (ACMEAccountInfo, created: Bool) {
        let existing = try await read { tx in
            try await tx.find(kind: ACMEKind.account, scope: profileId, name: thumbprint).map {
                try self.decode(ACMEAccountBody.self, $0).info
            }
        }
        if let existing {
            guard existing.status == .valid else { throw Self.acme(.unauthorized, "the account is \(existing.status)") }
            return (existing, false)
        }
        if onlyReturnExisting { throw Self.acme(.accountDoesNotExist, "no account exists for this key") }
        for c in contact {
            guard c.hasPrefix("mailto:"), c.utf8.count <= 320, !c.contains(","), c.contains("@") else {
                throw Self.acme(.invalidContact, "contact '\(c)' is not a single mailto: address")
            }
        }
        guard contact.count <= 10 else { throw Self.acme(.invalidContact, "at most 10 contacts") }
        let (_, profile) = try await read { tx in try await self.issuer.loadProfile(profileId, tx) }
        guard let eabKid = profile.eabKeyId, let sealed = profile.eabSealedKey else {
            throw EngineError(.notFound, "no ACME profile")
        }
        guard let eab else {
            throw Self.acme(.externalAccountRequired, "this directory requires external account binding")
        }
        let key = try await transact(relaxed: true) { tx in
            try await self.keyring.open(sealed, binding: "pki-profile/\(profileId)/eab", tx)
        }
        let expected: [UInt8]
        switch eab.alg {
        case "HS384":
            expected = Array(HMAC<SHA384>.authenticationCode(for: eab.signingInput, using: SymmetricKey(data: key)))
        case "HS512":
            expected = Array(HMAC<SHA512>.authenticationCode(for: eab.signingInput, using: SymmetricKey(data: key)))
        default:
            expected = Array(HMAC<SHA256>.authenticationCode(for: eab.signingInput, using: SymmetricKey(data: key)))
        }
        guard eab.kid == eabKid, Self.constantTimeEqual(Data(expected), Data(eab.mac)) else {
            await auditFailure(
                ctx, "acme.account.refused", project: profile.info.project,
                ["profileId": profileId, "reason": "external account binding does not verify"])
            throw Self.acme(.unauthorized, "the external account binding does not verify")
        }
        let now = clock()
        let info = ACMEAccountInfo(
            id: Self.randomToken(12), profileId: profileId, status: .valid, contact: contact, thumbprint: thumbprint,
            jwk: jwk,
            eabKeyId: eabKid, createdAt: now)
        do {
            try await transact { tx in
                try await tx.insert(
                    Record(
                        kind: ACMEKind.account, id: info.id, scope: profileId, name: thumbprint,
                        body: try Self.encode(ACMEAccountBody(info: info)), createdAt: now))
                try await self.audit.append(
                    self.event(
                        ctx, "acme.account.create", project: profile.info.project,
                        ["accountId": info.id, "profileId": profileId, "decision": "allow", "grantedBy": "acme:eab"]),
                    tx)
            }
        } catch let e as EngineError where e.code == .alreadyExists {
            // The same key registered concurrently: return that account.
            let raced = try await read { tx in
                try await tx.find(kind: ACMEKind.account, scope: profileId, name: thumbprint).map {
                    try self.decode(ACMEAccountBody.self, $0).info
                }
            }
            if let raced { return (raced, false) }
            throw e
        }
        return (info, true)
    }

    public func acmeUpdateAccount(_ ctx: CallContext, accountId: String, contact: [String]?, deactivate: Bool)
        async throws -> ACMEAccountInfo
    {
        try acmeCaller(ctx, accountId)
        return try await transact { tx in
            var (record, info) = try await self.loadAccount(accountId, tx)
            guard info.status == .valid else { throw Self.acme(.unauthorized, "the account is \(info.status)") }
            if let contact {
                for c in contact where !c.hasPrefix("mailto:") || c.contains(",") {
                    throw Self.acme(.invalidContact, "contact '\(c)' is not a single mailto: address")
                }
                info.contact = contact
            }
            if deactivate { info.status = .deactivated }
            self.acmeAccounts.withLock { _ = $0.removeValue(forKey: accountId) }
            record.body = try Self.encode(ACMEAccountBody(info: info))
            record.updatedAt = self.clock()
            _ = try await tx.update(record)
            try await self.audit.append(
                self.event(
                    ctx, deactivate ? "acme.account.deactivate" : "acme.account.update", project: nil,
                    ["accountId": accountId]), tx)
            return info
        }
    }

    func validAccount(_ ctx: CallContext, _ accountId: String, _ tx: any StorageTransaction) async throws
        -> ACMEAccountInfo
    {
        try acmeCaller(ctx, accountId)
        let (_, info) = try await loadAccount(accountId, tx)
        guard info.status == .valid else { throw Self.acme(.unauthorized, "the account is \(info.status)") }
        return info
    }

    // MARK: Orders

    public func acmeNewOrder(
        _ ctx: CallContext, accountId: String, identifiers: [ACMEIdentifier], notBefore: Date?, notAfter: Date?,
        replaces: (certID: String, authorityKeyId: [UInt8], serial: [UInt8])?, profile chosen: String?,
        limits: ACMERateLimits
    ) async throws -> ACMEOrderInfo {
        guard !identifiers.isEmpty, identifiers.count <= 100 else {
            throw Self.acme(.malformed, "an order needs 1–100 identifiers")
        }
        var seen = Set<ACMEIdentifier>()
        var subproblems: [EngineError.Subproblem] = []
        for id in identifiers {
            guard seen.insert(ACMEIdentifier(type: id.type, value: id.value.lowercased())).inserted else {
                throw Self.acme(.malformed, "duplicate identifier \(id.value)")
            }
            switch id.type {
            case "dns":
                let name = id.value.hasPrefix("*.") ? String(id.value.dropFirst(2)) : id.value
                let labels = name.split(separator: ".", omittingEmptySubsequences: false)
                if (CIDR.parse(name) != nil && !name.contains("/"))
                    || (labels.count > 1 && labels.last?.allSatisfy(\.isNumber) == true)
                {
                    // An address written as a name: addresses are `ip` identifiers (RFC 8738 §3), and no DNS
                    // name's last label is all digits.
                    subproblems.append(
                        .acme(
                            .rejectedIdentifier,
                            "'\(id.value)' is an IP address, not a DNS name: request it as an identifier of type 'ip' (RFC 8738)",
                            itemType: "dns", itemValue: id.value))
                } else if name.isEmpty || name.utf8.count > 253
                    || labels.contains(where: { $0.isEmpty || $0.count > 63 })
                    || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") })
                {
                    subproblems.append(
                        .acme(.malformed, "'\(id.value)' is not a valid DNS name", itemType: "dns", itemValue: id.value)
                    )
                }
            case "ip":
                if CIDR.parse(id.value) == nil || id.value.contains("/") {
                    subproblems.append(
                        .acme(.malformed, "'\(id.value)' is not an IP address", itemType: "ip", itemValue: id.value))
                }
            default:
                subproblems.append(
                    .acme(
                        .unsupportedIdentifier, "identifier type '\(id.type)' is not supported (dns, ip)",
                        itemType: id.type, itemValue: id.value))
            }
        }
        let malformed = Set(subproblems.map(\.itemValue))
        let syntaxProblems = subproblems
        let now = clock()
        return try await transact { tx in
            let account = try await self.validAccount(ctx, accountId, tx)
            var (_, profile) = try await self.issuer.loadProfile(account.profileId, tx)
            if let chosen {
                // Another profile of this directory (draft-ietf-acme-profiles): its template and CA apply to the order.
                guard chosen.utf8.count <= 200, let other = try? await self.issuer.loadProfile(chosen, tx).1,
                    other.info.slug == chosen || other.info.id == chosen, Self.sameDirectory(other.info, profile.info)
                else { throw Self.acme(.invalidProfile, "this directory offers no profile '\(chosen)'") }
                profile = other
            }
            let template = try await self.issuer.loadTemplate(profile.info.templateId, tx).spec
            // The template decides early which names it would ever sign (rejectedIdentifier), not at finalize; every
            // refused identifier is named in its own subproblem (RFC 8555 §6.7.1).
            var refused = syntaxProblems
            for id in identifiers where !malformed.contains(id.value) {
                let type = id.type == "ip" ? "ip" : "dns"
                do {
                    try PKIPolicy.check(template.sans, [(type, id.value.lowercased())], what: "SAN")
                } catch let e as EngineError {
                    refused.append(.acme(.rejectedIdentifier, e.message, itemType: id.type, itemValue: id.value))
                }
            }
            if !refused.isEmpty { throw Self.rejected(refused, of: identifiers.count) }
            if let notAfter, let max = DurationText.seconds(template.maxTTL),
                notAfter.timeIntervalSince(notBefore ?? now) > TimeInterval(max)
            {
                throw Self.acme(.malformed, "notAfter is beyond the profile's maximum validity \(template.maxTTL)")
            }
            if let notBefore, notBefore < now - 60 || notBefore > now + 7 * 86400 {
                throw Self.acme(.malformed, "notBefore must be between now and 7 days from now")
            }
            try await self.admitOrder(accountId: accountId, identifiers: identifiers, limits: limits, now: now, tx)
            let orderId = Self.randomToken(12)
            if let replaces {
                // RFC 9773 §5: the replaced certificate must be this account's, and be replaced only once.
                let serial = PKIService.hex(replaces.serial)
                guard let owner = try await tx.get(kind: ACMEKind.certificateOwner, id: serial),
                    owner.scope == accountId,
                    let record = try await tx.get(kind: PKIKind.certificate, id: serial),
                    let cert = try? Certificate(derEncoded: Array(try self.decode(CertificateBody.self, record).der)),
                    let aki = try? cert.extensions.authorityKeyIdentifier?.keyIdentifier,
                    Array(aki) == replaces.authorityKeyId
                else { throw Self.acme(.malformed, "replaces does not name a certificate issued to this account") }
                do {
                    try await tx.insert(
                        Record(
                            kind: ACMEKind.replaced, id: serial, scope: accountId, name: nil, body: Data(orderId.utf8),
                            createdAt: now))
                } catch let e as StorageError where e.code == .uniqueViolation {
                    throw Self.acme(
                        .alreadyReplaced,
                        "the certificate \(replaces.certID) has already been replaced by another order")
                }
            }
            var authzIds: [String] = []
            var reused = 0
            for id in identifiers {
                let wildcardName = id.type == "dns" && id.value.hasPrefix("*.")
                let bare = ACMEIdentifier(
                    type: id.type, value: (wildcardName ? String(id.value.dropFirst(2)) : id.value).lowercased())
                if let pointer = try await tx.get(
                    kind: ACMEKind.validAuthz, id: Self.validAuthzKey(accountId, bare, wildcard: wildcardName)),
                    let existing = try? await self.loadAuthz(String(decoding: pointer.body, as: UTF8.self), tx).1,
                    existing.status == .valid, existing.accountId == accountId, existing.identifier == bare,
                    existing.wildcard == wildcardName, existing.expires > now + Self.authzReuseMargin
                {
                    authzIds.append(existing.id)
                    reused += 1
                    continue
                }
                let authzId = Self.randomToken(12)
                let token = Self.randomToken(32)
                let wildcard = id.type == "dns" && id.value.hasPrefix("*.")
                let value = wildcard ? String(id.value.dropFirst(2)) : id.value
                // http-01 for names and addresses, dns-01 for names; a wildcard can only be proven over DNS (§8.4).
                var challenges: [ACMEChallengeInfo] = []
                if !wildcard {
                    challenges.append(
                        ACMEChallengeInfo(id: authzId + "-http", type: "http-01", token: token, status: .pending))
                }
                if id.type == "dns" {
                    challenges.append(
                        ACMEChallengeInfo(id: authzId + "-dns", type: "dns-01", token: token, status: .pending))
                }
                if id.type == "dns", !wildcard {
                    challenges.append(
                        ACMEChallengeInfo(id: authzId + "-alpn", type: "tls-alpn-01", token: token, status: .pending))
                }
                let authz = ACMEAuthorizationInfo(
                    id: authzId, orderId: orderId, accountId: accountId,
                    identifier: ACMEIdentifier(type: id.type, value: value.lowercased()),
                    status: .pending, expires: now + Self.orderLifetime, wildcard: wildcard, challenges: challenges)
                try await tx.insert(
                    Record(
                        kind: ACMEKind.authz, id: authzId, scope: orderId, name: nil,
                        body: try Self.encode(ACMEAuthzBody(info: authz)), createdAt: now))
                authzIds.append(authzId)
            }
            let order = ACMEOrderInfo(
                id: orderId, accountId: accountId, profileId: profile.info.id,
                status: reused == identifiers.count ? .ready : .pending,
                expires: now + Self.orderLifetime,
                identifiers: identifiers.map { ACMEIdentifier(type: $0.type, value: $0.value.lowercased()) },
                notBefore: notBefore,
                notAfter: notAfter, authorizations: authzIds, certificateSerial: nil, error: nil,
                replaces: replaces?.certID,
                profile: chosen == nil ? nil : profile.info.slug)
            try await tx.insert(
                Record(
                    kind: ACMEKind.order, id: orderId, scope: accountId, name: nil,
                    body: try Self.encode(ACMEOrderBody(info: order)), createdAt: now))
            try await self.audit.append(
                self.event(
                    ctx, "acme.order.create", project: profile.info.project,
                    [
                        "accountId": accountId, "orderId": orderId,
                        "identifiers": identifiers.map(\.value).joined(separator: ","),
                        "profileId": profile.info.id, "reusedAuthorizations": String(reused),
                    ]), tx)
            return order
        }
    }

    func loadOrder(_ id: String, _ tx: any StorageTransaction) async throws -> (Record, ACMEOrderInfo) {
        guard id.utf8.count <= 64, let r = try await tx.get(kind: ACMEKind.order, id: id) else {
            throw Self.acme(.malformed, "no such order")
        }
        return (r, try decode(ACMEOrderBody.self, r).info)
    }

    public func acmeOrder(_ ctx: CallContext, accountId: String, orderId: String) async throws -> ACMEOrderInfo {
        try acmeCaller(ctx, accountId)
        var order = try await read { tx in
            var order = try await self.loadOrder(orderId, tx).1
            if order.accountId == accountId { _ = try await self.settle(&order, tx) }
            return order
        }
        guard order.accountId == accountId else {
            throw Self.acme(.unauthorized, "the order belongs to another account")
        }
        if [ACMEStatus.pending, .ready].contains(order.status), order.expires < clock() {
            order.status = .invalid
            order.error = ACMEError(type: ACMEProblemType.malformed.urn, detail: "the order expired")
        }
        return order
    }

    public func acmeOrders(_ ctx: CallContext, accountId: String, after: String?, limit: Int) async throws -> Page<
        String
    > {
        try acmeCaller(ctx, accountId)
        let n = max(1, min(limit, 1000))
        let ids = try await read { tx in
            try await tx.list(kind: ACMEKind.order, scope: accountId, afterID: after, limit: n + 1).map(\.id)
        }
        return Page(items: Array(ids.prefix(n)), next: ids.count > n ? ids[n - 1] : nil)
    }

    func loadAuthz(_ id: String, _ tx: any StorageTransaction) async throws -> (Record, ACMEAuthorizationInfo) {
        guard id.utf8.count <= 64, let r = try await tx.get(kind: ACMEKind.authz, id: id) else {
            throw Self.acme(.malformed, "no such authorization")
        }
        return (r, try decode(ACMEAuthzBody.self, r).info)
    }

    public func acmeAuthorization(_ ctx: CallContext, accountId: String, authorizationId: String) async throws
        -> ACMEAuthorizationInfo
    {
        try acmeCaller(ctx, accountId)
        let authz = try await read { tx in try await self.loadAuthz(authorizationId, tx).1 }
        guard authz.accountId == accountId else {
            throw Self.acme(.unauthorized, "the authorization belongs to another account")
        }
        return authz
    }

    public func acmeDeactivateAuthorization(_ ctx: CallContext, accountId: String, authorizationId: String)
        async throws -> ACMEAuthorizationInfo
    {
        let now = clock()
        return try await transact { tx in
            _ = try await self.validAccount(ctx, accountId, tx)
            var (record, authz) = try await self.loadAuthz(authorizationId, tx)
            guard authz.accountId == accountId else {
                throw Self.acme(.unauthorized, "the authorization belongs to another account")
            }
            if authz.status == .deactivated { return authz }
            guard authz.status == .pending || authz.status == .valid else {
                throw Self.acme(.malformed, "an authorization that is \(authz.status) cannot be deactivated")
            }
            authz.status = .deactivated
            for i in authz.challenges.indices where authz.challenges[i].status == .pending {
                authz.challenges[i].status = .invalid
            }
            record.body = try Self.encode(ACMEAuthzBody(info: authz))
            record.updatedAt = now
            _ = try await tx.update(record)
            // Never reused: drop the account's pointer to it. Orders that reused it notice when they are read or
            // finalized (`settle`); its own order is settled here.
            let key = Self.validAuthzKey(authz.accountId, authz.identifier, wildcard: authz.wildcard)
            if let pointer = try await tx.get(kind: ACMEKind.validAuthz, id: key),
                String(decoding: pointer.body, as: UTF8.self) == authz.id
            {
                try await tx.delete(kind: ACMEKind.validAuthz, id: key, expectedVersion: pointer.version)
            }
            if var (orderRecord, order) = try? await self.loadOrder(authz.orderId, tx),
                try await self.settle(&order, tx)
            {
                orderRecord.body = try Self.encode(ACMEOrderBody(info: order))
                orderRecord.updatedAt = now
                _ = try await tx.update(orderRecord)
            }
            try await self.audit.append(
                self.event(
                    ctx, "acme.authz.deactivate", project: nil,
                    [
                        "accountId": accountId, "authorizationId": authz.id,
                        "identifier": authz.identifier.value,
                    ]), tx)
            return authz
        }
    }

    /// A pending or ready order whose authorizations are no longer all usable (one was deactivated, failed or
    /// expired) becomes `invalid` with the reason. Returns whether the order changed.
    func settle(_ order: inout ACMEOrderInfo, _ tx: any StorageTransaction) async throws -> Bool {
        guard order.status == .pending || order.status == .ready else { return false }
        for id in order.authorizations {
            guard let authz = try? await loadAuthz(id, tx).1 else { continue }
            if authz.status == .deactivated || authz.status == .invalid || authz.status == .revoked {
                order.status = .invalid
                order.error = ACMEError(
                    type: ACMEProblemType.unauthorized.urn,
                    detail: "the authorization for \(authz.identifier.value) is \(authz.status)")
                return true
            }
        }
        return false
    }

    public func acmeRespondChallenge(_ ctx: CallContext, accountId: String, challengeId: String, lease: TimeInterval)
        async throws
        -> (ACMEChallengeInfo, ACMEAuthorizationInfo, ACMEValidationTask?)
    {
        guard let dash = challengeId.lastIndex(of: "-") else { throw Self.acme(.malformed, "no such challenge") }
        let authzId = String(challengeId[..<dash])
        return try await transact { tx in
            let account = try await self.validAccount(ctx, accountId, tx)
            var (record, authz) = try await self.loadAuthz(authzId, tx)
            guard authz.accountId == accountId else {
                throw Self.acme(.unauthorized, "the challenge belongs to another account")
            }
            guard let index = authz.challenges.firstIndex(where: { $0.id == challengeId }) else {
                throw Self.acme(.malformed, "no such challenge")
            }
            var challenge = authz.challenges[index]
            // Responding again to a challenge that is not pending is harmless (RFC 8555 §7.5.1): report its state.
            guard challenge.status == .pending, authz.status == .pending else { return (challenge, authz, nil) }
            guard authz.expires > self.clock() else { throw Self.acme(.malformed, "the authorization expired") }
            challenge.status = .processing
            authz.challenges[index] = challenge
            record.body = try Self.encode(ACMEAuthzBody(info: authz))
            record.updatedAt = self.clock()
            _ = try await tx.update(record)
            let keyAuthorization = challenge.token + "." + account.thumbprint
            let task = ACMEValidationTask(
                challenge: challenge, identifier: authz.identifier, keyAuthorization: keyAuthorization)
            let now = self.clock()
            try await tx.insert(
                Record(
                    kind: ACMEKind.validation, id: challengeId, scope: "pending", name: nil,
                    body: try Self.encode(
                        ACMEValidationBody(task: task, claimUntil: now.addingTimeInterval(lease), claims: 1)),
                    createdAt: now))
            return (challenge, authz, task)
        }
    }

    public func acmeClaimValidations(_ ctx: CallContext, lease: TimeInterval, limit: Int) async throws
        -> [ACMEValidationTask]
    {
        guard ctx.principal.method == .system else { throw EngineError(.permissionDenied, "validators only") }
        let now = clock()
        var claimed: [ACMEValidationTask] = []
        var expired: [String] = []
        var after: String?
        scan: while claimed.count < limit {
            let cursor = after
            let page = try await read { tx in
                try await tx.list(kind: ACMEKind.validation, scope: "pending", afterID: cursor, limit: 100)
            }
            for candidate in page {
                guard claimed.count < limit else { break scan }
                guard let body = try? decode(ACMEValidationBody.self, candidate), body.claimUntil <= now else {
                    continue
                }
                do {
                    let outcome = try await transact { tx -> (ACMEValidationTask?, expired: Bool) in
                        guard var record = try await tx.get(kind: ACMEKind.validation, id: candidate.id),
                            record.version == candidate.version
                        else {
                            return (nil, false)  // another validator claimed or finished it meanwhile
                        }
                        var body = try self.decode(ACMEValidationBody.self, record)
                        let authzId = String(
                            candidate.id[..<(candidate.id.lastIndex(of: "-") ?? candidate.id.endIndex)])
                        let authz = try? await self.loadAuthz(authzId, tx).1
                        guard let authz,
                            authz.challenges.contains(where: { $0.id == candidate.id && $0.status == .processing })
                        else {
                            // Decided elsewhere, or the authorization is gone: nothing left to validate.
                            try await tx.delete(
                                kind: ACMEKind.validation, id: record.id, expectedVersion: record.version)
                            return (nil, false)
                        }
                        if authz.expires <= now { return (nil, true) }
                        body.claimUntil = now.addingTimeInterval(lease)
                        body.claims += 1
                        record.body = try Self.encode(body)
                        _ = try await tx.update(record)
                        return (body.task, false)
                    }
                    if let task = outcome.0 { claimed.append(task) }
                    if outcome.expired { expired.append(candidate.id) }
                } catch {
                    continue  // a version conflict: another node's validator took it
                }
            }
            guard page.count == 100, let last = page.last else { break }
            after = last.id
        }
        for id in expired {
            try? await acmeCompleteValidation(
                ctx, challengeId: id,
                error: ACMEError(
                    type: ACMEProblemType.malformed.urn,
                    detail: "the authorization expired before its challenge was validated"))
        }
        return claimed
    }

    public func acmeCompleteValidation(_ ctx: CallContext, challengeId: String, error: ACMEError?) async throws {
        guard ctx.principal.method == .system else { throw EngineError(.permissionDenied, "validators only") }
        guard let dash = challengeId.lastIndex(of: "-") else { throw EngineError(.notFound, "no such challenge") }
        let authzId = String(challengeId[..<dash])
        let now = clock()
        try await transact { tx in
            if let pending = try await tx.get(kind: ACMEKind.validation, id: challengeId) {
                try await tx.delete(kind: ACMEKind.validation, id: challengeId, expectedVersion: pending.version)
            }
            var (record, authz) = try await self.loadAuthz(authzId, tx)
            guard let index = authz.challenges.firstIndex(where: { $0.id == challengeId }),
                authz.challenges[index].status == .processing
            else {
                return
            }
            authz.challenges[index].status = error == nil ? .valid : .invalid
            authz.challenges[index].validated = error == nil ? now : nil
            authz.challenges[index].error = error
            authz.status = error == nil ? .valid : .invalid
            record.body = try Self.encode(ACMEAuthzBody(info: authz))
            record.updatedAt = now
            _ = try await tx.update(record)
            if error == nil {
                // Remember it for reuse by this account's later orders for the same identifier.
                let key = Self.validAuthzKey(authz.accountId, authz.identifier, wildcard: authz.wildcard)
                if var pointer = try await tx.get(kind: ACMEKind.validAuthz, id: key) {
                    pointer.body = Data(authz.id.utf8)
                    pointer.updatedAt = now
                    _ = try await tx.update(pointer)
                } else {
                    try await tx.insert(
                        Record(
                            kind: ACMEKind.validAuthz, id: key, scope: authz.accountId, name: nil,
                            body: Data(authz.id.utf8), createdAt: now))
                }
            }
            var (orderRecord, order) = try await self.loadOrder(authz.orderId, tx)
            guard order.status == .pending else { return }
            if let error {
                order.status = .invalid
                order.error = ACMEError(
                    type: error.type, detail: "authorization for \(authz.identifier.value) failed: \(error.detail)")
            } else {
                var all = true
                for id in order.authorizations where id != authz.id {
                    if try await self.loadAuthz(id, tx).1.status != .valid { all = false }
                }
                if all { order.status = .ready }
            }
            orderRecord.body = try Self.encode(ACMEOrderBody(info: order))
            orderRecord.updatedAt = now
            _ = try await tx.update(orderRecord)
            try await self.audit.append(
                self.event(
                    ctx, "acme.challenge.\(error == nil ? "valid" : "invalid")", project: nil,
                    ["accountId": authz.accountId, "challengeId": challengeId, "identifier": authz.identifier.value]),
                tx)
        }
    }

    public func acmeFinalize(_ ctx: CallContext, accountId: String, orderId: String, csr csrBytes: [UInt8]) async throws
        -> ACMEOrderInfo
    {
        // Parsing the CSR and checking its signature need nothing from the store: done before the transaction, so
        // the writer's lock is not held for them.
        let parsed = Result { try PKIService.parseCSR(csrBytes) }
        return try await transact { tx in
            _ = try await self.validAccount(ctx, accountId, tx)
            var (record, order) = try await self.loadOrder(orderId, tx)
            guard order.accountId == accountId else {
                throw Self.acme(.unauthorized, "the order belongs to another account")
            }
            if try await self.settle(&order, tx) {
                throw Self.acme(.orderNotReady, "the order is invalid: \(order.error?.detail ?? "")")
            }
            guard order.status == .ready else {
                throw Self.acme(.orderNotReady, "the order is \(order.status), not ready")
            }
            let csr: CertificateSigningRequest
            do { csr = try parsed.get() } catch let e as EngineError { throw Self.acme(.badCSR, e.message) }
            let requested = (try? PKIService.requestedExtensions(csr)) ?? nil
            let sans = ((try? requested?.subjectAlternativeNames) ?? nil) ?? SubjectAlternativeNames()
            // The CSR must name exactly the order's identifiers (CN, if any, among them).
            let values = try PKIPolicy.sanValues(sans)
            let csrNames = Set(
                values.map { ACMEIdentifier(type: $0.0 == "ip" ? "ip" : "dns", value: $0.1.lowercased()) })
            let orderNames = Set(order.identifiers)
            guard csrNames == orderNames, values.allSatisfy({ $0.0 == "dns" || $0.0 == "ip" }) else {
                throw Self.acme(
                    .badCSR,
                    "the CSR's names (\(csrNames.map(\.value).sorted().joined(separator: ", "))) must be exactly the order's (\(orderNames.map(\.value).sorted().joined(separator: ", ")))"
                )
            }
            let cn = PKIService.commonName(csr.subject)
            if !cn.isEmpty, !orderNames.contains(where: { $0.value == cn.lowercased() }) {
                throw Self.acme(.badCSR, "the CSR's common name \(cn) is not one of the order's identifiers")
            }
            let (_, profile) = try await self.issuer.loadProfile(order.profileId, tx)
            let subject = cn.isEmpty ? DistinguishedName() : try DistinguishedName { CommonName(cn) }
            let ttl = order.notAfter.map { $0.timeIntervalSince(order.notBefore ?? self.clock()) }
            let (info, _): (CertificateInfo, [UInt8])
            do {
                (info, _) = try await self.issuer.issue(
                    profile.info,
                    PKIService.IssueInput(
                        subject: subject, sans: sans, publicKey: csr.publicKey, requestedExtensions: nil, ttl: ttl), tx)
            } catch let e as EngineError where e.code == .permissionDenied || e.code == .invalidArgument {
                throw Self.acme(.badCSR, e.message)
            }
            try await tx.insert(
                Record(
                    kind: ACMEKind.certificateOwner, id: info.serialNumber, scope: accountId, name: nil, body: Data(),
                    createdAt: self.clock()))
            order.status = .valid
            order.certificateSerial = info.serialNumber
            record.body = try Self.encode(ACMEOrderBody(info: order))
            record.updatedAt = self.clock()
            _ = try await tx.update(record)
            try await self.audit.append(
                self.event(
                    ctx, "acme.order.finalize", project: profile.info.project,
                    [
                        "accountId": accountId, "orderId": orderId, "serialNumber": info.serialNumber,
                        "decision": "allow", "grantedBy": "acme:authorizations",
                    ]), tx)
            return order
        }
    }

    public func acmeCertificate(_ ctx: CallContext, accountId: String, serial: String) async throws -> [[UInt8]] {
        try acmeCaller(ctx, accountId)
        let (_, body) = try await issuer.certificateBody(serial)
        return try await read { tx in
            // Only the account whose order produced it may download it.
            guard let owner = try await tx.get(kind: ACMEKind.certificateOwner, id: body.info.serialNumber),
                owner.scope == accountId
            else {
                throw Self.acme(.unauthorized, "the certificate was not issued to this account")
            }
            var chain = [Array(body.der)]
            if let caId = body.info.caId {
                let ca = try await self.issuer.loadCA(caId, tx)
                chain += ([ca.body.certificateDER ?? Data()] + ca.body.chainDER).map { Array($0) }
            }
            return chain
        }
    }

    public func acmeRevoke(_ ctx: CallContext, profileId: String, accountId: String?, certificate: [UInt8], reason: Int)
        async throws
    {
        guard let cert = try? Certificate(derEncoded: certificate) else {
            throw Self.acme(.malformed, "the certificate is not DER")
        }
        guard let r = RevocationReason.allCases.first(where: { $0.code == reason }), r != .removeFromCRL,
            r != .certificateHold
        else {
            throw Self.acme(.badRevocationReason, "reason \(reason) is not allowed")
        }
        let serial = PKIService.hex(cert.serialNumber.bytes)
        let (_, body) = try await issuer.certificateBody(serial)
        guard Array(body.der) == certificate, try await issuedByDirectory(body.info.profileId, profileId) else {
            throw Self.acme(.unauthorized, "the certificate was not issued by this directory")
        }
        if let accountId {
            _ = try await acmeCertificate(ctx, accountId: accountId, serial: serial)
        } else {
            // The front end verified the JWS with the certificate's own key.
            guard ctx.principal.method == .acmeAccount, ctx.principal.id == "certificate-key:" + serial else {
                throw Self.acme(.unauthorized, "the request is signed by neither the account nor the certificate key")
            }
        }
        let now = clock()
        try await transact { tx in
            guard var record = try await tx.get(kind: PKIKind.certificate, id: serial) else {
                throw EngineError(.notFound, "certificate not found")
            }
            var b = try self.decode(CertificateBody.self, record)
            guard b.info.status != .revoked else {
                throw Self.acme(.alreadyRevoked, "the certificate is already revoked")
            }
            try await self.issuer.markRevoked(&record, &b, reason: r, now: now, tx)
            try await self.audit.append(
                self.event(
                    ctx, "acme.certificate.revoke", project: b.info.project,
                    ["serialNumber": serial, "reason": r.rawValue]), tx)
        }
    }

    public func acmeChangeKey(
        _ ctx: CallContext, accountId: String, oldThumbprint: String, newJWK: String, newThumbprint: String
    ) async throws
        -> ACMEAccountInfo
    {
        try acmeCaller(ctx, accountId)
        return try await transact { tx in
            var (record, info) = try await self.loadAccount(accountId, tx)
            guard info.status == .valid else { throw Self.acme(.unauthorized, "the account is \(info.status)") }
            guard info.thumbprint == oldThumbprint else {
                throw Self.acme(.malformed, "oldKey is not the account's current key")
            }
            if let other = try await tx.find(kind: ACMEKind.account, scope: info.profileId, name: newThumbprint) {
                throw EngineError(.alreadyExists, "the new key belongs to another account", diagnostic: other.id)
            }
            info.jwk = newJWK
            info.thumbprint = newThumbprint
            self.acmeAccounts.withLock { _ = $0.removeValue(forKey: accountId) }
            record.name = newThumbprint
            record.body = try Self.encode(ACMEAccountBody(info: info))
            record.updatedAt = self.clock()
            _ = try await tx.update(record)
            try await self.audit.append(
                self.event(ctx, "acme.account.key-change", project: nil, ["accountId": accountId]), tx)
            return info
        }
    }

    public func acmeRenewalInfo(profileId: String, authorityKeyId: [UInt8], serial: [UInt8]) async throws -> (
        start: Date, end: Date
    ) {
        let (_, body) = try await issuer.certificateBody(PKIService.hex(serial))
        guard try await issuedByDirectory(body.info.profileId, profileId),
            let cert = try? Certificate(derEncoded: Array(body.der)),
            let aki = try? cert.extensions.authorityKeyIdentifier?.keyIdentifier, Array(aki) == authorityKeyId
        else { throw EngineError(.notFound, "no certificate of this directory has that certID") }
        let now = clock()
        if body.info.status == .revoked {
            // Renew at once (RFC 9773 §4.2: a window in the past).
            return (now - 86400, now - 3600)
        }
        let lifetime = body.info.notAfter.timeIntervalSince(body.info.notBefore)
        return (body.info.notAfter - lifetime / 3, body.info.notAfter - lifetime / 6)
    }
}
