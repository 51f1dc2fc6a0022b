import ArgumentParser
import Foundation

/// `gatehouse-bench backup`: `gatehouse backup` and `gatehouse restore` of a SQLite store grown to a given size.
struct BackupBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Time gatehouse backup and restore of a SQLite store of --megabytes (MiB/s, seconds).")
    @Option(help: "The gatehouse binary.") var gatehouse = ".build/release/gatehouse"
    @Option(help: "Store size to reach, in MiB (opaque 4 KiB records added to a real store).") var megabytes = 1024
    @Option(help: "Runs of each (the median is printed).") var runs = 3
    @Option(help: "Work directory (default: a new one under /tmp, removed at the end).") var directory: String?

    func run() async throws {
        let gatehouse = URL(fileURLWithPath: self.gatehouse).standardizedFileURL.path
        let work = directory ?? NSTemporaryDirectory() + "gatehouse-bench-backup-\(getpid())"
        let data = work + "/data"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: work) } }
        try run([gatehouse, "init", "--data-dir", data], in: work)
        // Grow the store with opaque records (the backup copies pages, whatever they hold).
        let records = megabytes * 256
        print("filling the store with \(records) records of 4 KiB …")
        try run(
            [
                "sqlite3", data + "/gatehouse.sqlite",
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(records))
                INSERT INTO records (kind, id, scope, name, version, body, created_at, updated_at)
                SELECT 'bench-fill', printf('%09d', i), '', NULL, 1, randomblob(4096), 0, 0 FROM n;
                """,
            ], in: work)
        let storeBytes =
            (try FileManager.default.attributesOfItem(atPath: data + "/gatehouse.sqlite")[.size] as? NSNumber)?
            .doubleValue ?? 0
        let key = work + "/backup.key"
        let raw = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString() + "\n"
        guard
            FileManager.default.createFile(
                atPath: key, contents: Data(raw.utf8), attributes: [.posixPermissions: 0o600])
        else { throw ValidationError("cannot write \(key)") }
        var backups: [Double] = []
        var restores: [Double] = []
        var archiveBytes = 0.0
        for i in 0..<runs {
            let archive = work + "/run-\(i).backup"
            backups.append(
                try timed([gatehouse, "backup", "--data-dir", data, "--out", archive, "--key-file", key], in: work))
            archiveBytes =
                (try FileManager.default.attributesOfItem(atPath: archive)[.size] as? NSNumber)?.doubleValue ?? 0
            let target = work + "/restored-\(i)"
            restores.append(
                try timed(
                    [gatehouse, "restore", archive, "--data-dir", target, "--key-file", key],
                    in: work, environment: ["GATEHOUSE_ROOT_KEY_FILE": data + "/root.key"]))
            try? FileManager.default.removeItem(atPath: archive)
            try? FileManager.default.removeItem(atPath: target)
        }
        let mib = storeBytes / 1_048_576
        let backup = backups.sorted()[backups.count / 2]
        let restore = restores.sorted()[restores.count / 2]
        print(
            String(
                format:
                    "store %.0f MiB, archive %.0f MiB: backup %.2f s (%.0f MiB/s), restore + verify %.2f s (%.0f MiB/s); median of %d",
                mib, archiveBytes / 1_048_576, backup, mib / backup, restore, mib / restore, runs))
    }

    func run(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        p.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        p.standardError = errors
        try p.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ValidationError(
                "\(arguments.prefix(2).joined(separator: " ")) failed: \(String(decoding: message, as: UTF8.self))")
        }
    }

    func timed(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws -> Double {
        let start = ContinuousClock.now
        try run(arguments, in: directory, environment: environment)
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
