import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Get Attribute List (§4.13).
extension KMIPKeyOperations {
    func getAttributeList(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        let m = try await engine.objectAttributes(ctx, id: id)
        state.idPlaceholder = id
        var seen = Set<String>()
        let names = Self.attributes(m).map(\.name).filter {
            KMIPAttribute.isDefined($0, in: version) && seen.insert($0).inserted
        }
        let items: [TTLVItem] =
            version.major >= 2
            ? names.compactMap(KMIPAttribute.reference)
            : names.map { TTLVItem(tag: KMIPTag.attributeName, .textString($0)) }
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))] + items
    }
}
