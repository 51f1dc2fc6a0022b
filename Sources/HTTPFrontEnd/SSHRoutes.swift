import EngineAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// SSH certificate authority, hosts and login mappings over the admin API (`/api/v1/projects/{project}/ssh/…`,
/// `/api/v1/ssh/…`), and the public CA key and KRL that hosts fetch (`/ssh/ca/{caId}.pub`, `/ssh/krl/{caId}.krl`).
struct SSHRoutes: Sendable {
    let api: AdminAPI
    var engine: any SSHEngine { api.services.ssh }

    struct CAResponse: Codable { var ca: SSHCAInfo }
    struct CAList: Codable {
        var cas: [SSHCAInfo]
        var next: String?
    }
    struct CertificateResponse: Codable { var certificate: SSHCertificateInfo }
    struct CertificateList: Codable {
        var certificates: [SSHCertificateInfo]
        var next: String?
    }
    struct HostResponse: Codable { var host: SSHHostInfo }
    struct HostList: Codable {
        var hosts: [SSHHostInfo]
        var next: String?
    }
    struct GroupResponse: Codable { var hostGroup: SSHHostGroupInfo }
    struct GroupList: Codable {
        var hostGroups: [SSHHostGroupInfo]
        var next: String?
    }
    struct HostCertificateBody: Codable {
        var publicKey: String
        var ttl: String?
    }
    struct ConnectBody: Codable {
        var publicKey: String
        var login: String?
        var ttl: String?
    }

    func ctx(_ request: Request, _ context: GatehouseRequestContext) async throws -> CallContext {
        try await api.context(request, context)
    }
    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        try await api.decode(type, request)
    }

    func register(on api: RouterGroup<GatehouseRequestContext>, root: Router<GatehouseRequestContext>) {
        let project = api.group("projects/:project/ssh")
        project.post("cas") { request, c in
            let spec = try await decode(SSHCASpec.self, request)
            let ca = try await engine.createSSHCA(
                try await ctx(request, c), project: try c.parameters.require("project"), spec)
            return JSON(CAResponse(ca: ca), status: .created)
        }
        project.get("cas") { request, c in
            let all = try await engine.listSSHCAs(
                try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try AdminAPI.paginate(all, request) { $0.id }
            return JSON(CAList(cas: items, next: next))
        }
        project.get("certificates") { request, c in
            let (after, limit) = try AdminAPI.page(request)
            let page = try await engine.listSSHCertificates(
                try await ctx(request, c), project: try c.parameters.require("project"), after: after, limit: limit)
            return JSON(CertificateList(certificates: page.items, next: page.next))
        }
        project.post("host-groups") { request, c in
            let spec = try await decode(SSHHostGroupSpec.self, request)
            let g = try await engine.createSSHHostGroup(
                try await ctx(request, c), project: try c.parameters.require("project"), spec)
            return JSON(GroupResponse(hostGroup: g), status: .created)
        }
        project.get("host-groups") { request, c in
            let all = try await engine.listSSHHostGroups(
                try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try AdminAPI.paginate(all, request) { $0.id }
            return JSON(GroupList(hostGroups: items, next: next))
        }
        project.post("hosts") { request, c in
            let spec = try await decode(SSHHostSpec.self, request)
            let h = try await engine.addSSHHost(
                try await ctx(request, c), project: try c.parameters.require("project"), spec)
            return JSON(HostResponse(host: h), status: .created)
        }
        project.get("hosts") { request, c in
            let all = try await engine.listSSHHosts(
                try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try AdminAPI.paginate(all, request) { $0.id }
            return JSON(HostList(hosts: items, next: next))
        }

        let ssh = api.group("ssh")
        ssh.get("cas/:caId") { request, c in
            JSON(
                CAResponse(
                    ca: try await engine.getSSHCA(try await ctx(request, c), id: try c.parameters.require("caId"))))
        }
        ssh.post("cas/:caId/issue") { request, c in
            let body = try await decode(SSHCertificateRequest.self, request)
            let cert = try await engine.issueSSHCertificate(
                try await ctx(request, c), caId: try c.parameters.require("caId"), body)
            return JSON(CertificateResponse(certificate: cert), status: .created)
        }
        ssh.get("certificates/:serial") { request, c in
            JSON(
                CertificateResponse(
                    certificate: try await engine.getSSHCertificate(
                        try await ctx(request, c), serial: try c.parameters.require("serial"))))
        }
        ssh.post("certificates/:serial/revoke") { request, c in
            JSON(
                CertificateResponse(
                    certificate: try await engine.revokeSSHCertificate(
                        try await ctx(request, c), serial: try c.parameters.require("serial"))))
        }
        ssh.get("hosts/:host") { request, c in
            JSON(
                HostResponse(
                    host: try await engine.getSSHHost(try await ctx(request, c), host: try c.parameters.require("host"))
                ))
        }
        ssh.delete("hosts/:host") { request, c -> HTTPResponse.Status in
            try await engine.deleteSSHHost(try await ctx(request, c), host: try c.parameters.require("host"))
            return .noContent
        }
        ssh.post("hosts/:host/host-certificate") { request, c in
            let body = try await decode(HostCertificateBody.self, request)
            let cert = try await engine.issueSSHHostCertificate(
                try await ctx(request, c), host: try c.parameters.require("host"), publicKey: body.publicKey,
                ttl: body.ttl)
            return JSON(CertificateResponse(certificate: cert), status: .created)
        }
        ssh.post("hosts/:host/connect") { request, c in
            let body = try await decode(ConnectBody.self, request)
            let grant = try await engine.connectSSHHost(
                try await ctx(request, c), host: try c.parameters.require("host"), login: body.login,
                publicKey: body.publicKey,
                ttl: body.ttl)
            return JSON(grant, status: .created)
        }

        // Public: what hosts need to trust the CA and refuse revoked certificates.
        root.get("ssh/krl/:file") { _, c -> Response in
            let file = try c.parameters.require("file")
            guard file.hasSuffix(".krl") else { throw HTTPError(.notFound, message: "KRLs are at /ssh/krl/{caId}.krl") }
            let krl = try await engine.sshKRL(caId: String(file.dropLast(4)))
            return Response(
                status: .ok, headers: [.contentType: "application/octet-stream"],
                body: .init(byteBuffer: ByteBuffer(bytes: krl)))
        }
        root.get("ssh/ca/:file") { _, c -> Response in
            let file = try c.parameters.require("file")
            guard file.hasSuffix(".pub") else {
                throw HTTPError(.notFound, message: "CA keys are at /ssh/ca/{caId}.pub")
            }
            let key = try await engine.sshCAPublicKey(caId: String(file.dropLast(4)))
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: key + "\n")))
        }
    }
}
