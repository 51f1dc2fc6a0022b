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
        var headers = [("Content-Type", contentType)]
        if let bearerToken { headers.append(("Authorization", "Bearer \(bearerToken)")) }
        return try await OneShotHTTPClient.send(
            url: url, method: .POST, body: body, headers: headers, caFile: caFile, timeout: timeout
        ).status
    }
}

/// One HTTP/1.1 request on its own connection (TLS for `https://`, optionally with a client certificate), with a
/// timeout on the whole exchange and a cap on the response size. Used by the webhook client and the CLI.
public enum OneShotHTTPClient {
    /// Sends a request and collects the response.
    public static func send(
        url: URL, method: HTTPMethod, body: [UInt8]?, headers extra: [(String, String)] = [], caFile: String? = nil,
        certificateFile: String? = nil, keyFile: String? = nil, timeout: TimeAmount = .seconds(30),
        maxResponseSize: Int = 16 << 20, connectTo: String? = nil
    ) async throws -> (status: Int, body: [UInt8]) {
        guard let host = url.host, let scheme = url.scheme, scheme == "http" || scheme == "https" else {
            throw WebhookClient.Failure(description: "not an http(s) URL")
        }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        var path = url.path.isEmpty ? "/" : url.path
        if let q = url.query { path += "?" + q }
        let sslContext: NIOSSLContext?
        if scheme == "https" {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let caFile { tls.trustRoots = .file(caFile) }
            if let certificateFile, let keyFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            }
            sslContext = try NIOSSLContext(configuration: tls)
        } else {
            sslContext = nil
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .connect(host: connectTo ?? host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        let deadline = channel.channel.eventLoop.scheduleTask(in: timeout) { channel.channel.close(promise: nil) }
        defer { deadline.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
            headers.add(name: "Content-Length", value: String(body?.count ?? 0))
            headers.add(name: "Connection", value: "close")
            headers.add(name: "User-Agent", value: "gatehouse")
            for (k, v) in extra { headers.add(name: k, value: v) }
            try await outbound.write(
                .head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)))
            if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            try await outbound.write(.end(nil))
            var status: Int?
            var collected: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let head): status = Int(head.status.code)
                case .body(let buffer):
                    guard collected.count + buffer.readableBytes <= maxResponseSize else {
                        throw WebhookClient.Failure(description: "response larger than \(maxResponseSize) bytes")
                    }
                    collected += Array(buffer.readableBytesView)
                case .end:
                    if let status { return (status, collected) }
                }
            }
            guard let status else { throw WebhookClient.Failure(description: "connection closed without a response") }
            return (status, collected)
        }
    }
}
