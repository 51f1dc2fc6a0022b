import ArgumentParser
import Crypto
import Foundation
import KMIPProtocol
import NIOCore
import NIOPosix
import NIOSSL
import ServerSupport
import TTLV
import X509
import _CryptoExtras

struct KMIPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kmip", abstract: "KMIP tools.", subcommands: [Replay.self, Client.self])

    /// `gatehouse kmip client create`: onboards a KMIP client (identity, certificate, project membership).
    struct Client: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "KMIP client identities.", subcommands: [Create.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Register a KMIP client: an identity in PROJECT, a client certificate and its key written to --out.",
                discussion: """
                    Creates the identity NAME (metadata kmip.project = PROJECT, so the objects it creates belong to the
                    project; with --require-credential also kmip.credential = required, a Universal Auth client ID and
                    secret the client must send as KMIP's Username and Password credential, written to NAME.credential), gives it ROLE in the project, attaches TLS Certificate Auth for the common name NAME, and issues
                    it a client certificate from the data directory's client CA (the CA the KMIP listener trusts by
                    default). Writes NAME.crt, NAME.key (0600) and ca.crt (to verify the server) to --out. With an external
                    client CA, issue the certificate there and attach it with `gatehouse identity tls-cert-auth`.
                    """)
            @OptionGroup var api: APIOptions
            @Argument(help: "Client name: the identity and the certificate's common name.") var name: String
            @Option(help: "Project the client's objects belong to.") var project: String
            @Option(help: "Project role to grant.") var role = "developer"
            @Option(help: "Certificate lifetime, e.g. 365d.") var ttl = "365d"
            @Option(help: "Client key: ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096.") var keyAlgorithm = "ec-p256"
            @Option(help: "Directory for the certificate, key and CA files.") var out: String
            @Flag(help: "Also require KMIP's Username and Password credential (a second factor); writes NAME.credential (0600).")
            var requireCredential = false

            func run() async throws {
                guard let seconds = KMIPClientFiles.seconds(ttl) else { fail("--ttl must be a duration such as 90d or 12h") }
                let certs = api.dataDirectory + "/certs"
                guard let caPEM = try? String(contentsOfFile: certs + "/ca.crt", encoding: .utf8),
                    let keyPEM = try? String(contentsOfFile: certs + "/ca.key", encoding: .utf8)
                else { fail("no client CA in \(certs) (ca.crt, ca.key): issue the certificate from your CA and use `gatehouse identity tls-cert-auth`") }
                let files: KMIPClientFiles
                do { files = try KMIPClientFiles.make(name: name, keyAlgorithm: keyAlgorithm, caPEM: caPEM, caKeyPEM: keyPEM, validity: TimeInterval(seconds)) } catch {
                    fail("cannot issue the client certificate: \(error)")
                }
                var metadata = ["kmip.project": project]
                if requireCredential { metadata["kmip.credential"] = "required" }
                let created = await api.call(.POST, "/api/v1/identities", body: ["name": name, "metadata": metadata])
                guard let id = (field(created, "identity") as? [String: Any])?["id"] as? String else { fail("the identity was not created") }
                var credential: (String, String)?
                if requireCredential {
                    let ua = await api.call(.POST, "/api/v1/auth/universal-auth/identities/\(id)", body: [String: Any]())
                    let secret = await api.call(
                        .POST, "/api/v1/auth/universal-auth/identities/\(id)/client-secrets", body: ["description": "KMIP credential", "ttl": 0])
                    guard let clientId = (field(ua, "identityUniversalAuth") as? [String: Any])?["clientId"] as? String,
                        let password = field(secret, "clientSecret") as? String
                    else { fail("the credential was not created") }
                    credential = (clientId, password)
                }
                _ = await api.call(
                    .POST, "/api/v1/auth/tls-cert-auth/identities/\(id)", body: ["caCertificate": caPEM, "allowedCommonNames": [name]])
                _ = await api.call(.PUT, "/api/v1/projects/\(project)/identity-memberships/\(id)", body: ["roles": [["role": role]]])
                do {
                    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                    try files.write(to: out, name: name, caPEM: caPEM)
                    if let (username, password) = credential {
                        let path = out + "/" + name + ".credential"
                        let body = try JSONSerialization.data(withJSONObject: ["username": username, "password": password], options: [.sortedKeys])
                        guard FileManager.default.createFile(atPath: path, contents: body, attributes: [.posixPermissions: 0o600]) else {
                            fail("cannot create \(path)")
                        }
                    }
                } catch {
                    fail("cannot write to \(out): \(error)")
                }
                if api.output == .json {
                    print(#"{"identityId":"\#(id)","certificate":"\#(out)/\#(name).crt","key":"\#(out)/\#(name).key","ca":"\#(out)/ca.crt"}"#)
                } else {
                    print("KMIP client \(name) (identity \(id)) in project \(project): \(out)/\(name).crt, \(out)/\(name).key, \(out)/ca.crt")
                }
            }
        }
    }

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

/// A KMIP client's key and certificate.
struct KMIPClientFiles {
    var certificatePEM: String
    var privateKeyPEM: String

    static func seconds(_ text: String) -> Int? {
        guard let unit = text.last, let n = Int(text.dropLast()), n > 0 else { return nil }
        switch unit {
        case "d": return n * 86_400
        case "h": return n * 3_600
        case "m": return n * 60
        default: return nil
        }
    }

    static func make(name: String, keyAlgorithm: String, caPEM: String, caKeyPEM: String, validity: TimeInterval) throws -> KMIPClientFiles {
        let ca = CertificateFactory.Issued(
            certificate: try Certificate(pemEncoded: caPEM), privateKey: try P256.Signing.PrivateKey(pemRepresentation: caKeyPEM))
        let publicKey: Certificate.PublicKey
        let keyPEM: String
        switch keyAlgorithm {
        case "ec-p256":
            let k = P256.Signing.PrivateKey()
            (publicKey, keyPEM) = (Certificate.PublicKey(k.publicKey), k.pemRepresentation)
        case "ec-p384":
            let k = P384.Signing.PrivateKey()
            (publicKey, keyPEM) = (Certificate.PublicKey(k.publicKey), k.pemRepresentation)
        case "rsa-2048", "rsa-3072", "rsa-4096":
            let bits: _RSA.Signing.KeySize = keyAlgorithm == "rsa-2048" ? .bits2048 : keyAlgorithm == "rsa-3072" ? .bits3072 : .bits4096
            let k = try _RSA.Signing.PrivateKey(keySize: bits)
            (publicKey, keyPEM) = (Certificate.PublicKey(k.publicKey), k.pkcs8PEMRepresentation)
        default:
            throw ValidationError("unknown key algorithm \(keyAlgorithm)")
        }
        let certificate = try CertificateFactory.clientCertificate(commonName: name, publicKey: publicKey, issuer: ca, validity: validity)
        return KMIPClientFiles(certificatePEM: try certificate.serializeAsPEM().pemString + "\n", privateKeyPEM: keyPEM + "\n")
    }

    func write(to directory: String, name: String, caPEM: String) throws {
        let fm = FileManager.default
        let keyPath = directory + "/" + name + ".key"
        guard fm.createFile(atPath: keyPath, contents: Data(privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot create \(keyPath)")
        }
        try Data(certificatePEM.utf8).write(to: URL(fileURLWithPath: directory + "/" + name + ".crt"))
        try Data(caPEM.utf8).write(to: URL(fileURLWithPath: directory + "/ca.crt"))
    }
}
