import Crypto
import EngineAPI
import Foundation
import Synchronization
import KMIPProtocol
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
                    guard let length = lengths[curve] else { throw KMIPFieldError(.featureNotSupported, "curve \(curve) is not supported") }
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
            case ("Certificate Type", .enumeration(1)) where type == .certificate: break  // X.509: the certificate decides
            default:
                guard Self.isClientAttribute(a.name) else {
                    throw KMIPFieldError("attribute '\(a.name)' cannot be set by the client or has the wrong type")
                }
                spec.customAttributes[a.name, default: []].append(Self.store(a.value))
            }
        }
        return spec
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
        func length(_ n: Int) -> [UInt8] {
            if n < 0x80 { return [UInt8(n)] }
            var bytes: [UInt8] = []
            var v = n
            while v > 0 { bytes.insert(UInt8(v & 0xFF), at: 0); v >>= 8 }
            return [0x80 | UInt8(bytes.count)] + bytes
        }
        func integer(_ b: [UInt8]) -> [UInt8] {
            var v = Array(b.drop { $0 == 0 })
            if v.isEmpty { v = [0] }
            if v[0] & 0x80 != 0 { v.insert(0, at: 0) }
            return [0x02] + length(v.count) + v
        }
        func sequence(_ parts: [[UInt8]]) -> [UInt8] {
            let body = parts.flatMap { $0 }
            return [0x30] + length(body.count) + body
        }
        switch (type, format) {
        case (.publicKey, 11):
            guard let n = big(0x420052), let e = big(0x42006C) else { return nil }
            return sequence([integer(n), integer(e)])
        case (.privateKey, 10):
            let tags: [UInt32] = [0x420052, 0x42006C, 0x420063, 0x42005E, 0x420071, 0x420060, 0x420061, 0x420027]
            let parts = tags.compactMap(big)
            guard parts.count == tags.count else { return nil }
            return sequence([integer([0])] + parts.map(integer))
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
    static func convertedKeyMaterial(_ der: [UInt8], _ m: ManagedObject, stored: UInt32, wanted: UInt32) throws -> TTLVItem? {
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
                    guard let parts = DERIntegers.read(Array(key.derRepresentation)), parts.count == 9 else { return nil }
                    let tags: [UInt32] = [0x420052, 0x42006C, 0x420063, 0x42005E, 0x420071, 0x420060, 0x420061, 0x420027]
                    return TTLVItem(tag: KMIPTag.keyMaterial, .structure(zip(tags, parts.dropFirst()).map { big($0, $1) }))
                default: return nil
                }
            case (.publicKey, 4?):
                let key = try _RSA.Signing.PublicKey(derRepresentation: der)
                switch wanted {
                case 3: return bytes(Array(key.pkcs1DERRepresentation))
                case 5: return bytes(Array(key.derRepresentation))
                case 11:
                    let p = try key.getKeyPrimitives()
                    return TTLVItem(tag: KMIPTag.keyMaterial, .structure([big(0x420052, p.modulus), big(0x42006C, p.publicExponent)]))
                default: return nil
                }
            case (.privateKey, 6?), (.privateKey, 0x1A?):
                guard wanted == 0x14 else { return nil }
                let (curve, d): (UInt32, [UInt8])
                switch m.cryptographicLength {
                case 256: (curve, d) = (7, Array(try P256.Signing.PrivateKey(derRepresentation: der).rawRepresentation))
                case 384: (curve, d) = (0xA, Array(try P384.Signing.PrivateKey(derRepresentation: der).rawRepresentation))
                case 521: (curve, d) = (0xD, Array(try P521.Signing.PrivateKey(derRepresentation: der).rawRepresentation))
                default: return nil
                }
                return TTLVItem(tag: KMIPTag.keyMaterial, .structure([TTLVItem(tag: 0x420075, .enumeration(curve)), big(0x42002E, d)]))
            case (.publicKey, 6?), (.publicKey, 0x1A?):
                guard wanted == 0x15 else { return nil }
                let (curve, q): (UInt32, [UInt8])
                switch m.cryptographicLength {
                case 256: (curve, q) = (7, Array(try P256.Signing.PublicKey(derRepresentation: der).x963Representation))
                case 384: (curve, q) = (0xA, Array(try P384.Signing.PublicKey(derRepresentation: der).x963Representation))
                case 521: (curve, q) = (0xD, Array(try P521.Signing.PublicKey(derRepresentation: der).x963Representation))
                default: return nil
                }
                return TTLVItem(tag: KMIPTag.keyMaterial, .structure([TTLVItem(tag: 0x420075, .enumeration(curve)), TTLVItem(tag: 0x420072, .byteString(q))]))
            default:
                return nil
            }
        } catch {
            throw KMIPFieldError(.keyFormatTypeNotSupported, "the stored key cannot be converted to key format type \(wanted)")
        }
    }

    /// A transparent key's Key Material structure as registered (see `register`).
    static func storedKeyMaterial(_ bytes: [UInt8]) -> TTLVItem? {
        guard let item = try? TTLVDecoder(maxDepth: 8, maxMessageSize: 64 * 1024).decode(bytes), item.tag == KMIPTag.keyMaterial,
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
        for (prefix, issuer) in [("Certificate Subject ", false), ("Certificate Issuer ", true)] where attribute.hasPrefix(prefix) {
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
        ["Application Specific Information", "Contact Information", "Description", "Comment", "Custom Attribute",
         "Operation Policy Name", "Cryptographic Parameters", "Alternative Name", "Link"].contains(name)
            || name.hasPrefix("x-") || name.hasPrefix("y-")
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
        if let d = m.compromiseOccurrenceDate { out.append(KMIPAttribute(name: "Compromise Occurrence Date", value: date(d))) }
        if let r = m.revocationReason {
            var reason = [TTLVItem(tag: KMIPTag.revocationReasonCode, .enumeration(r))]
            if let msg = m.revocationMessage { reason.append(TTLVItem(tag: KMIPTag.revocationMessage, .textString(msg))) }
            out.append(KMIPAttribute(name: "Revocation Reason", value: .structure(reason)))
        }
        out += m.objectGroups.map { KMIPAttribute(name: "Object Group", value: .textString($0)) }
        out.append(KMIPAttribute(name: "Last Change Date", value: date(m.lastChangeDate)))
        out.append(KMIPAttribute(name: "Original Creation Date", value: date(m.initialDate)))
        let sensitive = m.sensitive ?? false, extractable = m.extractable ?? true
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
                    if let suffix = names[part.type] { out.append(KMIPAttribute(name: prefix + suffix, value: .textString(part.value))) }
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
            out.append(KMIPAttribute(name: "Random Number Generator", value: .structure([
                TTLVItem(tag: 0x4200DA, .enumeration(3)), TTLVItem(tag: 0x4200DB, .enumeration(5)),
                TTLVItem(tag: KMIPTag.cryptographicAlgorithm, .enumeration(3)), TTLVItem(tag: KMIPTag.cryptographicLength, .integer(256)),
            ])))
        }
        if let digest = m.digest {
            // SHA-256 of the material in the format it is stored in (symmetric keys: Raw).
            let format = m.keyFormatType == 7 ? 1 : m.keyFormatType ?? (m.objectType == .symmetricKey ? 1 : m.objectType == .privateKey ? 4 : 5)
            out.append(KMIPAttribute(name: "Digest", value: .structure([
                TTLVItem(tag: KMIPTag.hashingAlgorithm, .enumeration(6)), TTLVItem(tag: 0x420035, .byteString(digest)),
                TTLVItem(tag: KMIPTag.keyFormatType, .enumeration(format)),
            ])))
        }
        for (name, values) in (m.customAttributes ?? [:]).sorted(by: { $0.key < $1.key }) {
            out += values.compactMap(load).map { KMIPAttribute(name: name, value: $0) }
        }
        return out
    }

    // MARK: Operations

    func create(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        guard case .enumeration(let rawType)? = payload?.child(KMIPTag.objectType)?.value else {
            throw KMIPFieldError(.missingData, "Object Type is required")
        }
        guard rawType == KMIPObjectType.symmetricKey.rawValue else {
            throw KMIPFieldError("Create makes Symmetric Keys (object type \(rawType) is not creatable)")
        }
        let spec = try Self.spec(.symmetricKey, KMIPAttributeCodec.read(payload))
        let m = try await engine.createKey(ctx, project: nil, spec)
        if state.undo { state.created.append(m.id) }
        state.idPlaceholder = m.id
        return [
            TTLVItem(tag: KMIPTag.objectType, .enumeration(rawType)), TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(m.id)),
        ]
    }

    func register(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        guard case .enumeration(let rawType)? = payload?.child(KMIPTag.objectType)?.value,
            let type = Self.objectType(rawType)
        else { throw KMIPFieldError("Register takes keys, certificates, secret data, split keys and opaque objects") }
        var spec = try Self.spec(type, KMIPAttributeCodec.read(payload))
        guard let holder = payload?.child(Self.holderTag(type)) else {
            throw KMIPFieldError(.missingData, "the object to register is missing")
        }
        let material: [UInt8]
        switch type {
        case .symmetricKey, .secretData, .publicKey, .privateKey, .splitKey:
            guard let block = holder.child(KMIPTag.keyBlock) else { throw KMIPFieldError(.missingData, "the object's Key Block is missing") }
            if case .enumeration(let t)? = holder.child(KMIPTag.secretDataType)?.value { spec.dataType = t }
            if let wrapping = block.child(KMIPTag.keyWrappingData) {
                // Kept as sent and returned by Get; the material stays wrapped (the server never unwraps it).
                spec.wrappingData = TTLVEncoder.encode(wrapping)
            }
            guard case .enumeration(let format)? = block.child(KMIPTag.keyFormatType)?.value else {
                throw KMIPFieldError(.missingData, "Key Format Type is missing")
            }
            spec.keyFormatType = format
            let keyValue = block.child(KMIPTag.keyValue)
            if case .byteString(let b)? = keyValue?.child(KMIPTag.keyMaterial)?.value {
                material = b
            } else if type == .symmetricKey, case .byteString(let b)? = keyValue?.child(KMIPTag.keyMaterial)?.child(KMIPTag.key)?.value {
                material = b  // Transparent Symmetric Key: stored raw, returned as registered
            } else if let km = keyValue?.child(KMIPTag.keyMaterial), let der = Self.transparentRSA(km, type: type, format: format) {
                material = der  // Transparent RSA keys: stored (and returned) as PKCS#1 DER
                spec.keyFormatType = 3
            } else if let km = keyValue?.child(KMIPTag.keyMaterial), case .structure = km.value, (8...21).contains(format) {
                // Other transparent keys (DSA, DH, EC, ECDH, ECMQV) are kept as their Key Material structure and
                // returned as registered; the server does no cryptography with them.
                material = TTLVEncoder.encode(km)
            } else if case .byteString(let b)? = keyValue?.value {
                material = b  // 1.x allows Key Value as a byte string
            } else {
                throw KMIPFieldError(.keyFormatTypeNotSupported, "only byte-string key material can be registered (format \(format))")
            }
            if case .enumeration(let a)? = block.child(KMIPTag.cryptographicAlgorithm)?.value, spec.algorithm == nil { spec.algorithm = a }
            if case .integer(let l)? = block.child(KMIPTag.cryptographicLength)?.value, spec.cryptographicLength == nil {
                spec.cryptographicLength = l
            }
            if type == .splitKey {
                guard case .integer(let parts)? = holder.child(KMIPTag.splitKeyParts)?.value,
                    case .integer(let part)? = holder.child(KMIPTag.keyPartIdentifier)?.value,
                    case .integer(let threshold)? = holder.child(KMIPTag.splitKeyThreshold)?.value,
                    case .enumeration(let method)? = holder.child(KMIPTag.splitKeyMethod)?.value
                else { throw KMIPFieldError(.missingData, "a Split Key needs parts, part identifier, threshold and method") }
                var prime: [UInt8]?
                if case .bigInteger(let p)? = holder.child(KMIPTag.primeFieldSize)?.value { prime = p }
                spec.splitKey = SplitKeyInfo(parts: parts, partIdentifier: part, threshold: threshold, method: method, primeFieldSize: prime)
            }
        case .certificate:
            guard case .byteString(let der)? = holder.child(KMIPTag.certificateValue)?.value else {
                throw KMIPFieldError(.missingData, "Certificate Value is missing")
            }
            if case .enumeration(let t)? = holder.child(KMIPTag.certificateType)?.value { spec.dataType = t } else { spec.dataType = 1 }
            material = der
        case .opaqueObject:
            guard case .byteString(let b)? = holder.child(KMIPTag.opaqueDataValue)?.value else {
                throw KMIPFieldError(.missingData, "Opaque Data Value is missing")
            }
            if case .enumeration(let t)? = holder.child(KMIPTag.opaqueDataType)?.value { spec.dataType = t }
            material = b
        }
        let m = try await engine.registerObject(ctx, project: nil, spec, material: SecretBytes(material))
        if state.undo { state.created.append(m.id) }
        state.idPlaceholder = m.id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(m.id))]
    }

    func get(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        var format: UInt32?
        if case .enumeration(let f)? = payload?.child(KMIPTag.keyFormatType)?.value { format = f }
        if let spec = payload?.child(KMIPTag.keyWrappingSpecification) {
            return try await getWrapped(id, spec, format: format, &state)
        }
        let (m, material) = try await engine.getObject(ctx, id: id)
        state.idPlaceholder = id
        guard let material else {
            throw KMIPFieldError(version >= ProtocolVersion(2, 0) ? .objectDestroyed : .itemNotFound, "the object's key material was destroyed")
        }
        let object: TTLVItem
        switch m.objectType {
        case .symmetricKey, .secretData, .publicKey, .privateKey, .splitKey:
            let registered = m.keyFormatType ?? (m.objectType == .secretData ? 2 : 1)
            // A Transparent Symmetric Key's bytes are stored raw; Get returns the format it was registered in.
            let stored = registered == 7 && m.objectType == .symmetricKey ? 1 : registered
            let f = format ?? registered
            let keyMaterial: TTLVItem
            if f == stored, (8...21).contains(stored), let km = Self.storedKeyMaterial(material.bytes) {
                keyMaterial = km
            } else if f != stored, let km = try Self.convertedKeyMaterial(material.bytes, m, stored: stored, wanted: f) {
                keyMaterial = km
            } else if f == stored || (f == 1 && m.objectType == .secretData && stored == 2) || (f == 2 && m.objectType == .secretData && stored == 1) {
                keyMaterial = TTLVItem(tag: KMIPTag.keyMaterial, .byteString(material.bytes))
            } else if f == 7, m.objectType == .symmetricKey, stored == 1 {
                keyMaterial = TTLVItem(tag: KMIPTag.keyMaterial, .structure([TTLVItem(tag: KMIPTag.key, .byteString(material.bytes))]))
            } else {
                throw KMIPFieldError(.keyFormatTypeNotSupported, "key format type \(f) is not available for this object (stored as \(stored))")
            }
            var block = [
                TTLVItem(tag: KMIPTag.keyFormatType, .enumeration(f)),
                TTLVItem(tag: KMIPTag.keyValue, .structure([keyMaterial])),
            ]
            if let a = m.algorithm { block.append(TTLVItem(tag: KMIPTag.cryptographicAlgorithm, .enumeration(a))) }
            if let l = m.cryptographicLength { block.append(TTLVItem(tag: KMIPTag.cryptographicLength, .integer(l))) }
            if let w = m.wrappingData, let item = try? TTLVDecoder(maxDepth: 8, maxMessageSize: 8192).decode(w) { block.append(item) }
            let blockItem = TTLVItem(tag: KMIPTag.keyBlock, .structure(block))
            var fields: [TTLVItem] = []
            if m.objectType == .secretData { fields.append(TTLVItem(tag: KMIPTag.secretDataType, .enumeration(m.dataType ?? 2))) }
            if m.objectType == .splitKey, let sk = m.splitKey {
                fields += [
                    TTLVItem(tag: KMIPTag.splitKeyParts, .integer(sk.parts)),
                    TTLVItem(tag: KMIPTag.keyPartIdentifier, .integer(sk.partIdentifier)),
                    TTLVItem(tag: KMIPTag.splitKeyThreshold, .integer(sk.threshold)),
                    TTLVItem(tag: KMIPTag.splitKeyMethod, .enumeration(sk.method)),
                ]
                if let p = sk.primeFieldSize { fields.append(TTLVItem(tag: KMIPTag.primeFieldSize, .bigInteger(p))) }
            }
            object = TTLVItem(tag: Self.holderTag(m.objectType), .structure(fields + [blockItem]))
        case .certificate:
            object = TTLVItem(
                tag: KMIPTag.certificate,
                .structure([
                    TTLVItem(tag: KMIPTag.certificateType, .enumeration(m.dataType ?? 1)),
                    TTLVItem(tag: KMIPTag.certificateValue, .byteString(material.bytes)),
                ]))
        case .opaqueObject:
            object = TTLVItem(
                tag: KMIPTag.opaqueObject,
                .structure([
                    TTLVItem(tag: KMIPTag.opaqueDataType, .enumeration(m.dataType ?? 0x8000_0000)),
                    TTLVItem(tag: KMIPTag.opaqueDataValue, .byteString(material.bytes)),
                ]))
        }
        return [
            TTLVItem(tag: KMIPTag.objectType, .enumeration(Self.kmipType(m.objectType).rawValue)),
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), object,
        ]
    }

    /// Get with a Key Wrapping Specification: Wrapping Method Encrypt, AES Key Wrap (Block Cipher Mode NIST Key
    /// Wrap, the default), no encoding. The Key Material is the wrapped bytes and the Key Block carries Key Wrapping Data.
    func getWrapped(_ id: String, _ spec: TTLVItem, format: UInt32?, _ state: inout BatchState) async throws -> [TTLVItem] {
        guard case .enumeration(let method)? = spec.child(KMIPTag.wrappingMethod)?.value, method == 1 else {
            throw KMIPFieldError(.featureNotSupported, "only the Encrypt wrapping method is supported")
        }
        guard let info = spec.child(KMIPTag.encryptionKeyInformation),
            case .textString(let kek)? = info.child(KMIPTag.uniqueIdentifier)?.value
        else { throw KMIPFieldError(.missingData, "Encryption Key Information with a Unique Identifier is required") }
        if case .enumeration(let mode)? = info.child(KMIPTag.cryptographicParameters)?.child(KMIPTag.blockCipherMode)?.value, mode != 13 {
            throw KMIPFieldError(.featureNotSupported, "keys are wrapped with NIST Key Wrap (block cipher mode 13) only")
        }
        if case .enumeration(let e)? = spec.child(KMIPTag.encodingOption)?.value, e != 1 {
            throw KMIPFieldError(.featureNotSupported, "only No Encoding is supported for wrapped keys")
        }
        guard spec.child(0x42004E) == nil else {
            throw KMIPFieldError(.featureNotSupported, "MAC/signature key information is not supported")
        }
        let (m, wrapped) = try await engine.getWrapped(ctx, id: id, wrappingKeyID: kek)
        state.idPlaceholder = id
        guard m.objectType == .symmetricKey || m.objectType == .secretData || m.objectType == .privateKey else {
            throw KMIPFieldError(.illegalOperation, "only keys and secret data can be wrapped")
        }
        let f = format ?? (m.keyFormatType == 7 ? 1 : m.keyFormatType ?? 1)
        var block = [
            TTLVItem(tag: KMIPTag.keyFormatType, .enumeration(f)),
            // KMIP 1.4 allows a wrapped Key Value to be a bare Byte String; PyKMIP only reads the Structure form, which
            // the spec also allows (Key Material holding the wrapped bytes).
            TTLVItem(tag: KMIPTag.keyValue, .structure([TTLVItem(tag: KMIPTag.keyMaterial, .byteString(wrapped))])),
        ]
        if let a = m.algorithm { block.append(TTLVItem(tag: KMIPTag.cryptographicAlgorithm, .enumeration(a))) }
        if let l = m.cryptographicLength { block.append(TTLVItem(tag: KMIPTag.cryptographicLength, .integer(l))) }
        block.append(
            TTLVItem(
                tag: KMIPTag.keyWrappingData,
                .structure([
                    TTLVItem(tag: KMIPTag.wrappingMethod, .enumeration(1)),
                    TTLVItem(
                        tag: KMIPTag.encryptionKeyInformation,
                        .structure([
                            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(kek)),
                            TTLVItem(
                                tag: KMIPTag.cryptographicParameters,
                                .structure([TTLVItem(tag: KMIPTag.blockCipherMode, .enumeration(13))])),
                        ])),
                    // Encoding Option omitted: No Encoding is its default.
                ])))
        var fields: [TTLVItem] = []
        if m.objectType == .secretData { fields.append(TTLVItem(tag: KMIPTag.secretDataType, .enumeration(m.dataType ?? 2))) }
        return [
            TTLVItem(tag: KMIPTag.objectType, .enumeration(Self.kmipType(m.objectType).rawValue)),
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)),
            TTLVItem(tag: Self.holderTag(m.objectType), .structure(fields + [TTLVItem(tag: KMIPTag.keyBlock, .structure(block))])),
        ]
    }

    func getAttributes(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        let m = try await engine.objectAttributes(ctx, id: id)
        state.idPlaceholder = id
        var wanted = Set<String>()
        for n in payload?.children(KMIPTag.attributeName) ?? [] { if case .textString(let s) = n.value { wanted.insert(s) } }
        for r in payload?.children(KMIPTag.attributeReference) ?? [] {
            if case .enumeration(let tag) = r.value, let name = KMIPAttribute.namesByTag[tag] { wanted.insert(name) }
        }
        // Asked for everything: the protection flags (added in KMIP 1.4) only where they differ from their defaults,
        // as the reference server answers; GetAttributeList names them and asking by name returns them.
        let all = Self.attributes(m).filter {
            wanted.isEmpty ? !Self.isDefaultFlag($0) : wanted.contains($0.name)
        }
        let encoded = KMIPAttributeCodec.encode(all, version: version)
        let idItem = TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))
        return version.major >= 2 ? [idItem, TTLVItem(tag: KMIPTag.attributes, .structure(encoded))] : [idItem] + encoded
    }

    func getAttributeList(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        let m = try await engine.objectAttributes(ctx, id: id)
        state.idPlaceholder = id
        var seen = Set<String>()
        let names = Self.attributes(m).map(\.name).filter { seen.insert($0).inserted }
        let items: [TTLVItem] =
            version.major >= 2
            ? names.compactMap { KMIPAttribute.tagsByName[$0] }.map { TTLVItem(tag: KMIPTag.attributeReference, .enumeration($0)) }
            : names.map { TTLVItem(tag: KMIPTag.attributeName, .textString($0)) }
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))] + items
    }

    /// Client attributes an object has at most one of (KMIP 2.1 §4: "multiple instances permitted: no").
    static let singleValued: Set<String> = ["Contact Information", "Description", "Comment", "Operation Policy Name"]

    /// The attribute an Add/Modify/Delete Attribute request names: 1.x `Attribute` (name, index, value) or 2.x
    /// `New Attribute` / `Current Attribute` (a tagged item) / `Attribute Reference`.
    static func requestedAttribute(_ payload: TTLVItem?) -> (name: String, index: Int?, value: TTLVValue?)? {
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
            if let item = payload?.child(holderTag)?.children.first, let name = KMIPAttribute.namesByTag[item.tag] {
                return (name, nil, item.value)
            }
        }
        if case .enumeration(let tag)? = payload?.child(KMIPTag.attributeReference)?.value, let name = KMIPAttribute.namesByTag[tag] {
            return (name, nil, nil)
        }
        return nil
    }

    enum AttributeChange: Sendable { case add, modify, delete }

    /// Add/Modify/Delete Attribute (KMIP 1.4 §4.13–4.15, 2.1 §6.1.3/6.1.31/6.1.13) on names, object groups and
    /// client attributes; everything else is read-only.
    func changeAttribute(_ payload: TTLVItem?, _ change: AttributeChange, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        try await beforeChange(id, &state)
        guard let (name, index, value) = Self.requestedAttribute(payload) else {
            throw KMIPFieldError(.missingData, "the attribute to change is missing")
        }
        if name == "Sensitive" || name == "Extractable" {
            return try await changeFlag(id, name, value, change, &state)
        }
        let editable = name == "Name" || name == "Object Group" || Self.isClientAttribute(name)
        guard editable else {
            throw KMIPFieldError(version >= ProtocolVersion(2, 0) ? .attributeReadOnly : .permissionDenied, "attribute '\(name)' is read-only")
        }
        if change != .delete, value == nil { throw KMIPFieldError(.missingData, "Attribute Value is missing") }
        var stored: TTLVValue?
        if let value {
            switch name {
            case "Name":
                guard KMIPAttribute(name: name, value: value).nameText != nil else { throw KMIPFieldError("a Name needs a Name Value") }
            case "Object Group":
                guard case .textString = value else { throw KMIPFieldError("an Object Group is a text string") }
            default: break
            }
            stored = value
        }
        let newValue = stored
        // A name the object already has is not added twice.
        if change == .add, name == "Name", let text = newValue.flatMap({ KMIPAttribute(name: name, value: $0).nameText }),
            try await engine.objectAttributes(ctx, id: id).names.contains(text)
        {
            throw KMIPFieldError(version >= ProtocolVersion(2, 0) ? .nonUniqueNameAttribute : .illegalOperation, "the object already has that name")
        }
        if change == .add, Self.singleValued.contains(name), !(try await engine.objectAttributes(ctx, id: id).customAttributes?[name] ?? []).isEmpty {
            throw KMIPFieldError(
                version >= ProtocolVersion(2, 0) ? .attributeSingleValued : .illegalOperation, "attribute '\(name)' has a single value: modify it instead")
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
                guard values.indices.contains(at) else { throw EngineError(.notFound, "attribute '\(name)' has no instance \(at)") }
                result.withLock { $0 = (at, values[at]) }
                values.remove(at: at)
            }
            if change != .delete { result.withLock { $0 = (at, newValue) } }
            switch name {
            case "Name": e.names = values.compactMap { KMIPAttribute(name: name, value: $0).nameText }
            case "Object Group": e.objectGroups = values.compactMap { if case .textString(let t) = $0 { return t } else { return nil } }
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

    /// Sensitive / Extractable: single-valued booleans; Add and Modify set, Delete restores the default.
    func changeFlag(_ id: String, _ name: String, _ value: TTLVValue?, _ change: AttributeChange, _ state: inout BatchState) async throws
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
                    .structure([TTLVItem(tag: KMIPTag.attributeName, .textString(name)), TTLVItem(tag: KMIPTag.attributeValue, .boolean(flag))])))
        }
        return out
    }

    /// Attributes under one of CreateKeyPair's holders (1.x Template-Attribute or 2.x Attributes).
    static func attributes(in payload: TTLVItem?, _ tags: [UInt32]) -> [KMIPAttribute] {
        var out: [KMIPAttribute] = []
        for tag in tags {
            guard let holder = payload?.child(tag) else { continue }
            if tag == KMIPTag.commonAttributes || tag == KMIPTag.privateKeyAttributes || tag == KMIPTag.publicKeyAttributes {
                for item in holder.children {
                    if let name = KMIPAttribute.namesByTag[item.tag] { out.append(KMIPAttribute(name: name, value: item.value)) }
                }
            } else {
                out += KMIPAttributeCodec.read(TTLVItem(tag: 0, .structure([TTLVItem(tag: KMIPTag.templateAttribute, holder.value)])))
            }
        }
        return out
    }

    func createKeyPair(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let common = Self.attributes(in: payload, [KMIPTag.commonTemplateAttribute, KMIPTag.commonAttributes])
        let priv = Self.attributes(in: payload, [KMIPTag.privateKeyTemplateAttribute, KMIPTag.privateKeyAttributes])
        let pub = Self.attributes(in: payload, [KMIPTag.publicKeyTemplateAttribute, KMIPTag.publicKeyAttributes])
        var privateSpec = try Self.spec(.privateKey, common + priv)
        var publicSpec = try Self.spec(.publicKey, common + pub)
        guard let algorithm = privateSpec.algorithm ?? publicSpec.algorithm else {
            throw KMIPFieldError(.missingData, "Cryptographic Algorithm is required")
        }
        // Ed25519 has one size; an EC curve may be named by Cryptographic Domain Parameters instead of a length.
        guard let length = privateSpec.cryptographicLength ?? publicSpec.cryptographicLength ?? (algorithm == 0x37 ? 255 : nil) else {
            throw KMIPFieldError(.missingData, "Cryptographic Length (or a Recommended Curve) is required")
        }
        privateSpec.objectType = .privateKey
        publicSpec.objectType = .publicKey
        let (p, q) = try await engine.createKeyPair(
            ctx, project: nil, algorithm: algorithm, length: length, privateSpec: privateSpec, publicSpec: publicSpec)
        if state.undo { state.created += [p.id, q.id] }
        state.idPlaceholder = p.id
        return [
            TTLVItem(tag: KMIPTag.privateKeyUniqueIdentifier, .textString(p.id)),
            TTLVItem(tag: KMIPTag.publicKeyUniqueIdentifier, .textString(q.id)),
        ]
    }

    func deriveKey(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        guard case .enumeration(let rawType)? = payload?.child(KMIPTag.objectType)?.value, let type = Self.objectType(rawType) else {
            throw KMIPFieldError(.missingData, "Object Type is required")
        }
        let ids: [String] = (payload?.children(KMIPTag.uniqueIdentifier) ?? []).compactMap {
            if case .textString(let t) = $0.value { return t } else { return nil }
        }
        guard let baseID = ids.first ?? state.idPlaceholder else {
            throw KMIPFieldError(.missingData, "the base object's Unique Identifier is required")
        }
        guard ids.count <= 1 else { throw KMIPFieldError(.featureNotSupported, "derivation from several objects is not supported") }
        guard case .enumeration(let method)? = payload?.child(KMIPTag.derivationMethod)?.value else {
            throw KMIPFieldError(.missingData, "Derivation Method is required")
        }
        let dp = payload?.child(KMIPTag.derivationParameters)
        var p = DerivationParameters(method: method)
        if case .enumeration(let h)? = dp?.child(KMIPTag.cryptographicParameters)?.child(KMIPTag.hashingAlgorithm)?.value {
            p.hashingAlgorithm = h
        }
        p.derivationData = Self.bytes(dp, KMIPTag.derivationData)
        p.salt = Self.bytes(dp, KMIPTag.salt)
        if case .integer(let n)? = dp?.child(KMIPTag.iterationCount)?.value { p.iterationCount = Int(n) }
        p.initializationVector = Self.bytes(dp, KMIPTag.initializationVector)
        if let cp = dp?.child(KMIPTag.cryptographicParameters) {
            if case .enumeration(let v)? = cp.child(KMIPTag.cryptographicAlgorithm)?.value { p.algorithm = v }
            if case .enumeration(let v)? = cp.child(KMIPTag.blockCipherMode)?.value { p.blockCipherMode = v }
            if case .enumeration(let v)? = cp.child(KMIPTag.paddingMethod)?.value { p.paddingMethod = v }
        }
        let spec = try Self.spec(type, KMIPAttributeCodec.read(payload))
        let m = try await engine.deriveKey(ctx, project: nil, baseID: baseID, p, spec)
        if state.undo { state.created.append(m.id) }
        state.idPlaceholder = m.id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(m.id))]
    }

    /// The request's Cryptographic Parameters, or else the object's own Cryptographic Parameters attribute (the
    /// defaults a client registered with the key).
    func cryptographicParameters(_ payload: TTLVItem?, id: String) async throws -> TTLVItem? {
        if let cp = payload?.child(KMIPTag.cryptographicParameters) { return cp }
        let m = try await engine.objectAttributes(ctx, id: id)
        guard let stored = m.customAttributes?["Cryptographic Parameters"]?.first, let value = Self.load(stored),
            case .structure = value
        else { return nil }
        return TTLVItem(tag: KMIPTag.cryptographicParameters, value)
    }

    static func signatureParameters(_ cp: TTLVItem?) -> SignatureParameters {
        var p = SignatureParameters()
        guard let cp else { return p }
        if case .enumeration(let v)? = cp.child(KMIPTag.paddingMethod)?.value { p.paddingMethod = v }
        if case .enumeration(let v)? = cp.child(KMIPTag.hashingAlgorithm)?.value { p.hashingAlgorithm = v }
        // Digital Signature Algorithm names the hash (and for RSA the padding) at once.
        if case .enumeration(let v)? = cp.child(0x4200AE)?.value {
            let rsa: [UInt32: UInt32] = [3: 4, 4: 5, 5: 6, 6: 7, 7: 8]
            let ecdsa: [UInt32: UInt32] = [12: 4, 13: 5, 14: 6, 15: 7, 16: 8]
            if let h = rsa[v] {
                p.hashingAlgorithm = p.hashingAlgorithm ?? h
                p.paddingMethod = p.paddingMethod ?? 8
            } else if v == 8 {
                p.paddingMethod = p.paddingMethod ?? 10
            } else if let h = ecdsa[v] {
                p.hashingAlgorithm = p.hashingAlgorithm ?? h
            }
        }
        return p
    }

    func sign(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        guard let data = Self.bytes(payload, KMIPTag.data) else { throw KMIPFieldError(.missingData, "Data is required") }
        let signature = try await engine.sign(ctx, id: id, Self.signatureParameters(try await cryptographicParameters(payload, id: id)), data: data)
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), TTLVItem(tag: KMIPTag.signatureData, .byteString(signature))]
    }

    func signatureVerify(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        guard let data = Self.bytes(payload, KMIPTag.data), let signature = Self.bytes(payload, KMIPTag.signatureData) else {
            throw KMIPFieldError(.missingData, "Data and Signature Data are required")
        }
        let valid = try await engine.verify(ctx, id: id, Self.signatureParameters(try await cryptographicParameters(payload, id: id)), data: data, signature: signature)
        state.idPlaceholder = id
        return [
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)),
            TTLVItem(tag: KMIPTag.validityIndicator, .enumeration(valid ? 1 : 2)),
        ]
    }

    /// Certify (KMIP 1.4 §4.7 / 2.1 §6.1.7): a certificate from the project's `kmip` certificate profile for a public
    /// key (Unique Identifier; subject CN from a Certificate Subject CN attribute or the key's name) or a PKCS#10
    /// request (DER, or PEM as request type 3). The certificate's Name attributes come from the request's.
    func certify(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        var csr: [UInt8]?
        let requestValue = Self.bytes(payload, 0x420018) ?? Self.bytes(payload, 0x420140)
        if let requestValue {
            var type: UInt32 = 2
            if case .enumeration(let t)? = payload?.child(0x420019)?.value { type = t }
            switch type {
            case 2: csr = requestValue
            case 3:
                let text = String(decoding: requestValue, as: UTF8.self)
                let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
                guard let der = Data(base64Encoded: body) else { throw KMIPFieldError("the PEM certificate request does not decode") }
                csr = Array(der)
            default: throw KMIPFieldError(.featureNotSupported, "certificate requests are PKCS#10 (DER or PEM), not type \(type)")
            }
        }
        let attributes = KMIPAttributeCodec.read(payload)
        var commonName: String?
        var names: [String] = []
        for a in attributes {
            switch (a.name, a.value) {
            case ("Certificate Subject CN", .textString(let cn)): commonName = cn
            case ("Name", _): if let n = a.nameText { names.append(n) }
            default: break
            }
        }
        let keyID = csr == nil ? try uid(payload, state) : nil
        let m = try await engine.certify(ctx, project: nil, publicKeyID: keyID, csrDER: csr, commonName: commonName, names: names)
        if state.undo { state.created.append(m.id) }
        state.idPlaceholder = m.id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(m.id))]
    }

    /// ReKey (KMIP 1.4 §4.4 / 2.1 §6.1.42): a replacement symmetric key; Offset moves its dates. Template
    /// attributes are not taken (the replacement has the old key's).
    func reKey(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        var offset: TimeInterval?
        if case .interval(let v)? = payload?.child(0x420058)?.value { offset = TimeInterval(v) }
        guard KMIPAttributeCodec.read(payload).isEmpty else {
            throw KMIPFieldError(.featureNotSupported, "ReKey takes no template attributes: the replacement has the old key's")
        }
        try await beforeChange(id, &state)
        let m = try await engine.rekey(ctx, id: id, offset: offset)
        if state.undo { state.created.append(m.id) }
        state.idPlaceholder = m.id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(m.id))]
    }

    /// ReKey Key Pair (KMIP 1.4 §4.29 / 2.1 §6.1.43): a replacement pair for a private key and the public key it
    /// links to; Offset moves the dates. Template attributes are not taken (the replacements have the old keys').
    func reKeyKeyPair(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id: String
        if case .textString(let t)? = payload?.child(KMIPTag.privateKeyUniqueIdentifier)?.value {
            id = t
        } else if let placeholder = state.idPlaceholder {
            id = placeholder
        } else {
            throw KMIPFieldError(.missingData, "Private Key Unique Identifier is missing and no ID Placeholder is set")
        }
        var offset: TimeInterval?
        if case .interval(let v)? = payload?.child(0x420058)?.value { offset = TimeInterval(v) }
        let templates = Self.attributes(
            in: payload,
            [KMIPTag.commonTemplateAttribute, KMIPTag.commonAttributes, KMIPTag.privateKeyTemplateAttribute, KMIPTag.privateKeyAttributes,
             KMIPTag.publicKeyTemplateAttribute, KMIPTag.publicKeyAttributes])
        guard templates.isEmpty else {
            throw KMIPFieldError(.featureNotSupported, "ReKey Key Pair takes no template attributes: the replacements have the old keys'")
        }
        if state.undo {
            try await beforeChange(id, &state)
            let old = try await engine.objectAttributes(ctx, id: id)
            if let pub = old.links?.first(where: { $0.type == ObjectLink.publicKey }) { try await beforeChange(pub.id, &state) }
        }
        let (p, q) = try await engine.rekeyKeyPair(ctx, privateKeyID: id, offset: offset)
        if state.undo { state.created += [p.id, q.id] }
        state.idPlaceholder = p.id
        return [
            TTLVItem(tag: KMIPTag.privateKeyUniqueIdentifier, .textString(p.id)),
            TTLVItem(tag: KMIPTag.publicKeyUniqueIdentifier, .textString(q.id)),
        ]
    }

    func activate(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        try await beforeChange(id, &state)
        _ = try await engine.activateObject(ctx, id: id)
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }

    func revoke(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        try await beforeChange(id, &state)
        guard let reason = payload?.child(KMIPTag.revocationReason),
            case .enumeration(let code)? = reason.child(KMIPTag.revocationReasonCode)?.value
        else { throw KMIPFieldError(.missingData, "Revocation Reason is required") }
        var message: String?
        if case .textString(let m)? = reason.child(KMIPTag.revocationMessage)?.value { message = m }
        let occurrence = payload?.child(KMIPTag.compromiseOccurrenceDate).flatMap { Self.date($0.value) }
        _ = try await engine.revokeObject(ctx, id: id, reason: code, message: message, compromiseOccurrence: occurrence)
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }

    func destroy(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        try await beforeChange(id, &state)
        do {
            _ = try await engine.destroyObject(ctx, id: id)
        } catch let e as EngineError where e.code == .wrongState {
            // An Active object cannot be destroyed (KMIP 1.4 §4.21): the profiles' test cases expect Permission Denied.
            throw KMIPFieldError(.permissionDenied, e.message)
        }
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }

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
                guard let type = Self.objectType(t) else { return version >= ProtocolVersion(1, 3) ? [TTLVItem(tag: KMIPTag.locatedItems, .integer(0))] : [] }
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
                if case .enumeration(let h)? = parts.first(where: { $0.tag == KMIPTag.hashingAlgorithm })?.value, h != 6 {
                    return version >= ProtocolVersion(1, 3) ? [TTLVItem(tag: KMIPTag.locatedItems, .integer(0))] : []
                }
                filter.digest = value
            case (let name, let v) where Self.dateAttributes[name] != nil:
                // One instance: that second; two instances: an inclusive range (KMIP 1.4 §4.9).
                guard let field = Self.dateAttributes[name], let d = Self.date(v) else { throw KMIPFieldError("\(name) must be a date") }
                let seconds = Int64(d.timeIntervalSince1970.rounded(.down))
                if let range = filter.dateRanges[field] {
                    filter.dateRanges[field] = min(range.lowerBound, seconds)...max(range.lowerBound, seconds)
                } else {
                    filter.dateRanges[field] = seconds...seconds
                }
            case (let name, .textString(let text)) where Self.certificateNameComponent(name) != nil:
                guard let (issuer, type) = Self.certificateNameComponent(name) else { break }
                filter.certificateFields.append(
                    CertificateFieldCondition(issuer: issuer, component: CertificateFacts.NameComponent(type: type, value: text)))
            case ("Link", .structure(let parts)):
                // The server's link (a key pair's halves, ReKey) or a client's Link attribute with this value.
                guard case .enumeration(let type)? = parts.first(where: { $0.tag == 0x42004B })?.value,
                    case .textString(let id)? = parts.first(where: { $0.tag == 0x42004C })?.value
                else { throw KMIPFieldError("Link needs a Link Type and a Linked Object Identifier") }
                filter.links.append(LinkCondition(link: ObjectLink(type: type, id: id), clientValue: Self.store(a.value)))
            case (let name, let value) where Self.isClientAttribute(name):
                filter.customAttributes[name] = Self.store(value)
                // Objects without an Operation Policy Name are under the default policy (KMIP 1.x servers name it
                // "default"; PyKMIP locates by it).
                if name == "Operation Policy Name", value == .textString("default") { filter.customAttributeDefaults.insert(name) }
            default:
                throw KMIPFieldError(.featureNotSupported, "Locate cannot filter on '\(a.name)'")
            }
        }
        let ids = try await engine.locateObjects(ctx, project: nil, filter)
        // One object located: later items of the batch may act on it through the ID Placeholder. (Several: none
        // is picked for them; acting on an arbitrary one would be a silent mistake.)
        if ids.count == 1 { state.idPlaceholder = ids[0] }
        var out: [TTLVItem] = []
        if version >= ProtocolVersion(1, 3) { out.append(TTLVItem(tag: KMIPTag.locatedItems, .integer(Int32(ids.count)))) }
        return out + ids.map { TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString($0)) }
    }

    static func parameters(_ cp: TTLVItem?) -> CipherParameters {
        var p = CipherParameters()
        guard let cp else { return p }
        if case .enumeration(let v)? = cp.child(KMIPTag.blockCipherMode)?.value { p.blockCipherMode = v }
        if case .enumeration(let v)? = cp.child(KMIPTag.paddingMethod)?.value { p.paddingMethod = v }
        if case .integer(let v)? = cp.child(KMIPTag.tagLength)?.value { p.tagLength = Int(v) }
        if case .enumeration(let v)? = cp.child(KMIPTag.cryptographicAlgorithm)?.value { p.algorithm = v }
        if case .enumeration(let v)? = cp.child(KMIPTag.hashingAlgorithm)?.value { p.hashingAlgorithm = v }
        if case .enumeration(let v)? = cp.child(0x420102)?.value { p.maskGeneratorHashingAlgorithm = v }
        if case .byteString(let v)? = cp.child(0x420103)?.value { p.label = v }
        return p
    }

    static func bytes(_ payload: TTLVItem?, _ tag: UInt32) -> [UInt8]? {
        if case .byteString(let b)? = payload?.child(tag)?.value { return b }
        return nil
    }

    /// A streamed Encrypt/Decrypt step (KMIP 1.3+: Init Indicator, Correlation Value, Final Indicator), or nil for a
    /// one-shot request.
    func streamStep(
        _ payload: TTLVItem?, id: String, encrypt: Bool, _ parameters: CipherParameters, data: [UInt8], _ state: inout BatchState
    ) async throws -> [TTLVItem]? {
        guard let (correlation, final) = try Self.streaming(payload) else { return nil }
        let (r, next) = try await engine.cipherStep(
            ctx, id: id, encrypt: encrypt, parameters, data: data, iv: Self.bytes(payload, KMIPTag.ivCounterNonce),
            aad: Self.bytes(payload, KMIPTag.authenticatedEncryptionAdditionalData),
            tag: Self.bytes(payload, KMIPTag.authenticatedEncryptionTag), correlation: correlation, final: final)
        state.idPlaceholder = id
        var out = [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), TTLVItem(tag: KMIPTag.data, .byteString(r.data))]
        if let tag = r.tag { out.append(TTLVItem(tag: KMIPTag.authenticatedEncryptionTag, .byteString(tag))) }
        if let next { out.append(TTLVItem(tag: KMIPTag.correlationValue, .byteString(next))) }
        return out
    }

    func encrypt(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        guard let data = Self.bytes(payload, KMIPTag.data) else { throw KMIPFieldError(.missingData, "Data is required") }
        let parameters = Self.parameters(try await cryptographicParameters(payload, id: id))
        // A GCM tag length NIST SP 800-38D does not define: General Failure, as the KMIP CS-BC test cases expect.
        if parameters.blockCipherMode == 9, let t = parameters.tagLength, !(t == 4 || t == 8 || (12...16).contains(t)) {
            throw KMIPFieldError(.generalFailure, "GCM tags are 4, 8 or 12–16 bytes, not \(t)")
        }
        if let streamed = try await streamStep(payload, id: id, encrypt: true, parameters, data: data, &state) { return streamed }
        let r = try await engine.encrypt(
            ctx, id: id, parameters, data: data, iv: Self.bytes(payload, KMIPTag.ivCounterNonce),
            aad: Self.bytes(payload, KMIPTag.authenticatedEncryptionAdditionalData))
        state.idPlaceholder = id
        var out = [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), TTLVItem(tag: KMIPTag.data, .byteString(r.data))]
        if let iv = r.iv { out.append(TTLVItem(tag: KMIPTag.ivCounterNonce, .byteString(iv))) }
        if let tag = r.tag { out.append(TTLVItem(tag: KMIPTag.authenticatedEncryptionTag, .byteString(tag))) }
        return out
    }

    func decrypt(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        guard let data = Self.bytes(payload, KMIPTag.data) else { throw KMIPFieldError(.missingData, "Data is required") }
        let parameters = Self.parameters(try await cryptographicParameters(payload, id: id))
        let iv = Self.bytes(payload, KMIPTag.ivCounterNonce)
        if let streamed = try await streamStep(payload, id: id, encrypt: false, parameters, data: data, &state) { return streamed }
        // A block cipher mode with an IV (CBC, CTR, GCM, …) cannot decrypt without one: the request is incomplete
        // (Invalid Message, as the KMIP test cases expect), not merely a wrong field.
        if iv == nil, let mode = parameters.blockCipherMode, mode != 2, !(12...19).contains(mode) {
            throw KMIPFieldError(.invalidMessage, "decrypting in block cipher mode \(mode) needs the IV/Counter/Nonce")
        }
        let r = try await engine.decrypt(
            ctx, id: id, parameters, data: data, iv: iv,
            aad: Self.bytes(payload, KMIPTag.authenticatedEncryptionAdditionalData),
            tag: Self.bytes(payload, KMIPTag.authenticatedEncryptionTag))
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), TTLVItem(tag: KMIPTag.data, .byteString(r.data))]
    }

    func mac(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        let data = Self.bytes(payload, KMIPTag.data)
        let parameters = Self.parameters(try await cryptographicParameters(payload, id: id))
        state.idPlaceholder = id
        if let (correlation, final) = try Self.streaming(payload) {
            // Streamed MAC (KMIP 1.3 §4.33): MAC Data with the last step, a Correlation Value with the others.
            let (mac, next) = try await engine.macStep(ctx, id: id, parameters, data: data ?? [], correlation: correlation, final: final)
            var out = [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
            if let mac { out.append(TTLVItem(tag: KMIPTag.macData, .byteString(mac))) }
            if let next { out.append(TTLVItem(tag: KMIPTag.correlationValue, .byteString(next))) }
            return out
        }
        guard let data else { throw KMIPFieldError(.missingData, "Data is required") }
        let out = try await engine.mac(ctx, id: id, parameters, data: data)
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), TTLVItem(tag: KMIPTag.macData, .byteString(out))]
    }

    /// The streaming fields of a request (KMIP 1.3+): nil for a one-shot request, else the Correlation Value (nil on
    /// the first step, which has Init Indicator) and whether this is the last step (Final Indicator).
    public static func streaming(_ payload: TTLVItem?) throws -> (correlation: [UInt8]?, final: Bool)? {
        let initial = payload?.child(KMIPTag.initIndicator)?.value == .boolean(true)
        let correlation = bytes(payload, KMIPTag.correlationValue)
        guard initial || correlation != nil else { return nil }
        guard !(initial && correlation != nil) else {
            throw KMIPFieldError("a streamed operation starts (Init Indicator) or continues (Correlation Value), not both")
        }
        return (correlation, payload?.child(KMIPTag.finalIndicator)?.value == .boolean(true))
    }

    /// Get Usage Allocation (KMIP 1.4 §4.17): takes Usage Limits Count units from the key's Usage Limits.
    func getUsageAllocation(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        try await beforeChange(id, &state)
        guard case .longInteger(let amount)? = payload?.child(0x420096)?.value else {
            throw KMIPFieldError(.missingData, "Usage Limits Count is required")
        }
        _ = try await engine.allocateUsage(ctx, id: id, amount: amount)
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }

    /// Check (KMIP 1.0 §4.10 / 2.1 §6.1.8): may the object be used for this Cryptographic Usage Mask now, and has
    /// it this much of its Usage Limits left? (Leases are advisory here: nothing to check.)
    func check(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        let m = try await engine.objectAttributes(ctx, id: id)
        state.idPlaceholder = id
        if case .longInteger(let wanted)? = payload?.child(0x420096)?.value, let limits = m.usageLimits, limits.count < wanted {
            throw KMIPFieldError(.permissionDenied, "the object's Usage Limits have \(limits.count) left")
        }
        if case .integer(let mask)? = payload?.child(KMIPTag.cryptographicUsageMask)?.value {
            guard UInt32(bitPattern: mask) & ~m.usageMask == 0 else {
                throw KMIPFieldError(
                    version >= ProtocolVersion(2, 0) ? .incompatibleCryptographicUsageMask : .illegalOperation,
                    "the object's Cryptographic Usage Mask does not allow that use")
            }
            guard m.state == .active else {
                throw KMIPFieldError(version >= ProtocolVersion(2, 0) ? .wrongKeyLifecycleState : .illegalOperation, "the object is not active")
            }
        }
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
    }

    func macVerify(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        guard let data = Self.bytes(payload, KMIPTag.data), let mac = Self.bytes(payload, KMIPTag.macData) else {
            throw KMIPFieldError(.missingData, "Data and MAC Data are required")
        }
        let valid = try await engine.macVerify(ctx, id: id, Self.parameters(try await cryptographicParameters(payload, id: id)), data: data, mac: mac)
        state.idPlaceholder = id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), TTLVItem(tag: KMIPTag.validityIndicator, .enumeration(valid ? 1 : 2))]
    }
}

/// The INTEGERs of a DER SEQUENCE of INTEGERs (PKCS#1 RSAPrivateKey), as unsigned big-endian bytes.
enum DERIntegers {
    static func read(_ der: [UInt8]) -> [[UInt8]]? {
        var i = 0
        func length() -> Int? {
            guard i < der.count else { return nil }
            let first = der[i]
            i += 1
            if first < 0x80 { return Int(first) }
            let n = Int(first & 0x7F)
            guard n >= 1, n <= 4, i + n <= der.count else { return nil }
            var v = 0
            for _ in 0..<n {
                v = v << 8 | Int(der[i])
                i += 1
            }
            return v
        }
        guard der.first == 0x30 else { return nil }
        i = 1
        guard let total = length(), i + total == der.count else { return nil }
        var out: [[UInt8]] = []
        while i < der.count {
            guard der[i] == 0x02 else { return nil }
            i += 1
            guard let n = length(), i + n <= der.count else { return nil }
            out.append(Array(der[i..<(i + n)].drop { $0 == 0 }))
            i += n
        }
        return out
    }
}
