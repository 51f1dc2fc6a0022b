import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import SwiftASN1
import Synchronization
import TTLV
import _CryptoExtras

/// A malformed or unsupported field in a request payload.
struct KMIPFieldError: Error {
    var reason: ResultReason
    var message: String
    init(_ reason: ResultReason, _ message: String) {
        self.reason = reason
        self.message = message
    }
    init(_ message: String) {
        self.init(.invalidField, message)
    }
}

/// Per-batch state: the ID Placeholder (KMIP 1.4 §4: an operation without Unique Identifier uses the one the
/// previous batch item produced).
struct BatchState {
    var idPlaceholder: String?
    /// Batch Error Continuation Option Undo: what the batch changed, to put back if an item fails.
    var undo = false
    var snapshots: [ObjectSnapshot] = []
    var created: [String] = []
}

/// Key lifecycle and crypto operations: payload → one engine call → payload.
struct KMIPKeyOperations {
    let engine: any KeyEngine
    let ctx: CallContext
    let version: ProtocolVersion

    /// Under Undo, keeps the object's state before this batch first changes it.
    func beforeChange(_ id: String, _ state: inout BatchState) async throws {
        guard state.undo, !state.created.contains(id), !state.snapshots.contains(where: { $0.id == id }) else { return }
        state.snapshots.append(try await engine.snapshotObject(ctx, id: id))
    }

    // MARK: Payload readers

    func uid(_ payload: TTLVItem?, _ state: BatchState) throws -> String {
        if case .textString(let id)? = payload?.child(KMIPTag.uniqueIdentifier)?.value { return id }
        if let id = state.idPlaceholder { return id }
        throw KMIPFieldError(.missingData, "Unique Identifier is missing and no ID Placeholder is set")
    }

    static func objectType(_ raw: UInt32) -> ManagedObjectType? {
        switch raw {
        case KMIPObjectType.symmetricKey.rawValue: return .symmetricKey
        case KMIPObjectType.secretData.rawValue: return .secretData
        case KMIPObjectType.opaqueObject.rawValue: return .opaqueObject
        case KMIPObjectType.publicKey.rawValue: return .publicKey
        case KMIPObjectType.privateKey.rawValue: return .privateKey
        case KMIPObjectType.certificate.rawValue: return .certificate
        case KMIPObjectType.splitKey.rawValue: return .splitKey
        default: return nil
        }
    }

    /// The tag of the structure that carries an object of this type (KMIP 1.4 §2.2).
    static func holderTag(_ t: ManagedObjectType) -> UInt32 {
        switch t {
        case .symmetricKey: return KMIPTag.symmetricKey
        case .secretData: return KMIPTag.secretData
        case .opaqueObject: return KMIPTag.opaqueObject
        case .publicKey: return KMIPTag.publicKey
        case .privateKey: return KMIPTag.privateKey
        case .certificate: return KMIPTag.certificate
        case .splitKey: return KMIPTag.splitKey
        }
    }

    static func kmipType(_ t: ManagedObjectType) -> KMIPObjectType {
        switch t {
        case .symmetricKey: return .symmetricKey
        case .secretData: return .secretData
        case .opaqueObject: return .opaqueObject
        case .publicKey: return .publicKey
        case .privateKey: return .privateKey
        case .certificate: return .certificate
        case .splitKey: return .splitKey
        }
    }

    static func date(_ v: TTLVValue) -> Date? {
        switch v {
        case .dateTime(let s): return Date(timeIntervalSince1970: TimeInterval(s))
        case .dateTimeExtended(let us): return Date(timeIntervalSince1970: TimeInterval(us) / 1_000_000)
        default: return nil
        }
    }

