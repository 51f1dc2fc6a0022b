import ArgumentParser
import Foundation
import KMIPProtocol
import NIOCore
import NIOPosix
import NIOSSL
import TTLV

struct KMIPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kmip", abstract: "KMIP tools.", subcommands: [Replay.self])

    /// `gatehouse kmip replay`: runs OASIS KMIP test cases (XML) against a KMIP server over mutual TLS.
    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay KMIP XML test cases (the OASIS profile test files) against a server and compare the answers.",
            discussion: """
                Each file's RequestMessages are sent in order on one connection; each answer is compared with the file's
                ResponseMessage, tolerantly for what a server chooses (time stamps, identifiers and other $PLACEHOLDERS,
                result messages, the order of repeated items, Query results). Prints PASS/FAIL per file and a count per
                profile; exits 1 when a file failed.
                """)
        @Argument(help: "Test case files (.xml)") var files: [String]
        @Option(help: "KMIP server HOST:PORT") var server = "127.0.0.1:5696"
        @Option var ca = ".gatehouse/certs/ca.crt"
        @Option var cert = ".gatehouse/certs/admin.crt"
        @Option var key = ".gatehouse/certs/admin.key"
        @Flag(help: "Print every mismatch and the server's answer as XML") var verbose = false

        func run() async throws {
            let parts = server.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--server must be HOST:PORT") }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.trustRoots = .file(ca)
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            tls.certificateVerification = .noHostnameVerification
            let context = try NIOSSLContext(configuration: tls)
            var perProfile: [String: (pass: Int, total: Int)] = [:]
            var failed = 0
            for file in files {
                let name = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
                let profile = Self.profile(name)
                var problems: [String] = []
                do {
                    problems = try await replay(file, host: String(parts[0]), port: port, context: context)
                } catch {
                    problems = ["\(error)"]
                }
                var tally = perProfile[profile] ?? (0, 0)
                tally.total += 1
                if problems.isEmpty {
                    tally.pass += 1
                    print("PASS \(name)")
                } else {
                    failed += 1
                    print("FAIL \(name): \(problems[0])")
                    if verbose { for p in problems.dropFirst().prefix(20) { print("     \(p)") } }
                }
                perProfile[profile] = tally
            }
            for (profile, tally) in perProfile.sorted(by: { $0.key < $1.key }) {
                print("profile \(profile): \(tally.pass)/\(tally.total) passed")
            }
            print("total: \(files.count - failed)/\(files.count) passed")
            if failed > 0 { throw ExitCode(1) }
        }

        /// The profile a test case belongs to: `CS-AC-M-OAEP-2-14` → `CS-AC`, `SUITEB_128-M-1-14` → `SUITEB`.
        static func profile(_ name: String) -> String {
            var base = name.components(separatedBy: "-M-").first ?? name
            if base.hasSuffix("-M") { base = String(base.dropLast(2)) }
            if let underscore = base.firstIndex(of: "_") { base = String(base[..<underscore]) }
            if base.hasPrefix("MSGENC") { return "MSGENC" }
            return base
        }

        func replay(_ file: String, host: String, port: Int, context: NIOSSLContext) async throws -> [String] {
            let script = try KMIPReplayScript(xml: try String(contentsOfFile: file, encoding: .utf8))
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(TTLVFrameDecoder(maxMessageSize: 1 << 24)))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            return try await channel.executeThenClose { inbound, outbound in
                var matcher = KMIPResponseMatcher(codec: KMIPXMLCodec())
                var problems: [String] = []
                var responses = inbound.makeAsyncIterator()
                for (index, step) in script.steps.enumerated() {
                    matcher.codec.now = Int64(Date().timeIntervalSince1970)
                    let request: TTLVItem
                    do {
                        request = try matcher.codec.item(step.request)
                    } catch {
                        return problems + ["step \(index + 1): cannot build the request: \(error)"]
                    }
                    try await outbound.write(ByteBuffer(bytes: TTLVEncoder.encode(request)))
                    guard var frame = try await responses.next() else { return problems + ["step \(index + 1): the server closed the connection"] }
                    let answer = try TTLVDecoder().decode(Array(frame.readBytes(length: frame.readableBytes) ?? []))
                    matcher.expect(after: step.request)
                    let stepProblems = matcher.match(step.response, answer)
                    matcher.capture(answer)
                    if !stepProblems.isEmpty {
                        problems += stepProblems.map { "step \(index + 1): \($0)" }
                        if verbose { print(KMIPXMLCodec.xml(answer)) }
                    }
                }
                return problems
            }
        }
    }
}
