import ArgumentParser
import Foundation
import KMIPProtocol
import NIOCore
import NIOPosix
import NIOSSL
import TTLV

/// Load generators for Gatehouse's front ends. A program, not a test: it prints throughput and latency
/// percentiles, and with `--peer` measures another server with the same workload in the same run.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse-bench", abstract: "Benchmarks for Gatehouse front ends.", subcommands: [KMIP.self])
}

struct Endpoint {
    var host: String
    var port: Int
    var ca: String
    var cert: String
    var key: String
    /// TLS 1.2 cipher suites to offer (OpenSSL names), for peers with older suite lists; nil keeps the defaults.
    var ciphers: String? = nil

    static func parse(_ target: String, ca: String, cert: String, key: String, ciphers: String? = nil) throws -> Endpoint {
        let parts = target.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("expected HOST:PORT, got \(target)") }
        return Endpoint(host: String(parts[0]), port: port, ca: ca, cert: cert, key: key, ciphers: ciphers)
    }
}

/// One persistent mutual-TLS KMIP connection: write a request frame, read one response frame.
struct KMIPConnection {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func open(_ e: Endpoint) async throws -> KMIPConnection {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.trustRoots = .file(e.ca)
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(e.cert).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: e.key, format: .pem))
        tls.certificateVerification = .noHostnameVerification
        if let ciphers = e.ciphers {
            tls.cipherSuites = ciphers
            tls.maximumTLSVersion = .tlsv12
        }
        let context = try NIOSSLContext(configuration: tls)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: e.host, port: e.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(TTLVFrameDecoder(maxMessageSize: 1 << 24)))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return KMIPConnection(channel: channel)
    }
}

struct KMIP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "KMIP over persistent mTLS connections (one per worker), DiscoverVersions round trips.",
        discussion: "Key operations (Get, Encrypt, Create) join once the KMIP key operations are served.")

    @Option(help: "Gatehouse KMIP HOST:PORT.") var target = "127.0.0.1:5696"
    @Option var ca = ".gatehouse/certs/ca.crt"
    @Option var cert = ".gatehouse/certs/admin.crt"
    @Option var key = ".gatehouse/certs/admin.key"
    @Option(help: "Another KMIP server to measure with the same workload (e.g. PyKMIP's), HOST:PORT.") var peer: String?
    @Option var peerCa: String?
    @Option var peerCert: String?
    @Option var peerKey: String?
    @Option(help: "TLS 1.2 suites to offer the peer (PyKMIP's TLS1.2 suite has no AEAD ECDHE-RSA suites).")
    var peerCiphers: String?
    @Option(help: "Comma-separated concurrency levels.") var concurrency = "1,4,16"
    @Option(help: "Seconds per level.") var seconds: Double = 5
    @Option(help: "Protocol version of the requests, MAJOR.MINOR.") var version = "1.2"

    struct Result {
        var ops: Int
        var errors: Int
        var elapsed: Double
        var latencies: [Double]
        var rate: Double { Double(ops) / elapsed }
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return .nan }
            let sorted = latencies.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000
        }
    }

    func request(_ v: ProtocolVersion) -> [UInt8] {
        TTLVEncoder.encode(
            TTLVItem(
                tag: KMIPTag.requestMessage,
                .structure([
                    TTLVItem(
                        tag: KMIPTag.requestHeader,
                        .structure([
                            TTLVItem(
                                tag: KMIPTag.protocolVersion,
                                .structure([
                                    TTLVItem(tag: KMIPTag.protocolVersionMajor, .integer(v.major)),
                                    TTLVItem(tag: KMIPTag.protocolVersionMinor, .integer(v.minor)),
                                ])),
                            TTLVItem(tag: KMIPTag.batchCount, .integer(1)),
                        ])),
                    TTLVItem(
                        tag: KMIPTag.batchItem,
                        .structure([
                            TTLVItem(tag: KMIPTag.operation, .enumeration(KMIPOperation.discoverVersions.rawValue)),
                            TTLVItem(tag: KMIPTag.requestPayload, .structure([])),
                        ])),
                ])))
    }

    static func succeeded(_ frame: ByteBuffer) -> Bool {
        guard let message = try? TTLVDecoder().decode(Array(buffer: frame)),
            case .enumeration(let status)? = message.child(KMIPTag.batchItem)?.child(KMIPTag.resultStatus)?.value
        else { return false }
        return status == ResultStatus.success.rawValue
    }

    func measure(_ endpoint: Endpoint, workers: Int, body: [UInt8]) async throws -> Result {
        let connections = try await withThrowingTaskGroup(of: KMIPConnection.self) { group in
            for _ in 0..<workers { group.addTask { try await KMIPConnection.open(endpoint) } }
            var all: [KMIPConnection] = []
            for try await c in group { all.append(c) }
            return all
        }
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let start = ContinuousClock.now
        let perWorker = try await withThrowingTaskGroup(of: Result.self) { group in
            for connection in connections {
                group.addTask {
                    var latencies: [Double] = []
                    var errors = 0
                    try await connection.channel.executeThenClose { inbound, outbound in
                        var iterator = inbound.makeAsyncIterator()
                        while ContinuousClock.now < deadline {
                            let t0 = ContinuousClock.now
                            try await outbound.write(ByteBuffer(bytes: body))
                            guard let frame = try await iterator.next() else { break }
                            let dt = ContinuousClock.now - t0
                            latencies.append(Double(dt.components.seconds) + Double(dt.components.attoseconds) / 1e18)
                            if !Self.succeeded(frame) { errors += 1 }
                        }
                    }
                    return Result(ops: latencies.count, errors: errors, elapsed: 0, latencies: latencies)
                }
            }
            var total = Result(ops: 0, errors: 0, elapsed: 0, latencies: [])
            for try await r in group {
                total.ops += r.ops
                total.errors += r.errors
                total.latencies += r.latencies
            }
            return total
        }
        let elapsed = ContinuousClock.now - start
        var result = perWorker
        result.elapsed = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return result
    }

    func line(_ name: String, _ c: Int, _ r: Result) -> String {
        String(
            format: "%-10@ discover-versions c=%-3d %9.0f ops/s  p50 %6.3f ms  p99 %6.3f ms  p999 %6.3f ms  errors %d",
            name, c, r.rate, r.percentile(0.50), r.percentile(0.99), r.percentile(0.999), r.errors)
    }

    func run() async throws {
        let parts = version.split(separator: ".").compactMap { Int32($0) }
        guard parts.count == 2 else { throw ValidationError("--version MAJOR.MINOR") }
        let body = request(ProtocolVersion(parts[0], parts[1]))
        let gatehouse = try Endpoint.parse(target, ca: ca, cert: cert, key: key)
        let other = try peer.map { try Endpoint.parse($0, ca: peerCa ?? ca, cert: peerCert ?? cert, key: peerKey ?? key, ciphers: peerCiphers) }
        for c in concurrency.split(separator: ",").compactMap({ Int($0) }) {
            let g = try await measure(gatehouse, workers: c, body: body)
            print(line("gatehouse", c, g))
            if let other {
                let p = try await measure(other, workers: c, body: body)
                print(line("peer", c, p))
                print(String(format: "ratio gatehouse/peer c=%d: %.1fx", c, g.rate / max(p.rate, 0.001)))
            }
        }
    }
}
