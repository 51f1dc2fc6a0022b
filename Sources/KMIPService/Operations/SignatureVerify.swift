import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Signature Verify (§4.42).
extension KMIPKeyOperations {
    func signatureVerify(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        guard let data = Self.bytes(payload, KMIPTag.data), let signature = Self.bytes(payload, KMIPTag.signatureData)
        else {
            throw KMIPFieldError(.missingData, "Data and Signature Data are required")
        }
        let valid = try await engine.verify(
            ctx, id: id, Self.signatureParameters(try await cryptographicParameters(payload, id: id)), data: data,
            signature: signature)
        state.idPlaceholder = id
        return [
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)),
            TTLVItem(tag: KMIPTag.validityIndicator, .enumeration(valid ? 1 : 2)),
        ]
    }
}
