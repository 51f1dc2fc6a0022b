import Foundation
import TestSupport
import Testing

/// The private CA through the `gatehouse pki` CLI against a running daemon, checked with openssl: CA hierarchy,
/// an intermediate signed by an external CA (openssl playing that CA), CSR and CSR-less issuance, PKCS#12 export,
/// revocation.
@Suite(.serialized) struct PKICLITests {
    func cli(_ daemon: DaemonProcess, _ args: [String], env: [String: String] = [:]) throws -> String {
        let out = try ProcessRunner.run(
            [ProcessRunner.gatehouseBinary] + args + ["--data-dir", daemon.dataDirectory], environment: env, timeout: 60
        )
        #expect(out.status == 0, "gatehouse \(args.joined(separator: " ")): \(out.stderr)")
        return out.stdout
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    func openssl(_ args: [String], cwd: String, env: [String: String] = [:]) throws -> (Int32, String) {
        let out = try ProcessRunner.run(["openssl"] + args, cwd: cwd, environment: env)
        return (out.status, out.stdout + out.stderr)
    }

    @Test func hierarchyIssuanceExportAndRevocationThroughTheCLI() throws {
        let dir = try freshDirectory()
        let work = dir.path
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        _ = try cli(daemon, ["project", "create", "web"])

        let root = try json(
            try cli(
                daemon,
                [
                    "pki", "ca", "create", "--project", "web", "--cn", "Web Root", "--org", "Acme", "--country", "DE",
                    "--key-algorithm", "EC_secp384r1", "--max-path-length", "1", "--output", "json",
                ]))
        let rootID = try #require(root["id"] as? String)
        let issuing = try json(
            try cli(
                daemon,
                [
                    "pki", "ca", "create", "--project", "web", "--type", "intermediate", "--cn", "Web Issuing",
                    "--parent", rootID,
                    "--key-algorithm", "RSA_2048", "--ttl", "365d", "--output", "json",
                ]))
        let issuingID = try #require(issuing["id"] as? String)
        #expect(issuing["maxPathLength"] as? Int == 0)

        // An intermediate for an external CA: export its CSR, let openssl sign it as "the corporate CA", import.
        let pending = try json(
            try cli(
                daemon,
                [
                    "pki", "ca", "create", "--project", "web", "--type", "intermediate", "--cn", "Partner Issuing",
                    "--key-algorithm", "EC_prime256v1", "--output", "json",
                ]))
        let pendingID = try #require(pending["id"] as? String)
        #expect(pending["status"] as? String == "pending-certificate")
        try cli(daemon, ["pki", "ca", "csr", pendingID]).write(
            toFile: work + "/partner.csr", atomically: true, encoding: .utf8)
        _ = try openssl(
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "corp.key",
                "-out", "corp.pem", "-subj", "/CN=Corporate Root", "-days", "30",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ], cwd: work)
        try "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
            .write(toFile: work + "/ext.cnf", atomically: true, encoding: .utf8)
        let (signStatus, signOut) = try openssl(
            [
                "x509", "-req", "-in", "partner.csr", "-CA", "corp.pem", "-CAkey", "corp.key",
                "-CAcreateserial", "-days", "20", "-extfile", "ext.cnf", "-out", "partner.pem",
            ], cwd: work)
        #expect(signStatus == 0, "\(signOut)")
        let imported = try json(
            try cli(
                daemon,
                [
                    "pki", "ca", "import", pendingID, "--certificate", work + "/partner.pem", "--chain",
                    work + "/corp.pem", "--output", "json",
                ]))
        #expect(imported["status"] as? String == "active")

        // Template from a JSON file; API profiles on the RSA intermediate and on the partner CA.
        try
            #"{"name":"web","subject":[{"type":"commonName","allowed":["*.acme.test"]}],"sans":[{"type":"dns","allowed":["*.acme.test"]},{"type":"ip","allowed":["127.0.0.0/8"]}],"keyUsages":["digitalSignature","keyEncipherment"],"extendedKeyUsages":["serverAuth"],"maxTTL":"90d"}"#
            .write(toFile: work + "/template.json", atomically: true, encoding: .utf8)
        let template = try json(
            try cli(
                daemon,
                [
                    "pki", "template", "create", "--project", "web", "--file", work + "/template.json", "--output",
                    "json",
                ]))
        let templateID = try #require(template["id"] as? String)
        _ = try cli(
            daemon,
            [
                "pki", "profile", "create", "--project", "web", "--slug", "web-servers", "--ca", issuingID,
                "--template", templateID,
            ])
        _ = try cli(
            daemon,
            [
                "pki", "profile", "create", "--project", "web", "--slug", "partner", "--ca", pendingID, "--template",
                templateID,
            ])

        // CSR-less: key written once with mode 0600, chain verifies with openssl.
        _ = try cli(
            daemon,
            [
                "pki", "issue", "web-servers", "--cn", "www.acme.test", "--san", "dns:www.acme.test", "--san",
                "ip:127.0.0.1",
                "--key-algorithm", "EC_prime256v1", "--ttl", "30d", "--out", work + "/www",
            ])
        let keyMode =
            try FileManager.default.attributesOfItem(atPath: work + "/www/private-key.pem")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        let (verifyStatus, verifyOut) = try openssl(
            ["verify", "-CAfile", "www/chain.pem", "www/certificate.pem"], cwd: work)
        #expect(verifyStatus == 0, "\(verifyOut)")
        let (_, text) = try openssl(["x509", "-in", "www/certificate.pem", "-noout", "-text"], cwd: work)
        #expect(
            text.contains("IP Address:127.0.0.1") && text.contains("TLS Web Server Authentication")
                && text.contains("sha256WithRSAEncryption"))
        // From a CSR, on the externally signed CA: verifies up to the corporate root.
        _ = try openssl(
            [
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "api.key",
                "-out", "api.csr", "-subj", "/CN=api.acme.test", "-addext", "subjectAltName=DNS:api.acme.test",
            ], cwd: work)
        _ = try cli(daemon, ["pki", "issue", "partner", "--csr", work + "/api.csr", "--out", work + "/api"])
        #expect(!FileManager.default.fileExists(atPath: work + "/api/private-key.pem"))
        let (partnerStatus, partnerOut) = try openssl(
            ["verify", "-CAfile", "corp.pem", "-untrusted", "partner.pem", "api/certificate.pem"], cwd: work)
        #expect(partnerStatus == 0, "\(partnerOut)")
        // Policy from the CLI: the error names the rule.
        let refused = try ProcessRunner.run(
            [
                ProcessRunner.gatehouseBinary, "pki", "issue", "web-servers", "--cn", "evil.example.com", "--out",
                work + "/x", "--data-dir", daemon.dataDirectory,
            ])
        #expect(
            refused.status != 0 && refused.stderr.contains("matches no allowed pattern")
                && refused.stderr.contains("HTTP 403"), "\(refused.stderr)")

        // PKCS#12: openssl reads it with the password, finds the alias, the key and the chain; a wrong password fails.
        let serial = try openssl(["x509", "-in", "www/certificate.pem", "-noout", "-serial"], cwd: work).1
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
        _ = try cli(
            daemon, ["pki", "export", serial, "--pkcs12", work + "/www.p12", "--alias", "www-acme"],
            env: ["GATEHOUSE_PKCS12_PASSWORD": "p12-secret"])
        let (p12Status, p12Out) = try openssl(
            ["pkcs12", "-in", "www.p12", "-passin", "pass:p12-secret", "-nodes", "-info"], cwd: work)
        #expect(p12Status == 0, "\(p12Out)")
        #expect(p12Out.contains("friendlyName: www-acme"))
        #expect(p12Out.contains("BEGIN PRIVATE KEY"))
        #expect(p12Out.components(separatedBy: "BEGIN CERTIFICATE").count - 1 == 3, "leaf, intermediate, root")
        #expect(
            p12Out.contains("PBES2") && p12Out.contains("AES-256-CBC"),
            "modern PKCS#12 encryption: \(p12Out.prefix(600))")
        let (wrongStatus, _) = try openssl(["pkcs12", "-in", "www.p12", "-passin", "pass:wrong", "-nodes"], cwd: work)
        #expect(wrongStatus != 0)
        // Without a server-held key (CSR issuance) there is nothing to export.
        let apiSerial = try openssl(["x509", "-in", "api/certificate.pem", "-noout", "-serial"], cwd: work).1
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
        let noKey = try ProcessRunner.run(
            [
                ProcessRunner.gatehouseBinary, "pki", "export", apiSerial, "--pkcs12", work + "/api.p12", "--data-dir",
                daemon.dataDirectory,
            ],
            environment: ["GATEHOUSE_PKCS12_PASSWORD": "x"])
        #expect(noKey.status != 0 && noKey.stderr.contains("HTTP 409"), "\(noKey.stderr)")

        // Revocation through the CLI shows in the listing and in the CRL.
        _ = try cli(daemon, ["pki", "revoke", serial, "--reason", "cessationOfOperation"])
        let listing = try cli(daemon, ["pki", "certs", "--project", "web"])
        #expect(listing.contains(serial.lowercased()) && listing.contains("revoked"), "\(listing)")
        // Filtered listings through the indexes: by status, by name (CN or SAN, any case), by expiry window.
        let revokedOnly = try cli(daemon, ["pki", "certs", "--project", "web", "--status", "revoked"])
        #expect(
            revokedOnly.contains(serial.lowercased()) && !revokedOnly.contains(apiSerial.lowercased()), "\(revokedOnly)"
        )
        let byName = try cli(daemon, ["pki", "certs", "--project", "web", "--name", "API.acme.test"])
        #expect(byName.contains(apiSerial.lowercased()) && !byName.contains(serial.lowercased()), "\(byName)")
        let past = try cli(daemon, ["pki", "certs", "--project", "web", "--expires-before", "2020-01-01T00:00:00Z"])
        #expect(!past.contains(serial.lowercased()) && !past.contains(apiSerial.lowercased()), "\(past)")
        let (_, badStatus, badCode) = try curl(
            daemon.adminCurl + [daemon.httpsBase + "/api/v1/projects/web/pki/certificates?status=lost"])
        #expect(badCode == 400 && badStatus.contains("status must be"), "\(badStatus)")
        let (_, _, crlCode) = try curl([
            "--cacert", daemon.dataDirectory + "/certs/ca.crt", "-o", work + "/issuing.crl",
            daemon.httpsBase + "/pki/crl/\(issuingID).crl",
        ])
        #expect(crlCode == 200)
        let (_, crlText) = try openssl(["crl", "-inform", "DER", "-in", "issuing.crl", "-noout", "-text"], cwd: work)
        #expect(crlText.contains(serial.uppercased()) && crlText.contains("Cessation Of Operation"), "\(crlText)")
        // The secrets never reach the daemon's log.
        #expect(!daemon.log.contains("p12-secret") && !daemon.log.contains("BEGIN PRIVATE KEY"))
    }

    @Test func expiryAlertsReachTheWebhookOnce() throws {
        let dir = try freshDirectory()
        let (receiver, port, logFile) = try startWebhookReceiver(in: dir.path, failFirst: 1)
        defer {
            kill(receiver.processIdentifier, SIGKILL)
            receiver.waitUntilExit()
        }
        #expect(!port.isEmpty)
        let daemon = try DaemonProcess(directory: dir.path, environment: ["GATEHOUSE_PKI_ALERT_INTERVAL": "1s"])
        try daemon.waitUntilListening()
        _ = try cli(daemon, ["project", "create", "ops"])
        let ca = try json(
            try cli(
                daemon,
                [
                    "pki", "ca", "create", "--project", "ops", "--cn", "Ops Root", "--key-algorithm", "EC_prime256v1",
                    "--output", "json",
                ]))
        try #"{"name":"t","subject":[{"type":"commonName","allowed":["**"]}],"sans":[],"maxTTL":"365d"}"#
            .write(toFile: dir.path + "/t.json", atomically: true, encoding: .utf8)
        let t = try json(
            try cli(
                daemon,
                ["pki", "template", "create", "--project", "ops", "--file", dir.path + "/t.json", "--output", "json"]))
        _ = try cli(
            daemon,
            [
                "pki", "profile", "create", "--project", "ops", "--slug", "ops", "--ca",
                try #require(ca["id"] as? String),
                "--template", try #require(t["id"] as? String),
            ])
        let soon = try json(
            try cli(daemon, ["pki", "issue", "ops", "--cn", "expiring.ops", "--ttl", "5d", "--output", "json"]))
        let serial = try #require((soon["certificate"] as? [String: Any])?["serialNumber"] as? String)
        _ = try cli(daemon, ["pki", "issue", "ops", "--cn", "fine.ops", "--ttl", "200d", "--output", "json"])
        let (_, created, code) = try curl(
            daemon.adminCurl + [
                "-H", "Content-Type: application/json", "-X", "POST", "-d",
                #"{"name":"two-weeks","alertBefore":"14d","recipients":["http://127.0.0.1:\#(port)/expiry"]}"#,
                daemon.httpsBase + "/api/v1/projects/ops/pki/alerts",
            ])
        #expect(code == 201, "\(created)")
        // The receiver refuses the first POST (503): the notice is retried by a later run, then delivered once.
        var lines: [String] = []
        for _ in 0..<150 {
            lines = ((try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "").split(separator: "\n").map(
                String.init)
            if lines.filter({ $0.contains("\"status\": 204") }).count >= 1 { break }
            usleep(200_000)
        }
        usleep(2_500_000)  // a few more runs: nothing new may arrive
        lines = ((try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        let delivered = lines.filter { $0.contains("\"status\": 204") }
        #expect(delivered.count == 1, "\(lines)")
        #expect(delivered.first?.contains(serial) == true && delivered.first?.contains("certificate.expiring") == true)
        #expect(!lines.joined().contains("fine.ops"))
        #expect(daemon.log.contains("certificate expiring"))
    }
}
