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

    /// Strict base64 (standard alphabet, `=` padding) ignoring ASCII whitespace; nil on any other character.
    public static func base64Decode(_ input: [UInt8]) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(input.count)
        var padding = 0
        for c in input {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                guard padding == 0 else { return nil }
                values.append(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"):
                guard padding == 0 else { return nil }
                values.append(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard padding == 0 else { return nil }
                values.append(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"):
                guard padding == 0 else { return nil }
                values.append(62)
            case UInt8(ascii: "/"):
                guard padding == 0 else { return nil }
                values.append(63)
            case UInt8(ascii: "="):
                padding += 1
                guard padding <= 2 else { return nil }
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"):
                continue
            default:
                return nil
            }
        }
        guard !values.isEmpty, (values.count + padding) % 4 == 0 || padding == 0 else { return nil }
        guard values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var i = 0
        while i + 4 <= values.count {
            let n = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12 | UInt32(values[i + 2]) << 6 | UInt32(values[i + 3])
            out += [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
            i += 4
        }
        let rest = values.count - i
        if rest == 2 {
            let n = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12
            out.append(UInt8(n >> 16 & 0xff))
        } else if rest == 3 {
            let n = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12 | UInt32(values[i + 2]) << 6
            out += [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff)]
        }
        return out
    }

    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Base64 in lines of 64 characters, each ended by CRLF.
    public static func base64Lines(_ data: [UInt8]) -> String {
        var encoded: [UInt8] = []
        encoded.reserveCapacity((data.count + 2) / 3 * 4)
        var i = 0
        while i < data.count {
            let b0 = UInt32(data[i])
            let b1 = i + 1 < data.count ? UInt32(data[i + 1]) : 0
            let b2 = i + 2 < data.count ? UInt32(data[i + 2]) : 0
            let n = b0 << 16 | b1 << 8 | b2
            encoded.append(alphabet[Int(n >> 18 & 63)])
            encoded.append(alphabet[Int(n >> 12 & 63)])
            encoded.append(i + 1 < data.count ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            encoded.append(i + 2 < data.count ? alphabet[Int(n & 63)] : UInt8(ascii: "="))
            i += 3
        }
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
                    try s.appendConstructedNode(identifier: .set) { _ in }
                    try s.appendConstructedNode(identifier: .sequence) { s in try s.serialize(oidData) }
                    try s.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { s in
                        for c in certificates.sorted(by: { $0.lexicographicallyPrecedes($1) }) { s.serializeRawBytes(c) }
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
                    if f.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific), case .constructed(let certs) = f.content {
                        out = certs.map { Array($0.encodedBytes) }
                    }
                }
                return out
            }
        }
    }

    /// The `/serverkeygen` response (RFC 7030 §4.4.2): `multipart/mixed` with the PKCS#8 key and the certs-only
    /// PKCS#7, each base64 with `Content-Transfer-Encoding: base64`. Returns the Content-Type value and the body.
    public static func serverKeyGenResponse(privateKeyPKCS8: [UInt8], certsOnly: [UInt8], boundary: String) -> (String, String) {
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
