import CZlib
import EngineAPI
import Foundation
import Synchronization

/// Compression of the JSON the engine stores most of: KMIP object bodies and audit event bodies (a million keys
/// mean a million of each). Raw deflate with a preset dictionary of the keys and common values these documents
/// share, behind one marker byte; a document of a few hundred bytes shrinks to a fraction, where plain deflate
/// saves a third at best (there is too little text to learn from).
///
/// Hand-written over the system zlib: Foundation on Linux has no compression API, and the packages on this machine
/// offer none with preset dictionaries.
///
/// Stored documents are self-describing: `0x01` + raw deflate with `dictionaryV1`, or plain JSON (which starts with
/// `{`), as every body written before this existed. The dictionary of version 1 must never change; another one
/// gets another marker.
enum StoredJSON {
    static let markerV1: UInt8 = 0x01

    /// The strings the documents repeat, the most common last (deflate reaches the end of a dictionary cheapest).
    static let dictionaryV1: [UInt8] = Array(
        (#"{"meta":{"certificate":null,"links":[{"type":258,"id":""}],"customAttributes":{},"wrappingData":null,"#
            + #""usageLimits":null,"splitKey":null,"keyFormatType":1,"dataType":1,"revocationReason":1,"#
            + #""revocationMessage":"","destroyDate":,"compromiseDate":,"compromiseOccurrenceDate":,"#
            + #""processStartDate":,"protectStopDate":,"activationDate":,"deactivationDate":,"objectType":"secretData","#
            + #""objectType":"privateKey","objectType":"publicKey","objectType":"opaqueObject","objectType":"certificate","#
            + #""state":2,"state":3,"algorithm":9,"cryptographicLength":128,"usageMask":4,"names":[],"#
            + #"{"actor":{"metadata":{"authMethod":"token","id":"","identityId":"","name":""},"type":"identity"},"#
            + #""event":{"metadata":{"secretId":"","name":"","version":"1"},"type":"secret.read"},"type":"secret.create","#
            + #""type":"kms.encrypt","type":"kms.decrypt","type":"kms.activate","type":"kms.destroy","type":"kms.revoke","#
            + #""type":"pki.certificate.issue","serialNumber":"","profileId":"","caId":"","commonName":"","#
            + #""type":"pam.session.start","type":"pam.session.end","sessionId":"","resource":"","account":"","#
            + #""userAgent":"","userAgentType":"http","userAgentType":"est","userAgentType":"acme","#
            + #"{"actor":{"metadata":{"authMethod":"tlsCertificate","id":"sha256:","issuer":"CN=Gatehouse Appliance CA,O=Gatehouse","#
            + #""name":"gatehouse-admin","notAfter":"20","serial":""},"type":"identity"},"event":{"metadata":{"#
            + #""algorithm":"3","decision":"allow","grantedBy":"bootstrap-admin","length":"256","name":"","objectId":"","#
            + #""objectType":"symmetricKey","requestId":""},"type":"kms.get"},"type":"kms.create"},"ipAddress":"127.0.0.1","#
            + #""projectId":"kmip-default","timestamp":"2026-","userAgentType":"kmip"}"#
            + #"{"meta":{"sensitive":false,"objectGroups":[],"fresh":true,"project":"kmip-default","state":1,"id":"","#
            + #""initialDate":8,"names":[""],"usageMask":12,"algorithm":3,"objectType":"symmetricKey","digest":[],"#
            + #""alwaysSensitive":false,"neverExtractable":false,"serverGenerated":true,"cryptographicLength":256,"#
            + #""extractable":true,"lastChangeDate":8},"material":"AQtkZWstaW5pdGlhbP"}"#).utf8)

    /// Bodies inflate to at most this (a KMIP object with every custom attribute at its largest stays below).
    static let maxSize = 16 << 20

    /// The stored form of a JSON document.
    static func pack(_ json: Data) -> Data {
        // Reset streams keep their buffers: a fresh deflate state is about 256 KiB, which malloc maps and unmaps
        // on every call (page faults and TLB shootdowns cost more than the compression itself).
        guard let stream = deflaters.take() else { return json }
        var reusable = false
        defer { deflaters.give(stream, reusable: reusable) }
        let dictionaryOK = dictionaryV1.withUnsafeBufferPointer { d in
            deflateSetDictionary(stream, d.baseAddress, uInt(d.count)) == Z_OK
        }
        guard dictionaryOK else { return json }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(json.count))) + 1)
        out[0] = markerV1
        let produced: Int? = json.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> Int? in
            out.withUnsafeMutableBufferPointer { output -> Int? in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.pointee.avail_in = uInt(input.count)
                stream.pointee.next_out = output.baseAddress.map { $0 + 1 }
                stream.pointee.avail_out = uInt(output.count - 1)
                guard deflate(stream, Z_FINISH) == Z_STREAM_END else { return nil }
                return output.count - Int(stream.pointee.avail_out)
            }
        }
        // Should deflate ever fail, the document is stored as it is (still readable).
        guard let produced else { return json }
        reusable = deflateReset(stream) == Z_OK
        return Data(out[0..<produced])
    }

    /// The JSON document of a stored body (plain bodies pass through).
    static func unpack(_ stored: Data) throws -> Data {
        guard stored.first == markerV1 else { return stored }
        guard let stream = inflaters.take() else {
            throw EngineError(.internal, "cannot start inflating a stored body")
        }
        var reusable = false
        defer { inflaters.give(stream, reusable: reusable) }
        // A raw stream names no dictionary: it is set before inflating, as it was before deflating.
        let dictionaryOK = dictionaryV1.withUnsafeBufferPointer { d in
            inflateSetDictionary(stream, d.baseAddress, uInt(d.count)) == Z_OK
        }
        guard dictionaryOK else { throw EngineError(.internal, "cannot set the stored bodies' dictionary") }
        // Bodies inflate to a few times their stored size; the buffer grows when one does not.
        var out = [UInt8](repeating: 0, count: max(4096, stored.count * 8))
        var produced = 0
        let body = stored.dropFirst()
        let failure: String? = body.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> String? in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.pointee.avail_in = uInt(input.count)
            while true {
                if produced == out.count {
                    if out.count >= maxSize { return "larger than \(maxSize) bytes" }
                    out.append(contentsOf: repeatElement(0, count: min(out.count, maxSize - out.count)))
                }
                let status = out.withUnsafeMutableBufferPointer { o -> Int32 in
                    stream.pointee.next_out = o.baseAddress.map { $0 + produced }
                    stream.pointee.avail_out = uInt(o.count - produced)
                    let status = inflate(stream, Z_NO_FLUSH)
                    produced = o.count - Int(stream.pointee.avail_out)
                    return status
                }
                if status == Z_STREAM_END { return nil }
                if status == Z_BUF_ERROR && produced == out.count { continue }
                if status != Z_OK { return "corrupt (zlib \(status))" }
                if stream.pointee.avail_in == 0 && produced < out.count { return "truncated" }
            }
        }
        if let failure { throw EngineError(.internal, "a stored body is unreadable", diagnostic: failure) }
        reusable = inflateReset(stream) == Z_OK
        return Data(out[0..<produced])
    }

    private static let deflaters = StreamPool(
        start: { gh_deflate_init_raw($0, Z_BEST_COMPRESSION) == Z_OK },
        end: { _ = deflateEnd($0) })
    private static let inflaters = StreamPool(
        start: { gh_inflate_init_raw($0) == Z_OK },
        end: { _ = inflateEnd($0) })
}

