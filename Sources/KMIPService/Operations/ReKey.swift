import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Re-key (§4.4).
extension KMIPKeyOperations {
    /// ReKey (KMIP 1.4 §4.4 / 2.1 §6.1.42): a replacement symmetric key; Offset moves its dates. Template
    /// attributes are not taken (the replacement has the old key's).
    func reKey(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        var offset: TimeInterval?
        if case .interval(let v)? = payload?.child(0x420058)?.value { offset = TimeInterval(v) }
        guard KMIPAttributeCodec.read(payload).isEmpty else {
            throw KMIPFieldError(
                .featureNotSupported, "ReKey takes no template attributes: the replacement has the old key's")
        }
        try await beforeChange(id, &state)
        let m = try await engine.rekey(ctx, id: id, offset: offset)
        if state.undo { state.created.append(m.id) }
        state.idPlaceholder = m.id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(m.id))]
    }
}
