import TTLV

/// The OASIS KMIP test-case format: a file of `<RequestMessage>` / `<ResponseMessage>` pairs in the XML encoding,
/// with placeholders for what the server chooses. Pure: the caller sends the requests and hands back the answers.
public struct KMIPReplayScript: Sendable {
    public var steps: [(request: KMIPXMLNode, response: KMIPXMLNode)]

    public init(xml: String) throws {
        var nodes = try KMIPXMLParser.parse(xml)
        if nodes.count == 1, let root = nodes.first, root.name == "KMIP" { nodes = root.children }
        steps = []
        var pending: KMIPXMLNode?
        for node in nodes {
            switch node.name {
            case "RequestMessage":
                if pending != nil { throw KMIPXMLError("two RequestMessages without a ResponseMessage between them") }
                pending = node
            case "ResponseMessage":
                guard let request = pending else { throw KMIPXMLError("a ResponseMessage without its RequestMessage") }
                steps.append((request, node))
                pending = nil
            default:
                throw KMIPXMLError("unexpected <\(node.name)> at the top level")
            }
        }
        if pending != nil { throw KMIPXMLError("the last RequestMessage has no ResponseMessage") }
    }

    /// The profile a test case belongs to, from its file name: `CS-AC-M-OAEP-2-14` → `CS-AC`, `SUITEB_128-M-1-14` →
    /// `SUITEB`, `BL-M-1-21` → `BL`; optional cases (`-O-`) are grouped apart: `SKLC-O-1-21` → `SKLC (optional)`.
    public static func profile(of name: String) -> String {
        let optional = name.contains("-O-") && !name.contains("-M-")
        var base = name.components(separatedBy: optional ? "-O-" : "-M-").first ?? name
        if base.hasSuffix("-M") || base.hasSuffix("-O") { base = String(base.dropLast(2)) }
        if let underscore = base.firstIndex(of: "_") { base = String(base[..<underscore]) }
        if base.hasPrefix("MSGENC") { base = "MSGENC" }
        return optional ? base + " (optional)" : base
    }
}

/// Compares a server's response with the expected one of a test case, tolerantly for what a server legitimately
/// chooses: `$NOW…` time stamps, `$NAME` values (bound on first sight, e.g. `$UNIQUE_IDENTIFIER_0`, then required
/// to match and substituted into later requests), result messages, the order of repeated items, and what a Query
/// reports about the server. Everything else must match.
public struct KMIPResponseMatcher: Sendable {
    public var codec: KMIPXMLCodec
    /// Placeholders bound by the test case's own `$NAME` in a response (the others were captured, see `capture`).
    var explicit: Set<String> = []
    /// Captured values per placeholder stem (`DATA` → how many `DATA_n` so far).
    var counters: [String: Int] = [:]
    /// Response items the server chooses in this step (a random IV and what depends on it, random bytes, a
    /// randomized signature): any value of the expected length passes, and is captured.
    public var serverChosen: Set<String> = []
    /// Identifiers of objects the server generated in this test case (their key material is its own choice).
    var generated: Set<TTLVValue> = []

    public init(codec: KMIPXMLCodec) { self.codec = codec }

    /// Prepares for the response to `request`: which items the server legitimately chooses.
    public mutating func expect(after request: KMIPXMLNode) {
        serverChosen = []
        for item in request.children where item.name == "BatchItem" {
            let operation = item.children.first { $0.name == "Operation" }?.value
            let payload = item.children.first { $0.name == "RequestPayload" }
            let hasIV = payload?.children.contains { $0.name == "IVCounterNonce" } ?? false
            switch operation {
            case "Encrypt" where !hasIV:
                serverChosen.formUnion(["IVCounterNonce", "Data", "AuthenticatedEncryptionTag"])
            case "RNGRetrieve": serverChosen.insert("Data")
            case "Sign": serverChosen.insert("SignatureData")
            case "Get":
                // Generated here, or named by the ID placeholder after a Create in the same batch, or found by Locate
                // (made by an earlier test case): the key material is the server's own.
                let uid = payload?.children.first(where: { $0.name == "UniqueIdentifier" })?.value
                let generatedHere = uid.map { text in
                    text.hasPrefix("$")
                        && codec.variables[String(text.dropFirst())].map { generated.contains($0) } == true
                }
                if generatedHere ?? !batchRegisters(request) {
                    serverChosen.formUnion([
                        "KeyMaterial", "Modulus", "PrivateExponent", "P", "Q", "PrimeExponentP", "PrimeExponentQ",
                        "CRTCoefficient",
                    ])
                }
            default: break
            }
        }
    }

