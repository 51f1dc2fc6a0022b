import DaemonConfig
import Engine
import EngineAPI
import Foundation
import Logging
import StorageAPI
import StoragePostgres

/// `gatehouse backup verify --pg-dump`: proves that what the PostgreSQL backup procedure produced (a `pg_dump
/// --format=custom` of the store, plus the recordings where they are kept apart) restores into a working store.
///
/// It restores the dump into an empty scratch database with Debian's `pg_restore` (one transaction, stop at the first
/// error), opens it with the configured root key, unwraps every data key, verifies every audit chain, and checks
/// every ended session's recording (decrypted, signed manifest, chunk count and chain hash against what the store
/// recorded at the session's end). Then it drops what it restored, unless asked to keep it.
public enum PostgresDumpCheck {
    public struct Report: Sendable {
        public var dumpEntries = 0
        public var dataKeys = 0
        public var auditEvents: Int64 = 0
        public var auditProblems: [String] = []
        public var projects = 0
        /// Ended sessions checked, those with a complete recording, and those deleted under retention.
        public var sessions = 0
        public var complete = 0
        public var deleted = 0
        /// "session id: integrity: detail" for each recording that is missing, incomplete or tampered.
        public var recordingProblems: [String] = []
        public var isSound: Bool { auditProblems.isEmpty && recordingProblems.isEmpty }
    }

    /// libpq's environment for `url` (so the password never appears in a command line).
    static func libpqEnvironment(_ url: String) throws -> [String: String] {
        guard let c = URLComponents(string: url), c.scheme == "postgres" || c.scheme == "postgresql",
            let host = c.host, !host.isEmpty
        else { throw DaemonError("--scratch-url must be a postgres://user:password@host:port/database URL") }
        var env = ProcessInfo.processInfo.environment
        env["PGHOST"] = host
        env["PGPORT"] = String(c.port ?? 5432)
        if let user = c.user { env["PGUSER"] = user.removingPercentEncoding ?? user }
        if let password = c.password { env["PGPASSWORD"] = password.removingPercentEncoding ?? password }
        env["PGDATABASE"] = String(c.path.dropFirst())
        for item in c.queryItems ?? [] {
            switch item.name {
            case "sslmode": env["PGSSLMODE"] = item.value
            case "sslrootcert": env["PGSSLROOTCERT"] = item.value
            default: break
            }
        }
        return env
    }

