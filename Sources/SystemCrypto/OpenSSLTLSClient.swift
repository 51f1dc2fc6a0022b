import COpenSSL

/// The client side of a TLS handshake over memory buffers, with the system OpenSSL: bytes from the server go in,
/// bytes for the server come out. It accepts the server's certificate as it is (no chain, name or key-usage check):
/// it exists for ACME tls-alpn-01, whose challenge certificate is self-signed and checked by the caller.
public final class OpenSSLTLSClient {
    public enum Step: Equatable, Sendable {
        /// Send these bytes (maybe none) and feed what the server answers.
        case needMore(send: [UInt8])
        /// The handshake is complete; send these last bytes (maybe none).
        case done(send: [UInt8])
        case failed(String)
    }

    private let tls: UnsafeMutablePointer<gh_tls>

    /// nil when OpenSSL cannot make the client (out of memory, or a server name it refuses).
    public init?(serverName: String?, alpn: [String]) {
        var wire: [UInt8] = []
        for name in alpn where !name.isEmpty && name.utf8.count < 256 {
            wire.append(UInt8(name.utf8.count))
            wire.append(contentsOf: name.utf8)
        }
        guard
            let made = wire.withUnsafeBufferPointer({ w in
                gh_tls_client_new(serverName ?? "", w.baseAddress, UInt32(w.count))
            })
        else { return nil }
        tls = made
    }

    deinit { gh_tls_free(tls) }

    /// Starts the handshake: the ClientHello to send.
    public func start() -> Step { advance() }

    /// Feeds bytes received from the server and advances the handshake.
    public func feed(_ bytes: some Collection<UInt8>) -> Step {
        let fed = Array(bytes).withUnsafeBufferPointer { gh_tls_feed(tls, $0.baseAddress, Int32($0.count)) }
        guard fed == 0 else { return .failed("cannot buffer the server's bytes") }
        return advance()
    }

    private func advance() -> Step {
        var why = [CChar](repeating: 0, count: 256)
        let r = why.withUnsafeMutableBufferPointer { gh_tls_handshake(tls, $0.baseAddress, Int32($0.count)) }
        let out = drain()
        switch r {
        case 1: return .done(send: out)
        case 0: return .needMore(send: out)
        default:
            return .failed(String(decoding: why.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }

    private func drain() -> [UInt8] {
        var all: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBufferPointer { gh_tls_drain(tls, $0.baseAddress, Int32($0.count)) }
            guard n > 0 else { return all }
            all.append(contentsOf: chunk.prefix(Int(n)))
        }
    }

    /// The protocol the server chose by ALPN, if any.
    public var negotiatedProtocol: String? {
        var data: UnsafePointer<UInt8>?
        let n = gh_tls_alpn(tls, &data)
        guard n > 0, let data else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(n)), as: UTF8.self)
    }

    /// The server's certificate (DER).
    public var peerCertificate: [UInt8]? {
        var out: UnsafeMutablePointer<UInt8>?
        let n = gh_tls_peer_certificate(tls, &out)
        guard n > 0, let out else { return nil }
        defer { gh_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: n))
    }

    /// The negotiated TLS version, e.g. "TLSv1.3".
    public var version: String { String(cString: gh_tls_version(tls)) }
}
