import Crypto
import EngineAPI
import Foundation
import StorageAPI
import SwiftASN1
import SystemCrypto
import X509
import _CryptoExtras

/// Key derivation (KMIP Derive Key): SP 800-108 counter mode, HASH, HMAC, PBKDF2, ENCRYPT; and Ed25519 DER.
extension KeysService {
    /// NIST SP 800-108 KDF in counter mode with HMAC: K(i) = HMAC(key, [i]₃₂ ‖ fixed), i = 1…, truncated.
    static func kbkdfCounter<H: HashFunction>(_: H.Type, key: [UInt8], fixed: [UInt8], length: Int) -> [UInt8] {
        var out: [UInt8] = []
        var i: UInt32 = 1
        let k = SymmetricKey(data: key)
        while out.count < length {
            var block = withUnsafeBytes(of: i.bigEndian) { Array($0) }
            block += fixed
            out += Array(HMAC<H>.authenticationCode(for: block, using: k))
            i += 1
        }
        return Array(out.prefix(length))
    }

    static func derive(_ p: DerivationParameters, key: [UInt8], baseAlgorithm: UInt32?, length: Int) throws -> [UInt8] {
        let hash = p.hashingAlgorithm ?? 6
        switch p.method {
        case 4:
            // ENCRYPT: the derivation data encrypted under the base key (CBC), truncated to the length asked for.
            guard let data = p.derivationData, let iv = p.initializationVector else {
                throw EngineError(
                    .invalidArgument, "ENCRYPT derivation needs derivation data and an initialization vector")
            }
            guard (p.blockCipherMode ?? 1) == 1 else {
                throw EngineError(.featureNotSupported, "ENCRYPT derivation supports CBC only")
            }
            let pad = (p.paddingMethod ?? 3) == 3
            let out: [UInt8]
            switch p.algorithm ?? baseAlgorithm ?? 0 {
            case Algorithm.blowfish:
                guard BlowfishCBC.available else {
                    throw EngineError(
                        .featureNotSupported,
                        "Blowfish needs OpenSSL's legacy provider, which this system does not have")
                }
                guard let encrypted = BlowfishCBC.run(encrypt: true, key: key, iv: iv, pad: pad, data) else {
                    throw EngineError(
                        .invalidArgument,
                        "Blowfish needs a 4–56 byte key and an 8-byte IV (and, without padding, whole blocks)")
                }
                out = encrypted
            case Algorithm.aes:
                do {
                    out = Array(
                        try AES._CBC.encrypt(
                            data, using: SymmetricKey(data: key), iv: AES._CBC.IV(ivBytes: iv), noPadding: !pad))
                } catch {
                    throw EngineError(.invalidArgument, "AES-CBC needs a 16/24/32-byte key and a 16-byte IV")
                }
            default: throw EngineError(.featureNotSupported, "ENCRYPT derivation supports AES and Blowfish")
            }
            guard out.count >= length else {
                throw EngineError(.invalidArgument, "the derivation data is too short for the length asked")
            }
            return Array(out.prefix(length))
        case 1:
            guard let salt = p.salt, let iterations = p.iterationCount, iterations > 0, iterations <= 10_000_000 else {
                throw EngineError(.invalidArgument, "PBKDF2 needs a salt and an iteration count")
            }
            let function: KDF.Insecure.PBKDF2.HashFunction
            switch hash {
            case 4: function = .insecureSHA1
            case 6: function = .sha256
            case 7: function = .sha384
            case 8: function = .sha512
            default: throw EngineError(.featureNotSupported, "hashing algorithm \(hash) is not supported for PBKDF2")
            }
            let k = try KDF.Insecure.PBKDF2.deriveKey(
                from: key, salt: salt, using: function, outputByteCount: length, unsafeUncheckedRounds: iterations)
            return k.withUnsafeBytes { Array($0) }
        case 2:
            let input = p.derivationData ?? key
            switch hash {
            case 4: return Array(Insecure.SHA1.hash(data: input))
            case 6: return Array(SHA256.hash(data: input))
            case 7: return Array(SHA384.hash(data: input))
            case 8: return Array(SHA512.hash(data: input))
            default: throw EngineError(.featureNotSupported, "hashing algorithm \(hash) is not supported")
            }
        case 3:
            let ikm = SymmetricKey(data: key)
            let salt = p.salt ?? []
            let info = p.derivationData ?? []
            let k: SymmetricKey
            switch hash {
            case 4:
                k = HKDF<Insecure.SHA1>.deriveKey(
                    inputKeyMaterial: ikm, salt: salt, info: info, outputByteCount: length)
            case 6: k = HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: info, outputByteCount: length)
            case 7: k = HKDF<SHA384>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: info, outputByteCount: length)
            case 8: k = HKDF<SHA512>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: info, outputByteCount: length)
            default:
                throw EngineError(
                    .featureNotSupported, "hashing algorithm \(hash) is not supported for HMAC derivation")
            }
            return k.withUnsafeBytes { Array($0) }
        case 5:
            let fixed = p.derivationData ?? []
            switch hash {
            case 4: return kbkdfCounter(Insecure.SHA1.self, key: key, fixed: fixed, length: length)
            case 6: return kbkdfCounter(SHA256.self, key: key, fixed: fixed, length: length)
            case 7: return kbkdfCounter(SHA384.self, key: key, fixed: fixed, length: length)
            case 8: return kbkdfCounter(SHA512.self, key: key, fixed: fixed, length: length)
            default:
                throw EngineError(.featureNotSupported, "hashing algorithm \(hash) is not supported for SP 800-108")
            }
        default:
            throw EngineError(.featureNotSupported, "derivation method \(p.method) is not supported")
        }
    }

    public func deriveKey(
        _ ctx: CallContext, project: String?, baseID: String, _ p: DerivationParameters, _ spec: ObjectSpec
    )
        async throws -> ManagedObject
    {
        try Self.validate(spec)
        guard spec.objectType == .symmetricKey || spec.objectType == .secretData else {
            throw EngineError(.invalidArgument, "DeriveKey makes symmetric keys or secret data")
        }
        guard let bits = spec.cryptographicLength, bits > 0, bits % 8 == 0, bits <= 8192 else {
            throw EngineError(.invalidArgument, "Cryptographic Length (a multiple of 8, at most 8192) is required")
        }
        // The base object: usable for derivation (Pre-Active or Active, Derive Key in its usage mask).
        let (baseDecision, _) = try await authorizeObject(ctx, baseID, .read)
        let base = try await read { tx -> (ManagedObject, [UInt8]) in
            let (_, body) = try await self.loadObject(baseID, tx)
            guard body.meta.state == .active || body.meta.state == .preActive else {
                throw EngineError(.wrongState, "the base object is \(body.meta.state)")
            }
            guard UsageMask(rawValue: body.meta.usageMask).contains(.deriveKey) else {
                throw EngineError(.permissionDenied, "the base object's usage mask does not allow Derive Key")
            }
            guard let sealed = body.material else {
                throw EngineError(.wrongState, "the base object's material was destroyed")
            }
            return (body.meta, try await self.keyring.open(sealed, binding: "kms-object/\(baseID)/material", tx))
        }
        _ = baseDecision
        let material = try Self.derive(p, key: base.1, baseAlgorithm: base.0.algorithm, length: Int(bits) / 8)
        let target = try await keyProject(ctx, explicit: project ?? base.0.project)
        let decision = try await authorize(
            ctx, AccessRequest(.project(target), .kmsKeys, .create, ["name": spec.names.first ?? ""]))
        var meta = newObject(spec, project: target, now: clock())
        meta.fresh = spec.fresh ?? true
        meta.keyFormatType = spec.objectType == .secretData ? 2 : 1
        return try await store(ctx, decision, meta, material: material, event: "kms.derive")
    }
}

/// Ed25519 keys in PKCS#8 and SubjectPublicKeyInfo (RFC 8410): fixed prefixes around the 32 bytes.
enum Ed25519DER {
    static let pkcs8Prefix: [UInt8] = [
        0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ]
    static let spkiPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

    static func pkcs8(seed: [UInt8]) -> [UInt8] { pkcs8Prefix + seed }
    static func spki(_ key: [UInt8]) -> [UInt8] { spkiPrefix + key }

    static func seed(_ der: [UInt8]) throws -> [UInt8] {
        guard der.count == 48, Array(der.prefix(16)) == pkcs8Prefix else {
            throw EngineError(.cryptographicFailure, "the stored Ed25519 private key is not PKCS#8")
        }
        return Array(der.suffix(32))
    }

    static func publicKey(_ der: [UInt8]) throws -> [UInt8] {
        if der.count == 32 { return der }  // registered raw
        guard der.count == 44, Array(der.prefix(12)) == spkiPrefix else {
            throw EngineError(.cryptographicFailure, "the stored Ed25519 public key is not SubjectPublicKeyInfo")
        }
        return Array(der.suffix(32))
    }
}
