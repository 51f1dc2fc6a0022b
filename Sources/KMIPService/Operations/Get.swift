import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Get (§4.11), with key wrapping (Key Wrapping Specification) and key format conversion.
extension KMIPKeyOperations {
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
            throw KMIPFieldError(
                version >= ProtocolVersion(2, 0) ? .objectDestroyed : .itemNotFound,
                "the object's key material was destroyed")
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
            } else if f != stored, let km = try Self.convertedKeyMaterial(material.bytes, m, stored: stored, wanted: f)
            {
                keyMaterial = km
            } else if f == stored || (f == 1 && m.objectType == .secretData && stored == 2)
                || (f == 2 && m.objectType == .secretData && stored == 1)
            {
                keyMaterial = TTLVItem(tag: KMIPTag.keyMaterial, .byteString(material.bytes))
            } else if f == 7, m.objectType == .symmetricKey, stored == 1 {
                keyMaterial = TTLVItem(
                    tag: KMIPTag.keyMaterial, .structure([TTLVItem(tag: KMIPTag.key, .byteString(material.bytes))]))
            } else {
                throw KMIPFieldError(
                    .keyFormatTypeNotSupported,
                    "key format type \(f) is not available for this object (stored as \(stored))")
            }
            var block = [
                TTLVItem(tag: KMIPTag.keyFormatType, .enumeration(f)),
                TTLVItem(tag: KMIPTag.keyValue, .structure([keyMaterial])),
            ]
            if let a = m.algorithm { block.append(TTLVItem(tag: KMIPTag.cryptographicAlgorithm, .enumeration(a))) }
            if let l = m.cryptographicLength { block.append(TTLVItem(tag: KMIPTag.cryptographicLength, .integer(l))) }
            if let w = m.wrappingData, let item = try? TTLVDecoder(maxDepth: 8, maxMessageSize: 8192).decode(w) {
                block.append(item)
            }
            let blockItem = TTLVItem(tag: KMIPTag.keyBlock, .structure(block))
            var fields: [TTLVItem] = []
            if m.objectType == .secretData {
                fields.append(TTLVItem(tag: KMIPTag.secretDataType, .enumeration(m.dataType ?? 2)))
            }
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
    func getWrapped(_ id: String, _ spec: TTLVItem, format: UInt32?, _ state: inout BatchState) async throws
        -> [TTLVItem]
    {
        guard case .enumeration(let method)? = spec.child(KMIPTag.wrappingMethod)?.value, method == 1 else {
            throw KMIPFieldError(.featureNotSupported, "only the Encrypt wrapping method is supported")
        }
        guard let info = spec.child(KMIPTag.encryptionKeyInformation),
            case .textString(let kek)? = info.child(KMIPTag.uniqueIdentifier)?.value
        else { throw KMIPFieldError(.missingData, "Encryption Key Information with a Unique Identifier is required") }
        if case .enumeration(let mode)? = info.child(KMIPTag.cryptographicParameters)?.child(KMIPTag.blockCipherMode)?
            .value, mode != 13
        {
            throw KMIPFieldError(
                .featureNotSupported, "keys are wrapped with NIST Key Wrap (block cipher mode 13) only")
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
        if m.objectType == .secretData {
            fields.append(TTLVItem(tag: KMIPTag.secretDataType, .enumeration(m.dataType ?? 2)))
        }
        return [
            TTLVItem(tag: KMIPTag.objectType, .enumeration(Self.kmipType(m.objectType).rawValue)),
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)),
            TTLVItem(
                tag: Self.holderTag(m.objectType),
                .structure(fields + [TTLVItem(tag: KMIPTag.keyBlock, .structure(block))])),
        ]
    }
}
