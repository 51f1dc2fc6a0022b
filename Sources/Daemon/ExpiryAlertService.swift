import Engine
import EngineAPI
import Foundation
import Logging
import ServerSupport
import ServiceLifecycle

/// Runs the certificate expiry alerts on a schedule (`pki.alert_interval`): claims due notices from the engine
/// (each once across all nodes), posts each to its rule's webhook recipients and logs it, then confirms delivery.
/// A notice whose delivery failed is claimed again by a later run (on this or another node).
struct ExpiryAlertService: Service {
    let engine: GatehouseEngine
    let interval: Duration
    let logger: Logger

    struct Payload: Encodable {
        struct Alert: Encodable {
            var id: String
            var name: String
        }
        struct Cert: Encodable {
            var serialNumber: String
            var commonName: String
            var notAfter: String
            var project: String
        }
        var type = "certificate.expiring"
        var alert: Alert
        var certificate: Cert
    }

    func run() async throws {
        let ctx = CallContext(principal: .system, frontEnd: "scheduler", requestID: "expiry-alerts")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Retry a claim after twice the interval (at least a minute): long enough that a slow delivery on another
        // node is not duplicated, short enough that a crashed node's claims are picked up.
        let retryAfter = max(
            60, 2 * (Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18))
        // Notices this node claimed but could not deliver: retried by the next run here (another node takes them
        // over only if this one stops confirming for `retryAfter`).
        var undelivered: [ExpiryNotice] = []
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let retry = undelivered
                undelivered = []
                for notice in retry + (try await engine.claimExpiryNotices(ctx, retryAfter: retryAfter)) {
                    logger.notice(
                        "certificate expiring",
                        metadata: [
                            "alert": "\(notice.alertName)", "serialNumber": "\(notice.serialNumber)",
                            "commonName": "\(notice.commonName)", "notAfter": "\(notice.notAfter)",
                            "project": "\(notice.project)",
                        ])
                    let body = try encoder.encode(
                        Payload(
                            alert: .init(id: notice.alertId, name: notice.alertName),
                            certificate: .init(
                                serialNumber: notice.serialNumber, commonName: notice.commonName,
                                notAfter: notice.notAfter.formatted(.iso8601), project: notice.project)))
                    var delivered = true
                    for recipient in notice.recipients {
                        guard let url = URL(string: recipient) else { continue }
                        let status = try? await WebhookClient(url: url, bearerToken: nil).post(Array(body))
                        if !(200..<300).contains(status ?? 0) {
                            delivered = false
                            logger.warning(
                                "expiry alert delivery failed",
                                metadata: ["recipient": "\(url.host ?? "")", "status": "\(status ?? 0)"])
                        }
                    }
                    if delivered {
                        try await engine.confirmExpiryNotice(ctx, id: notice.id)
                    } else {
                        undelivered.append(notice)
                    }
                }
            } catch {
                logger.warning("expiry alert run failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
