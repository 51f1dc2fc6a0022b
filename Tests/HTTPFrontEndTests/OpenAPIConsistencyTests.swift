import AdminAPI
import Crypto
import Engine
import EngineAPI
import Foundation
import HTTPFrontEnd
import Hummingbird
import StorageAPI
import Testing

@Suite struct OpenAPIConsistencyTests {
    /// The router's routes as "METHOD /path/{param}".
    func routerOperations() async throws -> Set<String> {
        let engine = try await GatehouseEngine.open(
            storage: InMemoryStorage(), rootKey: StaticRootKeyProvider(SymmetricKey(size: .bits256)),
            bootstrapAdmins: [])
        let settings = HTTPListener.Settings(
            name: "https", host: "127.0.0.1", port: 0, tls: nil, maxConnections: 1, idleTimeout: .seconds(1),
            handshakeTimeout: .seconds(1), maxMessageSize: 1024)
        let router = HTTPListener.apiRouter(
            services: AdminServices(serving: engine), settings: settings,
            acmeValidator: ACMEValidator(engine: engine, settings: ACMESettings()), readiness: { (true, "") })
        // The web console's HTML pages (`/console/…`) are not part of the API the document describes.
        return Set(
            router.routes.filter { !"\($0.path)".hasPrefix("/console") }.map { route in
                let path = "\(route.path)".split(separator: "/").map { part in
                    part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
                }
                return "\(route.method.rawValue) /" + path.joined(separator: "/")
            })
    }

    func documentOperations() throws -> Set<String> {
        let doc = try #require(
            try JSONSerialization.jsonObject(with: Data(AdminAPIDocument.json.utf8)) as? [String: Any])
        #expect(doc["openapi"] as? String == "3.1.0")
        let paths = try #require(doc["paths"] as? [String: [String: Any]])
        var out = Set<String>()
        for (path, methods) in paths {
            for method in methods.keys { out.insert("\(method.uppercased()) \(path)") }
        }
        return out
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let routes = try await routerOperations()
        let documented = try documentOperations()
        #expect(routes.count > 40)
        let undocumented = routes.subtracting(documented).sorted()
        let missing = documented.subtracting(routes).sorted()
        #expect(undocumented.isEmpty, "routes missing from the OpenAPI document: \(undocumented)")
        #expect(missing.isEmpty, "documented operations the server does not have: \(missing)")
    }

    /// The document with every `$ref` into `components` replaced by what it names.
    func resolvedDocument() throws -> [String: Any] {
        let doc = try #require(
            try JSONSerialization.jsonObject(with: Data(AdminAPIDocument.json.utf8)) as? [String: Any])
        func resolve(_ value: Any, depth: Int = 0) -> Any {
            if let map = value as? [String: Any] {
                if let ref = map["$ref"] as? String, ref.hasPrefix("#/components/"), depth < 20 {
                    var target: Any? = doc
                    for part in ref.dropFirst(2).split(separator: "/") {
                        target = (target as? [String: Any])?[String(part)]
                    }
                    if let target { return resolve(target, depth: depth + 1) }
                    Issue.record("unresolved \(ref)")
                }
                return map.mapValues { resolve($0, depth: depth) }
            }
            if let list = value as? [Any] { return list.map { resolve($0, depth: depth) } }
            return value
        }
        var resolved = doc
        resolved["paths"] = resolve(doc["paths"] as Any)
        return resolved
    }

    @Test func everyOperationDocumentsItsParametersAndErrors() throws {
        let doc = try resolvedDocument()
        let paths = try #require(doc["paths"] as? [String: [String: [String: Any]]])
        var ids = Set<String>()
        for (path, methods) in paths {
            let placeholders = Set(
                path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
            for (method, op) in methods {
                let params = (op["parameters"] as? [[String: Any]] ?? []).filter { $0["in"] as? String == "path" }
                #expect(Set(params.compactMap { $0["name"] as? String }) == placeholders, "\(method) \(path)")
                #expect(op["responses"] != nil, "\(method) \(path)")
                let id = try #require(op["operationId"] as? String, "\(method) \(path)")
                #expect(ids.insert(id).inserted, "operationId \(id) is used twice")
            }
        }
    }

    /// The generated Swift folds an operation's error answers into one `default` case (.ci/openapi/regenerate):
    /// that loses nothing only while every JSON error answer of the admin API is the one Error schema.
    @Test func everyAdminErrorAnswerIsTheErrorSchema() throws {
        let doc = try resolvedDocument()
        let errorSchema = try #require(
            ((doc["components"] as? [String: Any])?["schemas"] as? [String: Any])?["Error"] as? [String: Any])
        let paths = try #require(doc["paths"] as? [String: [String: [String: Any]]])
        var checked = 0
        // The JSON admin API; ACME under /api/v1/cert-manager answers RFC 7807 problems, as ACME does.
        for (path, methods) in paths where path.hasPrefix("/api/v1/") {
            for (method, op) in methods where !(op["tags"] as? [String] ?? []).contains("acme") {
                for (status, answer) in op["responses"] as? [String: [String: Any]] ?? [:]
                where (Int(status) ?? 0) >= 400 {
                    guard let content = answer["content"] as? [String: [String: Any]] else { continue }
                    for (type, media) in content {
                        #expect(type == "application/json", "\(method) \(path) \(status)")
                        #expect(
                            NSDictionary(dictionary: media["schema"] as? [String: Any] ?? [:])
                                .isEqual(to: errorSchema), "\(method) \(path) \(status)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 300)
    }
}

extension AdminServices {
    /// Every route group served by one real engine.
    init(serving engine: GatehouseEngine) {
        self.init(
            authenticator: engine, access: engine, secrets: engine, audit: engine, pki: engine, alerts: engine,
            kmipPKI: engine, ssh: engine, pam: engine, est: engine, acme: engine, keys: engine)
    }
}
