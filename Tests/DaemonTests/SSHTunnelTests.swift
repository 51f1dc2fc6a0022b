import Crypto
import Foundation
import Synchronization
import TestSupport
import Testing

/// The reverse tunnel against a stock OpenSSH `sshd` started here on loopback as the relay: the gateway dials out,
/// gets its remote forwards, and clients that connect to the relay's ports reach Gatehouse's listeners (mTLS end to
/// end, so the relay only carries ciphertext); 256 MiB survive `RekeyLimit 64K 1s` byte for byte; killing and
/// restarting the relay brings the forwards back by themselves; a wrong relay host key is refused before any
/// authentication; a relay that speaks garbage does not hurt the daemon.
@Suite(.serialized) struct SSHTunnelTests {
    /// A relay: sshd with its own host key, config and log, for the current user (a forwarding-only key).
    final class Relay {
        let dir: String
        let port: Int
        var sshd: SSHD?
        var hostKeyLine: String {
            (try? String(contentsOfFile: dir + "/relay_host_key.pub", encoding: .utf8))?.trimmingCharacters(
                in: .whitespacesAndNewlines) ?? ""
        }
        var log: String { (try? String(contentsOfFile: dir + "/sshd.log", encoding: .utf8)) ?? "" }

        init(dir: String, authorizedKeys: String, extraConfig: String = "") throws {
            self.dir = dir
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            port = try freeLoopbackPort()
            let keygen = try ProcessRunner.run([
                "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "relay", "-f", dir + "/relay_host_key",
            ])
            #expect(keygen.status == 0, "\(keygen.stderr)")
            try authorizedKeys.write(toFile: dir + "/authorized_keys", atomically: true, encoding: .utf8)
            if getuid() == 0 {
                try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
            }
            try """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(dir)/relay_host_key
            PidFile \(dir)/sshd.pid
            AuthorizedKeysFile \(dir)/authorized_keys
            StrictModes no
            UsePAM no
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PubkeyAuthentication yes
            PermitRootLogin prohibit-password
            AllowTcpForwarding yes
            PermitTTY no
            X11Forwarding no
            LogLevel DEBUG1
            \(extraConfig)

            """.write(toFile: dir + "/sshd_config", atomically: true, encoding: .utf8)
            let check = try ProcessRunner.run(["/usr/sbin/sshd", "-t", "-f", dir + "/sshd_config"])
            #expect(check.status == 0, "sshd -t: \(check.stderr)")
            try start()
        }

        func start() throws {
            sshd = try SSHD(config: dir + "/sshd_config", log: dir + "/sshd.log")
            for _ in 0..<100 {
                let fd = tcpConnect(port)
                if fd >= 0 {
                    close(fd)
                    return
                }
                usleep(50_000)
            }
            Issue.record("the relay sshd did not listen: \(log)")
        }

        /// Kills the relay outright: the listening sshd and every per-connection sshd under it.
        func kill() {
            guard let sshd, sshd.pid > 0 else { return }
            for child in Self.descendants(of: sshd.pid) { Glibc.kill(child, SIGKILL) }
            sshd.stop()
            self.sshd = nil
        }

