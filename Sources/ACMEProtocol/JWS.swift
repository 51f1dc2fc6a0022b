import ExtrasBase64
import Foundation

/// Base64url without padding (RFC 7515 §2), over swift-extras-base64. Decoding is strict: the URL alphabet only, no
/// padding, and the canonical encoding (zero leftover bits), checked by encoding the result again.
public enum Base64URL {
    static let options: Base64.EncodingOptions = [.base64UrlAlphabet, .omitPaddingCharacter]

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Base64.encodeToString(bytes: Array(bytes), options: options)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        guard let bytes = try? Base64.decode(string: text, options: [.base64UrlAlphabet, .omitPaddingCharacter]),
            encode(bytes) == text
        else {
            return nil
        }
        return bytes
    }
}

/// An ACME error: an RFC 7807 problem document with an `urn:ietf:params:acme:error:*` type.
public struct ACMEProblem: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public var type: String
    public var detail: String
    public var status: Int
    public var subproblems: [ACMEProblem]?
    /// The identifier a subproblem is about (RFC 8555 §6.7.1).
    public var identifier: Identifier?

    public struct Identifier: Sendable, Hashable, Codable {
        public var type: String
        public var value: String
        public init(type: String, value: String) {
            self.type = type
            self.value = value
        }
    }

    public init(
        _ kind: String, _ detail: String, status: Int = 400, subproblems: [ACMEProblem]? = nil,
        identifier: Identifier? = nil
    ) {
        self.type = "urn:ietf:params:acme:error:" + kind
        self.detail = detail
        self.status = status
        self.subproblems = subproblems
        self.identifier = identifier
    }
    public var description: String { "\(type): \(detail)" }

    public static func malformed(_ d: String) -> ACMEProblem { ACMEProblem("malformed", d) }
    public static func badNonce(_ d: String) -> ACMEProblem { ACMEProblem("badNonce", d) }
    public static func unauthorized(_ d: String) -> ACMEProblem { ACMEProblem("unauthorized", d, status: 403) }
    public static func badSignatureAlgorithm(_ d: String) -> ACMEProblem { ACMEProblem("badSignatureAlgorithm", d) }
    public static func accountDoesNotExist(_ d: String) -> ACMEProblem { ACMEProblem("accountDoesNotExist", d) }
}

/// A JSON Web Key of an ACME account (RFC 7517/7518/8037): EC P-256/P-384, RSA (≥ 2048 bits), Ed25519.
public enum JWK: Sendable, Hashable {
    case p256(x: [UInt8], y: [UInt8])
    case p384(x: [UInt8], y: [UInt8])
    case rsa(n: [UInt8], e: [UInt8])
    case ed25519(x: [UInt8])

    /// Parses a JWK object; private members are refused.
    public init(json: [String: Any]) throws(ACMEProblem) {
        guard json["d"] == nil else { throw .malformed("the JWK holds a private key") }
        func member(_ k: String) throws(ACMEProblem) -> [UInt8] {
            guard let s = json[k] as? String, let b = Base64URL.decode(s), !b.isEmpty else {
                throw .malformed("JWK member '\(k)' is missing or not base64url")
            }
            return b
        }
        switch json["kty"] as? String {
        case "EC":
            let x = try member("x")
            let y = try member("y")
            switch json["crv"] as? String {
            case "P-256" where x.count == 32 && y.count == 32: self = .p256(x: x, y: y)
            case "P-384" where x.count == 48 && y.count == 48: self = .p384(x: x, y: y)
            default: throw .badSignatureAlgorithm("EC keys must be P-256 or P-384")
            }
        case "RSA":
            let n = try member("n")
            let e = try member("e")
            let bits = (n.drop(while: { $0 == 0 }).count) * 8
            guard bits >= 2048, bits <= 8192 else { throw .badSignatureAlgorithm("RSA keys must be 2048–8192 bits") }
            self = .rsa(n: Array(n.drop(while: { $0 == 0 })), e: e)
        case "OKP":
            guard json["crv"] as? String == "Ed25519" else { throw .badSignatureAlgorithm("OKP keys must be Ed25519") }
            let x = try member("x")
            guard x.count == 32 else { throw .malformed("Ed25519 x must be 32 bytes") }
            self = .ed25519(x: x)
        default:
            throw .badSignatureAlgorithm("unsupported key type")
        }
    }

    /// The RFC 7638 canonical JSON (required members, lexicographic order, no whitespace).
    public var canonicalJSON: String {
        switch self {
        case .p256(let x, let y):
            #"{"crv":"P-256","kty":"EC","x":"\#(Base64URL.encode(x))","y":"\#(Base64URL.encode(y))"}"#
        case .p384(let x, let y):
            #"{"crv":"P-384","kty":"EC","x":"\#(Base64URL.encode(x))","y":"\#(Base64URL.encode(y))"}"#
        case .rsa(let n, let e): #"{"e":"\#(Base64URL.encode(e))","kty":"RSA","n":"\#(Base64URL.encode(n))"}"#
        case .ed25519(let x): #"{"crv":"Ed25519","kty":"OKP","x":"\#(Base64URL.encode(x))"}"#
        }
    }

    /// The algorithms this key may sign with.
    public var algorithms: Set<String> {
        switch self {
        case .p256: ["ES256"]
        case .p384: ["ES384"]
        case .rsa: ["RS256", "PS256"]
        case .ed25519: ["EdDSA"]
        }
    }

}

