import AdminAPI
import EngineAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OpenAPIRuntime
import ServerSupport
import Synchronization

/// The admin API's one mapping from `EngineError` to HTTP: a status and a JSON body
/// `{"error": {"code": "...", "message": "..."}}` with a stable code and a human message.
public enum HTTPErrorMapping {
    /// The HTTP status for an engine error code.
    public static func status(for code: EngineError.Code) -> HTTPResponse.Status {
        switch code {
        case .unauthenticated: return .unauthorized
        case .permissionDenied, .sensitive, .notExtractable: return .forbidden
        case .notFound: return .notFound
        case .gone: return .gone
        case .alreadyExists, .conflict: return .conflict
        case .invalidArgument: return .badRequest
        case .wrongState, .outsideUseWindow: return .conflict
        case .unavailable: return .serviceUnavailable
        case .locked: return .tooManyRequests
        case .featureNotSupported: return .notImplemented
        case .cryptographicFailure, .internal: return .internalServerError
        default: return .internalServerError
        }
    }

    /// A JSON error response.
    public static func response(status: HTTPResponse.Status, code: String, message: String) -> Response {
        let body: [String: [String: String]] = ["error": ["code": code, "message": message]]
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"gatehouse\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The response for any error thrown by a route.
    public static func response(for error: any Error) -> Response {
        if let e = error as? ServerError {
            // The generated admin API wraps what it throws: a handler's own error maps as usual; a request the
            // generated decoder refused keeps the status the runtime chose (400, 406 or 415) with its reason.
            let cause = e.underlyingError
            if cause is EngineError || cause is HTTPError || cause is NIOTooManyBytesError {
                return response(for: cause)
            }
            switch e.httpStatus {
            case .badRequest, .notAcceptable, .unsupportedMediaType:
                let code = e.httpStatus == .badRequest ? "bad_request" : "http_\(e.httpStatus.code)"
                return response(status: e.httpStatus, code: code, message: AdminAPIProblem.message(for: e))
            default:
                return response(status: .internalServerError, code: "internal", message: "internal error")
            }
        }
        if let e = error as? EngineError {
            return response(status: status(for: e.code), code: e.code.rawValue, message: e.message)
        }
        if let e = error as? HTTPError {
            let code: String
            switch e.status {
            case .contentTooLarge: code = "payload_too_large"
            case .notFound: code = "not_found"
            case .badRequest: code = "bad_request"
            case .methodNotAllowed: code = "method_not_allowed"
            default: code = "http_\(e.status.code)"
            }
            return response(status: e.status, code: code, message: e.body ?? e.status.reasonPhrase)
        }
        if error is NIOTooManyBytesError {
            return response(
                status: .contentTooLarge, code: "payload_too_large",
                message: "the request body exceeds the listener's limit")
        }
        if error is DecodingError {
            return response(
                status: .badRequest, code: "invalid_json",
                message: "the request body is not valid JSON for this endpoint")
        }
        return response(status: .internalServerError, code: "internal", message: "internal error")
    }
}

/// What was wrong with a request the generated admin API refused to decode, in the words of the document: the field
/// or parameter, and its allowed values when it is an enumeration.
enum AdminAPIProblem {
    static func message(for error: ServerError) -> String {
        guard let decoding = error.underlyingError as? DecodingError else {
            return String(error.causeDescription.prefix(300))
        }
        let path: [any CodingKey]
        let detail: String
        switch decoding {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            (path, detail) = (c.codingPath, c.debugDescription)
        case .keyNotFound(let key, let c):
            return "\((c.codingPath + [key]).map(\.stringValue).joined(separator: ".")) is required"
        @unknown default:
            return "the request does not match the API document"
        }
        if let name = path.last?.stringValue {
            if let values = enumerations[error.operationID]?[name] {
                return "\(name) must be one of \(values.joined(separator: ", "))"
            }
            return "\(name) is not valid: \(detail.prefix(200))"
        }
        // Query parameters are decoded without a coding path: name the enumerated one whose value is not allowed.
        let query = URLComponents(string: error.request.path ?? "")?.queryItems ?? []
        for item in query {
            if let values = enumerations[error.operationID]?[item.name], let value = item.value, !values.contains(value)
            {
                return "\(item.name) must be one of \(values.joined(separator: ", "))"
            }
        }
        return "the request does not match this endpoint: \(detail.prefix(200))"
    }