        static func descendants(of pid: pid_t) -> [pid_t] {
            var result: [pid_t] = []
            var frontier = [pid]
            let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { pid_t($0) } ?? []
            while let parent = frontier.popLast() {
                for p in all {
                    guard let status = try? String(contentsOfFile: "/proc/\(p)/status", encoding: .utf8),
                        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }),
                        pid_t(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) == parent
                    else { continue }
                    result.append(p)
                    frontier.append(p)
                }
            }
            return result
        }

        deinit { kill() }
    }

    static func openSSHAvailable() -> Bool {
        if FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") { return true }
        if dependencyRequired("OPENSSH") {
            Issue.record("/usr/sbin/sshd is missing (openssh-server)")
        }
        return false
    }

    /// Initializes a data directory and returns the authorized_keys line `gatehouse tunnel relay-config` prints.
    static func prepareGateway(dataDirectory: String, forwards: [String]) throws -> String {
        let initOut = try ProcessRunner.run(
            [ProcessRunner.gatehouseBinary, "init", "--data-dir", dataDirectory], timeout: 60)
        #expect(initOut.status == 0, "\(initOut.stderr)")
        #expect(initOut.stdout.contains("gateway SSH key:"), "\(initOut.stdout)")
        let keyCheck = try ProcessRunner.run(["ssh-keygen", "-y", "-f", dataDirectory + "/tunnel/gateway_ed25519"])
        #expect(
            keyCheck.status == 0 && keyCheck.stdout.hasPrefix("ssh-ed25519 "),
            "OpenSSH cannot read the gateway key: \(keyCheck.stderr)")
        let line = try ProcessRunner.run(
            [ProcessRunner.gatehouseBinary, "tunnel", "relay-config", "--data-dir", dataDirectory, "--authorized-keys"]
                + forwards.flatMap { ["--forward", $0] })
        #expect(line.status == 0, "\(line.stderr)")
        return line.stdout
    }

    /// Initializes the gateway, starts a relay that authorizes it (extra sshd_config lines allowed) and the daemon
    /// with the tunnel configured (`hostKey` overrides the pinned key). The caller kills/stops both.
    static func startGateway(
        _ dir: TemporaryDirectory, forwards: [String], relayConfig: String = "", hostKey: String? = nil
    ) throws -> (Relay, DaemonProcess) {
        let authorized = try prepareGateway(dataDirectory: dir.path + "/.gatehouse", forwards: forwards)
        let relay = try Relay(dir: dir.path + "/relay", authorizedKeys: authorized, extraConfig: relayConfig)
        let daemon = try DaemonProcess(
            directory: dir.path, environment: tunnelEnvironment(relay: relay, forwards: forwards, hostKey: hostKey))
        try daemon.waitUntilListening()
        return (relay, daemon)
    }

    static func tunnelEnvironment(relay: Relay, forwards: [String], hostKey: String? = nil) -> [String: String] {
        [
            "GATEHOUSE_TUNNEL_ENABLED": "true",
            "GATEHOUSE_TUNNEL_RELAY": "127.0.0.1:\(relay.port)",
            "GATEHOUSE_TUNNEL_USER": NSUserName(),
            "GATEHOUSE_TUNNEL_RELAY_HOST_KEY": hostKey ?? "[127.0.0.1]:\(relay.port) " + relay.hostKeyLine,
            "GATEHOUSE_TUNNEL_FORWARDS": forwards.joined(separator: ","),
            "GATEHOUSE_TUNNEL_RECONNECT_MIN": "200ms",
            "GATEHOUSE_TUNNEL_RECONNECT_MAX": "1s",
            "GATEHOUSE_TUNNEL_KEEPALIVE_INTERVAL": "1s",
            "GATEHOUSE_TUNNEL_KEEPALIVE_COUNT_MAX": "3",
        ]
    }

    static func tunnelStatus(_ daemon: DaemonProcess) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: daemon.dataDirectory + "/run/tunnel.json") else {
            return nil
        }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    static func waitForTunnel(
        _ daemon: DaemonProcess, timeout: TimeInterval = 30, until predicate: ([String: Any]) -> Bool
    ) -> [String: Any]? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = tunnelStatus(daemon), predicate(s) { return s }
            usleep(50_000)
        }
        return nil
    }

    @Test func relayForwardsReachTheListenersAndTheRelaySeesOnlyCiphertext() throws {
        guard Self.openSSHAvailable() else { return }
        let dir = try freshDirectory()
        let dataDirectory = dir.path + "/.gatehouse"
        let httpsRelayPort = try freeLoopbackPort()
        let forwards = ["https=127.0.0.1:\(httpsRelayPort)"]
        let (relay, daemon) = try Self.startGateway(dir, forwards: forwards)
        defer { relay.kill() }
        defer { _ = daemon.stop() }
        let authorized = (try? String(contentsOfFile: relay.dir + "/authorized_keys", encoding: .utf8)) ?? ""
        #expect(
            authorized.hasPrefix("restrict,port-forwarding,permitlisten=\"127.0.0.1:\(httpsRelayPort)\" ssh-ed25519 "),
            "\(authorized)")
        let status = try #require(
            Self.waitForTunnel(daemon) { $0["state"] as? String == "established" },
            "tunnel not established: \(String(describing: Self.tunnelStatus(daemon)))\n\(daemon.log)\n\(relay.log.suffix(3000))"
        )
        let forward = try #require((status["forwards"] as? [[String: Any]])?.first)
        #expect(forward["state"] as? String == "active" && forward["boundPort"] as? Int == httpsRelayPort)
        #expect(relay.log.contains("Accepted publickey for \(NSUserName())"))

        // A client at the relay reaches the HTTPS listener with mutual TLS: the admin certificate authenticates.
        let whoami = try ProcessRunner.run(
            ["curl", "-sS", "--max-time", "20"] + daemon.adminCurl + [
                "https://127.0.0.1:\(httpsRelayPort)/api/v1/whoami"
            ])
        #expect(whoami.status == 0 && whoami.stdout.contains("gatehouse-admin"), "\(whoami.stdout) \(whoami.stderr)")

        // What crosses the relay's forwarded port is TLS: a marker sent in the request (and named in the refusal) never
        // appears in clear.
        let capture = try CapturingProxy(upstreamPort: httpsRelayPort)
        defer { capture.stop() }
        let marker = "plaintext-marker-\(UUID().uuidString)"
        let probe = try ProcessRunner.run(
            [
                "curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Marker: \(marker)",
                "--resolve", "localhost:\(capture.port):127.0.0.1",
            ] + daemon.adminCurl
                + ["https://localhost:\(capture.port)/api/v1/projects/\(marker)"])
        #expect(
            probe.stdout.hasPrefix("4") && probe.stdout.count == 3,
            "the request did not make it through: \(probe.stdout) \(probe.stderr)")
        let seen = capture.bytes
        #expect(seen.count > 1000, "nothing captured")
        #expect(seen.first == 0x16, "the first byte on the relay port is not a TLS handshake record")
        #expect(!seen.containsBytes(Array(marker.utf8)), "the marker crossed the relay in clear")
        #expect(!seen.containsBytes(Array("HTTP/1.1".utf8)), "HTTP crossed the relay in clear")

        // Visible in /readyz, /metrics and `gatehouse tunnel status`.
        let ready = try ProcessRunner.run(["curl", "-sS", daemon.operationsBase + "/readyz"])
        #expect(ready.stdout.contains("tunnel 127.0.0.1:\(relay.port): established"), "\(ready.stdout)")
        let metrics = try ProcessRunner.run(["curl", "-sS", daemon.operationsBase + "/metrics"])
        #expect(metrics.stdout.contains("gatehouse_tunnel_up 1"), "\(metrics.stdout.suffix(2000))")
        #expect(metrics.stdout.contains("gatehouse_tunnel_connections_total"))
        let cli = try ProcessRunner.run([
            ProcessRunner.gatehouseBinary, "tunnel", "status", "--data-dir", dataDirectory,
        ])
        #expect(cli.status == 0 && cli.stdout.contains("state:        established"), "\(cli.stdout) \(cli.stderr)")

        // Killed, the daemon leaves run/tunnel.json behind; status reads the directory's lock and tells the truth.
        daemon.signal(SIGKILL)
        daemon.waitForExit()
        #expect(
            FileManager.default.fileExists(atPath: dataDirectory + "/run/tunnel.json"),
            "the stale file this check is about")
        let dead = try ProcessRunner.run([
            ProcessRunner.gatehouseBinary, "tunnel", "status", "--data-dir", dataDirectory,
        ])
        #expect(
            dead.status != 0 && dead.stderr.contains("not running") && !dead.stdout.contains("established"),
            "\(dead.status) \(dead.stdout) \(dead.stderr)")
    }

    @Test func twoHundredFiftySixMiBSurviveAThousandRekeysAndTheRelayComesBack() throws {
        guard Self.openSSHAvailable() else { return }
        let dir = try freshDirectory()
        let sink = try DigestSink()
        defer { sink.stop() }
        let sinkRelayPort = try freeLoopbackPort()
        let forwards = ["127.0.0.1:\(sink.port)=127.0.0.1:\(sinkRelayPort)"]
        let (relay, daemon) = try Self.startGateway(dir, forwards: forwards, relayConfig: "RekeyLimit 64K 1s")
        defer { relay.kill() }
        defer { _ = daemon.stop() }
        _ = try #require(
            Self.waitForTunnel(daemon) { $0["state"] as? String == "established" },
            "tunnel not established: \(String(describing: Self.tunnelStatus(daemon)))\n\(daemon.log)")

        let rekeysBefore = relay.log.components(separatedBy: "SSH2_MSG_NEWKEYS received").count - 1
        let size = 256 << 20
        let (sent, echoed) = try DigestSink.send(bytes: size, to: sinkRelayPort, timeout: 600)
        #expect(sent == echoed, "the sink saw other bytes than were sent (\(size) bytes)")
        let rekeys = relay.log.components(separatedBy: "SSH2_MSG_NEWKEYS received").count - 1 - rekeysBefore
        #expect(rekeys >= 1000, "only \(rekeys) re-keys during the transfer")
        #expect(Self.tunnelStatus(daemon)?["sessions"] as? Int == 1, "the session did not survive the re-keys")

        // Kill the relay: the gateway notices, backs off, and the forwards come back once the relay is back.
        relay.kill()
        let down = Self.waitForTunnel(daemon) { $0["state"] as? String != "established" }
        #expect(down != nil, "the gateway did not notice the relay going away")
        let notReady = try ProcessRunner.run([
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", daemon.operationsBase + "/readyz",
        ])
        #expect(notReady.stdout == "503", "/readyz: \(notReady.stdout)")
        try relay.start()
        let back = Self.waitForTunnel(daemon) {
            $0["state"] as? String == "established" && ($0["sessions"] as? Int ?? 0) >= 2
        }
        #expect(back != nil, "the tunnel did not come back: \(String(describing: Self.tunnelStatus(daemon)))")
        let (again, againEchoed) = try DigestSink.send(bytes: 1 << 20, to: sinkRelayPort, timeout: 60)
        #expect(again == againEchoed)

        // A relay that stops answering (its session process frozen; TCP stays up): keepalives go unanswered, the
        // gateway gives up after keepalive_interval × keepalive_count_max and dials a fresh session.
        // (The frozen session still holds the forwarded port on the relay, so the new session's forward is refused
        // until the relay's own session is gone; the gateway keeps retrying with backoff.)
        let frozen = Relay.descendants(of: relay.sshd?.pid ?? 0)
        #expect(!frozen.isEmpty)
        for p in frozen { kill(p, SIGSTOP) }
        defer { for p in frozen { kill(p, SIGKILL) } }
        let patience = Date().addingTimeInterval(15)
        var noticed = daemon.log.contains("keepalive timeout")
        while !noticed && Date() < patience {
            usleep(50_000)
            noticed = daemon.log.contains("keepalive timeout")
        }
        #expect(noticed, "the frozen relay was not noticed: \(daemon.log.suffix(2000))")
        for p in frozen { kill(p, SIGKILL) }
        let third = Self.waitForTunnel(daemon, timeout: 30) {
            $0["state"] as? String == "established" && ($0["sessions"] as? Int ?? 0) >= 3
        }
        #expect(
            third != nil,
            "no new session after the frozen relay session went away: \(String(describing: Self.tunnelStatus(daemon)))")
    }

    /// Many connections share the one SSH session: a target that stops reading holds back only its own connection
    /// (per-channel flow control, bounded buffering in the gateway) while a hundred concurrent echo connections go
    /// through unharmed; once the target reads again, every byte of the stalled connection arrives.
    @Test func aStalledConnectionDoesNotBlockAHundredOthers() throws {
        guard Self.openSSHAvailable() else { return }
        let dir = try freshDirectory()
        let target = try EchoOrStallServer()
        defer { target.stop() }
        let relayPort = try freeLoopbackPort()
        let forwards = ["127.0.0.1:\(target.port)=127.0.0.1:\(relayPort)"]
        let (relay, daemon) = try Self.startGateway(dir, forwards: forwards)
        defer { relay.kill() }
        defer { _ = daemon.stop() }
        _ = try #require(Self.waitForTunnel(daemon) { $0["state"] as? String == "established" }, "\(daemon.log)")
        let rssBefore = Self.residentMiB(daemon.pid)

        // The stalled connection: write until nothing more is taken for a second.
        let stalled = tcpConnect(relayPort)
        try #require(stalled >= 0)
        defer { close(stalled) }
        _ = fcntl(stalled, F_SETFL, fcntl(stalled, F_GETFL) | O_NONBLOCK)
        var first: UInt8 = UInt8(ascii: "S")
        #expect(send(stalled, &first, 1, Int32(MSG_NOSIGNAL)) == 1)
        let chunk = [UInt8](repeating: 0x5a, count: 1 << 16)
        var accepted = 0
        var lastProgress = Date()
        while Date().timeIntervalSince(lastProgress) < 1.5 && accepted < 512 << 20 {
            let n = chunk.withUnsafeBytes { send(stalled, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                accepted += n
                lastProgress = Date()
            } else {
                usleep(10_000)
            }
        }
        #expect(accepted < 64 << 20, "\(accepted) bytes were taken for a target that reads nothing: no back-pressure")

        // A hundred echo connections at once, 64 KiB each, through the same session.
        let group = DispatchGroup()
        let failures = Atomic<Int>(0)
        let started = Date()
        for i in 0..<100 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                let fd = tcpConnect(relayPort)
                guard fd >= 0 else {
                    failures.wrappingAdd(1, ordering: .relaxed)
                    return
                }
                defer { close(fd) }
                var tv = timeval(tv_sec: 30, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                let payload = [UInt8(ascii: "E")] + (0..<(64 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
                var off = 0
                while off < payload.count {
                    let n = payload[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n <= 0 { break }
                    off += n
                }
                shutdown(fd, Int32(SHUT_WR))
                var back: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = read(fd, &buffer, buffer.count)
                    if n <= 0 { break }
                    back += buffer[0..<n]
                }
                if back != Array(payload.dropFirst()) { failures.wrappingAdd(1, ordering: .relaxed) }
            }
        }
        #expect(group.wait(timeout: .now() + 60) == .success, "echo connections hung behind the stalled one")
        #expect(
            failures.load(ordering: .relaxed) == 0,
            "\(failures.load(ordering: .relaxed)) of 100 echo connections failed")
        #expect(Date().timeIntervalSince(started) < 30)
        let rssDuring = Self.residentMiB(daemon.pid)
        #expect(rssDuring - rssBefore < 200, "the gateway grew from \(rssBefore) to \(rssDuring) MiB")

        // Release the stalled target: everything the client wrote arrives.
        target.release()
        shutdown(stalled, Int32(SHUT_WR))
        let deadline = Date().addingTimeInterval(30)
        while target.stalledBytes.load(ordering: .relaxed) < accepted && Date() < deadline { usleep(20_000) }
        #expect(target.stalledBytes.load(ordering: .relaxed) == accepted)
        let status = Self.waitForTunnel(daemon, timeout: 5) { ($0["totalConnections"] as? Int ?? 0) >= 101 }
        #expect(status != nil, "\(String(describing: Self.tunnelStatus(daemon)))")
    }

    static func residentMiB(_ pid: Int32) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    @Test func aWrongRelayHostKeyIsRefusedBeforeAuthenticationAndAGarbageRelayIsSurvived() throws {
        guard Self.openSSHAvailable() else { return }
        let dir = try freshDirectory()
        let dataDirectory = dir.path + "/.gatehouse"
        let relayPort = try freeLoopbackPort()
        let forwards = ["https=127.0.0.1:\(relayPort)"]
        // Pin another Ed25519 key than the relay's.
        let other = try ProcessRunner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.path + "/other"])
        #expect(other.status == 0)
        let otherKey = try String(contentsOfFile: dir.path + "/other.pub", encoding: .utf8)
        let (relay, daemon) = try Self.startGateway(dir, forwards: forwards, hostKey: otherKey)
        defer { relay.kill() }
        defer { _ = daemon.stop() }
        let refused = Self.waitForTunnel(daemon) { ($0["lastError"] as? String)?.contains("host key mismatch") == true }
        let error = refused?["lastError"] as? String ?? "none"
        #expect(refused != nil, "no host key error: \(String(describing: Self.tunnelStatus(daemon)))")
        #expect(error.contains("SHA256:"), "\(error)")
        // Nothing was authenticated or forwarded.
        #expect(
            !relay.log.contains("publickey"), "the gateway offered its key to a relay it does not trust:\n\(relay.log)")
        #expect(tcpConnect(relayPort) < 0, "a forward is listening on the relay")
        let cli = try ProcessRunner.run([
            ProcessRunner.gatehouseBinary, "tunnel", "status", "--data-dir", dataDirectory,
        ])
        #expect(cli.status == 3 && cli.stdout.contains("host key mismatch"), "\(cli.stdout)")
        _ = daemon.stop()

        // A hostile relay: a banner, then garbage; and one that closes at once. The daemon keeps serving.
        let garbage = try HostileRelay()
        defer { garbage.stop() }
        var env = Self.tunnelEnvironment(relay: relay, forwards: forwards)
        env["GATEHOUSE_TUNNEL_RELAY"] = "127.0.0.1:\(garbage.port)"
        let victim = try DaemonProcess(directory: dir.path, environment: env)
        defer { _ = victim.stop() }
        try victim.waitUntilListening()
        let failing = try #require(
            Self.waitForTunnel(victim, timeout: 20) { ($0["lastError"] as? String) != nil },
            "the tunnel reported no error within 20 s: \(String(describing: Self.tunnelStatus(victim)))")
        #expect(failing["state"] as? String != "established" && failing["state"] != nil, "\(failing)")
        #expect(
            garbage.connections.load(ordering: .relaxed) >= 2
                || Self.waitForTunnel(victim, timeout: 10) { _ in garbage.connections.load(ordering: .relaxed) >= 2 }
                    != nil,
            "no reconnect attempts")
        let health = try ProcessRunner.run(["curl", "-sS", victim.operationsBase + "/healthz"])
        #expect(health.status == 0, "the daemon stopped answering: \(victim.log)")
        #expect(victim.process.isRunning)
    }
}

