import Crypto
import Foundation

/// AWS Signature Version 4 for S3 requests (header-based, signed payload).
///
/// Hand-written because no package mirrored here signs AWS requests (Soto, the Swift AWS SDK, is not available), and
/// the algorithm is small and fixed: a canonical request, a string to sign, and an HMAC-SHA256 key chain (AWS
/// "Authenticating Requests: Using the Authorization Header"). It is pure (values in, header values out) and checked
/// against AWS's published example and against botocore's signer in `S3SigningTests`.
public struct SigV4: Sendable {
    public struct Credentials: Sendable, Equatable {
        public var accessKeyId: String
        public var secretAccessKey: String
        public var sessionToken: String?

        public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyId = accessKeyId
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    public let credentials: Credentials
    public let region: String
    public let service: String

    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A payload's SHA-256 as SigV4 writes it (lowercase hex).
    public static func payloadHash(_ bytes: [UInt8]) -> String { hex(SHA256.hash(data: bytes)) }

    /// The SHA-256 of an empty payload, hex.
    public static let emptyPayloadHash = payloadHash([])

    /// The headers a request needs to be accepted: `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (with
    /// temporary credentials) and `authorization`. `path` is the request path exactly as sent (already encoded with
    /// `encode(_:keepSlash: true)`); `query` holds the raw (unencoded) names and values; `headers` are further
    /// headers to sign (names in any case), beside `host`.
    public func sign(
        method: String, host: String, path: String, query: [(String, String)], headers: [(String, String)] = [],
        payloadHash: String, date: Date
    ) -> [(String, String)] {
        let (amzDate, day) = Self.timestamps(date)
        var signed: [(String, String)] = [
            ("host", host), ("x-amz-content-sha256", payloadHash), ("x-amz-date", amzDate),
        ]
        if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
        for (name, value) in headers { signed.append((name.lowercased(), value)) }
        signed.sort { $0.0 < $1.0 }
        let canonicalHeaders = signed.map { "\($0.0):\(Self.trim($0.1))\n" }.joined()
        let signedHeaders = signed.map(\.0).joined(separator: ";")
        let canonicalRequest = [
            method, path.isEmpty ? "/" : path, Self.canonicalQuery(query), canonicalHeaders, signedHeaders, payloadHash,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign =
            "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n" + Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8)))
        var key = SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
        var out = [("x-amz-date", amzDate), ("x-amz-content-sha256", payloadHash)]
        if let token = credentials.sessionToken { out.append(("x-amz-security-token", token)) }
        out.append(
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
            ))
        return out
    }

    /// The query string as signed and as sent: each name and value encoded, sorted by name, then value.
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = query.map { (encode($0.0), encode($0.1)) }
        let sorted = encoded.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        return sorted.map { $0.name + "=" + $0.value }.joined(separator: "&")
    }

    /// URI encoding as SigV4 defines it: every byte but the unreserved characters (A–Z a–z 0–9 - _ . ~) as %XY, and `/`
    /// kept only in paths.
    public static func encode(_ s: String, keepSlash: Bool = false) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// `20130524T000000Z` and `20130524`, in UTC.
    static func timestamps(_ date: Date) -> (String, String) {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        let day = String(format: "%04d%02d%02d", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday))
        return (day + String(format: "T%02d%02d%02dZ", Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec)), day)
    }

    /// Header values are signed with surrounding spaces removed and inner runs of spaces made one.
    static func trim(_ value: String) -> String {
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
