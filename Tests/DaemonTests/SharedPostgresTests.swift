import Foundation
import StoragePostgres
import TestSupport
import Testing

/// Two Gatehouse daemons on one PostgreSQL database (`PG_DAEMON_URL`, set by Tests/run-all.sh).
@Suite(.serialized) struct SharedPostgresTests {
    @Test func twoDaemonsShareOneStore() async throws {
        guard let url = ProcessInfo.processInfo.environment["PG_DAEMON_URL"] else {
            if dependencyRequired("PG") { Issue.record("PG_DAEMON_URL is not set") }
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
            "GATEHOUSE_PKI_KMIP_TRUST_REFRESH_INTERVAL": "1s",
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
        let verify = try ProcessRunner.run([ProcessRunner.gatehouseBinary, "audit", "verify"], cwd: dirB.path, environment: env)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("intact: 4 events"), "project create, create, read, create")

        // A KMIP client onboarded through A (which generates the KMIP client PKI there) is served by B too, once
        // B's trust refresh (1 s here) has read the new CA from the shared store.
        if let python = ProcessInfo.processInfo.environment["PYKMIP_PYTHON"] {
            let out = dirA.path + "/kmip-client"
            let made = try ProcessRunner.run(
                [ProcessRunner.gatehouseBinary, "kmip", "client", "create", "shelf-7", "--project", "p", "--out", out,
                 "--data-dir", a.dataDirectory], timeout: 120)
            #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
            let script = """
                import os, sys, warnings; warnings.filterwarnings("ignore")
                from kmip import enums; from kmip.pie import client as pc
                c = pc.ProxyKmipClient(hostname="127.0.0.1", port=int(sys.argv[1]), ca=sys.argv[2], cert=sys.argv[3], key=sys.argv[4], config_file=os.devnull)
                with c: print(c.create(enums.CryptographicAlgorithm.AES, 128))
                """
            var served = false
            for _ in 0..<20 where !served {
                let r = try ProcessRunner.run(
                    [python, "-c", script, String(b.ports["kmip"] ?? 0), out + "/ca.crt", out + "/shelf-7.crt", out + "/shelf-7.key"], timeout: 60)
                served = r.status == 0 && !r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
                if !served { usleep(500_000) }
            }
            #expect(served, "node B trusts the KMIP client CA created through node A")
        } else if dependencyRequired("PYKMIP") {
            Issue.record("PYKMIP_PYTHON is not set")
        }
        #expect(a.stop() == 0)
        #expect(b.stop() == 0)
    }
}
