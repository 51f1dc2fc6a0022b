import ESTProtocol
import Foundation
import SwiftASN1
import Testing

/// The EST codecs without sockets: RFC 8951 base64 spellings, certs-only PKCS#7, multipart.
@Suite struct ESTCodecTests {
    /// A small DER SEQUENCE standing in for a CSR.
    static let der: [UInt8] = {
        var s = DER.Serializer()
        try? s.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(42)
            try s.serialize(ASN1OctetString(contentBytes: Array(repeating: 7, count: 100)[...]))
        }
        return s.serializedBytes
    }()

    @Test func everyBase64SpellingDecodes() throws {
        let b64 = Data(Self.der).base64EncodedString()
        let lines = ESTCodec.base64Lines(Self.der)
        #expect(lines.hasSuffix("\r\n") && lines.split(separator: "\r\n").allSatisfy { $0.count <= 64 })
        for spelling in [
            b64, b64 + "\n", b64 + "\r\n", lines, lines.replacingOccurrences(of: "\r\n", with: "\n"),
            String(lines.dropLast(2)), " " + b64 + " \t",
        ] {
            #expect(try ESTCodec.decodePKCS10(Array(spelling.utf8)) == Self.der, "\(spelling.debugDescription)")
        }
        #expect(try ESTCodec.decodePKCS10(Self.der) == Self.der, "raw DER is tolerated")
    }

    @Test func malformedBodiesAreRefusedWithAReason() {
        func refusal(_ body: [UInt8]) -> ESTCodec.DecodeError? {
            do {
                _ = try ESTCodec.decodePKCS10(body)
                return nil
            } catch { return error }
        }
        #expect(refusal([]) == .empty)
        #expect(refusal(Array(repeating: UInt8(ascii: "A"), count: ESTCodec.maxRequestSize + 1)) == .tooLarge)
        #expect(refusal(Array("abc$".utf8)) == .notBase64)
        #expect(refusal(Array("QQ==QQ==".utf8)) == .notBase64, "data after padding")
        #expect(refusal(Array("A".utf8)) == .notBase64, "a lone sextet")
        #expect(refusal(Array(Data("not DER".utf8).base64EncodedString().utf8)) == .notDER)
        #expect(refusal(Array(Self.der.dropLast())) == .notDER, "truncated")
        #expect(refusal(Self.der + [0]) == .notDER, "trailing byte")
    }

    @Test func certsOnlyRoundTripsAndIsTheRFCShape() throws {
        let a: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x01]
        let b: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x02]
        let p7 = try ESTCodec.certsOnly([b, a])
        #expect(Set(try ESTCodec.certificates(inCertsOnly: p7)) == Set([a, b]))
        // ContentInfo { signedData OID, [0] { SignedData { version 1, {} , { data OID }, [0] certs, {} } } }
        let signedDataOID: [UInt8] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]
        #expect(Array(p7[2..<13]) == signedDataOID)
        #expect(p7.suffix(2) == [0x31, 0x00], "empty signerInfos")
    }

    @Test func serverKeyGenIsMultipartWithBase64Parts() {
        let (type, body) = ESTCodec.serverKeyGenResponse(
            privateKeyPKCS8: [1, 2, 3], certsOnly: [4, 5, 6], boundary: "b1")
        #expect(type == "multipart/mixed; boundary=b1")
        let parts = body.components(separatedBy: "--b1")
        #expect(parts.count == 4 && parts.last == "--\r\n")
        #expect(
            parts[1].contains("Content-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\nAQID\r\n"))
        #expect(
            parts[2].contains(
                "Content-Type: application/pkcs7-mime; smime-type=certs-only\r\nContent-Transfer-Encoding: base64\r\n\r\nBAUG\r\n"
            ))
    }
}
