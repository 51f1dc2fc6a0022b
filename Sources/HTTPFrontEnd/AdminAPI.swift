import AdminAPI
import EngineAPI
import Foundation
import HTTPTypes
import Hummingbird
import KMIPService
import NIOCore

/// The engine as the HTTPS listener sees it: one narrow protocol per route group. The daemon passes the same engine
/// for each; tests pass doubles for the groups they exercise.
public struct AdminServices: Sendable {
    public var authenticator: any Authenticator
    public var access: any AccessEngine
    public var secrets: any SecretsEngine
    public var audit: any AuditEngine
    public var pki: any PKIEngine
    public var alerts: any AlertEngine
    public var kmipPKI: any KMIPPKIEngine
    public var ssh: any SSHEngine
    public var pam: any PAMEngine
    public var est: any ESTEngine
    public var acme: any ACMEEngine
    /// KMIP over HTTPS.
    public var keys: any KeyEngine

    public init(
        authenticator: any Authenticator, access: any AccessEngine, secrets: any SecretsEngine, audit: any AuditEngine,
        pki: any PKIEngine, alerts: any AlertEngine, kmipPKI: any KMIPPKIEngine, ssh: any SSHEngine, pam: any PAMEngine,
        est: any ESTEngine, acme: any ACMEEngine, keys: any KeyEngine
    ) {
        self.authenticator = authenticator
        self.access = access
        self.secrets = secrets
        self.audit = audit
        self.pki = pki
        self.alerts = alerts
        self.kmipPKI = kmipPKI
        self.ssh = ssh
        self.pam = pam
        self.est = est
        self.acme = acme
        self.keys = keys
    }
}

/// Routes of the HTTPS listener: health, and the admin API (`/api/v1/…`). Every operation is one engine call
/// with the caller's principal; the engine authorizes and audits.
public struct AdminAPI: Sendable {
    let services: AdminServices
    let maxBodySize: Int
    /// The EST profile served at `/.well-known/est/…` without a label.
    let estDefaultProfile: String?
    let acme: ACMESettings
    let acmeValidator: ACMEValidator

    public init(
        services: AdminServices, maxBodySize: Int, estDefaultProfile: String? = nil,
        acme: ACMESettings = ACMESettings(),
        acmeValidator: ACMEValidator
    ) {
        self.acmeValidator = acmeValidator
        self.services = services
        self.maxBodySize = maxBodySize
        self.estDefaultProfile = estDefaultProfile
        self.acme = acme
    }

    struct SecretValueBody: Codable {
        var value: String
        var expectedVersion: Int64?
    }

    struct SecretResponse: Codable, ResponseEncodable {
        var secret: SecretMetadata
        var value: String?
    }

    struct SecretList: Codable, ResponseEncodable {
        var secrets: [SecretMetadata]
        var next: String?
    }

    struct AuditList: Codable, ResponseEncodable {
        struct Item: Codable {
            var chain: String
            var sequence: Int64
            var hash: String
            var event: AuditEvent
        }
        var events: [Item]
        /// The cursor for the next page (always set when reading the log in arrival order, to read what comes later).
        var next: String?
    }

    struct Whoami: Codable, ResponseEncodable {
        var method: String
        var id: String
        var name: String
    }

