import CZlib
import EngineAPI
import Foundation

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
        var stream = z_stream()
        guard gh_deflate_init_raw(&stream, Z_BEST_COMPRESSION) == Z_OK else { return json }
        defer { deflateEnd(&stream) }
        let dictionaryOK = dictionaryV1.withUnsafeBufferPointer { d in
            deflateSetDictionary(&stream, d.baseAddress, uInt(d.count)) == Z_OK
        }
        guard dictionaryOK else { return json }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(json.count))) + 1)
        out[0] = markerV1
        let produced: Int? = json.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> Int? in
            out.withUnsafeMutableBufferPointer { output -> Int? in
                stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = output.baseAddress.map { $0 + 1 }
                stream.avail_out = uInt(output.count - 1)
                guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { return nil }
                return output.count - Int(stream.avail_out)
            }
        }
        // Should deflate ever fail, the document is stored as it is (still readable).
        guard let produced else { return json }
        return Data(out[0..<produced])
    }

    /// The JSON document of a stored body (plain bodies pass through).
    static func unpack(_ stored: Data) throws -> Data {
        guard stored.first == markerV1 else { return stored }
        var stream = z_stream()
        guard gh_inflate_init_raw(&stream) == Z_OK else { throw EngineError(.internal, "cannot start inflating a stored body") }
        defer { inflateEnd(&stream) }
        // A raw stream names no dictionary: it is set before inflating, as it was before deflating.
        let dictionaryOK = dictionaryV1.withUnsafeBufferPointer { d in inflateSetDictionary(&stream, d.baseAddress, uInt(d.count)) == Z_OK }
        guard dictionaryOK else { throw EngineError(.internal, "cannot set the stored bodies' dictionary") }
        var out = Data()
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let body = stored.dropFirst()
        let failure: String? = body.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> String? in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { c -> (Int32, Int) in
                    stream.next_out = c.baseAddress
                    stream.avail_out = uInt(c.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    return (status, c.count - Int(stream.avail_out))
                }
                out.append(contentsOf: chunk[0..<produced])
                if out.count > maxSize { return "larger than \(maxSize) bytes" }
                if status == Z_STREAM_END { return nil }
                if status != Z_OK || (produced == 0 && stream.avail_in == 0) { return "corrupt (zlib \(status))" }
            }
        }
        if let failure { throw EngineError(.internal, "a stored body is unreadable", diagnostic: failure) }
        return out
    }
}
