import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A small HTTP/1.1 POST client for outbound notifications (audit streaming, later alert webhooks):
/// one request per connection, JSON body, optional bearer token, TLS for `https://` with system trust roots
/// (or a given CA file), a timeout on the whole exchange.
public struct WebhookClient: Sendable {
    public var url: URL
    public var bearerToken: String?
    public var caFile: String?
    public var timeout: TimeAmount

    public init(url: URL, bearerToken: String?, caFile: String? = nil, timeout: TimeAmount = .seconds(10)) {
        self.url = url
        self.bearerToken = bearerToken
        self.caFile = caFile
        self.timeout = timeout
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// POSTs `body` and returns the response status code.
    public func post(_ body: [UInt8], contentType: String = "application/json") async throws -> Int {
        guard let host = url.host, let scheme = url.scheme, scheme == "http" || scheme == "https" else {
            throw Failure(description: "not an http(s) URL")
        }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        var path = url.path.isEmpty ? "/" : url.path
        if let q = url.query { path += "?" + q }
        let sslContext: NIOSSLContext?
        if scheme == "https" {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let caFile { tls.trustRoots = .file(caFile) }
            sslContext = try NIOSSLContext(configuration: tls)
        } else {
            sslContext = nil
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        let deadline = channel.channel.eventLoop.scheduleTask(in: timeout) { channel.channel.close(promise: nil) }
        defer { deadline.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Content-Length", value: String(body.count))
            headers.add(name: "Connection", value: "close")
            headers.add(name: "User-Agent", value: "gatehouse")
            if let bearerToken { headers.add(name: "Authorization", value: "Bearer \(bearerToken)") }
            try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)))
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
            try await outbound.write(.end(nil))
            for try await part in inbound {
                if case .head(let head) = part { return Int(head.status.code) }
            }
            throw Failure(description: "connection closed without a response")
        }
    }
}
