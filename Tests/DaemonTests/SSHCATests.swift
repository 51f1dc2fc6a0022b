import Foundation
import TestSupport
import Testing

/// The SSH certificate authority against real OpenSSH: `ssh-keygen -L` reads what the CLI asked for; a stock
/// `sshd` on loopback with `TrustedUserCAKeys`, `AuthorizedPrincipalsFile`, `RevokedKeys` and a Gatehouse host
/// certificate accepts a valid user certificate and refuses expired, wrong-principal and revoked ones; the OpenSSH
/// client trusts the host through an `@cert-authority` line without prompting; `gatehouse ssh connect` logs in
/// through the login mappings.
@Suite(.serialized) struct SSHCATests {
    struct Env {
        let daemon: DaemonProcess
        let work: String
        /// Runs the CLI; `--data-dir` goes before a `--` (what follows it belongs to ssh).
        func cli(_ args: [String], env: [String: String] = [:]) throws -> (Int32, String, String) {
            var args = args
            args.insert(
                contentsOf: ["--data-dir", daemon.dataDirectory], at: args.firstIndex(of: "--") ?? args.endIndex)
            let out = try ProcessRunner.run([ProcessRunner.gatehouseBinary] + args, environment: env, timeout: 60)
            return (out.status, out.stdout, out.stderr)
        }
        func ok(_ args: [String], env: [String: String] = [:]) throws -> String {
            let (status, out, err) = try cli(args, env: env)
            #expect(status == 0, "gatehouse \(args.joined(separator: " ")): \(err)")
            return out
        }
        func json(_ args: [String], env: [String: String] = [:]) throws -> [String: Any] {
            let text = try ok(args + ["--output", "json"], env: env)
            return try #require(
                try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
        }
        func run(_ args: [String], timeout: TimeInterval = 30) throws -> ProcessRunner.Output {
            try ProcessRunner.run(args, cwd: work, timeout: timeout)
        }
        func keygen(_ name: String, _ type: String = "ed25519") throws {
            let out = try run(["ssh-keygen", "-q", "-t", type, "-N", "", "-C", name, "-f", work + "/" + name])
            #expect(out.status == 0, "\(out.stderr)")
        }
    }

