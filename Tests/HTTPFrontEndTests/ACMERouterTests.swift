import ACMEProtocol
import Crypto
import EngineAPI
import Foundation
import HTTPFrontEnd
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import TestSupport
import Testing

/// An ACME client key that signs JWS bodies (ES256, RFC 7515 flattened JSON).
struct ACMETestKey {
    let key = P256.Signing.PrivateKey()

    var jwk: [String: String] {
        let point = Array(key.publicKey.x963Representation.dropFirst())
        return ["kty": "EC", "crv": "P-256", "x": Base64URL.encode(point[0..<32]), "y": Base64URL.encode(point[32...])]
    }

    /// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
    var thumbprint: String {
        let j = jwk
        let canonical = #"{"crv":"P-256","kty":"EC","x":"\#(j["x"]!)","y":"\#(j["y"]!)"}"#
        return Base64URL.encode(SHA256.hash(data: Data(canonical.utf8)))
    }

    func jws(
        url: String, nonce: String, payload: [String: Any]?, kid: String? = nil, signer: P256.Signing.PrivateKey? = nil
    ) throws -> ByteBuffer {
        var protected: [String: Any] = ["alg": "ES256", "nonce": nonce, "url": url]
        if let kid { protected["kid"] = kid } else { protected["jwk"] = jwk }
        let p64 = Base64URL.encode(try JSONSerialization.data(withJSONObject: protected, options: [.sortedKeys]))
        let body64 = try payload.map { Base64URL.encode(try JSONSerialization.data(withJSONObject: $0)) } ?? ""
        let signature = try (signer ?? key).signature(for: Data("\(p64).\(body64)".utf8)).rawRepresentation
        let object = ["protected": p64, "payload": body64, "signature": Base64URL.encode(signature)]
        return ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object))
    }
}

/// ACME routes over a scripted `ACMEEngine`, in router test mode: request authentication (content type, URL, nonce,
/// signature) happens before the engine, and refusals are problem documents that carry a fresh nonce.
@Suite struct ACMERouterTests {
    static let base = "https://localhost/acme/web"
    static let jose: HTTPFields = [.contentType: "application/jose+json"]

    final class Scripted: ACMEEngineDouble, @unchecked Sendable {
        let log = CallLog()
        let nonces = Mutex(0)
        static let profile = ProfileInfo(
            id: "prof-1", slug: "web", project: "ops", description: nil, caId: "ca-1", templateId: "t-1",
            enrollment: .acme,
            estHasPassphrase: false, estBootstrapCAChain: nil, estDisableBootstrapValidation: false,
            estRequireChannelBinding: false,
            defaultTTL: nil, createdAt: Date(timeIntervalSince1970: 0))
        override func acmeProfile(_ ctx: CallContext, profile: String) async throws -> ProfileInfo {
            guard profile == "web" else { throw EngineError(.notFound, "no profile \(profile)") }
            return Self.profile
        }
        override func acmeDirectoryProfiles(_ ctx: CallContext, profile: String) async throws -> [ProfileInfo] {
            [Self.profile]
        }
        override func acmeNewNonce() async throws -> String {
            let n = nonces.withLock { count in
                count += 1
                return count
            }
            return "nonce-\(n)"
        }
        override func acmeConsumeNonce(_ nonce: String) async throws -> Bool {
            log.add("consume \(nonce)")
            return nonce.hasPrefix("nonce-")
        }
        override func acmeNewAccount(
            _ ctx: CallContext, profileId: String, jwk: String, thumbprint: String, contact: [String],
            termsAgreed: Bool,
            onlyReturnExisting: Bool, eab: (kid: String, alg: String, signingInput: [UInt8], mac: [UInt8])?
        ) async throws -> (ACMEAccountInfo, created: Bool) {
            log.add(
                "newAccount \(profileId) \(thumbprint) \(contact) agreed=\(termsAgreed) eab=\(eab?.kid ?? "-") as \(ctx.principal.method)"
            )
            return (
                ACMEAccountInfo(
                    id: "acct-1", profileId: profileId, status: .valid, contact: contact, thumbprint: thumbprint,
                    jwk: jwk, eabKeyId: nil,
                    createdAt: Date(timeIntervalSince1970: 0)), true
            )
        }
    }

