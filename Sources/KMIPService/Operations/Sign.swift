import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Sign (§4.41), and the signature parameters Sign and Signature Verify share.
extension KMIPKeyOperations {
    /// The request's Cryptographic Parameters, or else the object's own Cryptographic Parameters attribute (the
    /// defaults a client registered with the key).
    func cryptographicParameters(_ payload: TTLVItem?, id: String) async throws -> TTLVItem? {
        if let cp = payload?.child(KMIPTag.cryptographicParameters) { return cp }
        let m = try await engine.objectAttributes(ctx, id: id)
        guard let stored = m.customAttributes?["Cryptographic Parameters"]?.first, let value = Self.load(stored),
            case .structure = value
        else { return nil }
        return TTLVItem(tag: KMIPTag.cryptographicParameters, value)
    }

    static func signatureParameters(_ cp: TTLVItem?) -> SignatureParameters {
        var p = SignatureParameters()
        guard let cp else { return p }
        if case .enumeration(let v)? = cp.child(KMIPTag.paddingMethod)?.value { p.paddingMethod = v }
        if case .enumeration(let v)? = cp.child(KMIPTag.hashingAlgorithm)?.value { p.hashingAlgorithm = v }
        // Digital Signature Algorithm names the hash (and for RSA the padding) at once.
        if case .enumeration(let v)? = cp.child(0x4200AE)?.value {
            let rsa: [UInt32: UInt32] = [3: 4, 4: 5, 5: 6, 6: 7, 7: 8]
            let ecdsa: [UInt32: UInt32] = [12: 4, 13: 5, 14: 6, 15: 7, 16: 8]
            if let h = rsa[v] {
                p.hashingAlgorithm = p.hashingAlgorithm ?? h
                p.paddingMethod = p.paddingMethod ?? 8
            } else if v == 8 {
                p.paddingMethod = p.paddingMethod ?? 10
            } else if let h = ecdsa[v] {
                p.hashingAlgorithm = p.hashingAlgorithm ?? h
            }
        }
        return p
    }

    func sign(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        guard let data = Self.bytes(payload, KMIPTag.data) else {
            throw KMIPFieldError(.missingData, "Data is required")
        }
        let signature = try await engine.sign(
            ctx, id: id, Self.signatureParameters(try await cryptographicParameters(payload, id: id)), data: data)
        state.idPlaceholder = id
        return [
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)),
            TTLVItem(tag: KMIPTag.signatureData, .byteString(signature)),
        ]
    }
}
