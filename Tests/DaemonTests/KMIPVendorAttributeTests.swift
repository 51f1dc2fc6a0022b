import Crypto
import Foundation
import KMIPProtocol
import TTLV
import TestSupport
import Testing

/// KMIP 2.x vendor attributes and the 2.0 protection attributes end to end, over the daemon's `/kmip` endpoint:
/// Register keeps them; Get Attributes (all, or by Attribute Reference), Get Attribute List, Modify, Add and Delete
/// Attribute, and Locate see them; a 1.4 request sees `x-` attributes as 1.x Custom Attributes and nothing 1.4 does
/// not define.
@Suite struct KMIPVendorAttributeTests {
    static func vendor(_ v: String, _ name: String, _ value: TTLVValue? = nil) -> TTLVItem {
        var parts = [
            TTLVItem(tag: KMIPTag.vendorIdentification, .textString(v)),
            TTLVItem(tag: KMIPTag.attributeName, .textString(name)),
        ]
        if let value { parts.append(TTLVItem(tag: KMIPTag.attributeValue, value)) }
        return TTLVItem(tag: KMIPTag.attribute, .structure(parts))
    }

    /// The vendor attributes of a 2.x Attributes structure, as "vendor/name=value".
    static func vendorValues(_ payload: TTLVItem?) -> Set<String> {
        Set(
            (payload?.child(KMIPTag.attributes)?.children(KMIPTag.attribute) ?? []).compactMap { a in
                guard case .textString(let v)? = a.child(KMIPTag.vendorIdentification)?.value,
                    case .textString(let n)? = a.child(KMIPTag.attributeName)?.value,
                    case .textString(let value)? = a.child(KMIPTag.attributeValue)?.value
                else { return nil }
                return "\(v)/\(n)=\(value)"
            })
    }

