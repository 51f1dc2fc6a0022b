import ACMEProtocol
import ArgumentParser
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SwiftASN1
import X509

/// Answers http-01 challenges for the load client: GET /.well-known/acme-challenge/{token} → key authorization.
final class ChallengeResponder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let tokens: NIOLockedValueBox<[String: String]>
    init(tokens: NIOLockedValueBox<[String: String]>) { self.tokens = tokens }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let token = String(head.uri.split(separator: "/").last ?? "")
        let body = tokens.withLockedValue { $0[token] }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "\(body?.utf8.count ?? 0)")
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: .http1_1, status: body == nil ? .notFound : .ok, headers: headers))),
            promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    static func start(port: Int, tokens: NIOLockedValueBox<[String: String]>) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(ChallengeResponder(tokens: tokens))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
    }
}

/// JSON text for the few shapes the load client sends (objects with sorted keys, arrays, strings, booleans, integers).
enum JSONText {
    static func encode(_ value: Any) -> String {
        var out = ""
        write(value, to: &out)
        return out
    }

    static func write(_ value: Any, to out: inout String) {
        switch value {
        case let s as String: writeString(s, to: &out)
        case let b as Bool: out += b ? "true" : "false"
        case let i as Int: out += String(i)
        case let a as [Any]:
            out += "["
            for (n, element) in a.enumerated() {
                if n > 0 { out += "," }
                write(element, to: &out)
            }
            out += "]"
        case let d as [String: String]: writeObject(d.mapValues { $0 as Any }, to: &out)
        case let d as [String: Any]: writeObject(d, to: &out)
        default: out += "null"
        }
    }

