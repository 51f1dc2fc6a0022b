import Foundation
import TestSupport
import Testing

/// `gatehouse backup` under write load, `gatehouse restore` into a new data directory, and what a damaged, altered or
/// wrongly keyed backup gets.
@Suite(.serialized) struct BackupTests {
    func gatehouse(_ args: [String], cwd: String, env: [String: String] = [:]) throws -> ProcessRunner.Output {
        try ProcessRunner.run([ProcessRunner.gatehouseBinary] + args, cwd: cwd, environment: env, timeout: 120)
    }

    /// (kind, id) → (version, hex body) of every record of a SQLite store.
    func records(_ database: String) throws -> [String: (Int, String)] {
        let out = try ProcessRunner.run(
            ["sqlite3", "-readonly", "-separator", "|", database, "SELECT kind, id, version, hex(body) FROM records"],
            timeout: 60)
        try #require(out.status == 0, "\(out.stderr)")
        var map: [String: (Int, String)] = [:]
        for line in out.stdout.split(separator: "\n") {
            let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 4 else { continue }
            map[parts[0] + "/" + parts[1]] = (Int(parts[2]) ?? -1, parts[3])
        }
        return map
    }

    @Test func backupUnderWriteLoadRestoresElsewhere() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        for i in 0..<20 {
            let (_, _, code) = try curl(
                daemon.adminCurl + [
                    "-X", "POST", "-d", "{\"value\":\"before-\(i)\"}",
                    daemon.httpsBase + "/api/v1/projects/p/secrets/before-\(i)",
                ])
            #expect(code == 201)
        }
        let passphrase = dir.path + "/backup.pass"
        FileManager.default.createFile(
            atPath: passphrase, contents: Data("correct horse battery staple\n".utf8),
            attributes: [.posixPermissions: 0o600])

        // 3,000 writes on 4 connections while the backup runs.
        let config = curlPostBatch(
            (0..<3000).map { i in
                ("w\(i)", "\(daemon.httpsBase)/api/v1/projects/p/secrets/load-\(i)", "{\"value\":\"load-\(i)\"}")
            }, certs: daemon.dataDirectory + "/certs")
        try config.write(toFile: dir.path + "/load.curl", atomically: true, encoding: .utf8)
        let load = Process()
        load.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        load.arguments = ["--parallel", "--parallel-max", "4", "-K", dir.path + "/load.curl"]
        let loadOut = Pipe()
        load.standardOutput = loadOut
        load.standardError = FileHandle.nullDevice
        try load.run()
        usleep(300_000)
        let archive = dir.path + "/gatehouse.backup"
        let backup = try gatehouse(["backup", "--out", archive, "--passphrase-file", passphrase], cwd: dir.path)
        let loadStillRunning = load.isRunning
        let loadLines = String(decoding: loadOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        load.waitUntilExit()
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stdout.contains("backup written: \(archive)"), "\(backup.stdout)")
        #expect(loadStillRunning, "the backup ran after the write load ended")
        let acknowledged = loadLines.split(separator: "\n").filter { $0.hasSuffix(" 201") }.count
        #expect(acknowledged == 3000)
        let mode = try FileManager.default.attributesOfItem(atPath: archive)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        // Encrypted: no secret value, no SQLite header in the clear.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        #expect(bytes.range(of: Data("before-7".utf8)) == nil)
        #expect(bytes.range(of: Data("SQLite format 3".utf8)) == nil)

