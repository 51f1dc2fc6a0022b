import Engine
import EngineAPI
import Logging

extension PeriodicService {
    /// Rotates due PAM account credentials on a schedule (`pam.rotation_check_interval`). The engine claims each
    /// account before changing it, so nodes sharing a store never rotate the same account at once.
    static func pamRotation(_ engine: GatehouseEngine, interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(name: "PAM rotation", interval: interval, logger: logger) {
            let rotated = await engine.rotateDuePAMAccounts()
            if rotated > 0 { logger.info("scheduled PAM rotations", metadata: ["rotated": "\(rotated)"]) }
        }
    }

    /// Deletes the session recordings that have outlived their project's retention (`pam.retention_check_interval`).
    /// Every node runs it; each recording is claimed by one node before it is deleted.
    static func pamRetention(_ engine: GatehouseEngine, interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(name: "PAM recording retention", interval: interval, logger: logger) {
            let deleted = await engine.deleteExpiredPAMRecordings()
            if deleted > 0 { logger.info("deleted expired session recordings", metadata: ["deleted": "\(deleted)"]) }
        }
    }
}
