// libFuzzer target for the EST input path (RFC 7030 / RFC 8951): an `application/pkcs10` body goes through the
// base64 / DER checks of ESTCodec.decodePKCS10; whatever it accepts is walked as a PKCS#10 structure, wrapped in
// a certs-only PKCS#7 and read back. Oracle: no crash, hang or out-of-bounds read (ASan), accepted input is one
// complete DER value, and the PKCS#7 round trip returns the same bytes. Built and run by Tests/Fuzz/run-fuzz.sh
// together with ESTCodec.swift and swift-asn1's sources. (The X.509 CSR parser itself belongs to
// swift-certificates and is not rebuilt here.)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let der = try? ESTCodec.decodePKCS10(bytes) else { return 0 }
    guard let node = try? DER.parse(der), node.encodedBytes.count == der.count else {
        fatalError("decodePKCS10 accepted bytes that are not one DER value")
    }
    // CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }
    if case .constructed(let children) = node.content {
        for child in children {
            _ = child.identifier
            _ = child.encodedBytes.count
        }
    }
    guard let p7 = try? ESTCodec.certsOnly([der, der]), let back = try? ESTCodec.certificates(inCertsOnly: p7) else {
        fatalError("certs-only PKCS#7 of a DER value cannot be built or read back")
    }
    if back != [der, der] { fatalError("certs-only PKCS#7 round trip changed the certificates") }
    let lines = ESTCodec.base64Lines(der)
    if ESTCodec.base64Decode(Array(lines.utf8)) != der { fatalError("base64 round trip changed the bytes") }
    return 0
}