    static func writeObject(_ d: [String: Any], to out: inout String) {
        out += "{"
        for (n, key) in d.keys.sorted().enumerated() {
            if n > 0 { out += "," }
            writeString(key, to: &out)
            out += ":"
            write(d[key] as Any, to: &out)
        }
        out += "}"
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// One ACME client with its own account key and keep-alive connection.
final class ACMEFlow: @unchecked Sendable {
    let key = P256.Signing.PrivateKey()
    typealias Send = (HTTPMethod, String, [(String, String)], [UInt8]) async throws -> (UInt, [UInt8], [String: String])
    let directory: [String: Any]
    var nonce: String?
    var kid: String?
    let tokens: NIOLockedValueBox<[String: String]>

    init(directory: [String: Any], tokens: NIOLockedValueBox<[String: String]>) {
        self.directory = directory
        self.tokens = tokens
    }

    static func b64(_ bytes: some Sequence<UInt8>) -> String { Base64URL.encode(bytes) }

    /// The account key as a JWK, and its RFC 7638 thumbprint (computed once).
    lazy var jwk: [String: String] = {
        let raw = Array(key.publicKey.rawRepresentation)
        return ["crv": "P-256", "kty": "EC", "x": Self.b64(raw.prefix(32)), "y": Self.b64(raw.suffix(32))]
    }()

    lazy var thumbprint: String = {
        let j = jwk
        let canonical = #"{"crv":"P-256","kty":"EC","x":"\#(j["x"] ?? "")","y":"\#(j["y"] ?? "")"}"#
        return Self.b64(SHA256.hash(data: Array(canonical.utf8)))
    }()

    func url(_ key: String) -> String { directory[key] as? String ?? "" }

    func freshNonce(_ request: Send) async throws -> String {
        if let n = nonce {
            nonce = nil
            return n
        }
        let (_, _, headers) = try await request(.HEAD, path(url("newNonce")), [], [])
        guard let n = headers["replay-nonce"] else { throw ValidationError("no Replay-Nonce") }
        return n
    }

    func path(_ url: String) -> String {
        guard let u = URL(string: url) else { return url }
        return u.path + (u.query.map { "?" + $0 } ?? "")
    }

    /// POSTs a JWS (payload nil = POST-as-GET); returns status, JSON body and headers. A `badNonce` refusal is
    /// retried with the fresh nonce it carries, as RFC 8555 §6.5 expects of clients (Pebble rejects 5% of nonces on
    /// purpose; certbot retries too).
    @discardableResult
    func post(_ request: Send, _ url: String, _ payload: Any?, eab: [String: Any]? = nil) async throws -> (
        UInt, [UInt8], [String: String]
    ) {
        var response = try await postOnce(request, url, payload, eab: eab)
        for _ in 0..<3 {
            guard response.0 == 400,
                String(decoding: response.1, as: UTF8.self).contains("urn:ietf:params:acme:error:badNonce")
            else { break }
            response = try await postOnce(request, url, payload, eab: eab)
        }
        return response
    }

    func postOnce(_ request: Send, _ url: String, _ payload: Any?, eab: [String: Any]?) async throws -> (
        UInt, [UInt8], [String: String]
    ) {
        var protected: [String: Any] = ["alg": "ES256", "nonce": try await freshNonce(request), "url": url]
        if let kid { protected["kid"] = kid } else { protected["jwk"] = jwk }
        // A load generator must stay cheap next to the server it measures: Foundation's JSONSerialization was a
        // quarter of this client's CPU, so the small documents it sends are written by hand.
        let p = Self.b64(Array(JSONText.encode(protected).utf8))
        var body = ""
        if var object = payload as? [String: Any] {
            if let eab { object["externalAccountBinding"] = eab }
            body = Self.b64(Array(JSONText.encode(object).utf8))
        }
        let signature = try key.signature(for: Array((p + "." + body).utf8)).rawRepresentation
        let jws = JSONText.encode(["protected": p, "payload": body, "signature": Self.b64(signature)])
        let response = try await request(.POST, path(url), [("Content-Type", "application/jose+json")], Array(jws.utf8))
        nonce = response.2["replay-nonce"]
        return response
    }

    func json(_ bytes: [UInt8]) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]) ?? [:]
    }

    func register(_ request: Send, eabKid: String?, eabKey: String?) async throws {
        var eab: [String: Any]?
        if let eabKid, let eabKey {
            let newAccount = url("newAccount")
            let p = Self.b64(
                try JSONSerialization.data(
                    withJSONObject: ["alg": "HS256", "kid": eabKid, "url": newAccount],
                    options: [.withoutEscapingSlashes]))
            let payload = Self.b64(try JSONSerialization.data(withJSONObject: jwk))
            let mac = HMAC<SHA256>.authenticationCode(
                for: Array((p + "." + payload).utf8), using: SymmetricKey(data: Base64URL.decode(eabKey) ?? []))
            eab = ["protected": p, "payload": payload, "signature": Self.b64(mac)]
        }
        let (status, body, headers) = try await post(
            request, url("newAccount"), ["termsOfServiceAgreed": true, "contact": ["mailto:bench@example.org"]],
            eab: eab)
        guard status == 201 || status == 200, let location = headers["location"] else {
            throw ValidationError("newAccount: HTTP \(status) \(String(decoding: body, as: UTF8.self))")
        }
        kid = location
    }

    /// newOrder → authz → http-01 → finalize → download. Returns false on any protocol failure.
    func issue(_ request: Send, _ name: String) async throws -> Bool {
        let (s1, b1, h1) = try await post(request, url("newOrder"), ["identifiers": [["type": "dns", "value": name]]])
        guard s1 == 201, let orderURL = h1["location"] else { return false }
        var order = json(b1)
        guard let authzURL = (order["authorizations"] as? [String])?.first else { return false }
        let authz = json(try await post(request, authzURL, nil).1)
        guard
            let challenge = (authz["challenges"] as? [[String: Any]])?.first(where: {
                $0["type"] as? String == "http-01"
            }),
            let token = challenge["token"] as? String, let challengeURL = challenge["url"] as? String
        else { return false }
        tokens.withLockedValue { $0[token] = token + "." + thumbprint }
        defer { _ = tokens.withLockedValue { $0.removeValue(forKey: token) } }
        try await post(request, challengeURL, [String: Any]())
        for _ in 0..<500 {
            order = json(try await post(request, orderURL, nil).1)
            if order["status"] as? String != "pending" { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        guard order["status"] as? String == "ready", let finalize = order["finalize"] as? String else { return false }
        let certKey = P256.Signing.PrivateKey()
        var attributes = CertificateSigningRequest.Attributes()
        attributes.insert(
            try CertificateSigningRequest.Attribute(
                ExtensionRequest(extensions: try Certificate.Extensions { SubjectAlternativeNames([.dnsName(name)]) })))
        let csr = try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName(), privateKey: Certificate.PrivateKey(certKey),
            attributes: attributes,
            signatureAlgorithm: .ecdsaWithSHA256)
        var serializer = DER.Serializer()
        try serializer.serialize(csr)
        order = json(try await post(request, finalize, ["csr": Self.b64(serializer.serializedBytes)]).1)
        for _ in 0..<500 where order["status"] as? String == "processing" {
            try await Task.sleep(for: .milliseconds(5))
            order = json(try await post(request, orderURL, nil).1)
        }
        guard order["status"] as? String == "valid", let certURL = order["certificate"] as? String else { return false }
        let (s4, pem, _) = try await post(request, certURL, nil)
        return s4 == 200 && String(decoding: pem, as: UTF8.self).contains("BEGIN CERTIFICATE")
    }
}

