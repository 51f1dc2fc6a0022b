import EngineAPI
import Foundation
import StorageAPI

/// What the enrollment protocols (ACME, EST) and KMIP need from the PKI domain: profiles, CAs and templates as
/// stored, and issuance and revocation inside the caller's transaction. `PKIService` implements it; nothing else
/// of the PKI domain is reachable from another domain.
protocol CertificateIssuing: Sendable {
    /// A profile by slug or id, reused for two seconds (enrollment looks one up per request).
    func recentProfile(_ slug: String) async throws -> ProfileBody
    func loadProfile(_ idOrSlug: String, _ tx: any StorageTransaction) async throws -> (Record, ProfileBody)
    func loadCA(_ id: String, _ tx: any StorageTransaction) async throws -> LoadedCA
    func loadTemplate(_ id: String, _ tx: any StorageTransaction) async throws -> TemplateInfo
    /// Issues a certificate under a profile (template policy, CA, serial, CRL and OCSP URLs), storing it in `tx`.
    func issue(_ profile: ProfileInfo, _ input: PKIService.IssueInput, _ tx: any StorageTransaction) async throws
        -> (CertificateInfo, [UInt8])
    func certificateBody(_ serial: String) async throws -> (Record, CertificateBody)
    func markRevoked(
        _ record: inout Record, _ body: inout CertificateBody, reason: RevocationReason, now: Date,
        _ tx: any StorageTransaction
    ) async throws
}

extension PKIService: CertificateIssuing {}
