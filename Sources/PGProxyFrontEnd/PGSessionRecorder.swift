import EngineAPI
import Foundation
import NIOCore
import PGWire
import Recording

/// Writes one session's encrypted recording (`<recordings>/<session id>.ghrec`): events are JSON lines collected
/// into chunks of about 64 KiB, sealed and written as they fill and at least once a second (so a `kill -9` loses at
/// most the last second), then a manifest signed by the engine at the end. Both relay directions record through one
/// lock; nothing here ever delays a relayed byte beyond the time to append an event.
public final class PGSessionRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var encoder: RecordingEncoder
    private var fd: Int32
    private var pending: [UInt8] = []
    private(set) var failure: String?
    let started = Date()
    public let path: String
    static let chunkSize = 64 * 1024
    /// The largest chunk written (the format allows 16 MiB).
    static let maxSealed = 1 << 20

    public init(directory: String, sessionId: String, key: SecretBytes) throws {
        path = directory + "/" + sessionId + ".ghrec"
        encoder = RecordingEncoder(session: sessionId, key: key.bytes)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RecordingError("cannot create \(path): \(String(cString: strerror(errno)))") }
        guard writeAll(encoder.header) else { throw RecordingError("cannot write \(path): \(failure ?? "")") }
    }

    var seconds: Double { (Date().timeIntervalSince(started) * 1000).rounded() / 1000 }

    /// Appends an event; false once the recording has failed.
    @discardableResult
    public func record(_ event: PAMRecordingEvent) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil else { return false }
        event.appendJSON(to: &pending)
        pending.append(UInt8(ascii: "\n"))
        if pending.count >= Self.chunkSize { sealPending() }
        return failure == nil
    }

    /// Seals what is pending (the periodic flush).
    @discardableResult
    public func flush() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if !pending.isEmpty, failure == nil { sealPending() }
        return failure == nil
    }

    /// Seals the rest, appends the signed manifest and syncs the file. Returns the chunk count and chain hash the
    /// manifest states (for the store), or nil when no manifest could be written.
    func close(reason: String, engine: any PGProxyEngine, sessionId: String) async -> (chunks: UInt64, chain: String)? {
        let sealed: ([UInt8], UInt64, String)? = lock.withLock {
            if !pending.isEmpty, failure == nil { sealPending() }
            return failure == nil
                ? (encoder.manifest(endedAt: Date(), endReason: reason), encoder.chunks, encoder.chainHex) : nil
        }
        var written: (chunks: UInt64, chain: String)?
        if let (manifest, chunks, chain) = sealed,
            let signature = try? await engine.signPAMRecordingManifest(
                sessionId: sessionId, RecordingFormat.signedManifestBytes(manifest))
        {
            lock.withLock {
                if writeAll(RecordingEncoder.manifestRecord(manifest, signature: signature)), fsync(fd) == 0 {
                    written = (chunks, chain)
                }
            }
        }
        lock.withLock {
            if fd >= 0 { Foundation.close(fd) }
            fd = -1
        }
        return written
    }

    /// Seals what is pending, in chunks of at most `maxSealed` bytes: one event line (a statement of any size up to the
    /// listener's message limit) may span several chunks, and replay joins them.
    private func sealPending() {
        do {
            var offset = 0
            while offset < pending.count, failure == nil {
                let end = min(pending.count, offset + Self.maxSealed)
                let record = try encoder.seal(
                    offset == 0 && end == pending.count ? pending : Array(pending[offset..<end]))
                _ = writeAll(record)
                offset = end
            }
            pending.removeAll(keepingCapacity: pending.count <= 4 * Self.chunkSize)
        } catch {
            failure = "cannot seal a chunk: \(error)"
        }
    }

    private func writeAll(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                failure = "cannot write the recording: \(String(cString: strerror(errno)))"
                return false
            }
            offset += n
        }
        return true
    }
}

/// Turns one direction of the relayed stream into recording events (and enforces the message length limit).
struct PGStreamObserver {
    enum Direction { case client, server }
    let direction: Direction
    var scanner: PGFrameScanner
    var statements = 0
    /// Client: messages that the server answers with one ReadyForQuery (Query, Sync, FunctionCall).
    /// Server: ReadyForQuery messages seen.
    var awaitingReady = 0
    var readyForQuery = 0
    var terminated = false
    var copyBytes: Int64 = 0
    /// Result rows to record per statement (server direction; 0: none) and how many this statement has had.
    let rowCap: Int
    var rowsSeen = 0
    /// Server values (rows, errors) are recorded up to this many bytes; what the client sends is recorded whole.
    static let valueCap = 4096
    /// Client: the parameter types of each prepared statement (from Parse), to render binary Bind values, and the
    /// statement each portal was bound from (so an Execute names its statement). Bounded: past `preparedCap` entries
    /// new names are not tracked (their values show as hex, their executions without a statement name).
    var preparedTypes: [String: [Int32]] = [:]
    var portals: [String: String] = [:]
    static let preparedCap = 10_000

