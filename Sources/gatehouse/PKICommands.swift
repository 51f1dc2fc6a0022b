import AdminAPI
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
            @Option(help: "The project's slug.") var project: String
            @Option(help: "root or intermediate") var type = "root"
            @Option(help: "Subject common name") var cn: String
            @Option(help: "Subject organization (O)") var org: String?
            @Option(help: "Subject organizational unit (OU)") var ou: String?
            @Option(help: "Two-letter country code") var country: String?
            @Option(help: "Subject state or province (ST)") var province: String?
            @Option(help: "Subject locality (L)") var locality: String?
            @Option(help: "RSA_2048 (default), RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1, ED25519")
            var keyAlgorithm: String?
            @Option(help: "Validity, e.g. 3650d (default: 10 years for a root, 5 for an intermediate)") var ttl: String?
            @Option(help: "-1 unlimited, 0 no CAs below, n at most n") var maxPathLength: Int?
            @Option(help: "Parent CA id (a Gatehouse CA)") var parent: String?

            func run() async throws {
                let kind: Components.Schemas.CASpec._TypePayload = choice(type, "type")
                var notAfter: Date?
                if let ttl {
                    guard let seconds = durationSeconds(ttl) else { fail("--ttl must be like 3650d or 8760h") }
                    notAfter = Date().addingTimeInterval(TimeInterval(seconds))
                }
                let spec = Components.Schemas.CASpec(
                    _type: kind,
                    subject: .init(
                        commonName: cn, organization: org, organizationalUnit: ou, country: country,
                        province: province, locality: locality),
                    keyAlgorithm: choice(keyAlgorithm, "key-algorithm"), notAfter: notAfter,
                    maxPathLength: maxPathLength, parentCaId: parent)
                let ca = await api.withClient { client in
                    try await client.createCA(path: .init(project: project), body: .json(spec)).created.body.json.ca
                }
                api.show(ca, columns: PKICommand.caColumns)
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a project's CAs, oldest first.")
            @OptionGroup var api: APIOptions
            @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
            @Option(help: "The project's slug.") var project: String
            func run() async throws {
                let cas = await api.withClient { client in
                    try await allPages(max: max) { after in
                        let page = try await client.listCAs(
                            path: .init(project: project), query: .init(after: after, limit: 1000)
                        ).ok.body.json
                        return (page.cas, page.next)
                    }
                }
                api.show(cas, columns: PKICommand.caColumns)
            }
        }

        struct Get: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Show one CA: status, subject, key, validity, parent.")
            @OptionGroup var api: APIOptions
            @Argument(help: "The CA's id.") var id: String
            func run() async throws {
                let ca = await api.withClient { client in try await client.getCA(path: .init(caId: id)).ok.body.json.ca
                }
                api.show(ca, columns: PKICommand.caColumns)
            }
        }

        struct CSR: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print the CSR of an intermediate waiting for an external CA.")
            @OptionGroup var api: APIOptions
            @Argument(help: "The CA's id.") var id: String
            func run() async throws {
                let csr = await api.withClient { client in
                    try await client.getCACSR(path: .init(caId: id)).ok.body.json.csr
                }
                print(csr, terminator: "")
            }
        }

        struct Import: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Install the certificate an external CA issued, with its chain.")
            @OptionGroup var api: APIOptions
            @Argument(help: "The CA's id.") var id: String
            @Option(help: "PEM certificate file") var certificate: String
            @Option(help: "PEM chain file (issuer first)") var chain: String
            func run() async throws {
                let body = Operations.ImportCACertificate.Input.Body.JsonPayload(
                    certificate: PKICommand.readFile(certificate), certificateChain: PKICommand.readFile(chain))
                let ca = await api.withClient { client in
                    try await client.importCACertificate(path: .init(caId: id), body: .json(body)).ok.body.json.ca
                }
                api.show(ca, columns: PKICommand.caColumns)
            }
        }

        struct Renew: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Re-issue a CA's certificate with a new validity (same key and subject).")
            @OptionGroup var api: APIOptions
            @Argument(help: "The CA's id.") var id: String
            @Option(help: "New validity from now, e.g. 1825d") var ttl: String
            func run() async throws {
                guard let seconds = durationSeconds(ttl) else { fail("--ttl must be like 1825d") }
                let notAfter = Date().addingTimeInterval(TimeInterval(seconds))
                let ca = await api.withClient { client in
                    try await client.renewCA(path: .init(caId: id), body: .json(.init(notAfter: notAfter))).ok.body.json
                        .ca
                }
                api.show(ca, columns: PKICommand.caColumns)
            }
        }
    }

    struct Template: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "template", abstract: "Certificate templates (policy).", subcommands: [Create.self, List.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Create a template from a JSON file (see docs/pki-and-est.md: name, subject, sans, keyAlgorithms, …)."
            )
            @OptionGroup var api: APIOptions
            @Option(help: "The project's slug.") var project: String
            @Option(help: "JSON template file") var file: String
            func run() async throws {
                let spec: Components.Schemas.TemplateSpec
                do {
                    spec = try JSONDecoder().decode(
                        Components.Schemas.TemplateSpec.self, from: Data(PKICommand.readFile(file).utf8))
                } catch {
                    fail("\(file) is not a template: \(error)")
                }
                let template = await api.withClient { client in
                    try await client.createTemplate(path: .init(project: project), body: .json(spec)).created.body.json
                        .template
                }
                api.show(template, columns: ["id", "project", "createdAt"])
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a project's certificate templates.")
            @OptionGroup var api: APIOptions
            @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
            @Option(help: "The project's slug.") var project: String
            func run() async throws {
                let templates = await api.withClient { client in
                    try await allPages(max: max) { after in
                        let page = try await client.listTemplates(
                            path: .init(project: project), query: .init(after: after, limit: 1000)
                        ).ok.body.json
                        return (page.templates, page.next)
                    }
                }
                api.show(templates, columns: ["id", "project", "createdAt"])
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
                let eab = await api.withClient { client in
                    try await client.getACMEExternalAccountBinding(path: .init(profileId: profile)).ok.body.json
                }
                if api.output == .json {
                    api.show(eab, columns: [])
                } else {
                    print("kid \(eab.keyId)")
                    print("hmac-key \(eab.hmacKey)")
                }
            }
        }

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create a profile: how certificates under a template are enrolled (API, EST, ACME or KMIP).")
            @OptionGroup var api: APIOptions
            @Option(help: "The project's slug.") var project: String
            @Option(help: "The profile's slug (EST and ACME URLs use it).") var slug: String
            @Option(help: "Issuing CA id (omit for self-signed API issuance)") var ca: String?
            @Option(help: "The template's id (`gatehouse pki template create` prints it).") var template: String
            @Option(help: "api, est, acme or kmip (KMIP Certify)") var enrollment = "api"
            @Option(help: "Environment variable holding the EST passphrase") var estPassphraseEnv: String?
            @Option(help: "PEM file of the CAs device bootstrap certificates must chain to") var estBootstrapCa: String?
            @Option(help: "Default validity, e.g. 30d") var defaultTtl: String?
            func run() async throws {
                let method: Components.Schemas.ProfileSpec.EnrollmentPayload = choice(enrollment, "enrollment")
                var est: Components.Schemas.ESTSettings?
                if method == .est {
                    var settings = Components.Schemas.ESTSettings()
                    if let name = estPassphraseEnv {
                        guard let value = ProcessInfo.processInfo.environment[name] else { fail("\(name) is not set") }
                        settings.passphrase = value
                    }
                    settings.bootstrapCAChain = estBootstrapCa.map(PKICommand.readFile)
                    est = settings
                }
                let spec = Components.Schemas.ProfileSpec(
                    slug: slug, caId: ca, templateId: template, enrollment: method, est: est, defaultTTL: defaultTtl)
                let created = await api.withClient { client in
                    try await client.createProfile(path: .init(project: project), body: .json(spec)).created.body.json
                        .profile
                }
                api.show(created, columns: ["id", "slug", "enrollment", "caId", "templateId"])
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a project's certificate profiles.")
            @OptionGroup var api: APIOptions
            @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
            @Option(help: "The project's slug.") var project: String
            func run() async throws {
                let profiles = await api.withClient { client in
                    try await allPages(max: max) { after in
                        let page = try await client.listProfiles(
                            path: .init(project: project), query: .init(after: after, limit: 1000)
                        ).ok.body.json
                        return (page.profiles, page.next)
                    }
                }
                api.show(profiles, columns: ["id", "slug", "enrollment", "caId", "templateId"])
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
        @Option(help: "Subject common name (CSR-less issuance)") var cn: String?
        @Option(help: "SAN: dns:NAME, ip:ADDR, email:ADDR, uri:URI (repeatable)") var san: [String] = []
        @Option(help: "Validity, e.g. 30d") var ttl: String?
        @Option(help: "Key algorithm for CSR-less issuance") var keyAlgorithm: String?
        @Option(help: "Directory for certificate.pem, chain.pem and (CSR-less) private-key.pem") var out: String?
        func run() async throws {
            let request = Components.Schemas.IssuanceRequest(
                csr: csr.map(PKICommand.readFile), commonName: cn, altNames: san.isEmpty ? nil : san, ttl: ttl,
                keyAlgorithm: choice(keyAlgorithm, "key-algorithm"))
            let issued = await api.withClient { client in
                try await client.issueCertificate(path: .init(profileId: profile), body: .json(request)).created.body
                    .json
            }
            let cert = issued.certificate
            if let out {
                try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                try cert.certificate.write(toFile: out + "/certificate.pem", atomically: true, encoding: .utf8)
                try cert.certificateChain.joined().write(toFile: out + "/chain.pem", atomically: true, encoding: .utf8)
                if let key = issued.privateKey,
                    !FileManager.default.createFile(
                        atPath: out + "/private-key.pem", contents: Data(key.utf8),
                        attributes: [.posixPermissions: 0o600])
                {
                    fail("cannot write \(out)/private-key.pem")
                }
            } else if issued.privateKey != nil, api.output != .json {
                fail("CSR-less issuance returns the private key once: pass --out DIR (or --output json)")
            }
            if api.output == .json {
                api.show(issued, columns: [])
            } else {
                api.show(cert, columns: PKICommand.certColumns)
            }
        }
    }

    struct Certificates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "certs",
            abstract: "List issued certificates by expiry (soonest first), filtered through the store's indexes.")
        @OptionGroup var api: APIOptions
        @Option(help: "The project's slug.") var project: String
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
            let statusFilter: Operations.ListCertificates.Input.Query.StatusPayload? = choice(status, "status")
            let after = rfc3339(expiresAfter, "expires-after")
            let before = rfc3339(expiresBefore, "expires-before")
            let certificates = await api.withClient { client in
                try await allPages(max: max) { cursor in
                    let page = try await client.listCertificates(
                        path: .init(project: project),
                        query: .init(
                            after: cursor, limit: 1000, ca: ca, profile: profile, status: statusFilter, name: name,
                            expiresAfter: after, expiresBefore: before, order: latestFirst ? .desc : nil)
                    ).ok.body.json
                    return (page.certificates, page.next)
                }
            }
            api.show(certificates, columns: PKICommand.certColumns)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a certificate: it appears in the next CRL and OCSP answers 'revoked'.")
        @OptionGroup var api: APIOptions
        @Argument(help: "Serial number (hex)") var serial: String
        @Option(help: "RFC 5280 reason: unspecified, keyCompromise, superseded, cessationOfOperation, …") var reason =
            "unspecified"
        func run() async throws {
            let why: Components.Schemas.RevocationReason = choice(reason, "reason")
            let certificate = await api.withClient { client in
                try await client.revokeCertificate(path: .init(serial: serial), body: .json(.init(reason: why))).ok.body
                    .json.certificate
            }
            api.show(certificate, columns: PKICommand.certColumns)
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a certificate the server holds the key of: PEM bundle, or PKCS#12 with a password.")
        @OptionGroup var api: APIOptions
        @Argument(help: "Serial number (hex)") var serial: String
        @Option(help: "Write a PKCS#12 archive to this file") var pkcs12: String?
        @Option(help: "Environment variable holding the PKCS#12 password") var passwordEnv = "GATEHOUSE_PKCS12_PASSWORD"
        @Option(help: "PKCS#12 friendly name (default: the common name)") var alias: String?
        func run() async throws {
            if let pkcs12 {
                guard let password = ProcessInfo.processInfo.environment[passwordEnv], !password.isEmpty else {
                    fail("set the PKCS#12 password in \(passwordEnv)")
                }
                let bytes = await api.withClient { client in
                    let body = try await client.exportCertificatePKCS12(
                        path: .init(serial: serial), body: .json(.init(password: password, alias: alias))
                    ).ok.body.applicationXPkcs12
                    return try await [UInt8](collecting: body, upTo: 16 << 20)
                }
                guard
                    FileManager.default.createFile(
                        atPath: pkcs12, contents: Data(bytes), attributes: [.posixPermissions: 0o600])
                else {
                    fail("cannot write \(pkcs12)")
                }
                print("wrote \(pkcs12) (\(bytes.count) bytes)")
                return
            }
            let bundle = await api.withClient { client in
                try await client.getCertificateBundle(path: .init(serial: serial)).ok.body.json
            }
            print(bundle.certificate, terminator: "")
            if let key = bundle.privateKey { print(key, terminator: "") }
            for s in bundle.certificateChain { print(s, terminator: "") }
        }
    }
}

/// `30d`, `12h`, `90m`, `45s` in seconds (the configuration file's duration syntax).
func durationSeconds(_ text: String) -> Int? {
    guard let d = ConfigurationLoader.parseDuration(text), d > .zero else { return nil }
    return Int(d.components.seconds)
}