    /// The caller of a request: a bearer access token when the request carries one, else the TLS client
    /// certificate (or anonymous).
    func context(_ request: Request, _ context: GatehouseRequestContext) async throws -> CallContext {
        let requestID = request.headers[.init("X-Request-Id")!].map { String($0.prefix(100)) } ?? RandomUUID.string()
        var principal = await context.principal()
        if let authorization = request.headers[.authorization] {
            guard authorization.lowercased().hasPrefix("bearer ") else {
                throw EngineError(.unauthenticated, "the Authorization header must be 'Bearer <access token>'")
            }
            principal = try await services.authenticator.authenticate(
                bearerToken: String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces),
                ipAddress: context.peerAddress, frontEnd: "admin-api")
        }
        return CallContext(
            principal: principal, frontEnd: "admin-api", requestID: requestID, ipAddress: context.peerAddress,
            userAgent: request.headers[.userAgent])
    }

    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        var request = request
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodySize {
            throw HTTPError(.contentTooLarge, message: "the request body exceeds the listener's limit")
        }
        let buffer = try await request.collectBody(upTo: maxBodySize)
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(T.self, from: Data(buffer: buffer))
        } catch {
            throw HTTPError(.badRequest, message: "the request body is not valid JSON for this endpoint")
        }
    }

    /// The query parameter `name`, nil when absent; 400 when longer than `max` characters (what the OpenAPI document
    /// declares).
    static func text(_ request: Request, _ name: String, max: Int = 200) throws -> String? {
        guard let value = request.uri.queryParameters.get(name) else { return nil }
        guard value.unicodeScalars.count <= max else {
            throw HTTPError(.badRequest, message: "\(name) is longer than \(max) characters")
        }
        return value
    }

    /// `after` and `limit` query parameters; `limit` must be an integer 1–1000 (default 100).
    static func page(_ request: Request) throws -> (String?, Int) {
        let after = request.uri.queryParameters.get("after")
        guard let text = request.uri.queryParameters.get("limit") else { return (after, 100) }
        guard let limit = Int(text), (1...1000).contains(limit) else {
            throw HTTPError(.badRequest, message: "limit must be an integer from 1 to 1000")
        }
        return (after, limit)
    }

    /// The query parameter `name` as an RFC 3339 time (fractional seconds allowed), nil when absent; 400 when it is
    /// not one.
    static func time(_ request: Request, _ name: String) throws -> Date? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        let f = ISO8601DateFormatter()
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let d = f.date(from: text) else {
            throw HTTPError(.badRequest, message: "\(name) must be an RFC 3339 time such as 2026-01-31T12:00:00Z")
        }
        return d
    }

    /// One page of a list the engine returns whole (bounded lists), ordered by `key`; `next` is the last key of the
    /// page when more follow.
    static func paginate<T>(_ items: [T], _ request: Request, key: (T) -> String) throws -> ([T], String?) {
        let (after, limit) = try page(request)
        let sorted = items.sorted { key($0) < key($1) }
        let rest = after.map { a in sorted.filter { key($0) > a } } ?? sorted
        let pageItems = Array(rest.prefix(limit))
        return (pageItems, rest.count > limit ? pageItems.last.map(key) : nil)
    }

    static func utf8(_ s: SecretBytes) -> String { String(decoding: s.bytes, as: UTF8.self) }

    /// Adds the routes to a router.
    public func register(
        on router: Router<GatehouseRequestContext>, readiness: @escaping @Sendable () async -> (Bool, String)
    ) {
        HTTPListener.addHealthRoutes(to: router, readiness: readiness)
        let api = router.group("api/v1")
        api.get("whoami") { request, ctx in
            JSON(try await services.access.whoami(try await context(request, ctx)))
        }
        api.get("openapi.json") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: AdminAPIDocument.json)))
        }
        AccessRoutes(api: self).register(on: api)
        PKIRoutes(api: self).register(on: api, root: router)
        SSHRoutes(api: self).register(on: api, root: router)
        PAMRoutes(api: self).register(on: api)
        ESTRoutes(engine: services.est, defaultProfile: estDefaultProfile).register(on: router)
        ACMERoutes(engine: services.acme, settings: acme, validator: acmeValidator).register(on: router)
        KMIPHTTPRoutes(
            dispatcher: KMIPDispatcher(
                maxMessageSize: KMIPHTTPRoutes.maxBody, engine: services.keys,
                clock: { Int64(Date().timeIntervalSince1970) })
        )
        .register(on: router)
        let secrets = api.group("projects/:project/secrets")
        secrets.get { request, ctx -> SecretList in
            let project = try ctx.parameters.require("project")
            let (after, limit) = try Self.page(request)
            let page = try await services.secrets.listSecrets(
                try await context(request, ctx), project: project, after: after, limit: limit)
            return SecretList(secrets: page.items, next: page.next)
        }
        secrets.post(":name") { request, ctx -> EditedResponse<SecretResponse> in
            let body = try await decode(SecretValueBody.self, request)
            let meta = try await services.secrets.createSecret(
                try await context(request, ctx), project: try ctx.parameters.require("project"),
                name: try ctx.parameters.require("name"), value: SecretBytes(utf8: body.value))
            return EditedResponse(status: .created, response: SecretResponse(secret: meta, value: nil))
        }
        secrets.put(":name") { request, ctx -> SecretResponse in
            let body = try await decode(SecretValueBody.self, request)
            let meta = try await services.secrets.updateSecret(
                try await context(request, ctx), project: try ctx.parameters.require("project"),
                name: try ctx.parameters.require("name"), value: SecretBytes(utf8: body.value),
                expectedVersion: body.expectedVersion)
            return SecretResponse(secret: meta, value: nil)
        }
        secrets.get(":name") { request, ctx -> SecretResponse in
            let (meta, value) = try await services.secrets.readSecret(
                try await context(request, ctx), project: try ctx.parameters.require("project"),
                name: try ctx.parameters.require("name"))
            return SecretResponse(secret: meta, value: Self.utf8(value))
        }
        secrets.delete(":name") { request, ctx -> HTTPResponse.Status in
            try await services.secrets.deleteSecret(
                try await context(request, ctx), project: try ctx.parameters.require("project"),
                name: try ctx.parameters.require("name"))
            return .noContent
        }
        api.get("audit/events") { request, ctx -> AuditList in
            // Without search parameters: the whole log in arrival order (`cursor` from the last page's `next`). With
            // type, actor, project, since, until or order: a search in time order through the store's indexes.
            let (after, limit) = try Self.page(request)
            let p = request.uri.queryParameters
            let cursor = p.get("cursor") ?? after
            func time(_ name: String) throws -> Date? { try Self.time(request, name) }
            let searching = ["type", "actor", "project", "since", "until", "order"].contains { p.get($0) != nil }
            let page: Page<ChainedAuditEvent>
            if searching {
                let order = p.get("order") ?? "asc"
                guard order == "asc" || order == "desc" else {
                    throw HTTPError(.badRequest, message: "order must be asc or desc")
                }
                page = try await services.audit.searchAudit(
                    try await context(request, ctx),
                    AuditSearch(
                        type: try Self.text(request, "type"), actor: try Self.text(request, "actor"),
                        project: try Self.text(request, "project"), since: try time("since"),
                        until: try time("until"), newestFirst: order == "desc", cursor: cursor, limit: limit))
            } else {
                page = try await services.audit.auditEvents(
                    try await context(request, ctx), cursor: cursor, limit: limit)
            }
            return AuditList(
                events: page.items.map {
                    .init(chain: $0.chain, sequence: $0.sequence, hash: $0.hash, event: $0.event)
                },
                next: page.next)
        }
    }
}
