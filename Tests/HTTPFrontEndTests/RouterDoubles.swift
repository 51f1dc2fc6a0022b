import EngineAPI
import Foundation
import HTTPFrontEnd
import Hummingbird
import HummingbirdTesting
import Synchronization
import TestSupport

extension AdminServices {
    /// Every route group on an unscripted double, except those given.
    static func doubles(
        authenticator: any Authenticator = AuthenticatorDouble(), access: any AccessEngine = AccessEngineDouble(),
        secrets: any SecretsEngine = SecretsEngineDouble(), audit: any AuditEngine = AuditEngineDouble(),
        est: any ESTEngine = ESTEngineDouble(), acme: any ACMEEngine = ACMEEngineDouble()
    ) -> AdminServices {
        AdminServices(
            authenticator: authenticator, access: access, secrets: secrets, audit: audit, pki: PKIEngineDouble(),
            alerts: AlertEngineDouble(), kmipPKI: KMIPPKIEngineDouble(), ssh: SSHEngineDouble(), pam: PAMEngineDouble(),
            est: est, acme: acme, keys: KeyEngineDouble())
    }
}

/// The HTTPS listener's router (middleware included) over `services`, in Hummingbird's router test mode: no sockets.
func routerApp(
    _ services: AdminServices, estDefaultProfile: String? = nil, acme: ACMESettings = ACMESettings(),
    maxBody: Int = 4096
) -> some ApplicationProtocol {
    let settings = HTTPListener.Settings(
        name: "https-test", host: "127.0.0.1", port: 0, tls: nil, maxConnections: 1, idleTimeout: .seconds(1),
        handshakeTimeout: .seconds(1), maxMessageSize: maxBody)
    let router = HTTPListener.apiRouter(
        services: services, settings: settings, estDefaultProfile: estDefaultProfile, acme: acme,
        acmeValidator: ACMEValidator(engine: services.acme, settings: acme), readiness: { (true, "ready") })
    return Application(router: router)
}

/// Calls a double received, for assertions (`Mutex`-guarded).
final class CallLog: Sendable {
    private let calls = Mutex<[String]>([])
    func add(_ s: String) { calls.withLock { $0.append(s) } }
    var all: [String] { calls.withLock { $0 } }
}
