import TTLV

/// One KMIP attribute: its 1.x name (KMIP 1.4 §3), the tag it has in 2.x `Attributes` structures (KMIP 2.1 §4),
/// and its value.
public struct KMIPAttribute: Sendable, Hashable {
    public var name: String
    public var value: TTLVValue
    public init(name: String, value: TTLVValue) {
        self.name = name
        self.value = value
    }
    public var tag: UInt32? { KMIPAttribute.tagsByName[name] }

    /// Attribute names and their tags for the attributes this server understands.
    public static let tagsByName: [String: UInt32] = [
        "Unique Identifier": KMIPTag.uniqueIdentifier, "Name": KMIPTag.name, "Object Type": KMIPTag.objectType,
        "Cryptographic Algorithm": KMIPTag.cryptographicAlgorithm, "Cryptographic Length": KMIPTag.cryptographicLength,
        "Cryptographic Usage Mask": KMIPTag.cryptographicUsageMask, "State": KMIPTag.state,
        "Initial Date": KMIPTag.initialDate, "Activation Date": KMIPTag.activationDate,
        "Deactivation Date": KMIPTag.deactivationDate, "Destroy Date": KMIPTag.destroyDate,
        "Compromise Date": KMIPTag.compromiseDate, "Compromise Occurrence Date": KMIPTag.compromiseOccurrenceDate,
        "Last Change Date": KMIPTag.lastChangeDate, "Revocation Reason": KMIPTag.revocationReason,
        "Object Group": KMIPTag.objectGroup, "Operation Policy Name": KMIPTag.operationPolicyName,
        "Original Creation Date": KMIPTag.originalCreationDate,
        "Application Specific Information": 0x420004, "Contact Information": 0x420022, "Description": 0x4200FC,
        "Comment": 0x4200FD, "Certificate Type": 0x42001D, "Cryptographic Parameters": KMIPTag.cryptographicParameters,
        "Alternative Name": 0x4200BF, "Digest": 0x420034, "Random Number Generator": 0x4200DE,
        "Sensitive": 0x420120, "Always Sensitive": 0x420121, "Extractable": 0x420122, "Never Extractable": 0x420123,
        "Fresh": 0x4200A8, "Lease Time": 0x420049, "Usage Limits": 0x420095,
        "Process Start Date": 0x420067, "Protect Stop Date": 0x420068, "Link": 0x42004A,
        "Certificate Length": 0x4200AD, "Cryptographic Domain Parameters": 0x420029, "Certificate Subject CN": 0x420108,
        "Certificate Subject O": 0x420109,
        "Certificate Subject OU": 0x42010A, "Certificate Subject Email": 0x42010B, "Certificate Subject C": 0x42010C,
        "Certificate Subject ST": 0x42010D, "Certificate Subject L": 0x42010E, "Certificate Subject UID": 0x42010F,
        "Certificate Subject Serial Number": 0x420110, "Certificate Subject Title": 0x420111,
        "Certificate Subject DC": 0x420112,
        "Certificate Subject DN Qualifier": 0x420113, "Certificate Issuer CN": 0x420114,
        "Certificate Issuer O": 0x420115,
        "Certificate Issuer OU": 0x420116, "Certificate Issuer Email": 0x420117, "Certificate Issuer C": 0x420118,
        "Certificate Issuer ST": 0x420119, "Certificate Issuer L": 0x42011A, "Certificate Issuer UID": 0x42011B,
        "Certificate Issuer Serial Number": 0x42011C, "Certificate Issuer Title": 0x42011D,
        "Certificate Issuer DC": 0x42011E,
        "Certificate Issuer DN Qualifier": 0x42011F, "Key Format Type": KMIPTag.keyFormatType,
        "Short Unique Identifier": 0x420136, "Protection Level": 0x420145, "Protection Period": 0x420146,
        "Quantum Safe": 0x420147,
    ]
    public static let namesByTag: [UInt32: String] = Dictionary(uniqueKeysWithValues: tagsByName.map { ($1, $0) })

