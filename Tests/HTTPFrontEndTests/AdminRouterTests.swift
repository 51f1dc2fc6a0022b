import EngineAPI
import Foundation
import HTTPFrontEnd
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import TestSupport
import Testing

/// Admin API routes over scripted services, in router test mode: authentication, parameter checks, what reaches the
/// engine and the JSON that comes back.
@Suite struct AdminRouterTests {
    static let alice = Principal(method: .token, id: "id-alice", name: "alice")

    /// "good" is alice's token; anything else is refused.
    final class Tokens: AuthenticatorDouble, @unchecked Sendable {
        let log = CallLog()
        override func authenticate(bearerToken: String, ipAddress: String?, frontEnd: String) async throws -> Principal
        {
            log.add("authenticate \(bearerToken) \(frontEnd)")
            guard bearerToken == "good" else { throw EngineError(.unauthenticated, "the token is not valid") }
            return AdminRouterTests.alice
        }
    }

    final class Secrets: SecretsEngineDouble, @unchecked Sendable {
        let log = CallLog()
        static let meta = SecretMetadata(
            id: "s1", project: "ops", name: "db", version: 3, createdAt: Date(timeIntervalSince1970: 0),
            updatedAt: Date(timeIntervalSince1970: 60))
        override func listSecrets(_ ctx: CallContext, project: String, after: String?, limit: Int) async throws -> Page<
            SecretMetadata
        > {
            log.add(
                "list \(project) after=\(after ?? "-") limit=\(limit) as \(ctx.principal.name) request=\(ctx.requestID)"
            )
            return Page(items: [Self.meta], next: "db")
        }
        override func readSecret(_ ctx: CallContext, project: String, name: String) async throws -> (
            SecretMetadata, SecretBytes
        ) {
            log.add("read \(project)/\(name) as \(ctx.principal.name)")
            guard name == "db" else { throw EngineError(.notFound, "no secret \(name)") }
            return (Self.meta, SecretBytes(utf8: "hunter2"))
        }
        override func createSecret(_ ctx: CallContext, project: String, name: String, value: SecretBytes) async throws
            -> SecretMetadata
        {
            log.add("create \(project)/\(name)=\(String(decoding: value.bytes, as: UTF8.self))")
            return Self.meta
        }
    }

    final class Audit: AuditEngineDouble, @unchecked Sendable {
        let log = CallLog()
        override func auditEvents(_ ctx: CallContext, cursor: String?, limit: Int) async throws -> Page<
            ChainedAuditEvent
        > {
            log.add("events cursor=\(cursor ?? "-") limit=\(limit)")
            return Page(items: [], next: "c2")
        }
        override func searchAudit(_ ctx: CallContext, _ s: AuditSearch) async throws -> Page<ChainedAuditEvent> {
            log.add(
                "search type=\(s.type ?? "-") actor=\(s.actor ?? "-") since=\(s.since.map { "\($0.timeIntervalSince1970)" } ?? "-") newestFirst=\(s.newestFirst)"
            )
            return Page(items: [], next: nil)
        }
    }

    static func json(_ r: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
    }
    static func errorCode(_ r: TestResponse) throws -> String? {
        (try json(r)["error"] as? [String: Any])?["code"] as? String
    }