        // Restore elsewhere with the original root key; the command verifies the store and its audit chain.
        let target = dir.path + "/restored"
        let rootKeyEnv = ["GATEHOUSE_ROOT_KEY_FILE": daemon.dataDirectory + "/root.key"]
        let restored = try gatehouse(
            ["restore", archive, "--data-dir", target, "--passphrase-file", passphrase], cwd: dir.path,
            env: rootKeyEnv)
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stdout.contains("audit chain intact"), "\(restored.stdout)")

        // Every restored record is the source's record as it was at the snapshot (later writes only add versions).
        #expect(daemon.stop() == 0)
        let source = try records(daemon.dataDirectory + "/gatehouse.sqlite")
        let copy = try records(target + "/gatehouse.sqlite")
        #expect(copy.count > 20 && copy.count <= source.count)
        // The snapshot was taken mid-load: it holds some of the load's writes, not all.
        let secretsInCopy = copy.keys.filter { $0.hasPrefix("secret/") }.count
        #expect(secretsInCopy > 20 && secretsInCopy < 20 + 3000, "\(secretsInCopy) secrets in the copy")
        #expect(source.keys.filter { $0.hasPrefix("secret/") }.count == 20 + 3000)
        var differing: [String] = []
        for (key, (version, body)) in copy {
            guard let (sourceVersion, sourceBody) = source[key] else {
                differing.append("\(key) missing from the source")
                continue
            }
            if sourceVersion == version, sourceBody != body { differing.append("\(key) differs at v\(version)") }
            if sourceVersion < version { differing.append("\(key) is newer in the copy") }
        }
        #expect(differing.isEmpty, "\(differing.prefix(5))")

        // A daemon serves the restored directory: the secrets written before the backup read back.
        let served = try DaemonProcess(
            directory: dir.path, arguments: ["--data-dir", target], environment: rootKeyEnv, dataDirectory: target)
        try served.waitUntilListening()
        for i in [0, 7, 19] {
            let (_, body, code) = try curl(
                served.adminCurl + [served.httpsBase + "/api/v1/projects/p/secrets/before-\(i)"])
            #expect(code == 200 && body.contains("before-\(i)"), "\(body)")
        }
        #expect(served.stop() == 0)
    }

    /// Runs Tests/scripts/backup-replay.sh in `mode` (see there): a session recorded through the proxy survives a
    /// backup and restore elsewhere and replays, with its statements, on a daemon serving the restored store.
    func backupReplay(_ mode: String) throws {
        let env = ProcessInfo.processInfo.environment
        guard let url = env["PG_TEST_URL"].flatMap(URLComponents.init(string:)), let ca = env["PG_TEST_CA"],
            let host = url.host, let user = url.user
        else {
            if dependencyRequired("PG") { Issue.record("needs PG_TEST_URL and PG_TEST_CA") }
            return
        }
        let dir = try freshDirectory()
        var environment = [
            "PATH": (ProcessRunner.gatehouseBinary as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? ""),
            "HOME": dir.path, "PGHOST": host, "PGPORT": String(url.port ?? 5432), "PGUSER": user,
            "PGPASSWORD": url.password ?? "", "PGDATABASE": String(url.path.dropFirst()), "PGSSLROOTCERT": ca,
        ]
        for variable in [
            "GATEHOUSE_LISTENERS_HTTPS_PORT", "GATEHOUSE_LISTENERS_KMIP_PORT", "GATEHOUSE_LISTENERS_POSTGRES_PORT",
            "GATEHOUSE_LISTENERS_OPERATIONS_PORT", "GATEHOUSE_ACME_HTTP01_PORT",
        ] {
            environment[variable] = String(try freeLoopbackPort())
        }
        let run = try ProcessRunner.run(
            ["bash", ProcessRunner.repositoryRoot + "/Tests/scripts/backup-replay.sh", mode], cwd: dir.path,
            environment: environment, timeout: 300)
        let log = (try? String(contentsOfFile: dir.path + "/gatehouse.log", encoding: .utf8)) ?? ""
        #expect(
            run.status == 0 && run.stdout.contains("backup replay checks passed (\(mode))"),
            """
            exit \(run.status)
            --- stdout ---
            \(run.stdout.suffix(4000))
            --- stderr ---
            \(run.stderr.suffix(3000))
            --- daemon log ---
            \(log.suffix(3000))
            """)
    }

    @Test func aRecordedSessionReplaysAfterBackupAndRestore() throws { try backupReplay("sqlite") }

    /// The PostgreSQL procedure: pg_dump, `gatehouse backup verify --pg-dump` (and what it refuses), pg_restore.
    @Test func aPostgresDumpVerifiesAndItsSessionReplaysAfterRestore() throws { try backupReplay("postgres") }

    @Test func aDamagedAlteredOrWronglyKeyedBackupRestoresNothing() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        let (_, _, code) = try curl(
            daemon.adminCurl + [
                "-X", "POST", "-d", "{\"value\":\"kept\"}", daemon.httpsBase + "/api/v1/projects/p/secrets/kept",
            ])
        #expect(code == 201)
        #expect(daemon.stop() == 0)
        let key = dir.path + "/backup.key"
        let otherKey = dir.path + "/other.key"
        for path in [key, otherKey] {
            let raw = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString() + "\n"
            FileManager.default.createFile(
                atPath: path, contents: Data(raw.utf8), attributes: [.posixPermissions: 0o600])
        }
        let archive = dir.path + "/with-root.backup"
        let made = try gatehouse(
            ["backup", "--out", archive, "--key-file", key, "--include-root-key"], cwd: dir.path)
        #expect(made.status == 0, "\(made.stderr)")
        let signer = try #require(
            made.stdout.split(separator: " ").last.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) })
        let original = try Data(contentsOf: URL(fileURLWithPath: archive))

        func refused(_ bytes: Data, _ extra: [String] = [], key: String, _ why: String) throws {
            let path = dir.path + "/candidate.backup"
            try? FileManager.default.removeItem(atPath: path)
            try bytes.write(to: URL(fileURLWithPath: path))
            let target = dir.path + "/target-\(UUID().uuidString.prefix(6))"
            let out = try gatehouse(["restore", path, "--data-dir", target, "--key-file", key] + extra, cwd: dir.path)
            #expect(out.status != 0 && out.stderr.contains(why), "\(why): \(out.stderr)")
            #expect(
                !FileManager.default.fileExists(atPath: target + "/gatehouse.sqlite"), "\(why): files were restored")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
                $0.contains(".restoring-")
            }
            #expect(leftovers.isEmpty, "\(leftovers)")
        }
        try refused(original, key: otherKey, "wrong backup key or passphrase")
        var flipped = original
        flipped[original.count / 2] ^= 0x01
        try refused(flipped, key: key, "does not authenticate at chunk")
        try refused(original.prefix(original.count - 200), key: key, "truncated")
        try refused(original.prefix(original.count - 10), key: key, "no signature")
        var resigned = original
        resigned[original.count - 1] ^= 0x01
        try refused(resigned, key: key, "signature is invalid")
        try refused(original, ["--signer", String(repeating: "0", count: 64)], key: key, "is signed by \(signer)")
        try refused(Data("not a backup at all".utf8), key: key, "not a Gatehouse backup")

        // The good one, with the root key inside it: it opens with the backup key alone.
        let target = dir.path + "/good"
        let restored = try gatehouse(
            ["restore", archive, "--data-dir", target, "--key-file", key, "--signer", signer], cwd: dir.path)
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stdout.contains("audit chain intact"))
        let busy = try gatehouse(["restore", archive, "--data-dir", target, "--key-file", key], cwd: dir.path)
        #expect(busy.status != 0 && busy.stderr.contains("is not empty"), "\(busy.stderr)")
    }
}