struct TimedOut: Error {}

/// Runs `body`, giving up after `seconds` (a stuck peer must not stall the benchmark).
func withDeadline<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            throw TimedOut()
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw TimedOut() }
        return first
    }
}

/// One line to standard output at once (unbuffered, so a level's result shows even if a later level is cut off).
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

struct ACME: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "ACME full flow per certificate (newOrder, authz, http-01 answered here, finalize, download), one account and connection per worker.",
        discussion: """
            Gatehouse: sets up (as the administrator) an ACME profile in the project 'bench-acme' whose template allows
            *.localhost, reads its EAB credentials, and points the daemon's http-01 validator at --http01-port (start the
            daemon with GATEHOUSE_ACME_HTTP01_PORT set to it). --peer-directory measures another ACME server (e.g.
            Pebble with PEBBLE_VA_NOSLEEP=1, validating http-01 on the same port) with the same flow.
            """)

    @Option(help: "Gatehouse HTTPS HOST:PORT.") var target = "127.0.0.1:8443"
    @Option var ca = ".gatehouse/certs/ca.crt"
    @Option var cert = ".gatehouse/certs/admin.crt"
    @Option var key = ".gatehouse/certs/admin.key"
    @Option(help: "Port this program answers http-01 on (the servers validate against it).") var http01Port = 5002
    @Option(help: "Another ACME directory URL to measure (e.g. https://127.0.0.1:14000/dir).") var peerDirectory:
        String?
    @Option(help: "CA bundle for the peer's TLS certificate.") var peerCa: String?
    @Option(help: "Comma-separated concurrency levels.") var concurrency = "1,4,16"
    @Option(help: "Seconds per level.") var seconds: Double = 5

    func setUp(_ endpoint: Endpoint) async throws -> (directory: String, kid: String, hmac: String) {
        let connection = try await HTTPConnection.open(endpoint)
        let bench = EST()
        let slug = "bench-acme-\(UInt32.random(in: 0...UInt32.max))"
        return try await connection.run { request in
            _ = try await bench.json(request, "/api/v1/projects", #"{"slug":"bench-acme"}"#)
            let created = try await bench.json(
                request, "/api/v1/projects/bench-acme/pki/cas",
                #"{"type":"root","subject":{"commonName":"Bench ACME"},"keyAlgorithm":"EC_prime256v1"}"#)
            guard let caId = (created["ca"] as? [String: Any])?["id"] as? String else {
                throw ValidationError("no CA id")
            }
            let template = try await bench.json(
                request, "/api/v1/projects/bench-acme/pki/templates",
                #"{"name":"\#(slug)","subject":[{"type":"commonName","allowed":["*.localhost"]}],"sans":[{"type":"dns","allowed":["*.localhost"]}],"maxTTL":"30d"}"#
            )
            guard let templateId = (template["template"] as? [String: Any])?["id"] as? String else {
                throw ValidationError("no template id")
            }
            _ = try await bench.json(
                request, "/api/v1/projects/bench-acme/pki/profiles",
                #"{"slug":"\#(slug)","caId":"\#(caId)","templateId":"\#(templateId)","enrollment":"acme"}"#)
            let (_, eabBytes) = try await request(.GET, "/api/v1/pki/profiles/\(slug)/acme-eab", [], [])
            let eab = (try? JSONSerialization.jsonObject(with: Data(eabBytes)) as? [String: String]) ?? [:]
            return (
                "https://localhost:\(endpoint.port)/acme/\(slug)/directory", eab["keyId"] ?? "", eab["hmacKey"] ?? ""
            )
        }
    }

    /// Opens a plain (no client certificate) keep-alive HTTPS connection to a directory's server.
    func connection(_ directoryURL: String, ca: String) async throws -> (HTTPConnection, [String: Any]) {
        guard let url = URL(string: directoryURL), let host = url.host, let port = url.port else {
            throw ValidationError("bad directory URL")
        }
        let c = try await HTTPConnection.open(
            Endpoint(host: host == "localhost" ? "127.0.0.1" : host, port: port, ca: ca, cert: "", key: ""))
        return (c, [:])
    }

    func measure(
        directoryURL: String, ca: String, eab: (String, String)?, workers: Int,
        tokens: NIOLockedValueBox<[String: String]>,
        names: NIOLockedValueBox<Int>
    ) async throws -> Result {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let start = ContinuousClock.now
        let total = try await withThrowingTaskGroup(of: Result.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    // A worker whose server stops answering for 15 s ends with what it measured (the rest counts
                    // as errors), instead of stalling the whole run.
                    let partial = NIOLockedValueBox(Result(ops: 0, errors: 0, elapsed: 0, latencies: []))
                    do {
                        return try await withDeadline(seconds + 15) {
                            try await worker(
                                directoryURL: directoryURL, ca: ca, eab: eab, tokens: tokens, names: names,
                                deadline: deadline, partial: partial)
                        }
                    } catch is TimedOut {
                        var r = partial.withLockedValue { $0 }
                        r.errors += 1
                        return r
                    }
                }
            }
            return try await Result.sum(group)
        }
        var result = total
        result.elapsed = (ContinuousClock.now - start).seconds
        return result
    }

    func worker(
        directoryURL: String, ca: String, eab: (String, String)?, tokens: NIOLockedValueBox<[String: String]>,
        names: NIOLockedValueBox<Int>, deadline: ContinuousClock.Instant, partial: NIOLockedValueBox<Result>
    ) async throws -> Result {
        let (connection, _) = try await connection(directoryURL, ca: ca)
        return try await connection.runWithHeaders { request in
            let (_, dirBytes, _) = try await request(.GET, URL(string: directoryURL)?.path ?? "/", [], [])
            let directory = (try? JSONSerialization.jsonObject(with: Data(dirBytes)) as? [String: Any]) ?? [:]
            let flow = ACMEFlow(directory: directory, tokens: tokens)
            try await flow.register(request, eabKid: eab?.0, eabKey: eab?.1)
            var latencies: [Double] = []
            var errors = 0
            while ContinuousClock.now < deadline {
                let n = names.withLockedValue { v -> Int in
                    v += 1
                    return v
                }
                let t0 = ContinuousClock.now
                let ok = (try? await flow.issue(request, "b\(n).localhost")) ?? false
                latencies.append((ContinuousClock.now - t0).seconds)
                if !ok { errors += 1 }
                let snapshot = Result(ops: latencies.count - errors, errors: errors, elapsed: 0, latencies: latencies)
                partial.withLockedValue { $0 = snapshot }
            }
            return Result(ops: latencies.count - errors, errors: errors, elapsed: 0, latencies: latencies)
        }
    }

    func run() async throws {
        let endpoint = try Endpoint.parse(target, ca: ca, cert: cert, key: key)
        let tokens = NIOLockedValueBox<[String: String]>([:])
        let names = NIOLockedValueBox(Int(Date().timeIntervalSince1970) % 100_000 * 1000)
        let responder = try await ChallengeResponder.start(port: http01Port, tokens: tokens)
        defer { responder.close(promise: nil) }
        let (directory, kid, hmac) = try await setUp(endpoint)
        for c in concurrency.split(separator: ",").compactMap({ Int($0) }) {
            let g = try await measure(
                directoryURL: directory, ca: ca, eab: (kid, hmac), workers: c, tokens: tokens, names: names)
            say(g.line("gatehouse", "acme-cert", c))
            if let peerDirectory {
                let p = try await measure(
                    directoryURL: peerDirectory, ca: peerCa ?? ca, eab: nil, workers: c, tokens: tokens, names: names)
                say(p.line("peer", "acme-cert", c))
                say(Result.ratioLine("acme-cert", c, gatehouse: g, peer: p))
            }
        }
    }
}
