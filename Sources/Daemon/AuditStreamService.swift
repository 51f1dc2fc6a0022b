import Engine
import EngineAPI
import Foundation
import Logging
import ServerSupport
import ServiceLifecycle

/// Streams audit events to an HTTP endpoint (`[audit] stream_url`, bearer `stream_token`) in the background.
///
/// Batches of up to 100 events are POSTed as `{"events":[{"chain":…,"sequence":…,"hash":…,"event":{…}}]}`; a 2xx answer
/// advances a cursor kept in the store, anything else is retried with exponential backoff (1 s … 60 s). Requests
/// never wait for it. Delivery is at-least-once (receivers de-duplicate by `chain` and `sequence`): several nodes sharing a
/// store may send the same batch.
struct AuditStreamService: Service {
    let engine: GatehouseEngine
    let client: WebhookClient
    let logger: Logger
    var pollInterval: Duration = .seconds(1)
    /// The store key of this stream's cursor.
    var cursorName = AuditService.streamCursorKey
    /// Only events of these types (exact, or prefixes ending in `.`); nil: every event.
    var types: [String]? = nil

    func wanted(_ type: String) -> Bool {
        guard let types else { return true }
        return types.contains { $0.hasSuffix(".") ? type.hasPrefix($0) : type == $0 }
    }

    struct Item: Encodable {
        var chain: String
        var sequence: Int64
        var hash: String
        var event: AuditEvent
    }
    struct Batch: Encodable { var events: [Item] }

    func run() async throws {
        var backoff: Duration = .seconds(1)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let cursor = try await engine.auditStreamCursor(name: cursorName)
                let page = try await engine.auditEvents(.system("audit-stream"), cursor: cursor, limit: 100)
                let events = page.items
                if events.isEmpty {
                    try await Task.sleep(for: pollInterval)
                    continue
                }
                let selected = events.filter { wanted($0.event.event.type) }
                if !selected.isEmpty {
                    let body = try encoder.encode(
                        Batch(
                            events: selected.map {
                                Item(chain: $0.chain, sequence: $0.sequence, hash: $0.hash, event: $0.event)
                            }))
                    let status = try await client.post(Array(body))
                    guard (200..<300).contains(status) else {
                        throw WebhookClient.Failure(description: "endpoint answered \(status)")
                    }
                }
                if let next = page.next { try await engine.advanceAuditStreamCursor(to: next, name: cursorName) }
                backoff = .seconds(1)
            } catch is CancellationError {
                return
            } catch {
                logger.warning(
                    "audit stream delivery failed; will retry",
                    metadata: ["error": "\(error)", "retryIn": "\(backoff)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(60))
            }
        }
    }
}