/// A loopback TCP server that runs `handle` on a thread of its own for every accepted connection; the handler owns
/// (and closes) the socket.
final class LoopbackServer: @unchecked Sendable {
    let listener: Int32
    let port: Int

    init(handle: @escaping @Sendable (Int32) -> Void) throws {
        (listener, port) = try loopbackListener()
        let fd = listener
        Thread.detachNewThread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                Thread.detachNewThread { handle(c) }
            }
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

/// Writes all of `bytes` to `fd`; false if the peer went away.
@discardableResult
func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
    var off = bytes.startIndex
    while off < bytes.endIndex {
        let w = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if w <= 0 { return false }
        off += w
    }
    return true
}

/// The target for the flow-control test: a connection starting with `E` is echoed until EOF; one starting with `S`
/// is not read at all until `release()`, then counted.
final class EchoOrStallServer: @unchecked Sendable {
    let released = DispatchSemaphore(value: 0)
    let stalledBytes = Atomic<Int>(0)
    private var server: LoopbackServer?
    var port: Int { server?.port ?? 0 }

    init() throws {
        server = try LoopbackServer { [self] c in
            defer { close(c) }
            var kind: UInt8 = 0
            guard read(c, &kind, 1) == 1 else { return }
            var buffer = [UInt8](repeating: 0, count: 65536)
            if kind == UInt8(ascii: "S") {
                released.wait()
                while true {
                    let n = read(c, &buffer, buffer.count)
                    if n <= 0 { return }
                    stalledBytes.wrappingAdd(n, ordering: .relaxed)
                }
            }
            while true {
                let n = read(c, &buffer, buffer.count)
                if n <= 0 { break }
                guard writeAll(c, buffer[0..<n]) else { return }
            }
            shutdown(c, Int32(SHUT_WR))
        }
    }

