import EngineAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A JSON response with a status (dates as ISO 8601, keys sorted).
struct JSON<T: Encodable & Sendable>: ResponseGenerator {
    var status: HTTPResponse.Status = .ok
    var value: T
    init(_ value: T, status: HTTPResponse.Status = .ok) {
        self.value = value
        self.status = status
    }
    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Admin API routes for identities and access control. Paths follow the reference platform's
/// (`/api/v1/auth/universal-auth/login`, `/api/v1/auth/universal-auth/identities/{identityId}`, …).
struct AccessRoutes: Sendable {
    let api: AdminAPI
    var engine: any AccessEngine { api.services.access }

    struct ProjectBody: Codable {
        var slug: String
        var description: String?
    }
    struct ProjectResponse: Codable { var project: ProjectInfo }
    struct ProjectList: Codable {
        var projects: [ProjectInfo]
        var next: String?
    }
    struct IdentityResponse: Codable { var identity: IdentityInfo }
    struct IdentityList: Codable {
        var identities: [IdentityInfo]
        var next: String?
    }
    struct UniversalAuthResponse: Codable { var identityUniversalAuth: UniversalAuthInfo }
    struct ClientSecretResponse: Codable {
        var clientSecret: String
        var clientSecretData: ClientSecretInfo
    }
    struct ClientSecretList: Codable {
        var clientSecretData: [ClientSecretInfo]
        var next: String?
    }
    struct ClientSecretOne: Codable { var clientSecretData: ClientSecretInfo }
    struct TokenAuthResponse: Codable { var identityTokenAuth: TokenAuthInfo }
    struct TLSCertAuthResponse: Codable { var identityTlsCertAuth: TLSCertAuthInfo }
    struct LoginBody: Codable {
        var clientId: String
        var clientSecret: String
    }
    struct TLSLoginBody: Codable { var identityId: String }
    struct TokenBody: Codable { var accessToken: String }
    struct Message: Codable { var message: String }
    struct RoleResponse: Codable { var role: RoleInfo }
    struct RoleList: Codable {
        var roles: [RoleInfo]
        var next: String?
    }
    struct MembershipBody: Codable { var roles: [RoleGrant] }
    struct MembershipResponse: Codable { var identityMembership: MembershipInfo }
    struct MembershipList: Codable {
        var identityMemberships: [MembershipInfo]
        var next: String?
    }
    struct PrivilegeResponse: Codable { var privilege: PrivilegeInfo }
    struct PrivilegeList: Codable {
        var privileges: [PrivilegeInfo]
        var next: String?
    }

    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        try await api.decode(type, request)
    }
    func ctx(_ request: Request, _ context: GatehouseRequestContext) async throws -> CallContext {
        try await api.context(request, context)
    }
    func page(_ request: Request) throws -> (String?, Int) { try AdminAPI.page(request) }

    /// One page of a list the engine returns whole (bounded lists: roles, memberships, privileges, client secrets),
    /// ordered by `key`; `next` is the last key of the page when more follow.
    func paginate<T>(_ items: [T], _ request: Request, key: (T) -> String) throws -> ([T], String?) {
        try AdminAPI.paginate(items, request, key: key)
    }

