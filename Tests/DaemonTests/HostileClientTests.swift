import Foundation
import ServerSupport
import TestSupport
import Testing

/// Listener behaviour under clients that stall, speak HTTP/1.0 or offer weak TLS signatures: the login deadline on
/// every listener, the connection cap, HTTP/1.0 persistence (ab), HSTS, and no SHA-1 signatures in TLS 1.2.
@Suite(.serialized) struct HostileClientTests {
    static let script = ProcessRunner.repositoryRoot + "/Tests/scripts/silent-clients.py"

    /// silent-clients.py's lines: (closed after seconds, what the server sent first) or nil for a connection still open.
    static func silent(
        _ protocolName: String, port: Int, ca: String, count: Int, limit: Double, cert: [String] = [],
        extra: Bool = false
    )
        throws -> (connections: [(Double, String)?], extra: String)
    {
        let out = try ProcessRunner.run(
            ["python3", script, protocolName, String(port), ca, String(count), String(limit)] + cert,
            environment: extra ? ["GH_EXTRA": "1"] : [:],
            timeout: limit * Double(count) + 60)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        var connections: [(Double, String)?] = []
        var extraLine = ""
        for line in out.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ").map(String.init)
            if parts.first == "closed", parts.count >= 2, let seconds = Double(parts[1]) {
                let hex = parts.count > 2 ? parts[2] : ""
                let bytes = stride(from: 0, to: hex.count - 1, by: 2).compactMap { i -> UInt8? in
                    let s = hex.index(hex.startIndex, offsetBy: i)
                    return UInt8(hex[s..<hex.index(s, offsetBy: 2)], radix: 16)
                }
                connections.append((seconds, String(decoding: bytes, as: UTF8.self)))
            } else if parts.first == "open" {
                connections.append(nil)
            } else if parts.first == "extra" {
                extraLine = String(line)
            }
        }
        return (connections, extraLine)
    }

    @Test func loginDeadlineOnEveryListenerFreesTheSlots() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(
            directory: dir.path,
            environment: [
                "GATEHOUSE_LISTENERS_HTTPS_LOGIN_TIMEOUT": "2s", "GATEHOUSE_LISTENERS_KMIP_LOGIN_TIMEOUT": "2s",
                "GATEHOUSE_LISTENERS_POSTGRES_LOGIN_TIMEOUT": "2s", "GATEHOUSE_LISTENERS_POSTGRES_MAX_CONNECTIONS": "3",
            ])
        try daemon.waitUntilListening()
        let ca = daemon.dataDirectory + "/certs/ca.crt"
        let admin = [daemon.dataDirectory + "/certs/admin.crt", daemon.dataDirectory + "/certs/admin.key"]

        // HTTPS: a client that never sends a whole request head gets 408 and is closed at the deadline.
        let https = try Self.silent("https", port: daemon.ports["https"] ?? 0, ca: ca, count: 2, limit: 10)
        #expect(https.connections.count == 2)
        for c in https.connections {
            let (seconds, sent) = try #require(c, "an HTTPS connection was still open after 10 s")
            #expect(seconds >= 1.5 && seconds < 5, "closed after \(seconds) s")
            #expect(sent.hasPrefix("HTTP/1.1 408"), "\(sent)")
        }
        // KMIP: a client that sends no message is closed at the deadline.
        let kmip = try Self.silent("kmip", port: daemon.ports["kmip"] ?? 0, ca: ca, count: 2, limit: 10, cert: admin)
        #expect(kmip.connections.count == 2)
        for c in kmip.connections {
            let (seconds, _) = try #require(c, "a KMIP connection was still open after 10 s")
            #expect(seconds >= 1.5 && seconds < 5, "closed after \(seconds) s")
        }
        // PostgreSQL: three silent clients fill max_connections = 3, so a fourth is turned away at once; at the
        // deadline each gets PostgreSQL's own FATAL (57014) and its slot is free again.
        let pg = try Self.silent(
            "postgres", port: daemon.ports["postgres"] ?? 0, ca: ca, count: 3, limit: 10, extra: true)
        #expect(pg.connections.count == 3)
        for c in pg.connections {
            let (seconds, sent) = try #require(c, "a PostgreSQL connection was still open after 10 s")
            #expect(seconds >= 1.5 && seconds < 5, "closed after \(seconds) s")
            #expect(sent.contains("57014") && sent.contains("canceling authentication due to timeout"), "\(sent)")
        }
        #expect(pg.extra.contains("extra refused while full") && pg.extra.contains("accepted after"), "\(pg.extra)")

        // A client that asks in time is served as before, and its keep-alive connection outlives the deadline (the
        // deadline ends with the first request head).
        let (_, _, code) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/projects"])
        #expect(code == 200)
        let keepAlive = """
            import socket, ssl, sys, time
            ctx = ssl.create_default_context(cafile=sys.argv[2]); ctx.check_hostname = False
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
            buffered = b""
            def response():
                global buffered
                while b"\\r\\n\\r\\n" not in buffered:
                    chunk = s.recv(4096)
                    if not chunk: return "closed"
                    buffered += chunk
                head, _, rest = buffered.partition(b"\\r\\n\\r\\n")
                length = next(int(l.split(b":")[1]) for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length:"))
                while len(rest) < length: rest += s.recv(4096)
                buffered = rest[length:]
                return head.split(b"\\r\\n")[0].decode()
            request = b"GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n"
            s.sendall(request); first = response()
            time.sleep(3)
            s.sendall(request); print(first, "|", response())
            """
        let served = try ProcessRunner.run(
            ["python3", "-c", keepAlive, String(daemon.ports["https"] ?? 0), ca], timeout: 30)
        #expect(served.stdout == "HTTP/1.1 200 OK | HTTP/1.1 200 OK\n", "\(served.stdout)\(served.stderr)")
        #expect(daemon.stop() == 0)
    }

    /// A source that keeps failing authentication is refused with each protocol's own error once its bucket is
    /// empty, a verified client on the same address is not, and the audit log holds a few of its refusals in full.
    @Test func failingSourcesAreRateLimitedAndTheirRefusalsAuditedBounded() throws {
        let dir = try freshDirectory()
        var env: [String: String] = [:]
        for l in ["HTTPS", "KMIP", "POSTGRES"] {
            env["GATEHOUSE_LISTENERS_\(l)_FAILURE_BURST"] = "10"
            env["GATEHOUSE_LISTENERS_\(l)_FAILURES_PER_MINUTE"] = "1"
        }
        let daemon = try DaemonProcess(directory: dir.path, environment: env)
        try daemon.waitUntilListening()
        let certs = daemon.dataDirectory + "/certs"

        // HTTPS: 15 anonymous requests on one connection: 10 refusals (401), then 429 with Retry-After, each after
        // the one-second tarpit.
        let url = "https://localhost:\(daemon.ports["https"] ?? 0)/api/v1/projects"
        let codes = try ProcessRunner.run(
            ["curl", "-sS", "--cacert", certs + "/ca.crt", "-w", "%{http_code}\n"]
                + Array(repeating: ["-o", "/dev/null", url], count: 15).flatMap { $0 },
            timeout: 60)
        let statuses = codes.stdout.split(separator: "\n").map(String.init)
        #expect(
            statuses.filter { $0 == "401" }.count == 10 && statuses.filter { $0 == "429" }.count == 5, "\(statuses)")
        let t0 = Date()
        let limited = try ProcessRunner.run(
            ["curl", "-sS", "--cacert", certs + "/ca.crt", "-D", "-", url], timeout: 20)
        #expect(
            limited.stdout.hasPrefix("HTTP/1.1 429") && limited.stdout.lowercased().contains("retry-after:"),
            "\(limited.stdout)")
        #expect(Date().timeIntervalSince(t0) >= 0.9, "the refusal waits out the tarpit")
        #expect(limited.stdout.contains("rate_limited"))
        let (_, _, adminCode) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/projects"])
        #expect(adminCode == 200, "a verified certificate from the same address is served")

        // KMIP: a certificate the CA signed for a name no identity has: refused, then limited.
        let stranger = try CertificateFactory.issue(
            commonName: "kmip-stranger", usage: .client, issuer: try applianceCA(daemon.dataDirectory), validity: 3600)
        let strangerFiles = try clientFiles(stranger, in: dir.path, name: "kmip-stranger")
        let kmip = try ProcessRunner.run(
            [
                "python3", ProcessRunner.repositoryRoot + "/Tests/scripts/kmip-repeat.py",
                String(daemon.ports["kmip"] ?? 0), certs + "/ca.crt",
                strangerFiles[1], strangerFiles[3], "15",
            ], timeout: 60)
        let kmipLines = kmip.stdout.split(separator: "\n").map(String.init)
        #expect(
            kmipLines.count == 15 && kmipLines.prefix(10).allSatisfy { $0.hasPrefix("refused") }
                && kmipLines.suffix(5).allSatisfy { $0 == "limited" },
            "\(kmipLines) \(kmip.stderr)")
        let adminKMIP = try ProcessRunner.run(
            [
                "python3", ProcessRunner.repositoryRoot + "/Tests/scripts/kmip-repeat.py",
                String(daemon.ports["kmip"] ?? 0), certs + "/ca.crt",
                certs + "/admin.crt", certs + "/admin.key", "2",
            ], timeout: 60)
        #expect(
            adminKMIP.stdout == "success\nsuccess\n",
            "another certificate is not held back: \(adminKMIP.stdout)\(adminKMIP.stderr)")

        // PostgreSQL: a bad access token as the password, 12 times: 10 refusals (28P01), then 53300.
        var pgErrors: [String] = []
        for _ in 0..<12 {
            let out = try ProcessRunner.run(
                [
                    "psql", "-X", "-At",
                    "host=127.0.0.1 port=\(daemon.ports["postgres"] ?? 0) user=u dbname=d sslmode=require connect_timeout=10",
                    "-c", "select 1",
                ],
                environment: ["PGPASSWORD": "ghat_not-a-token"], timeout: 30)
            pgErrors.append(out.stderr)
        }
        #expect(pgErrors.prefix(10).allSatisfy { $0.contains("authentication failed") }, "\(pgErrors.prefix(10))")
        #expect(pgErrors.suffix(2).allSatisfy { $0.contains("too many failed log-ins") }, "\(pgErrors.suffix(2))")

        // The audit log: a few anonymous HTTPS refusals in full (not one per request); the count follows when the
        // window ends (the daemon writes summaries every 15 s).
        let events = try auditLog(daemon).events
        let anonymousFailures = events.filter {
            ($0["event"] as? [String: Any])?["type"] as? String == "authentication.failed"
                && $0["userAgentType"] as? String == "admin-api"
                && ($0["actor"] as? [String: Any])?["type"] as? String == "unknownUser"
        }
        #expect(anonymousFailures.count == 5, "\(anonymousFailures.count) anonymous refusals audited in full")
        #expect(daemon.stop() == 0)
    }

    @Test func httpOnePointZeroClosesUnlessKeepAliveAndHTTPSSendsHSTS() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ab") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("ab (apache2-utils) is not installed")
            }
            return
        }
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let https = "https://127.0.0.1:\(daemon.ports["https"] ?? 0)/healthz"
        let operations = daemon.operationsBase + "/healthz"
        for url in [https, operations] {
            // Plain ab speaks HTTP/1.0 without keep-alive: every response must end with the connection.
            let plain = try ProcessRunner.run(["ab", "-n", "40", "-c", "4", "-s", "5", url], timeout: 60)
            #expect(
                plain.status == 0 && plain.stdout.contains("Complete requests:      40"),
                "\(url): \(plain.stdout)\(plain.stderr)")
            #expect(plain.stdout.contains("Failed requests:        0"), "\(url): \(plain.stdout)")
            // ab -k asks for keep-alive, which is granted: one connection per ab worker.
            let keep = try ProcessRunner.run(["ab", "-k", "-n", "40", "-c", "4", "-s", "5", url], timeout: 60)
            #expect(
                keep.status == 0 && keep.stdout.contains("Keep-Alive requests:    40"),
                "\(url): \(keep.stdout)\(keep.stderr)")
        }
        // The answer to HTTP/1.0 says what happens to the connection.
        let head10 = try ProcessRunner.run(
            ["curl", "-sS", "--http1.0", "-D", "-", "-o", "/dev/null", "--max-time", "5", operations], timeout: 20)
        #expect(
            head10.status == 0 && head10.stdout.hasPrefix("HTTP/1.0 200")
                && head10.stdout.lowercased().contains("connection: close"), "\(head10.stdout)")
        let keep10 = try ProcessRunner.run(
            [
                "curl", "-sS", "--http1.0", "-H", "Connection: keep-alive", "-D", "-", "-o", "/dev/null", "--max-time",
                "5", operations,
            ], timeout: 20)
        #expect(keep10.stdout.lowercased().contains("connection: keep-alive"), "\(keep10.stdout)")
        // HSTS on the HTTPS listener (errors included), not on plain HTTP.
        for path in ["/healthz", "/api/v1/no-such-route"] {
            let headers = try ProcessRunner.run(
                [
                    "curl", "-sS", "--cacert", daemon.dataDirectory + "/certs/ca.crt", "-D", "-", "-o", "/dev/null",
                    "https://localhost:\(daemon.ports["https"] ?? 0)" + path,
                ], timeout: 20)
            #expect(
                headers.stdout.lowercased().contains("strict-transport-security: max-age=31536000"),
                "\(path): \(headers.stdout)")
        }
        #expect(!head10.stdout.lowercased().contains("strict-transport-security"))
        #expect(daemon.stop() == 0)
    }

    @Test func tlsTwelveRefusesSHA1Signatures() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let certs = daemon.dataDirectory + "/certs"
        func handshake(_ listener: String, _ sigalgs: String) throws -> (Bool, String) {
            var args = [
                "openssl", "s_client", "-connect", "127.0.0.1:\(daemon.ports[listener] ?? 0)", "-servername",
                "localhost",
                "-tls1_2", "-sigalgs", sigalgs, "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", certs + "/ca.crt",
            ]
            if listener == "kmip" { args += ["-cert", certs + "/admin.crt", "-key", certs + "/admin.key"] }
            if listener == "postgres" { args += ["-starttls", "postgres"] }
            let out = try ProcessRunner.run(args, stdin: Data("Q\n".utf8), timeout: 20)
            let text = out.stdout + out.stderr
            return (out.status == 0 && text.contains("Cipher is") && !text.contains("Cipher is (NONE)"), text)
        }
        for listener in ["https", "kmip", "postgres"] {
            let (sha256, text256) = try handshake(listener, "ECDSA+SHA256:RSA+SHA256")
            #expect(sha256, "\(listener) with SHA-256: \(text256.suffix(600))")
            let (sha1, text1) = try handshake(listener, "ECDSA+SHA1:RSA+SHA1")
            #expect(!sha1, "\(listener) accepted a SHA-1-only client")
            #expect(
                text1.contains("alert handshake failure") || text1.contains("no shared signature algorithms")
                    || text1.contains("no suitable signature algorithm"), "\(listener): \(text1.suffix(600))")
        }
        #expect(daemon.stop() == 0)
    }
}
