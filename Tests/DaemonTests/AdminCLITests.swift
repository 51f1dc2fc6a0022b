import Crypto
import Foundation
import ServerSupport
import TestSupport
import Testing
import X509

/// The `gatehouse` CLI and the identity endpoints end to end against a running daemon.
@Suite(.serialized) struct AdminCLITests {
    func cli(_ daemon: DaemonProcess, _ args: [String], env: [String: String] = [:], stdin: String? = nil) throws -> (
        Int32, String, String
    ) {
        let out = try ProcessRunner.run(
            [ProcessRunner.gatehouseBinary] + args + ["--data-dir", daemon.dataDirectory], environment: env,
            stdin: stdin.map { Data($0.utf8) }, timeout: 60)
        return (out.status, out.stdout.trimmingCharacters(in: .whitespacesAndNewlines), out.stderr)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    @Test func machineIdentityLifecycleThroughTheCLI() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()

        let (s1, created, e1) = try cli(daemon, ["project", "create", "demo", "--description", "CLI test"])
        #expect(s1 == 0, "\(e1)")
        #expect(created.contains("demo"))
        _ = try cli(daemon, ["project", "create", "other"])
        let (dupStatus, _, dupErr) = try cli(daemon, ["project", "create", "demo"])
        #expect(dupStatus != 0 && dupErr.contains("HTTP 409"))

        let (s2, identityJSON, e2) = try cli(
            daemon, ["identity", "create", "billing-svc", "--metadata", "team=billing", "--output", "json"])
        #expect(s2 == 0, "\(e2)")
        let id = try #require(try json(identityJSON)["id"] as? String)
        let (_, uaJSON, _) = try cli(
            daemon, ["identity", "universal-auth", id, "--access-token-ttl", "600", "--output", "json"])
        let clientId = try #require(try json(uaJSON)["clientId"] as? String)
        let (_, secret, _) = try cli(daemon, ["identity", "client-secret", id])
        #expect(secret.hasPrefix("ghcs_"))
        let (s3, _, e3) = try cli(daemon, ["role", "assign", "--project", "demo", id, "developer"])
        #expect(s3 == 0, "\(e3)")
        let (_, table, _) = try cli(daemon, ["identity", "list"])
        #expect(table.contains("billing-svc") && table.contains("universal-auth") && table.hasPrefix("ID"))

        // Two `identity token` at once for an identity without Token Auth: one attaches it, and both get a token.
        for n in 0..<3 {
            let (_, racerJSON, _) = try cli(daemon, ["identity", "create", "racer-\(n)", "--output", "json"])
            let racer = try #require(try json(racerJSON)["id"] as? String)
            let g = "'\(ProcessRunner.gatehouseBinary)' identity token \(racer) --data-dir '\(daemon.dataDirectory)'"
            let both = try ProcessRunner.run(
                [
                    "bash", "-c",
                    "\(g) > \(dir.path)/a 2>&1 & p1=$!; \(g) > \(dir.path)/b 2>&1 & p2=$!; wait $p1; s1=$?; wait $p2; echo $s1 $?",
                ],
                timeout: 60)
            #expect(
                both.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0 0", "\(both.stdout) \(both.stderr)")
            for file in ["a", "b"] {
                let out = (try? String(contentsOfFile: dir.path + "/" + file, encoding: .utf8)) ?? ""
                #expect(out.hasPrefix("ghat_"), "racer \(n) \(file): \(out)")
            }
        }

        // Log in, then use the token (CLI and raw HTTP).
        let (s4, token, e4) = try cli(
            daemon, ["login", "--client-id", clientId], env: ["GATEHOUSE_CLIENT_SECRET": secret])
        #expect(s4 == 0 && token.hasPrefix("ghat_"), "\(e4)")
        let (_, who, _) = try cli(daemon, ["whoami", "--token-file", "-", "--output", "json"], stdin: token + "\n")
        #expect(try json(who)["identityId"] as? String == id)
        let (_, whoEnv, _) = try cli(daemon, ["whoami", "--output", "json"], env: ["GATEHOUSE_TOKEN": token])
        #expect(try json(whoEnv)["identityId"] as? String == id)
        // Secrets never on the command line, where `ps` shows them.
        for argv in [["whoami", "--token", token], ["login", "--client-id", clientId, "--client-secret", secret]] {
            let (status, _, err) = try cli(daemon, argv)
            #expect(status != 0 && err.contains("Unknown option"), "\(argv[0]): \(err)")
        }
        let ca = [
            "--cacert", daemon.dataDirectory + "/certs/ca.crt", "-H", "Authorization: Bearer \(token)", "-H",
            "Content-Type: application/json",
        ]
        let (_, _, createCode) = try curl(
            ca + ["-X", "POST", "-d", "{\"value\":\"v\"}", daemon.httpsBase + "/api/v1/projects/demo/secrets/db"])
        #expect(createCode == 201)
        let (_, _, crossCode) = try curl(ca + [daemon.httpsBase + "/api/v1/projects/other/secrets"])
        #expect(crossCode == 403)
        let (_, _, adminOnly) = try curl(ca + [daemon.httpsBase + "/api/v1/identities"])
        #expect(adminOnly == 403)

        // Wrong secret: a clear error; three in a row lock the identity (429) even for the right secret.
        let (badStatus, _, badErr) = try cli(
            daemon, ["login", "--client-id", clientId, "--client-secret-file", "-"], stdin: "ghcs_wrong\n")
        #expect(badStatus != 0 && badErr.contains("invalid client ID or client secret") && badErr.contains("HTTP 401"))
        for _ in 0..<2 {
            _ = try cli(daemon, ["login", "--client-id", clientId], env: ["GATEHOUSE_CLIENT_SECRET": "ghcs_wrong"])
        }
        let (_, lockedBody, lockedCode) = try curl(
            [
                "--cacert", daemon.dataDirectory + "/certs/ca.crt", "-H", "Content-Type: application/json", "-X",
                "POST",
                "-d", "{\"clientId\":\"\(clientId)\",\"clientSecret\":\"\(secret)\"}",
                daemon.httpsBase + "/api/v1/auth/universal-auth/login",
            ])
        #expect(lockedCode == 429 && lockedBody.contains("locked"))

        // Revoke the token: it stops working.
        let (_, _, revokeCode) = try curl(
            [
                "--cacert", daemon.dataDirectory + "/certs/ca.crt", "-X", "POST", "-d",
                "{\"accessToken\":\"\(token)\"}",
                daemon.httpsBase + "/api/v1/auth/token/revoke",
            ])
        #expect(revokeCode == 200)
        let (_, _, afterRevoke) = try curl(ca + [daemon.httpsBase + "/api/v1/whoami"])
        #expect(afterRevoke == 401)

        // Hostile input on the new endpoints.
        let plain = [
            "--cacert", daemon.dataDirectory + "/certs/ca.crt", "-X", "POST", "-H", "Content-Type: application/json",
        ]
        let (_, _, malformed) = try curl(
            plain + ["-d", "{nope", daemon.httpsBase + "/api/v1/auth/universal-auth/login"])
        #expect(malformed == 400)
        let bigFile = dir.path + "/big.json"
        try "{\"clientId\":\"\(String(repeating: "x", count: 2 << 20))\"}".write(
            toFile: bigFile, atomically: true, encoding: .utf8)
        let (_, _, oversize) = try curl(
            plain + ["--data-binary", "@" + bigFile, daemon.httpsBase + "/api/v1/auth/universal-auth/login"])
        #expect(oversize == 413)
        let (_, _, badBearer) = try curl([
            "--cacert", daemon.dataDirectory + "/certs/ca.crt", "-H", "Authorization: Basic abc",
            daemon.httpsBase + "/api/v1/whoami",
        ])
        #expect(badBearer == 401)

        // The audit log saw the logins, the lockout and the denials.
        let (_, audit, _) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/audit/events?limit=1000"])
        for type in ["login.universal-auth", "login.failed", "authorization.denied", "token.revoke", "membership.set"] {
            #expect(audit.contains("\"\(type)\""), "audit lacks \(type)")
        }
        #expect(!audit.contains(secret) && !audit.contains(token))
        #expect(daemon.stop() == 0)
    }

