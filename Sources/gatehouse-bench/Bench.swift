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
        commandName: "gatehouse-bench", abstract: "Benchmarks for Gatehouse front ends.",
        subcommands: [
            KMIP.self, EST.self, ACME.self, Tunnel.self, PAM.self, RecordingBench.self, Flood.self, Scale.self,
            ConsoleBench.self,
            Stores.self, BackupBench.self, HTTPBench.self,
        ])
}

struct Endpoint {
    var host: String
    var port: Int
    var ca: String
    var cert: String
    var key: String
    /// TLS 1.2 cipher suites to offer (OpenSSL names), for peers with older suite lists; nil keeps the defaults.
    var ciphers: String? = nil

    static func parse(_ target: String, ca: String, cert: String, key: String, ciphers: String? = nil) throws
        -> Endpoint
    {
        let parts = target.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else {
            throw ValidationError("expected HOST:PORT, got \(target)")
        }
        return Endpoint(host: String(parts[0]), port: port, ca: ca, cert: cert, key: key, ciphers: ciphers)
    }
}

/// Throughput and latencies of one measured level.
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

    /// The workers' results of a task group added up (elapsed is set by the caller).
    static func sum(_ group: ThrowingTaskGroup<Result, any Error>) async throws -> Result {
        var total = Result(ops: 0, errors: 0, elapsed: 0, latencies: [])
        for try await r in group {
            total.ops += r.ops
            total.errors += r.errors
            total.latencies += r.latencies
        }
        return total
    }

    /// Gatehouse's rate over the peer's, flagged when either side had errors (then it compares unlike work).
    static func ratioLine(_ op: String, _ c: Int, gatehouse g: Result, peer p: Result) -> String {
        var line = String(format: "ratio gatehouse/peer %@ c=%d: %.1fx", op, c, g.rate / max(p.rate, 0.001))
        if p.errors > 0 || g.errors > 0 {
            line += " (not like for like: errors gatehouse \(g.errors), peer \(p.errors))"
        }
        return line
    }

    func line(_ name: String, _ op: String, _ c: Int) -> String {
        String(
            format: "%-10@ %-9@ c=%-3d %9.0f ops/s  p50 %6.3f ms  p99 %6.3f ms  p999 %6.3f ms  errors %d",
            name, op, c, rate, percentile(0.50), percentile(0.99), percentile(0.999), errors)
    }
}

/// `gatehouse serve` on a data directory with every listener on a port the system picks (the benchmarks that start
/// their own daemon). `stop()` ends it.
struct FreshDaemon {
    let process: Process
    let data: String
    let ports: [String: Int]

    static func start(_ binary: String, data: String, environment: [String: String] = [:]) async throws -> FreshDaemon {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--data-dir", data]
        var env = ProcessInfo.processInfo.environment
        for l in ["HTTPS", "KMIP", "POSTGRES", "OPERATIONS"] { env["GATEHOUSE_LISTENERS_\(l)_PORT"] = "0" }
        env["GATEHOUSE_LOGGING_LEVEL"] = "warning"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        var ports: [String: Int] = [:]
        for _ in 0..<300 where ports.count < 4 && process.isRunning {
            try await Task.sleep(for: .milliseconds(100))
            if let d = FileManager.default.contents(atPath: data + "/run/listeners.json"),
                let map = try? JSONSerialization.jsonObject(with: d) as? [String: Int]
            {
                ports = map
            }
        }
        guard ports.count == 4 else {
            process.terminate()
            throw ValidationError("the daemon did not start listening")
        }
        return FreshDaemon(process: process, data: data, ports: ports)
    }

