import Foundation
import Testing

/// The module rules of ARCHITECTURE.md that SwiftPM cannot enforce: front ends never import the engine
/// implementation or a storage backend; codecs never import I/O, TLS, HTTP servers or the engine API.
@Suite struct LayeringTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func imports(of target: String) throws -> [(file: String, module: String)] {
        let dir = Self.root.appendingPathComponent("Sources/\(target)")
        guard let files = FileManager.default.enumerator(atPath: dir.path) else { return [] }
        var out: [(String, String)] = []
        for case let file as String in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                if let i = words.firstIndex(of: "import"), i + 1 < words.count,
                    words[..<i].allSatisfy({ ["@preconcurrency", "public", "internal", "package", "@testable"].contains($0) })
                {
                    out.append((file, words[i + 1]))
                }
            }
        }
        return out
    }

    var targets: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Sources").path)) ?? []
    }

    @Test func frontEndsDoNotImportEngineOrStorage() throws {
        let frontEnds = targets.filter { $0.hasSuffix("FrontEnd") }
        #expect(!frontEnds.isEmpty)
        for target in frontEnds {
            for (file, module) in try imports(of: target) {
                #expect(!["Engine", "StorageAPI", "StorageSQLite", "StoragePostgres"].contains(module), "\(target)/\(file) imports \(module)")
            }
        }
    }

    @Test func codecsStayPure() throws {
        for target in ["TTLV", "KMIPProtocol", "ACMEProtocol", "ESTProtocol", "SSHProtocol", "PGWire", "Recording"] where targets.contains(target) {
            for (file, module) in try imports(of: target) {
                #expect(
                    !["NIOPosix", "NIOSSL", "Hummingbird", "EngineAPI", "Engine"].contains(module), "\(target)/\(file) imports \(module)")
            }
        }
    }

    /// libssh2 blocks and is not thread-safe per session: it stays inside SSHTunnel, which runs it on its own thread
    /// and never touches a NIO event loop.
    @Test func libssh2StaysInTheTunnelTarget() throws {
        for target in targets where target != "CLibSSH2" {
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
