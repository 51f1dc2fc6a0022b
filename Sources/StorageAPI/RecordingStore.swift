import Foundation

/// Where session recordings live once written: encrypted bytes only (the store never sees plaintext, and a copy
/// verifies the same way). A recording is one byte stream per session, written in order by the node that proxies
/// the session and read whole by any node that replays or verifies it.
///
/// Implementations: `LocalRecordingStore` (a directory on this node, the default with SQLite). Shared stores
/// (PostgreSQL, S3-compatible) let every node of a cluster serve every session.
public protocol RecordingStore: Sendable {
    /// For messages: "local directory", "PostgreSQL", …
    var description: String { get }
    /// Writes `bytes` at `offset` of the session's recording. Writing the same bytes at the same offset again is
    /// harmless (an upload retried after a failure or a restart); a gap before `offset` is refused.
    func write(sessionId: String, offset: Int, _ bytes: [UInt8]) async throws
    /// The recording's bytes as stored, or nil when the store has none for the session.
    func read(sessionId: String) async throws -> [UInt8]?
    /// The recording's bytes from `offset` to its end (empty when it ends at or before `offset`), or nil when the
    /// store has none: what a live view reads each time it looks, so that following a recording costs what was added
    /// since, not what is there.
    func read(sessionId: String, from offset: Int) async throws -> [UInt8]?
    /// How many bytes of the recording the store holds (0 when none): where an upload resumes.
    func length(sessionId: String) async throws -> Int
    /// Removes the session's recording (nothing when there is none).
    func delete(sessionId: String) async throws
}

extension RecordingStore {
    /// Session ids are lowercase UUIDs (8-4-4-4-12 hex digits); nothing else names a recording (a store key or a
    /// file).
    public static func isValidSessionID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard bytes.count == 36 else { return false }
        for (i, b) in bytes.enumerated() {
            let ok = [8, 13, 18, 23].contains(i) ? b == 45 : (48...57).contains(b) || (97...102).contains(b)
            if !ok { return false }
        }
        return true
    }
}

/// Recordings as files in a directory of this node: `<directory>/<session id>.ghrec`, owner-only (the PostgreSQL
/// proxy writes them there as the session runs).
public struct LocalRecordingStore: RecordingStore {
    public let directory: String
    public var description: String { "local directory \(directory)" }

    public init(directory: String) {
        self.directory = directory
    }

    func path(_ sessionId: String) throws -> String {
        guard Self.isValidSessionID(sessionId) else {
            throw StorageError(.notFound, "no recording for '\(sessionId.prefix(64))'")
        }
        return directory + "/" + sessionId + ".ghrec"
    }

    public func write(sessionId: String, offset: Int, _ bytes: [UInt8]) async throws {
        let path = try path(sessionId)
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StorageError(.unavailable, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StorageError(.unavailable, "cannot read the size of \(path)") }
        guard offset >= 0, offset <= Int(st.st_size) else {
            throw StorageError(
                .corrupt, "a write at \(offset) would leave a gap after the \(st.st_size) bytes of \(path)")
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { b -> Int in
                guard let base = b.baseAddress else { return 0 }
                return pwrite(fd, base + written, bytes.count - written, off_t(offset + written))
            }
            guard n > 0 else {
                throw StorageError(.unavailable, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += n
        }
    }

    public func read(sessionId: String) async throws -> [UInt8]? {
        guard let path = try? path(sessionId) else { return nil }
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StorageError(.unavailable, "cannot read \(path)")
        }
        return [UInt8](data)
    }

    public func read(sessionId: String, from offset: Int) async throws -> [UInt8]? {
        guard offset >= 0 else { throw StorageError(.corrupt, "a negative offset") }
        guard let path = try? path(sessionId) else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw StorageError(.unavailable, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StorageError(.unavailable, "cannot read the size of \(path)") }
        let count = max(0, Int(st.st_size) - offset)
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { b -> Int in
                guard let base = b.baseAddress else { return 0 }
                return pread(fd, base + done, count - done, off_t(offset + done))
            }
            guard n >= 0 else {
                throw StorageError(.unavailable, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
        return Array(bytes[..<done])
    }

    public func length(sessionId: String) async throws -> Int {
        guard let path = try? path(sessionId) else { return 0 }
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    public func delete(sessionId: String) async throws {
        let path = try path(sessionId)
        if unlink(path) != 0 && errno != ENOENT {
            throw StorageError(.unavailable, "cannot delete \(path): \(String(cString: strerror(errno)))")
        }
    }
}
