import CLibSSH2
import Crypto
import Foundation
import Logging
import Metrics
import SSHProtocol
import Synchronization

/// Why a tunnel session ended or could not start.
public enum TunnelError: Error, Sendable, CustomStringConvertible, Equatable {
    case resolve(String)
    case connect(String)
    case handshake(String)
    /// The relay presented another host key than the pinned one; nothing was authenticated or forwarded.
    case hostKeyMismatch(expected: String, got: String)
    case authentication(String)
    case session(String)
    case keepaliveTimeout(seconds: Int)
    case stopped

    public var description: String {
        switch self {
        case .resolve(let m): return "cannot resolve the relay: \(m)"
        case .connect(let m): return "cannot connect to the relay: \(m)"
        case .handshake(let m): return "SSH handshake with the relay failed: \(m)"
        case .hostKeyMismatch(let expected, let got):
            return "relay host key mismatch: pinned \(expected), relay presented \(got); refusing to authenticate"
        case .authentication(let m): return "the relay refused the gateway key: \(m)"
        case .session(let m): return "relay session failed: \(m)"
        case .keepaliveTimeout(let s): return "no reply from the relay for \(s) s (keepalive timeout)"
        case .stopped: return "stopped"
        }
    }
}

/// The outbound reverse tunnel: one SSH session to a relay (a stock OpenSSH sshd), remote forwards requested on
/// it, and every forwarded connection spliced to a local listener.
///
/// libssh2 is not thread-safe per session and blocks, so the whole session lives on one dedicated thread (never a
/// NIO event loop): a `poll(2)` loop over the relay socket, the local sockets and a wake pipe, with libssh2 in
/// non-blocking mode. Outgoing SSH bytes go through a send callback into a user-space buffer, so libssh2 never sees
/// a partial write (its non-blocking write path then cannot be re-entered for another channel mid-packet, and a
/// relay-initiated re-key never stalls on a full socket). Back-pressure both ways: a channel is read only when the
/// local socket took the previous chunk (the SSH window then stays closed), and a local socket is read only when
/// the channel window and the outgoing buffer have room.
public final class TunnelClient: Sendable {
    public let settings: TunnelSettings
    let logger: Logger
    let statusBox: Mutex<TunnelStatus>
    let stopping = Atomic<Bool>(false)
    let wake: (read: Int32, write: Int32)
    let finished = DispatchSemaphore(value: 0)
    let started = Atomic<Bool>(false)
    let metrics: TunnelMetrics

