import ESTProtocol
import EngineAPI
import Foundation
import HTTPFrontEnd
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import TestSupport
import Testing

/// EST routes over a scripted `ESTEngine`, in router test mode: what reaches the engine, and what the client gets.
@Suite struct ESTRouterTests {
    static let caDER: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x01]
    static let leafDER: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x02]
    static let csrDER: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x07]

    final class Scripted: ESTEngineDouble, @unchecked Sendable {
        let log = CallLog()
        var failure: EngineError?
        override func estCACertificates(_ ctx: CallContext, profile: String) async throws -> [[UInt8]] {
            log.add("cacerts \(profile) \(ctx.frontEnd) \(ctx.principal.method)")
            return [ESTRouterTests.caDER]
        }
        override func estCSRAttributes(_ ctx: CallContext, profile: String) async throws -> [UInt8]? {
            log.add("csrattrs \(profile)")
            return profile == "none" ? nil : [0x30, 0x00]
        }
        override func estEnroll(
            _ ctx: CallContext, profile: String, csr: [UInt8], credentials: ESTCredentials, reenroll: Bool,
            serverKeyGen: Bool
        ) async throws -> ESTEnrollment {
            log.add(
                "enroll \(profile) csr=\(csr == ESTRouterTests.csrDER) password=\(credentials.password ?? "-") reenroll=\(reenroll) keygen=\(serverKeyGen)"
            )
            if let failure { throw failure }
            return ESTEnrollment(
                certificate: ESTRouterTests.leafDER, privateKeyPKCS8: serverKeyGen ? SecretBytes([0x30, 0x00]) : nil)
        }
    }

    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    static func pkcs10Headers(_ auth: String? = nil) -> HTTPFields {
        var h: HTTPFields = [.contentType: "application/pkcs10"]
        if let auth { h[.authorization] = auth }
        return h
    }

    /// RFC 7030 §3.2.2 and RFC 9110 §15.5.6: the enrollment operations are POST only, the distribution ones GET
    /// only; the other method gets 405 with Allow (under a profile and the default), and the engine is not called.
    @Test func wrongMethodsOnESTOperationsAre405WithAllow() async throws {
        let engine = Scripted()
        try await routerApp(.doubles(est: engine), estDefaultProfile: "devices").test(.router) { client in
            for prefix in ["/.well-known/est/", "/.well-known/est/fleet/"] {
                for operation in ["simpleenroll", "simplereenroll", "serverkeygen"] {
                    for method in [HTTPRequest.Method.get, .put, .delete] {
                        try await client.execute(uri: prefix + operation, method: method) { r in
                            #expect(r.status == .methodNotAllowed, "\(method) \(prefix)\(operation)")
                            #expect(r.headers[.allow] == "POST", "\(method) \(prefix)\(operation)")
                        }
                    }
                }
                for operation in ["cacerts", "csrattrs"] {
                    try await client.execute(uri: prefix + operation, method: .post, body: ByteBuffer()) { r in
                        #expect(r.status == .methodNotAllowed, "POST \(prefix)\(operation)")
                        #expect(r.headers[.allow]?.contains("GET") == true, "POST \(prefix)\(operation)")
                    }
                }
            }
        }
        #expect(engine.log.all.isEmpty, "no engine call for a refused method")
    }

    @Test func cacertsAndCSRAttributesUnderAProfileAndTheDefault() async throws {
        let engine = Scripted()
        try await routerApp(.doubles(est: engine), estDefaultProfile: "devices").test(.router) { client in
            try await client.execute(uri: "/.well-known/est/fleet/cacerts", method: .get) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "application/pkcs7-mime; smime-type=certs-only")
                #expect(r.headers[HTTPField.Name("Content-Transfer-Encoding")!] == "base64")
                let der = try #require(ESTCodec.base64Decode(Array(buffer: r.body)))
                #expect(try ESTCodec.certificates(inCertsOnly: der) == [Self.caDER])
            }
            try await client.execute(uri: "/.well-known/est/cacerts", method: .get) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/.well-known/est/none/csrattrs", method: .get) { r in
                #expect(r.status == .noContent)
            }
            try await client.execute(uri: "/.well-known/est/fleet/csrattrs", method: .get) { r in
                #expect(r.headers[.contentType] == "application/csrattrs")
                #expect(ESTCodec.base64Decode(Array(buffer: r.body)) == [0x30, 0x00])
            }
        }
        #expect(
            engine.log.all == [
                "cacerts fleet est anonymous", "cacerts devices est anonymous", "csrattrs none", "csrattrs fleet",
            ])
    }

    @Test func withoutADefaultProfileTheBarePathIs404() async throws {
        let engine = Scripted()
        try await routerApp(.doubles(est: engine)).test(.router) { client in
            try await client.execute(uri: "/.well-known/est/cacerts", method: .get) { r in
                #expect(r.status == .notFound)
                #expect(String(buffer: r.body).contains("no default EST profile"))
            }
        }
        #expect(engine.log.all.isEmpty)
    }

    @Test func enrollmentPassesTheCSRTheBasicPasswordAndTheOperation() async throws {
        let engine = Scripted()
        let body = ByteBuffer(string: Data(Self.csrDER).base64EncodedString())
        try await routerApp(.doubles(est: engine)).test(.router) { client in
            try await client.execute(
                uri: "/.well-known/est/fleet/simpleenroll", method: .post,
                headers: Self.pkcs10Headers(Self.basic("dev", "s3cr:et")), body: body
            ) { r in
                #expect(r.status == .ok)
                let der = try #require(ESTCodec.base64Decode(Array(buffer: r.body)))
                #expect(try ESTCodec.certificates(inCertsOnly: der) == [Self.leafDER])
            }
            // DER bodies are accepted too (RFC 8951 clarifies base64; some clients send binary).
            try await client.execute(
                uri: "/.well-known/est/fleet/simplereenroll", method: .post, headers: Self.pkcs10Headers(),
                body: ByteBuffer(bytes: Self.csrDER)
            ) { r in #expect(r.status == .ok) }
            try await client.execute(
                uri: "/.well-known/est/fleet/serverkeygen", method: .post, headers: Self.pkcs10Headers(), body: body
            ) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType]?.hasPrefix("multipart/mixed; boundary=") == true)
            }
        }
        #expect(
            engine.log.all == [
                "enroll fleet csr=true password=s3cr:et reenroll=false keygen=false",
                "enroll fleet csr=true password=- reenroll=true keygen=false",
                "enroll fleet csr=true password=- reenroll=false keygen=true",
            ])
    }

    @Test func malformedRequestsNeverReachTheEngine() async throws {
        let engine = Scripted()
        try await routerApp(.doubles(est: engine)).test(.router) { client in
            let url = "/.well-known/est/fleet/simpleenroll"
            try await client.execute(
                uri: url, method: .post, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "x")
            ) { r in
                #expect(r.status == .unsupportedMediaType)
            }
            try await client.execute(
                uri: url, method: .post, headers: Self.pkcs10Headers(), body: ByteBuffer(string: "not base64 !")
            ) { r in
                #expect(r.status == .badRequest)
            }
            try await client.execute(
                uri: url, method: .post, headers: Self.pkcs10Headers(), body: ByteBuffer(string: "")
            ) { r in
                #expect(r.status == .badRequest)
            }
            let huge = ByteBuffer(repeating: UInt8(ascii: "A"), count: ESTCodec.maxRequestSize + 1)
            try await client.execute(uri: url, method: .post, headers: Self.pkcs10Headers(), body: huge) { r in
                #expect(r.status == .contentTooLarge)
            }
            try await client.execute(
                uri: url, method: .post, headers: Self.pkcs10Headers("Bearer x"), body: ByteBuffer(bytes: Self.csrDER)
            ) { r in
                #expect(r.status == .unauthorized)
                #expect(r.headers[.wwwAuthenticate]?.hasPrefix("Basic realm=") == true)
            }
        }
        #expect(engine.log.all.isEmpty)
    }

    @Test(arguments: [
        (EngineError.Code.unauthenticated, HTTPResponse.Status.unauthorized), (.permissionDenied, .forbidden),
        (.notFound, .notFound),
        (.invalidArgument, .badRequest), (.wrongState, .conflict), (.unavailable, .serviceUnavailable),
        (.internal, .internalServerError),
    ])
    func engineRefusalsAreTextWithTheStatusAndNothingInternalLeaks(
        _ code: EngineError.Code, _ status: HTTPResponse.Status
    ) async throws {
        let engine = Scripted()
        engine.failure = EngineError(code, "reason-\(code.rawValue)")
        try await routerApp(.doubles(est: engine)).test(.router) { client in
            try await client.execute(
                uri: "/.well-known/est/fleet/simpleenroll", method: .post, headers: Self.pkcs10Headers(),
                body: ByteBuffer(bytes: Self.csrDER)
            ) { r in
                #expect(r.status == status)
                #expect(r.headers[.contentType] == "text/plain; charset=utf-8")
                #expect(String(buffer: r.body).contains("reason-") == (code != .internal))
                #expect((r.headers[.wwwAuthenticate] != nil) == (status == .unauthorized))
            }
        }
    }
}