    /// The protocol version that first defines each attribute, from the specifications: KMIP 1.0 §3, the "changes"
    /// appendices of 1.1 (§3.9 Certificate Length, §3.13–15 X.509 Certificate Identifier/Subject/Issuer, §3.16 Digital
    /// Signature Algorithm, §3.34 Fresh), 1.2 (Alternative Name, Key Value Present, Key Value Location, Original
    /// Creation Date), 1.3 (Random Number Generator), 1.4 (PKCS#12 Friendly Name, Description, Comment, Sensitive,
    /// Always Sensitive, Extractable, Never Extractable, and the Certificate Subject/Issuer component tags
    /// 0x420108–0x42011F) and 2.0 §4 (Key Format Type, Short Unique Identifier, Protection Storage Masks, Quantum
    /// Safe, Protection Level/Period, the Rotate attributes, Vendor Attribute, …). A response in an older version
    /// leaves later attributes out: its client has no way to decode them.
    public static let firstVersion: [String: ProtocolVersion] = {
        var table: [String: ProtocolVersion] = [:]
        for name in [
            "Unique Identifier", "Name", "Object Type", "Cryptographic Algorithm", "Cryptographic Domain Parameters",
            "Cryptographic Length", "Cryptographic Parameters", "Certificate Type", "Certificate Identifier",
            "Certificate Subject", "Certificate Issuer", "Digest", "Operation Policy Name", "Cryptographic Usage Mask",
            "Lease Time", "Usage Limits", "State", "Initial Date", "Activation Date", "Process Start Date",
            "Protect Stop Date", "Deactivation Date", "Destroy Date", "Compromise Occurrence Date", "Compromise Date",
            "Revocation Reason", "Archive Date", "Object Group", "Link", "Application Specific Information",
            "Contact Information", "Last Change Date", "Custom Attribute",
        ] { table[name] = ProtocolVersion(1, 0) }
        for name in [
            "Certificate Length", "X.509 Certificate Identifier", "X.509 Certificate Subject",
            "X.509 Certificate Issuer", "Digital Signature Algorithm", "Fresh",
        ] { table[name] = ProtocolVersion(1, 1) }
        for name in ["Alternative Name", "Key Value Present", "Key Value Location", "Original Creation Date"] {
            table[name] = ProtocolVersion(1, 2)
        }
        table["Random Number Generator"] = ProtocolVersion(1, 3)
        for name in [
            "PKCS#12 Friendly Name", "Description", "Comment", "Sensitive", "Always Sensitive", "Extractable",
            "Never Extractable",
        ] { table[name] = ProtocolVersion(1, 4) }
        for (name, _) in tagsByName
        where name.hasPrefix("Certificate Subject ") || name.hasPrefix("Certificate Issuer ") {
            table[name] = ProtocolVersion(1, 4)
        }
        for name in [
            "Certificate Attributes", "Critical", "Key Format Type", "NIST Key Type", "Object Group Member",
            "Opaque Data Type", "Protection Level", "Protection Period", "Protection Storage Masks", "Quantum Safe",
            "Rotate Date", "Rotate Generation", "Rotate Interval", "Rotate Latest", "Rotate Name", "Rotate Offset",
            "Short Unique Identifier", "Vendor Attribute",
        ] { table[name] = ProtocolVersion(2, 0) }
        return table
    }()

    /// Attributes 2.0 removed (KMIP 2.0 §4: deprecated in 1.x, their tags reserved).
    public static let removedIn2: Set<String> = [
        "Certificate Identifier", "Certificate Subject", "Certificate Issuer", "Operation Policy Name",
        "Custom Attribute",
    ]

    /// The name a vendor attribute (KMIP 2.x: Vendor Identification, Attribute Name) has here and in 1.x: vendors
    /// `x` and `y` are 1.x's Custom Attributes `x-NAME` / `y-NAME` (KMIP 2.1 §4.57); any other vendor's attribute is
    /// `vendor:VENDOR:NAME`, which only 2.x can express.
    public static func vendorName(_ vendor: String, _ name: String) -> String {
        vendor == "x" || vendor == "y" ? "\(vendor)-\(name)" : "vendor:\(vendor):\(name)"
    }

    /// The vendor and name of a vendor attribute's name here, or nil for a standard attribute.
    public static func vendorParts(_ name: String) -> (vendor: String, name: String)? {
        if name.hasPrefix("x-") || name.hasPrefix("y-") {
            return (String(name.prefix(1)), String(name.dropFirst(2)))
        }
        guard name.hasPrefix("vendor:") else { return nil }
        let rest = name.dropFirst(7)
        guard let colon = rest.firstIndex(of: ":") else { return nil }
        return (String(rest[..<colon]), String(rest[rest.index(after: colon)...]))
    }

    /// A 2.x vendor attribute item (`Attribute`: Vendor Identification, Attribute Name, Attribute Value) read as one
    /// attribute here; nil if `item` is not one.
    public static func vendorAttribute(_ item: TTLVItem) -> KMIPAttribute? {
        guard item.tag == KMIPTag.attribute,
            case .textString(let vendor)? = item.child(KMIPTag.vendorIdentification)?.value,
            case .textString(let name)? = item.child(KMIPTag.attributeName)?.value,
            let value = item.child(KMIPTag.attributeValue)?.value
        else { return nil }
        return KMIPAttribute(name: vendorName(vendor, name), value: value)
    }

    /// A 2.x Attribute Reference: an attribute's tag, or a vendor attribute's Vendor Identification and Attribute
    /// Name. Returns the attribute's name here.
    public static func referencedName(_ item: TTLVItem) -> String? {
        switch item.value {
        case .enumeration(let tag): return namesByTag[tag]
        case .structure:
            guard case .textString(let vendor)? = item.child(KMIPTag.vendorIdentification)?.value,
                case .textString(let name)? = item.child(KMIPTag.attributeName)?.value
            else { return nil }
            return vendorName(vendor, name)
        default: return nil
        }
    }

