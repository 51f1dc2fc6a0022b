import EngineAPI
import KMIPProtocol
import TTLV

/// Turns one framed request into one framed response. Every failure becomes a KMIP result (Invalid Message,
/// Operation Not Supported, Response Too Large, …); `closeConnection` is set when the bytes were not even TTLV,
/// after which the stream cannot be trusted.
public struct KMIPDispatcher: Sendable {
    public var maxMessageSize: Int
    public var clock: @Sendable () -> Int64

    public init(maxMessageSize: Int, clock: @escaping @Sendable () -> Int64) {
        self.maxMessageSize = maxMessageSize
        self.clock = clock
    }

    /// Operations this build answers. Key lifecycle and crypto operations arrive with the engine's key API.
    public static let supportedOperations: [KMIPOperation] = [.discoverVersions, .query]
    public static let vendor = "Gatehouse"

    public func process(_ bytes: [UInt8], principal: Principal) -> (response: [UInt8], closeConnection: Bool) {
        let fallback = ProtocolVersion(1, 0)
        let item: TTLVItem
        do {
            item = try TTLVDecoder(maxDepth: 32, maxMessageSize: maxMessageSize).decode(bytes)
        } catch {
            let r = KMIPResponse.encode(
                version: fallback, timestamp: clock(),
                results: [.failure(nil, .invalidMessage, "malformed TTLV: \(error)")])
            return (r, true)
        }
        let request: KMIPRequest
        do {
            request = try KMIPRequest(item)
        } catch let e as KMIPRequest.Invalid {
            return (KMIPResponse.encode(version: e.version ?? fallback, timestamp: clock(), results: [.failure(nil, .invalidMessage, e.description)]), false)
        } catch {
            return (KMIPResponse.encode(version: fallback, timestamp: clock(), results: [.failure(nil, .invalidMessage, "invalid request")]), false)
        }
        guard ProtocolVersion.supported.contains(request.protocolVersion) else {
            // Answer in the newest version we have that is not newer than the client's, so it can parse the error.
            let answerVersion = ProtocolVersion.supported.first { $0 < request.protocolVersion } ?? fallback
            return (
                KMIPResponse.encode(
                    version: answerVersion, timestamp: clock(),
                    results: [.failure(nil, .invalidMessage, "protocol version \(request.protocolVersion) is not supported")]), false
            )
        }
        var results: [KMIPBatchResult] = []
        for batchItem in request.items {
            let result = handle(batchItem, version: request.protocolVersion)
            results.append(result)
            // Batch Error Continuation Option: 1 Continue; 2 Stop (default); 3 Undo (treated as Stop: nothing here
            // changes state yet).
            if result.status != .success && request.batchErrorContinuation != 1 { break }
        }
        var response = KMIPResponse.encode(version: request.protocolVersion, timestamp: clock(), results: results)
        if let max = request.maximumResponseSize, max > 0, response.count > Int(max) {
            response = KMIPResponse.encode(
                version: request.protocolVersion, timestamp: clock(),
                results: [.failure(request.items.first, .responseTooLarge, "the response is \(response.count) bytes, over the requested maximum \(max)")])
        }
        return (response, false)
    }

    func handle(_ item: KMIPRequest.BatchItem, version: ProtocolVersion) -> KMIPBatchResult {
        guard let operation = item.operation else {
            return .failure(item, .operationNotSupported, "unknown operation \(item.operationCode)")
        }
        switch operation {
        case .discoverVersions:
            return KMIPBatchResult(
                operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                payload: KMIPProtocolOperations.discoverVersions(item.payload))
        case .query:
            return KMIPBatchResult(
                operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                payload: KMIPProtocolOperations.query(
                    item.payload, operations: Self.supportedOperations, objectTypes: [], vendor: Self.vendor))
        default:
            return .failure(item, .operationNotSupported, "operation \(operation) is not supported by this server yet")
        }
    }
}