    init(_ direction: Direction, maxMessageLength: Int, recordRows: Int = 0) {
        self.direction = direction
        rowCap = direction == .server ? max(0, recordRows) : 0
        var interesting: Set<UInt8> =
            direction == .client
            ? Set("QPBEFXcfC".utf8)
            : Set("CEGHW".utf8)
        // DataRows are parsed only when the resource records rows: otherwise the scanner skips their bodies.
        if rowCap > 0 { interesting.insert(UInt8(ascii: "D")) }
        // Every client message that reaches the server is recorded whole: its body is kept up to the message limit,
        // which the scanner enforces before a byte of a longer message is forwarded.
        scanner = PGFrameScanner(
            maxMessageLength: maxMessageLength, interesting: interesting,
            bodyCap: direction == .client ? maxMessageLength : 1 << 20)
    }

    /// Scans bytes; records what they say. Throws on an impossible length.
    mutating func observe(_ buffer: ByteBuffer, recorder: PGSessionRecorder?) throws {
        try buffer.withUnsafeReadableBytes { raw in
            var index = 0
            while let frame = try scanner.next(raw, from: &index) { handle(frame, recorder) }
        }
    }

    mutating func handle(_ frame: PGFrameScanner.Seen, _ recorder: PGSessionRecorder?) {
        switch (direction, frame.type) {
        case (.client, UInt8(ascii: "Q")):
            statements += 1
            awaitingReady += 1
        case (.client, UInt8(ascii: "E")):
            statements += 1
        case (.client, UInt8(ascii: "S")), (.client, UInt8(ascii: "F")):
            awaitingReady += 1
        case (.server, UInt8(ascii: "Z")):
            readyForQuery += 1
            return
        case (.client, UInt8(ascii: "X")):
            terminated = true
        case (_, UInt8(ascii: "d")):
            copyBytes += Int64(frame.length)
            return
        case (.server, UInt8(ascii: "D")):
            rowsSeen += 1
            guard rowsSeen <= rowCap, let recorder, !frame.truncated,
                case .dataRow(let values)? = try? PGBackendMessage(PGFrame(type: frame.type, body: frame.body))
            else { return }
            recorder.record(
                PAMRecordingEvent(
                    t: recorder.seconds, kind: "row", parameters: values.map { Self.render($0, binary: false) }))
            return
        case (.server, UInt8(ascii: "C")), (.server, UInt8(ascii: "E")):
            rowsSeen = 0
        default: break
        }
        // Frames whose bodies the scanner skipped (RowDescription, DataRow, ReadyForQuery, …) say nothing to record.
        guard let recorder, scanner.wants(frame.type) else { return }
        let t = recorder.seconds
        let event: PAMRecordingEvent?
        if frame.truncated {
            event = PAMRecordingEvent(
                t: t, kind: Self.kind(frame.type, direction),
                text: String(decoding: frame.body.prefix(Self.valueCap), as: UTF8.self) + "…",
                bytes: Int64(frame.length))
        } else {
            event = direction == .client ? clientEvent(frame, t) : Self.event(frame, direction, t, &copyBytes)
        }
        if let event { recorder.record(event) }
    }

    static func kind(_ type: UInt8, _ direction: Direction) -> String {
        switch (direction, Character(Unicode.Scalar(type))) {
        case (.client, "Q"): return "query"
        case (.client, "P"): return "parse"
        case (.client, "B"): return "bind"
        case (.client, "E"): return "execute"
        case (.client, "F"): return "functionCall"
        case (.server, "C"): return "complete"
        case (.server, "E"): return "error"
        default: return "message"
        }
    }

