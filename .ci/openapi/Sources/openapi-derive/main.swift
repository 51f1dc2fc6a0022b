// openapi-derive SOURCE.yaml DOCUMENT.swift GENERATOR-INPUT.json
//
// Derives two things from the admin API's one source, Sources/AdminAPI/openapi.yaml:
// 1. DOCUMENT.swift: the document as JSON in a Swift string, served at /api/v1/openapi.json and printed by
//    `gatehouse openapi`. (SwiftPM's `.embedInCode` resource rule would embed the YAML as a byte-array literal,
//    which took 160 s to compile for this file, and serving JSON would then need a YAML parser in the daemon.)
// 2. GENERATOR-INPUT.json: the input of swift-openapi-generator. It is the same document with two reductions that
//    change no wire format, only the amount of Swift generated:
//    - every error answer (status 400 and above) of an operation becomes its `default` answer: they all carry the
//      one Error schema, so one case instead of up to ten per operation halves the generated code;
//    - a nullable request field written `anyOf: [X, {type: 'null'}]` or with `null` in its enumeration becomes its
//      non-null form: the generator does not support the 'null' type there, and a Swift optional already reads an
//      explicit null as absent. (`type: [T, 'null']` stays: the generator reads it.)
import Foundation
import Yams

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("openapi-derive: \(message)\n".utf8))
    exit(1)
}

/// YAML values as JSON values: mapping keys become strings (a status code written `200:` is the key "200").
func normalized(_ value: Any) -> Any {
    switch value {
    case let map as [AnyHashable: Any]:
        var out: [String: Any] = [:]
        for (key, v) in map { out["\(key.base)"] = normalized(v) }
        return out
    case let list as [Any]: return list.map(normalized)
    default: return value
    }
}

func isNull(_ value: Any) -> Bool {
    if value is NSNull { return true }
    if let map = value as? [String: Any], map.count == 1, map["type"] as? String == "null" { return true }
    return false
}

/// The non-null form of every schema in `value`.
func nonNull(_ value: Any) -> Any {
    switch value {
    case var map as [String: Any]:
        if let cases = map["enum"] as? [Any] { map["enum"] = cases.filter { !($0 is NSNull) } }
        for key in ["anyOf", "oneOf"] {
            if let members = map[key] as? [Any], members.contains(where: isNull) {
                let kept = members.filter { !isNull($0) }
                map[key] = nil
                if kept.count == 1, let only = kept[0] as? [String: Any] {
                    map.merge(only) { mine, _ in mine }
                } else {
                    map[key] = kept
                }
            }
        }
        return map.mapValues(nonNull)
    case let list as [Any]: return list.map(nonNull)
    default: return value
    }
}

/// JSON text of `value`, each object's keys in the order the same object has in `source` (the YAML as composed, which
/// keeps the document's order, so that the generated types list their properties as the document does); keys the
/// YAML does not have come last, sorted.
func orderedJSON(_ value: Any, _ source: Node?) -> String {
    switch value {
    case let map as [String: Any]:
        var keys = source?.mapping?.keys.compactMap { $0.string }.filter { map[$0] != nil } ?? []
        keys += map.keys.filter { !keys.contains($0) }.sorted()
        let members = keys.compactMap { key in map[key].map { scalarJSON(key) + ":" + orderedJSON($0, source?[key]) } }
        return "{" + members.joined(separator: ",") + "}"
    case let list as [Any]:
        let nodes = source?.sequence.map(Array.init) ?? []
        let items = list.enumerated().map { index, item in
            orderedJSON(item, index < nodes.count ? nodes[index] : nil)
        }
        return "[" + items.joined(separator: ",") + "]"
    default:
        return scalarJSON(value)
    }
}

func scalarJSON(_ value: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) else {
        fail("cannot write \(value) as JSON")
    }
    return String(decoding: data, as: UTF8.self)
}

let arguments = CommandLine.arguments
guard arguments.count == 4 else { fail("usage: openapi-derive SOURCE.yaml DOCUMENT.swift GENERATOR-INPUT.json") }
guard let data = FileManager.default.contents(atPath: arguments[1]) else { fail("cannot read \(arguments[1])") }
let loaded: Any?
do { loaded = try Yams.load(yaml: String(decoding: data, as: UTF8.self)) } catch { fail("\(arguments[1]): \(error)") }
guard let document = loaded.map(normalized) as? [String: Any] else { fail("\(arguments[1]) is not a mapping") }
let composed: Node?
do {
    composed = try Yams.compose(yaml: String(decoding: data, as: UTF8.self))
} catch {
    fail("\(arguments[1]): \(error)")
}

// 1. The served document.
let json = String(
    decoding: try JSONSerialization.data(
        withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
    as: UTF8.self)
var hashes = "#"
while json.contains("\"" + hashes) { hashes += "#" }
let swift = """
    // swift-format-ignore-file
    // GENERATED by .ci/openapi/regenerate from Sources/AdminAPI/openapi.yaml: do not edit.

    /// The admin API's OpenAPI 3.1 document (Sources/AdminAPI/openapi.yaml as JSON), served at
    /// `/api/v1/openapi.json` and printed by `gatehouse openapi`.
    public enum AdminAPIDocument {
        public static let json = \(hashes)\"\"\"
    \(json)
    \"\"\"\(hashes)
    }

    """
do { try Data(swift.utf8).write(to: URL(fileURLWithPath: arguments[2])) } catch { fail("\(arguments[2]): \(error)") }

// 2. The generator's input.
var reduced = document
guard var paths = document["paths"] as? [String: Any], var components = document["components"] as? [String: Any]
else { fail("no paths or components") }
for (path, item) in paths {
    guard var operations = item as? [String: Any] else { continue }
    for (method, value) in operations {
        guard var operation = value as? [String: Any], var responses = operation["responses"] as? [String: Any]
        else { continue }
        for status in responses.keys where (Int(status) ?? 0) >= 400 { responses[status] = nil }
        responses["default"] = ["$ref": "#/components/responses/ErrorAnswer"]
        operation["responses"] = responses
        operations[method] = operation
    }
    paths[path] = operations
}
var responses = components["responses"] as? [String: Any] ?? [:]
responses["ErrorAnswer"] = [
    "description": "An error: a stable code and a message",
    "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]],
]
components["responses"] = responses
reduced["paths"] = paths
reduced["components"] = components
do {
    try Data(orderedJSON(nonNull(reduced), composed).utf8).write(to: URL(fileURLWithPath: arguments[3]))
} catch {
    fail("\(arguments[3]): \(error)")
}
