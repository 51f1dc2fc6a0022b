import Foundation
import NIOCore
import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// TLS settings of one listener, as files on disk.
public struct TLSServerSettings: Sendable, Hashable {
    /// How client certificates are treated.
    public enum ClientAuth: String, Sendable, Hashable {
        case required, optional, off
    }
    public var certificatePath: String
    public var keyPath: String
    public var clientCAPath: String
    public var clientAuth: ClientAuth
    /// ALPN protocols the server accepts (a client offering none of them continues without ALPN).
    public var applicationProtocols: [String]

    public init(
        certificatePath: String, keyPath: String, clientCAPath: String, clientAuth: ClientAuth,
        applicationProtocols: [String] = []
    ) {
        self.applicationProtocols = applicationProtocols
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
        self.clientAuth = clientAuth
    }
}

/// Gatehouse's TLS defaults: TLS 1.2 and 1.3 only; TLS 1.2 suites limited to ECDHE with AEAD (Mozilla
/// "intermediate" minus the finite-field DHE suites); client certificates verified against the configured CA chain.
public enum TLSPolicy {
    /// TLS 1.2 cipher suites, strongest first (TLS 1.3 suites are all AEAD and forward-secret).
    public static let tls12CipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// Signature algorithms for the handshake, both the server's own (ServerKeyExchange, CertificateVerify) and the
    /// ones it accepts from clients: SHA-256 or stronger. TLS 1.2 would otherwise still allow SHA-1 (RFC 9155).
    public static let signatureAlgorithms: [SignatureAlgorithm] = [
        .ecdsaSecp256R1Sha256, .ecdsaSecp384R1Sha384, .ecdsaSecp521R1Sha512, .ed25519,
        .rsaPssRsaeSha256, .rsaPssRsaeSha384, .rsaPssRsaeSha512, .rsaPkcs1Sha256, .rsaPkcs1Sha384, .rsaPkcs1Sha512,
    ]

    /// Builds the server configuration from files, trusting `extraClientRoots` too. Throws a readable error naming
    /// the file at fault.
    public static func serverConfiguration(_ settings: TLSServerSettings, extraClientRoots: [NIOSSLCertificate] = [])
        throws
        -> TLSConfiguration
    {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(settings.certificatePath)
        } catch {
            throw TLSSetupError("cannot load TLS certificate \(settings.certificatePath): \(error)")
        }
        guard !chain.isEmpty else { throw TLSSetupError("no certificate in \(settings.certificatePath)") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: settings.keyPath, format: .pem)
        } catch {
            throw TLSSetupError("cannot load TLS private key \(settings.keyPath): \(error)")
        }
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        config.minimumTLSVersion = .tlsv12
        config.maximumTLSVersion = .tlsv13
        config.cipherSuites = tls12CipherSuites
        config.curves = [.x25519, .secp256r1, .secp384r1]
        config.signingSignatureAlgorithms = signatureAlgorithms
        config.verifySignatureAlgorithms = signatureAlgorithms
        config.renegotiationSupport = .none
        config.applicationProtocols = settings.applicationProtocols
        switch settings.clientAuth {
        case .off:
            config.certificateVerification = .none
        case .required, .optional:
            guard FileManager.default.isReadableFile(atPath: settings.clientCAPath) else {
                throw TLSSetupError("cannot read client CA file \(settings.clientCAPath)")
            }
            do {
                let roots = try NIOSSLCertificate.fromPEMFile(settings.clientCAPath)
                guard !roots.isEmpty else { throw TLSSetupError("no certificate in \(settings.clientCAPath)") }
                config.trustRoots = .certificates(roots + extraClientRoots)
                config.sendCANameList = true
            } catch let e as TLSSetupError {
                throw e
            } catch {
                throw TLSSetupError("cannot load client CA \(settings.clientCAPath): \(error)")
            }
            config.certificateVerification =
                settings.clientAuth == .required ? .noHostnameVerification : .optionalVerification
        }
        return config
    }

    /// A readable TLS setup error.
    public struct TLSSetupError: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }
}

/// A TLS context that can be swapped at run time (SIGHUP): new connections use the new certificates, existing
/// connections keep theirs. Besides the client CA file it may trust CAs that live in storage (the KMIP client PKI),
/// set with `setExtraClientRoots`.
public final class ReloadableTLSContext: Sendable {
    public let settings: TLSServerSettings
    private let current: Mutex<(NIOSSLContext, [Certificate])>
    /// Extra trusted client CAs (PEM), kept across reloads.
    private let extraRoots = Mutex<[String]>([])

    /// Loads the files once; throws if they are unusable.
    public init(settings: TLSServerSettings) throws {
        self.settings = settings
        self.current = Mutex(try Self.load(settings, extra: []))
    }

    static func load(_ settings: TLSServerSettings, extra: [String]) throws -> (NIOSSLContext, [Certificate]) {
        let extraNIO = try extra.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }
        let context = try NIOSSLContext(
            configuration: TLSPolicy.serverConfiguration(settings, extraClientRoots: extraNIO))
        var roots: [Certificate] = []
        if settings.clientAuth != .off {
            let pem = (try? String(contentsOfFile: settings.clientCAPath, encoding: .utf8)) ?? ""
            roots =
                (try? PEMDocument.parseMultiple(pemString: pem).compactMap { try? Certificate(pemDocument: $0) }) ?? []
            roots += extra.compactMap { try? Certificate(pemEncoded: $0) }
        }
        return (context, roots)
    }

    /// Trusts `pems` (CA certificates) as client CAs too, in place of the previous extra set. Returns false when
    /// the set is unchanged (nothing rebuilt).
    @discardableResult
    public func setExtraClientRoots(_ pems: [String]) throws -> Bool {
        let sorted = pems.sorted()
        guard extraRoots.withLock({ $0 }) != sorted else { return false }
        let fresh = try Self.load(settings, extra: sorted)
        extraRoots.withLock { $0 = sorted }
        current.withLock { $0 = fresh }
        return true
    }

    /// The context for the next connection.
    public var context: NIOSSLContext { current.withLock { $0.0 } }

    /// The client-CA roots (as swift-certificates values) for the next connection.
    public var clientRoots: [Certificate] { current.withLock { $0.1 } }

    /// Re-reads the files. On failure the old context stays in use and the error is thrown.
    public func reload() throws {
        let fresh = try Self.load(settings, extra: extraRoots.withLock { $0 })
        current.withLock { $0 = fresh }
    }

    /// The TLS handler for a new connection. With optional client authentication the presented chain is captured
    /// (see `PeerCertificateCapture`) and added to the pipeline after the TLS handler.
    public func makeServerHandlers() -> [any ChannelHandler] {
        let (context, roots) = current.withLock { $0 }
        guard settings.clientAuth == .optional else { return [NIOSSLServerHandler(context: context)] }
        let capture = PeerCertificateCapture(listenerRoots: roots)
        return [NIOSSLServerHandler(context: context, customVerificationCallback: capture.callback), capture]
    }
}
