import Foundation
import KMIPProtocol
import ServerSupport
import TestSupport
import Testing

/// The KMIP listener of the running daemon, driven by PyKMIP 0.11.0's client and by hostile peers.
@Suite(.serialized) struct KMIPListenerTests {
    @Test func pykmipClientDiscoversVersionsAndQueries() throws {
        guard let python = ProcessInfo.processInfo.environment["PYKMIP_PYTHON"] else {
            if dependencyRequired("PYKMIP") { Issue.record("PYKMIP_PYTHON is not set") }
            return
        }
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let c = daemon.dataDirectory + "/certs"
        let out = try ProcessRunner.run(
            [
                python, ProcessRunner.repositoryRoot + "/Tests/scripts/pykmip-client.py", "127.0.0.1",
                String(daemon.ports["kmip"] ?? 0),
                c + "/ca.crt", c + "/admin.crt", c + "/admin.key",
            ], timeout: 60)
        #expect(out.status == 0, "\(out.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        #expect(json?["discover_status"] as? String == "SUCCESS")
        #expect(json?["versions"] as? [String] == ["2.1", "2.0", "1.4", "1.3", "1.2", "1.1", "1.0"])
        #expect(json?["discover_filtered"] as? [String] == ["1.2"])
        #expect(json?["query_status"] as? String == "SUCCESS")
        let operations = Set(json?["operations"] as? [String] ?? [])
        #expect(
            operations.isSuperset(of: [
                "CREATE", "REGISTER", "GET", "LOCATE", "ACTIVATE", "REVOKE", "DESTROY", "ENCRYPT", "DECRYPT", "MAC",
                "DISCOVER_VERSIONS", "QUERY",
            ]))
        #expect(json?["vendor"] as? String == "Gatehouse")
        let capabilities = json?["capabilities"] as? [String: Any]
        #expect(
            capabilities?["streaming"] as? Bool == true && capabilities?["asynchronous"] as? Bool == false,
            "\(json ?? [:])")
        #expect(
            capabilities?["unwrap_mode"] as? String == "NOT_PROCESSED"
                && capabilities?["destroy_action"] as? String == "KEY_MATERIAL_DELETED")
        #expect(capabilities?["rng_mode"] as? String == "SHARED_INSTANTIATION")
        #expect(json?["rngs"] as? [String] == ["UNSPECIFIED"])
        #expect(json?["create"] as? String == "succeeded")
        #expect(daemon.stop() == 0)
    }

    func pykmip() -> String? {
        guard let python = ProcessInfo.processInfo.environment["PYKMIP_PYTHON"] else {
            if dependencyRequired("PYKMIP") { Issue.record("PYKMIP_PYTHON is not set") }
            return nil
        }
        return python
    }

    /// Runs `gatehouse kmip client create NAME --project P … --out DIR` against the daemon's data directory.
    func clientCreate(_ daemon: DaemonProcess, _ name: String, project: String, _ extra: [String], out: String) throws
        -> ProcessRunner.Output
    {
        try ProcessRunner.run(
            [ProcessRunner.gatehouseBinary, "kmip", "client", "create", name, "--project", project] + extra
                + ["--out", out, "--data-dir", daemon.dataDirectory], timeout: 120)
    }

    /// Creates an AES key with PyKMIP's client under the given certificate; returns its identifier (empty on failure,
    /// which is recorded).
    func createKey(_ python: String, _ daemon: DaemonProcess, ca: String, cert: String, key: String, name: String)
        throws -> String
    {
        let made = try ProcessRunner.run(
            [
                python, "-c",
                """
                import os, sys, warnings; warnings.filterwarnings("ignore")
                from kmip import enums; from kmip.pie import client as pc
                c = pc.ProxyKmipClient(hostname="127.0.0.1", port=int(sys.argv[1]), ca=sys.argv[2], cert=sys.argv[3], key=sys.argv[4], config_file=os.devnull)
                with c: print(c.create(enums.CryptographicAlgorithm.AES, 256, name=sys.argv[5]))
                """, String(daemon.ports["kmip"] ?? 0), ca, cert, key, name,
            ], timeout: 60)
        let uid = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(made.status == 0 && !uid.isEmpty, "\(made.stderr)")
        return uid
    }

    /// Runs Tests/scripts/pykmip-lifecycle.py and returns the steps that did not pass (empty = all passed).
    func lifecycle(_ python: String, _ daemon: DaemonProcess, version: String, cert: String, key: String) throws
        -> [String: String]
    {
        try lifecycleRun(python, daemon, version: version, cert: cert, key: key).failed
    }

    /// The lifecycle script's failed steps and the key bytes (hex) it got from or gave to the server.
    func lifecycleRun(_ python: String, _ daemon: DaemonProcess, version: String, cert: String, key: String) throws
        -> (failed: [String: String], material: [String])
    {
        let out = try ProcessRunner.run(
            [
                python, ProcessRunner.repositoryRoot + "/Tests/scripts/pykmip-lifecycle.py", "127.0.0.1",
                String(daemon.ports["kmip"] ?? 0),
                daemon.dataDirectory + "/certs/ca.crt", cert, key, version,
            ], timeout: 120)
        guard out.status == 0,
            let json = try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any],
            let steps = json["steps"] as? [String: String]
        else { return (["script": "exit \(out.status): \(out.stderr.suffix(2000))"], []) }
        #expect(steps.count >= 25, "all steps ran")
        return (steps.filter { $0.value != "ok" }, json["material"] as? [String] ?? [])
    }

    /// PyKMIP at every version it speaks: Get Attributes with no names (every attribute), Get Attribute List and a
    /// named Get Attributes, on a created key and a registered secret. Every answer holds only attributes the
    /// request's version defines (KMIPAttribute.firstVersion). Where PyKMIP itself cannot decode an attribute its
    /// version defines (it has no value type for Random Number Generator, 1.3, nor for Original Creation Date in its
    /// 2.0 attribute path), the named request and the list still have to succeed, and the failure must name exactly
    /// that attribute.
    @Test func pykmipGetAttributesAtEveryVersion() throws {
        guard let python = pykmip() else { return }
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let c = daemon.dataDirectory + "/certs"
        let out = try ProcessRunner.run(
            [
                python, ProcessRunner.repositoryRoot + "/Tests/scripts/pykmip-versions.py", "127.0.0.1",
                String(daemon.ports["kmip"] ?? 0), c + "/ca.crt", c + "/admin.crt", c + "/admin.key",
            ], timeout: 120)
        let json = try #require(
            try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: [String: Any]],
            "\(out.status): \(out.stdout)\(out.stderr.suffix(2000))")
        for label in ["1.0", "1.1", "1.2", "1.3", "1.4", "2.0"] {
            let row = try #require(json[label], "no answer for \(label)")
            #expect(row["error"] == nil, "KMIP \(label): \(row)")
            let objects = row["objects"] as? [[String: Any]] ?? []
            #expect(objects.count == 2, "KMIP \(label): \(row)")
            let parts = label.split(separator: ".").compactMap { Int32($0) }
            let version = ProtocolVersion(parts[0], parts[1])
            for (i, object) in objects.enumerated() {
                let all = object["all"] as? [String] ?? []
                let listed = object["list"] as? [String] ?? []
                #expect(object["list_error"] == nil && object["named_error"] == nil, "KMIP \(label): \(object)")
                #expect(object["named"] as? [String] == ["Cryptographic Usage Mask", "Object Type", "State"])
                for name in all + listed {
                    #expect(KMIPAttribute.isDefined(name, in: version), "KMIP \(label) answered \(name)")
                }
                #expect(listed.contains("Fresh") == (version >= ProtocolVersion(1, 1)), "KMIP \(label): \(listed)")
                #expect(listed.contains("Original Creation Date") == (version >= ProtocolVersion(1, 2)))
                #expect(listed.contains("Sensitive") == (version >= ProtocolVersion(1, 4)), "KMIP \(label)")
                let created = i == 0
                #expect(listed.contains("Random Number Generator") == (created && version >= ProtocolVersion(1, 3)))
                if let error = object["all_error"] as? String {
                    // PyKMIP names the attribute it cannot decode (Tags.SHORT_UNIQUE_IDENTIFIER, or "No value type
                    // for RANDOM_NUMBER_GENERATOR"); it must be one the request's version defines.
                    let tag = error.split(whereSeparator: { " .:".contains($0) }).last.map(String.init) ?? ""
                    let name = tag.split(separator: "_").map { $0.prefix(1) + $0.dropFirst().lowercased() }
                        .joined(separator: " ")
                    #expect(
                        KMIPAttribute.firstVersion[name] != nil && KMIPAttribute.isDefined(name, in: version)
                            && (version.major >= 2 || (created && name == "Random Number Generator")),
                        "KMIP \(label) object \(i): \(error)")
                } else {
                    #expect(
                        Set(all)
                            == Set(listed).subtracting([
                                "Sensitive", "Always Sensitive", "Extractable", "Never Extractable",
                            ]))
                }
            }
        }
        #expect(daemon.stop() == 0)
    }

    @Test(arguments: ["1.0", "1.1", "1.2", "1.3", "1.4", "2.0"])
    func pykmipKeyLifecycleAndCrypto(version: String) throws {
        guard let python = pykmip() else { return }
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let c = daemon.dataDirectory + "/certs"
        let (failed, material) = try lifecycleRun(
            python, daemon, version: version, cert: c + "/admin.crt", key: c + "/admin.key")
        #expect(failed.isEmpty, "KMIP \(version): \(failed)")
        // Every KMIP operation was audited, and no key material reached the audit log or the daemon's log, in hex or
        // base64.
        let (_, audit, _) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/audit/events?limit=1000"])
        for type in [
            "kms.create", "kms.register", "kms.get", "kms.locate", "kms.activate", "kms.encrypt", "kms.decrypt",
            "kms.mac",
            "kms.revoke", "kms.destroy",
        ] {
            #expect(audit.contains("\"\(type)\""), "audit lacks \(type)")
        }
        #expect(material.count == 2, "the script reports the created key's bytes and the registered key's: \(material)")
        let log = daemon.log
        let auditText = audit.replacingOccurrences(of: "\\/", with: "/")  // JSON may escape the "/" of base64
        for hex in material {
            let bytes = stride(from: 0, to: hex.count, by: 2).compactMap { i -> UInt8? in
                let s = hex.index(hex.startIndex, offsetBy: i)
                return UInt8(hex[s..<hex.index(s, offsetBy: 2)], radix: 16)
            }
            let base64 = Data(bytes).base64EncodedString()
            for text in [hex, hex.uppercased(), base64, String(base64.dropLast(2))] {
                #expect(!auditText.contains(text) && !log.contains(text), "key material (\(text.prefix(6))…) in a log")
            }
        }
        #expect(daemon.stop() == 0)
    }

    @Test func kmipClientIdentitiesAreScopedToTheirProject() throws {
        guard let python = pykmip() else { return }
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("storage")
        try daemon.ensureProject("backup")
        let ca = try applianceCA(daemon.dataDirectory)
        func client(_ cn: String, project: String, role: String) throws -> (String, String) {
            let (_, created, _) = try curl(
                daemon.adminCurl + [
                    "-X", "POST", "-H", "Content-Type: application/json",
                    "-d", "{\"name\":\"\(cn)\",\"metadata\":{\"kmip.project\":\"\(project)\"}}",
                    daemon.httpsBase + "/api/v1/identities",
                ])
            let id = try #require(
                ((try JSONSerialization.jsonObject(with: Data(created.utf8)) as? [String: Any])?["identity"]
                    as? [String: Any])?["id"] as? String)
            let caPEM = try String(contentsOfFile: daemon.dataDirectory + "/certs/ca.crt", encoding: .utf8)
            let body = try JSONSerialization.data(withJSONObject: ["caCertificate": caPEM, "allowedCommonNames": [cn]])
            let bodyFile = dir.path + "/\(cn).json"
            try body.write(to: URL(fileURLWithPath: bodyFile))
            let (_, _, attach) = try curl(
                daemon.adminCurl + [
                    "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@" + bodyFile,
                    daemon.httpsBase + "/api/v1/auth/tls-cert-auth/identities/\(id)",
                ])
            #expect(attach == 201)
            let (_, _, member) = try curl(
                daemon.adminCurl + [
                    "-X", "PUT", "-H", "Content-Type: application/json", "-d", "{\"roles\":[{\"role\":\"\(role)\"}]}",
                    daemon.httpsBase + "/api/v1/projects/\(project)/identity-memberships/\(id)",
                ])
            #expect(member == 200)
            let issued = try CertificateFactory.issue(commonName: cn, usage: .client, issuer: ca, validity: 3600)
            let args = try clientFiles(issued, in: dir.path, name: cn)
            return (args[1], args[3])
        }
        let (arrayCert, arrayKey) = try client("array-01", project: "storage", role: "developer")
        let failed = try lifecycle(python, daemon, version: "1.2", cert: arrayCert, key: arrayKey)
        #expect(failed.isEmpty, "\(failed)")
        // A key made by array-01 lives in project storage.
        let uid = try createKey(
            python, daemon, ca: daemon.dataDirectory + "/certs/ca.crt", cert: arrayCert, key: arrayKey, name: "scoped")
        // Its creation is audited in project storage, by array-01 over KMIP.
        let (audit, events) = try auditLog(daemon)
        let created = events.first {
            let inner = $0["event"] as? [String: Any]
            return inner?["type"] as? String == "kms.create"
                && (inner?["metadata"] as? [String: String])?["objectId"] == uid
        }
        #expect(
            created?["projectId"] as? String == "storage" && created?["userAgentType"] as? String == "kmip",
            "\(String(describing: created))")
        #expect(
            (created?["actor"] as? [String: Any]).flatMap { ($0["metadata"] as? [String: Any])?["name"] as? String }
                == "array-01")
        // A client of another project cannot use it; an unknown certificate name gets no access at all.
        let (backupCert, backupKey) = try client("backup-01", project: "backup", role: "developer")
        let probe = """
            import os, sys, warnings; warnings.filterwarnings("ignore")
            from kmip.pie import client as pc, exceptions
            c = pc.ProxyKmipClient(hostname="127.0.0.1", port=int(sys.argv[1]), ca=sys.argv[2], cert=sys.argv[3], key=sys.argv[4], config_file=os.devnull)
            with c:
                try:
                    c.get(sys.argv[5]); print("GOT IT")
                except exceptions.KmipOperationFailure as e:
                    print(e.reason.name)
            """
        let cross = try ProcessRunner.run(
            [
                python, "-c", probe, String(daemon.ports["kmip"] ?? 0), daemon.dataDirectory + "/certs/ca.crt",
                backupCert, backupKey, uid,
            ], timeout: 60)
        #expect(
            cross.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "PERMISSION_DENIED",
            "\(cross.stdout)\(cross.stderr)")
        let strangerCert = try CertificateFactory.issue(
            commonName: "stranger", usage: .client, issuer: ca, validity: 3600)
        let s = try clientFiles(strangerCert, in: dir.path, name: "stranger")
        let anon = try ProcessRunner.run(
            [
                python, "-c", probe, String(daemon.ports["kmip"] ?? 0), daemon.dataDirectory + "/certs/ca.crt", s[1],
                s[3], uid,
            ], timeout: 60)
        #expect(
            anon.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "AUTHENTICATION_NOT_SUCCESSFUL",
            "\(anon.stdout)\(anon.stderr)")
        #expect(daemon.stop() == 0)
    }

    /// `gatehouse kmip client create`: identity, membership, certificate and key in one command; the certificate
    /// comes from the organization's KMIP client PKI, generated on first use with the chosen CA algorithm, which the
    /// KMIP listener trusts at once and after a restart. PyKMIP connects with the written files (an RSA client key)
    /// and what it creates belongs to the named project.
    @Test func kmipClientCreateOnboardsAClient() throws {
        guard let python = pykmip() else { return }
        let dir = try freshDirectory()
        var daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("vault")
        let (_, _, noPKI) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/kmip/pki"])
        #expect(noPKI == 404, "no KMIP PKI before the first client")
        let out = dir.path + "/client"
        let made = try clientCreate(
            daemon, "tape-library-1", project: "vault",
            ["--key-algorithm", "rsa-2048", "--ttl", "30d", "--ca-key-algorithm", "ec-p384"], out: out)
        #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
        let mode =
            try FileManager.default.attributesOfItem(atPath: out + "/tape-library-1.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let (_, pkiJSON, _) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/kmip/pki"])
        let pki =
            (try? JSONSerialization.jsonObject(with: Data(pkiJSON.utf8)) as? [String: Any])?["pki"] as? [String: Any]
        #expect(pki?["keyAlgorithm"] as? String == "EC_secp384r1", "\(pkiJSON)")
        // The client certificate chains to the KMIP client CA (written in NAME.chain.crt), not to the data directory's CA.
        let caFile = dir.path + "/kmip-ca.pem"
        try Data(((pki?["caCertificate"] as? String) ?? "").utf8).write(to: URL(fileURLWithPath: caFile))
        let verified = try ProcessRunner.run(
            ["openssl", "verify", "-purpose", "sslclient", "-CAfile", caFile, out + "/tape-library-1.crt"], timeout: 30)
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        let chain = try String(contentsOfFile: out + "/tape-library-1.chain.crt", encoding: .utf8)
        #expect(chain.components(separatedBy: "BEGIN CERTIFICATE").count == 3, "the certificate and the KMIP CA")
        let wrongCA = try ProcessRunner.run(
            ["openssl", "verify", "-CAfile", daemon.dataDirectory + "/certs/ca.crt", out + "/tape-library-1.crt"],
            timeout: 30)
        #expect(wrongCA.status != 0)
        let uid = try createKey(
            python, daemon, ca: out + "/ca.crt", cert: out + "/tape-library-1.crt", key: out + "/tape-library-1.key",
            name: "tape-key")
        let (_, audit, _) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/audit/events?limit=1000"])
        #expect(
            audit.contains("\"projectId\":\"vault\"") && audit.contains(uid), "the key was created in project vault")
        #expect(audit.contains("kmip.pki.create") && audit.contains("kmip.client.certificate.issue"))
        // The same name again is refused (the identity exists), with a non-zero exit.
        let again = try clientCreate(daemon, "tape-library-1", project: "vault", [], out: out + "2")
        #expect(again.status != 0)
        // After a restart the listener trusts the KMIP CA from its first connection on.
        #expect(daemon.stop() == 0)
        daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        _ = try createKey(
            python, daemon, ca: out + "/ca.crt", cert: out + "/tape-library-1.crt", key: out + "/tape-library-1.key",
            name: "tape-key-2")
        #expect(daemon.stop() == 0)
    }

    /// KMIP's Authentication header as a second factor: a client created with --require-credential is refused
    /// without its Username and Password credential or with a wrong password, and served with the right one.
    @Test func kmipCredentialIsASecondFactor() throws {
        guard let python = pykmip() else { return }
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("vault")
        let out = dir.path + "/client"
        let made = try clientCreate(daemon, "hsm-gw", project: "vault", ["--require-credential"], out: out)
        #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
        let credential = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/hsm-gw.credential")))
                as? [String: String])
        let script = """
            import os, sys, warnings; warnings.filterwarnings("ignore")
            from kmip import enums; from kmip.pie import client as pc, exceptions
            kw = {} if sys.argv[5] == "-" else {"username": sys.argv[5], "password": sys.argv[6]}
            c = pc.ProxyKmipClient(hostname="127.0.0.1", port=int(sys.argv[1]), ca=sys.argv[2], cert=sys.argv[3], key=sys.argv[4], config_file=os.devnull, **kw)
            with c:
                try:
                    print("OK " + c.create(enums.CryptographicAlgorithm.AES, 128))
                except exceptions.KmipOperationFailure as e:
                    print(e.reason.name)
            """
        func attempt(_ user: String, _ password: String) throws -> String {
            let r = try ProcessRunner.run(
                [
                    python, "-c", script, String(daemon.ports["kmip"] ?? 0), out + "/ca.crt", out + "/hsm-gw.crt",
                    out + "/hsm-gw.key", user, password,
                ],
                timeout: 60)
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + r.stderr.suffix(300)
        }
        let username = try #require(credential["username"])
        let password = try #require(credential["password"])
        #expect(try attempt("-", "-") == "AUTHENTICATION_NOT_SUCCESSFUL", "no credential")
        #expect(try attempt(username, "ghcs_wrong") == "AUTHENTICATION_NOT_SUCCESSFUL", "wrong password")
        #expect(try attempt(username, password).hasPrefix("OK "), "the right credential")
        let mode =
            try FileManager.default.attributesOfItem(atPath: out + "/hsm-gw.credential")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(daemon.stop() == 0)
    }

    /// PyKMIP 0.11.0's own integration suite (`pytest kmip/tests/integration -m "not ignore" --config client`,
    /// 37 runnable tests) against the daemon: every test passes.
    @Test func pykmipIntegrationSuite() throws {
        guard let python = pykmip() else { return }
        guard let sdist = ProcessInfo.processInfo.environment["PYKMIP_SDIST"] else {
            if dependencyRequired("PYKMIP") { Issue.record("PYKMIP_SDIST is not set") }
            return
        }
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let c = daemon.dataDirectory + "/certs"
        let home = dir.path + "/home"
        try FileManager.default.createDirectory(atPath: home + "/.pykmip", withIntermediateDirectories: true)
        try """
        [client]
        host=127.0.0.1
        port=\(daemon.ports["kmip"] ?? 0)
        certfile=\(c)/admin.crt
        keyfile=\(c)/admin.key
        ca_certs=\(c)/ca.crt
        cert_reqs=CERT_REQUIRED
        ssl_version=PROTOCOL_SSLv23
        do_handshake_on_connect=True
        suppress_ragged_eofs=True

        """.write(toFile: home + "/.pykmip/pykmip.conf", atomically: true, encoding: .utf8)
        let out = try ProcessRunner.run(
            [
                python, "-m", "pytest", "kmip/tests/integration", "-m", "not ignore", "--config", "client", "-p",
                "no:cacheprovider",
                "-q", "-rfE", "-W", "ignore::DeprecationWarning",
            ],
            cwd: sdist, environment: ["HOME": home], timeout: 600)
        let summary = out.stdout.split(separator: "\n").last { $0.contains("passed") || $0.contains("failed") } ?? ""
        print("PyKMIP integration suite: \(summary)")
        let failed = Set(
            out.stdout.split(separator: "\n").filter { $0.hasPrefix("FAILED ") || $0.hasPrefix("ERROR ") }.compactMap {
                line in
                line.split(separator: " ").dropFirst().first.map { String($0.split(separator: "/").last ?? "") }
            })
        let passed =
            summary.split(separator: " ").firstIndex { $0.hasPrefix("passed") }.flatMap { i in
                i > 0 ? Int(summary.split(separator: " ")[i - 1]) : nil
            } ?? 0
        #expect(failed.isEmpty, "failures: \(failed.sorted())\n\(out.stdout.suffix(4000))")
        #expect(passed == 37, "\(summary)")
        #expect(daemon.stop() == 0)
    }

    @Test func hostilePeersGetErrorsAndTheListenerSurvives() throws {
        let dir = try freshDirectory()
        // Random bytes sometimes start like a TLS record (or an SSLv2 ClientHello) announcing more bytes than are
        // sent; the handshake timeout is what closes those, so it must be shorter than the test's wait below.
        let daemon = try DaemonProcess(
            directory: dir.path, environment: ["GATEHOUSE_LISTENERS_KMIP_HANDSHAKE_TIMEOUT": "2s"])
        try daemon.waitUntilListening()
        let c = daemon.dataDirectory + "/certs"
        let target = "127.0.0.1:\(daemon.ports["kmip"] ?? 0)"
        func tls(_ input: [UInt8], clientCert: Bool = true) throws -> ProcessRunner.Output {
            var args = ["openssl", "s_client", "-quiet", "-connect", target, "-CAfile", c + "/ca.crt"]
            if clientCert { args += ["-cert", c + "/admin.crt", "-key", c + "/admin.key"] }
            return try ProcessRunner.run(args, stdin: Data(input), timeout: 20)
        }
        func raw(_ hex: String, cert: String = c + "/admin.crt", key: String = c + "/admin.key") throws -> [String] {
            let out = try ProcessRunner.run(
                [
                    "python3", ProcessRunner.repositoryRoot + "/Tests/scripts/kmip-repeat.py",
                    String(daemon.ports["kmip"] ?? 0), c + "/ca.crt",
                    cert, key, "1", hex,
                ], timeout: 30)
            #expect(out.status == 0, "\(out.stderr)")
            return out.stdout.split(separator: "\n").map(String.init)
        }
        // A frame header declaring 2 GiB: an Invalid Message response (Result Reason 4), then the connection closes.
        #expect(try raw("420078017ffffff8") == ["refused 4", "then closed"])
        // Bytes that frame but are not TTLV: Invalid Message too.
        #expect(try raw("42007801000000080909090909090909").first == "refused 4")
        // No client certificate: no KMIP answer.
        let anonymous = try tls([0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x00], clientCert: false)
        #expect(!Array(anonymous.stdout.utf8).starts(with: [0x42, 0x00, 0x7B]))
        // Random bytes in clear text, and the start of a TLS record that announces more than it sends: each closed.
        let partialRecord: [UInt8] = [0x16, 0x03, 0x01, 0x40, 0x00] + (0..<64).map { _ in UInt8.random(in: 0...255) }
        for round in 0..<11 {
            let fd = tcpConnect(daemon.ports["kmip"] ?? 0)
            #expect(fd >= 0, "the listener accepts connections")
            let junk = round == 10 ? partialRecord : (0..<512).map { _ in UInt8.random(in: 0...255) }
            _ = junk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            #expect(closedByPeer(fd, within: 5))
            close(fd)
        }
        // Still serving KMIP: a real request on a new connection succeeds.
        let locate =
            "42007801000000604200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000040000000042000d0200000004000000010000000042000f010000001842005c050000000400000008000000004200790100000000"
        #expect(try raw(locate) == ["success"])
        #expect(daemon.process.isRunning)
        #expect(daemon.stop() == 0)
    }
}
