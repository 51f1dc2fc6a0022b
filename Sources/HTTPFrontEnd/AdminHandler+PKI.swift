import AdminAPI
import EngineAPI
import Foundation
import OpenAPIRuntime

/// The private CA (CAs, templates, profiles, certificates, alerts) and the KMIP client PKI through the generated
/// `APIProtocol`.
extension AdminHandler {
    var pki: any PKIEngine { services.pki }

    // KMIP client PKI

    func getKMIPClientPKI(_ input: Operations.GetKMIPClientPKI.Input) async throws
        -> Operations.GetKMIPClientPKI.Output
    {
        .ok(.init(body: .json(.init(pki: try wire(try await services.kmipPKI.kmipPKI(try await call()))))))
    }

    func createKMIPClientPKI(_ input: Operations.CreateKMIPClientPKI.Input) async throws
        -> Operations.CreateKMIPClientPKI.Output
    {
        var algorithm = PKIKeyAlgorithm.ecP256
        if case .json(let body) = input.body, let chosen = body.keyAlgorithm {
            algorithm = try wire(chosen, as: PKIKeyAlgorithm.self)
        }
        let info = try await services.kmipPKI.setUpKMIPPKI(try await call(), keyAlgorithm: algorithm)
        return .created(.init(body: .json(.init(pki: try wire(info)))))
    }

