import Crypto
import EngineAPI
import ExtrasBase64
import Foundation
import KMIPProtocol
import Synchronization
import TTLV
import _CryptoExtras

/// MAC Verify (§4.34).
extension KMIPKeyOperations {
    func macVerify(_ payload: TTLVItem?, _ state: inout BatchState) async throws -> [TTLVItem] {
        let id = try uid(payload, state)
        guard let data = Self.bytes(payload, KMIPTag.data), let mac = Self.bytes(payload, KMIPTag.macData) else {
            throw KMIPFieldError(.missingData, "Data and MAC Data are required")
        }
        let valid = try await engine.macVerify(
            ctx, id: id, Self.parameters(try await cryptographicParameters(payload, id: id)), data: data, mac: mac)
        state.idPlaceholder = id
        return [
            TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id)),
            TTLVItem(tag: KMIPTag.validityIndicator, .enumeration(valid ? 1 : 2)),
        ]
    }
}
