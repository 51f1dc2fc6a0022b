import Foundation
import TestSupport
import Testing

/// The CLI explains itself: a version that matches the daemon's, help for every command and option, errors that say
/// what to do, `config check` that keeps the environment apart, and commands that leave nothing behind on failure.
@Suite(.serialized) struct CLIGuidanceTests {
    func gatehouse(_ args: [String], cwd: String, env: [String: String] = [:]) throws -> ProcessRunner.Output {
        try ProcessRunner.run([ProcessRunner.gatehouseBinary] + args, cwd: cwd, environment: env, timeout: 60)
    }

    @Test func versionMatchesTheMetricAndReadiness() throws {
        let dir = try freshDirectory()
        let version = try gatehouse(["--version"], cwd: dir.path)
        #expect(version.status == 0)
        let v = version.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(v.split(separator: ".").count == 3 && v.allSatisfy { $0.isNumber || $0 == "." }, "\(v)")

        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let (_, metrics, _) = try curl([daemon.operationsBase + "/metrics"])
        #expect(metrics.contains("gatehouse_build_info{version=\"\(v)\"} 1"), "\(metrics.prefix(400))")
        let (_, ready, code) = try curl([daemon.operationsBase + "/readyz"])
        #expect(code == 200 && ready.contains("version \(v)"), "\(ready)")
        #expect(daemon.stop() == 0)
    }

