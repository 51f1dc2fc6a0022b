import COpenSSL

/// PKCS#12 archives (RFC 7292) for exporting a certificate with its key, written by the system OpenSSL.
public enum PKCS12Archive {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String { "the key, certificate or chain cannot be packed into PKCS#12" }
    }

    /// A DER PKCS#12 with the PKCS#8 `privateKey`, the `certificate` under the friendly name `alias`, and the
    /// `chain` (all DER), encrypted and MACed under `password`.
    public static func make(
        certificate: [UInt8], chain: [[UInt8]], privateKeyPKCS8: [UInt8], password: String, alias: String
    ) throws -> [UInt8] {
        var lengths = chain.map { Int($0.count) }
        let pointers = chain.map { bytes -> UnsafeMutablePointer<UInt8> in
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bytes.count, 1))
            p.initialize(from: bytes, count: bytes.count)
            return p
        }
        defer { for pointer in pointers { pointer.deallocate() } }
        var out: UnsafeMutablePointer<UInt8>?
        let n: Int = certificate.withUnsafeBufferPointer { cert in
            privateKeyPKCS8.withUnsafeBufferPointer { key in
                pointers.map { UnsafePointer($0) as UnsafePointer<UInt8>? }.withUnsafeBufferPointer { chainPointers in
                    lengths.withUnsafeMutableBufferPointer { lens in
                        gh_pkcs12_create(
                            cert.baseAddress, cert.count, chainPointers.baseAddress, lens.baseAddress,
                            Int32(chain.count),
                            key.baseAddress, key.count, password, alias, &out)
                    }
                }
            }
        }
        guard n > 0, let out else { throw Failure() }
        defer { gh_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: n))
    }
}
