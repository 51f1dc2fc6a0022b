import Crypto
import EngineAPI
import Foundation
import StorageAPI

/// The hash-chained audit log: one chain per writer node, tied together by signed checkpoints.
///
/// Each event stores the previous event's hash and its own: `HMAC-SHA256(auditKey, previousHash ‖ seq ‖ ts ‖ body)`
/// with `seq` and `ts` as 8-byte big-endian integers and `body` the canonical JSON of the event. A chain's first
/// event links to the chain's genesis value, `HMAC(auditKey, "genesis" ‖ chain)` (32 zero bytes for chain "", the
/// single chain of stores written before per-node chains), so an event cannot be moved to another chain. The audit
/// key is random, stored sealed under the root key, so someone who can edit the database cannot recompute a chain.
/// Each chain's signed head (last sequence and hash, MACed) makes truncating its tail detectable, and a signed
/// checkpoint (metadata `audit_checkpoint`: every chain's head at one moment, MACed) makes deleting a whole chain
/// (events and head) detectable.
public struct AuditChain: Sendable {
    let key: SymmetricKey

    static let keyID = "audit-key"
    static let checkpointKey = "audit_checkpoint"
    static let zeroHash = Data(count: 32)

    /// The value a chain's first event links to.
    func genesis(_ chain: String) -> Data {
        if chain.isEmpty { return Self.zeroHash }
        return Data(HMAC<SHA256>.authenticationCode(for: Data(("genesis" + chain).utf8), using: key))
    }

    /// The searchable fields of an event (stored beside its body; verify checks they match).
    static func fields(_ event: AuditEvent) -> AuditFields {
        AuditFields(type: event.event.type, actor: event.actor.metadata["id"] ?? "", project: event.projectId ?? "")
    }

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
        return pad(t.tm_year + 1900, 4) + "-" + pad(t.tm_mon + 1, 2) + "-" + pad(t.tm_mday, 2) + "T" + pad(t.tm_hour, 2)
            + ":"
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

