import AdminAPI
import ArgumentParser
import Foundation

/// `gatehouse ssh …`: SSH CAs, user and host certificates, hosts, login mappings, KRLs and `connect`.
struct SSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh", abstract: "SSH certificate authority: CAs, certificates, hosts, login mappings, connect.",
        subcommands: [
            CA.self, IssueUserCert.self, IssueHostCert.self, Certificates.self, Revoke.self, KRL.self, HostGroup.self,
            AddHost.self,
            Hosts.self, Connect.self,
        ])

    static let caColumns = ["id", "name", "keyAlgorithm", "fingerprint", "userTTL", "hostTTL"]
    static let certColumns = ["serial", "type", "keyId", "principals", "validBefore", "status"]
    static let hostColumns = ["id", "hostname", "port", "hostGroupId", "loginMappings"]

    static func write(_ text: String, to path: String, mode: Int = 0o644) {
        guard
            FileManager.default.createFile(
                atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode])
        else {
            fail("cannot write \(path)")
        }
    }

    /// `login=identity1,identity2` → a login mapping.
    static func mappings(_ values: [String]) -> [Components.Schemas.SSHLoginMapping] {
        values.map { v in
            let parts = v.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                fail("--login-mapping must be LOGIN=IDENTITY[,IDENTITY…]")
            }
            return .init(login: String(parts[0]), allowedIdentities: parts[1].split(separator: ",").map(String.init))
        }
    }

    struct CA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ca", abstract: "SSH CAs.", subcommands: [Create.self, List.self, Get.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create an SSH CA (its key is generated here and never leaves the store unencrypted).")
            @OptionGroup var api: APIOptions
            @Option(help: "The project's slug.") var project: String
            @Option(help: "The CA's name.") var name: String
            @Option(help: "ed25519 (default), ecdsa-p256, ecdsa-p384, rsa-3072, rsa-4096") var keyAlgorithm: String?
            @Option(help: "Default user certificate lifetime (default 8h)") var userTTL: String?
            @Option(help: "Maximum user certificate lifetime (default 24h)") var maxUserTTL: String?
            @Option(help: "Default host certificate lifetime (default 30d)") var hostTTL: String?
            @Option(help: "Maximum host certificate lifetime (default 365d)") var maxHostTTL: String?
            func run() async throws {
                let algorithm: Components.Schemas.SSHKeyAlgorithm? = choice(keyAlgorithm, "key-algorithm")
                let spec = Components.Schemas.SSHCASpec(
                    name: name, keyAlgorithm: algorithm, userTTL: userTTL, maxUserTTL: maxUserTTL, hostTTL: hostTTL,
                    maxHostTTL: maxHostTTL)
                let ca = await api.withClient { client in
                    try await client.createSSHCA(path: .init(project: project), body: .json(spec)).created.body.json.ca
                }
                api.show(ca, columns: SSHCommand.caColumns)
            }
        }
        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a project's SSH CAs.")
            @OptionGroup var api: APIOptions
            @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
            @Option(help: "The project's slug.") var project: String
            func run() async throws {
                let cas = await api.withClient { client in
                    try await allPages(max: max) { after in
                        let page = try await client.listSSHCAs(
                            path: .init(project: project), query: .init(after: after, limit: 1000)
                        ).ok.body.json
                        return (page.cas, page.next)
                    }
                }
                api.show(cas, columns: SSHCommand.caColumns)
            }
        }
        struct Get: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Show a CA; --public-key prints only its key line.")
            @OptionGroup var api: APIOptions
            @Argument(help: "The CA's id.") var id: String
            @Flag(help: "Print only the CA's public key line (for sshd TrustedUserCAKeys or known_hosts).")
            var publicKey = false
            func run() async throws {
                let ca = await api.withClient { client in
                    try await client.getSSHCA(path: .init(caId: id)).ok.body.json.ca
                }
                if publicKey {
                    print(ca.publicKey)
                } else {
                    api.show(ca, columns: SSHCommand.caColumns)
                }
            }
        }
    }

    struct IssueUserCert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue-user-cert", abstract: "Sign a user key; writes KEY-cert.pub next to KEY.pub (or --out)."
        )
        @OptionGroup var api: APIOptions
        @Option(help: "The SSH CA's id.") var ca: String
        @Option(help: "The user's public key file (.pub)") var publicKey: String
        @Option(name: .customLong("principal"), help: "Login name the certificate is valid for (repeatable)")
        var principals: [String]
        @Option(help: "The certificate's key id (shown in sshd's log; default: the caller and a serial).")
        var keyId: String?
        @Option(help: "Lifetime, e.g. 1h (default and cap from the CA)") var ttl: String?
        @Option(help: "Run only this command on login (the force-command critical option).") var forceCommand: String?
        @Option(help: "Comma-separated addresses/CIDRs the certificate may be used from") var sourceAddress: String?
        @Option(name: .customLong("extension"), help: "permit-pty (default), permit-port-forwarding, … (repeatable)")
        var extensions: [String] = []
        @Option(help: "Write the certificate here (default: KEY-cert.pub next to KEY.pub).") var out: String?
        func run() async throws {
            var options: [String: String] = [:]
            if let forceCommand { options["force-command"] = forceCommand }
            if let sourceAddress { options["source-address"] = sourceAddress }
            let permissions: [Components.Schemas.SSHCertificateRequest.ExtensionsPayloadPayload] = extensions.map {
                choice($0, "extension")
            }
            let request = Components.Schemas.SSHCertificateRequest(
                _type: .user, publicKey: PKICommand.readFile(publicKey), keyId: keyId, principals: principals, ttl: ttl,
                criticalOptions: options.isEmpty ? nil : .init(additionalProperties: options),
                extensions: permissions.isEmpty ? nil : permissions)
            let cert = await api.withClient { client in
                try await client.issueSSHCertificate(path: .init(caId: ca), body: .json(request)).created.body.json
                    .certificate
            }
            let path = out ?? (publicKey.hasSuffix(".pub") ? String(publicKey.dropLast(4)) : publicKey) + "-cert.pub"
            SSHCommand.write(cert.certificate + "\n", to: path)
            api.show(cert, columns: SSHCommand.certColumns)
        }
    }

    struct IssueHostCert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue-host-cert", abstract: "Sign a host key for a registered host (principal: its hostname)."
        )
        @OptionGroup var api: APIOptions
        @Option(help: "Host id or hostname") var host: String
        @Option(help: "The host's public key file") var publicKey: String
        @Option(help: "Lifetime, e.g. 30d (default and cap from the CA).") var ttl: String?
        @Option(help: "Write the certificate here (default: KEY-cert.pub next to the key file).") var out: String?
        func run() async throws {
            let key = PKICommand.readFile(publicKey)
            let cert = await api.withClient { client in
                try await client.signSSHHostKey(path: .init(host: host), body: .json(.init(publicKey: key, ttl: ttl)))
                    .created.body.json.certificate
            }
            let path = out ?? (publicKey.hasSuffix(".pub") ? String(publicKey.dropLast(4)) : publicKey) + "-cert.pub"
            SSHCommand.write(cert.certificate + "\n", to: path)
            api.show(cert, columns: SSHCommand.certColumns)
        }
    }

    struct Certificates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "certs", abstract: "List issued SSH certificates.")
        @OptionGroup var api: APIOptions
        @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
        @Option(help: "The project's slug.") var project: String
        func run() async throws {
            let certificates = await api.withClient { client in
                try await allPages(max: max) { after in
                    let page = try await client.listSSHCertificates(
                        path: .init(project: project), query: .init(after: after, limit: 1000)
                    ).ok.body.json
                    return (page.certificates, page.next)
                }
            }
            api.show(certificates, columns: SSHCommand.certColumns)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an SSH certificate by serial (it enters the CA's KRL).")
        @OptionGroup var api: APIOptions
        @Argument(help: "The certificate's serial (decimal, as ssh-keygen -L prints it).") var serial: String
        func run() async throws {
            let certificate = await api.withClient { client in
                try await client.revokeSSHCertificate(path: .init(serial: serial)).ok.body.json.certificate
            }
            api.show(certificate, columns: SSHCommand.certColumns)
        }
    }

    struct KRL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the CA's key revocation list (sshd RevokedKeys).")
        @OptionGroup var api: APIOptions
        @Argument(help: "The SSH CA's id.") var ca: String
        @Option(help: "File to write the KRL to (the path sshd's RevokedKeys names).") var out: String
        func run() async throws {
            let bytes = await api.withClient(anonymous: true) { client in
                let body = try await client.getSSHKRL(path: .init(file: ca + ".krl")).ok.body.binary
                return try await [UInt8](collecting: body, upTo: 64 << 20)
            }
            guard
                FileManager.default.createFile(
                    atPath: out, contents: Data(bytes), attributes: [.posixPermissions: 0o644])
            else {
                fail("cannot write \(out)")
            }
        }
    }

    struct HostGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "host-group", abstract: "Host groups.", subcommands: [Create.self, List.self])
        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create a host group: hosts in it share its login mappings.")
            @OptionGroup var api: APIOptions
            @Option(help: "The project's slug.") var project: String
            @Option(help: "The group's name.") var name: String
            @Option(name: .customLong("login-mapping"), help: "LOGIN=IDENTITY[,IDENTITY…] (repeatable)") var mappings:
                [String] = []
            func run() async throws {
                let spec = Components.Schemas.SSHHostGroupSpec(
                    name: name, loginMappings: SSHCommand.mappings(mappings))
                let group = await api.withClient { client in
                    try await client.createSSHHostGroup(path: .init(project: project), body: .json(spec)).created.body
                        .json.hostGroup
                }
                api.show(group, columns: ["id", "name", "loginMappings"])
            }
        }
        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a project's host groups.")
            @OptionGroup var api: APIOptions
            @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
            @Option(help: "The project's slug.") var project: String
            func run() async throws {
                let groups = await api.withClient { client in
                    try await allPages(max: max) { after in
                        let page = try await client.listSSHHostGroups(
                            path: .init(project: project), query: .init(after: after, limit: 1000)
                        ).ok.body.json
                        return (page.hostGroups, page.next)
                    }
                }
                api.show(groups, columns: ["id", "name", "loginMappings"])
            }
        }
    }

    struct AddHost: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-host",
            abstract:
                "Register a host; with --host-key, sign it and write the host certificate and the user CA key to --out-dir."
        )
        @OptionGroup var api: APIOptions
        @Option(help: "The project's slug.") var project: String
        @Option(help: "The host's name: the host certificate's principal and what `ssh connect` dials.")
        var hostname: String
        @Option(help: "The host's SSH port (default 22).") var port: Int?
        @Option(help: "Host group id whose login mappings apply too.") var hostGroup: String?
        @Option(help: "SSH CA id that signs user certificates for this host") var userCa: String
        @Option(help: "SSH CA id that signs the host certificate") var hostCa: String
        @Option(name: .customLong("login-mapping"), help: "LOGIN=IDENTITY[,IDENTITY…] (repeatable)") var mappings:
            [String] = []
        @Option(help: "The host's public key file (e.g. /etc/ssh/ssh_host_ed25519_key.pub)") var hostKey: String?
        @Option(help: "Host certificate lifetime, e.g. 30d (default from the CA).") var ttl: String?
        @Option(help: "Where to write <key>-cert.pub and user_ca.pub (default: next to --host-key)") var outDir: String?
        func run() async throws {
            let spec = Components.Schemas.SSHHostSpec(
                hostname: hostname, port: port, hostGroup: hostGroup, userCaId: userCa, hostCaId: hostCa,
                loginMappings: SSHCommand.mappings(mappings), hostPublicKey: hostKey.map(PKICommand.readFile),
                hostCertificateTTL: ttl)
            let host = await api.withClient { client in
                try await client.createSSHHost(path: .init(project: project), body: .json(spec)).created.body.json.host
            }
            if let hostKey {
                let dir = outDir ?? (hostKey as NSString).deletingLastPathComponent
                let base = ((hostKey as NSString).lastPathComponent as NSString).deletingPathExtension
                SSHCommand.write((host.hostCertificate ?? "") + "\n", to: dir + "/" + base + "-cert.pub")
                SSHCommand.write(host.userCAPublicKey + "\n", to: dir + "/user_ca.pub")
            }
            api.show(host, columns: SSHCommand.hostColumns)
        }
    }

    struct Hosts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List registered hosts.")
        @OptionGroup var api: APIOptions
        @Option(help: "Print at most this many (default: all, fetched a page at a time).") var max: Int?
        @Option(help: "The project's slug.") var project: String
        func run() async throws {
            let hosts = await api.withClient { client in
                try await allPages(max: max) { after in
                    let page = try await client.listSSHHosts(
                        path: .init(project: project), query: .init(after: after, limit: 1000)
                    ).ok.body.json
                    return (page.hosts, page.next)
                }
            }
            api.show(hosts, columns: SSHCommand.hostColumns)
        }
    }

    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Log in to a registered host with a fresh key and a short-lived certificate (runs the system ssh).",
            discussion:
                "The key never leaves this machine; the certificate's only principal is the login your mappings allow. Arguments after -- go to ssh (e.g. a remote command)."
        )
        @OptionGroup var api: APIOptions
        @Argument(help: "Host id or hostname") var host: String
        @Option(help: "Remote login name (default: the only one your mappings allow on this host).") var login: String?
        @Option(help: "Certificate lifetime (default: the CA's user TTL)") var ttl: String?
        @Option(help: "Connect to this address instead of the hostname") var address: String?
        @Option(help: "ssh binary") var ssh = "ssh"
        @Argument(parsing: .postTerminator, help: "Arguments after -- go to ssh, e.g. a remote command.")
        var sshArguments: [String] = []

        func run() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
                "gatehouse-ssh-\(UUID().uuidString)"
            ).path
            do {
                try FileManager.default.createDirectory(
                    atPath: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            } catch {
                fail("cannot create \(dir)")
            }
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let keygen = Process()
            keygen.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            keygen.arguments = [
                "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gatehouse-connect", "-f", dir + "/id_ed25519",
            ]
            do { try keygen.run() } catch { fail("cannot run ssh-keygen: \(error)") }
            keygen.waitUntilExit()
            guard keygen.terminationStatus == 0 else { fail("ssh-keygen failed") }
            let key = PKICommand.readFile(dir + "/id_ed25519.pub")
            let grant = await api.withClient { client in
                try await client.connectSSHHost(
                    path: .init(host: host), body: .json(.init(publicKey: key, login: login, ttl: ttl))
                ).created.body.json
            }
            let (cert, knownHosts, hostname, port, chosen) = (
                grant.certificate.certificate, grant.knownHostsLine, grant.hostname, grant.port, grant.login
            )
            SSHCommand.write(cert + "\n", to: dir + "/id_ed25519-cert.pub", mode: 0o600)
            // With --address, ssh checks the host certificate against the hostname through HostKeyAlias (no port).
            var trust = knownHosts + "\n"
            var alias: [String] = []
            if address != nil {
                let key = knownHosts.split(separator: " ").dropFirst(2).joined(separator: " ")
                trust += "@cert-authority \(hostname) \(key)\n"
                alias = ["-o", "HostKeyAlias=\(hostname)"]
            }
            SSHCommand.write(trust, to: dir + "/known_hosts", mode: 0o600)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments =
                [
                    ssh, "-F", "/dev/null", "-i", dir + "/id_ed25519", "-o",
                    "CertificateFile=\(dir)/id_ed25519-cert.pub", "-o", "IdentitiesOnly=yes",
                    "-o", "UserKnownHostsFile=\(dir)/known_hosts", "-o", "GlobalKnownHostsFile=/dev/null", "-o",
                    "StrictHostKeyChecking=yes",
                    "-p", String(port), "-l", chosen,
                ] + alias + [address ?? hostname] + sshArguments
            do { try process.run() } catch { fail("cannot run \(ssh): \(error)") }
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: dir)
            if process.terminationStatus != 0 { throw ExitCode(process.terminationStatus) }
        }
    }
}
