import CLibSSH2
import Foundation
import Logging

/// Outgoing SSH bytes: libssh2's send callback writes here. What the socket takes at once goes straight out; the
/// rest waits in user space and is flushed when `poll` says the socket is writable. libssh2 therefore never sees
/// a would-block on send.
final class OutBuffer {
    let fd: Int32
    private var storage: [UInt8] = []
    private var head = 0
    private(set) var failure: Int32 = 0

    init(fd: Int32) { self.fd = fd }

    var pending: Int { storage.count - head }

    /// Called by libssh2 (through the C callback) with a packet's bytes; always takes all of them.
    func send(_ bytes: UnsafeRawPointer, _ length: Int) -> Int {
        if failure != 0 { return -Int(failure) }
        var offset = 0
        if pending == 0 {
            let n = Glibc.send(fd, bytes, length, Int32(MSG_NOSIGNAL))
            if n == length { return length }
            if n < 0 {
                if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    failure = errno
                    return -Int(failure)
                }
            } else {
                offset = n
            }
        }
        storage.append(contentsOf: UnsafeRawBufferPointer(start: bytes + offset, count: length - offset))
        return length
    }

    /// Writes what the socket takes now. Throws when the connection is gone.
    func flush() throws {
        if failure != 0 { throw TunnelError.session("send to the relay failed: \(String(cString: strerror(failure)))") }
        while pending > 0 {
            let n = storage.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + head, pending, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                head += n
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                break
            } else {
                failure = errno == 0 ? EPIPE : errno
                throw TunnelError.session("send to the relay failed: \(String(cString: strerror(failure)))")
            }
        }
        if head == storage.count {
            storage.removeAll(keepingCapacity: storage.capacity <= 8 << 20)
            head = 0
        } else if head > 1 << 20 {
            storage.removeFirst(head)
            head = 0
        }
    }
}

