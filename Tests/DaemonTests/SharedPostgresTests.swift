import Crypto
import Engine
import Foundation
import StoragePostgres
import TestSupport
import Testing

/// The environment of daemons sharing the emptied `PG_DAEMON_URL` database (set by Tests/run-all.sh) under one
/// random root key; nil (a recorded issue where PostgreSQL is required) without it.
func sharedPostgresDaemonEnvironment() async throws -> [String: String]? {
    guard let url = ProcessInfo.processInfo.environment["PG_DAEMON_URL"] else {
        if dependencyRequired("PG") { Issue.record("PG_DAEMON_URL is not set") }
        return nil
    }
    let store = try PostgresStorage(url: url)
    try await store.unsafeDropAll()
    try await store.close()
    let rootKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    return [
        "GATEHOUSE_STORAGE_BACKEND": "postgres", "GATEHOUSE_STORAGE_POSTGRES_URL": url,
        "GATEHOUSE_ROOT_KEY_SOURCE": "env", "GATEHOUSE_ROOT_KEY": rootKey,
    ]
}

/// Two Gatehouse daemons on one PostgreSQL database (`PG_DAEMON_URL`, set by Tests/run-all.sh).
@Suite(.serialized) struct SharedPostgresTests {
    /// Node A with project `p`, and node B, which trusts the same appliance CA and serves the same admin certificate
    /// (copied certs), both listening.
    func twoNodes(_ env: [String: String]) throws -> (
        TemporaryDirectory, TemporaryDirectory, DaemonProcess, DaemonProcess
    ) {
        let dirA = try freshDirectory()
        let dirB = try freshDirectory()
        let a = try DaemonProcess(directory: dirA.path, environment: env)
        try a.waitUntilListening()
        try a.ensureProject("p")
        try FileManager.default.createDirectory(atPath: dirB.path + "/.gatehouse", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: dirA.path + "/.gatehouse/certs", toPath: dirB.path + "/.gatehouse/certs")
        let b = try DaemonProcess(directory: dirB.path, environment: env)
        try b.waitUntilListening()
        return (dirA, dirB, a, b)
    }

    @Test func twoDaemonsShareOneStore() async throws {
        guard var env = try await sharedPostgresDaemonEnvironment() else { return }
        env["GATEHOUSE_PKI_KMIP_TRUST_REFRESH_INTERVAL"] = "1s"
        let (dirA, dirB, a, b) = try twoNodes(env)

        // A write through A is read through B.
        let (_, _, created) = try curl(
            a.adminCurl + [
                "-X", "POST", "-d", "{\"value\":\"shared-value\"}", a.httpsBase + "/api/v1/projects/p/secrets/shared",
            ])
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

        // Each node appends to its own audit chain; the log verifies as one from either node's point of view.
        let verify = try ProcessRunner.run(
            [ProcessRunner.gatehouseBinary, "audit", "verify"], cwd: dirB.path, environment: env)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("intact: 4 events"), "project create, create, read, create")

