import Crypto
import Foundation
import ServerSupport
import TestSupport
import Testing
import X509

/// EST (RFC 7030) end to end with curl + openssl against the daemon: passphrase and bootstrap-certificate
/// enrollment, re-enrollment, server key generation, revocation seen through the CRL (`openssl verify
/// -crl_check`) and the OCSP responder (`openssl ocsp`), and hostile requests.
@Suite(.serialized) struct ESTTests {
    let script = ProcessRunner.repositoryRoot + "/Tests/scripts/est-client.sh"

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    /// POSTs JSON as the bootstrap administrator; returns the decoded object under `key`.
    func adminPost(_ daemon: DaemonProcess, _ path: String, _ body: String, key: String, expect: Int = 201) throws
        -> [String: Any]
    {
        let (_, out, code) = try curl(
            daemon.adminCurl + [
                "-H", "Content-Type: application/json", "-X", "POST", "-d", body, daemon.httpsBase + path,
            ])
        #expect(code == expect, "\(path): HTTP \(code) \(out)")
        return try #require(try json(out)[key] as? [String: Any], "\(path): \(out)")
    }

    struct Setup {
        var rootID: String
        var intermediateID: String
        var intermediatePEM: String
        var manufacturer: CertificateFactory.Issued
    }

    func setUp(_ daemon: DaemonProcess, dir: String) throws -> Setup {
        try daemon.ensureProject("iot")
        let root = try adminPost(
            daemon, "/api/v1/projects/iot/pki/cas",
            #"{"type":"root","subject":{"commonName":"IoT Root","organization":"Acme","country":"US"},"keyAlgorithm":"EC_prime256v1","maxPathLength":1}"#,
            key: "ca")
        let rootID = try #require(root["id"] as? String)
        let intermediate = try adminPost(
            daemon, "/api/v1/projects/iot/pki/cas",
            #"{"type":"intermediate","subject":{"commonName":"IoT Issuing"},"keyAlgorithm":"EC_prime256v1","parentCaId":"\#(rootID)"}"#,
            key: "ca")
        let intermediateID = try #require(intermediate["id"] as? String)
        let template = try adminPost(
            daemon, "/api/v1/projects/iot/pki/templates",
            #"{"name":"devices","subject":[{"type":"commonName","allowed":["device-*"],"denied":["device-evil"]}],"sans":[{"type":"dns","allowed":["device-*"]}],"keyAlgorithms":["EC_prime256v1","RSA_2048"],"keyUsages":["digitalSignature","keyEncipherment"],"extendedKeyUsages":["clientAuth"],"maxTTL":"30d"}"#,
            key: "template")
        let templateID = try #require(template["id"] as? String)
        let manufacturer = try CertificateFactory.makeCA(commonName: "Device Manufacturer", validity: 86400)
        let bootstrap = manufacturer.certificatePEM.replacingOccurrences(of: "\n", with: "\\n")
        _ = try adminPost(
            daemon, "/api/v1/projects/iot/pki/profiles",
            #"{"slug":"devices","caId":"\#(intermediateID)","templateId":"\#(templateID)","enrollment":"est","est":{"passphrase":"correct horse battery","bootstrapCAChain":"\#(bootstrap)"}}"#,
            key: "profile")
        return Setup(
            rootID: rootID, intermediateID: intermediateID,
            intermediatePEM: try #require(intermediate["certificate"] as? String), manufacturer: manufacturer)
    }

    func runClient(_ daemon: DaemonProcess, out: String, auth: [String], cn: String) throws -> String {
        let result = try ProcessRunner.run(
            [
                "bash", script, daemon.httpsBase + "/.well-known/est/devices", daemon.dataDirectory + "/certs/ca.crt",
                out,
            ] + auth,
            environment: ["EST_CN": cn], timeout: 120)
        #expect(result.status == 0, "est-client failed:\n\(result.stdout)\n\(result.stderr)")
        return result.stdout
    }

    @Test func enrollReenrollServerKeyGenAndRevocationWithCurlAndOpenSSL() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let setup = try setUp(daemon, dir: dir.path)

        // 1. Passphrase (HTTP Basic).
        let viaPassphrase = dir.path + "/passphrase"
        let out1 = try runClient(
            daemon, out: viaPassphrase, auth: ["--user", "device:correct horse battery"], cn: "device-1")
        #expect(out1.contains("5 passed, 0 failed"), "\(out1)")
        #expect(out1.contains("csrattrs: ecdsa-with-SHA256"))
        let chain = try String(contentsOfFile: viaPassphrase + "/chain.pem", encoding: .utf8)
        #expect(chain.components(separatedBy: "BEGIN CERTIFICATE").count == 3, "root and intermediate")

        // 2. Bootstrap certificate from the manufacturer CA (IDevID style).
        let viaCert = dir.path + "/bootstrap"
        try FileManager.default.createDirectory(atPath: viaCert, withIntermediateDirectories: true)
        let device = try CertificateFactory.issue(
            commonName: "idevid-42", usage: .client, issuer: setup.manufacturer, validity: 3600)
        let out2 = try runClient(
            daemon, out: viaCert, auth: try clientFiles(device, in: viaCert, name: "idevid"), cn: "device-2")
        #expect(out2.contains("5 passed, 0 failed"), "\(out2)")

        // The issued certificate carries the template's usages, the SAN, AKI/SKI, the CRL DP and the OCSP URL.
        let text = try ProcessRunner.run(["openssl", "x509", "-in", viaPassphrase + "/issued.pem", "-noout", "-text"])
            .stdout
        for needle in [
            "Digital Signature, Key Encipherment", "TLS Web Client Authentication", "DNS:device-1",
            "X509v3 Subject Key Identifier", "X509v3 Authority Key Identifier",
            "/pki/crl/\(setup.intermediateID).crl", "OCSP - URI:https://",
        ] {
            #expect(text.contains(needle), "issued certificate lacks \(needle)")
        }

        // 3. Revoke the first certificate; the CRL at the distribution point and the OCSP responder both say so.
        let serial = try ProcessRunner.run([
            "openssl", "x509", "-in", viaPassphrase + "/issued.pem", "-noout", "-serial",
        ])
        .stdout.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
        let revoked = try adminPost(
            daemon, "/api/v1/pki/certificates/\(serial)/revoke", #"{"reason":"keyCompromise"}"#, key: "certificate",
            expect: 200)
        #expect(revoked["status"] as? String == "revoked")
        let crlDER = viaPassphrase + "/crl.der"
        let (_, _, crlCode) = try curl(
            [
                "--cacert", daemon.dataDirectory + "/certs/ca.crt", "-o", crlDER,
                daemon.httpsBase + "/pki/crl/\(setup.intermediateID).crl",
            ])
        #expect(crlCode == 200)
        _ = try ProcessRunner.run([
            "openssl", "crl", "-inform", "DER", "-in", crlDER, "-out", viaPassphrase + "/crl.pem",
        ])
        let verifyRevoked = try ProcessRunner.run(
            [
                "openssl", "verify", "-crl_check", "-CAfile", viaPassphrase + "/chain.pem", "-CRLfile",
                viaPassphrase + "/crl.pem",
                viaPassphrase + "/issued.pem",
            ])
        #expect(
            verifyRevoked.status != 0 && (verifyRevoked.stdout + verifyRevoked.stderr).contains("certificate revoked"))
        let verifyGood = try ProcessRunner.run(
            [
                "openssl", "verify", "-crl_check", "-CAfile", viaPassphrase + "/chain.pem", "-CRLfile",
                viaPassphrase + "/crl.pem",
                viaPassphrase + "/reissued.pem",
            ])
        #expect(verifyGood.status == 0, "\(verifyGood.stdout)\(verifyGood.stderr)")

