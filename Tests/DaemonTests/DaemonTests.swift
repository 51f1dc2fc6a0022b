import Crypto
import Foundation
import ServerSupport
import StorageSQLite
import TestSupport
import Testing
import X509

/// Tests against the built `gatehouse` binary, with real peers (curl, openssl). Serialized: one of them binds the
/// default ports.
@Suite(.serialized) struct DaemonTests {
    @Test func serveWithNoArgumentsBecomesReady() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path, ephemeralPorts: false)
        let ports = try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        #expect(ports == ["https": 8443, "kmip": 5696, "operations": 9090, "postgres": 15432])
        let (_, body, code) = try curl(["http://127.0.0.1:9090/readyz"])
        #expect(code == 200)
        #expect(body.hasPrefix("ready"))
        let (_, health, hcode) = try curl([
            "--cacert", dir.path + "/.gatehouse/certs/ca.crt", "https://localhost:8443/healthz",
        ])
        #expect(hcode == 200 && health.hasPrefix("ok"))
        for key in ["root.key", "certs/ca.key", "certs/server.key", "certs/admin.key", "gatehouse.sqlite"] {
            let attrs = try FileManager.default.attributesOfItem(atPath: dir.path + "/.gatehouse/" + key)
            #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600, "\(key) must be 0600")
        }
        #expect(daemon.log.contains("listening https https://127.0.0.1:8443"))
        #expect(daemon.log.contains("admin client certificate"))
        #expect(daemon.stop() == 0)
        #expect(daemon.log.contains("gatehouse: stopped"))
    }

    @Test func mutualTLSRequired() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(
            directory: dir.path, environment: ["GATEHOUSE_LISTENERS_HTTPS_CLIENT_AUTH": "required"])
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        let url = daemon.httpsBase + "/api/v1/whoami"
        let ca = ["--cacert", daemon.dataDirectory + "/certs/ca.crt"]

        let (status, body, code) = try curl(daemon.adminCurl + [url])
        #expect(status == 0 && code == 200)
        #expect(body.contains("\"name\":\"gatehouse-admin\""))

        // Each refusal is the server's, with the TLS alert that names the reason (RFC 8446 §6.2), read from curl.
        // No certificate: certificate_required.
        let none = try curlFailure(ca + [url])
        #expect(none.status != 0 && none.stderr.contains("alert certificate required"), "\(none.stderr)")

        // A certificate from another CA.
        let otherCA = try CertificateFactory.makeCA(commonName: "Not Gatehouse", validity: 86400)
        let untrusted = try CertificateFactory.issue(
            commonName: "gatehouse-admin", usage: .client, issuer: otherCA, validity: 86400)
        let foreign = try curlFailure(ca + clientFiles(untrusted, in: dir.path, name: "untrusted") + [url])
        #expect(foreign.status != 0 && foreign.stderr.contains("alert unknown ca"), "\(foreign.stderr)")

        // An expired certificate from the right CA.
        let applianceCA = try applianceCA(daemon.dataDirectory)
        let expired = try CertificateFactory.issue(
            commonName: "gatehouse-admin", usage: .client, issuer: applianceCA,
            notBefore: Date().addingTimeInterval(-7200),
            validity: 3600)
        let stale = try curlFailure(ca + clientFiles(expired, in: dir.path, name: "expired") + [url])
        #expect(stale.status != 0 && stale.stderr.contains("alert certificate expired"), "\(stale.stderr)")

        // A valid certificate whose common name is neither an administrator nor accepted by any identity's TLS
        // Certificate Auth: the handshake succeeds, the engine refuses (401) and audits it.
        let other = try CertificateFactory.issue(
            commonName: "someone", usage: .client, issuer: applianceCA, validity: 3600)
        let otherArgs = ca + (try clientFiles(other, in: dir.path, name: "someone"))
        let (_, deniedBody, deniedCode) = try curl(otherArgs + [daemon.httpsBase + "/api/v1/projects/p/secrets/x"])
        #expect(deniedCode == 401)
        #expect(deniedBody.contains("unauthenticated"))

        let (_, metrics, _) = try curl([daemon.operationsBase + "/metrics"])
        let failures = metrics.split(separator: "\n").first {
            $0.hasPrefix("gatehouse_tls_handshake_failures_total{listener=\"https\"}")
        }
        #expect((failures?.split(separator: " ").last.flatMap { Double($0) } ?? 0) >= 3)
        #expect(daemon.stop() == 0)
    }

    /// Requests are counted per listener and route; a method no route uses is counted as OTHER, so a client cannot
    /// add metric series at will.
    @Test func requestMetricsCountRoutesAndFoldUnknownMethods() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        for _ in 0..<3 { _ = try curl(daemon.adminCurl + [daemon.httpsBase + "/healthz"]) }
        for method in ["PROPFIND", "MKCOL", "LOCK"] {
            _ = try curl(daemon.adminCurl + ["-X", method, daemon.httpsBase + "/healthz"])
        }
        let (_, metrics, _) = try curl([daemon.operationsBase + "/metrics"])
        func count(_ operation: String) -> Double? {
            metrics.split(separator: "\n").first {
                $0.hasPrefix("gatehouse_requests_total{") && $0.contains("listener=\"https\"")
                    && $0.contains("operation=\"\(operation)")
            }.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
        }
        #expect((count("GET /healthz") ?? 0) >= 3, "\(metrics.prefix(3000))")
        #expect(count("OTHER ") == 3, "\(metrics.prefix(3000))")
        #expect(!metrics.contains("PROPFIND") && !metrics.contains("MKCOL"))
        #expect(daemon.stop() == 0)
    }

    @Test func optionalClientAuthIsAnonymousWithoutACertificate() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        let (_, body, code) = try curl([
            "--cacert", daemon.dataDirectory + "/certs/ca.crt", daemon.httpsBase + "/api/v1/whoami",
        ])
        #expect(code == 401)
        #expect(body.contains("unauthenticated"))
        #expect(daemon.stop() == 0)
    }

    @Test func onlyTLS12And13WithForwardSecretAEAD() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        let target = "127.0.0.1:\(daemon.ports["https"] ?? 0)"
        func handshake(_ extra: [String]) throws -> (Bool, String) {
            let out = try ProcessRunner.run(
                ["openssl", "s_client", "-connect", target, "-servername", "localhost"] + extra,
                stdin: Data("Q\n".utf8),
                timeout: 20)
            return (
                out.status == 0 && out.stdout.contains("Cipher is") && !out.stdout.contains("Cipher is (NONE)"),
                out.stdout + out.stderr
            )
        }
        #expect(try handshake(["-tls1_3"]).0)
        #expect(try handshake(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]).0)
        // Refused by the server, which says why in its alert (not by the client, which would fail the same way on
        // its own): protocol_version for TLS 1.0 and 1.1, handshake_failure for CBC suites over TLS 1.2.
        for version in ["-tls1_1", "-tls1"] {
            let (ok, text) = try handshake([version, "-cipher", "DEFAULT@SECLEVEL=0"])
            #expect(!ok && text.contains("alert protocol version"), "\(version): \(text.suffix(400))")
        }
        let (cbc, cbcText) = try handshake(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384"])
        #expect(!cbc && cbcText.contains("alert handshake failure"), "\(cbcText.suffix(400))")
        #expect(daemon.stop() == 0)
    }

    @Test func listenerLimits() throws {
        let dir = try freshDirectory()
        // Idle, login and handshake timeouts far longer than the cap checks: only the cap can close a connection.
        let daemon = try DaemonProcess(
            directory: dir.path,
            environment: [
                "GATEHOUSE_LISTENERS_OPERATIONS_MAX_CONNECTIONS": "2",
                "GATEHOUSE_LISTENERS_OPERATIONS_IDLE_TIMEOUT": "60s",
                "GATEHOUSE_LISTENERS_HTTPS_HANDSHAKE_TIMEOUT": "1s",
                "GATEHOUSE_LISTENERS_HTTPS_MAX_MESSAGE_SIZE": "2048",
            ])
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        let ops = daemon.ports["operations"] ?? 0
        // Connection cap: the third concurrent connection is closed at once; the first two stay open.
        let a = tcpConnect(ops)
        let b = tcpConnect(ops)
        // Both are accepted and served (keep-alive) before the third arrives.
        for fd in [a, b] {
            let reply = roundTrip(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", until: "\r\n\r\nok")
            #expect(reply.hasPrefix("HTTP/1.1 200 OK"), "\(reply)")
        }
        let c = tcpConnect(ops)
        #expect(a >= 0 && b >= 0 && c >= 0)
        #expect(closedByPeer(c, within: 1))
        close(c)
        #expect(!closedByPeer(a, within: 0.5) && !closedByPeer(b, within: 0.5), "connections under the cap stay open")
        close(a)
        close(b)
        // With those closed, a new connection is served (once the daemon has seen the closes).
        var healthCode = 0
        var healthy = ""
        let served = Date().addingTimeInterval(5)
        while healthCode != 200 && Date() < served {
            (_, healthy, healthCode) = try curl([daemon.operationsBase + "/healthz"])
            if healthCode != 200 { usleep(50_000) }
        }
        #expect(healthCode == 200 && healthy.hasPrefix("ok"))

        // Idle timeout, on a daemon of its own: a silent connection is closed after ~1.5 s, not at once.
        let idleDir = try freshDirectory()
        let idle = try DaemonProcess(
            directory: idleDir.path, environment: ["GATEHOUSE_LISTENERS_OPERATIONS_IDLE_TIMEOUT": "1500ms"])
        try idle.waitUntilListening()
        let quiet = tcpConnect(idle.ports["operations"] ?? 0)
        #expect(quiet >= 0)
        #expect(!closedByPeer(quiet, within: 0.8), "not before the idle timeout")
        #expect(closedByPeer(quiet, within: 3), "closed by the idle timeout")
        close(quiet)
        #expect(idle.stop() == 0)
        // Handshake timeout: a TCP connection that never starts TLS is dropped after ~1 s.
        let h = tcpConnect(daemon.ports["https"] ?? 0)
        #expect(closedByPeer(h, within: 4))
        close(h)
        // Maximum message size: a body over 2048 bytes is refused with 413.
        let big = "{\"value\":\"" + String(repeating: "x", count: 4096) + "\"}"
        let (_, body, code) = try curl(
            daemon.adminCurl + [
                "-X", "POST", "--data-binary", big, daemon.httpsBase + "/api/v1/projects/p/secrets/big",
            ])
        #expect(code == 413)
        #expect(body.contains("payload_too_large"))
        // Malformed JSON: 400.
        let (_, _, badCode) = try curl(
            daemon.adminCurl + [
                "-X", "POST", "--data-binary", "{nope", daemon.httpsBase + "/api/v1/projects/p/secrets/bad",
            ])
        #expect(badCode == 400)
        #expect(daemon.stop() == 0)
    }

    @Test func gracefulShutdownDrainsInFlightRequests() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        // A ~600 KB upload at 200 KB/s takes ~3 s; SIGTERM arrives 1 s in and must not cut it off.
        let payload = "{\"value\":\"" + String(repeating: "d", count: 600_000) + "\"}"
        let file = dir.path + "/payload.json"
        try payload.write(toFile: file, atomically: true, encoding: .utf8)
        let upload = Process()
        upload.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let outFile = dir.path + "/upload.out"
        let traceFile = dir.path + "/upload.trace"
        upload.arguments =
            [
                "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--limit-rate", "200K", "--trace-ascii",
                traceFile,
            ]
            + daemon.adminCurl + [
                "-X", "POST", "--data-binary", "@" + file, daemon.httpsBase + "/api/v1/projects/p/secrets/drained",
            ]
        FileManager.default.createFile(atPath: outFile, contents: nil)
        upload.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outFile))
        try upload.run()
        // SIGTERM lands once the request head and the first 100 KB of the body have gone out, with the rest still
        // to send (curl's trace logs each chunk it sends as "=> Send data, N bytes").
        func sentBodyBytes() -> Int {
            let trace = (try? String(contentsOfFile: traceFile, encoding: .utf8)) ?? ""
            return trace.split(separator: "\n").filter { $0.hasPrefix("=> Send data, ") }
                .compactMap { Int($0.dropFirst("=> Send data, ".count).split(separator: " ").first ?? "") }.reduce(0, +)
        }
        let midUpload = Date().addingTimeInterval(10)
        while sentBodyBytes() < 100_000 && Date() < midUpload { usleep(20_000) }
        #expect(
            sentBodyBytes() >= 100_000 && sentBodyBytes() < 600_000 && upload.isRunning, "\(sentBodyBytes()) bytes sent"
        )
        daemon.signal(SIGTERM)
        upload.waitUntilExit()
        let code = try String(contentsOfFile: outFile, encoding: .utf8)
        #expect(code == "201", "the in-flight request completes during the drain")
        #expect(daemon.waitForExit() == 0)
        // New connections are refused after shutdown, and the write is durable.
        let again = try DaemonProcess(directory: dir.path)
        try again.waitUntilListening()
        try again.ensureProject("p")
        let (_, body, getCode) = try curl(again.adminCurl + [again.httpsBase + "/api/v1/projects/p/secrets/drained"])
        #expect(getCode == 200)
        #expect(body.contains("dddddddddd"))
        #expect(again.stop() == 0)
    }

    @Test func sighupReloadsTheServerCertificate() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        let target = "127.0.0.1:\(daemon.ports["https"] ?? 0)"
        func servedSerial() throws -> String {
            let out = try ProcessRunner.run(
                ["openssl", "s_client", "-connect", target], stdin: Data("Q\n".utf8), timeout: 20)
            let pem =
                out.stdout.components(separatedBy: "-----BEGIN CERTIFICATE-----").dropFirst().first?
                .components(separatedBy: "-----END CERTIFICATE-----").first ?? ""
            let cert = try Certificate(pemEncoded: "-----BEGIN CERTIFICATE-----" + pem + "-----END CERTIFICATE-----")
            return cert.serialNumber.description
        }
        let before = try servedSerial()
        let ca = try applianceCA(daemon.dataDirectory)
        let fresh = try CertificateFactory.issue(
            commonName: "localhost", usage: .server(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"]), issuer: ca,
            validity: 86400)
        try (fresh.certificatePEM + ca.certificatePEM).write(
            toFile: daemon.dataDirectory + "/certs/server.crt", atomically: true, encoding: .utf8)
        try fresh.privateKeyPEM.write(
            toFile: daemon.dataDirectory + "/certs/server.key", atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        var after = before
        for _ in 0..<50 where after == before {
            usleep(100_000)
            after = try servedSerial()
        }
        #expect(after == fresh.certificate.serialNumber.description)
        #expect(after != before)
        #expect(daemon.stop() == 0)
    }
}
