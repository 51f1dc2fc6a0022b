import ACMEProtocol
import Crypto
import EngineAPI
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServerSupport
import SwiftASN1

/// ACME settings of the HTTPS listener.
public struct ACMESettings: Sendable {
    /// Port the http-01 validator connects to (80 in production; tests point it at their client).
    public var http01Port: Int
    /// Terms of service URL announced in the directory; when set, newAccount must agree to it.
    public var termsOfService: String?
    public var website: String?
    /// Domain names a CAA record may name to authorize this CA (RFC 8659), announced in the directory meta.
    public var caaIdentities: [String]
    /// The DNS server dns-01 queries go to (HOST:PORT); nil: the first nameserver of /etc/resolv.conf.
    public var dnsResolver: String?
    /// Port the tls-alpn-01 validator connects to (443 in production).
    public var tlsALPN01Port: Int
    /// New orders allowed per account, and per identifier, in any hour (0 = unlimited). Counted per node.
    public var ordersPerAccountPerHour: Int
    public var ordersPerIdentifierPerHour: Int
    public init(
        http01Port: Int = 80, termsOfService: String? = nil, website: String? = nil, caaIdentities: [String] = [],
        dnsResolver: String? = nil,
        tlsALPN01Port: Int = 443, ordersPerAccountPerHour: Int = 3000, ordersPerIdentifierPerHour: Int = 300
    ) {
        self.ordersPerAccountPerHour = ordersPerAccountPerHour
        self.ordersPerIdentifierPerHour = ordersPerIdentifierPerHour
        self.http01Port = http01Port
        self.tlsALPN01Port = tlsALPN01Port
        self.termsOfService = termsOfService
        self.website = website
        self.caaIdentities = caaIdentities
        self.dnsResolver = dnsResolver
    }

    /// (host, port) of the resolver for dns-01.
    var resolver: (String, Int) {
        if let r = dnsResolver, let colon = r.lastIndex(of: ":"), let port = Int(r[r.index(after: colon)...]) {
            return (String(r[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
        }
        let conf = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
        for line in conf.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, parts[0] == "nameserver" { return (String(parts[1]), 53) }
        }
        return ("127.0.0.1", 53)
    }
}

/// RFC 8555 over HTTPS: one directory per ACME profile at `/acme/{profile}/directory` and at the reference
/// platform's `/api/v1/cert-manager/certificate-profiles/{profile}/acme/directory`. Every POST is a flattened JWS:
/// parsed and checked here (url, nonce, key, signature), then one engine call with the account as principal.
struct ACMERoutes: Sendable {
    let engine: any ACMEEngine
    let settings: ACMESettings
    let validator: ACMEValidator
    let logger = Logger(label: "gatehouse.acme")

    static let prefixes = ["acme/:profile", "api/v1/cert-manager/certificate-profiles/:profile/acme"]

    struct Call {
        var base: String
        var profile: ProfileInfo
        var jws: JWS
        var ctx: CallContext
        var accountId: String?
    }

    // MARK: Responses

    func headers(_ base: String, nonce: Bool = true) async -> HTTPFields {
        var h: HTTPFields = [.cacheControl: "no-store", HTTPField.Name("Link")!: "<\(base)/directory>;rel=\"index\""]
        if nonce, let n = try? await engine.acmeNewNonce() { h[HTTPField.Name("Replay-Nonce")!] = n }
        return h
    }

    func json(_ value: Any, status: HTTPResponse.Status = .ok, base: String, extra: HTTPFields = [:]) async -> Response
    {
        var h = await headers(base)
        h[.contentType] = "application/json"
        for f in extra { h.append(f) }
        return Response(
            status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: JSONText.document(value))))
    }

    func problem(_ p: ACMEProblem, base: String, extra: HTTPFields = [:]) async -> Response {
        var h = await headers(base)
        for f in extra { h[f.name] = f.value }
        h[.contentType] = "application/problem+json"
        var object: [String: Any] = ["type": p.type, "detail": p.detail, "status": p.status]
        if let subs = p.subproblems {
            object["subproblems"] = subs.map { sub -> [String: Any] in
                var o: [String: Any] = ["type": sub.type, "detail": sub.detail]
                if let id = sub.identifier { o["identifier"] = ["type": id.type, "value": id.value] }
                return o
            }
        }
        return Response(
            status: .init(code: p.status), headers: h,
            body: .init(byteBuffer: ByteBuffer(bytes: JSONText.document(object))))
    }