    /// A stored head's sequence and hash when its signature is valid.
    func parseHead(_ value: Data) -> (sequence: Int64, hash: Data)? {
        guard value.count == 8 + 32 + 32 else { return nil }
        let seq = value.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let hash = Data(value.dropFirst(8).prefix(32))
        return head(sequence: seq, hash: hash) == value ? (seq, hash) : nil
    }

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
        if let ip = event.ipAddress {
            key("ipAddress")
            JSONText.append(string: ip, to: &out)
        }
        if let project = event.projectId {
            key("projectId")
            JSONText.append(string: project, to: &out)
        }
        key("timestamp")
        JSONText.append(string: timestamp(event.timestamp), to: &out)
        if let agent = event.userAgent {
            key("userAgent")
            JSONText.append(string: agent, to: &out)
        }
        key("userAgentType")
        JSONText.append(string: event.userAgentType, to: &out)
        out.append(UInt8(ascii: "}"))
        return Data(out)
    }

    /// Links `drafts` to a chain whose head is `previous` (nil: a new chain): the records and the new signed head.
    func link(_ drafts: [AuditDraft], chain: String, previous: (sequence: Int64, hash: Data)?) -> ([AuditRecord], Data)
    {
        var sequence = previous?.sequence ?? 0
        var last = previous?.hash ?? genesis(chain)
        var out: [AuditRecord] = []
        out.reserveCapacity(drafts.count)
        for d in drafts {
            sequence += 1
            let h = hash(previous: last, sequence: sequence, timestamp: d.timestampMillis, body: d.plain)
            out.append(
                AuditRecord(
                    chain: chain, sequence: sequence, timestampMillis: d.timestampMillis, fields: d.fields,
                    body: d.body,
                    previousHash: last, hash: h))
            last = h
        }
        return (out, head(sequence: sequence, hash: last))
    }

    /// A checkpoint over chain heads: `count ‖ (chainLength ‖ chain ‖ head)* ‖ MAC`.
    func checkpoint(_ heads: [AuditChainHead]) -> Data {
        var payload = Data("checkpoint".utf8)
        payload.append(Self.bigEndian(Int64(heads.count)))
        for h in heads.sorted(by: { Array($0.chain.utf8).lexicographicallyPrecedes(Array($1.chain.utf8)) }) {
            payload.append(Self.bigEndian(Int64(h.chain.utf8.count)))
            payload.append(Data(h.chain.utf8))
            payload.append(h.value)
        }
        let tag = HMAC<SHA256>.authenticationCode(for: payload, using: key)
        return payload + Data(tag)
    }

    /// The heads a checkpoint names, when its signature is valid.
    func parseCheckpoint(_ value: Data) -> [AuditChainHead]? {
        let prefix = Data("checkpoint".utf8)
        guard value.count >= prefix.count + 8 + 32, value.prefix(prefix.count) == prefix else { return nil }
        let payload = value.prefix(value.count - 32)
        guard Data(HMAC<SHA256>.authenticationCode(for: payload, using: key)) == value.suffix(32) else { return nil }
        var bytes = Array(payload.dropFirst(prefix.count))
        func int() -> Int64? {
            guard bytes.count >= 8 else { return nil }
            defer { bytes.removeFirst(8) }
            return bytes.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
        }
        guard let n = int(), n >= 0, n < 1_000_000 else { return nil }
        var heads: [AuditChainHead] = []
        for _ in 0..<n {
            guard let len = int(), len >= 0, bytes.count >= Int(len) + 72 else { return nil }
            let chain = String(decoding: bytes.prefix(Int(len)), as: UTF8.self)
            bytes.removeFirst(Int(len))
            heads.append(AuditChainHead(chain: chain, value: Data(bytes.prefix(72))))
            bytes.removeFirst(72)
        }
        return bytes.isEmpty ? heads : nil
    }

    /// Incremental verifier over events read in (chain, sequence) order.
    struct Verifier {
        let chain: AuditChain
        var current: String?
        var expectedSequence: Int64 = 1
        var previousHash = AuditChain.zeroHash
        var problems: [String] = []
        var checked: Int64 = 0
        /// Each chain's last sequence and hash as read.
        var ends: [String: (Int64, Data)] = [:]
        /// Hashes at the positions a checkpoint names ("chain\u{0}seq").
        var wanted: [String: Data] = [:]
        var found: Set<String> = []
        let decoder = AuditChain.decoder()

        init(chain: AuditChain) { self.chain = chain }

        static func label(_ c: String) -> String { c.isEmpty ? "the first chain" : "chain \(c)" }

        mutating func feed(_ r: AuditRecord) {
            checked += 1
            if r.chain != current {
                current = r.chain
                expectedSequence = 1
                previousHash = chain.genesis(r.chain)
            }
            let position = "\(Self.label(r.chain)), event \(r.sequence)"
            if r.sequence != expectedSequence {
                problems.append(
                    r.sequence > expectedSequence
                        ? "\(Self.label(r.chain)): events \(expectedSequence)…\(r.sequence - 1) are missing (deleted?)"
                        : "\(position) is out of order (expected \(expectedSequence))")
            }
            if r.previousHash != previousHash {
                problems.append("\(position): previous-hash link broken (deleted, inserted or reordered events)")
            }
            // The hash covers the canonical JSON; the store may hold it compressed (StoredJSON).
            let plain = try? StoredJSON.unpack(r.body)
            let expected = plain.map {
                chain.hash(previous: r.previousHash, sequence: r.sequence, timestamp: r.timestampMillis, body: $0)
            }
            if plain != nil, expected != r.hash {
                problems.append("\(position): content does not match its hash (edited)")
            } else if plain == nil {
                problems.append("\(position): content does not match its hash (edited: the stored body is unreadable)")
            } else if let plain, let event = try? decoder.decode(AuditEvent.self, from: plain) {
                if AuditChain.fields(event) != r.fields {
                    problems.append("\(position): its search fields were edited")
                }
            } else {
                problems.append("\(position): the body is unreadable")
            }
            let spot = r.chain + "\u{0}\(r.sequence)"
            if let w = wanted[spot] {
                found.insert(spot)
                if w != r.hash { problems.append("\(position) differs from the signed checkpoint (edited)") }
            }
            expectedSequence = r.sequence + 1
            previousHash = r.hash
            ends[r.chain] = (r.sequence, r.hash)
        }

        mutating func expect(checkpoint: Data?) {
            guard let checkpoint else { return }
            guard let heads = chain.parseCheckpoint(checkpoint) else {
                problems.append("the audit checkpoint's signature is invalid (edited)")
                return
            }
            for h in heads {
                guard let (seq, hash) = chain.parseHead(h.value) else {
                    problems.append("the audit checkpoint names a malformed head")
                    continue
                }
                wanted[h.chain + "\u{0}\(seq)"] = hash
            }
        }

        mutating func finish(heads: [AuditChainHead]) {
            var headed: Set<String> = []
            for h in heads {
                headed.insert(h.chain)
                guard let (seq, hash) = chain.parseHead(h.value) else {
                    problems.append("\(Self.label(h.chain)): the signed head's signature is invalid (edited)")
                    continue
                }
                let (last, lastHash) = ends[h.chain] ?? (0, chain.genesis(h.chain))
                if seq != last || hash != lastHash {
                    problems.append(
                        "\(Self.label(h.chain)) ends at event \(last) but its signed head is event \(seq) (tail deleted?)"
                    )
                }
            }
            for c in ends.keys.sorted() where !headed.contains(c) {
                problems.append("\(Self.label(c)): the signed chain head is missing")
            }
            for spot in wanted.keys.sorted() where !found.contains(spot) {
                let parts = spot.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
                problems.append(
                    "\(Self.label(String(parts[0]))): event \(parts.count > 1 ? String(parts[1]) : "?") named by the signed checkpoint is missing (deleted?)"
                )
            }
        }
    }

    /// Verifies a complete list of events against heads and a checkpoint (pure; used by tests and `verify(storage:)`).
    func verify(_ records: [AuditRecord], heads: [AuditChainHead], checkpoint: Data?) -> AuditVerification {
        var v = Verifier(chain: self)
        v.expect(checkpoint: checkpoint)
        for r in records.sorted(by: { $0.position < $1.position }) { v.feed(r) }
        v.finish(heads: heads)
        return AuditVerification(checked: v.checked, problems: v.problems)
    }

    /// Verifies every chain stored in `storage`, page by page, while nodes may keep appending: the checkpoint, then
    /// the heads are read first, and only the events those heads cover are judged (later appends go past them;
    /// chains started later are left for the next run, unless they have no head at the end either).
    func verify(storage: any Storage) async throws -> AuditVerification {
        var v = Verifier(chain: self)
        let checkpoint = try await storage.withReadTransaction { tx in try await tx.metadata(Self.checkpointKey) }
        let heads = try await storage.withReadTransaction { tx in try await tx.auditChainHeads() }
        v.expect(checkpoint: checkpoint)
        var limits: [String: Int64] = [:]
        for h in heads { limits[h.chain] = parseHead(h.value)?.sequence ?? Int64.max }
        var unheaded: Set<String> = []
        var after: AuditPosition?
        while true {
            let from = after
            let page = try await storage.withReadTransaction { tx in
                try await tx.auditEvents(chain: nil, after: from, limit: 1000)
            }
            for r in page {
                guard let limit = limits[r.chain] else {
                    unheaded.insert(r.chain)
                    continue
                }
                if r.sequence <= limit { v.feed(r) }
            }
            guard let last = page.last, page.count == 1000 else { break }
            after = last.position
        }
        v.finish(heads: heads)
        if !unheaded.isEmpty {
            let now = Set(try await storage.withReadTransaction { tx in try await tx.auditChainHeads() }.map(\.chain))
            for c in unheaded.sorted() where !now.contains(c) {
                v.problems.append("\(Verifier.label(c)): the signed chain head is missing")
            }
        }
        return AuditVerification(checked: v.checked, problems: v.problems)
    }
}
