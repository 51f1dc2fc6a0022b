import EngineAPI
import Foundation
import HTTPTypes
import Hummingbird

/// PostgreSQL access management over the admin API: resources and their accounts (`/api/v1/projects/{project}/pam/…`,
/// `/api/v1/pam/…`), just-in-time access requests and grants, and the sessions the proxy recorded.
struct PAMRoutes: Sendable {
    let api: AdminAPI
    var engine: any PAMEngine { api.services.pam }

    struct ResourceResponse: Codable { var resource: PAMResourceInfo }
    struct ResourceList: Codable {
        var resources: [PAMResourceInfo]
        var next: String?
    }
    struct AccountBody: Codable {
        var username: String
        var password: String
        var rotationInterval: String?
    }
    struct AccountResponse: Codable { var account: PAMAccountInfo }
    struct AccountList: Codable {
        var accounts: [PAMAccountInfo]
        var next: String?
    }
    struct AccessBody: Codable {
        var duration: String
        var reason: String
    }
    struct GrantResponse: Codable { var grant: PAMGrantInfo }
    struct GrantList: Codable {
        var grants: [PAMGrantInfo]
        var next: String?
    }
    struct SessionList: Codable {
        var sessions: [PAMSessionInfo]
        var next: String?
    }
    struct SessionResponse: Codable { var session: PAMSessionInfo }
    struct SettingsResponse: Codable { var settings: PAMProjectSettings }
    struct SettingsBody: Codable { var recordingRetention: String? }
    struct HoldBody: Codable { var reason: String }