    /// Engine errors as ACME problems: an error the engine typed for ACME keeps its type; others map by category.
    static func problem(_ error: any Error) -> ACMEProblem {
        if let p = error as? ACMEProblem { return p }
        guard let e = error as? EngineError else { return ACMEProblem("serverInternal", "internal error", status: 500) }
        if let type = e.acmeProblem {
            let subproblems = e.subproblems.map { sub in
                ACMEProblem(
                    (sub.acmeProblem ?? .malformed).rawValue, sub.message, status: type.status,
                    identifier: .init(type: sub.itemType, value: sub.itemValue))
            }
            return ACMEProblem(
                type.rawValue, e.message, status: type.status, subproblems: subproblems.isEmpty ? nil : subproblems)
        }
        switch e.code {
        case .notFound, .gone: return ACMEProblem("malformed", e.message, status: 404)
        case .unauthenticated, .permissionDenied, .sensitive, .notExtractable:
            return ACMEProblem("unauthorized", e.message, status: 403)
        case .invalidArgument, .featureNotSupported: return ACMEProblem("malformed", e.message)
        case .unavailable: return ACMEProblem("serverInternal", e.message, status: 503)
        case .conflict, .wrongState, .outsideUseWindow, .alreadyExists:
            return ACMEProblem("malformed", e.message, status: 409)
        case .locked: return ACMEProblem("rateLimited", e.message, status: 429)
        // .cryptographicFailure, .internal, and codes added later: nothing of the cause reaches the client.
        default: return ACMEProblem("serverInternal", "internal error", status: 500)
        }
    }

    // MARK: Request plumbing

    static func host(_ request: Request) -> String {
        request.head.authority ?? "localhost"
    }

    func base(_ request: Request, _ context: GatehouseRequestContext) -> String {
        let path = request.uri.path
        let profile = context.parameters.get("profile") ?? ""
        let marker =
            path.hasPrefix("/acme/") ? "/acme/\(profile)" : "/api/v1/cert-manager/certificate-profiles/\(profile)/acme"
        return "https://\(Self.host(request))\(marker)"
    }