    /// An engine spec from request attributes.
    static func spec(_ type: ManagedObjectType, _ attributes: [KMIPAttribute]) throws -> ObjectSpec {
        var spec = ObjectSpec(objectType: type)
        for a in attributes {
            switch (a.name, a.value) {
            case ("Cryptographic Algorithm", .enumeration(let v)): spec.algorithm = v
            case ("Cryptographic Length", .integer(let v)): spec.cryptographicLength = v
            case ("Cryptographic Usage Mask", .integer(let v)): spec.usageMask = UInt32(bitPattern: v)
            case ("Name", _):
                guard let text = a.nameText else { throw KMIPFieldError("a Name attribute needs a Name Value") }
                spec.names.append(text)
            case ("Object Group", .textString(let g)): spec.objectGroups.append(g)
            case ("Activation Date", let v): spec.activationDate = date(v)
            case ("Deactivation Date", let v): spec.deactivationDate = date(v)
            case ("Process Start Date", .dateTime): spec.processStartDate = date(a.value)
            case ("Protect Stop Date", .dateTime): spec.protectStopDate = date(a.value)
            case ("Cryptographic Domain Parameters", .structure):
                // A Recommended Curve names the EC key size (P-256/384/521); other parameters are not used.
                if case .enumeration(let curve)? = TTLVItem(tag: 0, a.value).child(0x420075)?.value {
                    let lengths: [UInt32: Int32] = [7: 256, 0xA: 384, 0xD: 521]
                    guard let length = lengths[curve] else {
                        throw KMIPFieldError(.featureNotSupported, "curve \(curve) is not supported")
                    }
                    spec.cryptographicLength = spec.cryptographicLength ?? length
                }
            case ("Sensitive", .boolean(let v)): spec.sensitive = v
            case ("Extractable", .boolean(let v)): spec.extractable = v
            case ("Fresh", .boolean(let v)): spec.fresh = v
            case ("Usage Limits", .structure):
                let item = TTLVItem(tag: 0, a.value)
                guard case .longInteger(let total)? = item.child(0x420097)?.value, total >= 0,
                    case .enumeration(let unit)? = item.child(0x420098)?.value, unit == 1 || unit == 2
                else { throw KMIPFieldError("Usage Limits need a Usage Limits Total and a Unit (Byte or Object)") }
                var count = total
                if case .longInteger(let c)? = item.child(0x420096)?.value { count = min(c, total) }
                spec.usageLimits = UsageLimits(total: total, count: count, unit: unit)
            case ("Object Type", _): break  // the payload's Object Type decides
            // X.509: the certificate decides.
            case ("Certificate Type", .enumeration(1)) where type == .certificate: break
            default:
                guard Self.isClientAttribute(a.name) else {
                    throw KMIPFieldError("attribute '\(a.name)' cannot be set by the client or has the wrong type")
                }
                spec.customAttributes[a.name, default: []].append(Self.store(a.value))
            }
        }
        try checkQuantumSafe(spec, attributes, known: false)
        return spec
    }

    /// Quantum Safe (KMIP 2.0 §4.47) asked for an object that is not: General Failure, as the profile's QS-M-2 case
    /// expects. Quantum safe here: symmetric keys of at least 256 bits (Grover's search halves a key's strength);
    /// no RSA or elliptic-curve key is.
    /// `known`: the algorithm and length are final (Register reads them from the key block after the attributes;
    /// until then an unknown algorithm is not yet a refusal).
    static func checkQuantumSafe(_ spec: ObjectSpec, _ attributes: [KMIPAttribute], known: Bool) throws {
        guard attributes.contains(where: { $0.name == "Quantum Safe" && $0.value == .boolean(true) }) else { return }
        if !known, spec.objectType == .symmetricKey, spec.algorithm == nil || spec.cryptographicLength == nil {
            return
        }
        let symmetric: Set<UInt32> = [3, 0x1C, 0x1E, 9, 10, 11]  // AES, ChaCha20, ChaCha20-Poly1305, HMAC-SHA2
        let safe: Bool
        switch spec.objectType {
        case .symmetricKey:
            safe = spec.algorithm.map { symmetric.contains($0) } ?? false && (spec.cryptographicLength ?? 0) >= 256
        case .secretData, .opaqueObject: safe = true  // no algorithm to break
        default: safe = false
        }
        guard safe else {
            throw KMIPFieldError(
                .generalFailure,
                "NOT_SAFE: a \(spec.cryptographicLength.map { "\($0)-bit " } ?? "")key of this algorithm is not quantum safe"
            )
        }
    }

