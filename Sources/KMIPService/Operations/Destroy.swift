import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Destroy (§4.21).
extension KMIPKeyOperations {
    func destroy(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        try await beforeChange(id, &state)
        do {
            _ = try await engine.destroyObject(ctx, id: id)
        } catch let e as EngineError where e.code == .wrongState {
            // An Active object cannot be destroyed (KMIP 1.4 §4.21): the profiles' test cases expect Permission Denied.
            throw KMIPFieldError(.permissionDenied, e.message)
        }
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }
}
