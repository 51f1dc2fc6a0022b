import AdminAPI
import EngineAPI
import Foundation
import OpenAPIRuntime

/// Projects, identities, authentication methods, tokens, roles, memberships and privileges through the generated
/// `APIProtocol`.
extension AdminHandler {
    func whoami(_ input: Operations.Whoami.Input) async throws -> Operations.Whoami.Output {
        .ok(.init(body: .json(.init(additionalProperties: try await access.whoami(try await call())))))
    }

    // Projects

    func createProject(_ input: Operations.CreateProject.Input) async throws -> Operations.CreateProject.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let project = try await access.createProject(
            try await call(), slug: body.slug, description: body.description ?? "")
        return .created(.init(body: .json(.init(project: try wire(project)))))
    }

    func listProjects(_ input: Operations.ListProjects.Input) async throws -> Operations.ListProjects.Output {
        let page = try await access.listProjects(
            try await call(), after: input.query.after, limit: try limit(input.query.limit))
        return .ok(.init(body: .json(.init(next: page.next, projects: try wire(page.items)))))
    }

    func getProject(_ input: Operations.GetProject.Input) async throws -> Operations.GetProject.Output {
        let project = try await access.getProject(try await call(), slug: input.path.project)
        return .ok(.init(body: .json(.init(project: try wire(project)))))
    }

    func deleteProject(_ input: Operations.DeleteProject.Input) async throws -> Operations.DeleteProject.Output {
        try await access.deleteProject(try await call(), slug: input.path.project)
        return .noContent(.init())
    }

    // Identities

    func createIdentity(_ input: Operations.CreateIdentity.Input) async throws -> Operations.CreateIdentity.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let identity = try await access.createIdentity(try await call(), try wire(body, as: IdentitySpec.self))
        return .created(.init(body: .json(.init(identity: try wire(identity)))))
    }

    func listIdentities(_ input: Operations.ListIdentities.Input) async throws -> Operations.ListIdentities.Output {
        let page = try await access.listIdentities(
            try await call(), after: input.query.after, limit: try limit(input.query.limit))
        return .ok(.init(body: .json(.init(identities: try wire(page.items), next: page.next))))
    }

    func getIdentity(_ input: Operations.GetIdentity.Input) async throws -> Operations.GetIdentity.Output {
        let identity = try await access.getIdentity(try await call(), id: input.path.identityId)
        return .ok(.init(body: .json(.init(identity: try wire(identity)))))
    }

    func updateIdentity(_ input: Operations.UpdateIdentity.Input) async throws -> Operations.UpdateIdentity.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let identity = try await access.updateIdentity(
            try await call(), id: input.path.identityId, try wire(body, as: IdentitySpec.self))
        return .ok(.init(body: .json(.init(identity: try wire(identity)))))
    }

    func deleteIdentity(_ input: Operations.DeleteIdentity.Input) async throws -> Operations.DeleteIdentity.Output {
        try await access.deleteIdentity(try await call(), id: input.path.identityId)
        return .noContent(.init())
    }
}

extension AdminHandler {
    // Universal Auth