    /// operationId → enumerated parameter → allowed values, read once from the document.
    private static let enumerations: [String: [String: [String]]] = {
        guard
            let document = try? JSONSerialization.jsonObject(with: Data(AdminAPIDocument.json.utf8)) as? [String: Any],
            let paths = document["paths"] as? [String: Any]
        else { return [:] }
        let shared = (document["components"] as? [String: Any])?["parameters"] as? [String: Any] ?? [:]
        var table: [String: [String: [String]]] = [:]
        for case let item as [String: Any] in paths.values {
            for case let op as [String: Any] in item.values {
                guard let id = op["operationId"] as? String else { continue }
                for case var p as [String: Any] in op["parameters"] as? [Any] ?? [] {
                    if let ref = p["$ref"] as? String,
                        let resolved = shared[String(ref.split(separator: "/").last ?? "")] as? [String: Any]
                    {
                        p = resolved
                    }
                    if let name = p["name"] as? String,
                        let values = (p["schema"] as? [String: Any])?["enum"] as? [String]
                    {
                        table[id, default: [:]][name] = values
                    }
                }
            }
        }
        return table
    }()
}

/// Maps thrown errors to JSON responses and records per-route metrics.
public struct ErrorAndMetricsMiddleware: RouterMiddleware {
    public typealias Context = GatehouseRequestContext
    let listener: String
    let routes: RouteTable
    let failures: FailureRateLimiter?

    public init(listener: String, routes: RouteTable = RouteTable(), failures: FailureRateLimiter? = nil) {
        self.listener = listener
        self.routes = routes
        self.failures = failures
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws
        -> Response
    {
        let start = ContinuousClock.now
        var response: Response
        // A source that keeps failing authentication is turned away before any work (and any audit event).
        let source = failures == nil ? nil : context.peerAddress
        // (A client with a certificate the listener verified is not held back by others failing from its address.)
        if let failures, case (false, let retryAfter) = failures.check(source),
            !(await context.principal().verifiedByListener)
        {
            await failures.delayRefusal()
            response = Self.tooManyFailures(request, retryAfter: retryAfter)
            RequestMetrics.record(
                listener: listener, operation: "\(Self.methodLabel(request.method)) rate-limited", status: 429,
                elapsed: ContinuousClock.now - start)
            return response
        }
        defer {
            if let failures, response.status == .unauthorized || response.status == .forbidden {
                failures.recordFailure(source)
            }
        }
        do {
            response = try await next(request, context)
        } catch let e as HTTPError where e.status == .notFound {
            // The path exists with other methods: 405 with Allow (RFC 9110 §15.5.6), not 404.
            let allowed = routes.methods(for: request.uri.path)
            if allowed.isEmpty || allowed.contains(request.method.rawValue) {
                response = HTTPErrorMapping.response(for: e)
            } else {
                var r = HTTPErrorMapping.response(
                    status: .methodNotAllowed, code: "method_not_allowed",
                    message: "\(request.method) is not allowed here; allowed: \(allowed.joined(separator: ", "))")
                r.headers[.allow] = allowed.joined(separator: ", ")
                response = r
            }
        } catch {
            response = HTTPErrorMapping.response(for: error)
        }
        RequestMetrics.record(
            listener: listener, operation: "\(Self.methodLabel(request.method)) \(context.endpointPath ?? "unmatched")",
            status: Int(response.status.code), elapsed: ContinuousClock.now - start)
        return response
    }

    /// The method as a metric label: the methods routes use, every other one as `OTHER`, so that no client can add
    /// label values (and metric series) at will.
    static func methodLabel(_ method: HTTPRequest.Method) -> String {
        switch method {
        case .get, .head, .post, .put, .delete, .patch, .options: method.rawValue
        default: "OTHER"
        }
    }

    /// 429 with Retry-After, as an ACME problem document on ACME paths (RFC 8555 §6.6 `rateLimited`).
    static func tooManyFailures(_ request: Request, retryAfter: Int) -> Response {
        let message = "too many failed authentications from this address; retry in \(retryAfter) s"
        var response: Response
        if request.uri.path.contains("/acme/") {
            let body = #"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"\#(message)","status":429}"#
            response = Response(
                status: .tooManyRequests, headers: [.contentType: "application/problem+json"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        } else {
            response = HTTPErrorMapping.response(status: .tooManyRequests, code: "rate_limited", message: message)
        }
        response.headers[.retryAfter] = String(retryAfter)
        return response
    }
}

/// The routes of a router (filled in after registration), to tell "no such path" (404) from "no such method" (405).
public final class RouteTable: Sendable {
    private let entries = Mutex<[(method: String, segments: [Substring])]>([])

    public init() {}

    /// Records the router's routes.
    public func record<Context>(_ router: Router<Context>) {
        let list = router.routes.map { (method: $0.method.rawValue, segments: "\($0.path)".split(separator: "/")) }
        entries.withLock { $0 = list }
    }

    /// Methods registered for paths matching `path` (sorted).
    public func methods(for path: String) -> [String] {
        let parts = path.split(separator: "/")
        let list = entries.withLock { $0 }
        var out = Set<String>()
        for entry in list where entry.segments.count == parts.count {
            if zip(entry.segments, parts).allSatisfy({ $0.hasPrefix(":") || $0.hasPrefix("{") || $0 == $1 }) {
                out.insert(entry.method)
            }
        }
        return out.sorted()
    }
}
