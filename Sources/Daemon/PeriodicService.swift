import Engine
import Logging
import ServiceLifecycle
import Synchronization

/// Runs `work` at start and then every `interval` until shutdown (which cancels the wait at once); a failure is
/// logged and the work runs again at the next tick. Every node of a shared store may run the same work: each run is
/// made of ordinary engine transactions, so concurrent runs only find less to do.
struct PeriodicService: Service {
    let name: String
    let interval: Duration
    let logger: Logger
    let work: @Sendable () async throws -> Void

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await work()
            } catch {
                logger.warning("\(name) failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

extension PeriodicService {
    /// Every 5 s: the root keys the store names (an online switch started or finished on another node). A node
    /// learns of a switch here before data keys move, and says so in its log when it cannot load the new root.
    static func rootKeyWatch(_ engine: GatehouseEngine, logger: Logger) -> PeriodicService {
        let known = Mutex<[String]>(engine.rootKeyDescriptors)
        return PeriodicService(name: "root key watch", interval: .seconds(5), logger: logger) {
            let now = try await engine.refreshRootKeys()
            let before = known.withLock { old in
                defer { old = now }
                return old
            }
            if now != before {
                logger.notice("root keys changed", metadata: ["roots": "\(now.joined(separator: " + "))"])
            }
        }
    }

    /// Every minute: seals audit events that a node left pending (it stopped between a change and its event's seal,
    /// and has not come back to do it), then signs a checkpoint of every audit chain's head, which makes deleting a
    /// whole chain detectable (see `AuditChain`).
    static func auditCheckpoint(_ engine: GatehouseEngine, logger: Logger) -> PeriodicService {
        PeriodicService(name: "audit checkpoint", interval: .seconds(60), logger: logger) {
            let n = try await engine.sealAbandonedAuditEvents(olderThan: .seconds(60))
            if n > 0 { logger.notice("sealed audit events another node left pending", metadata: ["count": "\(n)"]) }
            try await engine.writeAuditCheckpoint()
        }
    }

    /// Regenerates CRLs that passed half their lifetime, every ten minutes, so relying parties that fetch the CRL
    /// from the distribution point never see an expired one (a concurrent regeneration loses on the record version
    /// and is retried by the engine).
    static func crlRefresh(_ engine: GatehouseEngine, logger: Logger) -> PeriodicService {
        PeriodicService(name: "CRL refresh", interval: .seconds(600), logger: logger) {
            let n = try await engine.refreshCRLs()
            if n > 0 { logger.info("regenerated CRLs", metadata: ["count": "\(n)"]) }
        }
    }

    /// Deletes the replay records of expired ACME nonces (each ACME request leaves one) and old rate counters every
    /// minute, so they do not pile up in the store.
    static func acmeSweep(_ engine: GatehouseEngine, logger: Logger) -> PeriodicService {
        PeriodicService(name: "ACME sweep", interval: .seconds(60), logger: logger) {
            let n = try await engine.acmeSweep()
            if n > 0 { logger.debug("swept expired ACME records", metadata: ["count": "\(n)"]) }
        }
    }

    /// Deletes access tokens that expired more than a day ago (logins and console sign-ins each leave one), every
    /// hour.
    static func tokenSweep(_ engine: GatehouseEngine, logger: Logger) -> PeriodicService {
        PeriodicService(name: "expired token sweep", interval: .seconds(3600), logger: logger) {
            let n = await engine.deleteExpiredTokens()
            if n > 0 { logger.info("deleted expired access tokens", metadata: ["count": "\(n)"]) }
        }
    }

    /// Writes the count of refusals a source had beyond those audited in full, once their window is over (every
    /// 15 seconds, so a flood that stopped is on record soon after).
    static func refusalSummaries(_ engine: GatehouseEngine, logger: Logger) -> PeriodicService {
        PeriodicService(name: "refusal summaries", interval: .seconds(15), logger: logger) {
            let n = await engine.flushRefusalSummaries()
            if n > 0 { logger.notice("audited suppressed refusals", metadata: ["summaries": "\(n)"]) }
        }
    }
}