    /// Stops the daemon (again: nothing).
    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// Runs a command (found on PATH); returns its standard output (standard error is dropped).
func commandOutput(_ arguments: [String], environment: [String: String]? = nil) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    if let environment { p.environment = environment }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: out, as: UTF8.self)
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// A client TLS context for `e` (mutual TLS with its certificate).
func clientTLS(_ e: Endpoint) throws -> NIOSSLContext {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.minimumTLSVersion = .tlsv12
    tls.trustRoots = .file(e.ca)
    if !e.cert.isEmpty {
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(e.cert).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: e.key, format: .pem))
    }
    tls.certificateVerification = .noHostnameVerification
    if let ciphers = e.ciphers {
        tls.cipherSuites = ciphers
        tls.maximumTLSVersion = .tlsv12
    }
    return try NIOSSLContext(configuration: tls)
}

/// One persistent mutual-TLS KMIP connection: write a request frame, read one response frame.
struct KMIPConnection {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func open(_ e: Endpoint) async throws -> KMIPConnection {
        let context = try clientTLS(e)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: e.host, port: e.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(TTLVFrameDecoder(maxMessageSize: 1 << 24)))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return KMIPConnection(channel: channel)
    }
}

struct KMIP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "KMIP over persistent mTLS connections (one per worker): DiscoverVersions, Get, Encrypt, Create.",
        discussion: """
            get: Get of one AES-256 key created (and activated) at the start. encrypt: AES-256-GCM of 1 KiB with that key.
            create: durable Create of AES-256 keys (each acknowledged after its transaction is on disk).
            """)

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
    @Option(help: "Protocol version of the requests, MAJOR.MINOR.") var version = "1.4"
    @Option(help: "Comma-separated operations: discover, get, encrypt, create.") var operations =
        "discover,get,encrypt,create"

    static func message(_ v: ProtocolVersion, _ operation: KMIPOperation, _ payload: [TTLVItem]) -> [UInt8] {
        batch(v, [(operation, payload)])
    }

    /// A request message with one batch item per (operation, payload).
    static func batch(_ v: ProtocolVersion, _ items: [(KMIPOperation, [TTLVItem])]) -> [UInt8] {
        let header = TTLVItem(
            tag: KMIPTag.requestHeader,
            .structure([
                TTLVItem(
                    tag: KMIPTag.protocolVersion,
                    .structure([
                        TTLVItem(tag: KMIPTag.protocolVersionMajor, .integer(v.major)),
                        TTLVItem(tag: KMIPTag.protocolVersionMinor, .integer(v.minor)),
                    ])),
                TTLVItem(tag: KMIPTag.batchCount, .integer(Int32(items.count))),
            ]))
        let batchItems = items.map { operation, payload in
            TTLVItem(
                tag: KMIPTag.batchItem,
                .structure([
                    TTLVItem(tag: KMIPTag.operation, .enumeration(operation.rawValue)),
                    TTLVItem(tag: KMIPTag.requestPayload, .structure(payload)),
                ]))
        }
        return TTLVEncoder.encode(TTLVItem(tag: KMIPTag.requestMessage, .structure([header] + batchItems)))
    }

    static func attribute(_ name: String, _ value: TTLVValue) -> TTLVItem {
        TTLVItem(
            tag: KMIPTag.attribute,
            .structure([
                TTLVItem(tag: KMIPTag.attributeName, .textString(name)), TTLVItem(tag: KMIPTag.attributeValue, value),
            ]))
    }

    static func createRequest(_ v: ProtocolVersion) -> [UInt8] {
        message(
            v, .create,
            [
                TTLVItem(tag: KMIPTag.objectType, .enumeration(KMIPObjectType.symmetricKey.rawValue)),
                TTLVItem(
                    tag: KMIPTag.templateAttribute,
                    .structure([
                        attribute("Cryptographic Algorithm", .enumeration(3)),
                        attribute("Cryptographic Length", .integer(256)),
                        attribute("Cryptographic Usage Mask", .integer(0x4 | 0x8)),
                    ])),
            ])
    }

    static func uidPayload(_ uid: String) -> [TTLVItem] { [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(uid))] }

    static func encryptRequest(_ v: ProtocolVersion, _ uid: String, _ data: [UInt8]) -> [UInt8] {
        message(
            v, .encrypt,
            uidPayload(uid) + [
                TTLVItem(
                    tag: KMIPTag.cryptographicParameters,
                    .structure([TTLVItem(tag: KMIPTag.blockCipherMode, .enumeration(9))])),
                TTLVItem(tag: KMIPTag.data, .byteString(data)),
            ])
    }

    /// Sends one request on a fresh connection and returns the response payload.
    static func roundTrip(_ e: Endpoint, _ body: [UInt8]) async throws -> TTLVItem {
        let connection = try await KMIPConnection.open(e)
        return try await connection.channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            try await outbound.write(ByteBuffer(bytes: body))
            guard let frame = try await iterator.next(), let m = try? TTLVDecoder().decode(Array(buffer: frame)),
                let item = m.child(KMIPTag.batchItem)
            else { throw ValidationError("no response") }
            guard case .enumeration(let status)? = item.child(KMIPTag.resultStatus)?.value, status == 0 else {
                var why = ""
                if case .textString(let t)? = item.child(KMIPTag.resultMessage)?.value { why = t }
                throw ValidationError("setup request failed: \(why)")
            }
            return item.child(KMIPTag.responsePayload) ?? TTLVItem(tag: 0, .structure([]))
        }
    }

    /// Creates and activates an AES-256 key for the get/encrypt workloads; returns its UID.
    static func setupKey(_ e: Endpoint, _ v: ProtocolVersion) async throws -> String {
        let created = try await roundTrip(e, createRequest(v))
        guard case .textString(let uid)? = created.child(KMIPTag.uniqueIdentifier)?.value else {
            throw ValidationError("Create returned no Unique Identifier")
        }
        _ = try await roundTrip(e, message(v, .activate, uidPayload(uid)))
        return uid
    }

    /// The request bytes of one workload for one endpoint.
    static func workload(_ op: String, _ e: Endpoint, _ v: ProtocolVersion) async throws -> [UInt8] {
        switch op {
        case "discover": return message(v, .discoverVersions, [])
        case "create": return createRequest(v)
        case "get": return message(v, .get, uidPayload(try await setupKey(e, v)))
        case "encrypt":
            return encryptRequest(v, try await setupKey(e, v), (0..<1024).map { UInt8(truncatingIfNeeded: $0) })
        default: throw ValidationError("unknown operation \(op)")
        }
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
                            latencies.append(dt.seconds)
                            if !Self.succeeded(frame) { errors += 1 }
                        }
                    }
                    return Result(ops: latencies.count, errors: errors, elapsed: 0, latencies: latencies)
                }
            }
            return try await Result.sum(group)
        }
        let elapsed = ContinuousClock.now - start
        var result = perWorker
        result.elapsed = elapsed.seconds
        return result
    }

    func run() async throws {
        let parts = version.split(separator: ".").compactMap { Int32($0) }
        guard parts.count == 2 else { throw ValidationError("--version MAJOR.MINOR") }
        let v = ProtocolVersion(parts[0], parts[1])
        let gatehouse = try Endpoint.parse(target, ca: ca, cert: cert, key: key)
        let other = try peer.map {
            try Endpoint.parse($0, ca: peerCa ?? ca, cert: peerCert ?? cert, key: peerKey ?? key, ciphers: peerCiphers)
        }
        for op in operations.split(separator: ",").map(String.init) {
            let body = try await Self.workload(op, gatehouse, v)
            var peerBody: [UInt8]?
            if let other {
                do {
                    peerBody = try await Self.workload(op, other, v)
                } catch {
                    print("peer      \(op): setup failed (\(error)); not measured")
                }
            }
            for c in concurrency.split(separator: ",").compactMap({ Int($0) }) {
                let g = try await measure(gatehouse, workers: c, body: body)
                print(g.line("gatehouse", op, c))
                if let other, let peerBody {
                    let p = try await measure(other, workers: c, body: peerBody)
                    print(p.line("peer", op, c))
                    print(Result.ratioLine(op, c, gatehouse: g, peer: p))
                }
            }
        }
    }
}