    @Test func tlsCertificateAuthWithTheIdentitysOwnCA() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        // A device CA that the listener itself does not trust.
        let deviceCA = try CertificateFactory.makeCA(commonName: "Device CA", validity: 86400)
        let caFile = dir.path + "/device-ca.crt"
        try deviceCA.certificatePEM.write(toFile: caFile, atomically: true, encoding: .utf8)
        let (_, identityJSON, _) = try cli(daemon, ["identity", "create", "sensor", "--output", "json"])
        let id = try #require(try json(identityJSON)["id"] as? String)
        let (s, _, e) = try cli(
            daemon, ["identity", "tls-cert-auth", id, "--ca-file", caFile, "--common-name", "sensor-01"])
        #expect(s == 0, "\(e)")
        _ = try cli(daemon, ["role", "assign", "--project", "p", id, "viewer"])

        let ca = ["--cacert", daemon.dataDirectory + "/certs/ca.crt"]
        let good = try CertificateFactory.issue(
            commonName: "sensor-01", usage: .client, issuer: deviceCA, validity: 3600)
        let goodArgs = ca + (try clientFiles(good, in: dir.path, name: "sensor"))
        let (_, who, whoCode) = try curl(goodArgs + [daemon.httpsBase + "/api/v1/whoami"])
        #expect(whoCode == 200 && who.contains(id))
        let (_, _, listCode) = try curl(goodArgs + [daemon.httpsBase + "/api/v1/projects/p/secrets"])
        #expect(listCode == 200)
        let (_, login, loginCode) = try curl(
            goodArgs + [
                "-X", "POST", "-H", "Content-Type: application/json", "-d", "{\"identityId\":\"\(id)\"}",
                daemon.httpsBase + "/api/v1/auth/tls-cert-auth/login",
            ])
        #expect(loginCode == 200 && login.contains("ghat_"))

