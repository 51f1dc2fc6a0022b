import COpenSSL
import Foundation

/// AES-GCM with any IV length and a truncated tag (swift-crypto needs 12-byte nonces and 16-byte tags).
public enum AESGCMAnyLength {
    public static func seal(key: [UInt8], iv: [UInt8], aad: [UInt8], plaintext: [UInt8], tagLength: Int) -> (
        ciphertext: [UInt8], tag: [UInt8]
    )? {
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: tagLength)
        let n = key.withUnsafeBufferPointer { k in
            iv.withUnsafeBufferPointer { v in
                aad.withUnsafeBufferPointer { a in
                    plaintext.withUnsafeBufferPointer { p in
                        out.withUnsafeMutableBufferPointer { o in
                            tag.withUnsafeMutableBufferPointer { t in
                                gh_aes_gcm(
                                    1, k.baseAddress, Int32(k.count), v.baseAddress, Int32(v.count), a.baseAddress,
                                    a.count, p.baseAddress, p.count, o.baseAddress, t.baseAddress, Int32(tagLength))
                            }
                        }
                    }
                }
            }
        }
        guard n >= 0 else { return nil }
        return (Array(out.prefix(n)), tag)
    }

    /// The plaintext, or nil when the tag does not authenticate (or the parameters are unusable).
    public static func open(key: [UInt8], iv: [UInt8], aad: [UInt8], ciphertext: [UInt8], tag: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var tagCopy = tag
        let n = key.withUnsafeBufferPointer { k in
            iv.withUnsafeBufferPointer { v in
                aad.withUnsafeBufferPointer { a in
                    ciphertext.withUnsafeBufferPointer { c in
                        out.withUnsafeMutableBufferPointer { o in
                            tagCopy.withUnsafeMutableBufferPointer { t in
                                gh_aes_gcm(
                                    0, k.baseAddress, Int32(k.count), v.baseAddress, Int32(v.count), a.baseAddress,
                                    a.count, c.baseAddress, c.count, o.baseAddress, t.baseAddress, Int32(t.count))
                            }
                        }
                    }
                }
            }
        }
        guard n >= 0 else { return nil }
        return Array(out.prefix(n))
    }
}

/// Blowfish-CBC, only because KMIP clients still derive keys with it (PyKMIP's ENCRYPT derivation test uses it): from
/// OpenSSL's legacy provider, loaded into a private library context so nothing else in the process gains the legacy
/// algorithms.
public enum BlowfishCBC {
    /// The private context, made once; nil when the system OpenSSL has no legacy module.
    nonisolated(unsafe) static let context: OpaquePointer? = gh_legacy_context()

    /// Whether Blowfish is available here.
    public static var available: Bool { context != nil }

    /// Encrypts (or decrypts) with a 4–56 byte key and an 8-byte IV; PKCS#5 padding when `pad`, else the input must
    /// be whole 8-byte blocks. Nil when the parameters are unusable or Blowfish is not available.
    public static func run(encrypt: Bool, key: [UInt8], iv: [UInt8], pad: Bool, _ input: [UInt8]) -> [UInt8]? {
        guard let context, (4...56).contains(key.count), iv.count == 8, pad || input.count % 8 == 0 else { return nil }
        var out = [UInt8](repeating: 0, count: input.count + 8)
        let n = key.withUnsafeBufferPointer { k in
            iv.withUnsafeBufferPointer { v in
                input.withUnsafeBufferPointer { i in
                    out.withUnsafeMutableBufferPointer { o in
                        gh_bf_cbc(
                            context, encrypt ? 1 : 0, k.baseAddress, Int32(k.count), v.baseAddress, pad ? 1 : 0,
                            i.baseAddress, i.count, o.baseAddress)
                    }
                }
            }
        }
        guard n >= 0 else { return nil }
        return Array(out.prefix(n))
    }
}

/// RSA-OAEP with the hash, MGF1 hash and label a KMIP client asks for (through the system OpenSSL; swift-crypto
/// offers only SHA-1 and SHA-256 without a label).
public enum RSAOAEP {
    /// Hash codes: 1 (SHA-1), 224, 256, 384, 512.
    public static func encrypt(publicKeyDER: [UInt8], hash: Int32, mgfHash: Int32, label: [UInt8], plaintext: [UInt8])
        -> [UInt8]?
    {
        run(1, publicKeyDER, hash, mgfHash, label, plaintext)
    }

    public static func decrypt(privateKeyDER: [UInt8], hash: Int32, mgfHash: Int32, label: [UInt8], ciphertext: [UInt8])
        -> [UInt8]?
    {
        run(0, privateKeyDER, hash, mgfHash, label, ciphertext)
    }

    static func run(_ encrypt: Int32, _ key: [UInt8], _ hash: Int32, _ mgf: Int32, _ label: [UInt8], _ input: [UInt8])
        -> [UInt8]?
    {
        var out = [UInt8](repeating: 0, count: 1024)
        let n = key.withUnsafeBufferPointer { k in
            label.withUnsafeBufferPointer { l in
                input.withUnsafeBufferPointer { i in
                    out.withUnsafeMutableBufferPointer { o in
                        gh_rsa_oaep(
                            encrypt, k.baseAddress, k.count, hash, mgf, l.baseAddress, l.count, i.baseAddress, i.count,
                            o.baseAddress, o.count)
                    }
                }
            }
        }
        guard n >= 0 else { return nil }
        return Array(out.prefix(n))
    }
}

