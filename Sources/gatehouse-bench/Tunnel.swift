import ArgumentParser
import Foundation

/// `gatehouse-bench tunnel`: bulk throughput and connection-setup rate through Gatehouse's reverse tunnel and, in
/// the same run, through OpenSSH's `ssh -N -R` over the same relay (a stock sshd started here on loopback) to the
/// same local target, with the ratio. A third tunnel, `ssh -N -R` restricted to the cipher and MAC that libssh2 1.10
/// negotiates for Gatehouse (aes128-ctr, hmac-sha2-256), separates the cost of the cipher suite from the cost of the
/// library.
struct Tunnel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reverse tunnel vs. `ssh -N -R` through the same loopback sshd relay: bulk MB/s and connections/s.")

    @Option(help: "The gatehouse binary (default: next to this program).") var gatehouse: String?
    @Option(help: "MiB per bulk transfer.") var megabytes = 512
    @Option(help: "Bulk transfers per tunnel (the median is reported).") var rounds = 3
    @Option(help: "Seconds per connection-rate level.") var seconds = 5.0
    @Option(help: "Concurrent connecting clients, comma-separated.") var concurrency = "1,8"
    @Option(help: "Extra sshd_config line for the relay, e.g. 'RekeyLimit 1M 10s'.") var relayOption: [String] = []

    func run() throws {
        let binary =
            gatehouse
            ?? (URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/gatehouse")
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ValidationError("no gatehouse binary at \(binary)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else {
            throw ValidationError("needs /usr/sbin/sshd (openssh-server)")
        }
        let levels = concurrency.split(separator: ",").compactMap { Int($0) }
        let work = NSTemporaryDirectory() + "gatehouse-bench-tunnel-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        var children: [Spawned] = []
        defer {
            for c in children.reversed() { c.terminate() }
            try? FileManager.default.removeItem(atPath: work)
        }

        // The gateway's key (made by init) authorizes both Gatehouse and the OpenSSH client on the relay.
        let data = work + "/gw"
        try shell([binary, "init", "--data-dir", data])
        let key = data + "/tunnel/gateway_ed25519"
        let relayPort = try freeLoopbackPort()
        let gatehousePort = try freeLoopbackPort()
        let opensshPort = try freeLoopbackPort()
        let sameCipherPort = try freeLoopbackPort()
        let target = try SinkServer()
        defer { target.stop() }

        try shell(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", work + "/relay_host_key"])
        let publicKey = try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        try
            "restrict,port-forwarding,permitlisten=\"127.0.0.1:\(gatehousePort)\",permitlisten=\"127.0.0.1:\(opensshPort)\",permitlisten=\"127.0.0.1:\(sameCipherPort)\" \(publicKey)\n"
            .write(toFile: work + "/authorized_keys", atomically: true, encoding: .utf8)
        if getuid() == 0 {
            try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        }
        try
            ([
                "Port \(relayPort)", "ListenAddress 127.0.0.1", "HostKey \(work)/relay_host_key",
                "PidFile \(work)/sshd.pid",
                "AuthorizedKeysFile \(work)/authorized_keys", "StrictModes no", "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "AllowTcpForwarding yes",
                "PermitTTY no",
                "LogLevel ERROR", "MaxStartups 100:30:200",
            ] + relayOption).joined(separator: "\n").appending("\n").write(
                toFile: work + "/sshd_config", atomically: true, encoding: .utf8)
        children.append(try Spawned(["/usr/sbin/sshd", "-D", "-f", work + "/sshd_config", "-E", work + "/sshd.log"]))
        try waitForPort(relayPort, seconds: 10)
        let hostKey = try String(contentsOfFile: work + "/relay_host_key.pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)

        let env = [
            "GATEHOUSE_TUNNEL_ENABLED=true", "GATEHOUSE_TUNNEL_RELAY=127.0.0.1:\(relayPort)",
            "GATEHOUSE_TUNNEL_USER=\(NSUserName())",
            "GATEHOUSE_TUNNEL_RELAY_HOST_KEY=\(hostKey)",
            "GATEHOUSE_TUNNEL_FORWARDS=127.0.0.1:\(target.port)=127.0.0.1:\(gatehousePort)",
            "GATEHOUSE_LISTENERS_HTTPS_PORT=0", "GATEHOUSE_LISTENERS_KMIP_PORT=0",
            "GATEHOUSE_LISTENERS_OPERATIONS_PORT=0",
            "GATEHOUSE_LOGGING_LEVEL=warning",
        ]
        children.append(
            try Spawned([binary, "serve", "--data-dir", data], environment: env, output: work + "/gatehouse.log"))
        try "[127.0.0.1]:\(relayPort) \(hostKey)\n".write(
            toFile: work + "/known_hosts", atomically: true, encoding: .utf8)
        for (port, options) in [
            (opensshPort, [String]()), (sameCipherPort, ["-c", "aes128-ctr", "-m", "hmac-sha2-256"]),
        ] {
            children.append(
                try Spawned(
                    [
                        "ssh", "-F", "/dev/null", "-p", String(relayPort), "-i", key, "-o", "IdentitiesOnly=yes", "-o",
                        "BatchMode=yes",
                        "-o", "UserKnownHostsFile=\(work)/known_hosts", "-o", "StrictHostKeyChecking=yes", "-o",
                        "ExitOnForwardFailure=yes",
                    ] + options + [
                        "-N", "-R", "127.0.0.1:\(port):127.0.0.1:\(target.port)", "\(NSUserName())@127.0.0.1",
                    ],
                    output: work + "/ssh-\(port).log"))
        }
        try waitForPort(gatehousePort, seconds: 30)
        try waitForPort(opensshPort, seconds: 30)
        try waitForPort(sameCipherPort, seconds: 30)

        let sshVersion = (try? shell(["ssh", "-V"], stderr: true)) ?? "OpenSSH"
        print(
            "relay: OpenSSH sshd on 127.0.0.1:\(relayPort)\(relayOption.isEmpty ? "" : " (" + relayOption.joined(separator: "; ") + ")"); target: sink/echo on 127.0.0.1:\(target.port)"
        )
        print(
            "peer:  ssh -N -R (\(sshVersion.trimmingCharacters(in: .whitespacesAndNewlines))): `openssh` with its default cipher"
        )
        print("       suite, `openssh-ctr` restricted to Gatehouse's (libssh2 1.10: aes128-ctr + hmac-sha2-256)")
        let tunnels = [("gatehouse", gatehousePort), ("openssh", opensshPort), ("openssh-ctr", sameCipherPort)]
        var results: [String: [String: Double]] = [:]
        for (name, port) in tunnels {
            var rates: [Double] = []
            for _ in 0..<max(1, rounds) { rates.append(try bulk(port: port, bytes: megabytes << 20)) }
            let median = rates.sorted()[rates.count / 2]
            results[name, default: [:]]["bulk"] = median
            print(
                String(
                    format: "%-11@ bulk      %4d MiB x%d  median %8.1f MB/s  (runs: %@)", name, megabytes, rates.count,
                    median,
                    rates.map { String(format: "%.1f", $0) }.joined(separator: ", ")))
        }
        for c in levels {
            for (name, port) in tunnels {
                let r = connectionRate(port: port, workers: c, seconds: seconds)
                results[name, default: [:]]["conn\(c)"] = r.rate
                print(r.line(name, "connect", c))
            }
        }
        let g = results["gatehouse"] ?? [:]
        for peer in ["openssh", "openssh-ctr"] {
            print("ratio gatehouse/\(peer):")
            let o = results[peer] ?? [:]
            for metric in ["bulk"] + levels.map({ "conn\($0)" }) {
                if let a = g[metric], let b = o[metric], b > 0 {
                    print(String(format: "  %-8@ %.2fx", metric, a / b))
                }
            }
        }
    }

    /// Sends `bytes` to the tunnel port and waits for the sink's byte count: MB/s end to end.
    func bulk(port: Int, bytes: Int) throws -> Double {
        let fd = try connectLoopback(port)
        defer { close(fd) }
        var block = [UInt8](repeating: 0, count: 1 << 20)
        for i in block.indices { block[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        let start = DispatchTime.now().uptimeNanoseconds
        var sent = 0
        while sent < bytes {
            let count = min(block.count, bytes - sent)
            var offset = 0
            while offset < count {
                let n = block[offset..<count].withUnsafeBytes {
                    send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
                guard n > 0 else { throw ValidationError("send failed: \(String(cString: strerror(errno)))") }
                offset += n
            }
            sent += count
        }
        shutdown(fd, Int32(SHUT_WR))
        var answer = [UInt8](repeating: 0, count: 64)
        var got = 0
        while true {
            let n = read(fd, &answer[got], answer.count - got)
            if n <= 0 { break }
            got += n
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let counted =
            Int(String(decoding: answer[0..<got], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        guard counted == bytes else { throw ValidationError("the sink counted \(counted) bytes of \(bytes)") }
        return Double(bytes) / elapsed / 1e6
    }

    /// Workers that connect, send one byte, read it back (the echo proves the splice end to end) and close.
    func connectionRate(port: Int, workers: Int, seconds: Double) -> Result {
        final class Tally: @unchecked Sendable {
            let lock = NSLock()
            var latencies: [Double] = []
            var errors = 0
        }
        let tally = Tally()
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        let group = DispatchGroup()
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<workers {
            group.enter()
            Thread.detachNewThread {
                var mine: [Double] = []
                var failed = 0
                while DispatchTime.now().uptimeNanoseconds < deadline {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    guard let fd = try? connectLoopback(port) else {
                        failed += 1
                        continue
                    }
                    var byte: UInt8 = 0x2a
                    var tv = timeval(tv_sec: 10, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    if send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) == 1, read(fd, &byte, 1) == 1, byte == 0x2a {
                        mine.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                    } else {
                        failed += 1
                    }
                    close(fd)
                }
                tally.lock.withLock {
                    tally.latencies += mine
                    tally.errors += failed
                }
                group.leave()
            }
        }
        group.wait()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Result(ops: tally.latencies.count, errors: tally.errors, elapsed: elapsed, latencies: tally.latencies)
    }
}

/// The tunnels' local target: a connection whose first byte is 0x2a is an echo (connection-rate probe); any other
/// is a sink that answers with the number of bytes it read once the sender half-closes.
final class SinkServer: @unchecked Sendable {
    let listener: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = loopbackAddress(port: 0)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard ok == 0, listen(fd, 1024) == 0 else { throw ValidationError("cannot listen for the sink") }
        listener = fd
        port = boundPort(fd)
        Thread.detachNewThread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                Thread.detachNewThread {
                    var buffer = [UInt8](repeating: 0, count: 256 * 1024)
                    var total = 0
                    let first = read(c, &buffer, buffer.count)
                    if first == 1 && buffer[0] == 0x2a {
                        _ = send(c, &buffer, 1, Int32(MSG_NOSIGNAL))
                    } else if first > 0 {
                        total = first
                        while true {
                            let n = read(c, &buffer, buffer.count)
                            if n <= 0 { break }
                            total += n
                        }
                        let answer = Array("\(total)\n".utf8)
                        _ = answer.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                    close(c)
                }
            }
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

/// A child process started with posix_spawn (sshd closes inherited descriptors, which Foundation's Process does
/// not survive) and ended by PID.
final class Spawned {
    private(set) var pid: pid_t = 0

    init(_ args: [String], environment: [String] = [], output: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var env = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" } + environment
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        env.removeAll()
        let rc = withCleanSignals { attributes in posix_spawnp(&pid, args[0], &actions, &attributes, argv, envp) }
        guard rc == 0 else { throw ValidationError("cannot start \(args[0]): \(String(cString: strerror(rc)))") }
    }

    func terminate() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                return
            }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        pid = 0
    }
}

/// Spawn attributes that give the child an empty signal mask and default handlers: the Swift runtime's threads block
/// signals, and Foundation's `Process` passes that mask on (pgbench `-T` then never sees its SIGALRM).
func withCleanSignals<T>(_ body: (inout posix_spawnattr_t) -> T) -> T {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    var defaults = sigset_t()
    sigfillset(&defaults)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    return body(&attributes)
}

/// Runs a command (looked up in PATH) and returns its standard output (or standard error); throws unless it exits 0.
@discardableResult
func shell(_ args: [String], stderr: Bool = false) throws -> String {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw ValidationError("pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, fds[1], stderr ? 2 : 1)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    posix_spawn_file_actions_addclose(&actions, fds[1])
    let envp: [UnsafeMutablePointer<CChar>?] =
        ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
    defer { for p in argv + envp { free(p) } }
    var pid: pid_t = 0
    let rc = withCleanSignals { attributes in posix_spawnp(&pid, args[0], &actions, &attributes, argv, envp) }
    close(fds[1])
    guard rc == 0 else {
        close(fds[0])
        throw ValidationError("cannot start \(args[0]): \(String(cString: strerror(rc)))")
    }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fds[0], &buffer, buffer.count)
        if n > 0 { output += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
    }
    close(fds[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard (status & 0x7f) == 0, (status >> 8) & 0xff == 0 else {
        throw ValidationError("\(args.joined(separator: " ")) failed")
    }
    return String(decoding: output, as: UTF8.self)
}

func loopbackAddress(port: Int) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return addr
}

func boundPort(_ fd: Int32) -> Int {
    var actual = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &actual) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: actual.sin_port))
}

func connectLoopback(_ port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var addr = loopbackAddress(port: port)
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard rc == 0 else {
        close(fd)
        throw ValidationError("connect to 127.0.0.1:\(port) failed: \(String(cString: strerror(errno)))")
    }
    return fd
}

func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = loopbackAddress(port: 0)
    _ = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return boundPort(fd)
}

func waitForPort(_ port: Int, seconds: Double) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if let fd = try? connectLoopback(port) {
            close(fd)
            return
        }
        usleep(50_000)
    }
    throw ValidationError("nothing listens on 127.0.0.1:\(port) after \(seconds) s")
}