/// A flattened JWS (RFC 7515 §7.2.2) as ACME sends it, with its protected header parsed.
public struct JWS: Sendable {
    public var alg: String
    public var nonce: String?
    public var url: String
    public var kid: String?
    public var jwk: JWK?
    /// The raw `jwk` member (for EAB, whose payload must equal it).
    public var jwkJSON: [String: any Sendable]?
    /// Decoded payload bytes (empty for POST-as-GET).
    public var payload: [UInt8]
    public var signature: [UInt8]
    /// `protected` + "." + `payload` as sent: what the signature covers.
    public var signingInput: [UInt8]
    public var protectedB64: String
    public var payloadB64: String

    /// Parses a request body. Checks structure and header rules (RFC 8555 §6.2); not the signature.
    public static func parse(_ body: [UInt8], requireNonce: Bool = true) throws(ACMEProblem) -> JWS {
        guard body.count <= 64 * 1024 else { throw .malformed("the request body is larger than 64 KiB") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw .malformed("the body is not a JSON object")
        }
        guard let p = object["protected"] as? String, let payload = object["payload"] as? String,
            let s = object["signature"] as? String
        else { throw .malformed("a flattened JWS needs protected, payload and signature") }
        guard object["header"] == nil else { throw .malformed("unprotected headers are not allowed") }
        guard let headerBytes = Base64URL.decode(p),
            let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any]
        else { throw .malformed("the protected header is not base64url JSON") }
        guard let signature = Base64URL.decode(s), !signature.isEmpty else {
            throw .malformed("the signature is not base64url")
        }
        let payloadBytes: [UInt8]
        if payload.isEmpty {
            payloadBytes = []
        } else {
            guard let b = Base64URL.decode(payload) else { throw .malformed("the payload is not base64url") }
            payloadBytes = b
        }
        guard let alg = header["alg"] as? String else { throw .malformed("the protected header has no alg") }
        guard !["none", "HS256", "HS384", "HS512"].contains(alg) else {
            throw .badSignatureAlgorithm("alg \(alg) is not allowed for account keys")
        }
        guard ["ES256", "ES384", "RS256", "PS256", "EdDSA"].contains(alg) else {
            throw .badSignatureAlgorithm("unsupported alg \(alg); use ES256, ES384, RS256, PS256 or EdDSA")
        }
        guard let url = header["url"] as? String else { throw .malformed("the protected header has no url") }
        let nonce = header["nonce"] as? String
        if requireNonce, nonce == nil { throw .badNonce("the protected header has no nonce") }
        let kid = header["kid"] as? String
        let jwkObject = header["jwk"] as? [String: Any]
        guard (kid == nil) != (jwkObject == nil) else {
            throw .malformed("the protected header needs exactly one of jwk and kid")
        }
        var jwk: JWK?
        var jwkJSON: [String: any Sendable]?
        if let jwkObject {
            jwk = try JWK(json: jwkObject)
            jwkJSON = jwkObject.compactMapValues { $0 as? String }
        }
        return JWS(
            alg: alg, nonce: nonce, url: url, kid: kid, jwk: jwk, jwkJSON: jwkJSON, payload: payloadBytes,
            signature: signature,
            signingInput: Array((p + "." + payload).utf8), protectedB64: p, payloadB64: payload)
    }

    /// The payload as a JSON object (an empty payload is POST-as-GET and yields nil).
    public func payloadObject() throws(ACMEProblem) -> [String: Any]? {
        if payload.isEmpty { return nil }
        guard let o = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else {
            throw .malformed("the payload is not a JSON object")
        }
        return o
    }
}

/// External account binding (RFC 8555 §7.3.4): an inner JWS over the account key, MACed with the EAB key.
public enum ExternalAccountBinding {
    /// Returns the EAB key id after checking structure (alg HS256/384/512, url, payload = the outer jwk). The MAC
    /// itself is checked by the engine, which holds the key.
    public static func parse(_ object: [String: Any], outerURL: String, outerJWK: JWK) throws(ACMEProblem)
        -> (kid: String, alg: String, signingInput: [UInt8], mac: [UInt8])
    {
        guard let p = object["protected"] as? String, let payload = object["payload"] as? String,
            let s = object["signature"] as? String, let headerBytes = Base64URL.decode(p),
            let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any],
            let mac = Base64URL.decode(s), let payloadBytes = Base64URL.decode(payload)
        else { throw .malformed("externalAccountBinding is not a flattened JWS") }
        guard let alg = header["alg"] as? String, ["HS256", "HS384", "HS512"].contains(alg) else {
            throw .badSignatureAlgorithm("externalAccountBinding must use HS256, HS384 or HS512")
        }
        guard header["nonce"] == nil else { throw .malformed("externalAccountBinding must not carry a nonce") }
        guard header["url"] as? String == outerURL else {
            throw .malformed("externalAccountBinding url must be the newAccount URL")
        }
        guard let kid = header["kid"] as? String else { throw .malformed("externalAccountBinding has no kid") }
        guard let inner = try? JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any],
            let innerKey = try? JWK(json: inner), innerKey == outerJWK
        else { throw .malformed("externalAccountBinding payload must be the account key") }
        return (kid, alg, Array((p + "." + payload).utf8), mac)
    }
}
