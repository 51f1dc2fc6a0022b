import Engine
import Logging
import ServiceLifecycle

/// Regenerates CRLs that passed half their lifetime, every ten minutes, so relying parties that fetch the CRL
/// from the distribution point never see an expired one. Several nodes may run it; each regeneration is one
/// transaction (a concurrent one loses on the record version and is retried by the engine).
struct CRLRefreshService: Service {
    let engine: GatehouseEngine
    let logger: Logger
    var interval: Duration = .seconds(600)

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let n = try await engine.refreshCRLs()
                if n > 0 { logger.info("regenerated CRLs", metadata: ["count": "\(n)"]) }
            } catch {
                logger.warning("CRL refresh failed", metadata: ["error": "\(error)"])
            }
            // Graceful shutdown cancels the wait at once.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