    @Test func vendorAndProtectionAttributesEndToEnd() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        var n = 0
        func send(_ op: KMIPOperation, _ payload: [TTLVItem], version: (Int32, Int32) = (2, 1)) throws -> TTLVItem {
            n += 1
            return try kmipOverHTTPS(daemon, dir: dir.path, n: n, version: version, op, payload)
        }
        func ok(_ op: KMIPOperation, _ payload: [TTLVItem], version: (Int32, Int32) = (2, 1)) throws -> TTLVItem? {
            let item = try send(op, payload, version: version)
            #expect(item.child(KMIPTag.resultStatus)?.value == .enumeration(0), "\(op): \(item)")
            return item.child(KMIPTag.responsePayload)
        }
        let registered = try ok(
            .register,
            aesKeyAttributes(
                bits: 256,
                [
                    Self.vendor("x", "ID", .textString("one")),
                    Self.vendor("acme", "tier", .textString("gold")),
                    TTLVItem(tag: 0x420147, .boolean(true)),  // Quantum Safe
                    TTLVItem(tag: 0x420145, .enumeration(1)),  // Protection Level: High
                    TTLVItem(tag: 0x420146, .interval(3600)),  // Protection Period
                ]) + [
                    TTLVItem(
                        tag: KMIPTag.symmetricKey,
                        .structure([
                            TTLVItem(
                                tag: KMIPTag.keyBlock,
                                .structure([
                                    TTLVItem(tag: KMIPTag.keyFormatType, .enumeration(1)),
                                    TTLVItem(
                                        tag: KMIPTag.keyValue,
                                        .structure([
                                            TTLVItem(
                                                tag: KMIPTag.keyMaterial, .byteString(Array(repeating: 7, count: 32)))
                                        ])),
                                    TTLVItem(tag: KMIPTag.cryptographicAlgorithm, .enumeration(3)),
                                    TTLVItem(tag: KMIPTag.cryptographicLength, .integer(128)),
                                ]))
                        ]))
                ])
        guard case .textString(let id)? = registered?.child(KMIPTag.uniqueIdentifier)?.value else {
            Issue.record("no identifier: \(String(describing: registered))")
            return
        }
        let uid = TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))

        let all = try ok(.getAttributes, [uid])
        #expect(Self.vendorValues(all) == ["x/ID=one", "acme/tier=gold"])
        let attributes = all?.child(KMIPTag.attributes)
        #expect(attributes?.child(0x420147)?.value == .boolean(true))
        #expect(attributes?.child(0x420145)?.value == .enumeration(1))
        #expect(attributes?.child(0x420146)?.value == .interval(3600))
        #expect(
            attributes?.child(0x420136)?.value == .byteString(Array(SHA256.hash(data: Array(id.utf8)))),
            "Short Unique Identifier")
        #expect(attributes?.child(KMIPTag.keyFormatType)?.value == .enumeration(1))

        let reference = TTLVItem(
            tag: KMIPTag.attributeReference,
            .structure([
                TTLVItem(tag: KMIPTag.vendorIdentification, .textString("acme")),
                TTLVItem(tag: KMIPTag.attributeName, .textString("tier")),
            ]))
        let one = try ok(.getAttributes, [uid, reference])
        #expect(Self.vendorValues(one) == ["acme/tier=gold"])
        #expect(one?.child(KMIPTag.attributes)?.children.count == 1, "only what the reference names")

        let list = try ok(.getAttributeList, [uid])
        let vendorRefs = (list?.children(KMIPTag.attributeReference) ?? []).compactMap { r -> String? in
            guard case .textString(let v)? = r.child(KMIPTag.vendorIdentification)?.value,
                case .textString(let name)? = r.child(KMIPTag.attributeName)?.value
            else { return nil }
            return "\(v)/\(name)"
        }
        #expect(Set(vendorRefs) == ["x/ID", "acme/tier"])

        _ = try ok(
            .modifyAttribute,
            [
                uid, TTLVItem(tag: KMIPTag.currentAttribute, .structure([Self.vendor("x", "ID", .textString("one"))])),
                TTLVItem(tag: KMIPTag.newAttribute, .structure([Self.vendor("x", "ID", .textString("two"))])),
            ])
        _ = try ok(
            .addAttribute,
            [uid, TTLVItem(tag: KMIPTag.newAttribute, .structure([Self.vendor("x", "Extra", .textString("e"))]))])
        #expect(Self.vendorValues(try ok(.getAttributes, [uid])) == ["x/ID=two", "x/Extra=e", "acme/tier=gold"])
        _ = try ok(
            .deleteAttribute,
            [
                uid,
                TTLVItem(
                    tag: KMIPTag.attributeReference,
                    .structure([
                        TTLVItem(tag: KMIPTag.vendorIdentification, .textString("x")),
                        TTLVItem(tag: KMIPTag.attributeName, .textString("Extra")),
                    ])),
            ])
        #expect(Self.vendorValues(try ok(.getAttributes, [uid])) == ["x/ID=two", "acme/tier=gold"])

        func located(_ value: String) throws -> [String] {
            let found = try ok(
                .locate,
                [
                    TTLVItem(
                        tag: KMIPTag.attributes, .structure([Self.vendor("acme", "tier", .textString(value))]))
                ])
            return (found?.children(KMIPTag.uniqueIdentifier) ?? []).compactMap {
                if case .textString(let s) = $0.value { return s } else { return nil }
            }
        }
        #expect(try located("gold") == [id])
        #expect(try located("silver") == [])

        // KMIP 1.4: the x- vendor attribute is the Custom Attribute x-ID; 2.x-only attributes are left out.
        let old = try ok(.getAttributes, [uid], version: (1, 4))
        var names: [String: TTLVValue] = [:]
        for a in old?.children(KMIPTag.attribute) ?? [] {
            if case .textString(let name)? = a.child(KMIPTag.attributeName)?.value,
                let value = a.child(KMIPTag.attributeValue)?.value
            {
                names[name] = value
            }
        }
        #expect(names["x-ID"] == .textString("two"))
        for later in ["Quantum Safe", "Protection Level", "Short Unique Identifier", "Key Format Type"] {
            #expect(names[later] == nil, "\(later) is not a 1.4 attribute")
        }
        #expect(!names.keys.contains { $0.contains("acme") }, "another vendor's attribute has no 1.x form")

        // Quantum Safe is enforced (KMIP 2.1 QS-M-2): an AES-128 key is not, an AES-256 key is.
        func create(bits: Int32) throws -> TTLVItem {
            try send(
                .create,
                aesKeyAttributes(
                    bits: bits,
                    [
                        TTLVItem(tag: 0x420145, .enumeration(1)), TTLVItem(tag: 0x420146, .interval(409_968_000)),
                        TTLVItem(tag: 0x420147, .boolean(true)),
                    ]))
        }
        let weak = try create(bits: 128)
        #expect(weak.child(KMIPTag.resultStatus)?.value == .enumeration(1))
        #expect(weak.child(KMIPTag.resultReason)?.value == .enumeration(ResultReason.generalFailure.rawValue))
        #expect(try create(bits: 256).child(KMIPTag.resultStatus)?.value == .enumeration(0))
        #expect(daemon.stop() == 0)
    }
}
