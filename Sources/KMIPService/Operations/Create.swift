import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Create (KMIP 1.4 §4.1): a new symmetric key, secret or split key.
extension KMIPKeyOperations {
    func create(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        guard case .enumeration(let rawType)? = payload?.child(KMIPTag.objectType)?.value else {
            throw KMIPFieldError(.missingData, "Object Type is required")
        }
        guard rawType == KMIPObjectType.symmetricKey.rawValue else {
            throw KMIPFieldError("Create makes Symmetric Keys (object type \(rawType) is not creatable)")
        }
        let spec = try Self.spec(.symmetricKey, KMIPAttributeCodec.read(payload))
        let m = try await engine.createKey(ctx, project: nil, spec)
        if state.undo { state.created.append(m.id) }
        state.idPlaceholder = m.id
        return [
            TTLVItem(tag: KMIPTag.objectType, .enumeration(rawType)),
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(m.id)),
        ]
    }
}