    /// "type status" of a problem document (the type's URN prefix dropped), "-" when the body is not one.
    static func problem(_ r: TestResponse) -> String {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(buffer: r.body))) as? [String: Any],
            let type = o["type"] as? String, type.hasPrefix("urn:ietf:params:acme:error:"),
            let status = o["status"] as? Int
        else { return "-" }
        return "\(type.dropFirst("urn:ietf:params:acme:error:".count)) \(status)"
    }

    @Test func directoryAndNoncesFollowRFC8555() async throws {
        let engine = Scripted()
        try await routerApp(.doubles(acme: engine), acme: ACMESettings(termsOfService: "https://example.test/tos"))
            .test(.router) { client in
                try await client.execute(uri: "/acme/web/directory", method: .get) { r in
                    #expect(r.status == .ok)
                    let d = try #require(try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
                    #expect(d["newNonce"] as? String == "\(Self.base)/new-nonce")
                    #expect(d["newAccount"] as? String == "\(Self.base)/new-account")
                    let meta = d["meta"] as? [String: Any]
                    #expect(meta?["termsOfService"] as? String == "https://example.test/tos")
                    #expect(meta?["externalAccountRequired"] as? Bool == true)
                }
                try await client.execute(uri: "/acme/nope/directory", method: .get) { r in
                    #expect(r.status == .notFound)
                    #expect(Self.problem(r) == "malformed 404")
                }
                try await client.execute(uri: "/acme/web/new-nonce", method: .head) { r in
                    #expect(r.status == .ok)
                    #expect(r.headers[HTTPField.Name("Replay-Nonce")!]?.hasPrefix("nonce-") == true)
                    #expect(r.headers[.cacheControl] == "no-store")
                    #expect(r.headers[HTTPField.Name("Link")!] == "<\(Self.base)/directory>;rel=\"index\"")
                }
                try await client.execute(uri: "/acme/web/new-nonce", method: .get) { r in
                    #expect(r.status == .noContent)
                }
            }
    }

    @Test func aSignedNewAccountReachesTheEngineWithTheKeysThumbprint() async throws {
        let engine = Scripted()
        let key = ACMETestKey()
        try await routerApp(.doubles(acme: engine)).test(.router) { client in
            let body = try key.jws(
                url: "\(Self.base)/new-account", nonce: "nonce-9",
                payload: ["contact": ["mailto:ops@example.test"], "termsOfServiceAgreed": true])
            try await client.execute(uri: "/acme/web/new-account", method: .post, headers: Self.jose, body: body) { r in
                #expect(r.status == .created)
                #expect(r.headers[.location] == "\(Self.base)/account/acct-1")
                #expect(r.headers[HTTPField.Name("Replay-Nonce")!] != nil)
                let o = try #require(try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
                #expect(o["status"] as? String == "valid")
                #expect(o["orders"] as? String == "\(Self.base)/account/acct-1/orders")
            }
        }
        #expect(
            engine.log.all == [
                "consume nonce-9",
                "newAccount prof-1 \(key.thumbprint) [\"mailto:ops@example.test\"] agreed=true eab=- as acmeAccount",
            ])
    }

    @Test func requestsThatFailAuthenticationAreProblemsAndNeverReachTheEngine() async throws {
        let engine = Scripted()
        let key = ACMETestKey()
        let url = "\(Self.base)/new-account"
        try await routerApp(.doubles(acme: engine)).test(.router) { client in
            let good = try key.jws(url: url, nonce: "nonce-1", payload: [:])
            try await client.execute(
                uri: "/acme/web/new-account", method: .post, headers: [.contentType: "application/json"], body: good
            ) { r in
                #expect(r.status == .unsupportedMediaType)
                #expect(Self.problem(r) == "malformed 415")
                #expect(r.headers[.contentType] == "application/problem+json")
                #expect(r.headers[HTTPField.Name("Replay-Nonce")!] != nil, "every problem carries a fresh nonce")
            }
            let wrongURL = try key.jws(url: "\(Self.base)/new-order", nonce: "nonce-2", payload: [:])
            try await client.execute(uri: "/acme/web/new-account", method: .post, headers: Self.jose, body: wrongURL) {
                r in
                #expect(Self.problem(r) == "unauthorized 403")
            }
            let stale = try key.jws(url: url, nonce: "reused-3", payload: [:])
            try await client.execute(uri: "/acme/web/new-account", method: .post, headers: Self.jose, body: stale) {
                r in
                #expect(Self.problem(r) == "badNonce 400")
            }
            let forged = try key.jws(url: url, nonce: "nonce-4", payload: [:], signer: P256.Signing.PrivateKey())
            try await client.execute(uri: "/acme/web/new-account", method: .post, headers: Self.jose, body: forged) {
                r in
                #expect(Self.problem(r) == "malformed 400")
            }
            let withKid = try key.jws(url: url, nonce: "nonce-5", payload: [:], kid: "https://elsewhere/account/1")
            try await client.execute(uri: "/acme/web/new-account", method: .post, headers: Self.jose, body: withKid) {
                r in
                #expect(Self.problem(r) == "accountDoesNotExist 400")
            }
            try await client.execute(
                uri: "/acme/web/new-account", method: .post, headers: Self.jose, body: ByteBuffer(string: "{]")
            ) { r in
                #expect(Self.problem(r) == "malformed 400")
            }
        }
        // Content type, body and URL are checked before the nonce is spent; key and signature after (RFC 8555 §6.5:
        // a nonce is spent by any request that carries it, so a replayed request fails even if the first one did).
        #expect(engine.log.all == ["consume reused-3", "consume nonce-4", "consume nonce-5"])
    }
}
