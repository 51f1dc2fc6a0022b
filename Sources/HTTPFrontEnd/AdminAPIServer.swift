import AdminAPI
import EngineAPI
import Foundation
import HTTPTypes
import Hummingbird
import OpenAPIHummingbird
import OpenAPIRuntime

/// The caller of the admin API request being handled. swift-openapi-hummingbird passes the generated handlers only
/// the operation's input, so `AdminCallMiddleware` leaves a resolver here; a handler resolves the caller (certificate
/// principal or bearer token) when it calls the engine, as the hand-written routes did.
enum AdminCall {
    /// (A class, not a bare closure: the release build of Swift 6.3 crashed in `swift_task_localValuePush` with an
    /// optional function type as the task-local value; found by `gatehouse-bench est` against a release daemon.)
    final class Resolver: Sendable {
        let resolve: @Sendable () async throws -> CallContext
        init(_ resolve: @escaping @Sendable () async throws -> CallContext) { self.resolve = resolve }
    }

    @TaskLocal static var resolver: Resolver?
}

/// Prepares `/api/v1` requests for the generated server: resolves the caller lazily, holds the body to the
/// listener's limit (413) before anything decodes it, and reads a body sent without a JSON media type as JSON.
struct AdminCallMiddleware: RouterMiddleware {
    let api: AdminAPI

    func handle(
        _ request: Request, context: GatehouseRequestContext,
        next: (Request, GatehouseRequestContext) async throws -> Response
    ) async throws -> Response {
        guard request.uri.path.hasPrefix("/api/v1/") else { return try await next(request, context) }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > api.maxBodySize {
            throw HTTPError(.contentTooLarge, message: "the request body exceeds the listener's limit")
        }
        var request = request
        if request.method != .get && request.method != .head {
            _ = try await request.collectBody(upTo: api.maxBodySize)
            // Every request body of the admin API is JSON. `curl -d` labels one as a form and other clients send
            // none; both are read as JSON, as before the generated server. Any other declared type gets 415.
            let type = request.headers[.contentType]?.lowercased()
            if type == nil || type?.hasPrefix("application/x-www-form-urlencoded") == true {
                var head = request.head
                head.headerFields[.contentType] = "application/json"
                request = Request(head: head, body: request.body)
            }
        }
        let prepared = request
        let resolver = AdminCall.Resolver { try await api.context(prepared, context) }
        return try await AdminCall.$resolver.withValue(resolver) { try await next(prepared, context) }
    }
}

/// An engine value as the generated type of the same JSON shape: the engine's `Codable` values are the wire format,
/// and the document describes them, so one encoding and decoding converts between the two.
func wire<T: Decodable>(_ value: some Encodable, as _: T.Type = T.self) throws -> T {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    do {
        return try decoder.decode(T.self, from: try encoder.encode(value))
    } catch {
        throw EngineError(.internal, "cannot convert \(type(of: value)) to \(T.self)")
    }
}

/// RFC 3339 times as the admin API writes them (whole seconds) and reads them (fractional seconds allowed).
struct AdminDateTranscoder: DateTranscoder {
    func encode(_ date: Date) throws -> String {
        date.formatted(.iso8601)
    }

    func decode(_ text: String) throws -> Date {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        throw DecodingError.dataCorrupted(
            .init(codingPath: [], debugDescription: "not an RFC 3339 time such as 2026-01-31T12:00:00Z"))
    }
}

/// The generated admin API (`Sources/AdminAPI/Generated/Server.swift`) over the engine's narrow protocols. The
/// handlers are in `AdminHandler+*.swift`, one file per area.
struct AdminHandler: APIProtocol {
    let api: AdminAPI
    var services: AdminServices { api.services }
    var access: any AccessEngine { services.access }

    static let noBody = EngineError(.invalidArgument, "this operation needs a JSON body")

    /// Registers every generated operation on the router.
    static func register(on router: Router<GatehouseRequestContext>, api: AdminAPI) {
        router.add(middleware: AdminCallMiddleware(api: api))
        let configuration = Configuration(dateTranscoder: AdminDateTranscoder(), jsonEncodingOptions: [.sortedKeys])
        do {
            try AdminHandler(api: api).registerHandlers(
                on: router, serverURL: Servers.Server1.url(), configuration: configuration)
        } catch {
            // The paths are fixed in the generated code; a failure here is a programming error found by every test.
            preconditionFailure("cannot register the admin API: \(error)")
        }
    }

    /// The caller, resolved from the request's certificate or bearer token.
    func call() async throws -> CallContext {
        guard let resolver = AdminCall.resolver else { throw EngineError(.internal, "no caller for this request") }
        return try await resolver.resolve()
    }

    /// `limit`: 1–1000, 100 when absent (the document's bounds, which the generated decoder does not check).
    func limit(_ value: Int?) throws -> Int {
        guard let value else { return 100 }
        guard (1...1000).contains(value) else {
            throw HTTPError(.badRequest, message: "limit must be an integer from 1 to 1000")
        }
        return value
    }

    /// A text query parameter, 400 when longer than `max` characters (what the document declares).
    func text(_ value: String?, _ name: String, max: Int = 200) throws -> String? {
        guard let value else { return nil }
        guard value.unicodeScalars.count <= max else {
            throw HTTPError(.badRequest, message: "\(name) is longer than \(max) characters")
        }
        return value
    }

    /// One page of a list the engine returns whole (bounded lists), ordered by `key`; `next` is the last key of the
    /// page when more follow.
    func paginate<T>(_ items: [T], after: String?, limit: Int?, key: (T) -> String) throws -> ([T], String?) {
        let limit = try self.limit(limit)
        let sorted = items.sorted { key($0) < key($1) }
        let rest = after.map { a in sorted.filter { key($0) > a } } ?? sorted
        let page = Array(rest.prefix(limit))
        return (page, rest.count > limit ? page.last.map(key) : nil)
    }
}
