// libFuzzer target for the OpenSSH certificate, public key and KRL parsers (Sources/SSHProtocol): any bytes go
// through SSHCertificate(blob:), SSHPublicKey(blob:) and SSHKRL(encoded:); whatever parses must re-encode to the
// same structure. Oracle: no crash, hang or out-of-bounds read (ASan). Built by Tests/Fuzz/run-fuzz.sh.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let cert = try? SSHCertificate(blob: bytes) {
        guard let again = try? SSHCertificate(blob: cert.blob), again == cert else {
            fatalError("certificate round trip changed it")
        }
    }
    if let key = try? SSHPublicKey(blob: bytes) {
        guard let again = try? SSHPublicKey(blob: key.blob), again == key else {
            fatalError("key round trip changed it")
        }
    }
    if let krl = try? SSHKRL(encoded: bytes) {
        guard let again = try? SSHKRL(encoded: krl.encoded), again == krl else {
            fatalError("KRL round trip changed it")
        }
    }
    if let text = String(validating: bytes, as: UTF8.self) {
        _ = try? SSHCertificate(line: text)
        _ = try? SSHPublicKey(authorizedKey: text)
    }
    return 0
}
