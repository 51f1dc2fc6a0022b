import AdminAPI
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
        commandName: "kmip", abstract: "KMIP tools.", subcommands: [Replay.self, Client.self, PKI.self])

    /// `gatehouse kmip pki`: the organization's KMIP client PKI.
    struct PKI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pki", abstract: "The organization's KMIP client CA.", subcommands: [Setup.self, Show.self])

        struct Setup: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Generate the KMIP client CA (otherwise the first `kmip client create` generates it).")
            @OptionGroup var api: APIOptions
            @Option(help: "CA key: ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519.") var keyAlgorithm =
                "ec-p256"

            func run() async throws {
                guard let algorithm = KMIPClientFiles.caAlgorithm(keyAlgorithm) else {
                    fail("unknown --key-algorithm \(keyAlgorithm)")
                }
                let pki = await api.withClient { client in
                    try await client.createKMIPClientPKI(body: .json(.init(keyAlgorithm: algorithm))).created.body.json
                        .pki
                }
                printPKI(pki, api)
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Show the KMIP client CA (its certificate in PEM).")
            @OptionGroup var api: APIOptions
            func run() async throws {
                printPKI(await api.withClient { client in try await client.getKMIPClientPKI().ok.body.json.pki }, api)
            }
        }

        static func printPKI(_ pki: some Encodable, _ api: APIOptions) {
            guard let fields = jsonObject(pki) as? [String: Any] else { fail("no KMIP PKI in the answer") }
            if api.output == .json {
                if let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) {
                    print(String(decoding: data, as: UTF8.self))
                }
                return
            }
            print(
                "KMIP client CA: \(fields["keyAlgorithm"] ?? "?"), serial \(fields["serialNumber"] ?? "?"), valid until \(fields["notAfter"] ?? "?")"
            )
            print((fields["caCertificate"] as? String) ?? "", terminator: "")
        }
    }

    /// `gatehouse kmip client create`: onboards a KMIP client (identity, certificate, project membership).
    struct Client: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "KMIP client identities.", subcommands: [Create.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Register a KMIP client: an identity in PROJECT, a client certificate and its key written to --out.",
                discussion: """
                    Creates the identity NAME (metadata kmip.project = PROJECT, so the objects it creates belong to the
                    project; with --require-credential also kmip.credential = required, a Universal Auth client ID and
                    secret the client must send as KMIP's Username and Password credential, written to NAME.credential),
                    gives it ROLE in the project, generates the client's key here (it never leaves this machine), has the
                    organization's KMIP client CA certify it (the CA is generated on first use with --ca-key-algorithm;
                    the KMIP listener trusts it), and attaches TLS Certificate Auth for the common name NAME under that
                    CA. Writes NAME.crt, NAME.key (0600), NAME.chain.crt (the certificate and the KMIP client CA) and
                    ca.crt (the CA of the server's certificate, to verify the server) to --out.
                    """)
            @OptionGroup var api: APIOptions
            @Argument(help: "Client name: the identity and the certificate's common name.") var name: String
            @Option(help: "Project the client's objects belong to.") var project: String
            @Option(help: "Project role to grant.") var role = "developer"
            @Option(help: "Certificate lifetime, e.g. 365d.") var ttl = "365d"
            @Option(help: "Client key: ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096.") var keyAlgorithm = "ec-p256"
            @Option(
                help:
                    "Key of the KMIP client CA if this generates it: ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519."
            )
            var caKeyAlgorithm = "ec-p256"
            @Option(help: "Directory for the certificate, key and CA files.") var out: String
            @Flag(
                help:
                    "Also require KMIP's Username and Password credential (a second factor); writes NAME.credential (0600)."
            )
            var requireCredential = false

            func run() async throws {
                guard KMIPClientFiles.seconds(ttl) != nil else { fail("--ttl must be a duration such as 90d or 12h") }
                guard let caAlgorithm = KMIPClientFiles.caAlgorithm(caKeyAlgorithm) else {
                    fail("unknown --ca-key-algorithm \(caKeyAlgorithm)")
                }
                let serverCAPath = api.caCert ?? api.dataDirectory + "/certs/ca.crt"
                guard let serverCA = try? String(contentsOfFile: serverCAPath, encoding: .utf8) else {
                    fail("cannot read the server's CA certificate \(serverCAPath) (--ca-cert)")
                }
                let key: KMIPClientKey
                do { key = try KMIPClientKey.generate(keyAlgorithm) } catch { fail("\(error)") }
                var metadata = ["kmip.project": project]
                if requireCredential { metadata["kmip.credential"] = "required" }
                // The output directory first: a failure to write the files later would leave an identity behind.
                do {
                    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                } catch {
                    fail("cannot create the output directory \(out): \(error)")
                }
                guard FileManager.default.isWritableFile(atPath: out) else { fail("cannot write to \(out)") }
                let id = await api.withClient { client in
                    // The project must exist before anything is created in it.
                    _ = try await client.getProject(path: .init(project: project)).ok
                    let id = try await client.createIdentity(
                        body: .json(.init(name: name, metadata: .init(additionalProperties: metadata)))
                    ).created.body.json.identity.id
                    // All or nothing: any failure from here deletes the identity and the files before the error is
                    // reported. A certificate already issued is then harmless: its key existed only in this process,
                    // and no identity accepts its name under the KMIP client CA any more.
                    do {
                        let certificate = try await client.issueKMIPClientCertificate(
                            body: .json(
                                .init(
                                    commonName: name, publicKey: key.publicKeyPEM, ttl: ttl,
                                    caKeyAlgorithm: caAlgorithm))
                        ).created.body.json.certificate
                        guard let clientCA = certificate.certificateChain.last else {
                            throw APIFailure(
                                status: 500, code: "internal", message: "the client certificate has no chain")
                        }
                        var credential: (String, String)?
                        if requireCredential {
                            let auth = try await client.attachUniversalAuth(
                                path: .init(identityId: id), body: .json(.init())
                            )
                            .created.body.json.identityUniversalAuth
                            let secret = try await client.createClientSecret(
                                path: .init(identityId: id), body: .json(.init(description: "KMIP credential", ttl: 0))
                            ).created.body.json.clientSecret
                            credential = (auth.clientId, secret)
                        }
                        _ = try await client.attachTLSCertAuth(
                            path: .init(identityId: id),
                            body: .json(.init(caCertificate: clientCA, allowedCommonNames: [name]))
                        ).created
                        _ = try await client.setMembership(
                            path: .init(project: project, identityId: id),
                            body: .json(.init(roles: [.init(role: role)]))
                        ).ok
                        let leaf = certificate.certificate
                        let files = KMIPClientFiles(
                            certificatePEM: Self.pemText(leaf),
                            chainPEM: ([leaf] + certificate.certificateChain).map(Self.pemText).joined(),
                            privateKeyPEM: key.privateKeyPEM)
                        try files.write(to: out, name: name, caPEM: serverCA)
                        if let (username, password) = credential {
                            let path = out + "/" + name + ".credential"
                            let body = try JSONSerialization.data(
                                withJSONObject: ["username": username, "password": password], options: [.sortedKeys])
                            guard
                                FileManager.default.createFile(
                                    atPath: path, contents: body, attributes: [.posixPermissions: 0o600])
                            else {
                                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
                            }
                        }
                    } catch {
                        _ = try? await client.deleteIdentity(path: .init(identityId: id))
                        for file in [".crt", ".key", ".chain.crt", ".credential"] {
                            try? FileManager.default.removeItem(atPath: out + "/" + name + file)
                        }
                        throw error
                    }
                    return id
                }
                if api.output == .json {
                    print(
                        #"{"identityId":"\#(id)","certificate":"\#(out)/\#(name).crt","key":"\#(out)/\#(name).key","chain":"\#(out)/\#(name).chain.crt","ca":"\#(out)/ca.crt"}"#
                    )
                } else {
                    print(
                        "KMIP client \(name) (identity \(id)) in project \(project): \(out)/\(name).crt, \(out)/\(name).key, \(out)/\(name).chain.crt, \(out)/ca.crt"
                    )
                }
            }

            static func pemText(_ s: String) -> String { s.hasSuffix("\n") ? s : s + "\n" }
        }
    }

    /// `gatehouse kmip replay`: runs OASIS KMIP test cases (XML) against a KMIP server over mutual TLS.
    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Replay KMIP XML test cases (the OASIS profile test files) against a server and compare the answers.",
            discussion: """
                Each file's RequestMessages are sent in order on one connection; each answer is compared with the file's
                ResponseMessage, tolerantly for what a server chooses (time stamps, identifiers and other $PLACEHOLDERS,
                result messages, the order of repeated items, Query results). Prints PASS/FAIL per file and a count per
                profile; exits 1 when a file failed.
                """)
        @Argument(help: "Test case files (.xml)") var files: [String]
        @Option(help: "KMIP server HOST:PORT") var server = "127.0.0.1:5696"
        @Option(help: "CA certificate that signed the server's certificate") var ca = ".gatehouse/certs/ca.crt"
        @Option(help: "Client certificate (PEM) presented to the server") var cert = ".gatehouse/certs/admin.crt"
        @Option(help: "The client certificate's private key (PEM)") var key = ".gatehouse/certs/admin.key"
        @Flag(help: "Print every mismatch and the server's answer as XML") var verbose = false

        func run() async throws {
            let parts = server.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else {
                throw ValidationError("--server must be HOST:PORT")
            }
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
                let profile = KMIPReplayScript.profile(of: name)
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

        func replay(_ file: String, host: String, port: Int, context: NIOSSLContext) async throws -> [String] {
            let script = try KMIPReplayScript(xml: try String(contentsOfFile: file, encoding: .utf8))
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: context, serverHostname: nil))
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(TTLVFrameDecoder(maxMessageSize: 1 << 24)))
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
                    guard var frame = try await responses.next() else {
                        return problems + ["step \(index + 1): the server closed the connection"]
                    }
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