    /// Parses and authenticates a POST. `allowJWK`: newAccount and revokeCert may carry a jwk instead of a kid.
    func authenticate(_ request: Request, _ context: GatehouseRequestContext, allowJWK: Bool = false) async throws
        -> Call
    {
        let base = base(request, context)
        let profile: ProfileInfo
        do {
            profile = try await engine.acmeProfile(
                CallContext(principal: .anonymous, frontEnd: "acme", requestID: ""),
                profile: try context.parameters.require("profile"))
        } catch {
            throw ACMEProblem("malformed", "no such ACME directory", status: 404)
        }
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/jose+json") == true else {
            throw ACMEProblem("malformed", "Content-Type must be application/jose+json", status: 415)
        }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: 64 * 1024) } catch {
            throw ACMEProblem.malformed("the request body is larger than 64 KiB")
        }
        let jws = try JWS.parse(Array(buffer: body))
        let expected = "https://\(Self.host(request))\(request.uri.path)"
        guard jws.url == expected else {
            throw ACMEProblem.unauthorized("the JWS url '\(jws.url)' is not this request's URL \(expected)")
        }
        guard let nonce = jws.nonce, try await engine.acmeConsumeNonce(nonce) else {
            throw ACMEProblem.badNonce("the nonce is unknown, expired or already used")
        }
        var accountId: String?
        let key: JWK
        if let jwk = jws.jwk {
            guard allowJWK else { throw ACMEProblem.malformed("this request must be signed with the account's kid") }
            key = jwk
        } else {
            guard let kid = jws.kid, kid.hasPrefix(base + "/account/") else {
                throw ACMEProblem.accountDoesNotExist("kid must be an account URL of this directory")
            }
            let id = String(kid.dropFirst((base + "/account/").count))
            let account: ACMEAccountInfo
            do { account = try await engine.acmeAccount(profileId: profile.id, accountId: id) } catch {
                throw Self.problem(error)
            }
            guard account.status == .valid else { throw ACMEProblem.unauthorized("the account is \(account.status)") }
            guard let object = try? JSONSerialization.jsonObject(with: Data(account.jwk.utf8)) as? [String: Any] else {
                throw ACMEProblem("serverInternal", "stored account key unreadable", status: 500)
            }
            key = try JWK(json: object)
            accountId = id
        }
        guard key.algorithms.contains(jws.alg) else {
            throw ACMEProblem.badSignatureAlgorithm(
                "alg \(jws.alg) does not match the key (use \(key.algorithms.sorted().joined(separator: " or ")))")
        }
        guard key.verify(alg: jws.alg, signature: jws.signature, input: jws.signingInput) else {
            throw ACMEProblem.malformed("the JWS signature does not verify")
        }
        let principal = Principal(
            method: .acmeAccount, id: accountId ?? ("jwk:" + key.thumbprint), name: accountId ?? key.thumbprint)
        let ctx = CallContext(
            principal: principal, frontEnd: "acme",
            requestID: request.headers[HTTPField.Name("X-Request-Id")!].map { String($0.prefix(100)) }
                ?? RandomUUID.string(),
            ipAddress: context.peerAddress, userAgent: request.headers[.userAgent])
        return Call(base: base, profile: profile, jws: jws, ctx: ctx, accountId: accountId)
    }

    /// Runs a POST handler, turning every failure into a problem document.
    func post(
        _ request: Request, _ context: GatehouseRequestContext, allowJWK: Bool = false,
        _ body: @escaping @Sendable (Call) async throws -> Response
    ) async -> Response {
        let base = base(request, context)
        do {
            let call = try await authenticate(request, context, allowJWK: allowJWK)
            return try await body(call)
        } catch {
            let p = Self.problem(error)
            if p.status >= 500 { logger.error("ACME request failed", metadata: ["error": "\(error)"]) }
            var extra: HTTPFields = [:]
            if let e = error as? EngineError, let seconds = e.retryAfter { extra[.retryAfter] = "\(seconds)" }
            return await problem(p, base: base, extra: extra)
        }
    }

    // MARK: Resources

    func accountJSON(_ a: ACMEAccountInfo, base: String) -> [String: Any] {
        [
            "status": a.status.rawValue, "contact": a.contact, "orders": "\(base)/account/\(a.id)/orders",
            "createdAt": a.createdAt.formatted(.iso8601),
        ]
    }

    func orderJSON(_ o: ACMEOrderInfo, base: String) -> [String: Any] {
        var j: [String: Any] = [
            "status": o.status.rawValue, "expires": o.expires.formatted(.iso8601),
            "identifiers": o.identifiers.map { ["type": $0.type, "value": $0.value] },
            "authorizations": o.authorizations.map { "\(base)/authz/\($0)" }, "finalize": "\(base)/finalize/\(o.id)",
        ]
        if let nb = o.notBefore { j["notBefore"] = nb.formatted(.iso8601) }
        if let na = o.notAfter { j["notAfter"] = na.formatted(.iso8601) }
        if let serial = o.certificateSerial { j["certificate"] = "\(base)/cert/\(serial)" }
        if let e = o.error { j["error"] = ["type": e.type, "detail": e.detail] }
        if let r = o.replaces { j["replaces"] = r }
        if let p = o.profile { j["profile"] = p }
        return j
    }

    func challengeJSON(_ c: ACMEChallengeInfo, base: String) -> [String: Any] {
        var j: [String: Any] = [
            "type": c.type, "url": "\(base)/chall/\(c.id)", "token": c.token, "status": c.status.rawValue,
        ]
        if let v = c.validated { j["validated"] = v.formatted(.iso8601) }
        if let e = c.error { j["error"] = ["type": e.type, "detail": e.detail] }
        return j
    }

    func authzJSON(_ a: ACMEAuthorizationInfo, base: String) -> [String: Any] {
        var j: [String: Any] = [
            "status": a.status.rawValue, "expires": a.expires.formatted(.iso8601),
            "identifier": ["type": a.identifier.type, "value": a.identifier.value],
            "challenges": a.challenges.map { challengeJSON($0, base: base) },
        ]
        if a.wildcard { j["wildcard"] = true }
        return j
    }

    static func location(_ url: String) -> HTTPFields { [.location: url] }

    func directoryExists(_ context: GatehouseRequestContext) async -> Bool {
        guard let profile = context.parameters.get("profile") else { return false }
        return
            (try? await engine.acmeProfile(
                CallContext(principal: .anonymous, frontEnd: "acme", requestID: ""), profile: profile)) != nil
    }

    // MARK: Routes

    func register(on router: Router<GatehouseRequestContext>) {
        for prefix in Self.prefixes {
            let g = router.group(RouterPath(prefix))
            g.get("directory") { request, context -> Response in
                let base = base(request, context)
                guard await directoryExists(context) else {
                    return await problem(ACMEProblem("malformed", "no such ACME directory", status: 404), base: base)
                }
                var meta: [String: Any] = ["externalAccountRequired": true]
                // More than one profile behind this directory: announce them (draft-ietf-acme-profiles).
                if let profile = context.parameters.get("profile"),
                    let offered = try? await engine.acmeDirectoryProfiles(
                        CallContext(principal: .anonymous, frontEnd: "acme", requestID: ""), profile: profile),
                    offered.count > 1
                {
                    meta["profiles"] = Dictionary(
                        offered.map { ($0.slug, $0.description ?? $0.slug) }, uniquingKeysWith: { a, _ in a })
                }
                if let tos = settings.termsOfService { meta["termsOfService"] = tos }
                if let site = settings.website { meta["website"] = site }
                if !settings.caaIdentities.isEmpty { meta["caaIdentities"] = settings.caaIdentities }
                let directory: [String: Any] = [
                    "newNonce": "\(base)/new-nonce", "newAccount": "\(base)/new-account",
                    "newOrder": "\(base)/new-order",
                    "revokeCert": "\(base)/revoke-cert", "keyChange": "\(base)/key-change",
                    "renewalInfo": "\(base)/renewal-info", "meta": meta,
                ]
                var h: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
                h[.contentType] = "application/json"
                let data =
                    (try? JSONSerialization.data(
                        withJSONObject: directory, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
                return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: data)))
            }
            for (method, status) in [(HTTPRequest.Method.head, HTTPResponse.Status.ok), (.get, .noContent)] {
                g.on("new-nonce", method: method) { request, context -> Response in
                    let base = base(request, context)
                    guard await directoryExists(context) else {
                        return await problem(
                            ACMEProblem("malformed", "no such ACME directory", status: 404), base: base)
                    }
                    return Response(status: status, headers: await headers(base))
                }
            }
            g.post("new-account") { request, context -> Response in
                await post(request, context, allowJWK: true) { call in
                    guard let jwk = call.jws.jwk else { throw ACMEProblem.malformed("newAccount must carry the jwk") }
                    let payload = try call.jws.payloadObject() ?? [:]
                    let only = payload["onlyReturnExisting"] as? Bool ?? false
                    let agreed = payload["termsOfServiceAgreed"] as? Bool ?? false
                    if settings.termsOfService != nil, !agreed, !only {
                        throw ACMEProblem(
                            "userActionRequired", "agree to the terms of service (termsOfServiceAgreed)", status: 403)
                    }
                    let contact = (payload["contact"] as? [Any])?.compactMap { $0 as? String } ?? []
                    var eab: (kid: String, alg: String, signingInput: [UInt8], mac: [UInt8])?
                    if let binding = payload["externalAccountBinding"] as? [String: Any] {
                        let parsed = try ExternalAccountBinding.parse(binding, outerURL: call.jws.url, outerJWK: jwk)
                        eab = (parsed.kid, parsed.alg, parsed.signingInput, parsed.mac)
                    }
                    let (account, created) = try await engine.acmeNewAccount(
                        call.ctx, profileId: call.profile.id, jwk: jwk.canonicalJSON, thumbprint: jwk.thumbprint,
                        contact: contact,
                        termsAgreed: agreed, onlyReturnExisting: only, eab: eab)
                    return await json(
                        accountJSON(account, base: call.base), status: created ? .created : .ok, base: call.base,
                        extra: Self.location("\(call.base)/account/\(account.id)"))
                }
            }
            g.post("account/:id") { request, context -> Response in
                await post(request, context) { call in
                    let id = try context.parameters.require("id")
                    guard call.accountId == id else { throw ACMEProblem.unauthorized("the kid is not this account") }
                    let payload = try call.jws.payloadObject()
                    var account: ACMEAccountInfo
                    if let payload, payload["contact"] != nil || payload["status"] != nil {
                        if let status = payload["status"] as? String, status != ACMEStatus.deactivated.rawValue {
                            throw ACMEProblem.malformed("an account can only be updated to status 'deactivated'")
                        }
                        account = try await engine.acmeUpdateAccount(
                            call.ctx, accountId: id,
                            contact: (payload["contact"] as? [Any])?.compactMap { $0 as? String },
                            deactivate: payload["status"] as? String == "deactivated")
                    } else {
                        account = try await engine.acmeAccount(profileId: call.profile.id, accountId: id)
                    }
                    return await json(accountJSON(account, base: call.base), base: call.base)
                }
            }
            // The orders list, 50 at a time: each page links the next (RFC 8555 §7.1.2.1, Link rel="next"), whose
            // last path segment is the last order id of this page.
            for path in ["account/:id/orders", "account/:id/orders/:after"] {
                g.post(RouterPath(path)) { request, context -> Response in
                    await post(request, context) { call in
                        let id = try context.parameters.require("id")
                        guard call.accountId == id else {
                            throw ACMEProblem.unauthorized("the kid is not this account")
                        }
                        let page = try await engine.acmeOrders(
                            call.ctx, accountId: id, after: context.parameters.get("after"), limit: 50)
                        var extra = HTTPFields()
                        if let next = page.next {
                            extra[HTTPField.Name("Link")!] = "<\(call.base)/account/\(id)/orders/\(next)>;rel=\"next\""
                        }
                        return await json(
                            ["orders": page.items.map { "\(call.base)/order/\($0)" }], base: call.base, extra: extra)
                    }
                }
            }
            g.post("new-order") { request, context -> Response in
                await post(request, context) { call in
                    guard let payload = try call.jws.payloadObject(),
                        let ids = payload["identifiers"] as? [[String: Any]]
                    else {
                        throw ACMEProblem.malformed("newOrder needs identifiers")
                    }
                    let identifiers = try ids.map { i -> ACMEIdentifier in
                        guard let t = i["type"] as? String, let v = i["value"] as? String else {
                            throw ACMEProblem.malformed("identifier needs type and value")
                        }
                        return ACMEIdentifier(type: t, value: v)
                    }
                    func chosenProfile() throws -> String? {
                        guard let value = payload["profile"] else { return nil }
                        guard let name = value as? String, !name.isEmpty else {
                            throw ACMEProblem.malformed("profile must be a profile name")
                        }
                        return name
                    }
                    func date(_ key: String) throws -> Date? {
                        guard let s = payload[key] as? String else { return nil }
                        guard let d = try? Date(s, strategy: .iso8601) else {
                            throw ACMEProblem.malformed("\(key) is not an RFC 3339 date")
                        }
                        return d
                    }
                    var replaces: (certID: String, authorityKeyId: [UInt8], serial: [UInt8])?
                    if let certID = payload["replaces"] as? String {
                        let parts = certID.split(separator: ".", omittingEmptySubsequences: false)
                        guard parts.count == 2, let aki = Base64URL.decode(String(parts[0])),
                            let serial = Base64URL.decode(String(parts[1])),
                            !aki.isEmpty, !serial.isEmpty
                        else {
                            throw ACMEProblem.malformed(
                                "replaces must be an ARI certID: base64url(AKI).base64url(serial)")
                        }
                        replaces = (certID, aki, serial)
                    }
                    let order = try await engine.acmeNewOrder(
                        call.ctx, accountId: call.accountId ?? "", identifiers: identifiers,
                        notBefore: try date("notBefore"),
                        notAfter: try date("notAfter"), replaces: replaces, profile: try chosenProfile(),
                        limits: ACMERateLimits(
                            ordersPerAccountPerHour: settings.ordersPerAccountPerHour,
                            ordersPerIdentifierPerHour: settings.ordersPerIdentifierPerHour))
                    return await json(
                        orderJSON(order, base: call.base), status: .created, base: call.base,
                        extra: Self.location("\(call.base)/order/\(order.id)"))
                }
            }
            g.post("order/:id") { request, context -> Response in
                await post(request, context) { call in
                    let order = try await engine.acmeOrder(
                        call.ctx, accountId: call.accountId ?? "", orderId: try context.parameters.require("id"))
                    var extra: HTTPFields = [:]
                    if order.status == .processing || order.status == .pending { extra[.retryAfter] = "1" }
                    return await json(orderJSON(order, base: call.base), base: call.base, extra: extra)
                }
            }
            g.post("authz/:id") { request, context -> Response in
                await post(request, context) { call in
                    let id = try context.parameters.require("id")
                    let authz: ACMEAuthorizationInfo
                    // RFC 8555 §7.5.2: a payload {"status": "deactivated"} deactivates; POST-as-GET reads.
                    if let payload = try call.jws.payloadObject(), let status = payload["status"] {
                        guard status as? String == ACMEStatus.deactivated.rawValue else {
                            throw ACMEProblem.malformed("an authorization can only be updated to status 'deactivated'")
                        }
                        authz = try await engine.acmeDeactivateAuthorization(
                            call.ctx, accountId: call.accountId ?? "", authorizationId: id)
                    } else {
                        authz = try await engine.acmeAuthorization(
                            call.ctx, accountId: call.accountId ?? "", authorizationId: id)
                    }
                    var extra: HTTPFields = [:]
                    if authz.status == .pending { extra[.retryAfter] = "1" }
                    return await json(authzJSON(authz, base: call.base), base: call.base, extra: extra)
                }
            }
            g.post("chall/:id") { request, context -> Response in
                await post(request, context) { call in
                    let id = try context.parameters.require("id")
                    var (challenge, authz, task) = try await engine.acmeRespondChallenge(
                        call.ctx, accountId: call.accountId ?? "", challengeId: id, lease: validator.lease.seconds)
                    if let task, let validated = await validator.validateFirst(task) { challenge = validated }
                    var extra: HTTPFields = [HTTPField.Name("Link")!: "<\(call.base)/authz/\(authz.id)>;rel=\"up\""]
                    if challenge.status == .processing { extra[.retryAfter] = "1" }
                    return await json(challengeJSON(challenge, base: call.base), base: call.base, extra: extra)
                }
            }
            g.post("finalize/:id") { request, context -> Response in
                await post(request, context) { call in
                    guard let payload = try call.jws.payloadObject(), let csrText = payload["csr"] as? String,
                        let csr = Base64URL.decode(csrText)
                    else { throw ACMEProblem("badCSR", "finalize needs a base64url csr") }
                    let order = try await engine.acmeFinalize(
                        call.ctx, accountId: call.accountId ?? "", orderId: try context.parameters.require("id"),
                        csr: csr)
                    return await json(
                        orderJSON(order, base: call.base), base: call.base,
                        extra: Self.location("\(call.base)/order/\(order.id)"))
                }
            }
            g.post("cert/:serial") { request, context -> Response in
                await post(request, context) { call in
                    let chain = try await engine.acmeCertificate(
                        call.ctx, accountId: call.accountId ?? "", serial: try context.parameters.require("serial"))
                    var h = await headers(call.base)
                    h[.contentType] = "application/pem-certificate-chain"
                    let pem = chain.map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString + "\n" }.joined()
                    return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: pem)))
                }
            }
            g.post("key-change") { request, context -> Response in
                await post(request, context) { call in
                    // RFC 8555 §7.3.5: the payload is a JWS by the new key over {account, oldKey}.
                    guard let accountId = call.accountId else {
                        throw ACMEProblem.malformed("key-change must be signed with the account's kid")
                    }
                    let inner = try JWS.parse(call.jws.payload, requireNonce: false)
                    guard inner.nonce == nil else {
                        throw ACMEProblem.malformed("the inner JWS must not carry a nonce")
                    }
                    guard inner.url == call.jws.url else {
                        throw ACMEProblem.malformed("the inner JWS url must equal the outer url")
                    }
                    guard let newKey = inner.jwk else {
                        throw ACMEProblem.malformed("the inner JWS must carry the new key as jwk")
                    }
                    guard newKey.algorithms.contains(inner.alg),
                        newKey.verify(alg: inner.alg, signature: inner.signature, input: inner.signingInput)
                    else {
                        throw ACMEProblem.malformed("the inner JWS signature does not verify with the new key")
                    }
                    guard let payload = try inner.payloadObject(),
                        payload["account"] as? String == "\(call.base)/account/\(accountId)",
                        let oldObject = payload["oldKey"] as? [String: Any]
                    else { throw ACMEProblem.malformed("the inner payload must name this account and its oldKey") }
                    let oldKey = try JWK(json: oldObject)
                    do {
                        let account = try await engine.acmeChangeKey(
                            call.ctx, accountId: accountId, oldThumbprint: oldKey.thumbprint,
                            newJWK: newKey.canonicalJSON,
                            newThumbprint: newKey.thumbprint)
                        return await json(accountJSON(account, base: call.base), base: call.base)
                    } catch let e as EngineError where e.code == .alreadyExists {
                        return await problem(
                            ACMEProblem("malformed", "the new key is already in use by another account", status: 409),
                            base: call.base)
                    }
                }
            }
            g.get("renewal-info/:certID") { request, context -> Response in
                let base = base(request, context)
                // RFC 9773 §4.1: certID = base64url(AKI keyIdentifier) "." base64url(serial number bytes).
                let certID = (try? context.parameters.require("certID")) ?? ""
                let parts = certID.split(separator: ".", omittingEmptySubsequences: false)
                guard parts.count == 2, let aki = Base64URL.decode(String(parts[0])),
                    let serial = Base64URL.decode(String(parts[1])),
                    !aki.isEmpty, !serial.isEmpty, serial.count <= 21
                else {
                    return await problem(
                        ACMEProblem.malformed("certID must be base64url(AKI).base64url(serial)"), base: base)
                }
                do {
                    guard await directoryExists(context), let profile = context.parameters.get("profile") else {
                        return await problem(
                            ACMEProblem("malformed", "no such ACME directory", status: 404), base: base)
                    }
                    let p = try await engine.acmeProfile(
                        CallContext(principal: .anonymous, frontEnd: "acme", requestID: ""), profile: profile)
                    let (start, end) = try await engine.acmeRenewalInfo(
                        profileId: p.id, authorityKeyId: aki, serial: serial)
                    return await json(
                        ["suggestedWindow": ["start": start.formatted(.iso8601), "end": end.formatted(.iso8601)]],
                        base: base,
                        extra: [.retryAfter: "21600"])
                } catch {
                    return await problem(
                        ACMEProblem("malformed", "no certificate of this directory has that certID", status: 404),
                        base: base)
                }
            }
            g.post("revoke-cert") { request, context -> Response in
                await post(request, context, allowJWK: true) { call in
                    guard let payload = try call.jws.payloadObject(), let certText = payload["certificate"] as? String,
                        let der = Base64URL.decode(certText)
                    else { throw ACMEProblem.malformed("revokeCert needs a base64url certificate") }
                    let reason = payload["reason"] as? Int ?? 0
                    var ctx = call.ctx
                    if call.accountId == nil {
                        // Signed with a jwk: it must be the certificate's own key (§7.6).
                        guard let jwk = call.jws.jwk, Self.certificateKeyMatches(der, jwk) else {
                            throw ACMEProblem.unauthorized("a jwk-signed revocation must use the certificate's key")
                        }
                        ctx.principal = Principal(
                            method: .acmeAccount, id: "certificate-key:" + Self.serialHex(der), name: "certificate key")
                    }
                    try await engine.acmeRevoke(
                        ctx, profileId: call.profile.id, accountId: call.accountId, certificate: der, reason: reason)
                    return Response(status: .ok, headers: await headers(call.base))
                }
            }
        }
    }

    static func serialHex(_ der: [UInt8]) -> String { certificateSerialHex(der) }

    static func certificateKeyMatches(_ der: [UInt8], _ jwk: JWK) -> Bool { jwk.certifies(der) }
}
