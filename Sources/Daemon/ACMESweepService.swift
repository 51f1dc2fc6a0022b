import Engine
import Logging
import ServiceLifecycle

/// Deletes the replay records of expired ACME nonces every minute (each ACME request leaves one), so they do not
/// pile up in the store. Every node may run it; concurrent sweeps only find less to delete.
struct ACMESweepService: Service {
    let engine: GatehouseEngine
    let logger: Logger
    var interval: Duration = .seconds(60)

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let n = try await engine.acmeSweep()
                if n > 0 { logger.debug("swept expired ACME nonces", metadata: ["count": "\(n)"]) }
            } catch {
                logger.warning("ACME nonce sweep failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
