import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Revoke (§4.20).
extension KMIPKeyOperations {
    func revoke(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        try await beforeChange(id, &state)
        guard let reason = payload?.child(KMIPTag.revocationReason),
            case .enumeration(let code)? = reason.child(KMIPTag.revocationReasonCode)?.value
        else { throw KMIPFieldError(.missingData, "Revocation Reason is required") }
        var message: String?
        if case .textString(let m)? = reason.child(KMIPTag.revocationMessage)?.value { message = m }
        let occurrence = payload?.child(KMIPTag.compromiseOccurrenceDate).flatMap { Self.date($0.value) }
        _ = try await engine.revokeObject(ctx, id: id, reason: code, message: message, compromiseOccurrence: occurrence)
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }
}
