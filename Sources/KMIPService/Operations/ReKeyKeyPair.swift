import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Re-key Key Pair (§4.5).
extension KMIPKeyOperations {
    /// ReKey Key Pair (KMIP 1.4 §4.29 / 2.1 §6.1.43): a replacement pair for a private key and the public key it
    /// links to; Offset moves the dates. Template attributes are not taken (the replacements have the old keys').
    func reKeyKeyPair(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id: String
        if case .textString(let t)? = payload?.child(KMIPTag.privateKeyUniqueIdentifier)?.value {
            id = t
        } else if let placeholder = state.idPlaceholder {
            id = placeholder
        } else {
            throw KMIPFieldError(.missingData, "Private Key Unique Identifier is missing and no ID Placeholder is set")
        }
        var offset: TimeInterval?
        if case .interval(let v)? = payload?.child(0x420058)?.value { offset = TimeInterval(v) }
        let templates = Self.attributes(
            in: payload,
            [
                KMIPTag.commonTemplateAttribute, KMIPTag.commonAttributes, KMIPTag.privateKeyTemplateAttribute,
                KMIPTag.privateKeyAttributes,
                KMIPTag.publicKeyTemplateAttribute, KMIPTag.publicKeyAttributes,
            ])
        guard templates.isEmpty else {
            throw KMIPFieldError(
                .featureNotSupported, "ReKey Key Pair takes no template attributes: the replacements have the old keys'"
            )
        }
        if state.undo {
            try await beforeChange(id, &state)
            let old = try await engine.objectAttributes(ctx, id: id)
            if let pub = old.links?.first(where: { $0.type == ObjectLink.publicKey }) {
                try await beforeChange(pub.id, &state)
            }
        }
        let (p, q) = try await engine.rekeyKeyPair(ctx, privateKeyID: id, offset: offset)
        if state.undo { state.created += [p.id, q.id] }
        state.idPlaceholder = p.id
        return [
            TTLVItem(tag: KMIPTag.privateKeyUniqueIdentifier, .textString(p.id)),
            TTLVItem(tag: KMIPTag.publicKeyUniqueIdentifier, .textString(q.id)),
        ]
    }
}
