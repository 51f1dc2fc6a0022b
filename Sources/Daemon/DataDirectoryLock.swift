import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One daemon per data directory: `<data_dir>/run/daemon.lock`, held with `flock` for the life of the process (the
/// kernel drops it when the process ends, `kill -9` included, so a stale file never blocks a restart). A second
/// `gatehouse serve` on the same directory would share its SQLite store, recordings and `run/` files with the first
/// one while each keeps its own caches and nonce state; it stops at start-up instead, naming the holder.
public struct DataDirectoryLock: Sendable {
    public let path: String
    let fd: Int32

    /// Takes the lock or throws `DaemonError` naming the process that holds it.
    public static func acquire(dataDirectory: String) throws -> DataDirectoryLock {
        let runDir = (dataDirectory as NSString).appendingPathComponent("run")
        try? FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        let path = runDir + "/daemon.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            if reason == EWOULDBLOCK {
                let holder = n > 0 ? String(decoding: buffer.prefix(n), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
                throw DaemonError("another gatehouse daemon (pid \(holder)) is running on the data directory \(dataDirectory)")
            }
            throw DaemonError("cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return DataDirectoryLock(path: path, fd: fd)
    }

    /// Releases the lock (the process ending releases it too).
    public func release() {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }
}