    /// PKCS#1 DER of a Transparent RSA Public Key (format 11: Modulus, Public Exponent) or Private Key (format 10:
    /// all eight components), or nil.
    static func transparentRSA(_ km: TTLVItem, type: ManagedObjectType, format: UInt32) -> [UInt8]? {
        func big(_ tag: UInt32) -> [UInt8]? {
            switch km.child(tag)?.value {
            case .bigInteger(let b)?, .byteString(let b)?: return b
            case .integer(let v)?: return withUnsafeBytes(of: v.bigEndian) { Array($0) }
            default: return nil
            }
        }
        switch (type, format) {
        case (.publicKey, 11):
            guard let n = big(0x420052), let e = big(0x42006C) else { return nil }
            return DERIntegers.write([n, e])
        case (.privateKey, 10):
            let tags: [UInt32] = [0x420052, 0x42006C, 0x420063, 0x42005E, 0x420071, 0x420060, 0x420061, 0x420027]
            let parts = tags.compactMap(big)
            guard parts.count == tags.count else { return nil }
            return DERIntegers.write([[0]] + parts)
        default:
            return nil
        }
    }

    /// Sensitive, Always Sensitive, Never Extractable false / Extractable true.
    static func isDefaultFlag(_ a: KMIPAttribute) -> Bool {
        switch a.name {
        case "Sensitive", "Always Sensitive", "Never Extractable": return a.value == .boolean(false)
        case "Extractable": return a.value == .boolean(true)
        default: return false
        }
    }

    /// Date attributes by KMIP name (Locate filters).
    static let dateAttributes: [String: DateAttribute] = [
        "Initial Date": .initial, "Activation Date": .activation, "Deactivation Date": .deactivation,
        "Process Start Date": .processStart, "Protect Stop Date": .protectStop, "Compromise Date": .compromise,
        "Compromise Occurrence Date": .compromiseOccurrence, "Destroy Date": .destroy, "Last Change Date": .lastChange,
    ]

    /// An RSA or EC key's material in another Key Format Type than it is stored in: PKCS#1 ↔ PKCS#8 / X.509
    /// (SubjectPublicKeyInfo), Transparent RSA (10, 11) and Transparent EC (20, 21) keys. Nil: no such conversion.
    static func convertedKeyMaterial(_ der: [UInt8], _ m: ManagedObject, stored: UInt32, wanted: UInt32) throws
        -> TTLVItem?
    {
        func bytes(_ b: [UInt8]) -> TTLVItem { TTLVItem(tag: KMIPTag.keyMaterial, .byteString(b)) }
        func big(_ tag: UInt32, _ b: some Sequence<UInt8>) -> TTLVItem {
            var v = Array(b.drop { $0 == 0 })
            if v.isEmpty { v = [0] }
            // Big Integers are two's complement, padded to a multiple of 8 bytes.
            if v[0] & 0x80 != 0 { v.insert(0, at: 0) }
            let pad = (8 - v.count % 8) % 8
            return TTLVItem(tag: tag, .bigInteger([UInt8](repeating: 0, count: pad) + v))
        }
        do {
            switch (m.objectType, m.algorithm) {
            case (.privateKey, 4?):
                let key = try _RSA.Signing.PrivateKey(derRepresentation: der)
                switch wanted {
                case 3: return bytes(Array(key.derRepresentation))
                case 4: return bytes(Array(key.pkcs8DERRepresentation))
                case 10:
                    guard let parts = DERIntegers.read(Array(key.derRepresentation)), parts.count == 9 else {
                        return nil
                    }
                    let tags: [UInt32] = [
                        0x420052, 0x42006C, 0x420063, 0x42005E, 0x420071, 0x420060, 0x420061, 0x420027,
                    ]
                    return TTLVItem(
                        tag: KMIPTag.keyMaterial, .structure(zip(tags, parts.dropFirst()).map { big($0, $1) }))
                default: return nil
                }
            case (.publicKey, 4?):
                let key = try _RSA.Signing.PublicKey(derRepresentation: der)
                switch wanted {
                case 3: return bytes(Array(key.pkcs1DERRepresentation))
                case 5: return bytes(Array(key.derRepresentation))
                case 11:
                    let p = try key.getKeyPrimitives()
                    return TTLVItem(
                        tag: KMIPTag.keyMaterial,
                        .structure([big(0x420052, p.modulus), big(0x42006C, p.publicExponent)]))
                default: return nil
                }
            case (.privateKey, 6?), (.privateKey, 0x1A?):
                guard wanted == 0x14 else { return nil }
                let (curve, d): (UInt32, [UInt8])
                switch m.cryptographicLength {
                case 256: (curve, d) = (7, Array(try P256.Signing.PrivateKey(derRepresentation: der).rawRepresentation))
                case 384:
                    (curve, d) = (0xA, Array(try P384.Signing.PrivateKey(derRepresentation: der).rawRepresentation))
                case 521:
                    (curve, d) = (0xD, Array(try P521.Signing.PrivateKey(derRepresentation: der).rawRepresentation))
                default: return nil
                }
                return TTLVItem(
                    tag: KMIPTag.keyMaterial,
                    .structure([TTLVItem(tag: 0x420075, .enumeration(curve)), big(0x42002E, d)]))
            case (.publicKey, 6?), (.publicKey, 0x1A?):
                guard wanted == 0x15 else { return nil }
                let (curve, q): (UInt32, [UInt8])
                switch m.cryptographicLength {
                case 256: (curve, q) = (7, Array(try P256.Signing.PublicKey(derRepresentation: der).x963Representation))
                case 384:
                    (curve, q) = (0xA, Array(try P384.Signing.PublicKey(derRepresentation: der).x963Representation))
                case 521:
                    (curve, q) = (0xD, Array(try P521.Signing.PublicKey(derRepresentation: der).x963Representation))
                default: return nil
                }
                return TTLVItem(
                    tag: KMIPTag.keyMaterial,
                    .structure([TTLVItem(tag: 0x420075, .enumeration(curve)), TTLVItem(tag: 0x420072, .byteString(q))]))
            default:
                return nil
            }
        } catch {
            throw KMIPFieldError(
                .keyFormatTypeNotSupported, "the stored key cannot be converted to key format type \(wanted)")
        }
    }

