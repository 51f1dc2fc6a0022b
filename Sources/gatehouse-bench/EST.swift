import ArgumentParser
import Crypto
import ESTProtocol
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SwiftASN1
import X509

/// One keep-alive mutual-TLS HTTP/1.1 connection: send a request, read the whole response.
struct HTTPConnection {
    let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    let host: String

    static func open(_ e: Endpoint) async throws -> HTTPConnection {
        let context = try clientTLS(e)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: e.host, port: e.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        return HTTPConnection(channel: channel, host: e.host)
    }

    /// Runs `body` with a function that performs one request and returns (status, response body).
    func run<T: Sendable>(
        _ body: (_ request: (HTTPMethod, String, [(String, String)], [UInt8]) async throws -> (UInt, [UInt8]))
            async throws -> T
    ) async throws -> T {
        try await runWithHeaders { request in
            try await withoutActuallyEscaping(request) { send in
                try await body { m, p, h, b in
                    let (status, bytes, _) = try await send(m, p, h, b)
                    return (status, bytes)
                }
            }
        }
    }

    /// Like `run`, also returning the response headers (names lowercased).
    func runWithHeaders<T: Sendable>(
        _ body: (
            _ request: (HTTPMethod, String, [(String, String)], [UInt8]) async throws -> (
                UInt, [UInt8], [String: String]
            )
        )
            async throws -> T
    ) async throws -> T {
        try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            return try await body { method, path, headers, bytes in
                var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
                head.headers.add(name: "Host", value: host)
                head.headers.add(name: "Content-Length", value: "\(bytes.count)")
                for (k, v) in headers { head.headers.add(name: k, value: v) }
                try await outbound.write(contentsOf: [
                    .head(head), .body(.byteBuffer(ByteBuffer(bytes: bytes))), .end(nil),
                ])
                var status: UInt = 0
                var response: [UInt8] = []
                var responseHeaders: [String: String] = [:]
                while let part = try await iterator.next() {
                    switch part {
                    case .head(let h):
                        status = h.status.code
                        for (name, value) in h.headers { responseHeaders[name.lowercased()] = value }
                    case .body(let b): response += Array(buffer: b)
                    case .end:
                        // A HEAD response has no body even with a Content-Length.
                        return (status, response, responseHeaders)
                    }
                }
                throw ValidationError("connection closed mid-response")
            }
        }
    }
}