    /// Runs `pg_restore` with `arguments`; returns its standard output, or throws with its standard error.
    static func pgRestore(_ arguments: [String], environment: [String: String]) throws -> String {
        let candidates =
            (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/pg_restore" } + [
                "/usr/bin/pg_restore"
            ]
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw DaemonError("pg_restore not found (apt-get install postgresql-client)")
        }
        // Standard error to a file: read after the exit, it can never fill a pipe and stall pg_restore.
        let errPath =
            NSTemporaryDirectory() + "gatehouse-pg-restore-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).err"
        guard FileManager.default.createFile(atPath: errPath, contents: nil, attributes: [.posixPermissions: 0o600]),
            let errHandle = FileHandle(forWritingAtPath: errPath)
        else { throw DaemonError("cannot create a temporary file for pg_restore's messages") }
        defer {
            try? errHandle.close()
            unlink(errPath)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = ((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
                .split(separator: "\n").prefix(5).joined(separator: "; ")
            throw DaemonError("pg_restore failed: \(message)")
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Checks `dump` by restoring it into the empty database at `scratchURL`. `config` gives the root key (and the
    /// recording store, unless `recordingDirectory` names a copy of the recordings). Throws when the dump cannot be
    /// restored or opened; a store that opens but whose audit chain or recordings do not hold is a report with
    /// problems.
    public static func run(
        dump: String, scratchURL: String, config: GatehouseConfiguration, recordingDirectory: String?,
        keepScratch: Bool, logger: Logger, progress: @Sendable (String) -> Void = { _ in }
    ) async throws -> Report {
        guard FileManager.default.isReadableFile(atPath: dump) else { throw DaemonError("cannot read \(dump)") }
        var report = Report()
        let environment = try libpqEnvironment(scratchURL)
        // The dump's table of contents: a file pg_restore cannot read is refused before anything is touched.
        let list = try pgRestore(["--list", dump], environment: environment)
        report.dumpEntries = list.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }.count
        guard list.contains("TABLE DATA public records ") else {
            throw DaemonError("\(dump) is not a dump of a Gatehouse store (it has no records table)")
        }

        let scratch: PostgresStorage
        do {
            scratch = try PostgresStorage(url: scratchURL, logger: logger, maxConnections: 2)
        } catch let e as StorageError {
            throw DaemonError("--scratch-url: \(e.detail)")
        }
        do {
            let report = try await check(
                dump: dump, scratch: scratch, scratchURL: scratchURL, environment: environment, report: report,
                config: config, recordingDirectory: recordingDirectory, keepScratch: keepScratch, logger: logger,
                progress: progress)
            try? await scratch.close()
            return report
        } catch {
            try? await scratch.close()
            throw error
        }
    }

    static func check(
        dump: String, scratch: PostgresStorage, scratchURL: String, environment: [String: String], report: Report,
        config: GatehouseConfiguration, recordingDirectory: String?, keepScratch: Bool, logger: Logger,
        progress: @Sendable (String) -> Void
    ) async throws -> Report {
        var report = report
        let existing: Int
        do {
            existing = try await scratch.userObjectCount()
        } catch let e as StorageError {
            throw DaemonError("cannot reach the scratch database: \(e.detail)")
        }
        guard existing == 0 else {
            throw DaemonError(
                "the scratch database is not empty (\(existing) tables and functions); give an empty database (createdb)"
            )
        }
        progress("restoring \(dump) into the scratch database (\(report.dumpEntries) entries)")
        do {
            _ = try pgRestore(
                [
                    "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                    "--dbname", environment["PGDATABASE"] ?? "", dump,
                ],
                environment: environment)
        } catch {
            try? await scratch.unsafeDropAll()
            throw error
        }
        do {
            var restored = config
            restored.storage = .postgres(url: scratchURL, preparedStatements: true)
            if recordingDirectory == nil, config.pamRecordingStore == .local {
                progress(
                    "recordings: pam.recording_store = \"local\" and no --recordings given; reading \(StoreFactory.recordingDirectory(config))"
                )
            }
            report = try await StoreFactory.withEngine(
                restored, logger: logger, recordingDirectory: recordingDirectory
            ) { [report] engine in
                var report = report
                report.dataKeys = try await engine.checkDataKeys()
                progress("every data key (\(report.dataKeys)) opens under the root key")
                let ctx = CallContext.system("backup-verify")
                let audit = try await engine.verifyAudit(ctx)
                report.auditEvents = audit.checked
                report.auditProblems = audit.problems
                progress("audit: \(audit.checked) events, \(audit.isIntact ? "intact" : "NOT intact")")
                var projectCursor: String?
                repeat {
                    let projects = try await engine.listProjects(ctx, after: projectCursor, limit: 500)
                    for project in projects.items {
                        report.projects += 1
                        var sessionCursor: String?
                        repeat {
                            let page = try await engine.listPAMSessions(
                                ctx, project: project.slug, PAMSessionQuery(after: sessionCursor, limit: 500))
                            for session in page.items where session.endedAt != nil {
                                let verdict = try await engine.verifyPAMRecording(ctx, sessionId: session.id)
                                report.sessions += 1
                                switch verdict.integrity {
                                case "complete": report.complete += 1
                                case "deleted": report.deleted += 1
                                default:
                                    report.recordingProblems.append(
                                        "\(session.id): \(verdict.integrity): \(verdict.integrityDetail ?? "")")
                                }
                            }
                            sessionCursor = page.next
                        } while sessionCursor != nil
                    }
                    projectCursor = projects.next
                } while projectCursor != nil
                return report
            }
        } catch {
            if !keepScratch { try? await scratch.unsafeDropAll() }
            throw error
        }
        if !keepScratch { try await scratch.unsafeDropAll() }
        return report
    }
}
