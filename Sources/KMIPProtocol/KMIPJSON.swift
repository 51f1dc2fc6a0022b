import Foundation
import TTLV

/// KMIP's JSON encoding (KMIP Profiles §5.4.2): `{"tag": "Name", "type": "Integer", "value": …}`, structures with an
/// array `value` (and no type, or "Structure"). JSON objects become the same nodes as the XML encoding, so both share
/// the tag, enumeration and mask names and the conversion rules.
public enum KMIPJSON {
    public static let maxDepth = 64

    /// The node of one JSON item (from `JSONSerialization`).
    public static func node(_ json: Any, depth: Int = 0) throws -> KMIPXMLNode {
        guard depth < maxDepth else { throw KMIPXMLError("nesting deeper than \(maxDepth)") }
        guard let object = json as? [String: Any], let tag = object["tag"] as? String, !tag.isEmpty else {
            throw KMIPXMLError("a KMIP JSON item is an object with a \"tag\"")
        }
        var attributes: [String: String] = [:]
        let name: String
        if tag.hasPrefix("0x") {
            name = "TTLV"
            attributes["tag"] = tag
        } else {
            name = tag
        }
        let type = object["type"] as? String ?? "Structure"
        if type == "Structure" {
            let children = object["value"] as? [Any] ?? []
            return KMIPXMLNode(
                name: name, attributes: attributes, children: try children.map { try node($0, depth: depth + 1) })
        }
        attributes["type"] = type
        switch object["value"] {
        case let s as String: attributes["value"] = s
        case let b as Bool where type == "Boolean": attributes["value"] = b ? "true" : "false"
        case let n as NSNumber:
            // The number's own digits (a Double would round 64-bit values); fractions and exponents are not KMIP values.
            let digits = n.stringValue
            guard Int64(digits) != nil else { throw KMIPXMLError("\(tag): \(digits) is not an integer") }
            attributes["value"] = digits
        default: throw KMIPXMLError("\(tag) has no value")
        }
        return KMIPXMLNode(name: name, attributes: attributes)
    }

    /// Parses a JSON document holding one item.
    public static func parse(_ data: Data) throws -> KMIPXMLNode {
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data) } catch { throw KMIPXMLError("not JSON") }
        return try node(json)
    }

    /// The JSON value of a TTLV item (names where known; the XML encoding's spelling for values).
    public static func object(_ item: TTLVItem, attributeName: String? = nil) -> [String: Any] {
        let tag = KMIPNames.tagNames[item.tag] ?? String(format: "0x%06X", item.tag)
        if case .structure(let children) = item.value {
            var currentAttributeName: String?
            var values: [Any] = []
            for child in children {
                if case .textString(let s) = child.value, child.tag == KMIPTag.attributeName {
                    currentAttributeName = s
                }
                values.append(
                    object(child, attributeName: child.tag == KMIPTag.attributeValue ? currentAttributeName : nil))
            }
            return ["tag": tag, "value": values]
        }
        // Reuse the XML writer's value spelling (names, masks, hex, dates).
        let xml = KMIPXMLCodec.xml(item, attributeName: attributeName)
        guard let node = (try? KMIPXMLParser.parse(xml))?.first, let type = node.type, let text = node.value else {
            return ["tag": tag]
        }
        switch item.value {
        case .integer(let v) where Int32(text) != nil: return ["tag": tag, "type": type, "value": Int(v)]
        case .interval(let v): return ["tag": tag, "type": type, "value": Int(v)]
        case .longInteger(let v): return ["tag": tag, "type": type, "value": v]
        case .boolean(let v): return ["tag": tag, "type": type, "value": v]
        default: return ["tag": tag, "type": type, "value": text]
        }
    }

    public static func serialize(_ item: TTLVItem) -> Data {
        (try? JSONSerialization.data(withJSONObject: object(item), options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}