        // Right CA, disallowed name; allowed name, wrong CA: refused with 401.
        let wrongName = try CertificateFactory.issue(
            commonName: "sensor-02", usage: .client, issuer: deviceCA, validity: 3600)
        let (_, _, wrongNameCode) = try curl(
            ca + (try clientFiles(wrongName, in: dir.path, name: "wrongname")) + [daemon.httpsBase + "/api/v1/whoami"])
        #expect(wrongNameCode == 401)
        let rogueCA = try CertificateFactory.makeCA(commonName: "Rogue CA", validity: 86400)
        let rogue = try CertificateFactory.issue(
            commonName: "sensor-01", usage: .client, issuer: rogueCA, validity: 3600)
        let rogueArgs = ca + (try clientFiles(rogue, in: dir.path, name: "rogue"))
        let (_, _, rogueCode) = try curl(rogueArgs + [daemon.httpsBase + "/api/v1/whoami"])
        #expect(rogueCode == 401)
        let (_, _, rogueLogin) = try curl(
            rogueArgs + [
                "-X", "POST", "-H", "Content-Type: application/json", "-d", "{\"identityId\":\"\(id)\"}",
                daemon.httpsBase + "/api/v1/auth/tls-cert-auth/login",
            ])
        #expect(rogueLogin == 401)
        // A rogue certificate claiming the administrator's name is not an administrator.
        let fakeAdmin = try CertificateFactory.issue(
            commonName: "gatehouse-admin", usage: .client, issuer: rogueCA, validity: 3600)
        let (_, _, fakeCode) = try curl(
            ca + (try clientFiles(fakeAdmin, in: dir.path, name: "fake")) + [daemon.httpsBase + "/api/v1/identities"])
        #expect(fakeCode == 401)
        #expect(daemon.stop() == 0)
    }

    @Test func everyListPaginates() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        for i in 0..<3 {
            _ = try cli(
                daemon,
                [
                    "role", "create", "--project", "p", "r\(i)", "--permissions",
                    "[{\"subject\":\"secrets\",\"actions\":[\"read\"]}]",
                ])
        }
        // 3 built-in + 3 custom roles, two at a time, following `next`.
        var seen: [String] = []
        var after: String?
        for _ in 0..<10 {
            let url = daemon.httpsBase + "/api/v1/projects/p/roles?limit=2" + (after.map { "&after=\($0)" } ?? "")
            let (_, body, code) = try curl(daemon.adminCurl + [url])
            #expect(code == 200)
            let page = try json(body)
            let roles = (page["roles"] as? [[String: Any]] ?? []).compactMap { $0["slug"] as? String }
            #expect(roles.count <= 2)
            seen += roles
            after = page["next"] as? String
            if after == nil { break }
        }
        #expect(seen == ["admin", "developer", "r0", "r1", "r2", "viewer"])
        let (_, _, bad) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/projects/p/roles?limit=0"])
        #expect(bad == 400)
        #expect(daemon.stop() == 0)
    }

    @Test func servesItsOpenAPIDocument() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let (_, body, code) = try curl([
            "--cacert", daemon.dataDirectory + "/certs/ca.crt", daemon.httpsBase + "/api/v1/openapi.json",
        ])
        #expect(code == 200)
        #expect(try json(body)["openapi"] as? String == "3.1.0")
        let printed = try ProcessRunner.run([ProcessRunner.gatehouseBinary, "openapi"], timeout: 30).stdout
        #expect(try json(printed)["openapi"] as? String == "3.1.0")
        #expect(daemon.stop() == 0)
    }
}
