// libFuzzer target for the ACME request path (RFC 8555 §6.2, RFC 7515): any body goes through JWS.parse (JSON,
// base64url, header rules, JWK parsing); accepted keys must survive their RFC 7638 canonical JSON round trip, and
// base64url must round-trip. Oracle: no crash, hang or out-of-bounds read (ASan). Built by Tests/Fuzz/run-fuzz.sh
// from Sources/ACMEProtocol/JWS.swift (the parsing half; signature checks live in JWKCrypto.swift).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let text = String(bytes: bytes, encoding: .utf8), let decoded = Base64URL.decode(text) {
        if Base64URL.decode(Base64URL.encode(decoded)) != decoded {
            fatalError("base64url round trip changed the bytes")
        }
    }
    guard let jws = try? JWS.parse(bytes, requireNonce: false) else { return 0 }
    _ = try? jws.payloadObject()
    if let key = jws.jwk {
        guard let object = try? JSONSerialization.jsonObject(with: Data(key.canonicalJSON.utf8)) as? [String: Any],
            let again = try? JWK(json: object), again == key
        else { fatalError("a parsed JWK does not survive its canonical JSON") }
    }
    return 0
}
