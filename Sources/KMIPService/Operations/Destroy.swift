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
            // An Active object cannot be destroyed: the 1.4 profiles' test cases expect Permission Denied, 2.x has
            // Wrong Key Lifecycle State (KMIP 2.1 §6.1.15).
            throw KMIPFieldError(version.major >= 2 ? .wrongKeyLifecycleState : .permissionDenied, e.message)
        }
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }
}
