import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Register (§4.3): an object the client supplies.
extension KMIPKeyOperations {
    func register(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        guard case .enumeration(let rawType)? = payload?.child(KMIPTag.objectType)?.value,
            let type = Self.objectType(rawType)
        else { throw KMIPFieldError("Register takes keys, certificates, secret data, split keys and opaque objects") }
        let attributes = KMIPAttributeCodec.read(payload)
        var spec = try Self.spec(type, attributes)
        guard let holder = payload?.child(Self.holderTag(type)) else {
            throw KMIPFieldError(.missingData, "the object to register is missing")
        }
        let material: [UInt8]
        switch type {
        case .symmetricKey, .secretData, .publicKey, .privateKey, .splitKey:
            guard let block = holder.child(KMIPTag.keyBlock) else {
                throw KMIPFieldError(.missingData, "the object's Key Block is missing")
            }
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
            } else if type == .symmetricKey,
                case .byteString(let b)? = keyValue?.child(KMIPTag.keyMaterial)?.child(KMIPTag.key)?.value
            {
                material = b  // Transparent Symmetric Key: stored raw, returned as registered
            } else if let km = keyValue?.child(KMIPTag.keyMaterial),
                let der = Self.transparentRSA(km, type: type, format: format)
            {
                material = der  // Transparent RSA keys: stored (and returned) as PKCS#1 DER
                spec.keyFormatType = 3
            } else if let km = keyValue?.child(KMIPTag.keyMaterial), case .structure = km.value,
                (8...21).contains(format)
            {
                // Other transparent keys (DSA, DH, EC, ECDH, ECMQV) are kept as their Key Material structure and
                // returned as registered; the server does no cryptography with them.
                material = TTLVEncoder.encode(km)
            } else if case .byteString(let b)? = keyValue?.value {
                material = b  // 1.x allows Key Value as a byte string
            } else {
                throw KMIPFieldError(
                    .keyFormatTypeNotSupported, "only byte-string key material can be registered (format \(format))")
            }
            if case .enumeration(let a)? = block.child(KMIPTag.cryptographicAlgorithm)?.value, spec.algorithm == nil {
                spec.algorithm = a
            }
            if case .integer(let l)? = block.child(KMIPTag.cryptographicLength)?.value, spec.cryptographicLength == nil
            {
                spec.cryptographicLength = l
            }
            if spec.cryptographicLength == nil, type == .symmetricKey {
                spec.cryptographicLength = Int32(material.count * 8)
            }
            try Self.checkQuantumSafe(spec, attributes, known: true)
            if type == .splitKey {
                guard case .integer(let parts)? = holder.child(KMIPTag.splitKeyParts)?.value,
                    case .integer(let part)? = holder.child(KMIPTag.keyPartIdentifier)?.value,
                    case .integer(let threshold)? = holder.child(KMIPTag.splitKeyThreshold)?.value,
                    case .enumeration(let method)? = holder.child(KMIPTag.splitKeyMethod)?.value
                else {
                    throw KMIPFieldError(.missingData, "a Split Key needs parts, part identifier, threshold and method")
                }
                var prime: [UInt8]?
                if case .bigInteger(let p)? = holder.child(KMIPTag.primeFieldSize)?.value { prime = p }
                spec.splitKey = SplitKeyInfo(
                    parts: parts, partIdentifier: part, threshold: threshold, method: method, primeFieldSize: prime)
            }
        case .certificate:
            guard case .byteString(let der)? = holder.child(KMIPTag.certificateValue)?.value else {
                throw KMIPFieldError(.missingData, "Certificate Value is missing")
            }
            if case .enumeration(let t)? = holder.child(KMIPTag.certificateType)?.value {
                spec.dataType = t
            } else {
                spec.dataType = 1
            }
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
}