/// libssh2's send callback (`LIBSSH2_SEND_FUNC`): the session's abstract pointer is the `OutBuffer`.
let tunnelSendCallback:
    @convention(c) (Int32, UnsafeRawPointer?, Int, Int32, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int = {
        _, buffer, length, _, abstract in
        guard let buffer, let raw = abstract?.pointee else { return -Int(EINVAL) }
        return Unmanaged<OutBuffer>.fromOpaque(raw).takeUnretainedValue().send(buffer, length)
    }

/// A fixed buffer filled only when empty (one chunk in flight per direction).
final class Chunk {
    static let capacity = 64 * 1024
    let base = UnsafeMutableRawPointer.allocate(byteCount: Chunk.capacity, alignment: 16)
    var start = 0
    var end = 0
    var isEmpty: Bool { start == end }
    var count: Int { end - start }
    func consumed(_ n: Int) {
        start += n
        if start == end {
            start = 0
            end = 0
        }
    }
    deinit { base.deallocate() }
}

/// One forwarded connection: an SSH channel from the relay and a local socket to the target.
final class ForwardedConnection {
    let channel: OpaquePointer
    let fd: Int32
    let forward: Int
    var connecting = true
    let toLocal = Chunk()
    let toRemote = Chunk()
    var channelEOF = false
    var localEOF = false
    var eofSent = false
    var failed: String?

    init(channel: OpaquePointer, fd: Int32, forward: Int) {
        self.channel = channel
        self.fd = fd
        self.forward = forward
    }

    var done: Bool { failed != nil || (channelEOF && eofSent && toLocal.isEmpty) }
}

/// One SSH session to the relay, from TCP connect to teardown; runs on the tunnel thread only.
final class TunnelSession {
    let client: TunnelClient
    var settings: TunnelSettings { client.settings }
    var fd: Int32 = -1
    var session: OpaquePointer?
    var out: OutBuffer?
    var outBox: Unmanaged<OutBuffer>?
    var listeners: [(forward: Int, listener: OpaquePointer)] = []
    var connections: [ForwardedConnection] = []
    var closing: [(channel: OpaquePointer, until: ContinuousClock.Instant)] = []
    private(set) var authenticated = false
    var lastInbound = ContinuousClock.now
    var fromRelay: UInt64 = 0
    var toRelay: UInt64 = 0
    var totalConnections = 0
    /// Outgoing bytes above which local sockets are not read (the relay is slower than the local side).
    let outLimit = 4 << 20

    init(client: TunnelClient) { self.client = client }

    deinit { teardown() }

    func teardown() {
        for c in connections { close(c.fd) }
        connections.removeAll()
        if let session {
            // Frees channels and listeners; sends go to the buffer (or fail on a dead socket), never block.
            var attempts = 0
            while libssh2_session_free(session) == LIBSSH2_ERROR_EAGAIN, attempts < 100 { attempts += 1 }
            self.session = nil
        }
        outBox?.release()
        outBox = nil
        if fd >= 0 { close(fd) }
        fd = -1
    }

    var stopping: Bool { client.stopping.load(ordering: .acquiring) }

    func lastError() -> String {
        guard let session else { return "no session" }
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        let code = libssh2_session_last_error(session, &message, &length, 0)
        let text = message.map { String(cString: $0) } ?? "unknown error"
        return "\(text) (libssh2 \(code))"
    }

    /// "the relay closed the connection" when the socket is at EOF or reset (libssh2 reports those vaguely).
    func connectionGone() -> String? {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n == 0 { return "the relay closed the connection" }
        if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK {
            return "connection to the relay lost: \(String(cString: strerror(errno)))"
        }
        return nil
    }

    // MARK: - Connect, handshake, authenticate, request forwards

    func run() throws {
        let deadline = ContinuousClock.now + settings.connectTimeout
        fd = try connectRelay(deadline: deadline)
        let out = OutBuffer(fd: fd)
        self.out = out
        let box = Unmanaged.passRetained(out)
        outBox = box
        guard let session = libssh2_session_init_ex(nil, nil, nil, box.toOpaque()) else {
            throw TunnelError.handshake("libssh2 could not allocate a session")
        }
        self.session = session
        _ = libssh2_session_callback_set(
            session, LIBSSH2_CALLBACK_SEND, unsafeBitCast(tunnelSendCallback, to: UnsafeMutableRawPointer.self))
        libssh2_session_set_blocking(session, 0)
        // Only the pinned key type is negotiated, so the relay must prove possession of exactly that key.
        _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, settings.hostKey.key.algorithm)
        _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_CRYPT_CS, "aes128-ctr,aes256-ctr,aes192-ctr")
        _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_CRYPT_SC, "aes128-ctr,aes256-ctr,aes192-ctr")
        _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_MAC_CS, "hmac-sha2-256,hmac-sha2-512")
        _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_MAC_SC, "hmac-sha2-256,hmac-sha2-512")

        while true {
            let rc = libssh2_session_handshake(session, fd)
            if rc == 0 { break }
            guard rc == LIBSSH2_ERROR_EAGAIN else { throw TunnelError.handshake(lastError()) }
            try waitForRelay(deadline: deadline)
        }
        try verifyHostKey(session)

        let user = settings.user
        while true {
            let rc = gh_userauth_publickey_fromfile(session, user, UInt32(user.utf8.count), settings.privateKeyPath)
            if rc == 0 { break }
            guard rc == LIBSSH2_ERROR_EAGAIN else {
                throw TunnelError.authentication("\(user)@\(settings.relayDescription): \(lastError())")
            }
            try waitForRelay(deadline: deadline)
        }
        authenticated = true

        var refused: [String] = []
        for (index, forward) in settings.forwards.enumerated() {
            var bound: Int32 = 0
            while true {
                if let listener = libssh2_channel_forward_listen_ex(
                    session, forward.remoteHost, Int32(forward.remotePort), &bound, 256)
                {
                    listeners.append((index, listener))
                    client.update {
                        $0.forwards[index].state = "active"
                        $0.forwards[index].boundPort = Int(bound)
                        $0.forwards[index].error = nil
                    }
                    client.logger.info(
                        "tunnel forward active",
                        metadata: [
                            "listen": "\(TunnelClient.hostPort(forward.remoteHost, Int(bound)))",
                            "target": "\(TunnelClient.hostPort(forward.targetHost, forward.targetPort))",
                        ])
                    break
                }
                let code = libssh2_session_last_errno(session)
                if code == LIBSSH2_ERROR_EAGAIN {
                    try waitForRelay(deadline: ContinuousClock.now + settings.connectTimeout)
                    continue
                }
                let why =
                    code == LIBSSH2_ERROR_REQUEST_DENIED
                    ? "refused by the relay (permitlisten / AllowTcpForwarding?)" : lastError()
                refused.append("\(TunnelClient.hostPort(forward.remoteHost, forward.remotePort)): \(why)")
                client.update {
                    $0.forwards[index].state = "refused"
                    $0.forwards[index].error = why
                }
                client.logger.error(
                    "tunnel forward refused",
                    metadata: [
                        "listen": "\(TunnelClient.hostPort(forward.remoteHost, forward.remotePort))",
                        "reason": "\(why)",
                    ])
                break
            }
        }
        if listeners.isEmpty {
            throw TunnelError.session("every forward was refused: " + refused.joined(separator: "; "))
        }
        libssh2_keepalive_config(session, 1, UInt32(max(1, settings.keepaliveInterval)))
        client.metrics.up.record(refused.isEmpty ? 1 : 0)
        client.metrics.sessions.increment()
        client.metrics.forwardsActive.record(listeners.count)
        client.update {
            $0.state = refused.isEmpty ? .established : .degraded
            $0.since = Date()
            $0.sessions += 1
            $0.lastError = refused.isEmpty ? nil : "forwards refused: " + refused.joined(separator: "; ")
        }
        client.logger.notice(
            "tunnel established", metadata: ["relay": "\(settings.relayDescription)", "forwards": "\(listeners.count)"])
        try loop(session)
    }

    func connectRelay(deadline: ContinuousClock.Instant) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(settings.relayHost, String(settings.relayPort), &hints, &result)
        guard rc == 0, let first = result else {
            throw TunnelError.resolve("\(settings.relayHost): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }
        var lastError = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let s = socket(
                a.pointee.ai_family,
                a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            if s < 0 { continue }
            var one: Int32 = 1
            setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return s }
            guard errno == EINPROGRESS else {
                lastError = String(cString: strerror(errno))
                close(s)
                continue
            }
            var fds = [
                pollfd(fd: s, events: Int16(POLLOUT), revents: 0),
                pollfd(fd: client.wake.read, events: Int16(POLLIN), revents: 0),
            ]
            while true {
                let remaining = deadline - ContinuousClock.now
                if remaining <= .zero {
                    lastError = "timed out"
                    break
                }
                _ = poll(
                    &fds, 2,
                    Int32(
                        max(
                            1,
                            min(
                                1000,
                                remaining.components.seconds * 1000 + remaining.components.attoseconds
                                    / 1_000_000_000_000_000))))
                if stopping {
                    close(s)
                    throw TunnelError.stopped
                }
                client.drainWake()
                if fds[0].revents != 0 { break }
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if fds[0].revents != 0, getsockopt(s, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 { return s }
            if fds[0].revents != 0 { lastError = String(cString: strerror(error)) }
            close(s)
        }
        throw TunnelError.connect("\(settings.relayDescription): \(lastError)")
    }

    /// Waits until the relay socket is readable (or writable while bytes are queued), the deadline, or stop.
    func waitForRelay(deadline: ContinuousClock.Instant) throws {
        guard let out else { return }
        try out.flush()
        let remaining = deadline - ContinuousClock.now
        if remaining <= .zero { throw TunnelError.handshake("timed out waiting for the relay") }
        var events = Int16(POLLIN)
        if out.pending > 0 { events |= Int16(POLLOUT) }
        var fds = [
            pollfd(fd: fd, events: events, revents: 0), pollfd(fd: client.wake.read, events: Int16(POLLIN), revents: 0),
        ]
        let ms = remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
        _ = poll(&fds, 2, Int32(max(1, min(1000, ms))))
        if stopping { throw TunnelError.stopped }
        client.drainWake()
    }

    func verifyHostKey(_ session: OpaquePointer) throws {
        var length = 0
        var type: Int32 = 0
        guard let raw = libssh2_session_hostkey(session, &length, &type), length > 0 else {
            throw TunnelError.handshake("the relay sent no host key")
        }
        let presented = [UInt8](UnsafeRawBufferPointer(start: raw, count: length))
        let pinned = settings.hostKey.key.blob
        // Public values, but compare without early exit anyway.
        var difference = UInt8(presented.count == pinned.count ? 0 : 1)
        for (a, b) in zip(presented, pinned) { difference |= a ^ b }
        if difference != 0 {
            throw TunnelError.hostKeyMismatch(
                expected: TunnelClient.fingerprint(pinned), got: TunnelClient.fingerprint(presented))
        }
    }

    // MARK: - The forwarding loop

    func loop(_ session: OpaquePointer) throws {
        guard let out else { return }
        lastInbound = ContinuousClock.now
        var lastPublish = ContinuousClock.now
        let deadAfter = Duration.seconds(max(1, settings.keepaliveInterval) * max(1, settings.keepaliveCountMax))
        var pollSet: [pollfd] = []
        while true {
            if stopping {
                for c in connections { close(c.fd) }
                connections.removeAll()
                _ = gh_session_disconnect(session, "gateway stopping")
                try? out.flush()
                publish()
                throw TunnelError.stopped
            }
            try out.flush()
            // Accepting drains the transport (every readable packet is processed and queued per channel).
            _ = try acceptPending(session)
            for c in connections where !c.connecting { pump(c) }
            if connections.contains(where: \.done) { reap() }
            if !closing.isEmpty {
                let now = ContinuousClock.now
                closing.removeAll { entry in
                    let rc = libssh2_channel_free(entry.channel)
                    return rc != LIBSSH2_ERROR_EAGAIN || now > entry.until
                }
            }
            var nextKeepalive: Int32 = 0
            let rc = libssh2_keepalive_send(session, &nextKeepalive)
            if rc != 0 && rc != LIBSSH2_ERROR_EAGAIN { throw TunnelError.session(connectionGone() ?? lastError()) }
            try out.flush()
            if ContinuousClock.now - lastInbound > deadAfter {
                throw TunnelError.keepaliveTimeout(seconds: Int(deadAfter.components.seconds))
            }
            if ContinuousClock.now - lastPublish > .seconds(1) {
                publish()
                lastPublish = ContinuousClock.now
            }

            // Work libssh2 already holds must not wait for poll. Channel frees and sends above may have read from the
            // socket (queueing data, EOFs or new forwarded channels): one last accept pass drains the transport, so
            // what the checks below see is everything that arrived.
            var busy = try acceptPending(session)
            for c in connections where !c.connecting {
                if c.toLocal.isEmpty && !c.channelEOF {
                    var available: UInt = 0
                    _ = libssh2_channel_window_read_ex(c.channel, &available, nil)
                    if available > 0 || libssh2_channel_eof(c.channel) != 0 {
                        busy = true
                        break
                    }
                }
                if !c.toRemote.isEmpty && libssh2_channel_window_write_ex(c.channel, nil) > 0 {
                    busy = true
                    break
                }
                if c.localEOF && c.toRemote.isEmpty && !c.eofSent {
                    busy = true
                    break
                }
            }

            pollSet.removeAll(keepingCapacity: true)
            var sshEvents = Int16(POLLIN)
            if out.pending > 0 { sshEvents |= Int16(POLLOUT) }
            pollSet.append(pollfd(fd: fd, events: sshEvents, revents: 0))
            pollSet.append(pollfd(fd: client.wake.read, events: Int16(POLLIN), revents: 0))
            for c in connections {
                var events: Int16 = 0
                if c.connecting || !c.toLocal.isEmpty { events |= Int16(POLLOUT) }
                if !c.connecting && !c.localEOF && c.toRemote.isEmpty && out.pending < outLimit {
                    events |= Int16(POLLIN)
                }
                pollSet.append(pollfd(fd: c.fd, events: events, revents: 0))
            }
            let timeout: Int32 = busy ? 0 : Int32(max(1, min(1000, Int(nextKeepalive) * 1000)))
            let n = poll(&pollSet, nfds_t(pollSet.count), timeout)
            if n < 0 && errno != EINTR { throw TunnelError.session("poll: \(String(cString: strerror(errno)))") }
            if pollSet[0].revents != 0 {
                lastInbound = ContinuousClock.now
                // Acknowledge at once: a relay that does not set TCP_NODELAY holds its next small packet (the first
                // data after a channel open) until our ACK, and a delayed ACK costs 40 ms per connection.
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_QUICKACK, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            if pollSet[0].revents & Int16(POLLNVAL) != 0 { throw TunnelError.session("relay socket invalid") }
            if pollSet[1].revents != 0 { client.drainWake() }
            for (i, c) in connections.enumerated() where c.connecting {
                let revents = pollSet[i + 2].revents
                guard revents != 0 else { continue }
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                if getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 {
                    c.connecting = false
                } else {
                    c.failed = "connect to the target: \(String(cString: strerror(error)))"
                }
            }
        }
    }

    /// Accepts every forwarded channel libssh2 has queued (reading the relay socket until it would block); true if
    /// there was one. Throws when the session is gone.
    func acceptPending(_ session: OpaquePointer) throws -> Bool {
        var accepted = false
        for (forward, listener) in listeners {
            while let channel = libssh2_channel_forward_accept(listener) {
                accept(channel, forward: forward)
                accepted = true
            }
            let code = libssh2_session_last_errno(session)
            if code != LIBSSH2_ERROR_EAGAIN && code != 0 {
                throw TunnelError.session(connectionGone() ?? lastError())
            }
        }
        return accepted
    }

    /// A new channel from the relay: connect to the forward's target without blocking.
    func accept(_ channel: OpaquePointer, forward: Int) {
        totalConnections += 1
        client.metrics.connections.increment()
        let f = settings.forwards[forward]
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        var s: Int32 = -1
        if getaddrinfo(f.targetHost, String(f.targetPort), &hints, &result) == 0, let a = result {
            s = socket(
                a.pointee.ai_family,
                a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            if s >= 0 {
                var one: Int32 = 1
                setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                if Glibc.connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                    close(s)
                    s = -1
                }
            }
            freeaddrinfo(a)
        }
        guard s >= 0 else {
            client.logger.warning(
                "tunnel target unreachable",
                metadata: ["target": "\(TunnelClient.hostPort(f.targetHost, f.targetPort))"])
            closing.append((channel, ContinuousClock.now + .seconds(30)))
            return
        }
        connections.append(ForwardedConnection(channel: channel, fd: s, forward: forward))
        client.metrics.connectionsActive.record(connections.count)
    }

    /// Moves bytes both ways for one connection, as far as the buffers, the SSH window and the sockets allow.
    func pump(_ c: ForwardedConnection) {
        // Relay → local target.
        for _ in 0..<16 {
            if c.toLocal.isEmpty {
                if c.channelEOF { break }
                let n = gh_channel_read(c.channel, c.toLocal.base.assumingMemoryBound(to: CChar.self), Chunk.capacity)
                if n > 0 {
                    c.toLocal.start = 0
                    c.toLocal.end = n
                    fromRelay += UInt64(n)
                    client.metrics.bytesFromRelay.increment(by: n)
                } else if n == LIBSSH2_ERROR_EAGAIN || (n == 0 && libssh2_channel_eof(c.channel) == 0) {
                    break
                } else if n == 0 {
                    c.channelEOF = true
                    shutdown(c.fd, Int32(SHUT_WR))
                    break
                } else {
                    c.failed = "channel read: \(lastError())"
                    return
                }
            }
            let w = Glibc.send(c.fd, c.toLocal.base + c.toLocal.start, c.toLocal.count, Int32(MSG_NOSIGNAL))
            if w > 0 {
                c.toLocal.consumed(w)
            } else if w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                break
            } else {
                c.failed = "write to the target: \(String(cString: strerror(errno)))"
                return
            }
        }
        // Local target → relay.
        for _ in 0..<16 {
            if c.toRemote.isEmpty {
                if c.localEOF || (out?.pending ?? 0) >= outLimit { break }
                let n = recv(c.fd, c.toRemote.base, Chunk.capacity, 0)
                if n > 0 {
                    c.toRemote.start = 0
                    c.toRemote.end = n
                } else if n == 0 {
                    c.localEOF = true
                    break
                } else if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                    break
                } else {
                    c.failed = "read from the target: \(String(cString: strerror(errno)))"
                    return
                }
            }
            let w = gh_channel_write(
                c.channel, UnsafeRawPointer(c.toRemote.base + c.toRemote.start).assumingMemoryBound(to: CChar.self),
                c.toRemote.count)
            if w > 0 {
                c.toRemote.consumed(w)
                toRelay += UInt64(w)
                client.metrics.bytesToRelay.increment(by: w)
            } else if w == 0 || w == LIBSSH2_ERROR_EAGAIN {
                break
            } else {
                c.failed = "channel write: \(lastError())"
                return
            }
        }
        if c.localEOF && c.toRemote.isEmpty && !c.eofSent {
            let rc = libssh2_channel_send_eof(c.channel)
            if rc == 0 {
                c.eofSent = true
            } else if rc != LIBSSH2_ERROR_EAGAIN {
                c.failed = "channel EOF: \(lastError())"
            }
        }
    }

    /// Closes finished connections: the local socket now, the channel once the relay confirms the close.
    func reap() {
        connections.removeAll { c in
            guard c.done else { return false }
            if let failure = c.failed {
                client.logger.debug("tunnel connection ended", metadata: ["reason": "\(failure)"])
            }
            close(c.fd)
            let rc = libssh2_channel_free(c.channel)
            if rc == LIBSSH2_ERROR_EAGAIN { closing.append((c.channel, ContinuousClock.now + .seconds(30))) }
            return true
        }
        client.metrics.connectionsActive.record(connections.count)
    }

    func publish() {
        let active = connections.count
        let total = totalConnections
        let from = fromRelay
        let to = toRelay
        totalConnections = 0
        fromRelay = 0
        toRelay = 0
        client.update {
            $0.activeConnections = active
            $0.totalConnections += total
            $0.bytesFromRelay += from
            $0.bytesToRelay += to
        }
    }
}
