import Foundation
import Testing

/// The module rules of ARCHITECTURE.md that SwiftPM cannot enforce: front ends never import the engine
/// implementation or a storage backend; codecs never import I/O, TLS, HTTP servers or the engine API.
@Suite struct LayeringTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func imports(of target: String) throws -> [(file: String, module: String)] {
        let dir = Self.root.appendingPathComponent("Sources/\(target)")
        // A target that is missing or has no Swift file would make every rule below pass: that is a failure.
        guard let files = FileManager.default.enumerator(atPath: dir.path) else {
            Issue.record("Sources/\(target) is missing")
            return []
        }
        var out: [(String, String)] = []
        var swiftFiles = 0
        for case let file as String in files where file.hasSuffix(".swift") {
            swiftFiles += 1
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                if let i = words.firstIndex(of: "import"), i + 1 < words.count,
                    words[..<i].allSatisfy({
                        ["@preconcurrency", "public", "internal", "package", "@testable"].contains($0)
                    })
                {
                    out.append((file, words[i + 1]))
                }
            }
        }
        #expect(swiftFiles > 0, "Sources/\(target) has no Swift file")
        return out
    }

    var targets: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Sources").path)) ?? []
    }

    /// Front ends, and the protocol services they share (KMIPService: KMIP over TTLV and over HTTPS).
    var frontEnds: [String] { targets.filter { $0.hasSuffix("FrontEnd") || $0.hasSuffix("Service") } }

    @Test func frontEndsDoNotImportEngineOrStorage() throws {
        let frontEnds = self.frontEnds
        #expect(
            Set(["HTTPFrontEnd", "KMIPFrontEnd", "PGProxyFrontEnd", "KMIPService"]).isSubset(of: frontEnds),
            "\(frontEnds)")
        for target in frontEnds {
            for (file, module) in try imports(of: target) {
                #expect(
                    !["Engine", "StorageAPI", "StorageSQLite", "StoragePostgres"].contains(module),
                    "\(target)/\(file) imports \(module)")
                // Front ends share protocol services (KMIPService), never each other.
                #expect(
                    !module.hasSuffix("FrontEnd") || module == target,
                    "\(target)/\(file) imports the front end \(module)")
            }
        }
    }

    /// Each front end takes the narrow protocol(s) it calls, never the whole engine (`Engine` is the union of them all).
    @Test func frontEndsTakeNarrowEngineProtocols() throws {
        #expect(frontEnds.count >= 4)
        let whole = try NSRegularExpression(pattern: #"(any|some|:)\s*Engine\b|<\w+:\s*Engine\b"#)
        for target in frontEnds {
            let dir = Self.root.appendingPathComponent("Sources/\(target)")
            let files = (FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String] ?? []).filter {
                $0.hasSuffix(".swift")
            }
            #expect(!files.isEmpty)
            for file in files {
                let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                let hits = whole.numberOfMatches(in: text, range: NSRange(text.startIndex..., in: text))
                #expect(hits == 0, "\(target)/\(file) takes the whole engine")
            }
        }
    }

    /// No hand-written Swift file grows past 1,500 lines (generated files say so on their first line).
    /// Each engine domain lives in its own folder as a service over the core; a service holds another domain only
    /// through a narrow protocol (e.g. `CertificateIssuing`), never its service type, and never the whole engine.
    @Test func engineDomainsAreServicesThatHoldEachOtherThroughProtocols() throws {
        let engine = Self.root.appendingPathComponent("Sources/Engine")
        let domains = ["Access", "Audit", "Secrets", "Keys", "PKI", "ACME", "EST", "SSH", "PAM"]
        let services = [
            "AccessService", "AuditService", "SecretsService", "KeysService", "PKIService", "ACMEService",
            "ESTService", "SSHService", "PAMService",
        ]
        for (domain, service) in zip(domains, services) {
            let dir = engine.appendingPathComponent(domain)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }
            #expect(!files.isEmpty, "Sources/Engine/\(domain) has no Swift file")
            var declared = false
            for file in files {
                let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                #expect(!text.contains("extension GatehouseEngine"), "\(domain)/\(file) extends GatehouseEngine")
                if text.contains("final class \(service): EngineService") { declared = true }
                for line in text.split(separator: "\n") where line.hasPrefix("    let ") || line.hasPrefix("    var ") {
                    for other in services + ["GatehouseEngine"] where other != service {
                        #expect(
                            !line.contains(": \(other)") && !line.contains(": any \(other)"),
                            "\(domain)/\(file) holds \(other): \(line)")
                    }
                }
            }
            #expect(declared, "Sources/Engine/\(domain) does not declare \(service)")
        }
    }

    /// `GatehouseEngine+Forwarding.swift` is what its generator prints from today's protocols and services.
    @Test func engineForwardingIsRegenerated() throws {
        let script = Self.root.appendingPathComponent("Tests/scripts/engine-forwarding.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let printed = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let committed = try Data(
            contentsOf: Self.root.appendingPathComponent("Sources/Engine/Core/GatehouseEngine+Forwarding.swift"))
        #expect(
            printed == committed,
            "run: python3 Tests/scripts/engine-forwarding.py > Sources/Engine/Core/GatehouseEngine+Forwarding.swift")
    }

    @Test func noHandWrittenFileIsOver1500Lines() throws {
        var checked = 0
        for dir in ["Sources", "Tests"] {
            let base = Self.root.appendingPathComponent(dir)
            let files = (FileManager.default.enumerator(atPath: base.path)?.allObjects as? [String] ?? []).filter {
                $0.hasSuffix(".swift")
            }
            for file in files {
                let text = try String(contentsOf: base.appendingPathComponent(file), encoding: .utf8)
                // Generated code, marked as such: ours, and swift-openapi-generator's (Sources/AdminAPI/Generated).
                if text.hasPrefix("// swift-format-ignore-file\n// GENERATED")
                    || text.hasPrefix("// Generated by swift-openapi-generator, do not modify.\n")
                {
                    continue
                }
                checked += 1
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
                #expect(lines <= 1500, "\(dir)/\(file) has \(lines) lines")
            }
        }
        #expect(checked > 100)
    }

    @Test func codecsStayPure() throws {
        for target in ["TTLV", "KMIPProtocol", "ACMEProtocol", "ESTProtocol", "SSHProtocol", "PGWire", "Recording"] {
            for (file, module) in try imports(of: target) {
                #expect(
                    !["NIOPosix", "NIOSSL", "Hummingbird", "EngineAPI", "Engine"].contains(module),
                    "\(target)/\(file) imports \(module)")
            }
        }
    }

    /// libssh2 blocks and is not thread-safe per session: it stays inside SSHTunnel, which runs it on its own thread
    /// and never touches a NIO event loop.
    @Test func libssh2StaysInTheTunnelTarget() throws {
        // Every Swift target (the C system-library targets hold only a module map).
        let swiftTargets = targets.filter {
            !FileManager.default.fileExists(
                atPath: Self.root.appendingPathComponent("Sources/\($0)/module.modulemap").path)
        }
        #expect(swiftTargets.contains("SSHTunnel") && swiftTargets.count >= 20, "\(swiftTargets)")
        for target in swiftTargets {
            for (file, module) in try imports(of: target) where module == "CLibSSH2" {
                #expect(target == "SSHTunnel", "\(target)/\(file) imports CLibSSH2")
            }
        }
        for (file, module) in try imports(of: "SSHTunnel") {
            #expect(!module.hasPrefix("NIO"), "SSHTunnel/\(file) imports \(module)")
        }
    }

    @Test func storageAndEngineAPIDoNotDependOnNIOFutures() throws {
        for target in ["StorageAPI", "EngineAPI"] {
            for (file, module) in try imports(of: target) {
                #expect(!module.hasPrefix("NIO"), "\(target)/\(file) imports \(module)")
            }
            let dir = Self.root.appendingPathComponent("Sources/\(target)")
            for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
                let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                #expect(!text.contains("EventLoopFuture"), "\(target)/\(file) mentions EventLoopFuture")
            }
        }
    }
}
