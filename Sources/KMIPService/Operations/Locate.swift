import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Locate (§4.9).
extension KMIPKeyOperations {
    func locate(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        var filter = LocateFilter()
        if case .integer(let m)? = payload?.child(KMIPTag.maximumItems)?.value {
            guard m >= 0 else { throw KMIPFieldError("Maximum Items must not be negative") }
            filter.maximumItems = Int(m)
        }
        if case .integer(let o)? = payload?.child(KMIPTag.offsetItems)?.value {
            guard o >= 0 else { throw KMIPFieldError("Offset Items must not be negative") }
            filter.offsetItems = Int(o)
        }
        if case .integer(let mask)? = payload?.child(KMIPTag.storageStatusMask)?.value, mask & 0x4 != 0 {
            filter.includeDestroyed = true
        }
        for a in KMIPAttributeCodec.read(payload) {
            switch (a.name, a.value) {
            case ("Name", _): filter.name = a.nameText
            case ("Object Type", .enumeration(let t)):
                guard let type = Self.objectType(t) else {
                    return version >= ProtocolVersion(1, 3) ? [TTLVItem(tag: KMIPTag.locatedItems, .integer(0))] : []
                }
                filter.objectType = type
            case ("Cryptographic Algorithm", .enumeration(let v)): filter.algorithm = v
            case ("Cryptographic Length", .integer(let v)): filter.cryptographicLength = v
            case ("State", .enumeration(let v)):
                guard let s = KeyState(rawValue: Int(v)) else { throw KMIPFieldError("unknown State \(v)") }
                filter.state = s
            case ("Object Group", .textString(let g)): filter.objectGroup = g
            case ("Unique Identifier", .textString(let id)): filter.id = id
            case ("Cryptographic Usage Mask", .integer(let m)): filter.usageMask = UInt32(bitPattern: m)
            case ("Certificate Type", .enumeration(let t)): filter.certificateType = t
            case ("Digest", .structure(let parts)):
                // The server's digests are SHA-256 (Hashing Algorithm 6): another algorithm matches nothing.
                guard case .byteString(let value)? = parts.first(where: { $0.tag == 0x420035 })?.value else {
                    throw KMIPFieldError("Digest needs a Digest Value")
                }
                if case .enumeration(let h)? = parts.first(where: { $0.tag == KMIPTag.hashingAlgorithm })?.value, h != 6
                {
                    return version >= ProtocolVersion(1, 3) ? [TTLVItem(tag: KMIPTag.locatedItems, .integer(0))] : []
                }
                filter.digest = value
            case (let name, let v) where Self.dateAttributes[name] != nil:
                // One instance: that second; two instances: an inclusive range (KMIP 1.4 §4.9).
                guard let field = Self.dateAttributes[name], let d = Self.date(v) else {
                    throw KMIPFieldError("\(name) must be a date")
                }
                let seconds = Int64(d.timeIntervalSince1970.rounded(.down))
                if let range = filter.dateRanges[field] {
                    filter.dateRanges[field] = min(range.lowerBound, seconds)...max(range.lowerBound, seconds)
                } else {
                    filter.dateRanges[field] = seconds...seconds
                }
            case (let name, .textString(let text)) where Self.certificateNameComponent(name) != nil:
                guard let (issuer, type) = Self.certificateNameComponent(name) else { break }
                filter.certificateFields.append(
                    CertificateFieldCondition(
                        issuer: issuer, component: CertificateFacts.NameComponent(type: type, value: text)))
            case ("Link", .structure(let parts)):
                // The server's link (a key pair's halves, ReKey) or a client's Link attribute with this value.
                guard case .enumeration(let type)? = parts.first(where: { $0.tag == 0x42004B })?.value,
                    case .textString(let id)? = parts.first(where: { $0.tag == 0x42004C })?.value
                else { throw KMIPFieldError("Link needs a Link Type and a Linked Object Identifier") }
                filter.links.append(
                    LinkCondition(link: ObjectLink(type: type, id: id), clientValue: Self.store(a.value)))
            case (let name, let value) where Self.isClientAttribute(name):
                filter.customAttributes[name] = Self.store(value)
                // Objects without an Operation Policy Name are under the default policy (KMIP 1.x servers name it
                // "default"; PyKMIP locates by it).
                if name == "Operation Policy Name", value == .textString("default") {
                    filter.customAttributeDefaults.insert(name)
                }
            default:
                throw KMIPFieldError(.featureNotSupported, "Locate cannot filter on '\(a.name)'")
            }
        }
        let ids = try await engine.locateObjects(ctx, project: nil, filter)
        // One object located: later items of the batch may act on it through the ID Placeholder. (Several: none
        // is picked for them; acting on an arbitrary one would be a silent mistake.)
        if ids.count == 1 { state.idPlaceholder = ids[0] }
        var out: [TTLVItem] = []
        if version >= ProtocolVersion(1, 3) {
            out.append(TTLVItem(tag: KMIPTag.locatedItems, .integer(Int32(ids.count))))
        }
        return out + ids.map { TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString($0)) }
    }
}
