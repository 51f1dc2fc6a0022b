import EngineAPI
import ExtrasBase64
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Private CA over the admin API (`/api/v1/projects/{project}/pki/…`, `/api/v1/pki/…`), and the public CRL and
/// OCSP endpoints (`/pki/crl/{caId}.crl`, `/pki/ocsp`) that issued certificates point to.
struct PKIRoutes: Sendable {
    let api: AdminAPI
    var engine: any PKIEngine { api.services.pki }
    var alerts: any AlertEngine { api.services.alerts }
    var kmipPKI: any KMIPPKIEngine { api.services.kmipPKI }

    struct CAResponse: Codable { var ca: CAInfo }
    struct CAList: Codable {
        var cas: [CAInfo]
        var next: String?
    }
    struct CSRResponse: Codable { var csr: String }
    struct ImportBody: Codable {
        var certificate: String
        var certificateChain: String
    }
    struct RenewBody: Codable { var notAfter: Date }
    struct TemplateResponse: Codable { var template: TemplateInfo }
    struct TemplateList: Codable {
        var templates: [TemplateInfo]
        var next: String?
    }
    struct ProfileResponse: Codable { var profile: ProfileInfo }
    struct ProfileList: Codable {
        var profiles: [ProfileInfo]
        var next: String?
    }
    struct CertificateResponse: Codable { var certificate: CertificateInfo }
    struct CertificateList: Codable {
        var certificates: [CertificateInfo]
        var next: String?
    }
    struct RevokeBody: Codable { var reason: RevocationReason? }
    struct PKCS12Body: Codable {
        var password: String
        var alias: String?
    }
    struct AlertResponse: Codable { var alert: AlertInfo }
    struct AlertList: Codable {
        var alerts: [AlertInfo]
        var next: String?
    }
    struct Bundle: Codable {
        var certificate: String
        var certificateChain: [String]
        var privateKey: String?
    }

