import AdminAPI
import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
import NIOSSL
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime

/// An error answer of the admin API: its status, stable code and message.
struct APIFailure: Error, CustomStringConvertible {
    let status: Int
    let code: String?
    let message: String?

    var description: String {
        guard let message else { return "HTTP \(status)" }
        return "\(message) (HTTP \(status), \(code ?? "?"))"
    }
}

/// Turns every answer with a status of 400 or more into an `APIFailure`, so a command reads only the answer it
/// expects and every failure is reported the same way.
struct FailureMiddleware: ClientMiddleware {
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.code >= 400 else { return (response, responseBody) }
        var bytes: [UInt8] = []
        if let responseBody { bytes = (try? await [UInt8](collecting: responseBody, upTo: 1 << 20)) ?? [] }
        let answer = try? JSONDecoder().decode(Components.Schemas.APIError.self, from: Data(bytes))
        throw APIFailure(status: response.status.code, code: answer?.error.code, message: answer?.error.message)
    }
}

/// Sends `Authorization: Bearer <token>`.
struct BearerMiddleware: ClientMiddleware {
    let token: String
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(token)"
        return try await next(request, body, baseURL)
    }
}

extension APIOptions {
    /// Runs `body` with the typed admin API client (generated from openapi.yaml), over mutual TLS with the admin
    /// certificate, or with the access token of `--token` / GATEHOUSE_TOKEN. An error answer or an unreachable
    /// daemon ends the command with the API's message (exit status 1); `body` catches an `APIFailure` it expects.
    func withClient<T>(anonymous: Bool = false, _ body: (Client) async throws -> T) async -> T {
        guard let url = URL(string: baseURL) else { fail("invalid server URL \(baseURL)") }
        let certs = dataDirectory + "/certs"
        let bearer =
            anonymous
            ? nil
            : tokenFile.map { readSecret(file: $0, what: "access token") }
                ?? ProcessInfo.processInfo.environment["GATEHOUSE_TOKEN"]
        let caFile = caCert ?? certs + "/ca.crt"
        var needed = [("CA certificate", caFile, "--ca-cert")]
        let certificateFile = cert ?? certs + "/admin.crt"
        let keyFile = key ?? certs + "/admin.key"
        if bearer == nil && !anonymous {
            needed += [("client certificate", certificateFile, "--cert"), ("client key", keyFile, "--key")]
        }
        for (what, path, option) in needed where !FileManager.default.fileExists(atPath: path) {
            fail(missingFileHint(what: what, path: path, option: option))
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.trustRoots = .file(caFile)
        if bearer == nil && !anonymous {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            } catch {
                fail(
                    "cannot load the client certificate \(certificateFile) and key \(keyFile) (\(error)): "
                        + "are they PEM files, and is the key readable by you?")
            }
        }
        // One plain TCP connect first: a daemon that is not running is reported at once. (The HTTP client retries a
        // refused connection until its connect timeout.)
        if let host = url.host {
            let port = url.port ?? 443
            do {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(10)).connect(host: host, port: port).get()
                try? await channel.close()
            } catch {
                fail(unreachableHint(error))
            }
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(120))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let client = Client(
            serverURL: url, transport: AsyncHTTPClientTransport(configuration: .init(client: http)),
            middlewares: [FailureMiddleware()] + (bearer.map { [BearerMiddleware(token: $0)] } ?? []))
        let result: Result<T, any Error>
        do { result = .success(try await body(client)) } catch { result = .failure(error) }
        try? await http.shutdown()
        switch result {
        case .success(let value): return value
        case .failure(let error):
            if let failure = apiFailure(error) { fail(failure.description) }
            if let clientError = error as? ClientError {
                // No answer at all: the transport failed (refused, unresolvable, TLS, timeout).
                if clientError.response == nil {
                    fail(unreachableHint(clientError.underlyingError))
                }
                fail("\(clientError.causeDescription): \(clientError.underlyingError)")
            }
            fail("\(error)")
        }
    }

    /// What to do when a file the CLI needs is missing: usually the command runs outside the directory the daemon
    /// was started in, or before `gatehouse init`.
    func missingFileHint(what: String, path: String, option: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dataDirectory, isDirectory: &isDirectory) || !isDirectory.boolValue {
            return """
                no data directory at \(dataDirectory) (working directory \(cwd)).
                  Run this where you ran `gatehouse serve`, or give --data-dir DIR (or GATEHOUSE_DATA_DIR) \
                naming the daemon's data directory. A new one: `gatehouse init --data-dir DIR`.
                """
        }
        return """
            the \(what) \(path) does not exist.
              `gatehouse init --data-dir \(dataDirectory)` makes the development certificates; \
            give \(option) FILE for another one.
            """
    }

    /// What to do when no daemon answers: name the URL and the data directory it came from.
    func unreachableHint(_ error: any Error) -> String {
        let text = "\(error)"
        let refused = text.contains("Connection refused") || text.contains("connectTimeout")
        let origin =
            server != nil
            ? "given with --server"
            : "the HTTPS port in \(dataDirectory)/run/listeners.json, else 8443"
        guard refused else { return "cannot reach the admin API at \(baseURL) (\(origin)): \(error)" }
        return """
            no daemon answers at \(baseURL) (\(origin)): connection refused.
              Is it running? Start it with `gatehouse serve --data-dir \(dataDirectory)`, or point this command \
            at yours with --data-dir DIR (its data directory) or --server URL.
            """
    }

    /// Prints a value of the API: as JSON, or as a table of `columns` (a list, or one object).
    func show(_ value: some Encodable, columns: [String]) { show(jsonObject(value), columns: columns) }
}

/// The value of an enumerated option (nil when the option is absent); another value ends the command with the values
/// the API accepts.
func choice<Value: RawRepresentable & CaseIterable>(_ text: String?, _ option: String) -> Value?
where Value.RawValue == String {
    guard let text else { return nil }
    guard let value = Value(rawValue: text) else {
        fail("--\(option) must be one of: \(Value.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return value
}

/// The value of an enumerated option that has a default.
func choice<Value: RawRepresentable & CaseIterable>(_ text: String, _ option: String) -> Value
where Value.RawValue == String {
    guard let value: Value = choice(Optional(text), option) else { fail("--\(option) is missing") }
    return value
}

/// An RFC 3339 time option (nil when absent); another value ends the command.
func rfc3339(_ text: String?, _ option: String) -> Date? {
    guard let text else { return nil }
    guard let date = ISO8601DateFormatter().date(from: text) else {
        fail("--\(option) must be an RFC 3339 time such as 2026-01-31T00:00:00Z")
    }
    return date
}

/// The API error inside an error the client threw, if it is one.
func apiFailure(_ error: any Error) -> APIFailure? {
    (error as? APIFailure) ?? ((error as? ClientError)?.underlyingError as? APIFailure)
}

/// An API value as JSON values (dates as RFC 3339 strings), for tables and JSON output.
func jsonObject(_ value: some Encodable) -> Any? {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    guard let data = try? encoder.encode(value) else { return nil }
    return try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
}
