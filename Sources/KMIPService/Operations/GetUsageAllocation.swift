import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Get Usage Allocation (§4.18).
extension KMIPKeyOperations {
    /// Get Usage Allocation (KMIP 1.4 §4.17): takes Usage Limits Count units from the key's Usage Limits.
    func getUsageAllocation(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        try await beforeChange(id, &state)
        guard case .longInteger(let amount)? = payload?.child(0x420096)?.value else {
            throw KMIPFieldError(.missingData, "Usage Limits Count is required")
        }
        _ = try await engine.allocateUsage(ctx, id: id, amount: amount)
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }
}