/// A KMIP client's key, generated where the CLI runs.
struct KMIPClientKey {
    var publicKeyPEM: String
    var privateKeyPEM: String

    static func generate(_ algorithm: String) throws -> KMIPClientKey {
        switch algorithm {
        case "ec-p256":
            let k = P256.Signing.PrivateKey()
            return KMIPClientKey(publicKeyPEM: k.publicKey.pemRepresentation, privateKeyPEM: k.pemRepresentation + "\n")
        case "ec-p384":
            let k = P384.Signing.PrivateKey()
            return KMIPClientKey(publicKeyPEM: k.publicKey.pemRepresentation, privateKeyPEM: k.pemRepresentation + "\n")
        case "rsa-2048", "rsa-3072", "rsa-4096":
            let bits: _RSA.Signing.KeySize =
                algorithm == "rsa-2048" ? .bits2048 : algorithm == "rsa-3072" ? .bits3072 : .bits4096
            let k = try _RSA.Signing.PrivateKey(keySize: bits)
            return KMIPClientKey(
                publicKeyPEM: k.publicKey.pemRepresentation, privateKeyPEM: k.pkcs8PEMRepresentation + "\n")
        default:
            throw ValidationError(
                "unknown --key-algorithm \(algorithm) (ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096)")
        }
    }
}