    /// The 2.x Attribute Reference for an attribute's name here.
    public static func reference(_ name: String) -> TTLVItem? {
        if let (vendor, attribute) = vendorParts(name) {
            return TTLVItem(
                tag: KMIPTag.attributeReference,
                .structure([
                    TTLVItem(tag: KMIPTag.vendorIdentification, .textString(vendor)),
                    TTLVItem(tag: KMIPTag.attributeName, .textString(attribute)),
                ]))
        }
        return tagsByName[name].map { TTLVItem(tag: KMIPTag.attributeReference, .enumeration($0)) }
    }

    /// Whether `version` defines the attribute `name`. Custom attributes (1.x names starting `x-`/`y-`) exist from
    /// 1.0; other vendors' attributes from 2.0; an unknown standard name is taken as defined (the table covers what
    /// this server emits).
    public static func isDefined(_ name: String, in version: ProtocolVersion) -> Bool {
        if name.hasPrefix("vendor:") { return version.major >= 2 }
        if version.major >= 2, removedIn2.contains(name) { return false }
        guard let first = firstVersion[name] else { return true }
        return first <= version
    }

    /// The text of a Name attribute value.
    public var nameText: String? {
        if case .textString(let s)? = TTLVItem(tag: 0, value).child(KMIPTag.nameValue)?.value { return s }
        return nil
    }

    /// A Name attribute (Uninterpreted Text String).
    public static func name(_ text: String) -> KMIPAttribute {
        KMIPAttribute(
            name: "Name",
            value: .structure([
                TTLVItem(tag: KMIPTag.nameValue, .textString(text)), TTLVItem(tag: KMIPTag.nameType, .enumeration(1)),
            ]))
    }
}

/// Reading and writing attribute lists in both encodings: 1.x `Attribute` structures (name, index, value) and 2.x
/// items tagged with the attribute's own tag inside `Attributes`.
public enum KMIPAttributeCodec {
    /// Attributes of a request payload: its `Template-Attribute`'s and bare `Attribute`s (1.x), or its `Attributes`
    /// structure (2.x).
    public static func read(_ payload: TTLVItem?) -> [KMIPAttribute] {
        guard let payload else { return [] }
        var out: [KMIPAttribute] = []
        for holder in payload.children(KMIPTag.templateAttribute) {
            out += readAttributeItems(holder.children(KMIPTag.attribute))
        }
        out += readAttributeItems(payload.children(KMIPTag.attribute))
        for holder in payload.children(KMIPTag.attributes) {
            for item in holder.children {
                if let vendor = KMIPAttribute.vendorAttribute(item) {
                    out.append(vendor)
                } else if let name = KMIPAttribute.namesByTag[item.tag] {
                    out.append(KMIPAttribute(name: name, value: item.value))
                }
            }
        }
        return out
    }

    static func readAttributeItems(_ items: [TTLVItem]) -> [KMIPAttribute] {
        items.compactMap { a in
            guard case .textString(let name)? = a.child(KMIPTag.attributeName)?.value,
                let value = a.child(KMIPTag.attributeValue)
            else { return nil }
            return KMIPAttribute(name: name, value: value.value)
        }
    }

    /// Attribute items for a response in `version`: 1.x `Attribute` structures, 2.x tagged items.
    public static func encode(_ attributes: [KMIPAttribute], version: ProtocolVersion) -> [TTLVItem] {
        if version.major >= 2 {
            return attributes.compactMap { a in
                if let (vendor, name) = KMIPAttribute.vendorParts(a.name) {
                    return TTLVItem(
                        tag: KMIPTag.attribute,
                        .structure([
                            TTLVItem(tag: KMIPTag.vendorIdentification, .textString(vendor)),
                            TTLVItem(tag: KMIPTag.attributeName, .textString(name)),
                            TTLVItem(tag: KMIPTag.attributeValue, a.value),
                        ]))
                }
                return a.tag.map { TTLVItem(tag: $0, a.value) }
            }
        }
        var indexes: [String: Int32] = [:]
        return attributes.map { a in
            let index = indexes[a.name, default: 0]
            indexes[a.name] = index + 1
            // The index is written for every instance (0 for the first): KMIP 1.x allows omitting 0, but clients such
            // as PyKMIP read it.
            let children = [
                TTLVItem(tag: KMIPTag.attributeName, .textString(a.name)),
                TTLVItem(tag: KMIPTag.attributeIndex, .integer(index)),
            ]
            return TTLVItem(
                tag: KMIPTag.attribute, .structure(children + [TTLVItem(tag: KMIPTag.attributeValue, a.value)]))
        }
    }
}