struct EST: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "EST simpleenroll (P-256 device keys) over keep-alive mutual-TLS connections, one per worker.",
        discussion: """
            Sets up (as the administrator) the project 'bench-est' with one root CA per CA key algorithm, a template and an
            EST profile whose bootstrap CA is the appliance CA, so the administrator certificate is the device's
            bootstrap (IDevID) certificate. Each request posts a base64 PKCS#10 with a P-256 key (a pool of 64 CSRs
            made up front) and reads back the certs-only PKCS#7; each enrollment is stored and audited.
            """)

    @Option(help: "Gatehouse HTTPS HOST:PORT.") var target = "127.0.0.1:8443"
    @Option var ca = ".gatehouse/certs/ca.crt"
    @Option var cert = ".gatehouse/certs/admin.crt"
    @Option var key = ".gatehouse/certs/admin.key"
    @Option(help: "Comma-separated concurrency levels.") var concurrency = "1,4,16"
    @Option(help: "Seconds per level.") var seconds: Double = 5
    @Option(help: "Comma-separated CA key algorithms: EC_prime256v1, RSA_2048.") var caKeys = "EC_prime256v1,RSA_2048"

    func json(
        _ c: (HTTPMethod, String, [(String, String)], [UInt8]) async throws -> (UInt, [UInt8]), _ path: String,
        _ body: String
    )
        async throws -> [String: Any]
    {
        let (status, bytes) = try await c(.POST, path, [("Content-Type", "application/json")], Array(body.utf8))
        guard status == 201 || status == 409 else {
            throw ValidationError("setup \(path): HTTP \(status) \(String(decoding: bytes, as: UTF8.self))")
        }
        return (try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]) ?? [:]
    }

    /// Creates the CA, template and profile for one CA key algorithm; returns the profile slug.
    func setUp(_ endpoint: Endpoint, algorithm: String) async throws -> String {
        let slug =
            "bench-\(algorithm.lowercased().replacingOccurrences(of: "_", with: "-"))-\(UInt32.random(in: 0...UInt32.max))"
        let bootstrap = try String(contentsOfFile: ca, encoding: .utf8).replacingOccurrences(of: "\n", with: "\\n")
        let connection = try await HTTPConnection.open(endpoint)
        return try await connection.run { request in
            _ = try await json(request, "/api/v1/projects", #"{"slug":"bench-est"}"#)
            let created = try await json(
                request, "/api/v1/projects/bench-est/pki/cas",
                #"{"type":"root","subject":{"commonName":"Bench \#(algorithm)"},"keyAlgorithm":"\#(algorithm)"}"#)
            guard let caId = (created["ca"] as? [String: Any])?["id"] as? String else {
                throw ValidationError("no CA id")
            }
            let template = try await json(
                request, "/api/v1/projects/bench-est/pki/templates",
                #"{"name":"\#(slug)","subject":[{"type":"commonName","allowed":["bench-*"]}],"sans":[],"maxTTL":"1d"}"#)
            guard let templateId = (template["template"] as? [String: Any])?["id"] as? String else {
                throw ValidationError("no template id")
            }
            _ = try await json(
                request, "/api/v1/projects/bench-est/pki/profiles",
                #"{"slug":"\#(slug)","caId":"\#(caId)","templateId":"\#(templateId)","enrollment":"est","est":{"bootstrapCAChain":"\#(bootstrap)"}}"#
            )
            return slug
        }
    }

    static func csrs(_ n: Int) throws -> [[UInt8]] {
        try (0..<n).map { i in
            let key = P256.Signing.PrivateKey()
            let request = try CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName("bench-\(i)") },
                privateKey: Certificate.PrivateKey(key), attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256)
            var serializer = DER.Serializer()
            try serializer.serialize(request)
            return Array(ESTCodec.base64Lines(serializer.serializedBytes).utf8)
        }
    }

    func measure(_ endpoint: Endpoint, slug: String, workers: Int, bodies: [[UInt8]]) async throws -> Result {
        let connections = try await withThrowingTaskGroup(of: HTTPConnection.self) { group in
            for _ in 0..<workers { group.addTask { try await HTTPConnection.open(endpoint) } }
            var all: [HTTPConnection] = []
            for try await c in group { all.append(c) }
            return all
        }
        let path = "/.well-known/est/\(slug)/simpleenroll"
        let headers = [("Content-Type", "application/pkcs10"), ("Content-Transfer-Encoding", "base64")]
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let start = ContinuousClock.now
        let total = try await withThrowingTaskGroup(of: Result.self) { group in
            for (w, connection) in connections.enumerated() {
                group.addTask {
                    try await connection.run { request in
                        var latencies: [Double] = []
                        var errors = 0
                        var i = w
                        while ContinuousClock.now < deadline {
                            let t0 = ContinuousClock.now
                            let (status, body) = try await request(.POST, path, headers, bodies[i % bodies.count])
                            latencies.append((ContinuousClock.now - t0).seconds)
                            if status != 200 || body.isEmpty { errors += 1 }
                            i += workers
                        }
                        return Result(ops: latencies.count, errors: errors, elapsed: 0, latencies: latencies)
                    }
                }
            }
            return try await Result.sum(group)
        }
        var result = total
        result.elapsed = (ContinuousClock.now - start).seconds
        return result
    }

    func run() async throws {
        let endpoint = try Endpoint.parse(target, ca: ca, cert: cert, key: key)
        let bodies = try Self.csrs(64)
        for algorithm in caKeys.split(separator: ",").map(String.init) {
            let slug = try await setUp(endpoint, algorithm: algorithm)
            for c in concurrency.split(separator: ",").compactMap({ Int($0) }) {
                let r = try await measure(endpoint, slug: slug, workers: c, bodies: bodies)
                print(r.line("gatehouse", "enroll/\(algorithm == "RSA_2048" ? "rsa" : "p256")", c))
            }
        }
    }
}
