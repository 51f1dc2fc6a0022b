import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Add, Modify, Delete and Set Attribute (§4.14–4.16, 2.0 §6.1.48).
extension KMIPKeyOperations {
    /// Client attributes an object has at most one of (KMIP 2.1 §4: "multiple instances permitted: no").
    static let singleValued: Set<String> = [
        "Contact Information", "Description", "Comment", "Operation Policy Name", "Quantum Safe", "Protection Level",
        "Protection Period",
    ]

    enum AttributeChange: Sendable { case add, modify, delete }

    /// Add/Modify/Delete Attribute (KMIP 1.4 §4.13–4.15, 2.1 §6.1.3/6.1.31/6.1.13) on names, object groups and
    /// client attributes; everything else is read-only.
    func changeAttribute(_ payload: TTLVItem?, _ change: AttributeChange, _ state: inout BatchState) async throws
        -> [TTLVItem]
    {
        let id = try uid(payload, state)
        try await beforeChange(id, &state)
        guard let (name, index, value) = Self.requestedAttribute(payload) else {
            throw KMIPFieldError(.missingData, "the attribute to change is missing")
        }
        if name == "Sensitive" || name == "Extractable" {
            return try await changeFlag(id, name, value, change, &state)
        }
        if name == "Activation Date" {
            return try await changeActivationDate(id, value, change, &state)
        }
        let editable = name == "Name" || name == "Object Group" || Self.isClientAttribute(name)
        guard editable else {
            throw KMIPFieldError(
                version >= ProtocolVersion(2, 0) ? .attributeReadOnly : .permissionDenied,
                "attribute '\(name)' is read-only")
        }
        if change != .delete, value == nil { throw KMIPFieldError(.missingData, "Attribute Value is missing") }
        var stored: TTLVValue?
        if let value {
            switch name {
            case "Name":
                guard KMIPAttribute(name: name, value: value).nameText != nil else {
                    throw KMIPFieldError("a Name needs a Name Value")
                }
            case "Object Group":
                guard case .textString = value else { throw KMIPFieldError("an Object Group is a text string") }
            default: break
            }
            stored = value
        }
        let newValue = stored
        // A name the object already has is not added twice.
        if change == .add, name == "Name",
            let text = newValue.flatMap({ KMIPAttribute(name: name, value: $0).nameText }),
            try await engine.objectAttributes(ctx, id: id).names.contains(text)
        {
            throw KMIPFieldError(
                version >= ProtocolVersion(2, 0) ? .nonUniqueNameAttribute : .illegalOperation,
                "the object already has that name")
        }
        if change == .add, Self.singleValued.contains(name),
            !(try await engine.objectAttributes(ctx, id: id).customAttributes?[name] ?? []).isEmpty
        {
            throw KMIPFieldError(
                version >= ProtocolVersion(2, 0) ? .attributeSingleValued : .illegalOperation,
                "attribute '\(name)' has a single value: modify it instead")
        }
        let result = Mutex<(Int, TTLVValue?)>((0, nil))
        _ = try await engine.editObjectAttributes(ctx, id: id) { e in
            var values: [TTLVValue]
            switch name {
            case "Name": values = e.names.map { KMIPAttribute.name($0).value }
            case "Object Group": values = e.objectGroups.map { .textString($0) }
            default: values = (e.customAttributes[name] ?? []).compactMap(Self.load)
            }
            let at: Int
            switch change {
            case .add:
                guard let newValue else { return }
                guard values.isEmpty || !Self.singleValued.contains(name) else {
                    throw EngineError(.conflict, "attribute '\(name)' has a single value: modify it instead")  // a race
                }
                values.append(newValue)
                at = values.count - 1
            case .modify:
                at = index ?? 0
                guard values.indices.contains(at), let newValue else {
                    throw EngineError(.notFound, "attribute '\(name)' has no instance \(at)")
                }
                values[at] = newValue
            case .delete:
                at = index ?? 0
                guard values.indices.contains(at) else {
                    throw EngineError(.notFound, "attribute '\(name)' has no instance \(at)")
                }
                result.withLock { $0 = (at, values[at]) }
                values.remove(at: at)
            }
            if change != .delete { result.withLock { $0 = (at, newValue) } }
            switch name {
            case "Name": e.names = values.compactMap { KMIPAttribute(name: name, value: $0).nameText }
            case "Object Group":
                e.objectGroups = values.compactMap { if case .textString(let t) = $0 { return t } else { return nil } }
            default: e.customAttributes[name] = values.isEmpty ? nil : values.map(Self.store)
            }
        }
        state.idPlaceholder = id
        let (at, shown) = result.withLock { $0 }
        var out = [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
        if version.major < 2, let shown {
            var a = [TTLVItem(tag: KMIPTag.attributeName, .textString(name))]
            if change != .add || at > 0 { a.append(TTLVItem(tag: KMIPTag.attributeIndex, .integer(Int32(at)))) }
            a.append(TTLVItem(tag: KMIPTag.attributeValue, shown))
            out.append(TTLVItem(tag: KMIPTag.attribute, .structure(a)))
        }
        return out
    }

    /// Activation Date: set (Add/Modify/Set) or removed (Delete) while the object is Pre-Active; a date that has come
    /// activates it. Once the object is Active or later the change is refused: Wrong Key Lifecycle State in 2.x,
    /// Permission Denied (the 1.x answer for a read-only attribute) before.
    func changeActivationDate(
        _ id: String, _ value: TTLVValue?, _ change: AttributeChange, _ state: inout BatchState
    ) async throws -> [TTLVItem] {
        var date: Date?
        if change != .delete {
            guard case .dateTime(let seconds)? = value else {
                throw KMIPFieldError(.invalidField, "Activation Date is a Date-Time")
            }
            date = Date(timeIntervalSince1970: TimeInterval(seconds))
        }
        let wanted = date
        do {
            _ = try await engine.editObjectAttributes(ctx, id: id) { e in e.activationDate = wanted }
        } catch let e as EngineError where e.code == .wrongState {
            throw KMIPFieldError(version.major >= 2 ? .wrongKeyLifecycleState : .permissionDenied, e.message)
        }
        state.idPlaceholder = id
        var out = [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
        if version.major < 2, let value, change != .delete {
            out.append(
                TTLVItem(
                    tag: KMIPTag.attribute,
                    .structure([
                        TTLVItem(tag: KMIPTag.attributeName, .textString("Activation Date")),
                        TTLVItem(tag: KMIPTag.attributeValue, value),
                    ])))
        }
        return out
    }

    /// Sensitive / Extractable: single-valued booleans; Add and Modify set, Delete restores the default.
    func changeFlag(
        _ id: String, _ name: String, _ value: TTLVValue?, _ change: AttributeChange, _ state: inout BatchState
    ) async throws
        -> [TTLVItem]
    {
        let flag: Bool
        switch (change, value) {
        case (.delete, _): flag = name == "Extractable"
        case (_, .boolean(let b)?): flag = b
        case (_, nil): throw KMIPFieldError(.missingData, "Attribute Value is missing")
        default: throw KMIPFieldError("\(name) is a Boolean")
        }
        _ = try await engine.editObjectAttributes(ctx, id: id) { e in
            if name == "Sensitive" { e.sensitive = flag } else { e.extractable = flag }
        }
        state.idPlaceholder = id
        var out = [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
        if version.major < 2, change != .delete {
            out.append(
                TTLVItem(
                    tag: KMIPTag.attribute,
                    .structure([
                        TTLVItem(tag: KMIPTag.attributeName, .textString(name)),
                        TTLVItem(tag: KMIPTag.attributeValue, .boolean(flag)),
                    ])))
        }
        return out
    }

    /// Attributes under one of CreateKeyPair's holders (1.x Template-Attribute or 2.x Attributes).
    static func attributes(in payload: TTLVItem?, _ tags: [UInt32]) -> [KMIPAttribute] {
        var out: [KMIPAttribute] = []
        for tag in tags {
            guard let holder = payload?.child(tag) else { continue }
            if tag == KMIPTag.commonAttributes || tag == KMIPTag.privateKeyAttributes
                || tag == KMIPTag.publicKeyAttributes
            {
                for item in holder.children {
                    if let name = KMIPAttribute.namesByTag[item.tag] {
                        out.append(KMIPAttribute(name: name, value: item.value))
                    }
                }
            } else {
                out += KMIPAttributeCodec.read(
                    TTLVItem(tag: 0, .structure([TTLVItem(tag: KMIPTag.templateAttribute, holder.value)])))
            }
        }
        return out
    }
}
