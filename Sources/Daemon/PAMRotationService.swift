import Engine
import EngineAPI
import Logging
import ServiceLifecycle

/// Rotates due PAM account credentials on a schedule (`pam.rotation_check_interval`). The engine claims each account
/// before changing it, so nodes sharing a store never rotate the same account at once.
struct PAMRotationService: Service {
    let engine: GatehouseEngine
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let rotated = await engine.rotateDuePAMAccounts()
            if rotated > 0 { logger.info("scheduled PAM rotations", metadata: ["rotated": "\(rotated)"]) }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// Deletes the session recordings that have outlived their project's retention (`pam.retention_check_interval`).
/// Every node runs it; each recording is claimed by one node before it is deleted.
struct PAMRetentionService: Service {
    let engine: GatehouseEngine
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let deleted = await engine.deleteExpiredPAMRecordings()
            if deleted > 0 { logger.info("deleted expired session recordings", metadata: ["deleted": "\(deleted)"]) }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
