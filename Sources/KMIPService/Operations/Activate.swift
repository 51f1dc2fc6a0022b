import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Activate (§4.19).
extension KMIPKeyOperations {
    func activate(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        try await beforeChange(id, &state)
        _ = try await engine.activateObject(ctx, id: id)
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }
}
