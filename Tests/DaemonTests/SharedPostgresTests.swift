import Foundation
import StoragePostgres
import TestSupport
import Testing

/// Two Gatehouse daemons on one PostgreSQL database (`PG_DAEMON_URL`, set by Tests/run-all.sh).
@Suite(.serialized) struct SharedPostgresTests {
    @Test func twoDaemonsShareOneStore() async throws {
        guard let url = ProcessInfo.processInfo.environment["PG_DAEMON_URL"] else {
            if ProcessInfo.processInfo.environment["GATEHOUSE_REQUIRE_PG"] == "1" { Issue.record("PG_DAEMON_URL is not set") }
            return
        }
        do {
            let store = try PostgresStorage(url: url)
            try await store.unsafeDropAll()
            try await store.close()
        }
        let rootKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let env = [
            "GATEHOUSE_STORAGE_BACKEND": "postgres", "GATEHOUSE_STORAGE_POSTGRES_URL": url,
            "GATEHOUSE_ROOT_KEY_SOURCE": "env", "GATEHOUSE_ROOT_KEY": rootKey,
        ]
        let dirA = try freshDirectory()
        let dirB = try freshDirectory()
        let a = try DaemonProcess(directory: dirA.path, environment: env)
        try a.waitUntilListening()
        try a.ensureProject("p")
        // Node B trusts the same appliance CA and serves the same admin certificate (copied certs).
        try FileManager.default.createDirectory(atPath: dirB.path + "/.gatehouse", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dirA.path + "/.gatehouse/certs", toPath: dirB.path + "/.gatehouse/certs")
        let b = try DaemonProcess(directory: dirB.path, environment: env)
        try b.waitUntilListening()

        // A write through A is read through B.
        let (_, _, created) = try curl(a.adminCurl + ["-X", "POST", "-d", "{\"value\":\"shared-value\"}", a.httpsBase + "/api/v1/projects/p/secrets/shared"])
        #expect(created == 201)
        let (_, body, read) = try curl(b.adminCurl + [b.httpsBase + "/api/v1/projects/p/secrets/shared"])
        #expect(read == 200 && body.contains("shared-value"))

        // 24 concurrent creations of one name, alternating between the nodes: exactly one wins.
        // Both nodes share the certificates, so one set of client files serves both.
        let config = curlPostBatch(
            (0..<24).map { i in
                let node = i % 2 == 0 ? a : b
                return ("w\(i)", "\(node.httpsBase)/api/v1/projects/p/secrets/contended", "{\"value\":\"writer-\(i)\"}")
            }, certs: a.dataDirectory + "/certs")
        let configPath = dirA.path + "/contended.curl"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let out = try ProcessRunner.run(["curl", "--parallel", "--parallel-max", "24", "-K", configPath], timeout: 60)
        let codes = out.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
        #expect(codes.count == 24)
        #expect(codes.filter { $0 == "201" }.count == 1, "codes: \(codes)")
        #expect(codes.filter { $0 == "409" }.count == 23, "codes: \(codes)")

        // Both nodes append to one audit chain, which verifies from either node's point of view.
        #expect(a.stop() == 0)
        #expect(b.stop() == 0)
        let verify = try ProcessRunner.run([ProcessRunner.gatehouseBinary, "audit", "verify"], cwd: dirB.path, environment: env)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("intact: 4 events"), "project create, create, read, create")
    }
}
