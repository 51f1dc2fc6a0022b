import EngineAPI
import Foundation
import SwiftASN1
import X509

/// Checks requests against certificate templates and translates template names to X.509 values.
/// Every refusal names the rule that failed.
enum PKIPolicy {
    static let subjectTypes: [(name: String, oid: ASN1ObjectIdentifier)] = [
        ("commonName", ASN1ObjectIdentifier.RDNAttributeType.commonName),
        ("organization", ASN1ObjectIdentifier.RDNAttributeType.organizationName),
        ("organizationalUnit", ASN1ObjectIdentifier.RDNAttributeType.organizationalUnitName),
        ("country", ASN1ObjectIdentifier.RDNAttributeType.countryName),
        ("province", ASN1ObjectIdentifier.RDNAttributeType.stateOrProvinceName),
        ("locality", ASN1ObjectIdentifier.RDNAttributeType.localityName),
        ("emailAddress", ASN1ObjectIdentifier.RDNAttributeType.emailAddress),
        ("serialNumber", [2, 5, 4, 5]),
    ]
    static let sanTypes = ["dns", "ip", "email", "uri"]
    static let keyUsageNames = [
        "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign",
        "cRLSign", "encipherOnly", "decipherOnly",
    ]
    static let extendedKeyUsages: [(String, ExtendedKeyUsage.Usage)] = [
        ("serverAuth", .serverAuth), ("clientAuth", .clientAuth), ("codeSigning", .codeSigning),
        ("emailProtection", .emailProtection), ("timeStamping", .timeStamping), ("ocspSigning", .ocspSigning),
    ]

    static func violation(_ message: String) -> EngineError {
        EngineError(.permissionDenied, "certificate template: \(message)")
    }

    /// Checks a template for unknown names and malformed patterns.
    static func validate(_ spec: TemplateSpec) throws {
        for r in spec.subject where !subjectTypes.contains(where: { $0.name == r.type }) {
            throw EngineError(
                .invalidArgument,
                "unknown subject attribute '\(r.type)'; use \(subjectTypes.map(\.name).joined(separator: ", "))")
        }
        for r in spec.sans where !sanTypes.contains(r.type) {
            throw EngineError(.invalidArgument, "unknown SAN type '\(r.type)'; use \(sanTypes.joined(separator: ", "))")
        }
        for r in spec.sans where r.type == "ip" {
            for p in r.allowed + r.denied where p != "*" && p != "**" && CIDR(p) == nil {
                throw EngineError(.invalidArgument, "IP pattern '\(p)' is not an address or CIDR block")
            }
        }
        for u in spec.keyUsages where !keyUsageNames.contains(u) {
            throw EngineError(
                .invalidArgument, "unknown key usage '\(u)'; use \(keyUsageNames.joined(separator: ", "))")
        }
        for u in spec.extendedKeyUsages where !extendedKeyUsages.contains(where: { $0.0 == u }) {
            throw EngineError(
                .invalidArgument,
                "unknown extended key usage '\(u)'; use \(extendedKeyUsages.map(\.0).joined(separator: ", "))")
        }
        for a in spec.signatureAlgorithms where !PKIDER.signatureAlgorithms.contains(where: { $0.name == a }) {
            throw EngineError(
                .invalidArgument,
                "unknown signature algorithm '\(a)'; use \(PKIDER.signatureAlgorithms.map(\.name).joined(separator: ", "))"
            )
        }
        guard DurationText.seconds(spec.maxTTL) != nil else {
            throw EngineError(.invalidArgument, "maxTTL must be a duration such as 90d or 8760h")
        }
        try GatehouseEngine.validateName(spec.name, "template name")
    }

    static func keyUsage(_ names: [String]) -> KeyUsage {
        let n = Set(names)
        return KeyUsage(
            digitalSignature: n.contains("digitalSignature"), nonRepudiation: n.contains("nonRepudiation"),
            keyEncipherment: n.contains("keyEncipherment"), dataEncipherment: n.contains("dataEncipherment"),
            keyAgreement: n.contains("keyAgreement"), keyCertSign: n.contains("keyCertSign"),
            cRLSign: n.contains("cRLSign"), encipherOnly: n.contains("encipherOnly"),
            decipherOnly: n.contains("decipherOnly"))
    }

    static func keyUsageNames(_ u: KeyUsage) -> [String] {
        var out: [String] = []
        if u.digitalSignature { out.append("digitalSignature") }
        if u.nonRepudiation { out.append("nonRepudiation") }
        if u.keyEncipherment { out.append("keyEncipherment") }
        if u.dataEncipherment { out.append("dataEncipherment") }
        if u.keyAgreement { out.append("keyAgreement") }
        if u.keyCertSign { out.append("keyCertSign") }
        if u.cRLSign { out.append("cRLSign") }
        if u.encipherOnly { out.append("encipherOnly") }
        if u.decipherOnly { out.append("decipherOnly") }
        return out
    }

    /// The subject's attributes as (template type, value); unknown attribute types are refused.
    static func subjectValues(_ dn: DistinguishedName) throws -> [(String, String)] {
        var out: [(String, String)] = []
        for rdn in dn {
            for attribute in rdn {
                guard let type = subjectTypes.first(where: { $0.oid == attribute.type }) else {
                    throw violation("subject attribute \(attribute.type) is not supported")
                }
                guard let value = String(attribute.value) else {
                    throw violation("subject attribute \(type.name) is not a text string")
                }
                out.append((type.name, value))
            }
        }
        return out
    }