    @Test func everyCommandAndOptionHasHelp() throws {
        let dir = try freshDirectory()
        let dump = try gatehouse(["--experimental-dump-help"], cwd: dir.path)
        #expect(dump.status == 0)
        let root = try #require(
            (try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])?["command"]
                as? [String: Any])
        var commands = 0
        var undocumented: [String] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            let name = path + [command["commandName"] as? String ?? "?"]
            // ArgumentParser's own `help` command is not ours to document.
            if name.last == "help" { return }
            commands += 1
            if (command["abstract"] as? String ?? "").isEmpty { undocumented.append(name.joined(separator: " ")) }
            for argument in command["arguments"] as? [[String: Any]] ?? []
            where (argument["abstract"] as? String ?? "")
                .isEmpty
            {
                let names = (argument["names"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
                undocumented.append(
                    name.joined(separator: " ") + " " + (names.first ?? argument["valueName"] as? String ?? "?"))
            }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] { walk(sub, name) }
        }
        walk(root, [])
        #expect(commands > 80, "the dump lists \(commands) commands")
        #expect(undocumented.isEmpty, "no help text: \(undocumented)")
    }

    @Test func errorsSayWhatToDo() throws {
        let dir = try freshDirectory()
        // The wrong directory: no data directory here.
        let lost = try gatehouse(["project", "list"], cwd: dir.path)
        #expect(lost.status == 1)
        #expect(lost.stderr.contains("no data directory at .gatehouse (working directory"), "\(lost.stderr)")
        #expect(lost.stderr.contains("--data-dir DIR"), "\(lost.stderr)")

        // A data directory, but no daemon: name the URL and how to start one.
        #expect(try gatehouse(["init"], cwd: dir.path).status == 0)
        let started = Date()
        let down = try gatehouse(["project", "list"], cwd: dir.path)
        #expect(down.status == 1)
        #expect(Date().timeIntervalSince(started) < 5, "a refused connection is reported at once")
        #expect(down.stderr.contains("no daemon answers at https://localhost:8443"), "\(down.stderr)")
        #expect(down.stderr.contains("gatehouse serve --data-dir .gatehouse"), "\(down.stderr)")
        #expect(!down.stderr.contains("SingleConnectionFailure"), "\(down.stderr)")

        // A certificate file that is not there: name it.
        let missing = try gatehouse(["project", "list", "--cert", "nope.crt"], cwd: dir.path)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("the client certificate nope.crt does not exist"), "\(missing.stderr)")
    }

    @Test func configCheckKeepsTheEnvironmentApart() throws {
        let dir = try freshDirectory()
        let file = ProcessRunner.repositoryRoot + "/Config/gatehouse.toml"
        // A bad override does not make the file look wrong, and is reported as the environment's.
        let bad = try gatehouse(
            ["config", "check", file], cwd: dir.path, env: ["GATEHOUSE_LISTENERS_HTTPS_PORT": "eighty"])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("\(file): OK"), "\(bad.stdout)")
        #expect(bad.stdout.contains("GATEHOUSE_LISTENERS_HTTPS_PORT overrides listeners.https.port"), "\(bad.stdout)")
        #expect(
            bad.stderr.contains("environment GATEHOUSE_LISTENERS_HTTPS_PORT: listeners.https.port: must be an integer")
                && bad.stderr.contains("(from the environment, not the file)"), "\(bad.stderr)")
        // A good override does not hide an error of the file.
        let broken = dir.path + "/broken.toml"
        try "[listeners.https]\nport = \"eighty\"\n".write(toFile: broken, atomically: true, encoding: .utf8)
        let hidden = try gatehouse(
            ["config", "check", broken], cwd: dir.path, env: ["GATEHOUSE_LISTENERS_HTTPS_PORT": "8443"])
        #expect(hidden.status == 1)
        #expect(hidden.stderr.contains("\(broken):2: listeners.https.port: must be an integer"), "\(hidden.stderr)")
        #expect(!hidden.stdout.contains("\(broken): OK"))
        // No override: the file alone.
        let plain = try gatehouse(["config", "check", file], cwd: dir.path)
        #expect(plain.status == 0 && !plain.stdout.contains("environment overrides"), "\(plain.stdout)")
    }

    @Test func listsAreInCreationOrder() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let names = (1...8).map { "svc-\($0)" }
        for name in names {
            let made = try gatehouse(["identity", "create", name, "--data-dir", daemon.dataDirectory], cwd: dir.path)
            #expect(made.status == 0, "\(made.stderr)")
        }
        let list = try gatehouse(["identity", "list", "--data-dir", daemon.dataDirectory], cwd: dir.path)
        let listed = list.stdout.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first(where: { $0.hasPrefix("svc-") }).map(String.init)
        }
        #expect(listed == names, "identity list, oldest first: \(list.stdout)")
        let first = try gatehouse(
            ["identity", "list", "--max", "3", "--output", "json", "--data-dir", daemon.dataDirectory], cwd: dir.path)
        let firstNames = (try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [[String: Any]])?
            .compactMap {
                $0["name"] as? String
            }
        #expect(firstNames == Array(names.prefix(3)), "--max 3: \(first.stdout)")
        #expect(daemon.stop() == 0)
    }

    @Test func kmipClientCreateLeavesNothingBehindWhenItFails() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        func cli(_ args: [String]) throws -> ProcessRunner.Output {
            try gatehouse(args + ["--data-dir", daemon.dataDirectory], cwd: dir.path)
        }
        let out = dir.path + "/client"
        let failed = try cli(["kmip", "client", "create", "array-7", "--project", "missing", "--out", out])
        #expect(failed.status == 1 && failed.stderr.contains("HTTP 404"), "\(failed.stderr)")
        let identities = try cli(["identity", "list", "--output", "json"])
        #expect(!identities.stdout.contains("array-7"), "\(identities.stdout)")
        #expect(!FileManager.default.fileExists(atPath: out + "/array-7.key"))

        // A role that does not exist fails after the identity and its certificate were made: the identity is undone.
        try daemon.ensureProject("storage")
        let badRole = try cli([
            "kmip", "client", "create", "array-7", "--project", "storage", "--role", "no-such-role", "--out", out,
        ])
        #expect(badRole.status == 1, "\(badRole.stdout)")
        #expect(!(try cli(["identity", "list", "--output", "json"])).stdout.contains("array-7"))
        #expect(!FileManager.default.fileExists(atPath: out + "/array-7.key"))

        // The retry works: no `already exists`.
        let retry = try cli(["kmip", "client", "create", "array-7", "--project", "storage", "--out", out])
        #expect(retry.status == 0, "\(retry.stderr)")
        #expect(FileManager.default.fileExists(atPath: out + "/array-7.key"))
        #expect(daemon.stop() == 0)
    }
}
