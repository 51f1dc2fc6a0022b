import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Decrypt (§4.30).
extension KMIPKeyOperations {
    func decrypt(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        guard let data = Self.bytes(payload, KMIPTag.data) else {
            throw KMIPFieldError(.missingData, "Data is required")
        }
        let parameters = Self.parameters(try await cryptographicParameters(payload, id: id))
        let iv = Self.bytes(payload, KMIPTag.ivCounterNonce)
        if let streamed = try await streamStep(payload, id: id, encrypt: false, parameters, data: data, &state) {
            return streamed
        }
        // A block cipher mode with an IV (CBC, CTR, GCM, …) cannot decrypt without one: the request is incomplete
        // (Invalid Message, as the KMIP test cases expect), not merely a wrong field.
        if iv == nil, let mode = parameters.blockCipherMode, mode != 2, !(12...19).contains(mode) {
            throw KMIPFieldError(.invalidMessage, "decrypting in block cipher mode \(mode) needs the IV/Counter/Nonce")
        }
        let r = try await engine.decrypt(
            ctx, id: id, parameters, data: data, iv: iv,
            aad: Self.bytes(payload, KMIPTag.authenticatedEncryptionAdditionalData),
            tag: Self.bytes(payload, KMIPTag.authenticatedEncryptionTag))
        state.idPlaceholder = id
        return [
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), TTLVItem(tag: KMIPTag.data, .byteString(r.data)),
        ]
    }
}
