import Foundation
import Synchronization
import TestSupport
import Testing

/// ACME (RFC 8555) against the daemon with certbot (register with EAB, certonly over http-01, renew, revoke) and
/// with a small client of our own for IP identifiers and the error paths (Tests/scripts/acme-client.py).
@Suite(.serialized) struct ACMETests {
    func cli(_ daemon: DaemonProcess, _ args: [String]) throws -> String {
        let out = try ProcessRunner.run(
            [ProcessRunner.gatehouseBinary] + args + ["--data-dir", daemon.dataDirectory], timeout: 60)
        #expect(out.status == 0, "gatehouse \(args.joined(separator: " ")): \(out.stderr)")
        return out.stdout
    }

    /// Project `web`, CA `ACME Root` (its certificate in WORK/acme-root.pem), a template for `*.localhost` and
    /// 127.0.0.0/8, and the ACME profile `web-acme`: returns the CA id and the profile's EAB key id and HMAC key.
    func acmeProfile(_ daemon: DaemonProcess, _ work: String) throws -> (caId: String, kid: String, hmac: String) {
        _ = try cli(daemon, ["project", "create", "web"])
        let caJSON = try cli(
            daemon,
            [
                "pki", "ca", "create", "--project", "web", "--cn", "ACME Root", "--key-algorithm", "EC_prime256v1",
                "--output", "json",
            ])
        let ca = try #require(try JSONSerialization.jsonObject(with: Data(caJSON.utf8)) as? [String: Any])
        let caId = try #require(ca["id"] as? String)
        try (ca["certificate"] as? String ?? "").write(
            toFile: work + "/acme-root.pem", atomically: true, encoding: .utf8)
        try
            #"{"name":"acme","subject":[{"type":"commonName","allowed":["*.localhost"]}],"sans":[{"type":"dns","allowed":["*.localhost","*.*.localhost"]},{"type":"ip","allowed":["127.0.0.0/8"]}],"keyUsages":["digitalSignature"],"extendedKeyUsages":["serverAuth"],"maxTTL":"90d"}"#
            .write(toFile: work + "/t.json", atomically: true, encoding: .utf8)
        let tJSON = try cli(
            daemon, ["pki", "template", "create", "--project", "web", "--file", work + "/t.json", "--output", "json"])
        let templateId = try #require(
            (try JSONSerialization.jsonObject(with: Data(tJSON.utf8)) as? [String: Any])?["id"] as? String)
        _ = try cli(
            daemon,
            [
                "pki", "profile", "create", "--project", "web", "--slug", "web-acme", "--ca", caId, "--template",
                templateId, "--enrollment", "acme",
            ])
        let eab = try cli(daemon, ["pki", "profile", "acme-eab", "web-acme"]).split(separator: "\n").map {
            $0.split(separator: " ")
        }
        let kid = String(try #require(eab.first { $0.first == "kid" }?.last))
        let hmac = String(try #require(eab.first { $0.first == "hmac-key" }?.last))
        return (caId, kid, hmac)
    }

    @Test func certbotRegistersGetsRenewsAndRevokesAndErrorPathsAreProtocolCorrect() throws {
        let env = ProcessInfo.processInfo.environment
        guard let certbot = env["CERTBOT_BIN"], let python = env["ACME_PYTHON"] else {
            if dependencyRequired("CERTBOT") { Issue.record("CERTBOT_BIN / ACME_PYTHON are not set") }
            return
        }
        let dir = try freshDirectory()
        let work = dir.path
        let http01 = try freeLoopbackPort()
        // pebble-challtestsrv (Debian's pebble package) is the DNS server dns-01 validation asks.
        let dnsPort = try freeLoopbackPort()
        let dnsManagement = try freeLoopbackPort()
        let alpnPort = try freeLoopbackPort()
        let dns = Process()
        dns.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        dns.arguments = [
            "pebble-challtestsrv", "-dns01", "127.0.0.1:\(dnsPort)", "-management", "127.0.0.1:\(dnsManagement)",
            "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", "",
        ]
        dns.standardOutput = FileHandle.nullDevice
        dns.standardError = FileHandle.nullDevice
        try dns.run()
        defer {
            kill(dns.processIdentifier, SIGKILL)
            dns.waitUntilExit()
        }
        let daemon = try DaemonProcess(
            directory: work,
            environment: [
                "GATEHOUSE_ACME_HTTP01_PORT": "\(http01)", "GATEHOUSE_ACME_DNS_RESOLVER": "127.0.0.1:\(dnsPort)",
                "GATEHOUSE_ACME_TLSALPN01_PORT": "\(alpnPort)", "GATEHOUSE_ACME_ORDERS_PER_IDENTIFIER_PER_HOUR": "4",
                "GATEHOUSE_ACME_WEBSITE": "https://pki.example.test/",
                "GATEHOUSE_ACME_CAA_IDENTITIES": "pki.example.test, gatehouse.test",
            ])
        try daemon.waitUntilListening()
        let (caId, kid, hmac) = try acmeProfile(daemon, work)
        let directory = daemon.httpsBase + "/acme/web-acme/directory"
        let caBundle = daemon.dataDirectory + "/certs/ca.crt"
        let certbotEnv = ["REQUESTS_CA_BUNDLE": caBundle, "CURL_CA_BUNDLE": ""]
        let common = [
            "--server", directory, "--config-dir", work + "/cb/etc", "--work-dir", work + "/cb/work", "--logs-dir",
            work + "/cb/logs", "--non-interactive",
        ]

        // certbot: register with EAB and get a certificate over http-01.
        let issued = try ProcessRunner.run(
            [certbot, "certonly"] + common + [
                "--standalone", "--http-01-address", "127.0.0.1", "--http-01-port", "\(http01)",
                "--preferred-challenges", "http-01",
                "--agree-tos", "-m", "ops@example.org", "-d", "test.localhost", "--key-type", "ecdsa", "--eab-kid", kid,
                "--eab-hmac-key", hmac,
            ], environment: certbotEnv, timeout: 180)
        #expect(issued.status == 0, "certbot certonly: \(issued.stdout)\(issued.stderr)")
        let live = work + "/cb/etc/live/test.localhost"
        let verify = try ProcessRunner.run([
            "openssl", "verify", "-CAfile", work + "/acme-root.pem", live + "/cert.pem",
        ])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let text = try ProcessRunner.run(["openssl", "x509", "-in", live + "/cert.pem", "-noout", "-text"]).stdout
        #expect(
            text.contains("DNS:test.localhost") && text.contains("TLS Web Server Authentication")
                && text.contains("Digital Signature"))
        let serial1 = try ProcessRunner.run(["openssl", "x509", "-in", live + "/cert.pem", "-noout", "-serial"]).stdout

        // Renewal, forced, without certbot's random sleep.
        let renewed = try ProcessRunner.run(
            [certbot, "renew", "--force-renewal", "--no-random-sleep-on-renew"] + common.dropFirst(2),
            environment: certbotEnv, timeout: 180)
        #expect(
            renewed.status == 0 && (renewed.stdout + renewed.stderr).contains("all renewals succeeded"),
            "\(renewed.stdout)\(renewed.stderr)")
        let serial2 = try ProcessRunner.run(["openssl", "x509", "-in", live + "/cert.pem", "-noout", "-serial"]).stdout
        #expect(serial1 != serial2 && !serial2.isEmpty)