    @Test func bearerTokensAreCheckedByTheAuthenticatorAndRefusalsAre401WithAChallenge() async throws {
        let tokens = Tokens()
        let secrets = Secrets()
        try await routerApp(.doubles(authenticator: tokens, secrets: secrets)).test(.router) { client in
            try await client.execute(
                uri: "/api/v1/projects/ops/secrets/db", method: .get, headers: [.authorization: "Bearer good"]
            ) { r in
                #expect(r.status == .ok)
                let body = try Self.json(r)
                #expect(body["value"] as? String == "hunter2")
                #expect((body["secret"] as? [String: Any])?["version"] as? Int == 3)
            }
            try await client.execute(
                uri: "/api/v1/projects/ops/secrets/db", method: .get, headers: [.authorization: "Bearer stolen"]
            ) { r in
                #expect(r.status == .unauthorized)
                #expect(r.headers[.wwwAuthenticate] == "Bearer realm=\"gatehouse\"")
                let code = try Self.errorCode(r)
                #expect(code == "unauthenticated")
            }
            try await client.execute(
                uri: "/api/v1/projects/ops/secrets/db", method: .get, headers: [.authorization: "Basic Zm9vOmJhcg=="]
            ) { r in
                #expect(r.status == .unauthorized)
            }
            try await client.execute(
                uri: "/api/v1/projects/ops/secrets/nope", method: .get, headers: [.authorization: "Bearer good"]
            ) { r in
                #expect(r.status == .notFound)
                let code = try Self.errorCode(r)
                #expect(code == "not_found")
            }
        }
        #expect(
            tokens.log.all == [
                "authenticate good admin-api", "authenticate stolen admin-api", "authenticate good admin-api",
            ])
        #expect(
            secrets.log.all == ["read ops/db as alice", "read ops/nope as alice"],
            "refused tokens never reach the secrets")
    }

    @Test func pagingParametersAreCheckedBeforeTheEngine() async throws {
        let secrets = Secrets()
        try await routerApp(.doubles(authenticator: Tokens(), secrets: secrets)).test(.router) { client in
            let auth: HTTPFields = [.authorization: "Bearer good", HTTPField.Name("X-Request-Id")!: "req-7"]
            for bad in ["0", "1001", "ten", "-1"] {
                try await client.execute(uri: "/api/v1/projects/ops/secrets?limit=\(bad)", method: .get, headers: auth)
                { r in
                    #expect(r.status == .badRequest, "limit=\(bad)")
                }
            }
            try await client.execute(
                uri: "/api/v1/projects/ops/secrets?limit=5&after=alpha", method: .get, headers: auth
            ) { r in
                #expect(r.status == .ok)
                let body = try Self.json(r)
                #expect(body["next"] as? String == "db")
                #expect((body["secrets"] as? [[String: Any]])?.first?["name"] as? String == "db")
            }
            try await client.execute(
                uri: "/api/v1/projects/ops/secrets", method: .get, headers: [.authorization: "Bearer good"]
            ) { r in
                #expect(r.status == .ok)
            }
        }
        let log = secrets.log.all
        #expect(log.count == 2)
        #expect(log.first == "list ops after=alpha limit=5 as alice request=req-7")
        #expect(
            log.last?.hasPrefix("list ops after=- limit=100 as alice request=") == true,
            "the default page is 100, with a fresh request id")
    }

    @Test func bodiesThatAreNotTheSchemaOrTooLargeAre400And413() async throws {
        let secrets = Secrets()
        try await routerApp(.doubles(authenticator: Tokens(), secrets: secrets), maxBody: 256).test(.router) { client in
            let h: HTTPFields = [.authorization: "Bearer good", .contentType: "application/json"]
            try await client.execute(
                uri: "/api/v1/projects/ops/secrets/db", method: .post, headers: h,
                body: ByteBuffer(string: "{\"valu\":1}")
            ) { r in
                #expect(r.status == .badRequest)
            }
            try await client.execute(
                uri: "/api/v1/projects/ops/secrets/db", method: .post, headers: h, body: ByteBuffer(string: "{")
            ) { r in
                #expect(r.status == .badRequest)
            }
            let big = "{\"value\":\"" + String(repeating: "x", count: 300) + "\"}"
            try await client.execute(
                uri: "/api/v1/projects/ops/secrets/db", method: .post, headers: h, body: ByteBuffer(string: big)
            ) { r in
                #expect(r.status == .contentTooLarge)
            }
            try await client.execute(
                uri: "/api/v1/projects/ops/secrets/db", method: .post, headers: h,
                body: ByteBuffer(string: "{\"value\":\"v1\"}")
            ) { r in
                #expect(r.status == .created)
            }
        }
        #expect(secrets.log.all == ["create ops/db=v1"])
    }

    @Test func auditReadsTheLogOrSearchesDependingOnTheParameters() async throws {
        let audit = Audit()
        try await routerApp(.doubles(authenticator: Tokens(), audit: audit)).test(.router) { client in
            let h: HTTPFields = [.authorization: "Bearer good"]
            try await client.execute(uri: "/api/v1/audit/events?cursor=c1&limit=10", method: .get, headers: h) { r in
                let body = try Self.json(r)
                #expect(body["next"] as? String == "c2")
            }
            try await client.execute(
                uri: "/api/v1/audit/events?type=secret.read&since=1970-01-01T00:01:00Z&order=desc", method: .get,
                headers: h
            ) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/api/v1/audit/events?order=sideways", method: .get, headers: h) { r in
                #expect(r.status == .badRequest)
            }
            try await client.execute(uri: "/api/v1/audit/events?since=yesterday", method: .get, headers: h) { r in
                #expect(r.status == .badRequest)
            }
            let long = String(repeating: "t", count: 201)
            try await client.execute(uri: "/api/v1/audit/events?type=\(long)", method: .get, headers: h) { r in
                #expect(r.status == .badRequest)
            }
        }
        #expect(
            audit.log.all == [
                "events cursor=c1 limit=10", "search type=secret.read actor=- since=60.0 newestFirst=true",
            ])
    }

    @Test func bodiesAreJSONWhateverCurlLabelsThemAndOtherMediaTypesAre415() async throws {
        let secrets = Secrets()
        try await routerApp(.doubles(authenticator: Tokens(), secrets: secrets)).test(.router) { client in
            let body = ByteBuffer(string: "{\"value\":\"v1\"}")
            for type in [nil, "application/x-www-form-urlencoded", "application/json; charset=utf-8"] {
                var h: HTTPFields = [.authorization: "Bearer good"]
                if let type { h[.contentType] = type }
                try await client.execute(uri: "/api/v1/projects/ops/secrets/db", method: .post, headers: h, body: body)
                { r in
                    #expect(r.status == .created, "Content-Type \(type ?? "absent")")
                }
            }
            let xml: HTTPFields = [.authorization: "Bearer good", .contentType: "text/xml"]
            try await client.execute(uri: "/api/v1/projects/ops/secrets/db", method: .post, headers: xml, body: body) {
                r in
                #expect(r.status == .unsupportedMediaType)
            }
        }
        #expect(secrets.log.all.count == 3)
    }

    @Test func refusedParametersAreNamedWithTheirAllowedValues() async throws {
        let audit = Audit()
        try await routerApp(.doubles(authenticator: Tokens(), audit: audit)).test(.router) { client in
            let h: HTTPFields = [.authorization: "Bearer good"]
            try await client.execute(uri: "/api/v1/audit/events?order=sideways", method: .get, headers: h) { r in
                let body = try Self.json(r)
                let message = (body["error"] as? [String: Any])?["message"] as? String
                #expect(message == "order must be one of asc, desc")
                #expect(try Self.errorCode(r) == "bad_request")
            }
            try await client.execute(
                uri: "/api/v1/audit/events?since=1970-01-01T00:01:00.250Z", method: .get, headers: h
            ) { r in
                #expect(r.status == .ok, "fractional seconds are RFC 3339 too")
            }
        }
        #expect(audit.log.all == ["search type=- actor=- since=60.25 newestFirst=false"])
    }

    @Test func wrongMethodsAre405WithAllowAndUnknownPathsAre404() async throws {
        try await routerApp(.doubles()).test(.router) { client in
            try await client.execute(uri: "/api/v1/audit/events", method: .delete) { r in
                #expect(r.status == .methodNotAllowed)
                #expect(r.headers[.allow] == "GET")
            }
            try await client.execute(uri: "/api/v1/nothing-here", method: .get) { r in
                #expect(r.status == .notFound)
                let code = try Self.errorCode(r)
                #expect(code == "not_found")
            }
            try await client.execute(uri: "/healthz", method: .get) { r in #expect(String(buffer: r.body) == "ok\n") }
            try await client.execute(uri: "/readyz", method: .get) { r in #expect(String(buffer: r.body) == "ready\n") }
        }
    }
}
