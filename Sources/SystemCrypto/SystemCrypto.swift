import COpenSSL

/// AES-GCM with any IV length and a truncated tag (swift-crypto needs 12-byte nonces and 16-byte tags).
public enum AESGCMAnyLength {
    public static func seal(key: [UInt8], iv: [UInt8], aad: [UInt8], plaintext: [UInt8], tagLength: Int) -> (ciphertext: [UInt8], tag: [UInt8])? {
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: tagLength)
        let n = key.withUnsafeBufferPointer { k in
            iv.withUnsafeBufferPointer { v in
                aad.withUnsafeBufferPointer { a in
                    plaintext.withUnsafeBufferPointer { p in
                        out.withUnsafeMutableBufferPointer { o in
                            tag.withUnsafeMutableBufferPointer { t in
                                gh_aes_gcm(1, k.baseAddress, Int32(k.count), v.baseAddress, Int32(v.count), a.baseAddress, a.count, p.baseAddress, p.count, o.baseAddress, t.baseAddress, Int32(tagLength))
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
                                gh_aes_gcm(0, k.baseAddress, Int32(k.count), v.baseAddress, Int32(v.count), a.baseAddress, a.count, c.baseAddress, c.count, o.baseAddress, t.baseAddress, Int32(t.count))
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

/// RSA-OAEP with the hash, MGF1 hash and label a KMIP client asks for (through the system OpenSSL; swift-crypto
/// offers only SHA-1 and SHA-256 without a label).
public enum RSAOAEP {
    /// Hash codes: 1 (SHA-1), 224, 256, 384, 512.
    public static func encrypt(publicKeyDER: [UInt8], hash: Int32, mgfHash: Int32, label: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        run(1, publicKeyDER, hash, mgfHash, label, plaintext)
    }

    public static func decrypt(privateKeyDER: [UInt8], hash: Int32, mgfHash: Int32, label: [UInt8], ciphertext: [UInt8]) -> [UInt8]? {
        run(0, privateKeyDER, hash, mgfHash, label, ciphertext)
    }

    static func run(_ encrypt: Int32, _ key: [UInt8], _ hash: Int32, _ mgf: Int32, _ label: [UInt8], _ input: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 1024)
        let n = key.withUnsafeBufferPointer { k in
            label.withUnsafeBufferPointer { l in
                input.withUnsafeBufferPointer { i in
                    out.withUnsafeMutableBufferPointer { o in
                        gh_rsa_oaep(encrypt, k.baseAddress, k.count, hash, mgf, l.baseAddress, l.count, i.baseAddress, i.count, o.baseAddress, o.count)
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
                    gh_rsa_signature(1, k.baseAddress, k.count, hash, pss ? 1 : 0, m.baseAddress, m.count, o.baseAddress, o.count)
                }
            }
        }
        guard n > 0 else { return nil }
        return Array(out.prefix(n))
    }

    /// True for a valid signature; nil when the key or hash is unusable.
    public static func verify(publicKeyDER: [UInt8], hash: Int32, pss: Bool, message: [UInt8], signature: [UInt8]) -> Bool? {
        var sig = signature
        let r = publicKeyDER.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in
                sig.withUnsafeMutableBufferPointer { s in
                    gh_rsa_signature(0, k.baseAddress, k.count, hash, pss ? 1 : 0, m.baseAddress, m.count, s.baseAddress, s.count)
                }
            }
        }
        return r < 0 ? nil : r == 1
    }
}
