import Crypto
import EngineAPI
import Foundation
import StorageAPI
import SwiftASN1
import SystemCrypto
import X509
import _CryptoExtras

/// Asymmetric keys: key pair generation, signing and verification (KMS and KMIP).
extension KeysService {
    static let pkcs1Format: UInt32 = 3
    static let pkcs8Format: UInt32 = 4
    static let x509Format: UInt32 = 5

    /// A new key pair's material: RSA (PKCS#1 both), NIST EC P-256/384/521 (PKCS#8 private, SubjectPublicKeyInfo
    /// public), Ed25519 (the same, RFC 8410).
    static func generateKeyPair(algorithm: UInt32, length: Int32) throws -> (
        privateDER: [UInt8], publicDER: [UInt8], privateFormat: UInt32, publicFormat: UInt32, length: Int32
    ) {
        switch algorithm {
        case Algorithm.rsa:
            let size: _RSA.Signing.KeySize
            switch length {
            case 2048: size = .bits2048
            case 3072: size = .bits3072
            case 4096: size = .bits4096
            default: throw EngineError(.invalidArgument, "RSA keys are 2048, 3072 or 4096 bits")
            }
            do {
                let key = try _RSA.Signing.PrivateKey(keySize: size)
                return (
                    Array(key.derRepresentation), Array(key.publicKey.pkcs1DERRepresentation), pkcs1Format, pkcs1Format,
                    length
                )
            } catch {
                throw EngineError(.cryptographicFailure, "RSA key generation failed", diagnostic: "\(error)")
            }
        case Algorithm.ecdsa, Algorithm.ec:
            switch length {
            case 256:
                let k = P256.Signing.PrivateKey()
                return (Array(k.derRepresentation), Array(k.publicKey.derRepresentation), pkcs8Format, x509Format, 256)
            case 384:
                let k = P384.Signing.PrivateKey()
                return (Array(k.derRepresentation), Array(k.publicKey.derRepresentation), pkcs8Format, x509Format, 384)
            case 521:
                let k = P521.Signing.PrivateKey()
                return (Array(k.derRepresentation), Array(k.publicKey.derRepresentation), pkcs8Format, x509Format, 521)
            default: throw EngineError(.invalidArgument, "EC keys are on P-256, P-384 or P-521 (length 256, 384, 521)")
            }
        case Algorithm.ed25519:
            let k = Curve25519.Signing.PrivateKey()
            return (
                Ed25519DER.pkcs8(seed: Array(k.rawRepresentation)),
                Ed25519DER.spki(Array(k.publicKey.rawRepresentation)), pkcs8Format,
                x509Format, 255
            )
        default:
            throw EngineError(
                .featureNotSupported, "key pairs are RSA, EC (P-256/384/521) or Ed25519, not algorithm \(algorithm)")
        }
    }

