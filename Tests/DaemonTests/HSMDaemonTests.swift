import Engine
import EngineAPI
import Foundation
import StorageSQLite
import TestSupport
import Testing

/// The daemon with its root key in SoftHSM2 (Debian's `softhsm2`): sealed until the key exists, every secret read
/// back after a restart, fail-closed with the reason on /readyz, and the root moved between a file and the token.
@Suite(.serialized) struct HSMDaemonTests {
    static let pin = "2468-daemon"

    /// A SoftHSM2 token directory for one test and the environment every process of the test needs.
    struct Token {
        var conf: String
        var pinFile: String
        var uri: String
        var env: [String: String]
    }

    func makeToken(in dir: String, label: String = "gatehouse") throws -> Token {
        let tokens = dir + "/softhsm-tokens"
        try FileManager.default.createDirectory(atPath: tokens, withIntermediateDirectories: true)
        let conf = dir + "/softhsm2.conf"
        try "directories.tokendir = \(tokens)\nobjectstore.backend = file\nlog.level = ERROR\n".write(
            toFile: conf, atomically: true, encoding: .utf8)
        let made = try ProcessRunner.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", Self.pin, "--so-pin", "so-pin-1"],
            environment: ["SOFTHSM2_CONF": conf], timeout: 30)
        try #require(made.status == 0, "softhsm2-util: \(made.stderr)")
        let pinFile = dir + "/hsm.pin"
        FileManager.default.createFile(
            atPath: pinFile, contents: Data((Self.pin + "\n").utf8), attributes: [.posixPermissions: 0o600])
        let uri =
            "pkcs11:token=\(label);object=gatehouse-root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:\(pinFile)"
        return Token(
            conf: conf, pinFile: pinFile, uri: uri,
            env: [
                "SOFTHSM2_CONF": conf, "GATEHOUSE_ROOT_KEY_SOURCE": "pkcs11", "GATEHOUSE_ROOT_KEY_PKCS11": uri,
            ])
    }

    func gatehouse(_ args: [String], cwd: String, env: [String: String]) throws -> ProcessRunner.Output {
        try ProcessRunner.run([ProcessRunner.gatehouseBinary] + args, cwd: cwd, environment: env, timeout: 60)
    }

    func readyz(_ daemon: DaemonProcess) throws -> (Int, String) {
        let (_, body, code) = try curl([daemon.operationsBase + "/readyz"])
        return (code, body)
    }

    /// Waits for `/readyz` to say `text`.
    func waitForReadyz(_ daemon: DaemonProcess, containing text: String, timeout: TimeInterval = 30) throws -> (
        Int, String
    ) {
        let deadline = Date().addingTimeInterval(timeout)
        var last = (0, "")
        while Date() < deadline {
            last = try readyz(daemon)
            if last.1.contains(text) { return last }
            usleep(200_000)
        }
        return last
    }

    func putSecret(_ daemon: DaemonProcess, _ name: String, _ value: String) throws {
        let (_, body, code) = try curl(
            daemon.adminCurl + [
                "-X", "POST", "-d", "{\"value\":\"\(value)\"}", daemon.httpsBase + "/api/v1/projects/p/secrets/\(name)",
            ])
        #expect(code == 201, "\(body)")
    }

    func secret(_ daemon: DaemonProcess, _ name: String) throws -> String {
        let (_, body, code) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/projects/p/secrets/\(name)"])
        #expect(code == 200, "\(body)")
        return body
    }

    @Test func sealedUntilTheKeyExistsThenEverySecretSurvivesARestart() throws {
        let dir = try freshDirectory()
        let token = try makeToken(in: dir.path)
        // No key in the token yet: the daemon starts sealed, serving only /readyz with the reason.
        var daemon = try DaemonProcess(directory: dir.path, environment: token.env)
        let sealedPorts = try daemon.waitUntilListening(expected: 1)
        #expect(Set(sealedPorts.keys) == ["operations"])
        let (sealedCode, sealedBody) = try readyz(daemon)
        #expect(sealedCode == 503)
        #expect(
            sealedBody.contains("sealed: root key unavailable: no AES key labelled \"gatehouse-root\""), "\(sealedBody)"
        )
        #expect(!FileManager.default.fileExists(atPath: daemon.dataDirectory + "/root.key"))

        // The key is made in the token; the daemon notices on its next try and starts everything.
        let created = try gatehouse(["root-key", "create"], cwd: dir.path, env: token.env)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("created AES-256 root key \"gatehouse-root\" in token \"gatehouse\""))
        let again = try gatehouse(["root-key", "create"], cwd: dir.path, env: token.env)
        #expect(again.status != 0 && again.stderr.contains("already holds a key labelled"), "\(again.stderr)")
        try daemon.waitUntilListening(expected: 4, timeout: 30)
        let (readyCode, readyBody) = try waitForReadyz(daemon, containing: "ready; ")
        #expect(readyCode == 200, "\(readyBody)")
        try daemon.ensureProject("p")
        for i in 0..<5 { try putSecret(daemon, "s\(i)", "value-\(i)-kept-in-hsm") }
        #expect(daemon.stop() == 0)
        // No key material on disk: the data key is wrapped by the token, and no key file was made.
        #expect(!FileManager.default.fileExists(atPath: daemon.dataDirectory + "/root.key"))

        daemon = try DaemonProcess(directory: dir.path, environment: token.env)
        try daemon.waitUntilListening()
        for i in 0..<5 { #expect(try secret(daemon, "s\(i)").contains("value-\(i)-kept-in-hsm")) }
        #expect(daemon.stop() == 0)

        // A wrong PIN: sealed, /readyz says why, nothing else listens; the right PIN back: serving again.
        try "0000\n".write(toFile: token.pinFile, atomically: true, encoding: .utf8)
        chmod(token.pinFile, 0o600)
        daemon = try DaemonProcess(directory: dir.path, environment: token.env)
        #expect(Set(try daemon.waitUntilListening(expected: 1).keys) == ["operations"])
        let (wrongCode, wrongBody) = try readyz(daemon)
        #expect(wrongCode == 503 && wrongBody.contains("is wrong (CKR_PIN_INCORRECT)"), "\(wrongBody)")
        #expect(daemon.log.contains("sealed"))
        try (Self.pin + "\n").write(toFile: token.pinFile, atomically: true, encoding: .utf8)
        chmod(token.pinFile, 0o600)
        try daemon.waitUntilListening(expected: 4, timeout: 30)
        #expect(try secret(daemon, "s3").contains("value-3-kept-in-hsm"))
        // The CLI fails closed too, with the same reason, and SIGTERM while sealed stops cleanly.
        #expect(daemon.stop() == 0)
        var noToken = token.env
        noToken["GATEHOUSE_ROOT_KEY_PKCS11"] = token.uri.replacingOccurrences(
            of: "token=gatehouse", with: "token=missing")
        let verify = try gatehouse(["audit", "verify"], cwd: dir.path, env: noToken)
        #expect(verify.status != 0 && verify.stderr.contains("no PKCS#11 token \"missing\""), "\(verify.stderr)")
        daemon = try DaemonProcess(directory: dir.path, environment: noToken)
        try daemon.waitUntilListening(expected: 1)
        #expect(try readyz(daemon).1.contains("tokens present: \"gatehouse\""))
        #expect(daemon.stop() == 0)
        #expect(daemon.log.contains("gatehouse: stopped"))
    }

    /// Online: the daemon serves while the root moves from its key file into the token; the command is killed
    /// with SIGKILL half-way, the daemon restarted mid-switch, the command run again; every value stays readable.
    @Test func anOnlineSwitchSurvivesKill9AndFinishes() async throws {
        let dir = try freshDirectory()
        let token = try makeToken(in: dir.path)
        var fileEnv = token.env
        fileEnv["GATEHOUSE_ROOT_KEY_SOURCE"] = nil
        fileEnv["GATEHOUSE_ROOT_KEY_PKCS11"] = nil
        var daemon = try DaemonProcess(directory: dir.path, environment: fileEnv)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        #expect(daemon.stop() == 0)
        // A year of data-key rotations: 1,500 data keys, with values sealed under several of them.
        let storage = try SQLiteStorage(path: daemon.dataDirectory + "/gatehouse.sqlite")
        let engine = try await GatehouseEngine.open(
            storage: storage, rootKey: FileRootKeyProvider(path: daemon.dataDirectory + "/root.key"),
            bootstrapAdmins: ["gatehouse-admin"])
        let admin = CallContext(
            principal: Principal(
                method: .tlsCertificate, id: "fp-admin", name: "gatehouse-admin", verifiedByListener: true),
            frontEnd: "test")
        for i in 0..<1500 {
            if i % 300 == 0 {
                _ = try await engine.createSecret(
                    admin, project: "p", name: "s\(i / 300)", value: SecretBytes(utf8: "value-\(i / 300)"))
            }
            _ = try await engine.rotateDataKey()
        }
        try await storage.close()

        daemon = try DaemonProcess(directory: dir.path, environment: fileEnv)
        try daemon.waitUntilListening()
        try putSecret(daemon, "s5", "value-5")
        func readsEverything(_ daemon: DaemonProcess) throws {
            for i in 0...5 { #expect(try secret(daemon, "s\(i)").contains("value-\(i)")) }
        }
        let created = try gatehouse(["root-key", "create", "--uri", token.uri], cwd: dir.path, env: token.env)
        #expect(created.status == 0, "\(created.stderr)")

        // The switch, one data key per transaction, killed after its first batches.
        let switcher = Process()
        switcher.executableURL = URL(fileURLWithPath: ProcessRunner.gatehouseBinary)
        switcher.arguments = ["rotate-root-key", "--to", token.uri, "--batch", "1"]
        switcher.currentDirectoryURL = URL(fileURLWithPath: dir.path)
        switcher.environment = ProcessInfo.processInfo.environment.merging(fileEnv) { $1 }
        let out = Pipe()
        switcher.standardOutput = out
        switcher.standardError = FileHandle.nullDevice
        try switcher.run()
        var seen = ""
        while !seen.contains("re-wrapped 20 of") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        kill(switcher.processIdentifier, SIGKILL)
        switcher.waitUntilExit()
        #expect(switcher.terminationReason == .uncaughtSignal, "the switch ended before it was killed: \(seen)")

        // Mid-switch: the running daemon serves, writes and reads; restarted (still configured with its file) it
        // finds the token through the store and serves again.
        try readsEverything(daemon)
        try putSecret(daemon, "mid", "written-mid-switch")
        #expect(daemon.stop() == 0)
        daemon = try DaemonProcess(directory: dir.path, environment: fileEnv)
        try daemon.waitUntilListening()
        try readsEverything(daemon)

        // Run again: it resumes and finishes while the daemon serves.
        let finished = try gatehouse(["rotate-root-key", "--to", token.uri], cwd: dir.path, env: fileEnv)
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(finished.stdout.contains("root key switched (resumed)"), "\(finished.stdout)")
        let counts = finished.stdout.firstMatch(of: /(\d+) of (\d+) data keys re-wrapped/)
        let rewrapped = Int(counts?.1 ?? "") ?? -1
        let total = Int(counts?.2 ?? "") ?? -1
        #expect(total == 1501 && rewrapped > 0 && rewrapped <= total - 20, "\(finished.stdout)")
        try readsEverything(daemon)
        #expect(try secret(daemon, "mid").contains("written-mid-switch"))
        #expect(daemon.stop() == 0)

        // Configured with the token from now on: everything opens, and the audit chain holds.
        daemon = try DaemonProcess(directory: dir.path, environment: token.env)
        try daemon.waitUntilListening()
        try readsEverything(daemon)
        #expect(daemon.stop() == 0)
        let verify = try gatehouse(["audit", "verify"], cwd: dir.path, env: token.env)
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
    }

    @Test func theRootMovesFromAFileIntoTheTokenAndBack() throws {
        let dir = try freshDirectory()
        let token = try makeToken(in: dir.path)
        var daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        try daemon.ensureProject("p")
        try putSecret(daemon, "moved", "across-roots")
        #expect(daemon.stop() == 0)

        let created = try gatehouse(["root-key", "create", "--uri", token.uri], cwd: dir.path, env: token.env)
        #expect(created.status == 0, "\(created.stderr)")
        var fileEnv = token.env
        fileEnv["GATEHOUSE_ROOT_KEY_SOURCE"] = nil
        fileEnv["GATEHOUSE_ROOT_KEY_PKCS11"] = nil
        let moved = try gatehouse(["rotate-root-key", "--to", token.uri], cwd: dir.path, env: fileEnv)
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(moved.stdout.contains("1 of 1 data keys re-wrapped under the PKCS#11 key \"gatehouse-root\""))
        #expect(moved.stdout.contains("GATEHOUSE_ROOT_KEY_SOURCE=pkcs11"))
        // A node still configured with the old file finds the token through the store; without the token's
        // configuration (SOFTHSM2_CONF) it cannot, and says which root it needs.
        let stale = try gatehouse(["audit", "verify"], cwd: dir.path, env: fileEnv)
        #expect(stale.status == 0, "\(stale.stderr)")
        var noHSM = fileEnv
        noHSM["SOFTHSM2_CONF"] = dir.path + "/missing.conf"
        let blind = try gatehouse(["audit", "verify"], cwd: dir.path, env: noHSM)
        #expect(
            blind.status != 0 && blind.stderr.contains("the store's root key pkcs11:token=gatehouse"),
            "\(blind.stderr)")
        daemon = try DaemonProcess(directory: dir.path, environment: token.env)
        try daemon.waitUntilListening()
        #expect(try secret(daemon, "moved").contains("across-roots"))
        #expect(daemon.stop() == 0)

        // And back out to a new key file.
        let newFile = dir.path + "/new-root.key"
        let back = try gatehouse(["rotate-root-key", "--to", "file:" + newFile], cwd: dir.path, env: token.env)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(back.stdout.contains("GATEHOUSE_ROOT_KEY_FILE=\(newFile)"))
        var fileBack = fileEnv
        fileBack["GATEHOUSE_ROOT_KEY_FILE"] = newFile
        daemon = try DaemonProcess(directory: dir.path, environment: fileBack)
        try daemon.waitUntilListening()
        #expect(try secret(daemon, "moved").contains("across-roots"))
        #expect(daemon.stop() == 0)
        let verify = try gatehouse(["audit", "verify"], cwd: dir.path, env: fileBack)
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
    }
}
