import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Check (§4.10).
extension KMIPKeyOperations {
    /// Check (KMIP 1.0 §4.10 / 2.1 §6.1.8): may the object be used for this Cryptographic Usage Mask now, and has
    /// it this much of its Usage Limits left? (Leases are advisory here: nothing to check.)
    func check(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        let m = try await engine.objectAttributes(ctx, id: id)
        state.idPlaceholder = id
        if case .longInteger(let wanted)? = payload?.child(0x420096)?.value, let limits = m.usageLimits,
            limits.count < wanted
        {
            throw KMIPFieldError(.permissionDenied, "the object's Usage Limits have \(limits.count) left")
        }
        if case .integer(let mask)? = payload?.child(KMIPTag.cryptographicUsageMask)?.value {
            guard UInt32(bitPattern: mask) & ~m.usageMask == 0 else {
                throw KMIPFieldError(
                    version >= ProtocolVersion(2, 0) ? .incompatibleCryptographicUsageMask : .illegalOperation,
                    "the object's Cryptographic Usage Mask does not allow that use")
            }
            guard m.state == .active else {
                throw KMIPFieldError(
                    version >= ProtocolVersion(2, 0) ? .wrongKeyLifecycleState : .illegalOperation,
                    "the object is not active")
            }
        }
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }
}
