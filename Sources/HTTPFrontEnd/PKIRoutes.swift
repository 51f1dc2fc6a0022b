import EngineAPI
import ExtrasBase64
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// What the private CA serves outside the generated admin API: the public CRL and OCSP endpoints
/// (`/pki/crl/{caId}.crl`, `/pki/ocsp`) that issued certificates point to.
struct PKIRoutes: Sendable {
    let engine: any PKIEngine

    func register(on router: Router<GatehouseRequestContext>) {
        // Public endpoints named in issued certificates (no authentication, as relying parties expect).
        router.get("pki/crl/:file") { _, c -> Response in
            let file = try c.parameters.require("file")
            guard file.hasSuffix(".crl") else { throw HTTPError(.notFound, message: "CRLs are at /pki/crl/{caId}.crl") }
            let der = try await engine.crl(caId: String(file.dropLast(4)))
            return Response(
                status: .ok, headers: [.contentType: "application/pkix-crl"],
                body: .init(byteBuffer: ByteBuffer(bytes: der)))
        }
        router.post("pki/ocsp") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 16 * 1024)
            return try await ocspResponse(Array(buffer: body))
        }
        router.get("pki/ocsp/:request") { _, c -> Response in
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
