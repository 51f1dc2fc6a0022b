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
        return Set(
            router.routes.map { route in
                let path = "\(route.path)".split(separator: "/").map { part in
                    part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
                }
                return "\(route.method.rawValue) /" + path.joined(separator: "/")
            })
    }

    func documentOperations() throws -> Set<String> {
        let doc = try #require(
            try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
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

    @Test func everyOperationDocumentsItsParametersAndErrors() throws {
        let doc = try #require(
            try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
        let paths = try #require(doc["paths"] as? [String: [String: [String: Any]]])
        for (path, methods) in paths {
            let placeholders = Set(
                path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
            for (method, op) in methods {
                let params = (op["parameters"] as? [[String: Any]] ?? []).filter { $0["in"] as? String == "path" }
                #expect(Set(params.compactMap { $0["name"] as? String }) == placeholders, "\(method) \(path)")
                #expect(op["responses"] != nil, "\(method) \(path)")
                #expect(op["operationId"] is String, "\(method) \(path)")
            }
        }
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