    public init(settings: TunnelSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
        }
        wake = (fds[0], fds[1])
        statusBox = Mutex(
            TunnelStatus(
                state: .connecting, relay: settings.relayDescription, since: Date(), lastError: nil, sessions: 0,
                forwards: settings.forwards.map {
                    .init(
                        name: $0.name, listen: Self.hostPort($0.remoteHost, $0.remotePort), boundPort: nil,
                        target: Self.hostPort($0.targetHost, $0.targetPort), state: "down", error: nil)
                }, activeConnections: 0, totalConnections: 0, bytesFromRelay: 0, bytesToRelay: 0, nextAttempt: nil))
        metrics = TunnelMetrics()
    }

    deinit {
        close(wake.read)
        close(wake.write)
    }

    static func hostPort(_ host: String, _ port: Int) -> String {
        (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
    }

    /// The current status.
    public var status: TunnelStatus { statusBox.withLock { $0 } }

    /// Starts the tunnel thread (once).
    public func start() {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            self.main()
            self.finished.signal()
        }
        thread.name = "gatehouse-tunnel"
        thread.start()
    }

    /// Stops the tunnel: closes forwarded connections and the session, and waits for the thread to end.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        if started.load(ordering: .acquiring) { finished.wait() }
    }

    /// Waits until `predicate` holds for the status or `timeout` passes (for tests and start-up).
    public func wait(timeout: Duration, until predicate: (TunnelStatus) -> Bool) async -> TunnelStatus {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let s = status
            if predicate(s) { return s }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return status
    }

    func update(_ change: (inout TunnelStatus) -> Void) {
        let snapshot = statusBox.withLock { s -> TunnelStatus in
            change(&s)
            return s
        }
        if let path = settings.statusFile, let data = try? Self.encoder.encode(snapshot) {
            let tmp = path + ".tmp"
            if FileManager.default.createFile(atPath: tmp, contents: data) { _ = rename(tmp, path) }
        }
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        return e
    }()

    // MARK: - The thread

    func main() {
        LibSSH2.initialize()
        var backoff = settings.reconnectMin
        while !stopping.load(ordering: .acquiring) {
            update {
                $0.state = .connecting
                $0.since = Date()
                $0.nextAttempt = nil
            }
            let session = TunnelSession(client: self)
            defer { session.teardown() }
            do {
                try session.run()
            } catch TunnelError.stopped {
                break
            } catch let error as TunnelError {
                logger.warning("tunnel to \(settings.relayDescription) down", metadata: ["error": "\(error)"])
                metrics.failures.increment()
                update {
                    $0.lastError = error.description
                    $0.activeConnections = 0
                    for i in $0.forwards.indices {
                        $0.forwards[i].state = "down"
                        $0.forwards[i].boundPort = nil
                    }
                }
            } catch {
                update { $0.lastError = "\(error)" }
            }
            metrics.up.record(0)
            metrics.forwardsActive.record(0)
            metrics.connectionsActive.record(0)
            if stopping.load(ordering: .acquiring) { break }
            session.publish()
            session.teardown()
            if session.authenticated { backoff = settings.reconnectMin }
            // Jitter: uniformly in [backoff/2, backoff].
            let nanos = max(
                1, backoff.components.seconds * 1_000_000_000 + backoff.components.attoseconds / 1_000_000_000)
            let wait = Int64.random(in: (nanos / 2)...nanos)
            update {
                $0.state = .backoff
                $0.since = Date()
                $0.nextAttempt = Date().addingTimeInterval(Double(wait) / 1e9)
            }
            sleepInterruptibly(nanoseconds: wait)
            backoff = min(settings.reconnectMax, backoff * 2)
        }
        update {
            $0.state = .stopped
            $0.since = Date()
            $0.activeConnections = 0
            $0.nextAttempt = nil
            for i in $0.forwards.indices { $0.forwards[i].state = "down" }
        }
    }

    /// Sleeps, returning early when `stop()` writes to the wake pipe.
    func sleepInterruptibly(nanoseconds: Int64) {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, nanoseconds))
        while !stopping.load(ordering: .acquiring) {
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= deadline { return }
            var p = pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, Int32(min(1000, (deadline - now) / 1_000_000 + 1)))
            drainWake()
        }
    }

    func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wake.read, &buffer, buffer.count) > 0 {}
    }

    /// SHA256 fingerprint as OpenSSH prints it.
    static func fingerprint(_ blob: [UInt8]) -> String {
        let digest = Array(SHA256.hash(data: blob))
        var b64 = SSHBase64.encode(digest)
        while b64.hasSuffix("=") { b64.removeLast() }
        return "SHA256:" + b64
    }
}

/// Process-wide libssh2 initialisation (once).
enum LibSSH2 {
    static let once: Void = { _ = libssh2_init(0) }()
    static func initialize() { _ = once }
}

/// Tunnel metrics (Prometheus through swift-metrics).
struct TunnelMetrics: Sendable {
    let up = Gauge(label: "gatehouse_tunnel_up")
    let sessions = Counter(label: "gatehouse_tunnel_sessions_total")
    let failures = Counter(label: "gatehouse_tunnel_failures_total")
    let forwardsActive = Gauge(label: "gatehouse_tunnel_forwards_active")
    let connectionsActive = Gauge(label: "gatehouse_tunnel_connections_active")
    let connections = Counter(label: "gatehouse_tunnel_connections_total")
    let bytesFromRelay = Counter(label: "gatehouse_tunnel_bytes_total", dimensions: [("direction", "from_relay")])
    let bytesToRelay = Counter(label: "gatehouse_tunnel_bytes_total", dimensions: [("direction", "to_relay")])
}