/// A KMIP client's files.
struct KMIPClientFiles {
    var certificatePEM: String
    var chainPEM: String
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

    /// The API's name for a CA key algorithm given on the command line.
    static func caAlgorithm(_ text: String) -> Components.Schemas.KeyAlgorithm? {
        let names = [
            "ec-p256": "EC_prime256v1", "ec-p384": "EC_secp384r1", "rsa-2048": "RSA_2048", "rsa-3072": "RSA_3072",
            "rsa-4096": "RSA_4096",
            "ed25519": "ED25519",
        ]
        return names[text].flatMap(Components.Schemas.KeyAlgorithm.init(rawValue:))
    }

    func write(to directory: String, name: String, caPEM: String) throws {
        let fm = FileManager.default
        let keyPath = directory + "/" + name + ".key"
        guard fm.createFile(atPath: keyPath, contents: Data(privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw ValidationError("cannot create \(keyPath)")
        }
        try Data(certificatePEM.utf8).write(to: URL(fileURLWithPath: directory + "/" + name + ".crt"))
        try Data(chainPEM.utf8).write(to: URL(fileURLWithPath: directory + "/" + name + ".chain.crt"))
        try Data(caPEM.utf8).write(to: URL(fileURLWithPath: directory + "/ca.crt"))
    }
}