    /// A client message as an event, with what the observer knows of prepared statements and portals.
    mutating func clientEvent(_ frame: PGFrameScanner.Seen, _ t: Double) -> PAMRecordingEvent? {
        guard let message = try? PGFrontendMessage(PGFrame(type: frame.type, body: frame.body)) else { return nil }
        switch message {
        case .parse(let name, let sql, let types):
            if preparedTypes[name] != nil || preparedTypes.count < Self.preparedCap { preparedTypes[name] = types }
            return PAMRecordingEvent(t: t, kind: "parse", text: sql, name: name, parameterTypes: types)
        case .bind(let portal, let statement, let formats, let parameters, _):
            if portals[portal] != nil || portals.count < Self.preparedCap { portals[portal] = statement }
            let types = preparedTypes[statement] ?? []
            let values = parameters.enumerated().map { i, v in
                PGValueText.render(
                    v, oid: i < types.count ? types[i] : 0,
                    binary: (formats.count == 1 ? formats[0] : (i < formats.count ? formats[i] : 0)) == 1)
            }
            return PAMRecordingEvent(
                t: t, kind: "bind", name: portal, statement: statement, parameters: values, formats: formats)
        case .execute(let portal, let maxRows):
            return PAMRecordingEvent(
                t: t, kind: "execute", name: portal, statement: portals[portal], rows: Int64(maxRows))
        case .close(let kind, let name):
            if kind == UInt8(ascii: "S") { preparedTypes[name] = nil } else { portals[name] = nil }
            return nil
        default:
            return Self.event(frame, direction, t, &copyBytes)
        }
    }

    static func render(_ value: [UInt8]?, binary: Bool) -> String? {
        guard let value else { return nil }
        let capped = value.prefix(valueCap)
        let text =
            binary || String(validating: capped, as: UTF8.self) == nil
            ? "\\x" + Hex.encode(capped) : String(decoding: capped, as: UTF8.self)
        return value.count > valueCap ? text + "…" : text
    }

    static func event(_ frame: PGFrameScanner.Seen, _ direction: Direction, _ t: Double, _ copyBytes: inout Int64)
        -> PAMRecordingEvent?
    {
        let pgFrame = PGFrame(type: frame.type, body: frame.body)
        switch direction {
        case .client:
            guard let message = try? PGFrontendMessage(pgFrame) else { return nil }
            switch message {
            case .query(let sql): return PAMRecordingEvent(t: t, kind: "query", text: sql)
            case .parse(let name, let sql, let types):
                return PAMRecordingEvent(t: t, kind: "parse", text: sql, name: name, parameterTypes: types)
            case .bind(let portal, let statement, let formats, let parameters, _):
                let values = parameters.enumerated().map { i, v in
                    render(v, binary: (formats.count == 1 ? formats[0] : (i < formats.count ? formats[i] : 0)) == 1)
                }
                return PAMRecordingEvent(
                    t: t, kind: "bind", name: portal, statement: statement, parameters: values, formats: formats)
            case .execute(let portal, let maxRows):
                return PAMRecordingEvent(t: t, kind: "execute", name: portal, rows: Int64(maxRows))
            case .functionCall(let oid, _, _, _):
                return PAMRecordingEvent(t: t, kind: "functionCall", text: String(oid))
            case .copyDone, .copyFail:
                defer { copyBytes = 0 }
                return PAMRecordingEvent(t: t, kind: "copyIn", bytes: copyBytes)
            default: return nil
            }
        case .server:
            guard let message = try? PGBackendMessage(pgFrame) else { return nil }
            switch message {
            case .commandComplete(let tag):
                let rows = rowCount(tag)
                if tag.hasPrefix("COPY"), copyBytes > 0 {
                    defer { copyBytes = 0 }
                    return PAMRecordingEvent(t: t, kind: "complete", text: tag, rows: rows, bytes: copyBytes)
                }
                return PAMRecordingEvent(t: t, kind: "complete", text: tag, rows: rows)
            case .errorOrNotice(true, let fields):
                return PAMRecordingEvent(
                    t: t, kind: "error", text: fields[UInt8(ascii: "M")], sqlState: fields[UInt8(ascii: "C")])
            case .copyResponse(let kind, _, _):
                return PAMRecordingEvent(
                    t: t, kind: "copyStart",
                    text: kind == UInt8(ascii: "H") ? "out" : kind == UInt8(ascii: "G") ? "in" : "both")
            default: return nil
            }
        }
    }

    /// The row count that ends a CommandComplete tag (`SELECT 5`, `INSERT 0 5`, `COPY 5`); nil for tags without one.
    static func rowCount(_ tag: String) -> Int64? {
        var value: Int64 = 0
        var scale: Int64 = 1
        var digits = 0
        for b in tag.utf8.reversed() {
            if b == UInt8(ascii: " ") { break }
            guard b >= 0x30, b <= 0x39, digits < 18 else { return nil }
            value += Int64(b - 0x30) * scale
            scale *= 10
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}