    @Test func certificatesAreAcceptedAndRefusedByARealSSHD() throws {
        let env = ProcessInfo.processInfo.environment
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else {
            if dependencyRequired("OPENSSH") { Issue.record("/usr/sbin/sshd is missing (openssh-server)") }
            return
        }
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        defer { _ = daemon.stop() }
        try daemon.waitUntilListening()
        let e = Env(daemon: daemon, work: dir.path)
        let work = dir.path
        let login = try e.run(["id", "-un"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try e.ok(["project", "create", "ops"])

        // CAs: Ed25519 for users (default), ECDSA P-256 for hosts, RSA 3072 (rsa-sha2-512) as a second user CA.
        let userCA = try e.json([
            "ssh", "ca", "create", "--project", "ops", "--name", "users", "--user-ttl", "1h", "--max-user-ttl", "8h",
        ])
        let userCAID = try #require(userCA["id"] as? String)
        #expect((userCA["publicKey"] as? String)?.hasPrefix("ssh-ed25519 ") == true)
        let hostCA = try e.json([
            "ssh", "ca", "create", "--project", "ops", "--name", "hosts", "--key-algorithm", "ecdsa-p256",
        ])
        let hostCAID = try #require(hostCA["id"] as? String)
        let rsaCA = try e.json([
            "ssh", "ca", "create", "--project", "ops", "--name", "legacy", "--key-algorithm", "rsa-3072",
        ])
        let rsaCAID = try #require(rsaCA["id"] as? String)

        // The host: its key signed at registration; a group carries the login mapping for alice.
        let port = try freeLoopbackPort()
        try e.keygen("ssh_host_ed25519_key")
        _ = try e.ok([
            "ssh", "host-group", "create", "--project", "ops", "--name", "db-hosts", "--login-mapping",
            "\(login)=alice",
        ])
        let host = try e.json([
            "ssh", "add-host", "--project", "ops", "--hostname", "127.0.0.1", "--port", String(port), "--host-group",
            "db-hosts",
            "--user-ca", userCAID, "--host-ca", hostCAID, "--host-key", work + "/ssh_host_ed25519_key.pub", "--ttl",
            "1d",
        ])
        #expect(host["hostGroupId"] != nil)
        let hostCertInfo = try e.run(["ssh-keygen", "-L", "-f", work + "/ssh_host_ed25519_key-cert.pub"])
        #expect(
            hostCertInfo.stdout.contains("host certificate") && hostCertInfo.stdout.contains("127.0.0.1"),
            "\(hostCertInfo.stdout)")
        let rsaKey = try #require(rsaCA["publicKey"] as? String)
        let trusted = try String(contentsOfFile: work + "/user_ca.pub", encoding: .utf8) + rsaKey + "\n"
        try trusted.write(toFile: work + "/trusted_user_cas", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: work + "/principals", withIntermediateDirectories: true)
        try "\(login)\n".write(toFile: work + "/principals/\(login)", atomically: true, encoding: .utf8)
        _ = try e.ok(["ssh", "krl", userCAID, "--out", work + "/revoked.krl"])

        if getuid() == 0 {
            try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        }
        try """
        Port \(port)
        ListenAddress 127.0.0.1
        HostKey \(work)/ssh_host_ed25519_key
        HostCertificate \(work)/ssh_host_ed25519_key-cert.pub
        TrustedUserCAKeys \(work)/trusted_user_cas
        AuthorizedPrincipalsFile \(work)/principals/%u
        RevokedKeys \(work)/revoked.krl
        AuthorizedKeysFile none
        PidFile \(work)/sshd.pid
        StrictModes no
        UsePAM no
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PubkeyAuthentication yes
        PermitRootLogin prohibit-password
        LogLevel VERBOSE

        """.write(toFile: work + "/sshd_config", atomically: true, encoding: .utf8)
        let check = try e.run(["/usr/sbin/sshd", "-t", "-f", work + "/sshd_config"])
        #expect(check.status == 0, "sshd -t: \(check.stderr)")
        let sshd = try SSHD(config: work + "/sshd_config", log: work + "/sshd.log")
        defer { sshd.stop() }
        var listening = false
        for _ in 0..<100 where !listening {
            let fd = tcpConnect(port)
            if fd >= 0 {
                close(fd)
                listening = true
            } else {
                usleep(50_000)
            }
        }
        #expect(
            listening,
            "sshd did not listen: \((try? String(contentsOfFile: work + "/sshd.log", encoding: .utf8)) ?? "")")

        // known_hosts trusts the host CA for this host only; ssh must not prompt (BatchMode, StrictHostKeyChecking).
        let hostCAKey = try #require(hostCA["publicKey"] as? String).split(separator: " ").prefix(2).joined(
            separator: " ")
        try "@cert-authority [127.0.0.1]:\(port) \(hostCAKey)\n".write(
            toFile: work + "/known_hosts", atomically: true, encoding: .utf8)
        func ssh(_ key: String, knownHosts: String = "known_hosts", command: String = "echo gatehouse-ok") throws
            -> ProcessRunner.Output
        {
            try e.run([
                "ssh", "-F", "/dev/null", "-i", work + "/" + key, "-o", "CertificateFile=\(work)/\(key)-cert.pub", "-o",
                "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o",
                "UserKnownHostsFile=\(work)/\(knownHosts)",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-p", String(port),
                "\(login)@127.0.0.1", command,
            ])
        }