    func issueKMIPClientCertificate(_ input: Operations.IssueKMIPClientCertificate.Input) async throws
        -> Operations.IssueKMIPClientCertificate.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let issued = try await services.kmipPKI.issueKMIPClientCertificate(
            try await call(), try wire(body, as: KMIPClientCertificateRequest.self))
        return .created(.init(body: .json(.init(certificate: try wire(issued)))))
    }

    // Certificate authorities

    func listCAs(_ input: Operations.ListCAs.Input) async throws -> Operations.ListCAs.Output {
        let all = try await pki.listCAs(try await call(), project: input.path.project)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(cas: try wire(items), next: next))))
    }

    func createCA(_ input: Operations.CreateCA.Input) async throws -> Operations.CreateCA.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let ca = try await pki.createCA(try await call(), project: input.path.project, try wire(body, as: CASpec.self))
        return .created(.init(body: .json(.init(ca: try wire(ca)))))
    }

    func getCA(_ input: Operations.GetCA.Input) async throws -> Operations.GetCA.Output {
        .ok(.init(body: .json(.init(ca: try wire(try await pki.getCA(try await call(), id: input.path.caId))))))
    }

    func getCACSR(_ input: Operations.GetCACSR.Input) async throws -> Operations.GetCACSR.Output {
        let csr = try await pki.caCertificateRequest(try await call(), id: input.path.caId)
        return .ok(.init(body: .json(.init(csr: csr))))
    }

    func importCACertificate(_ input: Operations.ImportCACertificate.Input) async throws
        -> Operations.ImportCACertificate.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let ca = try await pki.importCACertificate(
            try await call(), id: input.path.caId, certificate: body.certificate, chain: body.certificateChain)
        return .ok(.init(body: .json(.init(ca: try wire(ca)))))
    }

    func renewCA(_ input: Operations.RenewCA.Input) async throws -> Operations.RenewCA.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let ca = try await pki.renewCA(try await call(), id: input.path.caId, notAfter: body.notAfter)
        return .ok(.init(body: .json(.init(ca: try wire(ca)))))
    }

    // Templates

    func listTemplates(_ input: Operations.ListTemplates.Input) async throws -> Operations.ListTemplates.Output {
        let all = try await pki.listTemplates(try await call(), project: input.path.project)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(next: next, templates: try wire(items)))))
    }

    func createTemplate(_ input: Operations.CreateTemplate.Input) async throws -> Operations.CreateTemplate.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let template = try await pki.createTemplate(
            try await call(), project: input.path.project, try wire(body, as: TemplateSpec.self))
        return .created(.init(body: .json(.init(template: try wire(template)))))
    }

    func getTemplate(_ input: Operations.GetTemplate.Input) async throws -> Operations.GetTemplate.Output {
        let template = try await pki.getTemplate(try await call(), id: input.path.templateId)
        return .ok(.init(body: .json(.init(template: try wire(template)))))
    }

    func deleteTemplate(_ input: Operations.DeleteTemplate.Input) async throws -> Operations.DeleteTemplate.Output {
        try await pki.deleteTemplate(try await call(), id: input.path.templateId)
        return .noContent(.init())
    }

    // Profiles

    func listProfiles(_ input: Operations.ListProfiles.Input) async throws -> Operations.ListProfiles.Output {
        let all = try await pki.listProfiles(try await call(), project: input.path.project)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(next: next, profiles: try wire(items)))))
    }

    func createProfile(_ input: Operations.CreateProfile.Input) async throws -> Operations.CreateProfile.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let profile = try await pki.createProfile(
            try await call(), project: input.path.project, try wire(body, as: ProfileSpec.self))
        return .created(.init(body: .json(.init(profile: try wire(profile)))))
    }

    func getProfile(_ input: Operations.GetProfile.Input) async throws -> Operations.GetProfile.Output {
        let profile = try await pki.getProfile(try await call(), id: input.path.profileId)
        return .ok(.init(body: .json(.init(profile: try wire(profile)))))
    }

    func deleteProfile(_ input: Operations.DeleteProfile.Input) async throws -> Operations.DeleteProfile.Output {
        try await pki.deleteProfile(try await call(), id: input.path.profileId)
        return .noContent(.init())
    }

    func getACMEExternalAccountBinding(_ input: Operations.GetACMEExternalAccountBinding.Input) async throws
        -> Operations.GetACMEExternalAccountBinding.Output
    {
        let (keyId, hmacKey) = try await pki.acmeEABCredentials(try await call(), profile: input.path.profileId)
        return .ok(.init(body: .json(.init(hmacKey: hmacKey, keyId: keyId))))
    }

    func issueCertificate(_ input: Operations.IssueCertificate.Input) async throws
        -> Operations.IssueCertificate.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let issued = try await pki.issueCertificate(
            try await call(), profile: input.path.profileId, try wire(body, as: IssuanceRequest.self))
        return .created(.init(body: .json(try wire(issued))))
    }

    // Certificates

    func listCertificates(_ input: Operations.ListCertificates.Input) async throws
        -> Operations.ListCertificates.Output
    {
        let q = input.query
        let query = CertificateQuery(
            caId: try text(q.ca, "ca"), profileId: try text(q.profile, "profile"),
            status: q.status.flatMap { CertificateInfo.Status(rawValue: $0.rawValue) },
            name: try text(q.name, "name", max: 300), expiresAfter: q.expiresAfter, expiresBefore: q.expiresBefore,
            latestFirst: q.order == .desc, after: q.after, limit: try limit(q.limit))
        let page = try await pki.listCertificates(try await call(), project: input.path.project, query)
        return .ok(.init(body: .json(.init(certificates: try wire(page.items), next: page.next))))
    }

    func getCertificate(_ input: Operations.GetCertificate.Input) async throws -> Operations.GetCertificate.Output {
        let info = try await pki.getCertificate(try await call(), serial: input.path.serial)
        return .ok(.init(body: .json(.init(certificate: try wire(info)))))
    }

    func revokeCertificate(_ input: Operations.RevokeCertificate.Input) async throws
        -> Operations.RevokeCertificate.Output
    {
        var reason = RevocationReason.unspecified
        if case .json(let body) = input.body, let given = body.reason {
            reason = try wire(given, as: RevocationReason.self)
        }
        let info = try await pki.revokeCertificate(try await call(), serial: input.path.serial, reason: reason)
        return .ok(.init(body: .json(.init(certificate: try wire(info)))))
    }

    func getCertificateBundle(_ input: Operations.GetCertificateBundle.Input) async throws
        -> Operations.GetCertificateBundle.Output
    {
        let call = try await call()
        let info = try await pki.getCertificate(call, serial: input.path.serial)
        let key =
            info.hasPrivateKey
            ? String(
                decoding: try await pki.certificatePrivateKey(call, serial: input.path.serial).bytes, as: UTF8.self)
            : nil
        return .ok(
            .init(
                body: .json(
                    .init(certificate: info.certificate, certificateChain: info.certificateChain, privateKey: key))))
    }

    func exportCertificatePKCS12(_ input: Operations.ExportCertificatePKCS12.Input) async throws
        -> Operations.ExportCertificatePKCS12.Output
    {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let archive = try await pki.exportPKCS12(
            try await call(), serial: input.path.serial, password: body.password, alias: body.alias)
        return .ok(
            .init(
                headers: .init(contentDisposition: "attachment; filename=\"certificate.p12\""),
                body: .applicationXPkcs12(HTTPBody(archive))))
    }

    // Alerts

    func listAlerts(_ input: Operations.ListAlerts.Input) async throws -> Operations.ListAlerts.Output {
        let all = try await services.alerts.listAlerts(try await call(), project: input.path.project)
        let (items, next) = try paginate(all, after: input.query.after, limit: input.query.limit) { $0.id }
        return .ok(.init(body: .json(.init(alerts: try wire(items), next: next))))
    }

    func createAlert(_ input: Operations.CreateAlert.Input) async throws -> Operations.CreateAlert.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let alert = try await services.alerts.createAlert(
            try await call(), project: input.path.project, try wire(body, as: AlertSpec.self))
        return .created(.init(body: .json(.init(alert: try wire(alert)))))
    }

    func deleteAlert(_ input: Operations.DeleteAlert.Input) async throws -> Operations.DeleteAlert.Output {
        try await services.alerts.deleteAlert(try await call(), id: input.path.alertId)
        return .noContent(.init())
    }
}