    /// A transparent key's Key Material structure as registered (see `register`).
    static func storedKeyMaterial(_ bytes: [UInt8]) -> TTLVItem? {
        guard let item = try? TTLVDecoder(maxDepth: 8, maxMessageSize: 64 * 1024).decode(bytes),
            item.tag == KMIPTag.keyMaterial,
            case .structure = item.value
        else { return nil }
        return item
    }

    /// KMIP 2.x "Certificate Subject …" / "Certificate Issuer …" attribute suffixes, by distinguished-name component
    /// type (as `CertificateFacts` names them).
    static let certificateNameAttributes = [
        "CN": "CN", "O": "O", "OU": "OU", "emailAddress": "Email", "C": "C", "ST": "ST", "L": "L", "UID": "UID",
        "serialNumber": "Serial Number", "title": "Title", "DC": "DC", "dnQualifier": "DN Qualifier",
    ]
    /// The component type of a KMIP 2.x certificate name attribute ("Certificate Issuer CN" → issuer, "CN").
    static func certificateNameComponent(_ attribute: String) -> (issuer: Bool, type: String)? {
        for (prefix, issuer) in [("Certificate Subject ", false), ("Certificate Issuer ", true)]
        where attribute.hasPrefix(prefix) {
            let suffix = attribute.dropFirst(prefix.count)
            if let type = certificateNameAttributes.first(where: { $0.value == suffix })?.key { return (issuer, type) }
        }
        return nil
    }

    /// Attributes a client may set that the engine keeps without interpreting.
    static func isClientAttribute(_ name: String) -> Bool {
        // Operation Policy Name is kept for clients that locate by it; authorization is the engine's RBAC, not it.
        // Cryptographic Parameters are the key's defaults for Encrypt, Decrypt, Sign and MAC (used when a request
        // names none); Alternative Name is descriptive.
        // Links (Next / Previous / Parent …) are the client's to keep; the server reads none of them.
        [
            "Application Specific Information", "Contact Information", "Description", "Comment", "Custom Attribute",
            "Operation Policy Name", "Cryptographic Parameters", "Alternative Name", "Link",
            // KMIP 2.0: the protection the client asks for, kept and returned (the server protects every object the
            // same way: under the root key, in this process).
            "Quantum Safe", "Protection Level", "Protection Period",
        ].contains(name)
            || name.hasPrefix("x-") || name.hasPrefix("y-") || name.hasPrefix("vendor:")
    }

