import Foundation
import SSHProtocol

/// One remote forward: the relay listens on `remoteHost:remotePort` (`tcpip-forward`, RFC 4254 §7.1) and every
/// connection it accepts there is spliced to `targetHost:targetPort` on this machine.
public struct TunnelForward: Sendable, Hashable {
    /// What is exposed: a listener name (`https`, `kmip`, …) or `host:port`.
    public var name: String
    public var remoteHost: String
    /// 0 lets the relay pick a port (reported in the status).
    public var remotePort: Int
    public var targetHost: String
    public var targetPort: Int

    public init(name: String, remoteHost: String, remotePort: Int, targetHost: String, targetPort: Int) {
        self.name = name
        self.remoteHost = remoteHost
        self.remotePort = remotePort
        self.targetHost = targetHost
        self.targetPort = targetPort
    }
}

/// Everything the tunnel client needs, validated by the configuration loader.
public struct TunnelSettings: Sendable {
    public var relayHost: String
    public var relayPort: Int
    public var user: String
    /// OpenSSH private key file of the gateway (Ed25519, made by `gatehouse init`).
    public var privateKeyPath: String
    /// The relay's host key; anything else is refused before authentication.
    public var hostKey: SSHHostKeyPin
    public var forwards: [TunnelForward]
    /// Seconds between keepalives when the session is idle; the relay is declared dead after
    /// `keepaliveInterval × keepaliveCountMax` seconds without a byte from it.
    public var keepaliveInterval: Int
    public var keepaliveCountMax: Int
    /// Reconnect backoff: doubles from `reconnectMin` up to `reconnectMax`, each wait drawn uniformly from
    /// [½ × backoff, backoff] so that many gateways do not reconnect in lockstep.
    public var reconnectMin: Duration
    public var reconnectMax: Duration
    public var connectTimeout: Duration
    /// Where the status snapshot is written as JSON (for `gatehouse tunnel status`), or nil.
    public var statusFile: String?

    public init(
        relayHost: String, relayPort: Int, user: String, privateKeyPath: String, hostKey: SSHHostKeyPin,
        forwards: [TunnelForward], keepaliveInterval: Int = 30, keepaliveCountMax: Int = 3,
        reconnectMin: Duration = .seconds(1), reconnectMax: Duration = .seconds(60),
        connectTimeout: Duration = .seconds(10),
        statusFile: String? = nil
    ) {
        self.relayHost = relayHost
        self.relayPort = relayPort
        self.user = user
        self.privateKeyPath = privateKeyPath
        self.hostKey = hostKey
        self.forwards = forwards
        self.keepaliveInterval = keepaliveInterval
        self.keepaliveCountMax = keepaliveCountMax
        self.reconnectMin = reconnectMin
        self.reconnectMax = reconnectMax
        self.connectTimeout = connectTimeout
        self.statusFile = statusFile
    }

    /// `host:port` of the relay, with brackets for IPv6.
    public var relayDescription: String { (relayHost.contains(":") ? "[\(relayHost)]" : relayHost) + ":\(relayPort)" }
}

/// A point-in-time view of the tunnel, for `/readyz`, `gatehouse tunnel status` and tests.
public struct TunnelStatus: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable {
        /// Dialing, exchanging keys, authenticating or requesting forwards.
        case connecting
        /// Authenticated and every forward granted.
        case established
        /// Authenticated but some forwards were refused by the relay.
        case degraded
        /// Waiting before the next attempt (see `lastError`).
        case backoff
        case stopped
    }

    public struct Forward: Sendable, Codable, Equatable {
        public var name: String
        /// `host:port` requested on the relay.
        public var listen: String
        /// The port the relay bound (differs from the requested one when that was 0).
        public var boundPort: Int?
        public var target: String
        /// `active`, `refused` or `down`.
        public var state: String
        public var error: String?
    }

    public var state: State
    public var relay: String
    public var since: Date
    public var lastError: String?
    /// Sessions established since start (the first one plus reconnects).
    public var sessions: Int
    public var forwards: [Forward]
    public var activeConnections: Int
    public var totalConnections: Int
    public var bytesFromRelay: UInt64
    public var bytesToRelay: UInt64
    public var nextAttempt: Date?

    /// Up means: authenticated and every forward granted.
    public var isUp: Bool { state == .established }
}
