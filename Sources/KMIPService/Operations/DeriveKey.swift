import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Derive Key (§4.6).
extension KMIPKeyOperations {
    func deriveKey(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        guard case .enumeration(let rawType)? = payload?.child(KMIPTag.objectType)?.value,
            let type = Self.objectType(rawType)
        else {
            throw KMIPFieldError(.missingData, "Object Type is required")
        }
        let ids: [String] = (payload?.children(KMIPTag.uniqueIdentifier) ?? []).compactMap {
            if case .textString(let t) = $0.value { return t } else { return nil }
        }
        guard let baseID = ids.first ?? state.idPlaceholder else {
            throw KMIPFieldError(.missingData, "the base object's Unique Identifier is required")
        }
        guard ids.count <= 1 else {
            throw KMIPFieldError(.featureNotSupported, "derivation from several objects is not supported")
        }
        guard case .enumeration(let method)? = payload?.child(KMIPTag.derivationMethod)?.value else {
            throw KMIPFieldError(.missingData, "Derivation Method is required")
        }
        let dp = payload?.child(KMIPTag.derivationParameters)
        var p = DerivationParameters(method: method)
        if case .enumeration(let h)? = dp?.child(KMIPTag.cryptographicParameters)?.child(KMIPTag.hashingAlgorithm)?
            .value
        {
            p.hashingAlgorithm = h
        }
        p.derivationData = Self.bytes(dp, KMIPTag.derivationData)
        p.salt = Self.bytes(dp, KMIPTag.salt)
        if case .integer(let n)? = dp?.child(KMIPTag.iterationCount)?.value { p.iterationCount = Int(n) }
        p.initializationVector = Self.bytes(dp, KMIPTag.initializationVector)
        if let cp = dp?.child(KMIPTag.cryptographicParameters) {
            if case .enumeration(let v)? = cp.child(KMIPTag.cryptographicAlgorithm)?.value { p.algorithm = v }
            if case .enumeration(let v)? = cp.child(KMIPTag.blockCipherMode)?.value { p.blockCipherMode = v }
            if case .enumeration(let v)? = cp.child(KMIPTag.paddingMethod)?.value { p.paddingMethod = v }
        }
        let spec = try Self.spec(type, KMIPAttributeCodec.read(payload))
        let m = try await engine.deriveKey(ctx, project: nil, baseID: baseID, p, spec)
        if state.undo { state.created.append(m.id) }
        state.idPlaceholder = m.id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(m.id))]
    }
}
