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

/// Routes of the HTTPS listener: health, the admin API (`/api/v1/…`, generated from `openapi.yaml`), ACME, EST, KMIP
/// over HTTPS and the public PKI and SSH files. Every operation is one engine call with the caller's principal; the
/// engine authorizes and audits.
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

    /// The caller of a request: a bearer access token when the request carries one, else the TLS client
    /// certificate (or anonymous).
    func context(_ request: Request, _ context: GatehouseRequestContext) async throws -> CallContext {
        let requestID = request.headers[.init("X-Request-Id")!].map { String($0.prefix(100)) } ?? RandomUUID.string()
        let principal: Principal
        if let authorization = request.headers[.authorization] {
            guard authorization.lowercased().hasPrefix("bearer ") else {
                throw EngineError(.unauthenticated, "the Authorization header must be 'Bearer <access token>'")
            }
            principal = try await services.authenticator.authenticate(
                bearerToken: String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces),
                ipAddress: context.peerAddress, frontEnd: "admin-api")
        } else {
            // The certificate's principal only when no token replaces it (finding it costs a trip to the channel).
            principal = await context.principal()
        }
        return CallContext(
            principal: principal, frontEnd: "admin-api", requestID: requestID, ipAddress: context.peerAddress,
            userAgent: request.headers[.userAgent])
    }

    /// Adds the routes to a router.
    public func register(
        on router: Router<GatehouseRequestContext>, readiness: @escaping @Sendable () async -> (Bool, String)
    ) {
        HTTPListener.addHealthRoutes(to: router, readiness: readiness)
        router.get("api/v1/openapi.json") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: AdminAPIDocument.json)))
        }
        // Every /api/v1 operation of openapi.yaml, through the generated server.
        AdminHandler.register(on: router, api: self)
        PKIRoutes(engine: services.pki).register(on: router)
        SSHRoutes(engine: services.ssh).register(on: router)
        ESTRoutes(engine: services.est, defaultProfile: estDefaultProfile).register(on: router)
        ACMERoutes(engine: services.acme, settings: acme, validator: acmeValidator).register(on: router)
        KMIPHTTPRoutes(
            dispatcher: KMIPDispatcher(
                maxMessageSize: KMIPHTTPRoutes.maxBody, engine: services.keys,
                clock: { Int64(Date().timeIntervalSince1970) })
        )
        .register(on: router)
        Console(services: services, readiness: readiness).register(on: router)
    }
}
