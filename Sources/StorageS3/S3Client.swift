import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import StorageAPI
import Synchronization

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Where an S3-compatible bucket is and how to sign for it.
public struct S3Location: Sendable, Hashable {
    /// `https://s3.eu-west-3.amazonaws.com`, `http://127.0.0.1:9000`, …
    public var endpoint: String
    public var region: String
    public var bucket: String
    /// Put before every key (e.g. `gatehouse/recordings/`).
    public var prefix: String
    /// `endpoint/bucket/key` (MinIO, moto, most S3-compatible servers) rather than `bucket.endpoint/key`.
    public var pathStyle: Bool
    /// A PEM file of CAs to trust for an `https` endpoint instead of the system's.
    public var caFile: String?

    public init(
        endpoint: String, region: String, bucket: String, prefix: String = "", pathStyle: Bool = true,
        caFile: String? = nil
    ) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.prefix = prefix
        self.pathStyle = pathStyle
        self.caFile = caFile
    }
}

/// S3 credentials from the environment or from a shared credentials file (the AWS CLI's INI format).
public enum S3Credentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` first; then `[profile]` of `file`. Throws a
    /// message that says what to set when neither has them.
    public static func resolve(environment: [String: String], file: String?, profile: String) throws
        -> SigV4.Credentials
    {
        if let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"],
            !secret.isEmpty
        {
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return SigV4.Credentials(accessKeyId: id, secretAccessKey: secret, sessionToken: token)
        }
        guard let file, !file.isEmpty else {
            throw StorageError(
                .unavailable,
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pam.recording_s3.credentials_file"
            )
        }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw StorageError(.unavailable, "cannot read the S3 credentials file \(file)")
        }
        var section = ""
        var values: [String: String] = [:]
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                continue
            }
            guard section == profile, let eq = line.firstIndex(of: "=") else { continue }
            values[line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: eq)...]
                .trimmingCharacters(in: .whitespaces)
        }
        guard let id = values["aws_access_key_id"], !id.isEmpty, let secret = values["aws_secret_access_key"],
            !secret.isEmpty
        else {
            throw StorageError(
                .unavailable,
                "the S3 credentials file \(file) has no aws_access_key_id and aws_secret_access_key under [\(profile)]")
        }
        return SigV4.Credentials(accessKeyId: id, secretAccessKey: secret, sessionToken: values["aws_session_token"])
    }
}

/// The few S3 calls the recording store makes (PUT, GET, DELETE object; ListObjectsV2), signed with SigV4 over
/// async-http-client. Every failure is a `StorageError` whose detail says what S3 answered and what to check.
public struct S3Client: Sendable {
    public let location: S3Location
    let signer: SigV4
    let http: HTTPClient
    let scheme: String
    let host: String
    let port: Int?
    /// A request that takes longer fails (and is retried by the shipper's next round).
    let timeout: TimeAmount = .seconds(30)
    /// Bounds what is read of a response: a piece, or a page of a listing.
    static let maxResponse = 16 << 20
    /// Requests sent, by kind (`PUT`, `GET`, `HEAD`, `DELETE`, `LIST` for a page of a listing).
    let counts = RequestCounts()

    final class RequestCounts: Sendable {
        let map = Mutex<[String: Int]>([:])
        func add(_ kind: String) { map.withLock { $0[kind, default: 0] += 1 } }
    }

    /// How many requests of each kind this client has sent (`PUT`, `GET`, `HEAD`, `DELETE`, `LIST`).
    public var requestCounts: [String: Int] { counts.map.withLock { $0 } }

    public init(location: S3Location, credentials: SigV4.Credentials) throws {
        guard let url = URL(string: location.endpoint), let scheme = url.scheme?.lowercased(),
            ["http", "https"].contains(scheme),
            let host = url.host, !host.isEmpty
        else {
            throw StorageError(.unavailable, "the S3 endpoint '\(location.endpoint)' is not an http:// or https:// URL")
        }
        guard !location.bucket.isEmpty else {
            throw StorageError(.unavailable, "no S3 bucket is set (pam.recording_s3.bucket)")
        }
        self.location = location
        self.signer = SigV4(credentials: credentials, region: location.region)
        self.scheme = scheme
        self.host = host
        self.port = url.port
        self.http = try Self.client(caFile: scheme == "https" ? location.caFile : nil)
    }

    /// One HTTP client per trust setting for the life of the process (async-http-client requires a client to be shut
    /// down before it is released; these never are).
    static let clients = Mutex<[String: HTTPClient]>([:])

    static func client(caFile: String?) throws -> HTTPClient {
        try clients.withLock { cache in
            if let c = cache[caFile ?? ""] { return c }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let caFile {
                guard FileManager.default.isReadableFile(atPath: caFile) else {
                    throw StorageError(.unavailable, "cannot read the S3 CA file \(caFile)")
                }
                tls.trustRoots = .file(caFile)
            }
            var config = HTTPClient.Configuration(
                tlsConfiguration: tls, redirectConfiguration: .disallow,
                timeout: .init(connect: .seconds(10), read: .seconds(30)))
            config.httpVersion = .http1Only
            let c = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
            cache[caFile ?? ""] = c
            return c
        }
    }

    var hostHeader: String {
        let base = location.pathStyle ? host : location.bucket + "." + host
        return port.map { "\(base):\($0)" } ?? base
    }

    /// The request path for `key` (nil: the bucket itself), encoded once as SigV4 wants.
    func path(_ key: String?) -> String {
        let encodedKey = key.map { SigV4.encode($0, keepSlash: true) }
        if location.pathStyle { return "/" + SigV4.encode(location.bucket) + (encodedKey.map { "/" + $0 } ?? "") }
        return "/" + (encodedKey ?? "")
    }

    struct Response {
        var status: HTTPResponseStatus
        var body: ByteBuffer
    }

    func send(_ method: HTTPMethod, key: String?, query: [(String, String)] = [], body: [UInt8] = []) async throws
        -> Response
    {
        let path = path(key)
        let queryString = SigV4.canonicalQuery(query)
        let payloadHash = body.isEmpty ? SigV4.emptyPayloadHash : SigV4.payloadHash(body)
        var request = HTTPClientRequest(
            url: "\(scheme)://\(hostHeader)\(path)" + (queryString.isEmpty ? "" : "?" + queryString))
        request.method = method
        request.headers.add(name: "Host", value: hostHeader)
        for (name, value) in signer.sign(
            method: method.rawValue, host: hostHeader, path: path, query: query, payloadHash: payloadHash, date: Date())
        {
            request.headers.add(name: name, value: value)
        }
        if !body.isEmpty || method == .PUT {
            request.headers.add(name: "Content-Length", value: String(body.count))
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        counts.add(key == nil && method == .GET ? "LIST" : method.rawValue)
        let what = "\(method.rawValue) \(location.endpoint)\(path)"
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch {
            throw StorageError(.unavailable, "cannot reach the S3 endpoint \(location.endpoint) (\(what)): \(error)")
        }
        let bytes: ByteBuffer
        do {
            bytes = try await response.body.collect(upTo: Self.maxResponse)
        } catch {
            throw StorageError(.unavailable, "S3 \(what): the response was cut off or too large: \(error)")
        }
        return Response(status: response.status, body: bytes)
    }

    /// A failure answer as a message that says what to check.
    func failure(_ response: Response, _ what: String) -> StorageError {
        let fields =
            XMLFields.parse(Array(response.body.readableBytesView), element: "Error", fields: ["Code", "Message"]).first
            ?? [:]
        let code = fields["Code"] ?? "HTTP \(response.status.code)"
        let message = fields["Message"].map { ": " + $0 } ?? ""
        switch code {
        case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "TokenRefreshRequired",
            "AuthorizationHeaderMalformed", "InvalidSecurity", "AccessDenied", "AllAccessDisabled":
            return StorageError(
                .unavailable,
                "S3 refused the credentials for bucket \(location.bucket) (\(code)\(message)); check AWS_ACCESS_KEY_ID and "
                    + "AWS_SECRET_ACCESS_KEY or pam.recording_s3.credentials_file, and the bucket policy")
        case "NoSuchBucket":
            return StorageError(.unavailable, "the S3 bucket \(location.bucket) does not exist at \(location.endpoint)")
        default:
            return StorageError(.unavailable, "S3 \(what) failed (\(code)\(message))")
        }
    }

    public func put(_ key: String, _ bytes: [UInt8]) async throws {
        let r = try await send(.PUT, key: key, body: bytes)
        guard r.status == .ok else { throw failure(r, "PUT \(key)") }
    }

    /// The object's bytes, or nil when there is no such key.
    public func get(_ key: String) async throws -> [UInt8]? {
        let r = try await send(.GET, key: key)
        if r.status == .notFound,
            XMLFields.parse(Array(r.body.readableBytesView), element: "Error", fields: ["Code"]).first?["Code"]
                == "NoSuchKey"
        {
            return nil
        }
        guard r.status == .ok else { throw failure(r, "GET \(key)") }
        return Array(r.body.readableBytesView)
    }

    /// Whether the object exists (HEAD: no body is sent back).
    public func exists(_ key: String) async throws -> Bool {
        let r = try await send(.HEAD, key: key)
        if r.status == .notFound { return false }
        guard r.status == .ok else { throw failure(r, "HEAD \(key)") }
        return true
    }

    public func delete(_ key: String) async throws {
        let r = try await send(.DELETE, key: key)
        guard r.status == .noContent || r.status == .ok else { throw failure(r, "DELETE \(key)") }
    }

    /// Every key under `prefix` with its size, in key order, page by page (ListObjectsV2, 1,000 keys a page).
    public func list(prefix: String) async throws -> [(key: String, size: Int)] {
        var out: [(key: String, size: Int)] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let r = try await send(.GET, key: nil, query: query)
            guard r.status == .ok else { throw failure(r, "list \(prefix)") }
            let bytes = Array(r.body.readableBytesView)
            for entry in XMLFields.parse(bytes, element: "Contents", fields: ["Key", "Size"]) {
                guard let key = entry["Key"], let size = entry["Size"].flatMap({ Int($0) }) else {
                    throw StorageError(.corrupt, "S3 listed an object without a key or size under \(prefix)")
                }
                out.append((key, size))
            }
            let page =
                XMLFields.parse(bytes, element: "ListBucketResult", fields: ["IsTruncated", "NextContinuationToken"])
                .first ?? [:]
            token = page["IsTruncated"] == "true" ? page["NextContinuationToken"] : nil
            if page["IsTruncated"] == "true", token == nil {
                throw StorageError(.corrupt, "S3 said the listing of \(prefix) goes on but gave no continuation token")
            }
        } while token != nil
        return out.sorted { $0.key < $1.key }
    }

    /// HEAD of the bucket: reachable, and the credentials are accepted.
    public func probe() async throws {
        let r = try await send(.HEAD, key: nil)
        guard r.status == .ok else {
            // HEAD answers carry no body: name the likely cause from the status.
            switch r.status {
            case .forbidden:
                throw StorageError(
                    .unavailable,
                    "S3 refused the credentials for bucket \(location.bucket) (HTTP 403); check AWS_ACCESS_KEY_ID and "
                        + "AWS_SECRET_ACCESS_KEY or pam.recording_s3.credentials_file, and the bucket policy")
            case .notFound:
                throw StorageError(
                    .unavailable, "the S3 bucket \(location.bucket) does not exist at \(location.endpoint)")
            default: throw failure(r, "HEAD bucket")
            }
        }
    }
}

/// The text of chosen child elements of every `element` in an XML document: all the recording store reads of S3's
/// answers (ListBucketResult, Contents, Error). Foundation's XMLParser does the parsing.
enum XMLFields {
    static func parse(_ bytes: [UInt8], element: String, fields: Set<String>) -> [[String: String]] {
        guard !bytes.isEmpty else { return [] }
        let collector = Collector(element: element, fields: fields)
        let parser = XMLParser(data: Data(bytes))
        parser.shouldResolveExternalEntities = false
        parser.delegate = collector
        _ = parser.parse()
        return collector.found
    }

    final class Collector: NSObject, XMLParserDelegate {
        let element: String
        let fields: Set<String>
        var found: [[String: String]] = []
        var current: [String: String]?
        var depth = 0
        var elementDepth = -1
        var field: String?
        var text = ""

        init(element: String, fields: Set<String>) {
            self.element = element
            self.fields = fields
        }

        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            depth += 1
            if name == element, current == nil {
                current = [:]
                elementDepth = depth
            } else if current != nil, depth == elementDepth + 1, fields.contains(name) {
                field = name
                text = ""
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if field != nil { text += string }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if let f = field, name == f, depth == elementDepth + 1 {
                current?[f] = text
                field = nil
            } else if name == element, depth == elementDepth, let c = current {
                found.append(c)
                current = nil
                elementDepth = -1
            }
            depth -= 1
        }
    }
}