    /// Whether a batch registers an object (whose material the test case then knows).
    func batchRegisters(_ request: KMIPXMLNode) -> Bool {
        request.children.contains { item in
            item.name == "BatchItem" && item.children.contains { $0.name == "Operation" && $0.value == "Register" }
        }
    }

    /// `IVCounterNonce` → `IV_COUNTER_NONCE`, the test cases' placeholder stems.
    static func stem(_ name: String) -> String {
        var out = ""
        let chars = Array(name)
        for (i, c) in chars.enumerated() {
            if i > 0, c.isUppercase,
                chars[i - 1].isLowercase
                    || (i + 1 < chars.count && chars[i + 1].isLowercase && chars[i - 1].isUppercase)
            {
                out += "_"
            }
            out += c.uppercased()
        }
        return out
    }

    /// Values the test cases refer to later without having named them in the response (`$DATA_0`,
    /// `$IV_COUNTER_NONCE`): each is kept as `STEM` (the latest) and `STEM_n` (the n-th).
    public mutating func capture(_ response: TTLVItem) {
        let kept: Set<String> = [
            "Data", "IVCounterNonce", "AuthenticatedEncryptionTag", "MACData", "SignatureData", "KeyMaterial",
            "CorrelationValue",
        ]
        func walk(_ item: TTLVItem) {
            if case .structure(let children) = item.value {
                if item.tag == KMIPTag.keyValue, let name = KMIPNames.tagNames[item.tag] { keep(name, item.value) }
                children.forEach(walk)
                return
            }
            guard let name = KMIPNames.tagNames[item.tag], kept.contains(name) else { return }
            keep(name, item.value)
        }
        func keep(_ name: String, _ value: TTLVValue) {
            let stem = Self.stem(name)
            if !explicit.contains(stem) { codec.variables[stem] = value }
            let n = counters[stem, default: 0]
            counters[stem] = n + 1
            if !explicit.contains("\(stem)_\(n)") && codec.variables["\(stem)_\(n)"] == nil {
                codec.variables["\(stem)_\(n)"] = value
            }
        }
        walk(response)
        // Objects the server generated: Create, Create Key Pair, Derive Key, ReKey.
        for batchItem in response.children(KMIPTag.batchItem) {
            guard case .enumeration(let op)? = batchItem.child(KMIPTag.operation)?.value, [1, 2, 4, 5].contains(op),
                let payload = batchItem.child(KMIPTag.responsePayload)
            else { continue }
            for tag in [KMIPTag.uniqueIdentifier, 0x420066, 0x42006F] {
                if let id = payload.child(tag)?.value { generated.insert(id) }
            }
        }
    }

    /// Items a server words or adds as it likes: the result message, the 2.x server correlation value (optional,
    /// server-chosen) and Located Items (a server MAY report the count, KMIP 1.4 §4.9).
    static let ignored: Set<UInt32> = [KMIPTag.resultMessage, 0x420106, KMIPTag.locatedItems]

    /// Mismatches (empty: the response matches). Binds new placeholders into `codec.variables`.
    public mutating func match(_ expected: KMIPXMLNode, _ actual: TTLVItem) -> [String] {
        var problems: [String] = []
        compare(expected, actual, path: expected.name, attributeName: nil, operation: nil, into: &problems)
        return problems
    }

