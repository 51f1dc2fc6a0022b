import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Get Attributes (§4.12).
extension KMIPKeyOperations {
    func getAttributes(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        let m = try await engine.objectAttributes(ctx, id: id)
        state.idPlaceholder = id
        var wanted = Set<String>()
        for n in payload?.children(KMIPTag.attributeName) ?? [] {
            if case .textString(let s) = n.value { wanted.insert(s) }
        }
        for r in payload?.children(KMIPTag.attributeReference) ?? [] {
            if let name = KMIPAttribute.referencedName(r) { wanted.insert(name) }
        }
        // Asked for everything: in 1.4 the protection flags only where they differ from their defaults, as the 1.4
        // test cases answer (GetAttributeList names them and asking by name returns them); 2.x always has a value
        // for them and lists them all.
        // Only what the request's protocol version defines (KMIPAttribute.firstVersion).
        let all = Self.attributes(m).filter {
            KMIPAttribute.isDefined($0.name, in: version)
                && (wanted.isEmpty ? version.major >= 2 || !Self.isDefaultFlag($0) : wanted.contains($0.name))
        }
        let encoded = KMIPAttributeCodec.encode(all, version: version)
        let idItem = TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))
        return version.major >= 2
            ? [idItem, TTLVItem(tag: KMIPTag.attributes, .structure(encoded))] : [idItem] + encoded
    }

    /// The attribute an Add/Modify/Delete Attribute request names: 1.x `Attribute` (name, index, value) or 2.x
    /// `New Attribute` / `Current Attribute` (a tagged item) / `Attribute Reference`.
    static func requestedAttribute(_ payload: TTLVItem?) -> (name: String, index: Int?, value: TTLVValue?)? {
        if let a = payload?.child(KMIPTag.attribute), let vendor = KMIPAttribute.vendorAttribute(a) {
            return (vendor.name, nil, vendor.value)
        }
        if let a = payload?.child(KMIPTag.attribute),
            case .textString(let name)? = a.child(KMIPTag.attributeName)?.value
        {
            var index: Int?
            if case .integer(let i)? = a.child(KMIPTag.attributeIndex)?.value { index = Int(i) }
            return (name, index, a.child(KMIPTag.attributeValue)?.value)
        }
        if case .textString(let name)? = payload?.child(KMIPTag.attributeName)?.value {
            var index: Int?
            if case .integer(let i)? = payload?.child(KMIPTag.attributeIndex)?.value { index = Int(i) }
            return (name, index, nil)
        }
        for holderTag in [KMIPTag.newAttribute, KMIPTag.currentAttribute] {
            guard let item = payload?.child(holderTag)?.children.first else { continue }
            if let vendor = KMIPAttribute.vendorAttribute(item) { return (vendor.name, nil, vendor.value) }
            if let name = KMIPAttribute.namesByTag[item.tag] { return (name, nil, item.value) }
        }
        if let reference = payload?.child(KMIPTag.attributeReference),
            let name = KMIPAttribute.referencedName(reference)
        {
            return (name, nil, nil)
        }
        return nil
    }
}
