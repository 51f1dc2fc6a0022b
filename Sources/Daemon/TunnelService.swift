import DaemonConfig
import Foundation
import Logging
import SSHProtocol
import SSHTunnel
import ServiceLifecycle
import Synchronization

/// Runs the reverse tunnel (`[tunnel]`) once the listeners it exposes are bound, and stops it on shutdown.
final class TunnelService: Service, Sendable {
    let configuration: TunnelConfiguration
    let listeners: [String: ListenerConfiguration]
    let boundPorts: @Sendable () -> [String: Int]
    let statusFile: String
    let logger: Logger
    let client = Mutex<TunnelClient?>(nil)

    init(
        configuration: TunnelConfiguration, listeners: [String: ListenerConfiguration], statusFile: String,
        logger: Logger,
        boundPorts: @escaping @Sendable () -> [String: Int]
    ) {
        self.configuration = configuration
        self.listeners = listeners
        self.statusFile = statusFile
        self.logger = logger
        self.boundPorts = boundPorts
    }

    /// The tunnel's status, nil until it started.
    var status: TunnelStatus? { client.withLock { $0?.status } }

    static func loopbackFor(_ address: String) -> String {
        switch address {
        case "0.0.0.0", "": return "127.0.0.1"
        case "::", "[::]": return "::1"
        default: return address
        }
    }

    func run() async throws {
        let hostKey = try SSHHostKeyPin(configuration.relayHostKey)
        guard FileManager.default.isReadableFile(atPath: configuration.keyPath) else {
            throw DaemonError("tunnel.key: cannot read the gateway key \(configuration.keyPath) (run `gatehouse init`)")
        }
        // Listener targets are known once the listeners are bound (port 0 picks a free port).
        var forwards: [TunnelForward] = []
        while forwards.isEmpty {
            let ports = boundPorts()
            var resolved: [TunnelForward] = []
            for f in configuration.forwards {
                if let host = f.targetHost, let port = f.targetPort {
                    resolved.append(
                        .init(
                            name: "\(host):\(port)", remoteHost: f.remoteHost, remotePort: f.remotePort,
                            targetHost: host, targetPort: port))
                } else if let port = ports[f.expose], let listener = listeners[f.expose] {
                    resolved.append(
                        .init(
                            name: f.expose, remoteHost: f.remoteHost, remotePort: f.remotePort,
                            targetHost: Self.loopbackFor(listener.address), targetPort: port))
                }
            }
            if resolved.count == configuration.forwards.count {
                forwards = resolved
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let tunnel = TunnelClient(
            settings: TunnelSettings(
                relayHost: configuration.relayHost, relayPort: configuration.relayPort, user: configuration.user,
                privateKeyPath: configuration.keyPath, hostKey: hostKey, forwards: forwards,
                keepaliveInterval: Int(configuration.keepaliveInterval.components.seconds),
                keepaliveCountMax: configuration.keepaliveCountMax, reconnectMin: configuration.reconnectMin,
                reconnectMax: configuration.reconnectMax, connectTimeout: configuration.connectTimeout,
                statusFile: statusFile),
            logger: logger)
        client.withLock { $0 = tunnel }
        tunnel.start()
        try? await gracefulShutdown()
        // stop() joins the tunnel thread: wait for it off the cooperative pool.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                tunnel.stop()
                done.resume()
            }
        }
    }
}
