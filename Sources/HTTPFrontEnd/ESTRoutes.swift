import ESTProtocol
import EngineAPI
import ExtrasBase64
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// EST (RFC 7030, RFC 8951) under `/.well-known/est/{profile}/…` and, for the configured default profile,
/// `/.well-known/est/…`. Errors are `text/plain` bodies saying why; 401 carries `WWW-Authenticate`.
struct ESTRoutes: Sendable {
    let engine: any ESTEngine
    let defaultProfile: String?

    static let certsOnlyType = "application/pkcs7-mime; smime-type=certs-only"

    static func text(_ status: HTTPResponse.Status, _ message: String) -> Response {
        var headers: HTTPFields = [.contentType: "text/plain; charset=utf-8"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Basic realm=\"gatehouse-est\", charset=\"UTF-8\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }

    static func base64(_ contentType: String, _ der: [UInt8]) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: contentType, HTTPField.Name("Content-Transfer-Encoding")!: "base64"],
            body: .init(byteBuffer: ByteBuffer(string: ESTCodec.base64Lines(der))))
    }

    static func failure(_ error: any Error) -> Response {
        guard let e = error as? EngineError else {
            if let h = error as? HTTPError { return text(h.status, h.body ?? "request refused") }
            return text(.internalServerError, "internal error")
        }
        switch e.code {
        case .unauthenticated: return text(.unauthorized, e.message)
        case .permissionDenied, .sensitive, .notExtractable: return text(.forbidden, e.message)
        case .notFound: return text(.notFound, e.message)
        case .gone: return text(.gone, e.message)
        case .invalidArgument: return text(.badRequest, e.message)
        case .wrongState, .outsideUseWindow, .conflict, .alreadyExists: return text(.conflict, e.message)
        case .unavailable: return text(.serviceUnavailable, e.message)
        case .locked: return text(.tooManyRequests, e.message)
        case .featureNotSupported: return text(.notImplemented, e.message)
        // .cryptographicFailure, .internal, and codes added later: nothing of the cause reaches the client.
        default: return text(.internalServerError, "internal error")
        }
    }

    func callContext(_ request: Request, _ context: GatehouseRequestContext) async -> CallContext {
        CallContext(
            principal: await context.principal(), frontEnd: "est",
            requestID: request.headers[HTTPField.Name("X-Request-Id")!].map { String($0.prefix(100)) }
                ?? RandomUUID.string(),
            ipAddress: context.peerAddress, userAgent: request.headers[.userAgent])
    }

    /// The password of an `Authorization: Basic` header (the user name is not used).
    static func basicPassword(_ request: Request) throws -> String? {
        guard let value = request.headers[.authorization] else { return nil }
        guard value.lowercased().hasPrefix("basic "),
            let decoded = try? Base64.decode(string: String(value.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(validating: decoded, as: UTF8.self), let colon = text.firstIndex(of: ":")
        else {
            throw EngineError(.unauthenticated, "the Authorization header must be HTTP Basic")
        }
        return String(text[text.index(after: colon)...])
    }

    func profile(_ context: GatehouseRequestContext) throws -> String {
        if let p = context.parameters.get("profile") { return p }
        guard let d = defaultProfile, !d.isEmpty else {
            throw EngineError(.notFound, "no default EST profile is configured; use /.well-known/est/{profile}/…")
        }
        return d
    }

    func register(on router: Router<GatehouseRequestContext>) {
        for prefix in [".well-known/est", ".well-known/est/:profile"] {
            let group = router.group(RouterPath(prefix))
            group.get("cacerts") { request, context -> Response in
                do {
                    let certs = try await engine.estCACertificates(
                        await callContext(request, context), profile: try profile(context))
                    return Self.base64(Self.certsOnlyType, try ESTCodec.certsOnly(certs))
                } catch { return Self.failure(error) }
            }
            group.get("csrattrs") { request, context -> Response in
                do {
                    guard
                        let attrs = try await engine.estCSRAttributes(
                            await callContext(request, context), profile: try profile(context))
                    else { return Response(status: .noContent) }
                    return Self.base64("application/csrattrs", attrs)
                } catch { return Self.failure(error) }
            }
            for (operation, reenroll, keygen) in [
                ("simpleenroll", false, false), ("simplereenroll", true, false), ("serverkeygen", false, true),
            ] {
                group.post(RouterPath(operation)) { request, context -> Response in
                    do {
                        return try await enroll(request, context, reenroll: reenroll, serverKeyGen: keygen)
                    } catch { return Self.failure(error) }
                }
            }
        }
    }

    func enroll(_ request: Request, _ context: GatehouseRequestContext, reenroll: Bool, serverKeyGen: Bool) async throws
        -> Response
    {
        let slug = try profile(context)
        let contentType = request.headers[.contentType]?.split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        guard contentType == "application/pkcs10" else {
            return Self.text(.unsupportedMediaType, "the request body must be Content-Type: application/pkcs10")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > ESTCodec.maxRequestSize {
            return Self.text(.contentTooLarge, "the request body exceeds \(ESTCodec.maxRequestSize) bytes")
        }
        var request = request
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: ESTCodec.maxRequestSize) } catch {
            return Self.text(.contentTooLarge, "the request body exceeds \(ESTCodec.maxRequestSize) bytes")
        }
        let credentials = ESTCredentials(password: try Self.basicPassword(request), tlsUnique: nil)
        let ctx = await callContext(request, context)
        let csr: [UInt8]
        do { csr = try ESTCodec.decodePKCS10(Array(buffer: buffer)) } catch {
            return Self.text(.badRequest, error.description)
        }
        let result = try await engine.estEnroll(
            ctx, profile: slug, csr: csr, credentials: credentials, reenroll: reenroll, serverKeyGen: serverKeyGen)
        let certsOnly = try ESTCodec.certsOnly([result.certificate])
        guard serverKeyGen, let key = result.privateKeyPKCS8 else { return Self.base64(Self.certsOnlyType, certsOnly) }
        let boundary = "est-" + RandomUUID.lowercased()
        let (type, body) = ESTCodec.serverKeyGenResponse(
            privateKeyPKCS8: key.bytes, certsOnly: certsOnly, boundary: boundary)
        return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
