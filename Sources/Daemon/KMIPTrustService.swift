import Engine
import Logging
import ServerSupport
import ServiceLifecycle

/// Keeps the KMIP listener trusting the organization's KMIP client CA (which lives in storage): applied at once when
/// this node creates it (`created`, fed by the engine), and re-read every `interval` so nodes sharing a PostgreSQL
/// store pick up one created elsewhere. New connections use the new trust; open ones keep theirs.
struct KMIPTrustService: Service {
    let engine: GatehouseEngine
    let tls: ReloadableTLSContext
    let created: AsyncStream<[String]>
    let logger: Logger
    var interval: Duration = .seconds(30)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.applyCreated() }
                group.addTask { await self.refresh() }
            }
        }
    }

    func applyCreated() async {
        for await pems in created {
            do {
                if try tls.setExtraClientRoots(pems) {
                    logger.notice("the KMIP listener now trusts the KMIP client CA")
                }
            } catch {
                logger.error("cannot trust the KMIP client CA", metadata: ["error": "\(error)"])
            }
        }
    }

    func refresh() async {
        while !Task.isCancelled {
            do {
                if try tls.setExtraClientRoots(try await engine.kmipClientCACertificates()) {
                    logger.notice("the KMIP listener now trusts the KMIP client CA")
                }
            } catch {
                logger.warning("KMIP client CA refresh failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
