import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Encrypt (§4.29), one-shot or streamed, and the cipher parameters Encrypt and Decrypt share.
extension KMIPKeyOperations {
    static func parameters(_ cp: TTLVItem?) -> CipherParameters {
        var p = CipherParameters()
        guard let cp else { return p }
        if case .enumeration(let v)? = cp.child(KMIPTag.blockCipherMode)?.value { p.blockCipherMode = v }
        if case .enumeration(let v)? = cp.child(KMIPTag.paddingMethod)?.value { p.paddingMethod = v }
        if case .integer(let v)? = cp.child(KMIPTag.tagLength)?.value { p.tagLength = Int(v) }
        if case .enumeration(let v)? = cp.child(KMIPTag.cryptographicAlgorithm)?.value { p.algorithm = v }
        if case .enumeration(let v)? = cp.child(KMIPTag.hashingAlgorithm)?.value { p.hashingAlgorithm = v }
        if case .enumeration(let v)? = cp.child(0x420102)?.value { p.maskGeneratorHashingAlgorithm = v }
        if case .byteString(let v)? = cp.child(0x420103)?.value { p.label = v }
        if case .integer(let v)? = cp.child(0x4200D1)?.value { p.initialCounterValue = Int(v) }
        return p
    }

    static func bytes(_ payload: TTLVItem?, _ tag: UInt32) -> [UInt8]? {
        if case .byteString(let b)? = payload?.child(tag)?.value { return b }
        return nil
    }

    /// A streamed Encrypt/Decrypt step (KMIP 1.3+: Init Indicator, Correlation Value, Final Indicator), or nil for a
    /// one-shot request.
    func streamStep(
        _ payload: TTLVItem?, id: String, encrypt: Bool, _ parameters: CipherParameters, data: [UInt8],
        _ state: inout BatchState
    ) async throws -> [TTLVItem]? {
        guard let (correlation, final) = try Self.streaming(payload) else { return nil }
        let (r, next) = try await engine.cipherStep(
            ctx, id: id, encrypt: encrypt, parameters, data: data, iv: Self.bytes(payload, KMIPTag.ivCounterNonce),
            aad: Self.bytes(payload, KMIPTag.authenticatedEncryptionAdditionalData),
            tag: Self.bytes(payload, KMIPTag.authenticatedEncryptionTag), correlation: correlation, final: final)
        state.idPlaceholder = id
        var out = [
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), TTLVItem(tag: KMIPTag.data, .byteString(r.data)),
        ]
        if let tag = r.tag { out.append(TTLVItem(tag: KMIPTag.authenticatedEncryptionTag, .byteString(tag))) }
        if let next { out.append(TTLVItem(tag: KMIPTag.correlationValue, .byteString(next))) }
        return out
    }

    func encrypt(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        guard let data = Self.bytes(payload, KMIPTag.data) else {
            throw KMIPFieldError(.missingData, "Data is required")
        }
        let parameters = Self.parameters(try await cryptographicParameters(payload, id: id))
        // A GCM tag length NIST SP 800-38D does not define, or an AEAD (ChaCha20-Poly1305) tag outside 12–16 bytes:
        // General Failure, as the KMIP CS-BC test cases expect.
        if parameters.blockCipherMode == 9, let t = parameters.tagLength, !(t == 4 || t == 8 || (12...16).contains(t)) {
            throw KMIPFieldError(.generalFailure, "GCM tags are 4, 8 or 12–16 bytes, not \(t)")
        }
        if parameters.blockCipherMode == 0x12, let t = parameters.tagLength, !(12...16).contains(t) {
            throw KMIPFieldError(.generalFailure, "Poly1305 tags are 12–16 bytes, not \(t)")
        }
        if let streamed = try await streamStep(payload, id: id, encrypt: true, parameters, data: data, &state) {
            return streamed
        }
        let r = try await engine.encrypt(
            ctx, id: id, parameters, data: data, iv: Self.bytes(payload, KMIPTag.ivCounterNonce),
            aad: Self.bytes(payload, KMIPTag.authenticatedEncryptionAdditionalData))
        state.idPlaceholder = id
        var out = [
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), TTLVItem(tag: KMIPTag.data, .byteString(r.data)),
        ]
        if let iv = r.iv { out.append(TTLVItem(tag: KMIPTag.ivCounterNonce, .byteString(iv))) }
        if let tag = r.tag { out.append(TTLVItem(tag: KMIPTag.authenticatedEncryptionTag, .byteString(tag))) }
        return out
    }
}