        let issuerPath = viaPassphrase + "/intermediate.pem"
        try setup.intermediatePEM.write(toFile: issuerPath, atomically: true, encoding: .utf8)
        let ocspURL = daemon.httpsBase.replacingOccurrences(of: "localhost", with: "127.0.0.1") + "/pki/ocsp"
        let ocsp = try ProcessRunner.run(
            [
                "openssl", "ocsp", "-issuer", issuerPath, "-cert", viaPassphrase + "/issued.pem", "-cert",
                viaPassphrase + "/reissued.pem", "-url", ocspURL, "-CAfile", viaPassphrase + "/chain.pem",
            ], timeout: 30)
        let ocspText = ocsp.stdout + ocsp.stderr
        #expect(ocspText.contains("Response verify OK"), "\(ocspText)")
        #expect(ocspText.contains("issued.pem: revoked"), "\(ocspText)")
        #expect(ocspText.contains("reissued.pem: good"), "\(ocspText)")
        #expect(ocspText.contains("keyCompromise"), "\(ocspText)")
        // OCSP over GET (RFC 6960 A.1), for a serial this CA never issued: unknown.
        _ = try ProcessRunner.run(
            [
                "openssl", "ocsp", "-issuer", issuerPath, "-serial", "0x1234567890abcdef", "-reqout",
                viaPassphrase + "/req.der", "-no_nonce",
            ])
        let request =
            try Data(contentsOf: URL(fileURLWithPath: viaPassphrase + "/req.der")).base64EncodedString()
            .addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let (_, _, getCode) = try curl(
            [
                "--cacert", daemon.dataDirectory + "/certs/ca.crt", "-o", viaPassphrase + "/resp.der",
                daemon.httpsBase + "/pki/ocsp/" + request,
            ])
        #expect(getCode == 200)
        let unknown = try ProcessRunner.run(
            [
                "openssl", "ocsp", "-respin", viaPassphrase + "/resp.der", "-issuer", issuerPath, "-serial",
                "0x1234567890abcdef",
                "-CAfile", viaPassphrase + "/chain.pem",
            ])
        #expect(
            (unknown.stdout + unknown.stderr).contains("0x1234567890abcdef: unknown"),
            "\(unknown.stdout)\(unknown.stderr)")
        // A certificate of an issuer this responder does not serve: 'unauthorized' (RFC 6960 §2.3).
        let foreign = try CertificateFactory.issue(
            commonName: "device-x", usage: .client, issuer: setup.manufacturer, validity: 3600)
        _ = try clientFiles(foreign, in: viaPassphrase, name: "foreign")
        let foreignCA = viaPassphrase + "/manufacturer.pem"
        try setup.manufacturer.certificatePEM.write(toFile: foreignCA, atomically: true, encoding: .utf8)
        let unauthorized = try ProcessRunner.run(
            [
                "openssl", "ocsp", "-issuer", foreignCA, "-cert", viaPassphrase + "/foreign.crt", "-url", ocspURL,
                "-CAfile", foreignCA,
            ])
        #expect(
            (unauthorized.stdout + unauthorized.stderr).contains("unauthorized (6)"),
            "\(unauthorized.stdout)\(unauthorized.stderr)")

        // 4. Re-enrollment: refused with the revoked certificate (401) and with a changed subject (403).
        let base = daemon.httpsBase + "/.well-known/est/devices"
        let tls = ["--cacert", daemon.dataDirectory + "/certs/ca.crt"]
        let csrHeaders = ["-H", "Content-Type: application/pkcs10", "-H", "Content-Transfer-Encoding: base64"]
        let (_, body401, code401) = try curl(
            tls + csrHeaders + [
                "--cert", viaPassphrase + "/issued.pem", "--key", viaPassphrase + "/device.key",
                "--data-binary", "@" + viaPassphrase + "/reenroll.csr", base + "/simplereenroll",
            ])
        #expect(code401 == 401 && body401.contains("revoked"), "\(code401) \(body401)")
        _ = try ProcessRunner.run(
            [
                "openssl", "req", "-new", "-key", viaCert + "/device.key", "-subj", "/CN=device-other", "-outform",
                "DER", "-out", viaCert + "/other.der",
            ])
        _ = try ProcessRunner.run(["sh", "-c", "base64 '\(viaCert)/other.der' > '\(viaCert)/other.b64'"])
        let (_, body403, code403) = try curl(
            tls + csrHeaders + [
                "--cert", viaCert + "/issued.pem", "--key", viaCert + "/device.key",
                "--data-binary", "@" + viaCert + "/other.b64", base + "/simplereenroll",
            ])
        #expect(code403 == 403 && body403.contains("subject"), "\(code403) \(body403)")

        // 5. A certificate from a CA the profile does not trust is not a credential: 401 with WWW-Authenticate.
        let strangerCA = try CertificateFactory.makeCA(commonName: "Device Manufacturer", validity: 86400)
        let stranger = try CertificateFactory.issue(
            commonName: "idevid-42", usage: .client, issuer: strangerCA, validity: 3600)
        let strangerArgs = try clientFiles(stranger, in: viaCert, name: "stranger")
        let headers = try ProcessRunner.run(
            ["curl", "-sS", "-D", "-", "-o", "/dev/null"] + tls + strangerArgs + csrHeaders
                + ["--data-binary", "@" + viaCert + "/enroll.csr", base + "/simpleenroll"]
        ).stdout
        #expect(headers.contains(" 401") && headers.lowercased().contains("www-authenticate: basic"), "\(headers)")

        // 6. Policy: a CN the template denies is refused with 403 naming the rule.
        _ = try ProcessRunner.run(
            [
                "openssl", "req", "-new", "-key", viaCert + "/device.key", "-subj", "/CN=device-evil", "-outform",
                "DER", "-out", viaCert + "/evil.der",
            ])
        _ = try ProcessRunner.run(["sh", "-c", "base64 '\(viaCert)/evil.der' > '\(viaCert)/evil.b64'"])
        let (_, evilBody, evilCode) = try curl(
            tls + csrHeaders + [
                "--user", "d:correct horse battery", "--data-binary", "@" + viaCert + "/evil.b64",
                base + "/simpleenroll",
            ])
        #expect(evilCode == 403 && evilBody.contains("denied pattern 'device-evil'"), "\(evilCode) \(evilBody)")

        // Every enrollment and refusal is in the audit chain.
        let (_, audit, _) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/audit/events?limit=1000"])
        for event in [
            "pki.est.simpleenroll", "pki.est.simplereenroll", "pki.est.serverkeygen", "pki.est.refused",
            "pki.certificate.revoke",
        ] {
            #expect(audit.contains(event), "audit lacks \(event)")
        }
        #expect(!audit.contains("correct horse battery"), "the passphrase must never reach the audit log")
        #expect(!daemon.log.contains("correct horse battery"), "the passphrase must never reach the log")
    }

    /// A credential that is presented must be valid (a wrong passphrase is refused even beside a valid bootstrap
    /// certificate), and every refusal is audited, the template's included.
    @Test func presentedCredentialsMustBeValidAndEveryRefusalIsAudited() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let setup = try setUp(daemon, dir: dir.path)
        let device = try CertificateFactory.issue(
            commonName: "idevid-7", usage: .client, issuer: setup.manufacturer, validity: 3600)
        let cert = try clientFiles(device, in: dir.path, name: "idevid")
        func csr(_ cn: String) throws -> String {
            let key = dir.path + "/\(cn).key"
            let der = dir.path + "/\(cn).der"
            let b64 = dir.path + "/\(cn).b64"
            _ = try ProcessRunner.run([
                "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key,
            ])
            _ = try ProcessRunner.run(
                [
                    "openssl", "req", "-new", "-key", key, "-subj", "/CN=\(cn)", "-addext", "subjectAltName=DNS:\(cn)",
                    "-outform", "DER", "-out", der,
                ])
            try Data(contentsOf: URL(fileURLWithPath: der)).base64EncodedString().write(
                toFile: b64, atomically: true, encoding: .utf8)
            return b64
        }
        func enroll(_ auth: [String], _ body: String) throws -> Int {
            try curl(
                ["--cacert", daemon.dataDirectory + "/certs/ca.crt"] + auth + [
                    "-H", "Content-Type: application/pkcs10", "--data-binary", "@" + body,
                    daemon.httpsBase + "/.well-known/est/devices/simpleenroll",
                ]
            ).2
        }
        func refusals() throws -> [[String: Any]] {
            try auditLog(daemon).events.compactMap { $0["event"] as? [String: Any] }.filter {
                ($0["type"] as? String) == "pki.est.refused"
            }
        }
        let good = try csr("device-11")
        #expect(try enroll(cert, good) == 200, "the bootstrap certificate alone is accepted")
        #expect(try enroll(["--user", "d:correct horse battery"], good) == 200, "the passphrase alone is accepted")
        let before = try refusals().count
        #expect(
            try enroll(cert + ["--user", "d:wrong passphrase"], good) == 401,
            "a wrong passphrase beside a valid certificate")
        #expect(try enroll(["--user", "d:wrong passphrase"], good) == 401)
        let stranger = try CertificateFactory.issue(
            commonName: "idevid-8", usage: .client,
            issuer: try CertificateFactory.makeCA(commonName: "Other Maker", validity: 3600), validity: 3600)
        #expect(
            try enroll(
                try clientFiles(stranger, in: dir.path, name: "stranger") + ["--user", "d:correct horse battery"], good)
                == 401,
            "a certificate from an unknown maker beside the right passphrase")
        // The template denies device-evil: refused after authentication, and on record too.
        let evil = try csr("device-evil")
        let evilCode = try enroll(["--user", "d:correct horse battery"], evil)
        #expect(evilCode == 403 || evilCode == 400, "\(evilCode)")
        let after = try refusals()
        #expect(after.count == before + 4, "\(after.count - before) refusals audited: \(after.prefix(6))")
        let reasons = after.compactMap { ($0["metadata"] as? [String: Any])?["reason"] as? String }
        #expect(
            reasons.contains { $0.contains("device-evil") || $0.contains("denied") || $0.contains("not allowed") },
            "\(reasons)")
        #expect(daemon.stop() == 0)
    }

    @Test func hostileESTRequestsGetClearErrorsAndNeverCrashTheDaemon() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        _ = try setUp(daemon, dir: dir.path)
        let base = daemon.httpsBase + "/.well-known/est/devices"
        let common = ["--cacert", daemon.dataDirectory + "/certs/ca.crt", "--user", "d:correct horse battery"]
        func post(_ body: Data, type: String = "application/pkcs10") throws -> (Int, String) {
            let file = dir.path + "/body-\(UUID().uuidString)"
            try body.write(to: URL(fileURLWithPath: file))
            let (_, text, code) = try curl(
                common + ["-H", "Content-Type: \(type)", "--data-binary", "@" + file, base + "/simpleenroll"])
            return (code, text)
        }
        // A valid CSR, to derive broken variants from.
        _ = try ProcessRunner.run([
            "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
            dir.path + "/k.pem",
        ])
        _ = try ProcessRunner.run(
            [
                "openssl", "req", "-new", "-key", dir.path + "/k.pem", "-subj", "/CN=device-9", "-addext",
                "subjectAltName=DNS:device-9",
                "-outform", "DER", "-out", dir.path + "/csr.der",
            ])
        let der = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.path + "/csr.der")))

        // Each accepted base64 spelling (RFC 8951): one line, 64-column LF, CRLF, with and without final newline.
        let b64 = Data(der).base64EncodedString()
        let wrapped = stride(from: 0, to: b64.count, by: 64).map { i -> String in
            let s = b64.index(b64.startIndex, offsetBy: i)
            return String(b64[s..<(b64.index(s, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex)])
        }
        for spelling in [b64, b64 + "\n", wrapped.joined(separator: "\n"), wrapped.joined(separator: "\r\n") + "\r\n"] {
            let (code, text) = try post(Data(spelling.utf8))
            #expect(code == 200, "\(code) \(text)")
        }

        var tampered = der
        tampered[tampered.count - 5] ^= 0x40  // inside the signature
        let cases: [(String, Data, String, Int, String)] = [
            ("wrong media type", Data(b64.utf8), "application/json", 415, "application/pkcs10"),
            ("empty", Data(), "application/pkcs10", 400, "empty"),
            ("not base64", Data("%%%% not base64 ****".utf8), "application/pkcs10", 400, "base64"),
            (
                "base64 of junk", Data(Data("hello world, not DER".utf8).base64EncodedString().utf8),
                "application/pkcs10", 400, "DER"
            ),
            (
                "truncated DER", Data(Data(der.prefix(der.count / 2)).base64EncodedString().utf8), "application/pkcs10",
                400, "DER"
            ),
            (
                "bad signature", Data(Data(tampered).base64EncodedString().utf8), "application/pkcs10", 400,
                "proof of possession"
            ),
            ("oversized", Data(repeating: UInt8(ascii: "A"), count: 200_000), "application/pkcs10", 413, "exceeds"),
        ]
        for (name, body, type, status, words) in cases {
            let (code, text) = try post(body, type: type)
            #expect(code == status && text.contains(words), "\(name): \(code) \(text)")
        }
        // Random bodies, raw and base64: always 400 with a reason, never a 5xx.
        var generator = SystemRandomNumberGenerator()
        for i in 0..<60 {
            let n = Int.random(in: 1...3000, using: &generator)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if i % 3 == 0 { bytes[0] = 0x30 }
            let body = i % 2 == 0 ? Data(bytes) : Data(Data(bytes).base64EncodedString().utf8)
            let (code, text) = try post(body)
            #expect(code == 400 && !text.isEmpty, "random body \(i): \(code) \(text)")
        }
        // Still serving.
        let (_, _, alive) = try curl(["--cacert", daemon.dataDirectory + "/certs/ca.crt", base + "/cacerts"])
        #expect(alive == 200)
        #expect(daemon.process.isRunning)
    }
}