    func release() { released.signal() }
    func stop() { server?.stop() }
}

/// A TCP server that hashes everything a connection sends and answers with the SHA-256 (hex) at end of input.
final class DigestSink: @unchecked Sendable {
    let server: LoopbackServer
    var port: Int { server.port }

    init() throws {
        server = try LoopbackServer { c in
            defer { close(c) }
            var hash = SHA256()
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            while true {
                let n = read(c, &buffer, buffer.count)
                if n <= 0 { break }
                hash.update(data: buffer[0..<n])
            }
            writeAll(c, Array((hash.finalize().map { String(format: "%02x", $0) }.joined() + "\n").utf8)[...])
        }
    }

    func stop() { server.stop() }

    /// Sends `bytes` pseudo-random bytes, half-closes, and returns (digest sent, digest the sink reported).
    static func send(bytes: Int, to port: Int, timeout: TimeInterval) throws -> (String, String) {
        let fd = tcpConnect(port)
        guard fd >= 0 else { throw POSIXError(.ECONNREFUSED) }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var hash = SHA256()
        var generator = SystemRandomNumberGenerator()
        var block = [UInt8](repeating: 0, count: 1 << 20)
        var sent = 0
        while sent < bytes {
            let count = min(block.count, bytes - sent)
            for i in stride(from: 0, to: count, by: 8) {
                withUnsafeBytes(of: generator.next() as UInt64) { raw in
                    for j in 0..<min(8, count - i) { block[i + j] = raw[j] }
                }
            }
            hash.update(data: block[0..<count])
            guard writeAll(fd, block[0..<count]) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            sent += count
        }
        shutdown(fd, Int32(SHUT_WR))
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        let mine = hash.finalize().map { String(format: "%02x", $0) }.joined()
        return (mine, String(decoding: answer, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Accepts on a free port, connects upstream, pumps both ways and keeps a copy of everything.
final class CapturingProxy: @unchecked Sendable {
    let lock = NSLock()
    var data: [UInt8] = []
    var bytes: [UInt8] { lock.withLock { data } }
    private var server: LoopbackServer?
    var port: Int { server?.port ?? 0 }

    init(upstreamPort: Int) throws {
        server = try LoopbackServer { [self] client in
            let upstream = Loopback.connect(port: upstreamPort)
            if upstream < 0 {
                close(client)
                return
            }
            Thread.detachNewThread { [self] in pump(client, upstream) }
            pump(upstream, client)
        }
    }

    func pump(_ from: Int32, _ to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = read(from, &buffer, buffer.count)
            if n <= 0 { break }
            lock.withLock { data += buffer[0..<n] }
            guard writeAll(to, buffer[0..<n]) else { break }
        }
        shutdown(from, Int32(SHUT_RDWR))
        shutdown(to, Int32(SHUT_RDWR))
    }

    func stop() { server?.stop() }
}

/// A "relay" that answers with an SSH banner and then garbage (every other connection: closes at once).
final class HostileRelay: @unchecked Sendable {
    let connections = Atomic<Int>(0)
    private var server: LoopbackServer?
    var port: Int { server?.port ?? 0 }

    init() throws {
        server = try LoopbackServer { [self] c in
            defer { close(c) }
            let n = connections.wrappingAdd(1, ordering: .relaxed).newValue
            if n % 2 == 0 { return }
            // A banner, a packet length of 2^31, then random bytes.
            var junk = Array("SSH-2.0-hostile\r\n".utf8) + [0x80, 0, 0, 0]
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<4096 { junk.append(UInt8.random(in: 0...255, using: &rng)) }
            writeAll(c, junk[...])
            usleep(200_000)
        }
    }

    func stop() { server?.stop() }
}

extension Array where Element == UInt8 {
    func containsBytes(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return false }
        let first = needle[0]
        var i = 0
        while i <= count - needle.count {
            if self[i] == first && Array(self[i..<(i + needle.count)]) == needle { return true }
            i += 1
        }
        return false
    }
}

/// A listening TCP socket on 127.0.0.1 with a free port.
func loopbackListener() throws -> (Int32, Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var addr = Loopback.address(port: 0)
    let ok = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0, listen(fd, 64) == 0 else {
        close(fd)
        throw POSIXError(.EADDRINUSE)
    }
    var actual = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &actual) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, Int(UInt16(bigEndian: actual.sin_port)))
}
