import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Create Key Pair (§4.2).
extension KMIPKeyOperations {
    func createKeyPair(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let common = Self.attributes(in: payload, [KMIPTag.commonTemplateAttribute, KMIPTag.commonAttributes])
        let priv = Self.attributes(in: payload, [KMIPTag.privateKeyTemplateAttribute, KMIPTag.privateKeyAttributes])
        let pub = Self.attributes(in: payload, [KMIPTag.publicKeyTemplateAttribute, KMIPTag.publicKeyAttributes])
        var privateSpec = try Self.spec(.privateKey, common + priv)
        var publicSpec = try Self.spec(.publicKey, common + pub)
        guard let algorithm = privateSpec.algorithm ?? publicSpec.algorithm else {
            throw KMIPFieldError(.missingData, "Cryptographic Algorithm is required")
        }
        // Ed25519 has one size; an EC curve may be named by Cryptographic Domain Parameters instead of a length.
        guard
            let length = privateSpec.cryptographicLength ?? publicSpec.cryptographicLength
                ?? (algorithm == 0x37 ? 255 : nil)
        else {
            throw KMIPFieldError(.missingData, "Cryptographic Length (or a Recommended Curve) is required")
        }
        privateSpec.objectType = .privateKey
        publicSpec.objectType = .publicKey
        let (p, q) = try await engine.createKeyPair(
            ctx, project: nil, algorithm: algorithm, length: length, privateSpec: privateSpec, publicSpec: publicSpec)
        if state.undo { state.created += [p.id, q.id] }
        state.idPlaceholder = p.id
        return [
            TTLVItem(tag: KMIPTag.privateKeyUniqueIdentifier, .textString(p.id)),
            TTLVItem(tag: KMIPTag.publicKeyUniqueIdentifier, .textString(q.id)),
        ]
    }
}
