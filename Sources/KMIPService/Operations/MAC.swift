import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// MAC (§4.33).
extension KMIPKeyOperations {
    func mac(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        let data = Self.bytes(payload, KMIPTag.data)
        let parameters = Self.parameters(try await cryptographicParameters(payload, id: id))
        state.idPlaceholder = id
        if let (correlation, final) = try Self.streaming(payload) {
            // Streamed MAC (KMIP 1.3 §4.33): MAC Data with the last step, a Correlation Value with the others.
            let (mac, next) = try await engine.macStep(
                ctx, id: id, parameters, data: data ?? [], correlation: correlation, final: final)
            var out = [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))]
            if let mac { out.append(TTLVItem(tag: KMIPTag.macData, .byteString(mac))) }
            if let next { out.append(TTLVItem(tag: KMIPTag.correlationValue, .byteString(next))) }
            return out
        }
        guard let data else { throw KMIPFieldError(.missingData, "Data is required") }
        let out = try await engine.mac(ctx, id: id, parameters, data: data)
        return [
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)), TTLVItem(tag: KMIPTag.macData, .byteString(out)),
        ]
    }

    /// The streaming fields of a request (KMIP 1.3+): nil for a one-shot request, else the Correlation Value (nil on
    /// the first step, which has Init Indicator) and whether this is the last step (Final Indicator).
    public static func streaming(_ payload: TTLVItem?) throws -> (correlation: [UInt8]?, final: Bool)? {
        let initial = payload?.child(KMIPTag.initIndicator)?.value == .boolean(true)
        let correlation = bytes(payload, KMIPTag.correlationValue)
        guard initial || correlation != nil else { return nil }
        guard !(initial && correlation != nil) else {
            throw KMIPFieldError(
                "a streamed operation starts (Init Indicator) or continues (Correlation Value), not both")
        }
        return (correlation, payload?.child(KMIPTag.finalIndicator)?.value == .boolean(true))
    }
}
