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
                let holder =
                    n > 0
                    ? String(decoding: buffer.prefix(n), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                    : "?"
                throw DaemonError(
                    "another gatehouse daemon (pid \(holder)) is running on the data directory \(dataDirectory)")
            }
            throw DaemonError("cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return DataDirectoryLock(path: path, fd: fd)
    }

    /// The process that serves the data directory now (holds its lock), or nil when no daemon does. Read from
    /// `/proc/locks` without taking the lock, so asking never gets in the way of a daemon starting.
    public static func holder(dataDirectory: String) -> Int32? {
        let path = (dataDirectory as NSString).appendingPathComponent("run/daemon.lock")
        var st = stat()
        guard stat(path, &st) == 0, let table = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else {
            return nil
        }
        // Lines look like `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF` (device major:minor in hex, then inode).
        let inode = String(st.st_ino)
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK", fields[3] == "WRITE" else { continue }
            let device = fields[5].split(separator: ":")
            guard device.count == 3, device[2] == Substring(inode), let major = UInt64(device[0], radix: 16),
                let minor = UInt64(device[1], radix: 16), major == Self.major(UInt64(st.st_dev)),
                minor == Self.minor(UInt64(st.st_dev)),
                let pid = Int32(fields[4]), pid > 0
            else { continue }
            return pid
        }
        return nil
    }

    /// glibc's `major()`/`minor()` of a `dev_t` (macros, so not visible to Swift).
    static func major(_ dev: UInt64) -> UInt64 { ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff)) }
    static func minor(_ dev: UInt64) -> UInt64 { (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff)) }

    /// Releases the lock (the process ending releases it too).
    public func release() {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }
}