        // Revocation: the certificate shows as revoked in the engine.
        let revoked = try ProcessRunner.run(
            [certbot, "revoke"] + common + [
                "--cert-path", live + "/cert.pem", "--reason", "keycompromise", "--no-delete-after-revoke",
            ],
            environment: certbotEnv, timeout: 120)
        #expect(revoked.status == 0, "certbot revoke: \(revoked.stdout)\(revoked.stderr)")
        let listing = try cli(daemon, ["pki", "certs", "--project", "web"])
        let hex = serial2.replacingOccurrences(of: "serial=", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
            .lowercased()
        #expect(listing.split(separator: "\n").contains { $0.contains(hex) && $0.contains("revoked") }, "\(listing)")
        // …and to relying parties, reason included: OpenSSL's OCSP client at the certificate's responder, and the CRL
        // at its distribution point with `openssl verify -crl_check`.
        let ocspURL = daemon.httpsBase.replacingOccurrences(of: "localhost", with: "127.0.0.1") + "/pki/ocsp"
        let ocsp = try ProcessRunner.run(
            [
                "openssl", "ocsp", "-issuer", work + "/acme-root.pem", "-cert", live + "/cert.pem", "-url", ocspURL,
                "-CAfile", work + "/acme-root.pem",
            ],
            timeout: 30)
        let ocspText = ocsp.stdout + ocsp.stderr
        #expect(
            ocspText.contains("Response verify OK") && ocspText.contains("cert.pem: revoked")
                && ocspText.contains("keyCompromise"), "\(ocspText)")
        let crlURL = try #require(
            try ProcessRunner.run([
                "openssl", "x509", "-in", live + "/cert.pem", "-noout", "-ext", "crlDistributionPoints",
            ]).stdout
                .split(separator: "\n").compactMap { line in
                    line.range(of: "URI:").map { String(line[$0.upperBound...]) }
                }.first,
            "no CRL distribution point")
        let (_, _, crlCode) = try curl([
            "--cacert", daemon.dataDirectory + "/certs/ca.crt", "-o", work + "/acme.crl.der", crlURL,
        ])
        #expect(crlCode == 200, "\(crlURL)")
        _ = try ProcessRunner.run([
            "openssl", "crl", "-inform", "DER", "-in", work + "/acme.crl.der", "-out", work + "/acme.crl.pem",
        ])
        let crlText = try ProcessRunner.run(["openssl", "crl", "-in", work + "/acme.crl.pem", "-noout", "-text"]).stdout
        #expect(crlText.uppercased().contains(hex.uppercased()) && crlText.contains("Key Compromise"), "\(crlText)")
        let crlCheck = try ProcessRunner.run(
            [
                "openssl", "verify", "-crl_check", "-CAfile", work + "/acme-root.pem", "-CRLfile",
                work + "/acme.crl.pem", live + "/cert.pem",
            ])
        #expect(
            crlCheck.status != 0 && (crlCheck.stdout + crlCheck.stderr).contains("certificate revoked"),
            "\(crlCheck.stdout)\(crlCheck.stderr)")

        // A second ACME profile on the same CA (names only, 7-day certificates): the directory offers both
        // (meta.profiles) and newOrder may choose it.
        try
            #"{"name":"acme-short","subject":[{"type":"commonName","allowed":["*.localhost"]}],"sans":[{"type":"dns","allowed":["*.localhost"]}],"keyUsages":["digitalSignature"],"extendedKeyUsages":["serverAuth"],"maxTTL":"7d"}"#
            .write(toFile: work + "/t2.json", atomically: true, encoding: .utf8)
        let t2JSON = try cli(
            daemon, ["pki", "template", "create", "--project", "web", "--file", work + "/t2.json", "--output", "json"])
        let template2 = try #require(
            (try JSONSerialization.jsonObject(with: Data(t2JSON.utf8)) as? [String: Any])?["id"] as? String)
        _ = try cli(
            daemon,
            [
                "pki", "profile", "create", "--project", "web", "--slug", "web-acme-short", "--ca", caId, "--template",
                template2, "--enrollment", "acme",
            ])

        // Our own client: IP identifiers, profiles and the error paths.
        let own = try ProcessRunner.run(
            [
                python, ProcessRunner.repositoryRoot + "/Tests/scripts/acme-client.py", directory, caBundle, kid, hmac,
                "\(http01)",
                "http://127.0.0.1:\(dnsManagement)", "\(alpnPort)",
            ], environment: ["ACME_SECOND_PROFILE": "web-acme-short"], timeout: 180)
        #expect(own.status == 0 && own.stdout.contains(" 0 failed"), "acme-client:\n\(own.stdout)\(own.stderr)")
        for step in [
            "PASS dns-01 validated", "PASS wildcard certificate issued", "PASS tls-alpn-01 validated",
            "PASS keyChange", "PASS renewalInfo", "PASS http-01 validated", "PASS directory meta",
            "PASS directory meta.profiles",
            "PASS newOrder with a profile",
            "PASS tls-alpn-01 validated with RSA, keyEncipherment only, TLS 1.2 (lego)",
            "PASS tls-alpn-01 validated with Ed25519", "PASS authorization deactivation -> 200 deactivated",
            "PASS a newOrder for the same name gets a new pending authorization",
            "PASS dns identifier 127.0.0.1 (an IP literal) -> rejectedIdentifier",
        ] {
            #expect(own.stdout.contains(step), "acme-client did not run '\(step)':\n\(own.stdout)")
        }
        let (_, audit, _) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/audit/events?limit=1000"])
        for event in [
            "acme.account.create", "acme.order.create", "acme.challenge.valid", "acme.order.finalize",
            "acme.certificate.revoke", "acme.account.refused",
        ] {
            #expect(audit.contains(event), "audit lacks \(event)")
        }
        #expect(!daemon.log.contains(hmac), "the EAB key never reaches the log")
    }

    /// A challenge being validated when the daemon is killed (-9) stays `processing` in the store with a lease; the
    /// daemon that comes back claims it once the lease lapses and finishes it (what another node would do too).
    @Test func aValidationInFlightWhenTheDaemonIsKilledIsFinishedAfterTheRestart() throws {
        guard let python = ProcessInfo.processInfo.environment["ACME_PYTHON"] else {
            if dependencyRequired("CERTBOT") { Issue.record("ACME_PYTHON is not set") }
            return
        }
        let dir = try freshDirectory()
        let work = dir.path
        let http01 = try freeLoopbackPort()
        let environment = ["GATEHOUSE_ACME_HTTP01_PORT": "\(http01)", "GATEHOUSE_ACME_VALIDATION_LEASE": "2s"]
        let first = try DaemonProcess(directory: work, environment: environment)
        try first.waitUntilListening()
        let (_, kid, hmac) = try acmeProfile(first, work)
        let state = work + "/resume"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let client = Mutex<ProcessRunner.Output?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let command = [
            python, ProcessRunner.repositoryRoot + "/Tests/scripts/acme-client.py",
            first.httpsBase + "/acme/web-acme/directory",
            first.dataDirectory + "/certs/ca.crt", kid, hmac, "\(http01)",
        ]
        DispatchQueue.global().async {
            let out = try? ProcessRunner.run(command, environment: ["ACME_RESUME_DIR": state], timeout: 240)
            client.withLock { $0 = out }
            finished.signal()
        }
        let deadline = Date().addingTimeInterval(90)
        while !FileManager.default.fileExists(atPath: state + "/answered"), Date() < deadline { usleep(100_000) }
        #expect(FileManager.default.fileExists(atPath: state + "/answered"), "the client never answered its challenge")
        usleep(1_000_000)  // the retries are under way, each waiting on the hung answer
        first.signal(SIGKILL)
        first.waitForExit()
        let second = try DaemonProcess(directory: work, environment: environment)
        defer { second.stop() }
        try second.waitUntilListening()
        try (second.httpsBase + "/acme/web-acme/directory").write(
            toFile: state + "/restarted", atomically: true, encoding: .utf8)
        #expect(finished.wait(timeout: .now() + 240) == .success, "the client did not finish")
        let out = client.withLock { $0 }
        #expect(
            out?.status == 0
                && out?.stdout.contains("PASS after kill -9 and a restart the validation is finished") == true,
            "acme-client:\n\(out?.stdout ?? "")\(out?.stderr ?? "")")
        #expect(second.log.contains("resuming an ACME validation"), "\(second.log)")
        let validated = try auditLog(second).events.compactMap { $0["event"] as? [String: Any] }
            .filter { ($0["type"] as? String) == "acme.challenge.valid" }
        #expect(validated.count == 1, "one acme.challenge.valid event, by the validator: \(validated)")
    }
}