    func ctx(_ request: Request, _ context: GatehouseRequestContext) async throws -> CallContext {
        try await api.context(request, context)
    }
    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        try await api.decode(type, request)
    }

    struct KMIPPKIResponse: Codable { var pki: KMIPPKIInfo }
    struct KMIPPKIBody: Codable { var keyAlgorithm: PKIKeyAlgorithm? }
    struct KMIPClientCertificateResponse: Codable { var certificate: KMIPClientCertificate }

    func register(on api: RouterGroup<GatehouseRequestContext>, root: Router<GatehouseRequestContext>) {
        // The organization's KMIP client PKI: set up once (or on demand), then client certificates over clients' keys.
        api.get("kmip/pki") { request, c in
            JSON(KMIPPKIResponse(pki: try await kmipPKI.kmipPKI(try await ctx(request, c))))
        }
        api.post("kmip/pki") { request, c in
            let body = try await decode(KMIPPKIBody.self, request)
            let pki = try await kmipPKI.setUpKMIPPKI(
                try await ctx(request, c), keyAlgorithm: body.keyAlgorithm ?? .ecP256)
            return JSON(KMIPPKIResponse(pki: pki), status: .created)
        }
        api.post("kmip/client-certificates") { request, c in
            let body = try await decode(KMIPClientCertificateRequest.self, request)
            let issued = try await kmipPKI.issueKMIPClientCertificate(try await ctx(request, c), body)
            return JSON(KMIPClientCertificateResponse(certificate: issued), status: .created)
        }
        let project = api.group("projects/:project/pki")
        project.post("cas") { request, c in
            let spec = try await decode(CASpec.self, request)
            let ca = try await engine.createCA(
                try await ctx(request, c), project: try c.parameters.require("project"), spec)
            return JSON(CAResponse(ca: ca), status: .created)
        }
        project.get("cas") { request, c in
            let all = try await engine.listCAs(try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try AdminAPI.paginate(all, request) { $0.id }
            return JSON(CAList(cas: items, next: next))
        }
        project.post("templates") { request, c in
            let spec = try await decode(TemplateSpec.self, request)
            let t = try await engine.createTemplate(
                try await ctx(request, c), project: try c.parameters.require("project"), spec)
            return JSON(TemplateResponse(template: t), status: .created)
        }
        project.get("templates") { request, c in
            let all = try await engine.listTemplates(
                try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try AdminAPI.paginate(all, request) { $0.id }
            return JSON(TemplateList(templates: items, next: next))
        }
        project.post("profiles") { request, c in
            let spec = try await decode(ProfileSpec.self, request)
            let p = try await engine.createProfile(
                try await ctx(request, c), project: try c.parameters.require("project"), spec)
            return JSON(ProfileResponse(profile: p), status: .created)
        }
        project.get("profiles") { request, c in
            let all = try await engine.listProfiles(
                try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try AdminAPI.paginate(all, request) { $0.id }
            return JSON(ProfileList(profiles: items, next: next))
        }
        project.post("alerts") { request, c in
            let spec = try await decode(AlertSpec.self, request)
            let a = try await alerts.createAlert(
                try await ctx(request, c), project: try c.parameters.require("project"), spec)
            return JSON(AlertResponse(alert: a), status: .created)
        }
        project.get("alerts") { request, c in
            let all = try await alerts.listAlerts(
                try await ctx(request, c), project: try c.parameters.require("project"))
            let (items, next) = try AdminAPI.paginate(all, request) { $0.id }
            return JSON(AlertList(alerts: items, next: next))
        }
        project.get("certificates") { request, c in
            let (after, limit) = try AdminAPI.page(request)
            let p = request.uri.queryParameters
            func time(_ name: String) throws -> Date? { try AdminAPI.time(request, name) }
            var status: CertificateInfo.Status?
            if let text = p.get("status") {
                guard let s = CertificateInfo.Status(rawValue: text) else {
                    throw HTTPError(.badRequest, message: "status must be active, revoked or expired")
                }
                status = s
            }
            let order = p.get("order") ?? "asc"
            guard order == "asc" || order == "desc" else {
                throw HTTPError(.badRequest, message: "order must be asc or desc")
            }
            let query = CertificateQuery(
                caId: try AdminAPI.text(request, "ca"), profileId: try AdminAPI.text(request, "profile"),
                status: status,
                name: try AdminAPI.text(request, "name", max: 300),
                expiresAfter: try time("expiresAfter"), expiresBefore: try time("expiresBefore"),
                latestFirst: order == "desc",
                after: after, limit: limit)
            let page = try await engine.listCertificates(
                try await ctx(request, c), project: try c.parameters.require("project"), query)
            return JSON(CertificateList(certificates: page.items, next: page.next))
        }

        let pki = api.group("pki")
        pki.get("cas/:caId") { request, c in
            JSON(
                CAResponse(ca: try await engine.getCA(try await ctx(request, c), id: try c.parameters.require("caId"))))
        }
        pki.get("cas/:caId/csr") { request, c in
            JSON(
                CSRResponse(
                    csr: try await engine.caCertificateRequest(
                        try await ctx(request, c), id: try c.parameters.require("caId"))))
        }
        pki.post("cas/:caId/import-certificate") { request, c in
            let body = try await decode(ImportBody.self, request)
            let ca = try await engine.importCACertificate(
                try await ctx(request, c), id: try c.parameters.require("caId"), certificate: body.certificate,
                chain: body.certificateChain)
            return JSON(CAResponse(ca: ca))
        }
        pki.post("cas/:caId/renew") { request, c in
            let body = try await decode(RenewBody.self, request)
            let ca = try await engine.renewCA(
                try await ctx(request, c), id: try c.parameters.require("caId"), notAfter: body.notAfter)
            return JSON(CAResponse(ca: ca))
        }
        pki.get("templates/:templateId") { request, c in
            JSON(
                TemplateResponse(
                    template: try await engine.getTemplate(
                        try await ctx(request, c), id: try c.parameters.require("templateId"))))
        }
        pki.delete("templates/:templateId") { request, c -> HTTPResponse.Status in
            try await engine.deleteTemplate(try await ctx(request, c), id: try c.parameters.require("templateId"))
            return .noContent
        }
        pki.get("profiles/:profileId") { request, c in
            JSON(
                ProfileResponse(
                    profile: try await engine.getProfile(
                        try await ctx(request, c), id: try c.parameters.require("profileId"))))
        }
        pki.get("profiles/:profileId/acme-eab") { request, c in
            let (kid, key) = try await engine.acmeEABCredentials(
                try await ctx(request, c), profile: try c.parameters.require("profileId"))
            return JSON(["keyId": kid, "hmacKey": key])
        }
        pki.delete("profiles/:profileId") { request, c -> HTTPResponse.Status in
            try await engine.deleteProfile(try await ctx(request, c), id: try c.parameters.require("profileId"))
            return .noContent
        }
        pki.post("profiles/:profileId/issue") { request, c in
            let body = try await decode(IssuanceRequest.self, request)
            let issued = try await engine.issueCertificate(
                try await ctx(request, c), profile: try c.parameters.require("profileId"), body)
            return JSON(issued, status: .created)
        }
        pki.delete("alerts/:alertId") { request, c -> HTTPResponse.Status in
            try await alerts.deleteAlert(try await ctx(request, c), id: try c.parameters.require("alertId"))
            return .noContent
        }
        pki.get("certificates/:serial") { request, c in
            JSON(
                CertificateResponse(
                    certificate: try await engine.getCertificate(
                        try await ctx(request, c), serial: try c.parameters.require("serial"))))
        }
        pki.post("certificates/:serial/revoke") { request, c in
            let body = try await decode(RevokeBody.self, request)
            let info = try await engine.revokeCertificate(
                try await ctx(request, c), serial: try c.parameters.require("serial"),
                reason: body.reason ?? .unspecified)
            return JSON(CertificateResponse(certificate: info))
        }
        pki.get("certificates/:serial/bundle") { request, c in
            let call = try await ctx(request, c)
            let serial = try c.parameters.require("serial")
            let info = try await engine.getCertificate(call, serial: serial)
            let key =
                info.hasPrivateKey ? AdminAPI.utf8(try await engine.certificatePrivateKey(call, serial: serial)) : nil
            return JSON(Bundle(certificate: info.certificate, certificateChain: info.certificateChain, privateKey: key))
        }

        pki.post("certificates/:serial/pkcs12") { request, c -> Response in
            let body = try await decode(PKCS12Body.self, request)
            let archive = try await engine.exportPKCS12(
                try await ctx(request, c), serial: try c.parameters.require("serial"), password: body.password,
                alias: body.alias)
            return Response(
                status: .ok,
                headers: [
                    .contentType: "application/x-pkcs12",
                    .contentDisposition: "attachment; filename=\"certificate.p12\"",
                ],
                body: .init(byteBuffer: ByteBuffer(bytes: archive)))
        }

        // Public endpoints named in issued certificates (no authentication, as relying parties expect).
        root.get("pki/crl/:file") { _, c -> Response in
            let file = try c.parameters.require("file")
            guard file.hasSuffix(".crl") else { throw HTTPError(.notFound, message: "CRLs are at /pki/crl/{caId}.crl") }
            let der = try await engine.crl(caId: String(file.dropLast(4)))
            return Response(
                status: .ok, headers: [.contentType: "application/pkix-crl"],
                body: .init(byteBuffer: ByteBuffer(bytes: der)))
        }
        root.post("pki/ocsp") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 16 * 1024)
            return try await ocspResponse(Array(buffer: body))
        }
        root.get("pki/ocsp/:request") { _, c -> Response in
            // RFC 6960 Appendix A.1: base64 (URL-encoded) DER in the path.
            let text = try c.parameters.require("request").removingPercentEncoding ?? ""
            guard let der = try? Base64.decode(string: text) else { return try await ocspResponse([]) }
            return try await ocspResponse(der)
        }
    }

    func ocspResponse(_ der: [UInt8]) async throws -> Response {
        let answer = try await engine.ocsp(request: der)
        return Response(
            status: .ok, headers: [.contentType: "application/ocsp-response"],
            body: .init(byteBuffer: ByteBuffer(bytes: answer)))
    }
}
