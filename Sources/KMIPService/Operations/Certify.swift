import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// Certify (§4.7): a certificate for a public key or a PKCS#10 request.
extension KMIPKeyOperations {
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
                guard let der = try? Base64.decode(string: body) else {
                    throw KMIPFieldError("the PEM certificate request does not decode")
                }
                csr = der
            default:
                throw KMIPFieldError(
                    .featureNotSupported, "certificate requests are PKCS#10 (DER or PEM), not type \(type)")
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
        let m = try await engine.certify(
            ctx, project: nil, publicKeyID: keyID, csrDER: csr, commonName: commonName, names: names)
        if state.undo { state.created.append(m.id) }
        state.idPlaceholder = m.id
        return [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(m.id))]
    }
}