    static func ipString(_ bytes: [UInt8]) -> String? {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        if bytes.count == 16 {
            return stride(from: 0, to: 16, by: 2).map {
                String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16)
            }
            .joined(separator: ":")
        }
        return nil
    }

    /// SANs as (template type, value).
    static func sanValues(_ names: SubjectAlternativeNames) throws -> [(String, String)] {
        try names.map { name -> (String, String) in
            switch name {
            case .dnsName(let v): return ("dns", v)
            case .rfc822Name(let v): return ("email", v)
            case .uniformResourceIdentifier(let v): return ("uri", v)
            case .ipAddress(let o):
                guard let s = ipString(Array(o.bytes)) else { throw violation("IP SAN of \(o.bytes.count) bytes") }
                return ("ip", s)
            default: throw violation("SAN \(name) is of a type templates cannot allow")
            }
        }
    }

    /// `dns:name`, `ip:addr`, `email:addr`, `uri:value`, or a bare DNS name.
    static func parseAltName(_ text: String) throws -> GeneralName {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        let (type, value) =
            parts.count == 2 && sanTypes.contains(parts[0].lowercased())
            ? (parts[0].lowercased(), parts[1]) : ("dns", text)
        guard !value.isEmpty, value.utf8.count <= 1024 else {
            throw EngineError(.invalidArgument, "empty or oversized SAN")
        }
        switch type {
        case "ip":
            guard let bytes = CIDR.parse(value) else {
                throw EngineError(.invalidArgument, "'\(value)' is not an IP address")
            }
            return .ipAddress(ASN1OctetString(contentBytes: bytes[...]))
        case "email": return .rfc822Name(value)
        case "uri": return .uniformResourceIdentifier(value)
        default: return .dnsName(value)
        }
    }

    static func matches(_ pattern: String, _ value: String, type: String) -> Bool {
        if pattern == "**" { return true }
        switch type {
        case "ip":
            if pattern == "*" { return true }
            return CIDR(pattern)?.contains(value) ?? false
        case "dns", "commonName":
            return Glob.matches(pattern.lowercased(), value.lowercased(), separator: ".")
        case "email", "emailAddress":
            return Glob.matches(pattern.lowercased(), value.lowercased(), separator: "@")
        default:
            return Glob.matches(pattern, value)
        }
    }

    static func check(_ rules: [PatternRule], _ values: [(String, String)], what: String) throws {
        for (type, value) in values {
            guard let rule = rules.first(where: { $0.type == type }) else {
                throw violation("\(what) \(type) '\(value)' is not allowed (no \(type) rule)")
            }
            if let d = rule.denied.first(where: { matches($0, value, type: type) }) {
                throw violation("\(what) \(type) '\(value)' matches denied pattern '\(d)'")
            }
            guard rule.allowed.contains(where: { matches($0, value, type: type) }) else {
                throw violation(
                    "\(what) \(type) '\(value)' matches no allowed pattern (\(rule.allowed.joined(separator: ", ")))")
            }
        }
        for rule in rules where rule.required && !values.contains(where: { $0.0 == rule.type }) {
            throw violation("\(what) \(rule.type) is required")
        }
    }

    /// Checks what the certificate will contain, and the extensions the CSR asked for.
    static func check(
        _ t: TemplateSpec, subject: DistinguishedName, sans: SubjectAlternativeNames, keyAlgorithm: PKIKeyAlgorithm,
        signatureAlgorithm: String, lifetime: TimeInterval, requested: Certificate.Extensions?
    ) throws {
        try check(t.subject, try subjectValues(subject), what: "subject")
        try check(t.sans, try sanValues(sans), what: "SAN")
        if !t.keyAlgorithms.isEmpty, !t.keyAlgorithms.contains(keyAlgorithm) {
            throw violation(
                "key algorithm \(keyAlgorithm.rawValue) is not allowed (keyAlgorithms: \(t.keyAlgorithms.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        if !t.signatureAlgorithms.isEmpty, !t.signatureAlgorithms.contains(signatureAlgorithm) {
            throw violation(
                "signature algorithm \(signatureAlgorithm) is not allowed (signatureAlgorithms: \(t.signatureAlgorithms.joined(separator: ", ")))"
            )
        }
        if let max = DurationText.seconds(t.maxTTL), lifetime > TimeInterval(max) + 1 {
            throw violation("validity of \(Int(lifetime))s exceeds maxTTL \(t.maxTTL)")
        }
        if let requested {
            if let ku = try? requested.keyUsage {
                let extra = Set(keyUsageNames(ku)).subtracting(t.keyUsages)
                if !extra.isEmpty {
                    throw violation(
                        "key usage \(extra.sorted().joined(separator: ", ")) is not allowed (keyUsages: \(t.keyUsages.joined(separator: ", ")))"
                    )
                }
            }
            if let eku = try? requested.extendedKeyUsage {
                let allowed = Set(t.extendedKeyUsages.compactMap { n in extendedKeyUsages.first { $0.0 == n }?.1 })
                for u in eku where !allowed.contains(u) {
                    throw violation(
                        "extended key usage \(u) is not allowed (extendedKeyUsages: \(t.extendedKeyUsages.joined(separator: ", ")))"
                    )
                }
            }
            if let bc = try? requested.basicConstraints, case .isCertificateAuthority = bc {
                throw violation("a CA certificate cannot be requested under a certificate profile")
            }
        }
    }
}