        // 160 audited writes and 160 audited reads at once, spread over both nodes: every acknowledged operation has
        // its event, both chains verify, and the log read through node B (cursor by cursor) has each event once.
        let writes = curlPostBatch(
            (0..<160).map { i in
                let node = i % 2 == 0 ? a : b
                return ("c\(i)", "\(node.httpsBase)/api/v1/projects/p/secrets/busy-\(i)", "{\"value\":\"v\(i)\"}")
            }, certs: a.dataDirectory + "/certs")
        try writes.write(toFile: dirA.path + "/busy.curl", atomically: true, encoding: .utf8)
        let wrote = try ProcessRunner.run(
            ["curl", "--parallel", "--parallel-max", "16", "-K", dirA.path + "/busy.curl"], timeout: 120)
        let createdCount = wrote.stdout.split(separator: "\n").filter { $0.hasSuffix(" 201") }.count
        #expect(createdCount == 160, "\(wrote.stdout.suffix(400))")
        var reads = ""
        for i in 0..<160 {
            let node = i % 2 == 0 ? b : a
            reads +=
                (i > 0 ? "next\n" : "") + """
                    url = "\(node.httpsBase)/api/v1/projects/p/secrets/busy-\(i)"
                    cacert = "\(a.dataDirectory)/certs/ca.crt"
                    cert = "\(a.dataDirectory)/certs/admin.crt"
                    key = "\(a.dataDirectory)/certs/admin.key"
                    silent
                    output = "/dev/null"
                    write-out = "r\(i) %{http_code}\\n"

                    """
        }
        try reads.write(toFile: dirA.path + "/reads.curl", atomically: true, encoding: .utf8)
        let read160 = try ProcessRunner.run(
            ["curl", "--parallel", "--parallel-max", "16", "-K", dirA.path + "/reads.curl"], timeout: 120)
        #expect(
            read160.stdout.split(separator: "\n").filter { $0.hasSuffix(" 200") }.count == 160,
            "\(read160.stdout.suffix(400))")
        var seen: [String: Int] = [:]
        var types: [String: Int] = [:]
        var cursor = ""
        for _ in 0..<100 {
            let (_, page, status) = try curl(
                b.adminCurl + [
                    b.httpsBase + "/api/v1/audit/events?limit=50" + (cursor.isEmpty ? "" : "&cursor=\(cursor)")
                ])
            #expect(status == 200)
            guard let object = try JSONSerialization.jsonObject(with: Data(page.utf8)) as? [String: Any],
                let events = object["events"] as? [[String: Any]], let next = object["next"] as? String
            else {
                Issue.record("unreadable audit page: \(page.prefix(300))")
                break
            }
            for e in events {
                seen["\(e["chain"] ?? "?")/\(e["sequence"] ?? "?")", default: 0] += 1
                let type = ((e["event"] as? [String: Any])?["event"] as? [String: Any])?["type"] as? String ?? "?"
                types[type, default: 0] += 1
            }
            cursor = next
            if events.isEmpty { break }
        }
        let once = seen.values.allSatisfy { $0 == 1 }
        #expect(once, "each event once")
        let chains = Set(seen.keys.map { $0.split(separator: "/").first.map(String.init) ?? "" })
        #expect(chains.count == 2, "one chain per node: \(chains)")
        let creates = types["secret.create"] ?? 0
        let readEvents = types["secret.read"] ?? 0
        #expect(creates == 162, "\(types)")
        #expect(readEvents == 161, "\(types)")
        let again = try ProcessRunner.run(
            [ProcessRunner.gatehouseBinary, "audit", "verify"], cwd: dirA.path, environment: env)
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(again.stdout.contains("intact: \(seen.count) events"), "\(again.stdout)")
        // The search by type goes through the index and finds the same reads.
        let (_, found, _) = try curl(a.adminCurl + [a.httpsBase + "/api/v1/audit/events?type=secret.read&limit=1000"])
        #expect(found.components(separatedBy: "\"secret.read\"").count - 1 == 161)

        // A KMIP client onboarded through A (which generates the KMIP client PKI there) is served by B too, once
        // B's trust refresh (1 s here) has read the new CA from the shared store.
        if let python = ProcessInfo.processInfo.environment["PYKMIP_PYTHON"] {
            let out = dirA.path + "/kmip-client"
            let made = try ProcessRunner.run(
                [
                    ProcessRunner.gatehouseBinary, "kmip", "client", "create", "shelf-7", "--project", "p", "--out",
                    out,
                    "--data-dir", a.dataDirectory,
                ], timeout: 120)
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
                    [
                        python, "-c", script, String(b.ports["kmip"] ?? 0), out + "/ca.crt", out + "/shelf-7.crt",
                        out + "/shelf-7.key",
                    ], timeout: 60)
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

    /// The root moves to a new key while two nodes serve: both keep answering every read and write during the
    /// switch, a node restarted with its old configuration finds the new root through the store, and a node
    /// configured with the new root opens everything.
    @Test func theRootMovesOnlineUnderTwoServingNodes() async throws {
        guard let env = try await sharedPostgresDaemonEnvironment() else { return }
        let (dirA, dirB, a, firstB) = try twoNodes(env)
        var b = firstB
        func put(_ node: DaemonProcess, _ name: String) throws {
            let (_, body, code) = try curl(
                node.adminCurl + [
                    "-X", "POST", "-d", "{\"value\":\"value-of-\(name)\"}",
                    node.httpsBase + "/api/v1/projects/p/secrets/\(name)",
                ])
            #expect(code == 201, "\(body)")
        }
        func readsEverything(_ node: DaemonProcess, _ names: [String]) throws {
            for name in names {
                let (_, body, code) = try curl(node.adminCurl + [node.httpsBase + "/api/v1/projects/p/secrets/\(name)"])
                #expect(code == 200 && body.contains("value-of-\(name)"), "\(name): \(code) \(body)")
            }
        }
        // Values under several data keys.
        var names: [String] = []
        for i in 0..<6 {
            try put(i % 2 == 0 ? a : b, "r\(i)")
            names.append("r\(i)")
            let rotated = try ProcessRunner.run(
                [ProcessRunner.gatehouseBinary, "rotate-data-key"], cwd: dirA.path, environment: env, timeout: 60)
            #expect(rotated.status == 0, "\(rotated.stderr)")
        }

        // And 300 more data keys (a long-lived store), made in this process on the same database.
        let url = try #require(env["GATEHOUSE_STORAGE_POSTGRES_URL"])
        let storage = try PostgresStorage(url: url)
        let encodedKey = try #require(env["GATEHOUSE_ROOT_KEY"])
        let rootKey = try #require(Data(base64Encoded: encodedKey))
        let engine = try await GatehouseEngine.open(
            storage: storage, rootKey: StaticRootKeyProvider(SymmetricKey(data: rootKey)),
            bootstrapAdmins: ["gatehouse-admin"])
        for _ in 0..<300 { _ = try await engine.rotateDataKey() }
        try await storage.close()

        // The switch, one data key per transaction, while both nodes answer reads the whole time.
        let newKey = dirA.path + "/moved-root.key"
        let output = dirA.path + "/switch.out"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let switcher = Process()
        switcher.executableURL = URL(fileURLWithPath: ProcessRunner.gatehouseBinary)
        switcher.arguments = ["rotate-root-key", "--to", "file:" + newKey, "--batch", "1"]
        switcher.currentDirectoryURL = URL(fileURLWithPath: dirA.path)
        switcher.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        switcher.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        switcher.standardError = switcher.standardOutput
        try switcher.run()
        var rounds = 0
        var failures: [String] = []
        while switcher.isRunning {
            for (i, node) in [a, b].enumerated() {
                let name = "r\(rounds % 6)"
                let (_, body, code) = try curl(node.adminCurl + [node.httpsBase + "/api/v1/projects/p/secrets/\(name)"])
                if code != 200 || !body.contains("value-of-\(name)") { failures.append("node \(i): \(code) \(body)") }
            }
            rounds += 1
        }
        switcher.waitUntilExit()
        let moved = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(switcher.terminationStatus == 0, "\(moved.suffix(500))")
        #expect(moved.contains("307 of 307 data keys re-wrapped under the key file \(newKey)"), "\(moved.suffix(500))")
        #expect(
            rounds >= 2 && failures.isEmpty,
            "\(rounds) rounds of reads during the switch; failures: \(failures.prefix(5))")
        // Writes through both nodes right after the switch (new values under the new root's data keys).
        try put(a, "after-a")
        try put(b, "after-b")
        names += ["after-a", "after-b"]
        try readsEverything(a, names)
        try readsEverything(b, names)
        try await Task.sleep(for: .seconds(6))  // every node's watch has seen the switch end
        #expect(b.log.contains("root keys changed"), "\(b.log.suffix(2000))")

        // Node B restarted with its old configuration finds the new root through the store.
        #expect(b.stop() == 0)
        b = try DaemonProcess(directory: dirB.path, environment: env)
        try b.waitUntilListening()
        try readsEverything(b, names)
        #expect(b.log.contains("update root_key"), "\(b.log.suffix(2000))")
        // Node A configured with the new key file; the old key alone no longer opens the store.
        #expect(a.stop() == 0)
        var fileEnv = env
        fileEnv["GATEHOUSE_ROOT_KEY_SOURCE"] = "file"
        fileEnv["GATEHOUSE_ROOT_KEY_FILE"] = newKey
        fileEnv["GATEHOUSE_ROOT_KEY"] = nil
        let a2 = try DaemonProcess(directory: dirA.path, environment: fileEnv)
        try a2.waitUntilListening()
        try readsEverything(a2, names)
        let verify = try ProcessRunner.run(
            [ProcessRunner.gatehouseBinary, "audit", "verify"], cwd: dirA.path, environment: fileEnv)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(a2.stop() == 0)
        #expect(b.stop() == 0)
    }
}