    func ctx(_ request: Request, _ context: GatehouseRequestContext) async throws -> CallContext {
        try await api.context(request, context)
    }
    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        try await api.decode(type, request)
    }

    func register(on api: RouterGroup<GatehouseRequestContext>) {
        let project = api.group("projects/:project/pam")
        project.post("resources") { request, c in
            let spec = try await decode(PAMResourceSpec.self, request)
            let r = try await engine.createPAMResource(
                try await ctx(request, c), project: try c.parameters.require("project"), spec)
            return JSON(ResourceResponse(resource: r), status: .created)
        }
        project.get("resources") { request, c in
            let all = try await engine.listPAMResources(
                try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try AdminAPI.paginate(all, request) { $0.id }
            return JSON(ResourceList(resources: items, next: next))
        }
        project.get("grants") { request, c in
            let (after, limit) = try AdminAPI.page(request)
            var status: PAMGrantInfo.Status?
            if let text = request.uri.queryParameters.get("status") {
                guard let s = PAMGrantInfo.Status(rawValue: text) else {
                    throw HTTPError(
                        .badRequest, message: "status must be pending, approved, rejected, revoked or expired")
                }
                status = s
            }
            let query = PAMGrantQuery(
                status: status, granteeName: try AdminAPI.text(request, "grantee", max: 200),
                username: try AdminAPI.text(request, "account", max: 200),
                after: after, limit: limit)
            let page = try await engine.listPAMGrants(
                try await ctx(request, c), project: try c.parameters.require("project"), query)
            return JSON(GrantList(grants: page.items, next: page.next))
        }
        project.get("sessions") { request, c in
            let (after, limit) = try AdminAPI.page(request)
            let p = request.uri.queryParameters
            func time(_ name: String) throws -> Date? { try AdminAPI.time(request, name) }
            let order = p.get("order") ?? "desc"
            guard order == "asc" || order == "desc" else {
                throw HTTPError(.badRequest, message: "order must be asc or desc")
            }
            let query = PAMSessionQuery(
                since: try time("since"), until: try time("until"), granteeName: p.get("grantee"),
                resourceName: p.get("resource"),
                username: p.get("account"), endReason: p.get("endReason"), oldestFirst: order == "asc", after: after,
                limit: limit)
            let page = try await engine.listPAMSessions(
                try await ctx(request, c), project: try c.parameters.require("project"), query)
            return JSON(SessionList(sessions: page.items, next: page.next))
        }

        project.get("settings") { request, c in
            JSON(
                SettingsResponse(
                    settings: try await engine.getPAMSettings(
                        try await ctx(request, c), project: try c.parameters.require("project"))))
        }
        project.put("settings") { request, c in
            let body = try await decode(SettingsBody.self, request)
            let settings = PAMProjectSettings(
                project: try c.parameters.require("project"), recordingRetention: body.recordingRetention)
            return JSON(
                SettingsResponse(settings: try await engine.setPAMSettings(try await ctx(request, c), settings)))
        }

        let pam = api.group("pam")
        pam.put("sessions/:sessionId/legal-hold") { request, c in
            let body = try await decode(HoldBody.self, request)
            return JSON(
                SessionResponse(
                    session: try await engine.setPAMLegalHold(
                        try await ctx(request, c), sessionId: try c.parameters.require("sessionId"), reason: body.reason
                    )))
        }
        pam.delete("sessions/:sessionId/legal-hold") { request, c in
            JSON(
                SessionResponse(
                    session: try await engine.setPAMLegalHold(
                        try await ctx(request, c), sessionId: try c.parameters.require("sessionId"), reason: nil)))
        }
        pam.get("sessions/:sessionId/recording/verify") { request, c in
            JSON(
                try await engine.verifyPAMRecording(
                    try await ctx(request, c), sessionId: try c.parameters.require("sessionId")))
        }
        pam.get("sessions/:sessionId/recording") { request, c in
            // The engine authorizes, then reads the recording store.
            JSON(
                try await engine.readPAMRecording(
                    try await ctx(request, c), sessionId: try c.parameters.require("sessionId")))
        }
        pam.get("resources/:resourceId") { request, c in
            JSON(
                ResourceResponse(
                    resource: try await engine.getPAMResource(
                        try await ctx(request, c), id: try c.parameters.require("resourceId"))))
        }
        pam.delete("resources/:resourceId") { request, c -> HTTPResponse.Status in
            try await engine.deletePAMResource(try await ctx(request, c), id: try c.parameters.require("resourceId"))
            return .noContent
        }
        pam.post("resources/:resourceId/accounts") { request, c in
            let body = try await decode(AccountBody.self, request)
            let a = try await engine.createPAMAccount(
                try await ctx(request, c), resourceId: try c.parameters.require("resourceId"), username: body.username,
                password: SecretBytes(utf8: body.password), rotationInterval: body.rotationInterval)
            return JSON(AccountResponse(account: a), status: .created)
        }
        pam.get("resources/:resourceId/accounts") { request, c in
            let all = try await engine.listPAMAccounts(
                try await ctx(request, c), resourceId: try c.parameters.require("resourceId"))
            let (items, next) = try AdminAPI.paginate(all, request) { $0.id }
            return JSON(AccountList(accounts: items, next: next))
        }
        pam.post("accounts/:accountId/rotate") { request, c in
            JSON(
                AccountResponse(
                    account: try await engine.rotatePAMAccount(
                        try await ctx(request, c), id: try c.parameters.require("accountId"))))
        }
        pam.delete("accounts/:accountId") { request, c -> HTTPResponse.Status in
            try await engine.deletePAMAccount(try await ctx(request, c), id: try c.parameters.require("accountId"))
            return .noContent
        }
        pam.post("accounts/:accountId/access-requests") { request, c in
            let body = try await decode(AccessBody.self, request)
            let g = try await engine.requestPAMAccess(
                try await ctx(request, c), accountId: try c.parameters.require("accountId"), duration: body.duration,
                reason: body.reason)
            return JSON(GrantResponse(grant: g), status: .created)
        }
        pam.get("grants/:grantId") { request, c in
            JSON(
                GrantResponse(
                    grant: try await engine.getPAMGrant(
                        try await ctx(request, c), grantId: try c.parameters.require("grantId"))))
        }
        pam.post("grants/:grantId/approve") { request, c in
            JSON(
                GrantResponse(
                    grant: try await engine.approvePAMAccess(
                        try await ctx(request, c), grantId: try c.parameters.require("grantId"))))
        }
        pam.post("grants/:grantId/reject") { request, c in
            JSON(
                GrantResponse(
                    grant: try await engine.rejectPAMAccess(
                        try await ctx(request, c), grantId: try c.parameters.require("grantId"))))
        }
        pam.post("grants/:grantId/revoke") { request, c in
            JSON(
                GrantResponse(
                    grant: try await engine.revokePAMGrant(
                        try await ctx(request, c), grantId: try c.parameters.require("grantId"))))
        }
    }
}
