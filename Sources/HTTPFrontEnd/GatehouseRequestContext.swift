import EngineAPI
import Foundation
import Hummingbird
import NIOCore
import ServerSupport

/// The request context of Gatehouse's HTTP listeners: Hummingbird's core storage plus the channel, from which
/// the TLS peer (and so the `Principal`) and the client address come.
public struct GatehouseRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The authenticated caller (anonymous without a client certificate).
    public func principal() async -> Principal { await PeerPrincipal.principal(of: channel) }

    /// The peer's IP address.
    public var peerAddress: String? { channel.remoteAddress?.ipAddress }
}