    func attachUniversalAuth(_ input: Operations.AttachUniversalAuth.Input) async throws
        -> Operations.AttachUniversalAuth.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let info = try await access.attachUniversalAuth(
            try await call(), identityId: input.path.identityId, try wire(body, as: AuthMethodSpec.self))
        return .created(.init(body: .json(.init(identityUniversalAuth: try wire(info)))))
    }

    func getUniversalAuth(_ input: Operations.GetUniversalAuth.Input) async throws
        -> Operations.GetUniversalAuth.Output
    {
        let info = try await access.getUniversalAuth(try await call(), identityId: input.path.identityId)
        return .ok(.init(body: .json(.init(identityUniversalAuth: try wire(info)))))
    }

    func createClientSecret(_ input: Operations.CreateClientSecret.Input) async throws
        -> Operations.CreateClientSecret.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let (info, secret) = try await access.createClientSecret(
            try await call(), identityId: input.path.identityId, try wire(body, as: ClientSecretSpec.self))
        return .created(
            .init(
                body: .json(
                    .init(
                        clientSecret: String(decoding: secret.bytes, as: UTF8.self),
                        clientSecretData: try wire(info)))))
    }

    func listClientSecrets(_ input: Operations.ListClientSecrets.Input) async throws
        -> Operations.ListClientSecrets.Output
    {
        let all = try await access.listClientSecrets(try await call(), identityId: input.path.identityId)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(clientSecretData: try wire(items), next: next))))
    }

    func revokeClientSecret(_ input: Operations.RevokeClientSecret.Input) async throws
        -> Operations.RevokeClientSecret.Output
    {
        let info = try await access.revokeClientSecret(
            try await call(), identityId: input.path.identityId, clientSecretId: input.path.clientSecretId)
        return .ok(.init(body: .json(.init(clientSecretData: try wire(info)))))
    }

    func universalAuthLogin(_ input: Operations.UniversalAuthLogin.Input) async throws
        -> Operations.UniversalAuthLogin.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let token = try await access.loginUniversalAuth(
            try await call(), clientId: body.clientId, clientSecret: SecretBytes(utf8: body.clientSecret))
        return .ok(.init(body: .json(try wire(token))))
    }

    // Token Auth

    func attachTokenAuth(_ input: Operations.AttachTokenAuth.Input) async throws -> Operations.AttachTokenAuth.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let info = try await access.attachTokenAuth(
            try await call(), identityId: input.path.identityId, try wire(body, as: AuthMethodSpec.self))
        return .created(.init(body: .json(.init(identityTokenAuth: try wire(info)))))
    }

    func createAccessToken(_ input: Operations.CreateAccessToken.Input) async throws
        -> Operations.CreateAccessToken.Output
    {
        let token = try await access.createIdentityToken(try await call(), identityId: input.path.identityId)
        return .created(.init(body: .json(try wire(token))))
    }

    // TLS Certificate Auth

    func attachTLSCertAuth(_ input: Operations.AttachTLSCertAuth.Input) async throws
        -> Operations.AttachTLSCertAuth.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let info = try await access.attachTLSCertAuth(
            try await call(), identityId: input.path.identityId, try wire(body, as: AuthMethodSpec.self))
        return .created(.init(body: .json(.init(identityTlsCertAuth: try wire(info)))))
    }

    func getTLSCertAuth(_ input: Operations.GetTLSCertAuth.Input) async throws -> Operations.GetTLSCertAuth.Output {
        let info = try await access.getTLSCertAuth(try await call(), identityId: input.path.identityId)
        return .ok(.init(body: .json(.init(identityTlsCertAuth: try wire(info)))))
    }

    func tlsCertAuthLogin(_ input: Operations.TlsCertAuthLogin.Input) async throws
        -> Operations.TlsCertAuthLogin.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let token = try await access.loginTLSCertAuth(try await call(), identityId: body.identityId)
        return .ok(.init(body: .json(try wire(token))))
    }

    // Tokens

    func renewAccessToken(_ input: Operations.RenewAccessToken.Input) async throws
        -> Operations.RenewAccessToken.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let token = try await access.renewToken(try await call(), accessToken: body.accessToken)
        return .ok(.init(body: .json(try wire(token))))
    }

    func revokeAccessToken(_ input: Operations.RevokeAccessToken.Input) async throws
        -> Operations.RevokeAccessToken.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        try await access.revokeToken(try await call(), accessToken: body.accessToken)
        return .ok(.init(body: .json(.init(message: "the access token was revoked"))))
    }

    // Roles

    func createRole(_ input: Operations.CreateRole.Input) async throws -> Operations.CreateRole.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let role = try await access.createRole(
            try await call(), project: input.path.project, try wire(body, as: RoleSpec.self))
        return .created(.init(body: .json(.init(role: try wire(role)))))
    }

    func listRoles(_ input: Operations.ListRoles.Input) async throws -> Operations.ListRoles.Output {
        let all = try await access.listRoles(try await call(), project: input.path.project)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.slug }
        return .ok(.init(body: .json(.init(next: next, roles: try wire(items)))))
    }

    func getRole(_ input: Operations.GetRole.Input) async throws -> Operations.GetRole.Output {
        let role = try await access.getRole(try await call(), project: input.path.project, slug: input.path.slug)
        return .ok(.init(body: .json(.init(role: try wire(role)))))
    }

    func deleteRole(_ input: Operations.DeleteRole.Input) async throws -> Operations.DeleteRole.Output {
        try await access.deleteRole(try await call(), project: input.path.project, slug: input.path.slug)
        return .noContent(.init())
    }

    // Memberships

    func listMemberships(_ input: Operations.ListMemberships.Input) async throws -> Operations.ListMemberships.Output {
        let page = try await access.listMemberships(
            try await call(), project: input.path.project, after: input.query.after, limit: try limit(input.query.limit)
        )
        return .ok(.init(body: .json(.init(identityMemberships: try wire(page.items), next: page.next))))
    }

    func setMembership(_ input: Operations.SetMembership.Input) async throws -> Operations.SetMembership.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let membership = try await access.setMembership(
            try await call(), project: input.path.project, identityId: input.path.identityId,
            roles: try wire(body.roles, as: [RoleGrant].self))
        return .ok(.init(body: .json(.init(identityMembership: try wire(membership)))))
    }

    func deleteMembership(_ input: Operations.DeleteMembership.Input) async throws
        -> Operations.DeleteMembership.Output
    {
        try await access.deleteMembership(
            try await call(), project: input.path.project, identityId: input.path.identityId)
        return .noContent(.init())
    }

    // Additional privileges

    func createPrivilege(_ input: Operations.CreatePrivilege.Input) async throws -> Operations.CreatePrivilege.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let privilege = try await access.createPrivilege(
            try await call(), project: input.path.project, try wire(body, as: PrivilegeSpec.self))
        return .created(.init(body: .json(.init(privilege: try wire(privilege)))))
    }

    func listPrivileges(_ input: Operations.ListPrivileges.Input) async throws -> Operations.ListPrivileges.Output {
        let all = try await access.listPrivileges(try await call(), project: input.path.project)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(next: next, privileges: try wire(items)))))
    }

    func deletePrivilege(_ input: Operations.DeletePrivilege.Input) async throws -> Operations.DeletePrivilege.Output {
        try await access.deletePrivilege(try await call(), project: input.path.project, id: input.path.privilegeId)
        return .noContent(.init())
    }
}