    public func createKeyPair(
        _ ctx: CallContext, project: String?, algorithm: UInt32, length: Int32, privateSpec: ObjectSpec,
        publicSpec: ObjectSpec
    ) async throws -> (ManagedObject, ManagedObject) {
        try Self.validate(privateSpec)
        try Self.validate(publicSpec)
        let generated = try Self.generateKeyPair(algorithm: algorithm, length: length)
        let p = try await keyProject(ctx, explicit: project)
        let decision = try await authorize(
            ctx, AccessRequest(.project(p), .kmsKeys, .create, ["name": privateSpec.names.first ?? ""]))
        let now = clock()
        var priv = newObject(privateSpec, project: p, now: now)
        priv.objectType = .privateKey
        priv.algorithm = algorithm
        priv.cryptographicLength = generated.length
        priv.keyFormatType = generated.privateFormat
        if privateSpec.usageMask == nil { priv.usageMask = (UsageMask.sign).rawValue }
        var pub = newObject(publicSpec, project: p, now: now)
        pub.objectType = .publicKey
        pub.algorithm = algorithm
        pub.cryptographicLength = generated.length
        pub.keyFormatType = generated.publicFormat
        if publicSpec.usageMask == nil { pub.usageMask = (UsageMask.verify).rawValue }
        let (privateDER, publicDER) = (generated.privateDER, generated.publicDER)
        priv.serverGenerated = true
        pub.serverGenerated = true
        priv.fresh = privateSpec.fresh ?? true
        pub.fresh = publicSpec.fresh ?? true
        priv.digest = Array(SHA256.hash(data: privateDER))
        pub.digest = Array(SHA256.hash(data: publicDER))
        // KMIP Create Key Pair: each key links to the other.
        priv.links = [ObjectLink(type: ObjectLink.publicKey, id: pub.id)]
        pub.links = [ObjectLink(type: ObjectLink.privateKey, id: priv.id)]
        let (privMeta, pubMeta) = (priv, pub)
        try await transact { tx in
            _ = try await self.requireProject(p, tx)
            for (meta, material) in [(privMeta, privateDER), (pubMeta, publicDER)] {
                let sealed = try await self.keyring.seal(material, binding: "kms-object/\(meta.id)/material", tx)
                try await tx.insert(
                    Record(
                        kind: Self.objectKind, id: meta.id, scope: p,
                        body: try Self.encode(ManagedObjectBody(meta: meta, material: sealed)), createdAt: now))
            }
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "kms.create-key-pair", project: p,
                    [
                        "privateKeyId": privMeta.id, "publicKeyId": pubMeta.id, "algorithm": "\(algorithm)",
                        "length": "\(length)",
                    ]), tx)
        }
        return (privMeta, pubMeta)
    }

    /// Opens an asymmetric key for signing or verifying, with the same state and usage checks as symmetric keys.
    func usableAsymmetricKey(
        _ ctx: CallContext, _ id: String, action: PermissionAction, type: ManagedObjectType, usage: UsageMask,
        facts: ManagedObject? = nil,
        consume: Int? = nil
    ) async throws -> (ManagedObject, [UInt8]) {
        let (decision, known) = try await authorizeObject(ctx, id, action, facts: facts)
        let limited = consume != nil && known.usageLimits != nil
        return try await transact(relaxed: !limited, reloads: true) { tx in
            var (record, body) = try await self.loadObject(id, tx)
            let meta = body.meta
            guard meta.objectType == type else { throw EngineError(.invalidArgument, "the object is not a \(type)") }
            guard meta.state == .active else { throw EngineError(.wrongState, "the key is \(meta.state), not Active") }
            guard UsageMask(rawValue: meta.usageMask).contains(usage) else {
                throw EngineError(.permissionDenied, "the key's Cryptographic Usage Mask does not allow this operation")
            }
            try Self.checkUseWindow(meta, usage, now: self.clock())
            guard let sealed = body.material else { throw EngineError(.wrongState, "the key material was destroyed") }
            if try Self.consumeUsage(&body.meta, bytes: consume) {
                record.body = try Self.encode(body)
                record.updatedAt = self.clock()
                _ = try await tx.update(record)
            }
            let raw = try await self.keyring.open(sealed, binding: "kms-object/\(id)/material", tx)
            try await self.audit.append(
                self.allowed(ctx, decision, "kms.\(action)", project: meta.project, ["objectId": id]), tx)
            return (meta, raw)
        }
    }

    /// ECDSA (DER signatures, X9.62) with the request's hash (default: the curve's, SHA-256/384/512) and Ed25519.
    static func curveSign(_ meta: ManagedObject, _ der: [UInt8], _ p: SignatureParameters, _ data: [UInt8]) throws
        -> [UInt8]
    {
        do {
            switch (meta.algorithm, meta.cryptographicLength) {
            case (Algorithm.ed25519?, _):
                return Array(
                    try Curve25519.Signing.PrivateKey(rawRepresentation: try Ed25519DER.seed(der)).signature(for: data))
            case (Algorithm.ecdsa?, 256), (Algorithm.ec?, 256):
                let k = try P256.Signing.PrivateKey(derRepresentation: der)
                return Array(try k.signature(for: try ecDigest(p, data, default: 6)).derRepresentation)
            case (Algorithm.ecdsa?, 384), (Algorithm.ec?, 384):
                let k = try P384.Signing.PrivateKey(derRepresentation: der)
                return Array(try k.signature(for: try ecDigest(p, data, default: 7)).derRepresentation)
            case (Algorithm.ecdsa?, 521), (Algorithm.ec?, 521):
                let k = try P521.Signing.PrivateKey(derRepresentation: der)
                return Array(try k.signature(for: try ecDigest(p, data, default: 8)).derRepresentation)
            default:
                throw EngineError(.featureNotSupported, "keys of algorithm \(meta.algorithm ?? 0) do not sign")
            }
        } catch let e as EngineError {
            throw e
        } catch {
            throw EngineError(.cryptographicFailure, "signing failed", diagnostic: "\(error)")
        }
    }

    static func curveVerify(
        _ meta: ManagedObject, _ der: [UInt8], _ p: SignatureParameters, _ data: [UInt8], _ signature: [UInt8]
    ) throws
        -> Bool
    {
        do {
            switch (meta.algorithm, meta.cryptographicLength) {
            case (Algorithm.ed25519?, _):
                return try Curve25519.Signing.PublicKey(rawRepresentation: try Ed25519DER.publicKey(der))
                    .isValidSignature(signature, for: data)
            case (Algorithm.ecdsa?, 256), (Algorithm.ec?, 256):
                guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
                return try P256.Signing.PublicKey(derRepresentation: der).isValidSignature(
                    sig, for: try ecDigest(p, data, default: 6))
            case (Algorithm.ecdsa?, 384), (Algorithm.ec?, 384):
                guard let sig = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
                return try P384.Signing.PublicKey(derRepresentation: der).isValidSignature(
                    sig, for: try ecDigest(p, data, default: 7))
            case (Algorithm.ecdsa?, 521), (Algorithm.ec?, 521):
                guard let sig = try? P521.Signing.ECDSASignature(derRepresentation: signature) else { return false }
                return try P521.Signing.PublicKey(derRepresentation: der).isValidSignature(
                    sig, for: try ecDigest(p, data, default: 8))
            default:
                throw EngineError(.featureNotSupported, "keys of algorithm \(meta.algorithm ?? 0) do not verify")
            }
        } catch let e as EngineError {
            throw e
        } catch {
            throw EngineError(.cryptographicFailure, "the stored public key is unusable", diagnostic: "\(error)")
        }
    }

    /// The digest ECDSA signs: KMIP Hashing Algorithm SHA-1/224/256/384/512 (default `default`).
    static func ecDigest(_ p: SignatureParameters, _ data: [UInt8], default fallback: UInt32) throws -> any Digest {
        switch p.hashingAlgorithm ?? fallback {
        case 4: return Insecure.SHA1.hash(data: data)
        case 6: return SHA256.hash(data: data)
        case 7: return SHA384.hash(data: data)
        case 8: return SHA512.hash(data: data)
        default:
            throw EngineError(
                .featureNotSupported, "hashing algorithm \(p.hashingAlgorithm ?? 0) is not supported for ECDSA")
        }
    }

    /// The OpenSSL hash code for a KMIP Hashing Algorithm (default SHA-256) and whether the padding is PSS.
    static func rsaSignatureScheme(_ p: SignatureParameters) throws -> (hash: Int32, pss: Bool) {
        let hash: Int32
        switch p.hashingAlgorithm ?? 6 {
        case 4: hash = 1
        case 5: hash = 224
        case 6: hash = 256
        case 7: hash = 384
        case 8: hash = 512
        default:
            throw EngineError(.featureNotSupported, "hashing algorithm \(p.hashingAlgorithm ?? 0) is not supported")
        }
        switch p.paddingMethod ?? 10 {
        case 10: return (hash, true)
        case 8: return (hash, false)
        default:
            throw EngineError(
                .featureNotSupported, "padding method \(p.paddingMethod ?? 0) is not supported for RSA signatures")
        }
    }

    public func sign(_ ctx: CallContext, id: String, _ p: SignatureParameters, data: [UInt8]) async throws -> [UInt8] {
        guard data.count <= 1 << 20 else { throw EngineError(.invalidArgument, "data is limited to 1 MiB") }
        let (meta, der) = try await usableAsymmetricKey(
            ctx, id, action: .sign, type: .privateKey, usage: .sign, consume: data.count)
        if meta.algorithm != Algorithm.rsa { return try Self.curveSign(meta, der, p, data) }
        let scheme = try Self.rsaSignatureScheme(p)
        guard let signature = RSASignatures.sign(privateKeyDER: der, hash: scheme.hash, pss: scheme.pss, message: data)
        else {
            throw EngineError(.cryptographicFailure, "signing failed")
        }
        return signature
    }

    public func verify(_ ctx: CallContext, id: String, _ p: SignatureParameters, data: [UInt8], signature: [UInt8])
        async throws -> Bool
    {
        guard data.count <= 1 << 20, signature.count <= 4096 else {
            throw EngineError(.invalidArgument, "data is limited to 1 MiB")
        }
        let (meta, der) = try await usableAsymmetricKey(ctx, id, action: .verify, type: .publicKey, usage: .verify)
        if meta.algorithm != Algorithm.rsa { return try Self.curveVerify(meta, der, p, data, signature) }
        let scheme = try Self.rsaSignatureScheme(p)
        guard
            let valid = RSASignatures.verify(
                publicKeyDER: der, hash: scheme.hash, pss: scheme.pss, message: data, signature: signature)
        else {
            throw EngineError(.cryptographicFailure, "the stored public key is unusable")
        }
        return valid
    }
}
