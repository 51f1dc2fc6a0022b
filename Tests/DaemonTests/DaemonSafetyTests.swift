import Engine
import Foundation
import KMIPProtocol
import StorageAPI
import StoragePostgres
import StorageSQLite
import TTLV
import TestSupport
import Testing

/// Start-up failures, crash safety, TLS profile, audit and key-rotation commands, against the built binary.
@Suite(.serialized) struct DaemonSafetyTests {
    func gatehouse(_ args: [String], cwd: String, env: [String: String] = [:]) throws -> ProcessRunner.Output {
        try ProcessRunner.run([ProcessRunner.gatehouseBinary] + args, cwd: cwd, environment: env, timeout: 60)
    }

    /// Runs a `curlPostBatch` config (4 parallel keep-alive connections) in the background; its "<label> <status>"
    /// lines go to `<path>.out`.
    func startCurlBatch(_ config: String, at path: String) throws -> (Process, String) {
        try config.write(toFile: path + ".curl", atomically: true, encoding: .utf8)
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        writer.arguments = ["curl", "--parallel", "--parallel-max", "4", "-K", path + ".curl"]
        FileManager.default.createFile(atPath: path + ".out", contents: nil)
        writer.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: path + ".out"))
        writer.standardError = FileHandle.nullDevice
        try writer.run()
        return (writer, path + ".out")
    }

    func initialized() throws -> TemporaryDirectory {
        let dir = try freshDirectory()
        let out = try gatehouse(["init"], cwd: dir.path)
        #expect(out.status == 0, "init: \(out.stderr)")
        return dir
    }

    @Test func sslyzeFindsEveryTLSListenerMozillaIntermediateCompliant() throws {
        guard let sslyze = ProcessInfo.processInfo.environment["SSLYZE_BIN"] else {
            if dependencyRequired("SSLYZE") { Issue.record("SSLYZE_BIN is not set") }
            return
        }
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        try daemon.ensureProject("crash")
        let certs = daemon.dataDirectory + "/certs"
        // Every TLS listener: the PostgreSQL proxy's TLS begins after PostgreSQL's SSLRequest (sslyze --starttls).
        for listener in ["https", "kmip", "postgres"] {
            let out = try ProcessRunner.run(
                [
                    sslyze, "--mozilla_config=intermediate", "--certinfo_ca_file", certs + "/ca.crt", "--cert",
                    certs + "/admin.crt", "--key", certs + "/admin.key", "--keyform", "PEM",
                ] + (listener == "postgres" ? ["--starttls", "postgres"] : []) + [
                    "localhost:\(daemon.ports[listener] ?? 0)"
                ], timeout: 180)
            #expect(out.status == 0, "sslyze \(listener): \(out.stdout.suffix(1500))")
            #expect(out.stdout.contains("OK - Compliant"), "\(listener)")
            // SSL 2.0, SSL 3.0, TLS 1.0 and TLS 1.1 each: every suite rejected.
            #expect(
                out.stdout.components(separatedBy: "the server rejected all cipher suites").count - 1 >= 4,
                "\(listener)")
            #expect(out.stdout.contains("The server accepted the following"), "\(listener)")
        }
        #expect(daemon.stop() == 0)
    }

    /// A second `gatehouse serve` on a data directory in use stops at start-up and names the running one; the lock
    /// dies with its process, so a `kill -9` never leaves a restart blocked.
    @Test func oneDaemonPerDataDirectory() throws {
        let dir = try freshDirectory()
        let first = try DaemonProcess(directory: dir.path)
        try first.waitUntilListening()
        let ephemeral = [
            "GATEHOUSE_LISTENERS_HTTPS_PORT": "0", "GATEHOUSE_LISTENERS_OPERATIONS_PORT": "0",
            "GATEHOUSE_LISTENERS_KMIP_PORT": "0",
            "GATEHOUSE_LISTENERS_POSTGRES_PORT": "0",
        ]
        let second = try gatehouse(["serve"], cwd: dir.path, env: ephemeral)
        #expect(second.status != 0)
        #expect(
            second.stderr.contains("another gatehouse daemon (pid \(first.pid)) is running on the data directory"),
            "\(second.stderr)")
        let (_, _, code) = try curl(first.adminCurl + [first.httpsBase + "/api/v1/whoami"])
        #expect(code == 200, "the first daemon still serves")

        first.signal(SIGKILL)
        first.waitForExit()
        let restarted = try DaemonProcess(directory: dir.path)
        try restarted.waitUntilListening()
        #expect(restarted.stop() == 0)
    }

    @Test func startupFailuresAreClearAndNonZero() throws {
        // A configuration error names the file, line, key and reason.
        let dir = try initialized()
        let bad = dir.path + "/bad.toml"
        try "[listeners.https]\nport = \"eighty\"\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let c = try gatehouse(["serve", "--config", bad], cwd: dir.path)
        #expect(c.status != 0)
        #expect(c.stderr.contains("\(bad):2: listeners.https.port: must be an integer"))
        let check = try gatehouse(["config", "check", bad], cwd: dir.path)
        #expect(check.status == 1)
        #expect(check.stderr.contains("listeners.https.port"))
        let good = try gatehouse(
            ["config", "check", ProcessRunner.repositoryRoot + "/Config/gatehouse.toml"], cwd: dir.path)
        #expect(good.status == 0, "\(good.stderr)")

        // A wrong root key.
        let keyPath = dir.path + "/.gatehouse/root.key"
        let original = try Data(contentsOf: URL(fileURLWithPath: keyPath))
        let other = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString() + "\n"
        try other.write(toFile: keyPath, atomically: true, encoding: .utf8)
        chmod(keyPath, 0o600)
        let w = try gatehouse(["serve"], cwd: dir.path)
        #expect(w.status != 0)
        #expect(w.stderr.contains("root key does not match"))

        // A key file others can read.
        try original.write(to: URL(fileURLWithPath: keyPath))
        chmod(keyPath, 0o644)
        let m = try gatehouse(["serve"], cwd: dir.path)
        #expect(m.status != 0)
        #expect(m.stderr.contains("chmod 600"))
        chmod(keyPath, 0o600)

        // A missing key file next to an existing store: refuse (a new key could never open it).
        try FileManager.default.moveItem(atPath: keyPath, toPath: keyPath + ".saved")
        let k = try gatehouse(["serve"], cwd: dir.path)
        #expect(k.status != 0)
        #expect(k.stderr.contains("root key file") && k.stderr.contains("missing"))
        try FileManager.default.moveItem(atPath: keyPath + ".saved", toPath: keyPath)

        // A store file that is not a database.
        let garbage = try initialized()
        try Data(repeating: 0x5a, count: 16384).write(
            to: URL(fileURLWithPath: garbage.path + "/.gatehouse/gatehouse.sqlite"))
        let g = try gatehouse(["serve"], cwd: garbage.path)
        #expect(g.status != 0)
        #expect(g.stderr.contains("SQLite store"))

        // An unreachable PostgreSQL.
        let p = try gatehouse(
            ["serve"], cwd: dir.path,
            env: [
                "GATEHOUSE_STORAGE_BACKEND": "postgres",
                "GATEHOUSE_STORAGE_POSTGRES_URL": "postgres://x:y@127.0.0.1:1/none?sslmode=disable",
            ])
        #expect(p.status != 0)
        #expect(p.stderr.contains("storage"))
    }

    /// Kills the daemon with SIGKILL while it takes writes; every write it acknowledged (201) must be there after
    /// a restart, and the store and the audit chain must open and verify cleanly.
    @Test func acknowledgedWritesSurviveKill9() throws {
        let dir = try freshDirectory()
        let cycles = 6
        // More writes than a cycle can acknowledge before the kill (300–900 ms), so it always lands mid-stream.
        let perCycle = 3000
        var acknowledged: [String] = []
        var kills = 0
        for cycle in 0..<cycles {
            let daemon = try DaemonProcess(directory: dir.path)
            try daemon.waitUntilListening()
            try daemon.ensureProject("p")
            try daemon.ensureProject("crash")
            // One curl process, 4 parallel keep-alive connections, many POSTs.
            let config = curlPostBatch(
                (0..<perCycle).map { i in
                    let name = "k-\(cycle)-\(i)"
                    return (
                        name, "\(daemon.httpsBase)/api/v1/projects/crash/secrets/\(name)",
                        "{\"value\":\"value-of-\(name)\"}"
                    )
                }, certs: daemon.dataDirectory + "/certs")
            let (writer, outPath) = try startCurlBatch(config, at: dir.path + "/writes-\(cycle)")
            usleep(UInt32.random(in: 300_000...900_000))
            daemon.signal(SIGKILL)
            kills += 1
            _ = daemon.waitForExit()
            #expect(
                daemon.process.terminationReason == .uncaughtSignal && daemon.process.terminationStatus == SIGKILL,
                "cycle \(cycle): killed by SIGKILL")
            writer.waitUntilExit()
            let lines = try String(contentsOfFile: outPath, encoding: .utf8).split(separator: "\n")
            let acked = lines.filter { $0.hasSuffix(" 201") }.map { String($0.split(separator: " ")[0]) }
            // The kill landed while writes were in flight: some were acknowledged, the rest were cut.
            #expect(
                acked.count > 0 && acked.count < perCycle,
                "cycle \(cycle): \(acked.count) of \(perCycle) writes acknowledged")
            acknowledged += acked
        }
        #expect(acknowledged.count > 0, "the writer got some writes acknowledged before each kill")
        // Restart and read back every acknowledged write.
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        try daemon.ensureProject("crash")
        var lost: [String] = []
        var listed = Set<String>()
        var after = ""
        repeat {
            let (_, body, code) = try curl(
                daemon.adminCurl + [
                    daemon.httpsBase + "/api/v1/projects/crash/secrets?limit=1000"
                        + (after.isEmpty ? "" : "&after=\(after)")
                ])
            #expect(code == 200)
            guard let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                let items = json["secrets"] as? [[String: Any]]
            else { break }
            for item in items { if let n = item["name"] as? String { listed.insert(n) } }
            after = json["next"] as? String ?? ""
        } while !after.isEmpty
        for name in acknowledged where !listed.contains(name) { lost.append(name) }
        // Spot-check values of a sample through the decrypting read path.
        for name in acknowledged.shuffled().prefix(20) {
            let (_, body, code) = try curl(
                daemon.adminCurl + [daemon.httpsBase + "/api/v1/projects/crash/secrets/\(name)"])
            #expect(code == 200 && body.contains("value-of-\(name)"), "\(name)")
        }
        #expect(daemon.stop() == 0)
        let verify = try gatehouse(["audit", "verify"], cwd: dir.path)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        print(
            "crash test: \(kills) kills, \(acknowledged.count) acknowledged writes, \(listed.count) stored, \(lost.count) lost"
        )
        #expect(lost.isEmpty, "lost acknowledged writes: \(lost.prefix(10))")
    }

    /// Secondary indexes through kill -9: KMIP Creates (KMIP JSON over HTTPS, each with a name) stream in while the
    /// daemon is killed three times; afterwards every index entry in the SQLite store matches its records exactly
    /// (none missing, none stray), checked against the catalog by reading the store directly.
    @Test func indexesStayConsistentThroughKill9() async throws {
        let dir = try freshDirectory()
        func create(_ name: String) -> String {
            let attribute = { (n: String, v: TTLVValue) in
                TTLVItem(
                    tag: KMIPTag.attribute,
                    .structure([
                        TTLVItem(tag: KMIPTag.attributeName, .textString(n)), TTLVItem(tag: KMIPTag.attributeValue, v),
                    ]))
            }
            let request = kmipRequest(
                version: (1, 4), .create,
                [
                    TTLVItem(tag: KMIPTag.objectType, .enumeration(KMIPObjectType.symmetricKey.rawValue)),
                    TTLVItem(
                        tag: KMIPTag.templateAttribute,
                        .structure([
                            attribute("Cryptographic Algorithm", .enumeration(3)),
                            attribute("Cryptographic Length", .integer(256)),
                            attribute(
                                "Name",
                                .structure([
                                    TTLVItem(tag: KMIPTag.nameValue, .textString(name)),
                                    TTLVItem(tag: KMIPTag.nameType, .enumeration(1)),
                                ])),
                        ])),
                ])
            return String(decoding: KMIPJSON.serialize(request), as: UTF8.self)
        }
        var acknowledged = 0
        for cycle in 0..<3 {
            let daemon = try DaemonProcess(directory: dir.path)
            try daemon.waitUntilListening()
            let config = curlPostBatch(
                (0..<2000).map { i in ("kmip-\(cycle)-\(i)", daemon.httpsBase + "/kmip", create("kmip-\(cycle)-\(i)"))
                },
                certs: daemon.dataDirectory + "/certs")
            let (writer, outPath) = try startCurlBatch(config, at: dir.path + "/kmip-\(cycle)")
            // Kill once a few hundred Creates were answered, with the rest still streaming.
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline,
                ((try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "").split(separator: "\n").count < 200
            {
                usleep(20_000)
            }
            daemon.signal(SIGKILL)
            _ = daemon.waitForExit()
            writer.waitUntilExit()
            let answered = try String(contentsOfFile: outPath, encoding: .utf8).split(separator: "\n").filter {
                $0.hasSuffix(" 200")
            }.count
            #expect(answered >= 200 && answered < 2000, "cycle \(cycle): \(answered) of 2000 answered before the kill")
            acknowledged += answered
        }
        // The store as the daemon left it, read directly with the engine's index catalog (the versions match, so
        // opening it rebuilds nothing).
        let storage = try SQLiteStorage(path: dir.path + "/.gatehouse/gatehouse.sqlite")
        try await storage.migrate(indexes: GatehouseEngine.indexCatalog)
        let objects = try await IndexConformance.verify(storage, kind: "kms-object")
        #expect(objects >= acknowledged, "\(objects) objects stored, \(acknowledged) Creates acknowledged")
        try await storage.close()
    }

    /// Upgrade in place: a data directory written by the build before secondary indexes (SQLite schema 1,
    /// Tests/vectors/upgrade/sqlite-schema1, made by Tests/scripts/make-upgrade-fixture.sh) opens with this build:
    /// the schema migrates, every index is built from the existing records, and nothing is lost (secret, KMIP keys
    /// found by name, certificate, an intact audit chain).
    @Test func aStoreFromThePreviousSchemaUpgradesInPlace() async throws {
        let dir = try freshDirectory()
        let data = try Self.fixture("sqlite-schema1", in: dir.path)
        let db = data + "/gatehouse.sqlite"
        func schema() throws -> String {
            try ProcessRunner.run(
                ["sqlite3", "-readonly", db, "SELECT max(version) FROM schema_migrations"], timeout: 30
            ).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try schema() == "1", "the fixture is schema 1")
        try checkUpgraded(dir.path, environment: [:])
        #expect(try schema() == String(SQLiteStorage.schemaVersion), "migrated to the latest schema")
        let storage = try SQLiteStorage(path: db)
        try await storage.migrate(indexes: GatehouseEngine.indexCatalog)
        #expect(try await IndexConformance.verify(storage, kind: "kms-object") == 5)
        #expect(try await IndexConformance.verify(storage, kind: "pki-cert") == 1)
        try await storage.close()
    }

    /// The same for a PostgreSQL store: a pg_dump of schema 2 made by the previous build
    /// (Tests/vectors/upgrade/postgres-schema2), restored into a database of its own.
    @Test func aPostgresStoreFromThePreviousSchemaUpgradesInPlace() async throws {
        guard let base = ProcessInfo.processInfo.environment["PG_TEST_URL"], var url = URLComponents(string: base)
        else {
            if dependencyRequired("PG") { Issue.record("PG_TEST_URL is not set but a PostgreSQL server is required") }
            return
        }
        let dir = try freshDirectory()
        let data = try Self.fixture("postgres-schema2", in: dir.path)
        url.path = "/postgres"
        let admin = url.string ?? base
        let setup = try ProcessRunner.run(
            [
                "psql", "-X", "-q", admin, "-c", "DROP DATABASE IF EXISTS gatehouse_upgrade", "-c",
                "CREATE DATABASE gatehouse_upgrade",
            ], timeout: 60)
        #expect(setup.status == 0, "\(setup.stderr)")
        url.path = "/gatehouse_upgrade"
        let target = url.string ?? base
        let restore = try ProcessRunner.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", target, "-f", data + "/postgres.sql"], timeout: 60)
        #expect(restore.status == 0, "\(restore.stderr)")
        try FileManager.default.removeItem(atPath: data + "/postgres.sql")
        func schema() throws -> String {
            try ProcessRunner.run(
                ["psql", "-X", "-At", target, "-c", "SELECT max(version) FROM schema_migrations"], timeout: 30
            ).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try schema() == "2", "the fixture is schema 2")
        try checkUpgraded(
            dir.path, environment: ["GATEHOUSE_STORAGE_BACKEND": "postgres", "GATEHOUSE_STORAGE_POSTGRES_URL": target])
        #expect(try schema() == String(PostgresStorage.schemaVersion), "migrated to the latest schema")
        let storage = try PostgresStorage(url: target, maxConnections: 2)
        try await storage.migrate(indexes: GatehouseEngine.indexCatalog)
        #expect(try await IndexConformance.verify(storage, kind: "kms-object") == 5)
        #expect(try await IndexConformance.verify(storage, kind: "pki-cert") == 1)
        try await storage.close()
    }

    /// Copies a fixture of Tests/vectors/upgrade into `dir`/.gatehouse (files 0600); returns that data directory.
    static func fixture(_ name: String, in dir: String) throws -> String {
        let fixture = ProcessRunner.repositoryRoot + "/Tests/vectors/upgrade/" + name
        let data = dir + "/.gatehouse"
        try FileManager.default.createDirectory(
            atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for file in try FileManager.default.contentsOfDirectory(atPath: fixture) {
            try FileManager.default.copyItem(atPath: fixture + "/" + file, toPath: data + "/" + file)
            chmod(data + "/" + file, 0o600)
        }
        return data
    }

    /// Starts this build on an upgraded fixture and reads back what the previous build wrote.
    func checkUpgraded(_ dir: String, environment: [String: String]) throws {
        let daemon = try DaemonProcess(directory: dir, environment: environment)
        try daemon.waitUntilListening()
        let (_, secret, secretCode) = try curl(
            daemon.adminCurl + [daemon.httpsBase + "/api/v1/projects/app/secrets/db-password"])
        #expect(secretCode == 200 && secret.contains("upgrade-secret-1"), "\(secret)")
        // KMIP Locate by Name (answered from the name index, built at start) finds each key, and only it.
        for i in [0, 3, 4] {
            let locate = """
                <RequestMessage><RequestHeader><ProtocolVersion><ProtocolVersionMajor type="Integer" value="1"/><ProtocolVersionMinor type="Integer" value="4"/></ProtocolVersion><BatchCount type="Integer" value="1"/></RequestHeader><BatchItem><Operation type="Enumeration" value="Locate"/><RequestPayload><Attribute><AttributeName type="TextString" value="Name"/><AttributeValue><NameValue type="TextString" value="upgrade-key-\(i)"/><NameType type="Enumeration" value="UninterpretedTextString"/></AttributeValue></Attribute></RequestPayload></BatchItem></RequestMessage>
                """
            let (_, answer, code) = try curl(
                daemon.adminCurl + [
                    "-X", "POST", "-H", "Content-Type: text/xml", "--data-binary", locate, daemon.httpsBase + "/kmip",
                ])
            #expect(
                code == 200 && answer.components(separatedBy: "<UniqueIdentifier").count == 2,
                "upgrade-key-\(i): \(answer)")
        }
        let (_, certificates, certCode) = try curl(
            daemon.adminCurl + [daemon.httpsBase + "/api/v1/projects/app/pki/certificates"])
        #expect(certCode == 200 && certificates.contains("app.upgrade.test"), "\(certificates)")
        #expect(daemon.stop() == 0)
        let verify = try gatehouse(["audit", "verify"], cwd: dir, env: environment)
        #expect(verify.status == 0 && verify.stdout.contains("intact"), "\(verify.stdout)\(verify.stderr)")
        // The previous build's single chain became chain "" with its search fields filled in from the bodies; this
        // build appended to its own node's chain.
        let old = try gatehouse(
            ["audit", "tail", "--type", "secret.create", "--since", "3650d"], cwd: dir, env: environment)
        #expect(
            old.status == 0 && old.stdout.contains("\"chain\":\"\"") && old.stdout.contains("db-password"),
            "\(old.stdout)\(old.stderr)")
        let reads = try gatehouse(["audit", "tail", "--type", "secret.read", "-n", "5"], cwd: dir, env: environment)
        #expect(
            reads.stdout.contains("db-password") && !reads.stdout.contains("\"chain\":\"\""),
            "\(reads.stdout)\(reads.stderr)")
    }

    @Test func auditVerifyDetectsTamperingThroughTheCLI() async throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        for i in 0..<4 {
            let (_, _, code) = try curl(
                daemon.adminCurl + [
                    "-X", "POST", "-d", "{\"value\":\"v\(i)\"}", daemon.httpsBase + "/api/v1/projects/p/secrets/s\(i)",
                ])
            #expect(code == 201)
        }
        #expect(daemon.stop() == 0)
        let ok = try gatehouse(["audit", "verify"], cwd: dir.path)
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("intact: 5 events"), "project.create + 4 × secret.create")
        let tail = try gatehouse(["audit", "tail", "-n", "2"], cwd: dir.path)
        #expect(tail.stdout.split(separator: "\n").count == 2)
        #expect(tail.stdout.contains("\"type\":\"secret.create\""))
        #expect(!tail.stdout.contains("\"v3\""), "audit events never carry secret values")

        let db = dir.path + "/.gatehouse/gatehouse.sqlite"
        func tamper(_ sql: String) async throws {
            let store = try SQLiteStorage(path: db)
            try await store.unsafeExecute(sql)
            try await store.close()
        }
        // Hiding an event from searches by editing its searchable type is caught.
        try await tamper("UPDATE audit_log SET type = 'secret.list' WHERE seq = 3")
        let hidden = try gatehouse(["audit", "verify"], cwd: dir.path)
        #expect(
            hidden.status == 2 && hidden.stdout.contains("event 3") && hidden.stdout.contains("search fields"),
            "\(hidden.stdout)")
        try await tamper("UPDATE audit_log SET type = 'secret.create' WHERE seq = 3")
        // One byte of the (compressed) body changed.
        try await tamper("UPDATE audit_log SET body = substr(body, 1, 20) || x'5a' || substr(body, 22) WHERE seq = 4")
        let edited = try gatehouse(["audit", "verify"], cwd: dir.path)
        #expect(edited.status == 2)
        #expect(edited.stdout.contains("event 4") && edited.stdout.contains("edited"), "\(edited.stdout)")
        try await tamper("DELETE FROM audit_log WHERE seq = 5")
        let deleted = try gatehouse(["audit", "verify"], cwd: dir.path)
        #expect(deleted.status == 2)
        #expect(deleted.stdout.contains("tail deleted"), "\(deleted.stdout)")
        try await tamper("DELETE FROM audit_chains")
        let headless = try gatehouse(["audit", "verify"], cwd: dir.path)
        #expect(headless.status == 2 && headless.stdout.contains("head is missing"), "\(headless.stdout)")
    }

    @Test func rotateRootKeyKeepsDataReadable() throws {
        let dir = try freshDirectory()
        var daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        try daemon.ensureProject("crash")
        let (_, _, code) = try curl(
            daemon.adminCurl + [
                "-X", "POST", "-d", "{\"value\":\"before-rotation\"}",
                daemon.httpsBase + "/api/v1/projects/p/secrets/r",
            ])
        #expect(code == 201)
        let keyPath = dir.path + "/.gatehouse/root.key"
        let oldKey = try String(contentsOfFile: keyPath, encoding: .utf8)
        // Refused while the daemon runs on this data directory (it would keep the old key): nothing changes.
        let whileRunning = try gatehouse(["rotate-root-key"], cwd: dir.path)
        #expect(whileRunning.status != 0)
        #expect(
            whileRunning.stderr.contains("(pid \(daemon.pid)) is running")
                && whileRunning.stderr.contains("stop it before rotating"),
            "\(whileRunning.stderr)")
        #expect(try String(contentsOfFile: keyPath, encoding: .utf8) == oldKey)
        #expect(!FileManager.default.fileExists(atPath: keyPath + ".new"))
        #expect(daemon.stop() == 0)
        let rotated = try gatehouse(["rotate-root-key"], cwd: dir.path)
        #expect(rotated.status == 0, "\(rotated.stderr)")
        #expect(rotated.stdout.contains("1 data keys re-wrapped"))
        let newKey = try String(contentsOfFile: keyPath, encoding: .utf8)
        #expect(newKey != oldKey)
        daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        try daemon.ensureProject("crash")
        let (_, body, getCode) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/projects/p/secrets/r"])
        #expect(getCode == 200 && body.contains("before-rotation"))
        #expect(daemon.stop() == 0)
        // The old key no longer opens the store.
        try oldKey.write(toFile: keyPath, atomically: true, encoding: .utf8)
        chmod(keyPath, 0o600)
        let refused = try gatehouse(["audit", "verify"], cwd: dir.path)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("root key does not match"))
    }
}
