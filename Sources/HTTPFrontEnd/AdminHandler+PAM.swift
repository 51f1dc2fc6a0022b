import AdminAPI
import EngineAPI
import Foundation
import OpenAPIRuntime

/// PostgreSQL access management through the generated `APIProtocol`: resources and their accounts, just-in-time
/// access requests and grants, and the sessions the proxy recorded.
extension AdminHandler {
    var pam: any PAMEngine { services.pam }

    // Resources and accounts

    func listPAMResources(_ input: Operations.ListPAMResources.Input) async throws
        -> Operations.ListPAMResources.Output
    {
        let all = try await pam.listPAMResources(try await call(), project: input.path.project)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(next: next, resources: try wire(items)))))
    }

    func createPAMResource(_ input: Operations.CreatePAMResource.Input) async throws
        -> Operations.CreatePAMResource.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let resource = try await pam.createPAMResource(
            try await call(), project: input.path.project, try wire(body, as: PAMResourceSpec.self))
        return .created(.init(body: .json(.init(resource: try wire(resource)))))
    }

    func getPAMResource(_ input: Operations.GetPAMResource.Input) async throws -> Operations.GetPAMResource.Output {
        let resource = try await pam.getPAMResource(try await call(), id: input.path.resourceId)
        return .ok(.init(body: .json(.init(resource: try wire(resource)))))
    }

    func deletePAMResource(_ input: Operations.DeletePAMResource.Input) async throws
        -> Operations.DeletePAMResource.Output
    {
        try await pam.deletePAMResource(try await call(), id: input.path.resourceId)
        return .noContent(.init())
    }

    func listPAMAccounts(_ input: Operations.ListPAMAccounts.Input) async throws -> Operations.ListPAMAccounts.Output {
        let all = try await pam.listPAMAccounts(try await call(), resourceId: input.path.resourceId)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(accounts: try wire(items), next: next))))
    }

    func createPAMAccount(_ input: Operations.CreatePAMAccount.Input) async throws
        -> Operations.CreatePAMAccount.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let account = try await pam.createPAMAccount(
            try await call(), resourceId: input.path.resourceId, username: body.username,
            password: SecretBytes(utf8: body.password), rotationInterval: body.rotationInterval)
        return .created(.init(body: .json(.init(account: try wire(account)))))
    }

    func rotatePAMAccount(_ input: Operations.RotatePAMAccount.Input) async throws
        -> Operations.RotatePAMAccount.Output
    {
        let account = try await pam.rotatePAMAccount(try await call(), id: input.path.accountId)
        return .ok(.init(body: .json(.init(account: try wire(account)))))
    }

    func deletePAMAccount(_ input: Operations.DeletePAMAccount.Input) async throws
        -> Operations.DeletePAMAccount.Output
    {
        try await pam.deletePAMAccount(try await call(), id: input.path.accountId)
        return .noContent(.init())
    }

    // Access requests and grants

    func requestPAMAccess(_ input: Operations.RequestPAMAccess.Input) async throws
        -> Operations.RequestPAMAccess.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let grant = try await pam.requestPAMAccess(
            try await call(), accountId: input.path.accountId, duration: body.duration, reason: body.reason)
        return .created(.init(body: .json(.init(grant: try wire(grant)))))
    }

    func listPAMGrants(_ input: Operations.ListPAMGrants.Input) async throws -> Operations.ListPAMGrants.Output {
        let q = input.query
        let query = PAMGrantQuery(
            status: q.status.flatMap { PAMGrantInfo.Status(rawValue: $0.rawValue) },
            granteeName: try text(q.grantee, "grantee"), username: try text(q.account, "account"),
            after: q.after, limit: try limit(q.limit))
        let page = try await pam.listPAMGrants(try await call(), project: input.path.project, query)
        return .ok(.init(body: .json(.init(grants: try wire(page.items), next: page.next))))
    }

    func getPAMGrant(_ input: Operations.GetPAMGrant.Input) async throws -> Operations.GetPAMGrant.Output {
        let grant = try await pam.getPAMGrant(try await call(), grantId: input.path.grantId)
        return .ok(.init(body: .json(.init(grant: try wire(grant)))))
    }

    func approvePAMGrant(_ input: Operations.ApprovePAMGrant.Input) async throws -> Operations.ApprovePAMGrant.Output {
        let grant = try await pam.approvePAMAccess(try await call(), grantId: input.path.grantId)
        return .ok(.init(body: .json(.init(grant: try wire(grant)))))
    }

    func rejectPAMGrant(_ input: Operations.RejectPAMGrant.Input) async throws -> Operations.RejectPAMGrant.Output {
        let grant = try await pam.rejectPAMAccess(try await call(), grantId: input.path.grantId)
        return .ok(.init(body: .json(.init(grant: try wire(grant)))))
    }

    func revokePAMGrant(_ input: Operations.RevokePAMGrant.Input) async throws -> Operations.RevokePAMGrant.Output {
        let grant = try await pam.revokePAMGrant(try await call(), grantId: input.path.grantId)
        return .ok(.init(body: .json(.init(grant: try wire(grant)))))
    }

    // Sessions and recordings

    func listPAMSessions(_ input: Operations.ListPAMSessions.Input) async throws -> Operations.ListPAMSessions.Output {
        let q = input.query
        let query = PAMSessionQuery(
            since: q.since, until: q.until, granteeName: try text(q.grantee, "grantee"),
            resourceName: try text(q.resource, "resource"), username: try text(q.account, "account"),
            endReason: try text(q.endReason, "endReason", max: 64), oldestFirst: q.order == .asc, after: q.after,
            limit: try limit(q.limit))
        let page = try await pam.listPAMSessions(try await call(), project: input.path.project, query)
        return .ok(.init(body: .json(.init(next: page.next, sessions: try wire(page.items)))))
    }

    func getPAMRecording(_ input: Operations.GetPAMRecording.Input) async throws -> Operations.GetPAMRecording.Output {
        // The engine authorizes, then reads the recording store.
        let recording = try await pam.readPAMRecording(try await call(), sessionId: input.path.sessionId)
        return .ok(.init(body: .json(try wire(recording))))
    }

    func verifyPAMRecording(_ input: Operations.VerifyPAMRecording.Input) async throws
        -> Operations.VerifyPAMRecording.Output
    {
        let verdict = try await pam.verifyPAMRecording(try await call(), sessionId: input.path.sessionId)
        return .ok(.init(body: .json(try wire(verdict))))
    }

    func setPAMLegalHold(_ input: Operations.SetPAMLegalHold.Input) async throws -> Operations.SetPAMLegalHold.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let session = try await pam.setPAMLegalHold(
            try await call(), sessionId: input.path.sessionId, reason: body.reason)
        return .ok(.init(body: .json(.init(session: try wire(session)))))
    }

    func releasePAMLegalHold(_ input: Operations.ReleasePAMLegalHold.Input) async throws
        -> Operations.ReleasePAMLegalHold.Output
    {
        let session = try await pam.setPAMLegalHold(try await call(), sessionId: input.path.sessionId, reason: nil)
        return .ok(.init(body: .json(.init(session: try wire(session)))))
    }

    func getPAMSettings(_ input: Operations.GetPAMSettings.Input) async throws -> Operations.GetPAMSettings.Output {
        let settings = try await pam.getPAMSettings(try await call(), project: input.path.project)
        return .ok(.init(body: .json(.init(settings: try wire(settings)))))
    }

    func setPAMSettings(_ input: Operations.SetPAMSettings.Input) async throws -> Operations.SetPAMSettings.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let settings = try await pam.setPAMSettings(
            try await call(),
            PAMProjectSettings(project: input.path.project, recordingRetention: body.recordingRetention))
        return .ok(.init(body: .json(.init(settings: try wire(settings)))))
    }
}
