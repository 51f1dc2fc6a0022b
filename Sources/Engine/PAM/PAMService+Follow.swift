import Crypto
import EngineAPI
import Foundation
import Recording
import StorageAPI

// A live view of a running session's recording.
extension PAMService {
    public func followPAMRecording(_ ctx: CallContext, sessionId: String, from: Int, interval: Duration) async throws
        -> PAMRecordingFollow
    {
        // The first look authorizes; the follow is audited once, not at every poll.
        let (body, decision) = try await readableSession(ctx, sessionId: sessionId)
        try await transact { tx in
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "pam.recording.follow", project: body.info.project,
                    ["sessionId": sessionId, "from": String(from)]), tx)
        }
        let tail = RecordingTail(sessionId: sessionId)
        return PAMRecordingFollow(from: max(0, from), interval: interval) { [self] seen in
            // Each poll authorizes again (a withdrawn permission stops the view) and reads only what the recording
            // gained since the last one; the proxy seals what it has every second.
            let (body, _) = try await self.readableSession(ctx, sessionId: sessionId)
            return try await tail.poll(self, body, seen: seen)
        }
    }
}

/// What one live view has read of a recording: the reader's state (chain, chunk count, a record cut by the end of
/// the last read), how many bytes were fetched, the unfinished last line, and how many events were found. A poll
/// fetches the bytes after `fetched` only, so following a session costs what it records, not what it has recorded.
actor RecordingTail {
    let sessionId: String
    var reader: RecordingReader?
    var fetched = 0
    var line: [UInt8] = []
    var found = 0

    init(sessionId: String) {
        self.sessionId = sessionId
    }

    /// The events found since the last poll, from the `seen`-th event of the recording on.
    func poll(_ service: PAMService, _ body: PAMSessionBody, seen: Int) async throws -> PAMRecordingUpdate {
        let missing = PAMRecordingUpdate(events: [], session: body.info, integrity: "missing")
        guard let sealed = body.sealedRecordingKey, let recordings = service.recordings else { return missing }
        let added: [UInt8]
        do {
            // An empty file is none: the proxy creates it before writing the first chunk.
            guard let bytes = try await recordings.read(sessionId: sessionId, from: fetched),
                reader != nil || !bytes.isEmpty
            else { return missing }
            added = bytes
        } catch let e as StorageError {
            throw EngineError(
                .unavailable, "the recording store (\(recordings.description)) cannot be read: \(e.detail)")
        }
        var reader: RecordingReader
        if let current = self.reader {
            reader = current
        } else {
            reader = RecordingReader(
                expectedSession: sessionId, key: try await service.recordingKey(sealed, sessionId: sessionId))
        }
        let publicKey = try await service.recordingSigningKey().publicKey
        let chunks: [[UInt8]]
        do {
            chunks = try reader.feed(added) { publicKey.isValidSignature($1, for: $0) }
        } catch {
            throw EngineError(.invalidArgument, "the recording file is unreadable: \(error)")
        }
        self.reader = reader
        fetched += added.count
        for chunk in chunks { line += chunk }
        var events: [PAMRecordingEvent] = []
        if let last = line.lastIndex(of: UInt8(ascii: "\n")) {
            events = PAMService.events(lines: line[...last])
            line.removeFirst(last + 1)
        }
        let verdict = reader.integrityIfEnded
        if body.info.endedAt != nil, !line.isEmpty {
            // The session is over: a last line without its newline is all there will be.
            events += PAMService.events(lines: line[...])
            line = []
        }
        let first = found
        found += events.count
        let (integrity, _) = PAMService.recordingIntegrity(verdict, session: body.info)
        let skip = max(0, seen - first)
        return PAMRecordingUpdate(
            events: skip < events.count ? Array(events[skip...]) : [], session: body.info, integrity: integrity)
    }
}