        // 1. ssh-keygen -L shows exactly what was asked for.
        try e.keygen("fields", "ecdsa")
        let fields = try e.json([
            "ssh", "issue-user-cert", "--ca", userCAID, "--public-key", work + "/fields.pub", "--principal", "dba",
            "--principal", "ops",
            "--key-id", "ticket-4711", "--ttl", "2h", "--force-command", "/usr/bin/psql", "--source-address",
            "10.0.0.0/8,127.0.0.1",
            "--extension", "permit-pty", "--extension", "permit-port-forwarding",
        ])
        let listing = try e.run(["ssh-keygen", "-L", "-f", work + "/fields-cert.pub"]).stdout
        let serial = try #require(fields["serial"] as? String)
        for expected in [
            "ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate", "Key ID: \"ticket-4711\"", "Serial: \(serial)",
            "force-command /usr/bin/psql", "source-address 10.0.0.0/8,127.0.0.1", "permit-port-forwarding",
            "permit-pty",
            "Signing CA: ED25519 \(try #require(userCA["fingerprint"] as? String)) (using ssh-ed25519)",
        ] {
            #expect(listing.contains(expected), "ssh-keygen -L lacks '\(expected)':\n\(listing)")
        }
        let principals =
            listing.components(separatedBy: "Principals:").last?.components(separatedBy: "Critical Options:").first
            ?? ""
        #expect(
            principals.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                == ["dba", "ops"])
        #expect(!listing.contains("permit-agent-forwarding") && !listing.contains("permit-X11-forwarding"))
        // Two hours exactly (plus the one minute of clock-skew allowance before now).
        let after = try #require(ISO8601DateFormatter().date(from: fields["validAfter"] as? String ?? ""))
        let before = try #require(ISO8601DateFormatter().date(from: fields["validBefore"] as? String ?? ""))
        #expect(before.timeIntervalSince(after) == 2 * 3600 + 60)
        // Beyond the CA's cap: refused with the reason.
        let (capStatus, _, capErr) = try e.cli([
            "ssh", "issue-user-cert", "--ca", userCAID, "--public-key", work + "/fields.pub", "--principal", "x",
            "--ttl", "9h",
        ])
        #expect(
            capStatus != 0 && capErr.contains("exceeds the CA's maximum of 8h") && capErr.contains("HTTP 403"),
            "\(capErr)")

        // 2. A valid certificate for the login: accepted, and the host certificate is trusted without a prompt.
        try e.keygen("good")
        _ = try e.ok([
            "ssh", "issue-user-cert", "--ca", userCAID, "--public-key", work + "/good.pub", "--principal", login,
        ])
        let good = try ssh("good")
        #expect(good.status == 0 && good.stdout.contains("gatehouse-ok"), "valid certificate refused: \(good.stderr)")

        // The same login with a host CA nobody trusts in known_hosts: host key verification fails.
        let userCAKey = try #require(userCA["publicKey"] as? String).split(separator: " ").prefix(2).joined(
            separator: " ")
        try "@cert-authority [127.0.0.1]:\(port) \(userCAKey)\n".write(
            toFile: work + "/wrong_known_hosts", atomically: true, encoding: .utf8)
        let untrusted = try ssh("good", knownHosts: "wrong_known_hosts")
        #expect(
            untrusted.status != 0 && untrusted.stderr.contains("Host key verification failed"), "\(untrusted.stderr)")

        // RSA CA (rsa-sha2-512 signatures) is accepted too.
        try e.keygen("rsauser")
        _ = try e.ok([
            "ssh", "issue-user-cert", "--ca", rsaCAID, "--public-key", work + "/rsauser.pub", "--principal", login,
        ])
        let rsa = try ssh("rsauser")
        #expect(rsa.status == 0 && rsa.stdout.contains("gatehouse-ok"), "RSA-CA certificate refused: \(rsa.stderr)")

        // 3. Wrong principal: refused.
        try e.keygen("wrongprincipal")
        _ = try e.ok([
            "ssh", "issue-user-cert", "--ca", userCAID, "--public-key", work + "/wrongprincipal.pub", "--principal",
            "someone-else",
        ])
        // Each refusal is checked by the reason sshd logs for it, read from the part of the log that attempt wrote.
        func sshdLogSince(_ offset: Int) -> String {
            let log = (try? Data(contentsOf: URL(fileURLWithPath: work + "/sshd.log"))) ?? Data()
            return String(decoding: log.dropFirst(offset), as: UTF8.self)
        }
        func sshdLogSize() -> Int {
            ((try? FileManager.default.attributesOfItem(atPath: work + "/sshd.log"))?[.size] as? Int) ?? 0
        }
        func sshdLogged(_ text: String, since offset: Int) -> Bool {
            // sshd writes its log line as the connection ends; give it a moment to reach the file.
            for _ in 0..<50 {
                if sshdLogSince(offset).contains(text) { return true }
                usleep(100_000)
            }
            return false
        }
        var logOffset = sshdLogSize()
        let wrong = try ssh("wrongprincipal")
        #expect(wrong.status != 0 && !wrong.stdout.contains("gatehouse-ok"))
        #expect(
            sshdLogged("Certificate does not contain an authorized principal", since: logOffset),
            "\(sshdLogSince(logOffset))")

        // 4. Expired: a 1-second certificate, used after it ends.
        try e.keygen("expired")
        let expiring = try e.json([
            "ssh", "issue-user-cert", "--ca", userCAID, "--public-key", work + "/expired.pub", "--principal", login,
            "--ttl", "1s",
        ])
        let expiresAt = try #require(ISO8601DateFormatter().date(from: expiring["validBefore"] as? String ?? ""))
        // The certificate's validity is [now - 60 s, now + 1 s]; wait until its end has passed by the clock.
        while Date() < expiresAt.addingTimeInterval(1) { usleep(100_000) }
        logOffset = sshdLogSize()
        let expired = try ssh("expired")
        #expect(expired.status != 0 && !expired.stdout.contains("gatehouse-ok"))
        #expect(sshdLogged("Certificate invalid: expired", since: logOffset), "\(sshdLogSince(logOffset))")

        // 5. Revoked: listed in the KRL (ssh-keygen -Q agrees) and refused by sshd; other certificates still work.
        try e.keygen("revoked")
        let revokedCert = try e.json([
            "ssh", "issue-user-cert", "--ca", userCAID, "--public-key", work + "/revoked.pub", "--principal", login,
        ])
        let before1 = try ssh("revoked")
        #expect(before1.status == 0, "\(before1.stderr)")
        _ = try e.ok(["ssh", "revoke", try #require(revokedCert["serial"] as? String)])
        _ = try e.ok(["ssh", "krl", userCAID, "--out", work + "/revoked.krl"])
        let query = try e.run([
            "ssh-keygen", "-Q", "-f", work + "/revoked.krl", work + "/revoked-cert.pub", work + "/good-cert.pub",
        ])
        let verdicts = query.stdout.split(separator: "\n")
        #expect(
            verdicts.contains { $0.contains("/revoked-cert.pub") && $0.hasSuffix(": REVOKED") },
            "\(query.stdout) \(query.stderr)")
        #expect(verdicts.contains { $0.contains("/good-cert.pub") && $0.hasSuffix(": ok") }, "\(query.stdout)")
        logOffset = sshdLogSize()
        let afterRevoke = try ssh("revoked")
        #expect(afterRevoke.status != 0 && !afterRevoke.stdout.contains("gatehouse-ok"))
        #expect(sshdLogged("revoked by file \(work)/revoked.krl", since: logOffset), "\(sshdLogSince(logOffset))")
        let stillGood = try ssh("good")
        #expect(stillGood.status == 0, "\(stillGood.stderr)")
        // The KRL is also public for hosts to fetch.
        let (_, _, krlCode) = try curl([
            "--cacert", daemon.dataDirectory + "/certs/ca.crt", daemon.httpsBase + "/ssh/krl/\(userCAID).krl",
        ])
        #expect(krlCode == 200)

        // 6. `gatehouse ssh connect` as alice (mapped through the host group) works; bob is refused.
        var tokens: [String: String] = [:]
        for name in ["alice", "bob"] {
            let identity = try e.json(["identity", "create", name])
            let id = try #require(identity["id"] as? String)
            let ua = try e.json(["identity", "universal-auth", id])
            let clientId = try #require(ua["clientId"] as? String)
            let secret = try e.ok(["identity", "client-secret", id]).trimmingCharacters(in: .whitespacesAndNewlines)
            tokens[name] = try e.ok(["login", "--client-id", clientId], env: ["GATEHOUSE_CLIENT_SECRET": secret])
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let connect = try e.cli(
            ["ssh", "connect", "127.0.0.1", "--", "-o", "BatchMode=yes", "echo", "connected-as-$(whoami)"],
            env: ["GATEHOUSE_TOKEN": tokens["alice"] ?? ""])
        #expect(connect.0 == 0 && connect.1.contains("connected-as-\(login)"), "connect: \(connect.2)")
        let refused = try e.cli(
            ["ssh", "connect", "127.0.0.1", "--", "-o", "BatchMode=yes", "true"],
            env: ["GATEHOUSE_TOKEN": tokens["bob"] ?? ""])
        #expect(refused.0 != 0 && refused.2.contains("HTTP 403"), "\(refused.2)")
        let wrongLogin = try e.cli(
            ["ssh", "connect", "127.0.0.1", "--login", "postgres", "--", "true"],
            env: ["GATEHOUSE_TOKEN": tokens["alice"] ?? ""])
        #expect(wrongLogin.0 != 0 && wrongLogin.2.contains("HTTP 403"))

        // Every issuance and the refusals are in the audit log.
        let audit = try e.ok(["audit", "tail", "-n", "300"])
        #expect(
            audit.contains("ssh.connect") && audit.contains("ssh.certificate.revoke")
                && audit.contains("authorization.denied"))
    }
}

/// A stock sshd started by a test. sshd closes every inherited descriptor at start, which Foundation's Process takes
/// for the child's exit (it then blocks in waitpid forever), so sshd is spawned with posix_spawn, with an empty
/// signal mask, and ended by its PID.
final class SSHD: @unchecked Sendable {
    private(set) var pid: pid_t = 0

    init(config: String, log: String) throws {
        let args = ["/usr/sbin/sshd", "-D", "-f", config, "-E", log]
        var attributes = CleanSignalSpawn.attributes()
        defer { posix_spawnattr_destroy(&attributes) }
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let rc = posix_spawn(&pid, args[0], nil, &attributes, &argv, environ)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
    }

    func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                return
            }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        pid = 0
    }
}
