import Foundation

/// Plain POSIX helpers for loopback sockets in tests.
public enum Loopback {
    /// 127.0.0.1:port as a sockaddr_in.
    public static func address(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    /// A connected TCP socket to 127.0.0.1:port, or -1.
    public static func connect(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = address(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            close(fd)
            return -1
        }
        return fd
    }
}

/// A loopback TCP forwarder a test can cut and restore, to make a server "go away and come back".
public final class TCPForwarder: @unchecked Sendable {
    public let upstreamPort: Int
    public private(set) var port: Int = 0
    private let lock = NSLock()
    private var listener: Int32 = -1
    private var sockets: Set<Int32> = []
    private var running = false

    public init(upstreamPort: Int) { self.upstreamPort = upstreamPort }

    /// Starts listening (on the same port as before after a `stop`).
    public func start() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = Loopback.address(port: port)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw NSError(domain: "TCPForwarder", code: Int(errno))
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        lock.lock()
        port = Int(UInt16(bigEndian: actual.sin_port))
        listener = fd
        running = true
        lock.unlock()
        Thread.detachNewThread { [self] in acceptLoop(fd) }
    }

    /// Closes the listener and every forwarded connection.
    public func stop() {
        lock.lock()
        running = false
        let all = sockets
        sockets.removeAll()
        let l = listener
        listener = -1
        lock.unlock()
        if l >= 0 {
            shutdown(l, Int32(SHUT_RDWR))
            close(l)
        }
        for s in all { shutdown(s, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop(_ fd: Int32) {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 { return }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let upstream = Loopback.connect(port: upstreamPort)
            lock.lock()
            let keep = running && upstream >= 0
            if keep {
                sockets.insert(client)
                sockets.insert(upstream)
            }
            lock.unlock()
            guard keep else {
                close(client)
                if upstream >= 0 { close(upstream) }
                continue
            }
            Thread.detachNewThread { [self] in pump(client, upstream) }
            Thread.detachNewThread { [self] in pump(upstream, client) }
        }
    }

    private func pump(_ from: Int32, _ to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = read(from, &buffer, buffer.count)
            if n <= 0 { break }
            var off = 0
            while off < n {
                let w = buffer[off..<n].withUnsafeBytes { send(to, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if w <= 0 { break }
                off += w
            }
            if off < n { break }
        }
        shutdown(from, Int32(SHUT_RDWR))
        shutdown(to, Int32(SHUT_RDWR))
    }

    deinit { stop() }
}