    mutating func compare(
        _ expected: KMIPXMLNode, _ actual: TTLVItem, path: String, attributeName: String?, operation: UInt32?,
        into problems: inout [String]
    ) {
        let tag: UInt32
        do { tag = try KMIPXMLCodec.tag(of: expected) } catch {
            problems.append("\(path): \(error)")
            return
        }
        guard tag == actual.tag else {
            problems.append(
                "\(path): expected <\(expected.name)>, got <\(KMIPNames.tagNames[actual.tag] ?? String(actual.tag, radix: 16))>"
            )
            return
        }
        if (expected.type ?? "Structure") == "Structure" {
            guard case .structure(let actualChildren) = actual.value else {
                problems.append("\(path): expected a structure")
                return
            }
            // What a server reports about itself (Query) is its own business; the test only needs an answer.
            if expected.name == "ResponsePayload", operation == KMIPOperation.query.rawValue { return }
            if ["ServerInformation", "VendorIdentification"].contains(expected.name) { return }
            // How a server generates keys is its own (the test cases show the reference server's RNG): in 1.x the
            // attribute's value, in 2.x the Random Number Generator item itself.
            if expected.name == "AttributeValue", attributeName == "Random Number Generator" { return }
            if expected.name == "RandomNumberGenerator" { return }
            let wanted = expected.children.filter {
                (try? KMIPXMLCodec.tag(of: $0)).map { !Self.ignored.contains($0) } ?? true
            }
            var remaining = actualChildren.filter { !Self.ignored.contains($0.tag) }
            // An Attribute Index of 0 is the default: present or absent, it says the same.
            if !wanted.contains(where: { $0.name == "AttributeIndex" }) {
                remaining.removeAll { $0.tag == KMIPTag.attributeIndex && $0.value == .integer(0) }
            }
            var op = operation
            var currentAttributeName: String?
            for child in wanted {
                if child.name == "Operation", let v = child.value { op = KMIPNames.enumValue("Operation", v) ?? op }
                if child.name == "AttributeName", let v = child.value { currentAttributeName = v }
                let childAttribute = child.name == "AttributeValue" ? currentAttributeName : nil
                // First the item in the same position, then any other with the same tag (repeated items may come in
                // another order).
                var matched = false
                var firstProblems: [String] = []
                for (index, candidate) in remaining.enumerated()
                where (try? KMIPXMLCodec.tag(of: child)) == candidate.tag {
                    var trial = self
                    var childProblems: [String] = []
                    trial.compare(
                        child, candidate, path: path + "/" + child.name, attributeName: childAttribute, operation: op,
                        into: &childProblems)
                    if childProblems.isEmpty {
                        self = trial
                        remaining.remove(at: index)
                        matched = true
                        break
                    }
                    if firstProblems.isEmpty { firstProblems = childProblems }
                }
                if !matched {
                    problems += firstProblems.isEmpty ? ["\(path)/\(child.name): missing"] : firstProblems
                }
            }
            for extra in remaining {
                problems.append(
                    "\(path): unexpected <\(KMIPNames.tagNames[extra.tag] ?? String(extra.tag, radix: 16))>")
            }
            return
        }
        guard let text = expected.value, let type = expected.type else {
            problems.append("\(path): no value in the test case")
            return
        }
        if text.hasPrefix("$NOW") {
            switch actual.value {
            case .dateTime, .dateTimeExtended: return
            default:
                problems.append("\(path): expected a date-time")
                return
            }
        }
        // The digest of a key the server generated cannot be known in advance (the test cases show the reference
        // server's): any value of the right length will do.
        if expected.name == "DigestValue", case .byteString(let b) = actual.value {
            if let wanted = KMIPXMLCodec.hex(text), !text.hasPrefix("$"), wanted.count != b.count {
                problems.append("\(path): a \(b.count)-byte digest, expected \(wanted.count) bytes")
            }
            return
        }
        if serverChosen.contains(expected.name), !text.hasPrefix("$") {
            let wanted = KMIPXMLCodec.hex(text)
            let length = wanted?.count
            if case .byteString(let b) = actual.value, length == nil || length == b.count || expected.name == "Data" {
                // Sent back later as a literal: send ours instead.
                if let wanted, !wanted.isEmpty, wanted != b { codec.substitutions[wanted] = b }
                return
            }
            problems.append(
                "\(path): expected a server-chosen \(expected.name) of \(length ?? 0) bytes, got \(Self.show(actual.value))"
            )
            return
        }
        if text.hasPrefix("$") {
            let name = String(text.dropFirst())
            if !explicit.contains(name) {
                // A value this test case names itself: bound now (replacing anything captured under that name).
                explicit.insert(name)
                codec.variables[name] = actual.value
                return
            }
            if let bound = codec.variables[name] {
                if bound != actual.value {
                    problems.append("\(path): expected \(text) = \(Self.show(bound)), got \(Self.show(actual.value))")
                }
            } else {
                codec.variables[name] = actual.value
            }
            return
        }
        do {
            let value = try codec.value(type: type, text: text, element: expected.name, attributeName: attributeName)
            if value != actual.value {
                problems.append("\(path): expected \(Self.show(value)), got \(Self.show(actual.value))")
            }
        } catch {
            problems.append("\(path): \(error)")
        }
    }

    static func show(_ v: TTLVValue) -> String {
        switch v {
        case .byteString(let b), .bigInteger(let b):
            let hex = b.prefix(24).map {
                String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16)
            }.joined()
            return hex + (b.count > 24 ? "…(\(b.count) bytes)" : "")
        case .textString(let s): return "\"\(s.prefix(80))\""
        case .enumeration(let e): return "enum 0x" + String(e, radix: 16)
        default: return "\(v)"
        }
    }
}
