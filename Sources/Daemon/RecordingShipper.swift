import Foundation
import Logging
import ServiceLifecycle
import StorageAPI

/// Ships session recordings from this node's spool (the files the PostgreSQL proxy writes,
/// `<data_dir>/recordings/<session>.ghrec`) to the shared recording store, so that every node can replay and verify
/// every session, and a node's disk is not the only copy.
///
/// Every `interval` it uploads what each file gained since the store's copy ends, in pieces of at most `pieceSize`
/// (one statement each). The store's length is where an upload resumes, so a restart or a `kill -9` neither loses
/// nor duplicates a byte. A file is deleted once the store holds all of it and its session is over (no
/// `.open/<session>` marker: the proxy removes it after writing the signed manifest and closing the session).
struct RecordingShipper: Service {
    let spool: String
    let store: any RecordingStore
    let interval: Duration
    let logger: Logger
    static let pieceSize = 1 << 20

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            _ = await shipAll()
            try? await Task.sleep(for: interval)
        }
        // A last round for what the sessions closed at shutdown wrote; anything left goes at the next start.
        _ = await shipAll()
    }

    /// One round over the spool; returns the bytes still waiting (the backlog).
    func shipAll() async -> Int {
        let open = Set(((try? FileManager.default.contentsOfDirectory(atPath: spool + "/.open")) ?? []).filter { !$0.hasPrefix(".") })
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".ghrec") }
        var backlog = 0
        for file in files.sorted() {
            let session = String(file.dropLast(".ghrec".count))
            guard LocalRecordingStore.isValidSessionID(session) else { continue }
            do {
                backlog += try await ship(session, running: open.contains(session))
            } catch {
                logger.warning(
                    "cannot ship a session recording to the store",
                    metadata: ["sessionId": "\(session)", "store": "\(store.description)", "error": "\(error)"])
                backlog += fileSize(spool + "/" + file)
            }
        }
        return backlog
    }

    func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Uploads what `session`'s file has beyond the store's copy; deletes the file once it is all stored and the
    /// session is over. Returns the bytes not yet stored.
    func ship(_ session: String, running: Bool) async throws -> Int {
        let path = spool + "/" + session + ".ghrec"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return 0 }
        let size = Int(st.st_size)
        var stored = try await store.length(sessionId: session)
        guard stored <= size else {
            throw StorageError(.corrupt, "the store holds \(stored) bytes of a recording whose spool file has \(size)")
        }
        var piece = [UInt8](repeating: 0, count: Self.pieceSize)
        while stored < size {
            let n = piece.withUnsafeMutableBytes { pread(fd, $0.baseAddress, min(Self.pieceSize, size - stored), off_t(stored)) }
            guard n > 0 else { throw StorageError(.unavailable, "cannot read \(path)") }
            try await store.write(sessionId: session, offset: stored, Array(piece[0..<n]))
            stored += n
        }
        // The file may have grown meanwhile: only a finished session's file, all stored, is deleted.
        if !running, stored == size, fileSize(path) == size {
            if unlink(path) == 0 { logger.debug("shipped a session recording", metadata: ["sessionId": "\(session)", "bytes": "\(size)"]) }
        }
        return size - stored
    }
}
