import Foundation
import Logging
import Metrics
import PGProxyFrontEnd
import ServiceLifecycle
import StorageAPI
import Synchronization

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
    /// What the last round left, for `/metrics`, `/readyz` and the proxy's fail-closed check.
    let status: Status
    /// Whether retention already deleted the session's recording (its data key is gone): a spool copy still here
    /// (the store was unreachable for longer than the retention) is then removed, not uploaded again.
    var recordingDeleted: @Sendable (String) async -> Bool = { _ in false }
    static let pieceSize = 1 << 20

    /// The shipper's backlog and health, shared with the proxy and the operations endpoints.
    final class Status: Sendable {
        struct State {
            var backlog = 0
            var failingSince: ContinuousClock.Instant?
            var lastError: String?
        }
        let state = Mutex(State())
        /// Bytes waiting past which fail-closed resources refuse new sessions.
        let maxBacklog: Int
        /// How long shipping may fail before fail-closed resources refuse new sessions.
        let maxFailing: Duration
        let gauge = Gauge(label: "gatehouse_pam_recording_backlog_bytes")
        let failingGauge = Gauge(label: "gatehouse_pam_recording_store_failing")

        init(maxBacklog: Int, maxFailing: Duration = .seconds(10)) {
            self.maxBacklog = maxBacklog
            self.maxFailing = maxFailing
        }

        func update(backlog: Int, error: String?) {
            state.withLock { s in
                s.backlog = backlog
                if let error {
                    if s.failingSince == nil { s.failingSince = .now }
                    s.lastError = error
                } else {
                    s.failingSince = nil
                    s.lastError = nil
                }
            }
            gauge.record(backlog)
            failingGauge.record(error == nil ? 0 : 1)
        }

        /// Why new sessions of fail-closed resources are refused now, or nil.
        func blocked(now: ContinuousClock.Instant = .now) -> String? {
            state.withLock { s in
                if let since = s.failingSince, now - since >= maxFailing {
                    return
                        "the recording store has been unreachable for \(Int((now - since).components.seconds)) s (\(s.lastError ?? "unknown error"))"
                }
                if s.backlog > maxBacklog {
                    return "\(s.backlog) bytes of recordings wait to reach the store (limit \(maxBacklog))"
                }
                return nil
            }
        }

        /// For `/readyz`.
        var summary: String {
            state.withLock { s in
                "recordings: backlog \(s.backlog) bytes" + (s.lastError.map { ", store failing: \($0)" } ?? "")
            }
        }
    }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            _ = await shipAll()
            try? await Task.sleep(for: interval)
        }
        // A last round for what the sessions closed at shutdown wrote; anything left goes at the next start.
        _ = await shipAll()
    }

    /// One round over the spool; returns the bytes still waiting (the backlog).
    @discardableResult
    func shipAll() async -> Int {
        let open = Set(PGOpenSessionMarkers(recordingDirectory: spool).list())
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter {
            $0.hasSuffix(".ghrec")
        }
        var backlog = 0
        var failure: String?
        for file in files.sorted() {
            let session = String(file.dropLast(".ghrec".count))
            guard LocalRecordingStore.isValidSessionID(session) else { continue }
            do {
                backlog += try await ship(session, running: open.contains(session))
            } catch {
                logger.warning(
                    "cannot ship a session recording to the store",
                    metadata: ["sessionId": "\(session)", "store": "\(store.description)", "error": "\(error)"])
                failure = (error as? StorageError)?.detail ?? "\(error)"
                backlog += await spoolSize(session)
            }
        }
        status.update(backlog: backlog, error: failure)
        return backlog
    }

    /// The spool file's size now (the spool is a local recording store).
    func spoolSize(_ session: String) async -> Int {
        (try? await LocalRecordingStore(directory: spool).length(sessionId: session)) ?? 0
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
        if stored == 0, !running, await recordingDeleted(session) {
            if unlink(path) == 0 {
                logger.notice(
                    "removed the spool copy of a recording retention has deleted", metadata: ["sessionId": "\(session)"]
                )
            }
            return 0
        }
        guard stored <= size else {
            throw StorageError(.corrupt, "the store holds \(stored) bytes of a recording whose spool file has \(size)")
        }
        var piece = [UInt8](repeating: 0, count: Self.pieceSize)
        while stored < size {
            let n = piece.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress, min(Self.pieceSize, size - stored), off_t(stored))
            }
            guard n > 0 else { throw StorageError(.unavailable, "cannot read \(path)") }
            try await store.write(sessionId: session, offset: stored, Array(piece[0..<n]))
            stored += n
        }
        // The file may have grown meanwhile: only a finished session's file, all stored, is deleted.
        if !running, stored == size, await spoolSize(session) == size {
            if unlink(path) == 0 {
                logger.debug("shipped a session recording", metadata: ["sessionId": "\(session)", "bytes": "\(size)"])
            }
        }
        return size - stored
    }
}
