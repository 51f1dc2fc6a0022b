import NIOCore
import NIOPosix

/// One UDP request and its first answer (for DNS queries), with a timeout.
public enum UDPExchange {
    public struct Timeout: Error, CustomStringConvertible {
        public var description: String { "no answer in time" }
    }

    /// Sends `request` to host:port from an ephemeral port and returns the first datagram that comes back from it.
    public static func send(_ request: [UInt8], host: String, port: Int, timeout: Duration = .seconds(3)) async throws
        -> [UInt8]
    {
        let remote = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: remote.protocol == .inet6 ? "::" : "0.0.0.0", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
                        wrappingChannelSynchronously: channel)
                }
            }
        return try await withThrowingTaskGroup(of: [UInt8].self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: request)))
                    for try await envelope in inbound where envelope.remoteAddress == remote {
                        return Array(buffer: envelope.data)
                    }
                    throw Timeout()
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw Timeout()
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw Timeout() }
            return first
        }
    }
}
