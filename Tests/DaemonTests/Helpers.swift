import Crypto
import Foundation
import ServerSupport
import TestSupport
import Testing
import X509

/// curl with the given extra arguments; returns (exit status, body, HTTP status).
func curl(_ args: [String], timeout: TimeInterval = 30) throws -> (Int32, String, Int) {
    let out = try ProcessRunner.run(["curl", "-sS", "-w", "\n%{http_code}"] + args, timeout: timeout)
    var lines = out.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let code = Int(lines.popLast() ?? "") ?? 0
    return (out.status, lines.joined(separator: "\n"), code)
}

/// curl's exit status and what it printed on standard error, for requests expected to fail in the TLS handshake.
func curlFailure(_ args: [String], timeout: TimeInterval = 30) throws -> (status: Int32, stderr: String) {
    let out = try ProcessRunner.run(["curl", "-sS", "-o", "/dev/null"] + args, timeout: timeout)
    return (out.status, out.stderr)
}

/// A fresh working directory with an initialized data directory.
func freshDirectory() throws -> TemporaryDirectory { try TemporaryDirectory(prefix: "gh-daemon") }

/// Loads the appliance CA made by first start, to sign test certificates.
func applianceCA(_ dataDirectory: String) throws -> CertificateFactory.Issued {
    let certPEM = try String(contentsOfFile: dataDirectory + "/certs/ca.crt", encoding: .utf8)
    let keyPEM = try String(contentsOfFile: dataDirectory + "/certs/ca.key", encoding: .utf8)
    return CertificateFactory.Issued(
        certificate: try Certificate(pemEncoded: certPEM),
        privateKey: try P256.Signing.PrivateKey(pemRepresentation: keyPEM))
}

/// Writes a client certificate and key to files and returns curl's arguments for them.
func clientFiles(_ issued: CertificateFactory.Issued, in dir: String, name: String) throws -> [String] {
    let cert = dir + "/\(name).crt"
    let key = dir + "/\(name).key"
    try issued.certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
    try issued.privateKeyPEM.write(toFile: key, atomically: true, encoding: .utf8)
    chmod(key, 0o600)
    return ["--cert", cert, "--key", key]
}

/// The daemon's first 1,000 audit events, read as the administrator: the response text and each chained record's
/// `event` object (`event.type`, `event.metadata`, `actor`, `projectId`, `timestamp`, …).
func auditLog(_ daemon: DaemonProcess) throws -> (text: String, events: [[String: Any]]) {
    let (_, text, _) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/audit/events?limit=1000"])
    let records =
        (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["events"] as? [[String: Any]] ?? []
    return (text, records.compactMap { $0["event"] as? [String: Any] })
}

/// Opens a TCP connection to 127.0.0.1:port; returns the fd.
func tcpConnect(_ port: Int) -> Int32 { Loopback.connect(port: port) }

/// True when the peer closed the connection within `within` seconds (anything it sent first, such as a TLS
/// alert, is read and ignored).
func closedByPeer(_ fd: Int32, within: TimeInterval) -> Bool {
    let deadline = Date().addingTimeInterval(within)
    var buffer = [UInt8](repeating: 0, count: 4096)
    while Date() < deadline {
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let n = read(fd, &buffer, buffer.count)
        if n == 0 { return true }
        if n < 0 {
            if errno == ECONNRESET { return true }
            // Any other error (EBADF for a connection that was never made) says nothing about the peer.
            if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return false }
        }
    }
    return false
}

/// Sends `request` on `fd` and reads until the reply contains `until` (or `within` seconds pass); what was read.
/// Used to know that the server has accepted and served a connection, instead of sleeping.
func roundTrip(_ fd: Int32, _ request: String, until: String, within: TimeInterval = 5) -> String {
    _ = Array(request.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    let deadline = Date().addingTimeInterval(within)
    var reply: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while Date() < deadline, !String(decoding: reply, as: UTF8.self).contains(until) {
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let n = read(fd, &buffer, buffer.count)
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { break }
        if n > 0 { reply += buffer[0..<n] }
    }
    return String(decoding: reply, as: UTF8.self)
}

/// A curl `-K` config that POSTs each (url, JSON body) with the daemon's admin certificate and prints
/// "<label> <status>" per transfer; run it with `curl --parallel -K FILE`.
func curlPostBatch(_ posts: [(label: String, url: String, json: String)], certs: String) -> String {
    var config = ""
    for (i, post) in posts.enumerated() {
        if i > 0 { config += "next\n" }
        let data = post.json.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        config += """
            url = "\(post.url)"
            request = "POST"
            data = "\(data)"
            header = "Content-Type: application/json"
            cacert = "\(certs)/ca.crt"
            cert = "\(certs)/admin.crt"
            key = "\(certs)/admin.key"
            silent
            output = "/dev/null"
            write-out = "\(post.label) %{http_code}\\n"

            """
    }
    return config
}

/// Tests/scripts/webhook-receiver.py on a free loopback port, answering the first `failFirst` POSTs with 503; it
/// appends one JSON line per POST to `logFile`. Kill the process when done.
func startWebhookReceiver(in dir: String, failFirst: Int) throws -> (process: Process, port: String, logFile: String) {
    let portFile = dir + "/receiver.port"
    let logFile = dir + "/receiver.jsonl"
    let receiver = Process()
    receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    receiver.arguments = [
        "python3", ProcessRunner.repositoryRoot + "/Tests/scripts/webhook-receiver.py", portFile, logFile,
        "\(failFirst)",
    ]
    try receiver.run()
    var port = ""
    for _ in 0..<100 where port.isEmpty {
        port = (try? String(contentsOfFile: portFile, encoding: .utf8)) ?? ""
        usleep(50_000)
    }
    return (receiver, port, logFile)
}

/// posix_spawn attributes for a child with an empty signal mask and default handlers: the test process blocks
/// signals (psql must see SIGINT, sshd its SIGHUP/SIGTERM). The caller destroys them.
enum CleanSignalSpawn {
    static func attributes() -> posix_spawnattr_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        return attributes
    }
}
