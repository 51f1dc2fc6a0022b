import ArgumentParser
import DaemonConfig
import Foundation

/// `gatehouse pki …`: CAs, templates, profiles, issuance, revocation and export over the admin API.
struct PKICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki", abstract: "Private CA: CAs, templates, profiles, certificates.",
        subcommands: [CA.self, Template.self, Profile.self, Issue.self, Certificates.self, Revoke.self, Export.self])

    static func readFile(_ path: String) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { fail("cannot read \(path)") }
        return text
    }

    static let caColumns = ["id", "type", "status", "dn", "keyAlgorithm", "maxPathLength", "notAfter"]
    static let certColumns = ["serialNumber", "commonName", "status", "notAfter", "altNames"]

    struct CA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ca", abstract: "Certificate authorities.",
            subcommands: [Create.self, List.self, Get.self, CSR.self, Import.self, Renew.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Create a root CA, an intermediate under a Gatehouse CA (--parent), or one for an external CA (no --parent)."
            )
            @OptionGroup var api: APIOptions
            @Option var project: String
            @Option(help: "root or intermediate") var type = "root"
            @Option(help: "Subject common name") var cn: String
            @Option var org: String?
            @Option var ou: String?
            @Option(help: "Two-letter country code") var country: String?
            @Option var province: String?
            @Option var locality: String?
            @Option(help: "RSA_2048 (default), RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1, ED25519")
            var keyAlgorithm: String?
            @Option(help: "Validity, e.g. 3650d (default: 10 years for a root, 5 for an intermediate)") var ttl: String?
            @Option(help: "-1 unlimited, 0 no CAs below, n at most n") var maxPathLength: Int?
            @Option(help: "Parent CA id (a Gatehouse CA)") var parent: String?

            func run() async throws {
                var subject: [String: Any] = ["commonName": cn]
                for (k, v) in [
                    ("organization", org), ("organizationalUnit", ou), ("country", country), ("province", province),
                    ("locality", locality),
                ] {
                    if let v { subject[k] = v }
                }
                var body: [String: Any] = ["type": type, "subject": subject]
                if let keyAlgorithm { body["keyAlgorithm"] = keyAlgorithm }
                if let maxPathLength { body["maxPathLength"] = maxPathLength }
                if let parent { body["parentCaId"] = parent }
                if let ttl {
                    guard let seconds = durationSeconds(ttl) else { fail("--ttl must be like 3650d or 8760h") }
                    body["notAfter"] = ISO8601DateFormatter().string(
                        from: Date().addingTimeInterval(TimeInterval(seconds)))
                }
                let r = await api.call(.POST, "/api/v1/projects/\(project)/pki/cas", body: body)
                api.show(field(r, "ca"), columns: PKICommand.caColumns)
            }
        }

        struct List: AsyncParsableCommand {
            @OptionGroup var api: APIOptions
            @Option var project: String
            func run() async throws {
                api.show(
                    await api.allPages("/api/v1/projects/\(project)/pki/cas", "cas"), columns: PKICommand.caColumns)
            }
        }

        struct Get: AsyncParsableCommand {
            @OptionGroup var api: APIOptions
            @Argument var id: String
            func run() async throws {
                let r = await api.call(.GET, "/api/v1/pki/cas/\(id)")
                api.show(field(r, "ca"), columns: PKICommand.caColumns)
            }
        }

        struct CSR: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print the CSR of an intermediate waiting for an external CA.")
            @OptionGroup var api: APIOptions
            @Argument var id: String
            func run() async throws {
                let r = await api.call(.GET, "/api/v1/pki/cas/\(id)/csr")
                print(field(r, "csr") as? String ?? "", terminator: "")
            }
        }

        struct Import: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Install the certificate an external CA issued, with its chain.")
            @OptionGroup var api: APIOptions
            @Argument var id: String
            @Option(help: "PEM certificate file") var certificate: String
            @Option(help: "PEM chain file (issuer first)") var chain: String
            func run() async throws {
                let r = await api.call(
                    .POST, "/api/v1/pki/cas/\(id)/import-certificate",
                    body: [
                        "certificate": PKICommand.readFile(certificate), "certificateChain": PKICommand.readFile(chain),
                    ])
                api.show(field(r, "ca"), columns: PKICommand.caColumns)
            }
        }

        struct Renew: AsyncParsableCommand {
            @OptionGroup var api: APIOptions
            @Argument var id: String
            @Option(help: "New validity from now, e.g. 1825d") var ttl: String
            func run() async throws {
                guard let seconds = durationSeconds(ttl) else { fail("--ttl must be like 1825d") }
                let r = await api.call(
                    .POST, "/api/v1/pki/cas/\(id)/renew",
                    body: [
                        "notAfter": ISO8601DateFormatter().string(
                            from: Date().addingTimeInterval(TimeInterval(seconds)))
                    ])
                api.show(field(r, "ca"), columns: PKICommand.caColumns)
            }
        }
    }

    struct Template: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "template", abstract: "Certificate templates (policy).", subcommands: [Create.self, List.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create a template from a JSON file (see README: name, subject, sans, keyAlgorithms, …).")
            @OptionGroup var api: APIOptions
            @Option var project: String
            @Option(help: "JSON template file") var file: String
            func run() async throws {
                guard let spec = try? JSONSerialization.jsonObject(with: Data(PKICommand.readFile(file).utf8)) else {
                    fail("\(file) is not JSON")
                }
                let r = await api.call(.POST, "/api/v1/projects/\(project)/pki/templates", body: spec)
                api.show(field(r, "template"), columns: ["id", "project", "createdAt"])
            }
        }

        struct List: AsyncParsableCommand {
            @OptionGroup var api: APIOptions
            @Option var project: String
            func run() async throws {
                api.show(
                    await api.allPages("/api/v1/projects/\(project)/pki/templates", "templates"),
                    columns: ["id", "project", "createdAt"])
            }
        }
    }

    struct Profile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "profile", abstract: "Certificate profiles.",
            subcommands: [Create.self, List.self, ACMEEAB.self])

        struct ACMEEAB: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "acme-eab",
                abstract: "Show an ACME profile's external account binding (for certbot --eab-kid/--eab-hmac-key).")
            @OptionGroup var api: APIOptions
            @Argument(help: "Profile id or slug") var profile: String
            func run() async throws {
                let r = await api.call(.GET, "/api/v1/pki/profiles/\(profile)/acme-eab")
                if api.output == .json {
                    api.show(r, columns: [])
                } else {
                    print("kid \(field(r, "keyId") as? String ?? "")")
                    print("hmac-key \(field(r, "hmacKey") as? String ?? "")")
                }
            }
        }

        struct Create: AsyncParsableCommand {
            @OptionGroup var api: APIOptions
            @Option var project: String
            @Option var slug: String
            @Option(help: "Issuing CA id (omit for self-signed API issuance)") var ca: String?
            @Option var template: String
            @Option(help: "api, est, acme or kmip (KMIP Certify)") var enrollment = "api"
            @Option(help: "Environment variable holding the EST passphrase") var estPassphraseEnv: String?
            @Option(help: "PEM file of the CAs device bootstrap certificates must chain to") var estBootstrapCa: String?
            @Option(help: "Default validity, e.g. 30d") var defaultTtl: String?
            func run() async throws {
                var body: [String: Any] = ["slug": slug, "templateId": template, "enrollment": enrollment]
                if let ca { body["caId"] = ca }
                if let defaultTtl { body["defaultTTL"] = defaultTtl }
                if enrollment == "est" {
                    var est: [String: Any] = [:]
                    if let name = estPassphraseEnv {
                        guard let value = ProcessInfo.processInfo.environment[name] else { fail("\(name) is not set") }
                        est["passphrase"] = value
                    }
                    if let estBootstrapCa { est["bootstrapCAChain"] = PKICommand.readFile(estBootstrapCa) }
                    body["est"] = est
                }
                let r = await api.call(.POST, "/api/v1/projects/\(project)/pki/profiles", body: body)
                api.show(field(r, "profile"), columns: ["id", "slug", "enrollment", "caId", "templateId"])
            }
        }

        struct List: AsyncParsableCommand {
            @OptionGroup var api: APIOptions
            @Option var project: String
            func run() async throws {
                api.show(
                    await api.allPages("/api/v1/projects/\(project)/pki/profiles", "profiles"),
                    columns: ["id", "slug", "enrollment", "caId", "templateId"])
            }
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Issue under a profile: from a CSR file, or CSR-less (--cn/--san; the key is written to --out once).")
        @OptionGroup var api: APIOptions
        @Argument(help: "Profile id or slug") var profile: String
        @Option(help: "PEM CSR file") var csr: String?
        @Option var cn: String?
        @Option(help: "SAN: dns:NAME, ip:ADDR, email:ADDR, uri:URI (repeatable)") var san: [String] = []
        @Option(help: "Validity, e.g. 30d") var ttl: String?
        @Option(help: "Key algorithm for CSR-less issuance") var keyAlgorithm: String?
        @Option(help: "Directory for certificate.pem, chain.pem and (CSR-less) private-key.pem") var out: String?
        func run() async throws {
            var body: [String: Any] = [:]
            if let csr { body["csr"] = PKICommand.readFile(csr) }
            if let cn { body["commonName"] = cn }
            if !san.isEmpty { body["altNames"] = san }
            if let ttl { body["ttl"] = ttl }
            if let keyAlgorithm { body["keyAlgorithm"] = keyAlgorithm }
            let r = await api.call(.POST, "/api/v1/pki/profiles/\(profile)/issue", body: body)
            guard let cert = field(r, "certificate") as? [String: Any] else { fail("unexpected response") }
            if let out {
                try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                try (cert["certificate"] as? String ?? "").write(
                    toFile: out + "/certificate.pem", atomically: true, encoding: .utf8)
                try ((cert["certificateChain"] as? [String]) ?? []).joined().write(
                    toFile: out + "/chain.pem", atomically: true, encoding: .utf8)
                if let key = field(r, "privateKey") as? String {
                    FileManager.default.createFile(
                        atPath: out + "/private-key.pem", contents: Data(key.utf8),
                        attributes: [.posixPermissions: 0o600])
                }
            } else if field(r, "privateKey") != nil, api.output != .json {
                fail("CSR-less issuance returns the private key once: pass --out DIR (or --output json)")
            }
            if api.output == .json { api.show(r, columns: []) } else { api.show(cert, columns: PKICommand.certColumns) }
        }
    }

    struct Certificates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "certs",
            abstract: "List issued certificates by expiry (soonest first), filtered through the store's indexes.")
        @OptionGroup var api: APIOptions
        @Option var project: String
        @Option(help: "Issued by this CA (id).") var ca: String?
        @Option(help: "Issued under this profile (id).") var profile: String?
        @Option(help: "active, revoked or expired.") var status: String?
        @Option(help: "With this common name or subject alternative name.") var name: String?
        @Option(help: "Expiring at or after this time (RFC 3339).") var expiresAfter: String?
        @Option(help: "Expiring before this time (RFC 3339), e.g. the next 30 days' renewals.") var expiresBefore:
            String?
        @Flag(help: "Latest expiry first.") var latestFirst = false
        @Option(help: "At most this many.") var max: Int?
        func run() async throws {
            var query: [(String, String)] = []
            for (k, v) in [
                ("ca", ca), ("profile", profile), ("status", status), ("name", name), ("expiresAfter", expiresAfter),
                ("expiresBefore", expiresBefore),
            ] {
                if let v { query.append((k, v)) }
            }
            if latestFirst { query.append(("order", "desc")) }
            api.show(
                await api.allPages(
                    "/api/v1/projects/\(project)/pki/certificates", "certificates", query: query, max: max),
                columns: PKICommand.certColumns)
        }
    }

    struct Revoke: AsyncParsableCommand {
        @OptionGroup var api: APIOptions
        @Argument(help: "Serial number (hex)") var serial: String
        @Option(help: "RFC 5280 reason: unspecified, keyCompromise, superseded, cessationOfOperation, …") var reason =
            "unspecified"
        func run() async throws {
            let r = await api.call(.POST, "/api/v1/pki/certificates/\(serial)/revoke", body: ["reason": reason])
            api.show(field(r, "certificate"), columns: PKICommand.certColumns)
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a certificate the server holds the key of: PEM bundle, or PKCS#12 with a password.")
        @OptionGroup var api: APIOptions
        @Argument var serial: String
        @Option(help: "Write a PKCS#12 archive to this file") var pkcs12: String?
        @Option(help: "Environment variable holding the PKCS#12 password") var passwordEnv = "GATEHOUSE_PKCS12_PASSWORD"
        @Option(help: "PKCS#12 friendly name (default: the common name)") var alias: String?
        func run() async throws {
            if let pkcs12 {
                guard let password = ProcessInfo.processInfo.environment[passwordEnv], !password.isEmpty else {
                    fail("set the PKCS#12 password in \(passwordEnv)")
                }
                var body: [String: Any] = ["password": password]
                if let alias { body["alias"] = alias }
                let bytes = await api.raw(.POST, "/api/v1/pki/certificates/\(serial)/pkcs12", body: body)
                guard
                    FileManager.default.createFile(
                        atPath: pkcs12, contents: Data(bytes), attributes: [.posixPermissions: 0o600])
                else {
                    fail("cannot write \(pkcs12)")
                }
                print("wrote \(pkcs12) (\(bytes.count) bytes)")
                return
            }
            let r = await api.call(.GET, "/api/v1/pki/certificates/\(serial)/bundle")
            for key in ["certificate", "privateKey"] {
                if let s = field(r, key) as? String { print(s, terminator: "") }
            }
            for s in (field(r, "certificateChain") as? [String]) ?? [] { print(s, terminator: "") }
        }
    }
}

/// `30d`, `12h`, `90m`, `45s` in seconds (the configuration file's duration syntax).
func durationSeconds(_ text: String) -> Int? {
    guard let d = ConfigurationLoader.parseDuration(text), d > .zero else { return nil }
    return Int(d.components.seconds)
}