/// RSA signatures through the system OpenSSL: SHA-1 and SHA-224 as well as SHA-2 (KMIP's CS-AC profile), and PSS
/// verification that accepts whatever salt length the signer chose (swift-crypto insists on the digest length).
public enum RSASignatures {
    /// Hash codes: 1 (SHA-1), 224, 256, 384, 512.
    public static func sign(privateKeyDER: [UInt8], hash: Int32, pss: Bool, message: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 1024)
        let n = privateKeyDER.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in
                out.withUnsafeMutableBufferPointer { o in
                    gh_rsa_signature(
                        1, k.baseAddress, k.count, hash, pss ? 1 : 0, m.baseAddress, m.count, o.baseAddress, o.count)
                }
            }
        }
        guard n > 0 else { return nil }
        return Array(out.prefix(n))
    }

    /// True for a valid signature; nil when the key or hash is unusable.
    public static func verify(publicKeyDER: [UInt8], hash: Int32, pss: Bool, message: [UInt8], signature: [UInt8])
        -> Bool?
    {
        var sig = signature
        let r = publicKeyDER.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in
                sig.withUnsafeMutableBufferPointer { s in
                    gh_rsa_signature(
                        0, k.baseAddress, k.count, hash, pss ? 1 : 0, m.baseAddress, m.count, s.baseAddress, s.count)
                }
            }
        }
        return r < 0 ? nil : r == 1
    }
}

/// A streamed AES operation (CBC, ECB, CTR, GCM) through the system OpenSSL: bytes in, bytes out as they are
/// ready, the rest (and the GCM tag) at the end. One caller at a time (the owner serializes its steps; the lock
/// only keeps a misuse from corrupting the context).
public final class CipherStream: @unchecked Sendable {
    let context: OpaquePointer
    let lock = NSLock()
    public let encrypting: Bool
    public let mode: UInt32
    var finished = false

    /// nil for an unusable key length, IV or mode.
    public init?(encrypt: Bool, mode: UInt32, key: [UInt8], iv: [UInt8], padding: Bool, aad: [UInt8]) {
        guard
            let ctx = key.withUnsafeBufferPointer({ k in
                iv.withUnsafeBufferPointer { v in
                    aad.withUnsafeBufferPointer { a in
                        gh_stream_new(
                            encrypt ? 1 : 0, Int32(mode), k.baseAddress, Int32(k.count), v.baseAddress, Int32(v.count),
                            padding ? 1 : 0,
                            a.baseAddress, a.count)
                    }
                }
            })
        else { return nil }
        context = ctx
        encrypting = encrypt
        self.mode = mode
    }

    deinit { gh_stream_free(context) }

    /// What the input makes ready; nil on failure (or after `finish`).
    public func update(_ input: [UInt8]) -> [UInt8]? {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return nil }
        var out = [UInt8](repeating: 0, count: input.count + 16)
        let n = input.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in gh_stream_update(context, i.baseAddress, i.count, o.baseAddress) }
        }
        guard n >= 0 else { return nil }
        return Array(out.prefix(n))
    }

    public enum FinishError: Error { case failed, authentication }

    /// The rest, and for GCM encryption the tag (`tagLength` bytes); GCM decryption checks `tag`.
    public func finish(tag: [UInt8]?, tagLength: Int) throws(FinishError) -> (rest: [UInt8], tag: [UInt8]?) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { throw .failed }
        finished = true
        let gcm = mode == 9
        var out = [UInt8](repeating: 0, count: 32)
        var tagBytes = tag ?? [UInt8](repeating: 0, count: tagLength)
        let n = out.withUnsafeMutableBufferPointer { o in
            tagBytes.withUnsafeMutableBufferPointer { t in
                gh_stream_final(context, encrypting ? 1 : 0, gcm ? 1 : 0, o.baseAddress, t.baseAddress, Int32(t.count))
            }
        }
        if n == -2 { throw .authentication }
        guard n >= 0 else { throw .failed }
        return (Array(out.prefix(n)), gcm && encrypting ? tagBytes : nil)
    }
}

/// The bare ChaCha20 stream cipher: swift-crypto offers only the ChaCha20-Poly1305 AEAD.
public enum ChaCha20Stream {
    /// XORs `data` with the keystream of (key, nonce, counter). A 12-byte nonce is RFC 8439's (32-bit block counter);
    /// an 8-byte nonce is the original ChaCha20's (64-bit counter), as the KMIP 2.1 test cases use it. Nil for a key
    /// other than 32 bytes, another nonce length, or a counter too large for its field.
    public static func apply(key: [UInt8], nonce: [UInt8], counter: UInt64, data: [UInt8]) -> [UInt8]? {
        guard key.count == 32, nonce.count == 12 || nonce.count == 8 else { return nil }
        let counterBytes = nonce.count == 12 ? 4 : 8
        guard counterBytes == 8 || counter <= UInt64(UInt32.max) else { return nil }
        let iv = (0..<counterBytes).map { UInt8(truncatingIfNeeded: counter >> (8 * UInt64($0))) } + nonce
        var out = [UInt8](repeating: 0, count: data.count)
        let r = key.withUnsafeBufferPointer { k in
            iv.withUnsafeBufferPointer { v in
                data.withUnsafeBufferPointer { d in
                    out.withUnsafeMutableBufferPointer { o in
                        gh_chacha20(k.baseAddress, v.baseAddress, d.baseAddress, d.count, o.baseAddress)
                    }
                }
            }
        }
        return r == 0 ? out : nil
    }
}