/// Initialized zlib streams kept for reuse. A stream's state points back at its `z_stream`, so each lives at one
/// heap address for its whole life; a stream is used by one caller at a time (taken out of the pool meanwhile).
private final class StreamPool: @unchecked Sendable {
    // @unchecked: the pointers are only reached under `lock`, or by the one caller that took them out.
    private struct Kept: @unchecked Sendable { var stream: UnsafeMutablePointer<z_stream> }
    private let lock = Mutex<[Kept]>([])
    private let start: @Sendable (UnsafeMutablePointer<z_stream>) -> Bool
    private let end: @Sendable (UnsafeMutablePointer<z_stream>) -> Void
    /// Enough for every thread of the concurrency pool and the event loops at once; past it, streams are freed.
    private let keep = 32

    init(
        start: @escaping @Sendable (UnsafeMutablePointer<z_stream>) -> Bool,
        end: @escaping @Sendable (UnsafeMutablePointer<z_stream>) -> Void
    ) {
        self.start = start
        self.end = end
    }

    func take() -> UnsafeMutablePointer<z_stream>? {
        if let s = lock.withLock({ $0.popLast() }) { return s.stream }
        let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        s.initialize(to: z_stream())
        guard start(s) else {
            s.deinitialize(count: 1)
            s.deallocate()
            return nil
        }
        return s
    }

    /// Returns a stream taken before; one that failed to reset, or past `keep`, is ended and freed.
    func give(_ s: UnsafeMutablePointer<z_stream>, reusable: Bool) {
        if reusable,
            lock.withLock({ pool -> Bool in
                guard pool.count < keep else { return false }
                pool.append(Kept(stream: s))
                return true
            })
        {
            return
        }
        end(s)
        s.deinitialize(count: 1)
        s.deallocate()
    }
}
