import Crypto
import ExtrasBase64
import Foundation
import _CryptoExtras

/// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it (§55.3.1): the proxy logs in to the
/// database with an injected credential, so the engineer never sees the password. Channel binding is `n` (none)
/// here; SCRAM-SHA-256-PLUS needs the TLS server certificate hash and is built on top of this.
public struct SCRAMClient: Sendable {
    public enum SCRAMError: Error, Sendable, Hashable, CustomStringConvertible {
        case malformed(String)
        case nonceMismatch
        case iterationCount(Int)
        case serverSignatureMismatch
        case serverError(String)

        public var description: String {
            switch self {
            case .malformed(let m): return "malformed SCRAM message: \(m)"
            case .nonceMismatch: return "the server nonce does not extend the client nonce"
            case .iterationCount(let n): return "refusing SCRAM iteration count \(n)"
            case .serverSignatureMismatch:
                return "the server's SCRAM signature is wrong (it does not know the password)"
            case .serverError(let e): return "the server refused the SCRAM proof: \(e)"
            }
        }
    }

    public static let mechanism = "SCRAM-SHA-256"
    /// With TLS channel binding (RFC 5802 §6, `tls-server-end-point` per RFC 5929): the proof is tied to the server
    /// certificate this connection saw, so a man in the middle with another certificate cannot relay the exchange.
    public static let mechanismPlus = "SCRAM-SHA-256-PLUS"
    /// A hostile server could ask for billions of PBKDF2 rounds: refuse above this.
    public static let maxIterations = 1_000_000

    let password: [UInt8]
    let clientNonce: String
    var clientFirstBare: String
    let gs2Header: String
    let channelBinding: [UInt8]
    var serverSignature: [UInt8]?

    /// - Parameters:
    ///   - password: the account's password (SASLprep is the identity for the ASCII passwords Gatehouse generates;
    ///     other passwords are used as UTF-8, which is what PostgreSQL does when SASLprep fails).
    ///   - nonce: the client nonce (printable, no comma); random by default.
    ///   - user: the SCRAM user name (PostgreSQL ignores it and uses the start-up packet's: empty by default).
    ///   - channelBinding: the `tls-server-end-point` data (the server certificate's hash) for SCRAM-SHA-256-PLUS;
    ///     nil for plain SCRAM-SHA-256.
    public init(password: String, user: String = "", nonce: String? = nil, channelBinding: [UInt8]? = nil) {
        self.password = Array(password.utf8)
        gs2Header = channelBinding == nil ? "n,," : "p=tls-server-end-point,,"
        self.channelBinding = channelBinding ?? []
        var rng = SystemRandomNumberGenerator()
        clientNonce = nonce ?? String((0..<24).map { _ in Self.nonceAlphabet.randomElement(using: &rng) ?? "x" })
        let name = user.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
        clientFirstBare = "n=" + name + ",r=" + clientNonce
    }

    static let nonceAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")

    /// client-first-message (for SASLInitialResponse).
    public var clientFirst: [UInt8] { Array((gs2Header + clientFirstBare).utf8) }

    /// Takes server-first-message (AuthenticationSASLContinue) and returns client-final-message (SASLResponse).
    public mutating func clientFinal(serverFirst: [UInt8]) throws -> [UInt8] {
        let text = String(decoding: serverFirst, as: UTF8.self)
        var nonce: String?
        var salt: [UInt8]?
        var iterations: Int?
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard part.count >= 2, part[part.index(after: part.startIndex)] == "=" else {
                throw SCRAMError.malformed("attribute '\(part)'")
            }
            let value = String(part.dropFirst(2))
            switch part.first {
            case "r": nonce = value
            case "s": salt = try? Base64.decode(string: value)
            case "i": iterations = Int(value)
            case "m": throw SCRAMError.malformed("mandatory extension")
            default: break
            }
        }
        guard let nonce, let salt, !salt.isEmpty, let iterations else {
            throw SCRAMError.malformed("server-first lacks r, s or i")
        }
        guard nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count else { throw SCRAMError.nonceMismatch }
        guard iterations >= 1, iterations <= Self.maxIterations else { throw SCRAMError.iterationCount(iterations) }

        let salted = try KDF.Insecure.PBKDF2.deriveKey(
            from: password, salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
        let saltedKey = salted.withUnsafeBytes { Array($0) }
        let clientKey = Self.hmac(saltedKey, "Client Key")
        let storedKey = Array(SHA256.hash(data: clientKey))
        let withoutProof = "c=" + Base64.encodeToString(bytes: Array(gs2Header.utf8) + channelBinding) + ",r=" + nonce
        let authMessage = clientFirstBare + "," + text + "," + withoutProof
        let clientSignature = Self.hmac(storedKey, authMessage)
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
        let serverKey = Self.hmac(saltedKey, "Server Key")
        serverSignature = Self.hmac(serverKey, authMessage)
        return Array((withoutProof + ",p=" + Base64.encodeToString(bytes: proof)).utf8)
    }

    /// Checks server-final-message (AuthenticationSASLFinal): the server proves it knows the password too.
    public func verify(serverFinal: [UInt8]) throws {
        let text = String(decoding: serverFinal, as: UTF8.self)
        if text.hasPrefix("e=") { throw SCRAMError.serverError(String(text.dropFirst(2))) }
        guard text.hasPrefix("v="),
            let signature = try? Base64.decode(string: String(text.dropFirst(2).prefix { $0 != "," })),
            let expected = serverSignature
        else { throw SCRAMError.malformed("server-final") }
        var difference: UInt8 = signature.count == expected.count ? 0 : 1
        for (a, b) in zip(signature, expected) { difference |= a ^ b }
        guard difference == 0 else { throw SCRAMError.serverSignatureMismatch }
    }

    static func hmac(_ key: [UInt8], _ message: some StringProtocol) -> [UInt8] {
        hmac(key, Array(message.utf8))
    }

    static func hmac(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// The mechanisms offered in AuthenticationSASL (code 10): NUL-terminated names, then an empty one.
    public static func mechanisms(_ data: [UInt8]) -> [String] {
        data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }
}