    func register(on api: RouterGroup<GatehouseRequestContext>) {
        // Projects
        api.post("projects") { request, c in
            let body = try await decode(ProjectBody.self, request)
            let p = try await engine.createProject(
                try await ctx(request, c), slug: body.slug, description: body.description ?? "")
            return JSON(ProjectResponse(project: p), status: .created)
        }
        api.get("projects") { request, c in
            let (after, limit) = try page(request)
            let p = try await engine.listProjects(try await ctx(request, c), after: after, limit: limit)
            return JSON(ProjectList(projects: p.items, next: p.next))
        }
        api.get("projects/:project") { request, c in
            JSON(
                ProjectResponse(
                    project: try await engine.getProject(
                        try await ctx(request, c), slug: try c.parameters.require("project"))))
        }
        api.delete("projects/:project") { request, c -> HTTPResponse.Status in
            try await engine.deleteProject(try await ctx(request, c), slug: try c.parameters.require("project"))
            return .noContent
        }

        // Identities
        api.post("identities") { request, c in
            let spec = try await decode(IdentitySpec.self, request)
            return JSON(
                IdentityResponse(identity: try await engine.createIdentity(try await ctx(request, c), spec)),
                status: .created)
        }
        api.get("identities") { request, c in
            let (after, limit) = try page(request)
            let p = try await engine.listIdentities(try await ctx(request, c), after: after, limit: limit)
            return JSON(IdentityList(identities: p.items, next: p.next))
        }
        api.get("identities/:identityId") { request, c in
            JSON(
                IdentityResponse(
                    identity: try await engine.getIdentity(
                        try await ctx(request, c), id: try c.parameters.require("identityId"))))
        }
        api.patch("identities/:identityId") { request, c in
            let spec = try await decode(IdentitySpec.self, request)
            return JSON(
                IdentityResponse(
                    identity: try await engine.updateIdentity(
                        try await ctx(request, c), id: try c.parameters.require("identityId"), spec)))
        }
        api.delete("identities/:identityId") { request, c -> HTTPResponse.Status in
            try await engine.deleteIdentity(try await ctx(request, c), id: try c.parameters.require("identityId"))
            return .noContent
        }

        // Universal Auth
        api.post("auth/universal-auth/identities/:identityId") { request, c in
            let spec = try await decode(AuthMethodSpec.self, request)
            let info = try await engine.attachUniversalAuth(
                try await ctx(request, c), identityId: try c.parameters.require("identityId"), spec)
            return JSON(UniversalAuthResponse(identityUniversalAuth: info), status: .created)
        }
        api.get("auth/universal-auth/identities/:identityId") { request, c in
            JSON(
                UniversalAuthResponse(
                    identityUniversalAuth: try await engine.getUniversalAuth(
                        try await ctx(request, c), identityId: try c.parameters.require("identityId"))))
        }
        api.post("auth/universal-auth/identities/:identityId/client-secrets") { request, c in
            let spec = try await decode(ClientSecretSpec.self, request)
            let (info, secret) = try await engine.createClientSecret(
                try await ctx(request, c), identityId: try c.parameters.require("identityId"), spec)
            return JSON(
                ClientSecretResponse(
                    clientSecret: String(decoding: secret.bytes, as: UTF8.self), clientSecretData: info),
                status: .created)
        }
        api.get("auth/universal-auth/identities/:identityId/client-secrets") { request, c in
            let all = try await engine.listClientSecrets(
                try await ctx(request, c), identityId: try c.parameters.require("identityId"))
            let (items, next) = try paginate(all, request) { $0.id }
            return JSON(ClientSecretList(clientSecretData: items, next: next))
        }
        api.post("auth/universal-auth/identities/:identityId/client-secrets/:clientSecretId/revoke") { request, c in
            JSON(
                ClientSecretOne(
                    clientSecretData: try await engine.revokeClientSecret(
                        try await ctx(request, c), identityId: try c.parameters.require("identityId"),
                        clientSecretId: try c.parameters.require("clientSecretId"))))
        }
        api.post("auth/universal-auth/login") { request, c in
            let body = try await decode(LoginBody.self, request)
            let token = try await engine.loginUniversalAuth(
                try await ctx(request, c), clientId: body.clientId, clientSecret: SecretBytes(utf8: body.clientSecret))
            return JSON(token)
        }

        // Token Auth
        api.post("auth/token-auth/identities/:identityId") { request, c in
            let spec = try await decode(AuthMethodSpec.self, request)
            let info = try await engine.attachTokenAuth(
                try await ctx(request, c), identityId: try c.parameters.require("identityId"), spec)
            return JSON(TokenAuthResponse(identityTokenAuth: info), status: .created)
        }
        api.post("auth/token-auth/identities/:identityId/tokens") { request, c in
            JSON(
                try await engine.createIdentityToken(
                    try await ctx(request, c), identityId: try c.parameters.require("identityId")),
                status: .created)
        }

        // TLS Certificate Auth
        api.post("auth/tls-cert-auth/identities/:identityId") { request, c in
            let spec = try await decode(AuthMethodSpec.self, request)
            let info = try await engine.attachTLSCertAuth(
                try await ctx(request, c), identityId: try c.parameters.require("identityId"), spec)
            return JSON(TLSCertAuthResponse(identityTlsCertAuth: info), status: .created)
        }
        api.get("auth/tls-cert-auth/identities/:identityId") { request, c in
            JSON(
                TLSCertAuthResponse(
                    identityTlsCertAuth: try await engine.getTLSCertAuth(
                        try await ctx(request, c), identityId: try c.parameters.require("identityId"))))
        }
        api.post("auth/tls-cert-auth/login") { request, c in
            let body = try await decode(TLSLoginBody.self, request)
            return JSON(try await engine.loginTLSCertAuth(try await ctx(request, c), identityId: body.identityId))
        }

        // Tokens
        api.post("auth/token/renew") { request, c in
            let body = try await decode(TokenBody.self, request)
            return JSON(try await engine.renewToken(try await ctx(request, c), accessToken: body.accessToken))
        }
        api.post("auth/token/revoke") { request, c in
            let body = try await decode(TokenBody.self, request)
            try await engine.revokeToken(try await ctx(request, c), accessToken: body.accessToken)
            return JSON(Message(message: "the access token was revoked"))
        }

        // Roles
        api.post("projects/:project/roles") { request, c in
            let spec = try await decode(RoleSpec.self, request)
            let role = try await engine.createRole(
                try await ctx(request, c), project: try c.parameters.require("project"), spec)
            return JSON(RoleResponse(role: role), status: .created)
        }
        api.get("projects/:project/roles") { request, c in
            let all = try await engine.listRoles(
                try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try paginate(all, request) { $0.slug }
            return JSON(RoleList(roles: items, next: next))
        }
        api.get("projects/:project/roles/:slug") { request, c in
            JSON(
                RoleResponse(
                    role: try await engine.getRole(
                        try await ctx(request, c), project: try c.parameters.require("project"),
                        slug: try c.parameters.require("slug"))))
        }
        api.delete("projects/:project/roles/:slug") { request, c -> HTTPResponse.Status in
            try await engine.deleteRole(
                try await ctx(request, c), project: try c.parameters.require("project"),
                slug: try c.parameters.require("slug"))
            return .noContent
        }

        // Memberships
        api.get("projects/:project/identity-memberships") { request, c in
            let all = try await engine.listMemberships(
                try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try paginate(all, request) { $0.identityId }
            return JSON(MembershipList(identityMemberships: items, next: next))
        }
        api.put("projects/:project/identity-memberships/:identityId") { request, c in
            let body = try await decode(MembershipBody.self, request)
            let m = try await engine.setMembership(
                try await ctx(request, c), project: try c.parameters.require("project"),
                identityId: try c.parameters.require("identityId"), roles: body.roles)
            return JSON(MembershipResponse(identityMembership: m))
        }
        api.delete("projects/:project/identity-memberships/:identityId") { request, c -> HTTPResponse.Status in
            try await engine.deleteMembership(
                try await ctx(request, c), project: try c.parameters.require("project"),
                identityId: try c.parameters.require("identityId"))
            return .noContent
        }

        // Additional privileges
        api.post("projects/:project/identity-privileges") { request, c in
            let spec = try await decode(PrivilegeSpec.self, request)
            let p = try await engine.createPrivilege(
                try await ctx(request, c), project: try c.parameters.require("project"), spec)
            return JSON(PrivilegeResponse(privilege: p), status: .created)
        }
        api.get("projects/:project/identity-privileges") { request, c in
            let all = try await engine.listPrivileges(
                try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try paginate(all, request) { $0.id }
            return JSON(PrivilegeList(privileges: items, next: next))
        }
        api.delete("projects/:project/identity-privileges/:privilegeId") { request, c -> HTTPResponse.Status in
            try await engine.deletePrivilege(
                try await ctx(request, c), project: try c.parameters.require("project"),
                id: try c.parameters.require("privilegeId"))
            return .noContent
        }
    }
}
