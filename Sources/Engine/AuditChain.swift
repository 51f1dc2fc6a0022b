import Crypto
import EngineAPI
import Foundation
import StorageAPI

/// The hash-chained audit log.
///
/// Each event stores the previous event's hash and its own: `HMAC-SHA256(auditKey, previousHash ‖ seq ‖ ts ‖ body)`
/// with `seq` and `ts` as 8-byte big-endian integers and `body` the canonical JSON of the event. The audit key is
/// random, stored sealed under the root key, so someone who can edit the database cannot recompute the chain.
/// A signed head (`audit_head` metadata: last sequence and hash, MACed) makes truncating the tail detectable.
public struct AuditChain: Sendable {
    let key: SymmetricKey

    static let keyID = "audit-key"
    static let headKey = "audit_head"
    static let zeroHash = Data(count: 32)

    init(key: SymmetricKey) { self.key = key }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(Self.timestamp(date))
        }
        return e
    }

    /// RFC 3339 UTC with milliseconds (`2026-11-28T03:04:05.678Z`), the format ISO8601DateFormatter writes with
    /// fractional seconds, without building a formatter per event (that was a quarter of a KMIP Get's CPU time).
    static func timestamp(_ date: Date) -> String {
        let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(millis >= 0 ? millis / 1000 : (millis - 999) / 1000)
        let ms = Int(millis - Int64(seconds) * 1000)
        var t = tm()
        gmtime_r(&seconds, &t)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return pad(t.tm_year + 1900, 4) + "-" + pad(t.tm_mon + 1, 2) + "-" + pad(t.tm_mday, 2) + "T" + pad(t.tm_hour, 2) + ":"
            + pad(t.tm_min, 2) + ":" + pad(t.tm_sec, 2) + "." + pad(Int32(ms), 3) + "Z"
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let s = try c.decode(String.self)
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let date = f.date(from: s) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "bad timestamp \(s)")
            }
            return date
        }
        return d
    }

    static func bigEndian(_ v: Int64) -> Data { withUnsafeBytes(of: v.bigEndian) { Data($0) } }

    func hash(previous: Data, sequence: Int64, timestamp: Int64, body: Data) -> Data {
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: previous)
        mac.update(data: Self.bigEndian(sequence))
        mac.update(data: Self.bigEndian(timestamp))
        mac.update(data: body)
        return Data(mac.finalize())
    }

    func head(sequence: Int64, hash: Data) -> Data {
        var payload = Data("head".utf8)
        payload.append(Self.bigEndian(sequence))
        payload.append(hash)
        let tag = HMAC<SHA256>.authenticationCode(for: payload, using: key)
        return Self.bigEndian(sequence) + hash + Data(tag)
    }

    /// Appends `event` inside `tx` (the caller's transaction, so the event commits with the change it describes).
    /// The event's stored body: the same bytes `encoder()` writes (sorted keys, no escaped slashes, the timestamp as
    /// RFC 3339 with milliseconds), written by hand — `JSONEncoder` was an eighth of a KMIP Get's CPU time. The
    /// tests compare both byte for byte.
    static func body(_ event: AuditEvent) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        func key(_ name: String, first: Bool = false) {
            if !first { out.append(UInt8(ascii: ",")) }
            JSONText.append(string: name, to: &out)
            out.append(UInt8(ascii: ":"))
        }
        func part(_ type: String, _ metadata: [String: String]) {
            out.append(UInt8(ascii: "{"))
            key("metadata", first: true)
            JSONText.append(object: metadata, to: &out)
            key("type")
            JSONText.append(string: type, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "{"))
        key("actor", first: true)
        part(event.actor.type, event.actor.metadata)
        key("event")
        part(event.event.type, event.event.metadata)
        if let ip = event.ipAddress { key("ipAddress"); JSONText.append(string: ip, to: &out) }
        if let project = event.projectId { key("projectId"); JSONText.append(string: project, to: &out) }
        key("timestamp")
        JSONText.append(string: timestamp(event.timestamp), to: &out)
        if let agent = event.userAgent { key("userAgent"); JSONText.append(string: agent, to: &out) }
        key("userAgentType")
        JSONText.append(string: event.userAgentType, to: &out)
        out.append(UInt8(ascii: "}"))
        return Data(out)
    }

    func append(_ event: AuditEvent, _ tx: any StorageTransaction) async throws {
        let body = Self.body(event)
        let last = try await tx.lastAuditEvent()
        let sequence = (last?.sequence ?? 0) + 1
        let previous = last?.hash ?? Self.zeroHash
        let ts = Record.millis(event.timestamp)
        let h = hash(previous: previous, sequence: sequence, timestamp: ts, body: body)
        try await tx.appendAuditEvent(
            AuditRecord(sequence: sequence, timestampMillis: ts, body: body, previousHash: previous, hash: h),
            headKey: Self.headKey, head: head(sequence: sequence, hash: h))
    }

    /// Incremental verifier over events read in order.
    struct Verifier {
        let chain: AuditChain
        var expectedSequence: Int64 = 1
        var previousHash = AuditChain.zeroHash
        var problems: [String] = []
        var checked: Int64 = 0

        mutating func feed(_ r: AuditRecord) {
            checked += 1
            if r.sequence != expectedSequence {
                problems.append(
                    r.sequence > expectedSequence
                        ? "events \(expectedSequence)…\(r.sequence - 1) are missing (deleted?)"
                        : "event \(r.sequence) is out of order (expected \(expectedSequence))")
            }
            if r.previousHash != previousHash {
                problems.append("event \(r.sequence): previous-hash link broken (deleted, inserted or reordered events)")
            }
            let expected = chain.hash(
                previous: r.previousHash, sequence: r.sequence, timestamp: r.timestampMillis, body: r.body)
            if expected != r.hash {
                problems.append("event \(r.sequence): content does not match its hash (edited)")
            }
            expectedSequence = r.sequence + 1
            previousHash = r.hash
        }

        mutating func finish(head: Data?) {
            let lastSequence = expectedSequence - 1
            guard let head else {
                if lastSequence > 0 { problems.append("the signed chain head is missing") }
                return
            }
            guard head.count == 8 + 32 + 32 else {
                problems.append("the signed chain head is malformed")
                return
            }
            let seq = head.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
            let hash = head.dropFirst(8).prefix(32)
            if chain.head(sequence: seq, hash: Data(hash)) != head {
                problems.append("the chain head's signature is invalid (edited)")
            } else if seq != lastSequence || Data(hash) != previousHash {
                problems.append("the chain ends at event \(lastSequence) but the signed head is event \(seq) (tail deleted?)")
            }
        }
    }

    /// Verifies a complete list of events and the head (pure; used by tests and by `verify(storage:)`).
    func verify(_ records: [AuditRecord], head: Data?) -> AuditVerification {
        var v = Verifier(chain: self)
        for r in records { v.feed(r) }
        v.finish(head: head)
        return AuditVerification(checked: v.checked, problems: v.problems)
    }

    /// Verifies the chain stored in `storage`, page by page, in one read transaction.
    func verify(storage: any Storage) async throws -> AuditVerification {
        try await storage.withTransaction { tx in
            var v = Verifier(chain: self)
            var after: Int64 = 0
            while true {
                let page = try await tx.auditEvents(after: after, limit: 1000)
                for r in page { v.feed(r) }
                guard let last = page.last, page.count == 1000 else { break }
                after = last.sequence
            }
            v.finish(head: try await tx.metadata(Self.headKey))
            return AuditVerification(checked: v.checked, problems: v.problems)
        }
    }
}
