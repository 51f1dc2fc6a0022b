import AdminAPI
import EngineAPI
import Foundation
import OpenAPIRuntime

/// The SSH certificate authority, hosts and login mappings through the generated `APIProtocol`, and the public KRL
/// that hosts fetch.
extension AdminHandler {
    var ssh: any SSHEngine { services.ssh }

    func listSSHCAs(_ input: Operations.ListSSHCAs.Input) async throws -> Operations.ListSSHCAs.Output {
        let all = try await ssh.listSSHCAs(try await call(), project: input.path.project)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(cas: try wire(items), next: next))))
    }

    func createSSHCA(_ input: Operations.CreateSSHCA.Input) async throws -> Operations.CreateSSHCA.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let ca = try await ssh.createSSHCA(
            try await call(), project: input.path.project, try wire(body, as: SSHCASpec.self))
        return .created(.init(body: .json(.init(ca: try wire(ca)))))
    }

    func getSSHCA(_ input: Operations.GetSSHCA.Input) async throws -> Operations.GetSSHCA.Output {
        .ok(.init(body: .json(.init(ca: try wire(try await ssh.getSSHCA(try await call(), id: input.path.caId))))))
    }

    func issueSSHCertificate(_ input: Operations.IssueSSHCertificate.Input) async throws
        -> Operations.IssueSSHCertificate.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let certificate = try await ssh.issueSSHCertificate(
            try await call(), caId: input.path.caId, try wire(body, as: SSHCertificateRequest.self))
        return .created(.init(body: .json(.init(certificate: try wire(certificate)))))
    }

    func listSSHCertificates(_ input: Operations.ListSSHCertificates.Input) async throws
        -> Operations.ListSSHCertificates.Output
    {
        let page = try await ssh.listSSHCertificates(
            try await call(), project: input.path.project, after: input.query.after,
            limit: try limit(input.query.limit))
        return .ok(.init(body: .json(.init(certificates: try wire(page.items), next: page.next))))
    }

    func getSSHCertificate(_ input: Operations.GetSSHCertificate.Input) async throws
        -> Operations.GetSSHCertificate.Output
    {
        let certificate = try await ssh.getSSHCertificate(try await call(), serial: input.path.serial)
        return .ok(.init(body: .json(.init(certificate: try wire(certificate)))))
    }

    func revokeSSHCertificate(_ input: Operations.RevokeSSHCertificate.Input) async throws
        -> Operations.RevokeSSHCertificate.Output
    {
        let certificate = try await ssh.revokeSSHCertificate(try await call(), serial: input.path.serial)
        return .ok(.init(body: .json(.init(certificate: try wire(certificate)))))
    }

    func listSSHHostGroups(_ input: Operations.ListSSHHostGroups.Input) async throws
        -> Operations.ListSSHHostGroups.Output
    {
        let all = try await ssh.listSSHHostGroups(try await call(), project: input.path.project)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(hostGroups: try wire(items), next: next))))
    }

    func createSSHHostGroup(_ input: Operations.CreateSSHHostGroup.Input) async throws
        -> Operations.CreateSSHHostGroup.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let group = try await ssh.createSSHHostGroup(
            try await call(), project: input.path.project, try wire(body, as: SSHHostGroupSpec.self))
        return .created(.init(body: .json(.init(hostGroup: try wire(group)))))
    }

    func listSSHHosts(_ input: Operations.ListSSHHosts.Input) async throws -> Operations.ListSSHHosts.Output {
        let all = try await ssh.listSSHHosts(try await call(), project: input.path.project)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(hosts: try wire(items), next: next))))
    }

    func createSSHHost(_ input: Operations.CreateSSHHost.Input) async throws -> Operations.CreateSSHHost.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let host = try await ssh.addSSHHost(
            try await call(), project: input.path.project, try wire(body, as: SSHHostSpec.self))
        return .created(.init(body: .json(.init(host: try wire(host)))))
    }

    func getSSHHost(_ input: Operations.GetSSHHost.Input) async throws -> Operations.GetSSHHost.Output {
        .ok(
            .init(body: .json(.init(host: try wire(try await ssh.getSSHHost(try await call(), host: input.path.host)))))
        )
    }

    func deleteSSHHost(_ input: Operations.DeleteSSHHost.Input) async throws -> Operations.DeleteSSHHost.Output {
        try await ssh.deleteSSHHost(try await call(), host: input.path.host)
        return .noContent(.init())
    }

    func signSSHHostKey(_ input: Operations.SignSSHHostKey.Input) async throws -> Operations.SignSSHHostKey.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let certificate = try await ssh.issueSSHHostCertificate(
            try await call(), host: input.path.host, publicKey: body.publicKey, ttl: body.ttl)
        return .created(.init(body: .json(.init(certificate: try wire(certificate)))))
    }

    func connectSSHHost(_ input: Operations.ConnectSSHHost.Input) async throws -> Operations.ConnectSSHHost.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let grant = try await ssh.connectSSHHost(
            try await call(), host: input.path.host, login: body.login, publicKey: body.publicKey, ttl: body.ttl)
        return .created(.init(body: .json(try wire(grant))))
    }

    /// Public: what hosts need to refuse revoked certificates (sshd `RevokedKeys`).
    func getSSHKRL(_ input: Operations.GetSSHKRL.Input) async throws -> Operations.GetSSHKRL.Output {
        let file = input.path.file
        guard file.hasSuffix(".krl") else { throw EngineError(.notFound, "KRLs are at /ssh/krl/{caId}.krl") }
        let krl = try await ssh.sshKRL(caId: String(file.dropLast(4)))
        return .ok(.init(body: .binary(HTTPBody(krl))))
    }
}