    /// A stored attribute value: the TTLV encoding of the value (tag Attribute Value).
    static func store(_ value: TTLVValue) -> [UInt8] {
        TTLVEncoder.encode(TTLVItem(tag: KMIPTag.attributeValue, value))
    }

    static func load(_ bytes: [UInt8]) -> TTLVValue? {
        (try? TTLVDecoder(maxDepth: 8, maxMessageSize: 8192).decode(bytes))?.value
    }

    /// The Lease Time this server grants (KMIP 1.4 §3.15): how long a client may keep using material it obtained
    /// before obtaining it again (and so seeing a revocation). One hour.
    static let leaseTime: Int64 = 3600

    /// The attributes of an object, as KMIP attributes.
    static func attributes(_ m: ManagedObject) -> [KMIPAttribute] {
        func date(_ d: Date) -> TTLVValue { .dateTime(Int64(d.timeIntervalSince1970)) }
        var out: [KMIPAttribute] = [
            KMIPAttribute(name: "Unique Identifier", value: .textString(m.id)),
            KMIPAttribute(name: "Object Type", value: .enumeration(kmipType(m.objectType).rawValue)),
        ]
        out += m.names.map(KMIPAttribute.name)
        if let a = m.algorithm { out.append(KMIPAttribute(name: "Cryptographic Algorithm", value: .enumeration(a))) }
        if let l = m.cryptographicLength { out.append(KMIPAttribute(name: "Cryptographic Length", value: .integer(l))) }
        out.append(KMIPAttribute(name: "Cryptographic Usage Mask", value: .integer(Int32(bitPattern: m.usageMask))))
        out.append(KMIPAttribute(name: "State", value: .enumeration(UInt32(m.state.rawValue))))
        out.append(KMIPAttribute(name: "Initial Date", value: date(m.initialDate)))
        if let d = m.activationDate { out.append(KMIPAttribute(name: "Activation Date", value: date(d))) }
        if let d = m.deactivationDate { out.append(KMIPAttribute(name: "Deactivation Date", value: date(d))) }
        if let d = m.destroyDate { out.append(KMIPAttribute(name: "Destroy Date", value: date(d))) }
        if let d = m.processStartDate { out.append(KMIPAttribute(name: "Process Start Date", value: date(d))) }
        if let d = m.protectStopDate { out.append(KMIPAttribute(name: "Protect Stop Date", value: date(d))) }
        if let d = m.compromiseDate { out.append(KMIPAttribute(name: "Compromise Date", value: date(d))) }
        if let d = m.compromiseOccurrenceDate {
            out.append(KMIPAttribute(name: "Compromise Occurrence Date", value: date(d)))
        }
        if let r = m.revocationReason {
            var reason = [TTLVItem(tag: KMIPTag.revocationReasonCode, .enumeration(r))]
            if let msg = m.revocationMessage {
                reason.append(TTLVItem(tag: KMIPTag.revocationMessage, .textString(msg)))
            }
            out.append(KMIPAttribute(name: "Revocation Reason", value: .structure(reason)))
        }
        out += m.objectGroups.map { KMIPAttribute(name: "Object Group", value: .textString($0)) }
        out.append(KMIPAttribute(name: "Last Change Date", value: date(m.lastChangeDate)))
        // KMIP 2.0 §4.52: always has a value, made by the server; here SHA-256 of the Unique Identifier.
        out.append(
            KMIPAttribute(
                name: "Short Unique Identifier", value: .byteString(Array(SHA256.hash(data: Array(m.id.utf8))))))
        out.append(KMIPAttribute(name: "Original Creation Date", value: date(m.initialDate)))
        let sensitive = m.sensitive ?? false
        let extractable = m.extractable ?? true
        out += [
            KMIPAttribute(name: "Sensitive", value: .boolean(sensitive)),
            KMIPAttribute(name: "Always Sensitive", value: .boolean(m.alwaysSensitive ?? sensitive)),
            KMIPAttribute(name: "Extractable", value: .boolean(extractable)),
            KMIPAttribute(name: "Never Extractable", value: .boolean(m.neverExtractable ?? !extractable)),
            KMIPAttribute(name: "Fresh", value: .boolean(m.fresh ?? false)),
            KMIPAttribute(name: "Lease Time", value: .interval(UInt32(Self.leaseTime))),
        ]
        for link in m.links ?? [] {
            out.append(
                KMIPAttribute(
                    name: "Link",
                    value: .structure([
                        TTLVItem(tag: 0x42004B, .enumeration(link.type)), TTLVItem(tag: 0x42004C, .textString(link.id)),
                    ])))
        }
        if let c = m.certificate {
            out.append(KMIPAttribute(name: "Certificate Length", value: .integer(Int32(clamping: c.length))))
            let names = Self.certificateNameAttributes
            for (prefix, components) in [("Certificate Subject ", c.subject), ("Certificate Issuer ", c.issuer)] {
                for part in components {
                    if let suffix = names[part.type] {
                        out.append(KMIPAttribute(name: prefix + suffix, value: .textString(part.value)))
                    }
                }
            }
        }
        if let u = m.usageLimits {
            out.append(
                KMIPAttribute(
                    name: "Usage Limits",
                    value: .structure([
                        TTLVItem(tag: 0x420097, .longInteger(u.total)), TTLVItem(tag: 0x420096, .longInteger(u.count)),
                        TTLVItem(tag: 0x420098, .enumeration(u.unit)),
                    ])))
        }
        if m.serverGenerated == true {
            // Keys come from BoringSSL's CTR-DRBG (AES-256) seeded by the kernel.
            out.append(
                KMIPAttribute(
                    name: "Random Number Generator",
                    value: .structure([
                        TTLVItem(tag: 0x4200DA, .enumeration(3)), TTLVItem(tag: 0x4200DB, .enumeration(5)),
                        TTLVItem(tag: KMIPTag.cryptographicAlgorithm, .enumeration(3)),
                        TTLVItem(tag: KMIPTag.cryptographicLength, .integer(256)),
                    ])))
        }
        // Key Format Type (KMIP 2.0 §4.27; always has a value for keys and secret data): the format the material is
        // held in, as Get returns it by default.
        switch m.objectType {
        case .symmetricKey, .privateKey, .publicKey, .secretData, .splitKey:
            let format =
                m.keyFormatType
                ?? (m.objectType == .privateKey
                    ? 4 : m.objectType == .publicKey ? 5 : m.objectType == .secretData ? 2 : 1)
            out.append(KMIPAttribute(name: "Key Format Type", value: .enumeration(format)))
        default: break
        }
        if let digest = m.digest {
            // SHA-256 of the material in the format it is stored in (symmetric keys: Raw).
            let format =
                m.keyFormatType == 7
                ? 1 : m.keyFormatType ?? (m.objectType == .symmetricKey ? 1 : m.objectType == .privateKey ? 4 : 5)
            out.append(
                KMIPAttribute(
                    name: "Digest",
                    value: .structure([
                        TTLVItem(tag: KMIPTag.hashingAlgorithm, .enumeration(6)),
                        TTLVItem(tag: 0x420035, .byteString(digest)),
                        TTLVItem(tag: KMIPTag.keyFormatType, .enumeration(format)),
                    ])))
        }
        for (name, values) in (m.customAttributes ?? [:]).sorted(by: { $0.key < $1.key }) {
            out += values.compactMap(load).map { KMIPAttribute(name: name, value: $0) }
        }
        return out
    }
}

/// DER SEQUENCEs of INTEGERs (PKCS#1 RSA keys) through SwiftASN1, the integers as unsigned big-endian bytes.
enum DERIntegers {
    /// The INTEGERs of a SEQUENCE, leading zero bytes dropped; nil when `der` is not one.
    static func read(_ der: [UInt8]) -> [[UInt8]]? {
        guard let node = try? DER.parse(der) else { return nil }
        return try? DER.sequence(node, identifier: .sequence) { nodes in
            var out: [[UInt8]] = []
            while let n = nodes.next() { out.append(Array(try ArraySlice<UInt8>(derEncoded: n).drop { $0 == 0 })) }
            return out
        }
    }

    /// A SEQUENCE of the unsigned big-endian integers `values`.
    static func write(_ values: [[UInt8]]) -> [UInt8]? {
        var serializer = DER.Serializer()
        do {
            try serializer.appendConstructedNode(identifier: .sequence) { s in
                for v in values { try s.serialize(ArraySlice(v.drop { $0 == 0 })) }
            }
        } catch { return nil }
        return serializer.serializedBytes
    }
}
