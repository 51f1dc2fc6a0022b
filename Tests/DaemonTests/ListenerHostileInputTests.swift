import Foundation
import TestSupport
import Testing

/// Hostile peers on every listener, and the audit stream to a real HTTP endpoint.
@Suite(.serialized) struct ListenerHostileInputTests {
    /// Sends raw bytes and returns what came back before the peer closed (or 3 s passed).
    func exchange(_ port: Int, _ bytes: [UInt8]) -> [UInt8] {
        let fd = tcpConnect(port)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return out
    }

    @Test func garbageNeverHurtsTheDaemon() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        let https = daemon.ports["https"] ?? 0
        let ops = daemon.ports["operations"] ?? 0
        var rng = SystemRandomNumberGenerator()
        // Random bytes, a truncated ClientHello, an HTTP request in clear text to the TLS port.
        for _ in 0..<20 {
            _ = exchange(
                https, (0..<Int.random(in: 1...2048, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        _ = exchange(https, [0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc, 0x03, 0x03])
        // Clear text to the TLS port is never answered in HTTP: a fatal TLS alert record (content type 21) or silence
        // while the TLS layer waits for the rest of what it read as a record header.
        let clear = exchange(https, Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(clear.isEmpty || clear.first == 0x15, "\(clear.prefix(16))")
        let brew = exchange(https, Array("BREW /coffee HTCPCP/1.0\r\n\r\n".utf8))
        #expect(
            brew.first == 0x15 && brew.count == 7 && brew[5] == 2 && brew[6] == 70,
            "fatal protocol_version alert: \(brew)")
        // Malformed HTTP on the plain operations listener: 400 and a close; an oversized head: 431 (RFC 6585 §5).
        let malformed = String(decoding: exchange(ops, Array("BREW /coffee HTCPCP/1.0\r\n\r\n".utf8)), as: UTF8.self)
        #expect(
            malformed.hasPrefix("HTTP/1.1 400 Bad Request\r\n") && malformed.lowercased().contains("connection: close"),
            "\(malformed)")
        let hugeHeader =
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 200_000) + "\r\n\r\n"
        let huge = String(decoding: exchange(ops, Array(hugeHeader.utf8)), as: UTF8.self)
        #expect(huge.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "\(huge.prefix(200))")
        // Garbage inside a valid TLS session: a 400 and a close.
        let out = try ProcessRunner.run(
            ["openssl", "s_client", "-quiet", "-connect", "127.0.0.1:\(https)", "-servername", "localhost"],
            stdin: Data("\u{01}\u{02}NOT HTTP AT ALL\r\n\r\n".utf8), timeout: 15)
        #expect(out.stdout.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(out.stdout.prefix(200))")
        // An oversized head inside TLS: 431 with HSTS.
        let hugeTLS = try ProcessRunner.run(
            ["openssl", "s_client", "-quiet", "-connect", "127.0.0.1:\(https)", "-servername", "localhost"],
            stdin: Data(hugeHeader.utf8), timeout: 15)
        #expect(
            hugeTLS.stdout.hasPrefix("HTTP/1.1 431 ") && hugeTLS.stdout.contains("strict-transport-security"),
            "\(hugeTLS.stdout.prefix(200))")
        // Traversal-looking names through the API are refused by name validation, never looked up.
        let (_, traversalBody, traversal) = try curl(
            daemon.adminCurl + ["--path-as-is", daemon.httpsBase + "/api/v1/projects/p/secrets/..%2f..%2fetc"])
        #expect(traversal == 400 && traversalBody.contains("\"invalid_argument\""), "\(traversal) \(traversalBody)")
        // Still alive and ready.
        let (_, body, code) = try curl([daemon.operationsBase + "/readyz"])
        #expect(code == 200 && body.hasPrefix("ready"))
        #expect(daemon.process.isRunning)
        #expect(daemon.stop() == 0)
    }

    @Test func auditEventsStreamToAnEndpointWithRetries() throws {
        let dir = try freshDirectory()
        let (receiver, port, logFile) = try startWebhookReceiver(in: dir.path, failFirst: 2)
        defer {
            kill(receiver.processIdentifier, SIGKILL)
            receiver.waitUntilExit()
        }
        #expect(!port.isEmpty)
        let daemon = try DaemonProcess(
            directory: dir.path,
            environment: [
                "GATEHOUSE_AUDIT_STREAM_URL": "http://127.0.0.1:\(port)/audit",
                "GATEHOUSE_AUDIT_STREAM_TOKEN": "stream-token-1",
            ])
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        for i in 0..<3 {
            let (_, _, code) = try curl(
                daemon.adminCurl + [
                    "-X", "POST", "-d", "{\"value\":\"v\(i)\"}", daemon.httpsBase + "/api/v1/projects/p/secrets/s\(i)",
                ])
            #expect(code == 201)
        }
        // Two 503s, then delivery (backoff 1 s + 2 s).
        var delivered = Set<Int>()
        var lines: [[String: Any]] = []
        for _ in 0..<150 where delivered.count < 4 {
            usleep(100_000)
            let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            lines = text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            delivered = []
            for line in lines where (line["status"] as? Int) == 204 {
                guard let body = line["body"] as? String,
                    let batch = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                    let events = batch["events"] as? [[String: Any]]
                else { continue }
                for e in events { if let s = e["sequence"] as? Int { delivered.insert(s) } }
            }
        }
        #expect(delivered == [1, 2, 3, 4], "project.create + 3 × secret.create")
        #expect(lines.filter { ($0["status"] as? Int) == 503 }.count == 2)
        #expect(lines.allSatisfy { ($0["authorization"] as? String) == "Bearer stream-token-1" })
        #expect(
            !lines.contains { (($0["body"] as? String) ?? "").contains("\"v1\"") }, "no secret values in audit events")
        #expect(daemon.stop() == 0)
    }
}
