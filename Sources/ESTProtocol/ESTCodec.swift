import ExtrasBase64
import SwiftASN1

/// RFC 7030 (with RFC 8951) message bodies: base64 PKCS#10 in, certs-only PKCS#7 and CSR attributes out, and the
/// multipart body of `/serverkeygen`. Pure: bytes in, values out.
public enum ESTCodec {
    /// The largest request body accepted (a CSR with a 16 kbit RSA key and many SANs fits easily).
    public static let maxRequestSize = 64 * 1024

    public enum DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        case empty
        case tooLarge
        case notBase64
        case notDER

        public var description: String {
            switch self {
            case .empty: "the request body is empty"
            case .tooLarge: "the request body exceeds \(ESTCodec.maxRequestSize) bytes"
            case .notBase64: "the body is not base64 (Content-Transfer-Encoding: base64 is required, RFC 8951)"
            case .notDER: "the decoded body is not one DER-encoded PKCS#10 request"
            }
        }
    }

    /// Decodes an `application/pkcs10` body: base64 with or without line breaks (CRLF or LF) and trailing newline.
    /// A body that is already DER (first byte 0x30) is accepted as is. The result is one complete DER SEQUENCE.
    public static func decodePKCS10(_ body: [UInt8]) throws(DecodeError) -> [UInt8] {
        guard !body.isEmpty else { throw .empty }
        guard body.count <= maxRequestSize else { throw .tooLarge }
        let der: [UInt8]
        if body[0] == 0x30 {
            der = body
        } else {
            guard let decoded = base64Decode(body) else { throw .notBase64 }
            der = decoded
        }
        guard !der.isEmpty, der[0] == 0x30, let node = try? DER.parse(der), node.encodedBytes.count == der.count else {
            throw .notDER
        }
        return der
    }

    /// Strict base64 (standard alphabet, `=` padding optional, canonical) ignoring ASCII whitespace; nil on any other
    /// character, and for nothing at all.
    public static func base64Decode(_ input: [UInt8]) -> [UInt8]? {
        let compact = input.filter { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D && $0 != 0x0A }
        guard !compact.isEmpty, let bytes = try? Base64.decode(bytes: compact, options: .omitPaddingCharacter) else {
            return nil
        }
        let again = Array(Base64.encodeToString(bytes: bytes).utf8)
        guard again == compact || again.prefix(while: { $0 != UInt8(ascii: "=") }).elementsEqual(compact) else {
            return nil
        }
        return bytes
    }

    /// Base64 in lines of 64 characters, each ended by CRLF.
    public static func base64Lines(_ data: [UInt8]) -> String {
        let encoded = Array(Base64.encodeToString(bytes: data).utf8)
        var out = ""
        out.reserveCapacity(encoded.count + encoded.count / 32)
        var start = 0
        while start < encoded.count {
            let end = min(start + 64, encoded.count)
            out += String(decoding: encoded[start..<end], as: UTF8.self)
            out += "\r\n"
            start = end
        }
        return out
    }

    static let oidSignedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 2]
    static let oidData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 1]

    /// A degenerate (certs-only) CMS SignedData in a ContentInfo: no signers, the certificates in a DER SET.
    public static func certsOnly(_ certificates: [[UInt8]]) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(oidSignedData)
            try s.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { s in
                try s.appendConstructedNode(identifier: .sequence) { s in
                    try s.serialize(1)
                    s.appendConstructedNode(identifier: .set) { _ in }
                    try s.appendConstructedNode(identifier: .sequence) { s in try s.serialize(oidData) }
                    s.appendConstructedNode(
                        identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
                    ) { s in
                        for c in certificates.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                            s.serializeRawBytes(c)
                        }
                    }
                    try s.appendConstructedNode(identifier: .set) { _ in }
                }
            }
        }
        return s.serializedBytes
    }

    /// The certificates of a certs-only PKCS#7 (for tests and clients).
    public static func certificates(inCertsOnly der: [UInt8]) throws -> [[UInt8]] {
        let root = try DER.parse(der)
        return try DER.sequence(root, identifier: .sequence) { nodes in
            guard let oid = nodes.next(), try ASN1ObjectIdentifier(derEncoded: oid) == oidSignedData,
                let explicit = nodes.next(), case .constructed(let inner) = explicit.content,
                let signedData = inner.first(where: { _ in true })
            else { throw ASN1Error.invalidASN1Object(reason: "not a SignedData ContentInfo") }
            return try DER.sequence(signedData, identifier: .sequence) { fields in
                var out: [[UInt8]] = []
                while let f = fields.next() {
                    if f.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific),
                        case .constructed(let certs) = f.content
                    {
                        out = certs.map { Array($0.encodedBytes) }
                    }
                }
                return out
            }
        }
    }

    /// The `/serverkeygen` response (RFC 7030 §4.4.2): `multipart/mixed` with the PKCS#8 key and the certs-only
    /// PKCS#7, each base64 with `Content-Transfer-Encoding: base64`. Returns the Content-Type value and the body.
    public static func serverKeyGenResponse(privateKeyPKCS8: [UInt8], certsOnly: [UInt8], boundary: String) -> (
        String, String
    ) {
        let body =
            "--\(boundary)\r\n"
            + "Content-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64Lines(privateKeyPKCS8)
            + "--\(boundary)\r\n"
            + "Content-Type: application/pkcs7-mime; smime-type=certs-only\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64Lines(certsOnly)
            + "--\(boundary)--\r\n"
        return ("multipart/mixed; boundary=\(boundary)", body)
    }
}
