import Foundation
import Logging
import ServerSupport
import StoragePostgres
import StorageS3
import TestSupport
import Testing

/// Recordings in shared storage (PostgreSQL and S3): shipping, replay on another node, kill -9 mid-upload, retention
/// and legal hold.
extension PAMProxyTests {
    /// With the PostgreSQL store, recordings leave the node: a session proxied by node A is replayed through node B
    /// while it runs (what was shipped so far, reported incomplete) and after it ends (complete, verified), and A's
    /// spool file is gone once the store holds all of it.
    @Test func recordingsShipToTheSharedStoreAndReplayOnAnotherNode() async throws {
        guard let env = try await sharedPostgresDaemonEnvironment(), let url = env["GATEHOUSE_STORAGE_POSTGRES_URL"]
        else { return }
        let f: Fixture
        do { f = try Fixture(environment: env) } catch is Fixture.Skip { return }
        let dirB = try freshDirectory()
        try FileManager.default.createDirectory(atPath: dirB.path + "/.gatehouse", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: f.certs, toPath: dirB.path + "/.gatehouse/certs")
        let b = try DaemonProcess(directory: dirB.path, environment: env)
        try b.waitUntilListening()
        func recordingOnB(_ id: String) throws -> (code: Int, integrity: String, events: [[String: Any]]) {
            let (_, body, code) = try curl(b.adminCurl + [b.httpsBase + "/api/v1/pam/sessions/\(id)/recording"])
            let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
            return (code, object["integrity"] as? String ?? "", object["events"] as? [[String: Any]] ?? [])
        }

        let admin = try f.adminClient()
        _ = try f.adminGrant("1h")
        let known = try Self.sessionIds(f)
        let running = try Background(
            [
                "psql", "-X", "-At", f.conninfo(admin), "-c", "select 'shipped-while-running'", "-c",
                "select pg_sleep(8)",
            ],
            environment: ["PGAPPNAME": "gh-ship"], errPath: f.dir.path + "/ship.err")
        // While it runs: B replays what A has shipped (the spool is uploaded every 2 s).
        var live: (code: Int, integrity: String, events: [[String: Any]]) = (0, "", [])
        for _ in 0..<40 {
            try await Task.sleep(for: .milliseconds(250))
            guard let id = try? Self.sessionIds(f).subtracting(known).first else { continue }
            live = try recordingOnB(id)
            if live.events.contains(where: { ($0["text"] as? String)?.contains("shipped-while-running") == true }) {
                break
            }
        }
        #expect(live.code == 200 && live.integrity == "incomplete", "\(live)")
        #expect(
            live.events.contains { ($0["text"] as? String)?.contains("shipped-while-running") == true },
            "\(live.events)")
        let done = running.wait(30)
        #expect(done.status == 0, "\(done.stderr)")
        let id = try Self.newSession(f, since: known)
        // After it ends: complete and verified through B, and A's spool file is gone.
        var after: (code: Int, integrity: String, events: [[String: Any]]) = (0, "", [])
        let spool = f.daemon.dataDirectory + "/recordings/\(id).ghrec"
        for _ in 0..<40 {
            after = try recordingOnB(id)
            if after.integrity == "complete", !FileManager.default.fileExists(atPath: spool) { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(after.code == 200 && after.integrity == "complete", "\(after)")
        #expect(after.events.contains { $0["kind"] as? String == "end" })
        #expect(!FileManager.default.fileExists(atPath: spool), "the spool copy is deleted once stored")
        // A replays it too, from the store.
        let onA = try Self.recording(f, id)
        #expect(onA.code == 200 && onA.integrity == "complete", "\(onA.body)")
        // gatehouse pam sessions verify --all, through B: every ended session's recording is in the store, complete.
        func verifyAll() throws -> ProcessRunner.Output {
            try ProcessRunner.run(
                [
                    ProcessRunner.gatehouseBinary, "pam", "sessions", "verify", "--all", "--data-dir", b.dataDirectory,
                    "--project", "prod",
                    "--output", "json",
                ], timeout: 120)
        }
        let verified = try verifyAll()
        #expect(
            verified.status == 0 && verified.stderr.contains("not complete")
                && verified.stderr.contains(" 0 not complete"), "\(verified.stdout)\(verified.stderr)")
        // A recording lost from the store is listed as missing, and the command fails.
        let store = try PostgresStorage(url: url, logger: Logger(label: "test"))
        try await store.unsafeExecute("DELETE FROM recording_pieces WHERE session = '\(id)'")
        try await store.close()
        let lost = try verifyAll()
        #expect(
            lost.status == 1 && lost.stdout.contains(id) && lost.stdout.contains("missing"),
            "\(lost.stdout)\(lost.stderr)")
        // The shipper's backlog is in /readyz and /metrics: nothing waits.
        let (_, ready, readyCode) = try curl([f.daemon.operationsBase + "/readyz"])
        #expect(readyCode == 200 && ready.contains("recordings: backlog 0 bytes"), "\(ready)")
        let (_, metrics, _) = try curl([f.daemon.operationsBase + "/metrics"])
        #expect(metrics.contains("gatehouse_pam_recording_backlog_bytes 0"), "\(metrics.prefix(3000))")
        #expect(b.stop() == 0)
        #expect(f.daemon.stop() == 0)
    }

    /// `kill -9` of the node in the middle of a session and in the middle of an upload (a piece's INSERT is held by a
    /// table lock when the node dies): after a restart the store holds exactly what the spool held at the crash, each
    /// byte once, and the recording reads as cut short by the crash, not tampered.
    @Test func aKilledNodeShipsItsRecordingOnceAfterRestart() async throws {
        guard let env = try await sharedPostgresDaemonEnvironment(), let url = env["GATEHOUSE_STORAGE_POSTGRES_URL"]
        else { return }
        let f: Fixture
        do { f = try Fixture(environment: env) } catch is Fixture.Skip { return }
        let admin = try f.adminClient()
        _ = try f.adminGrant("1h")
        let known = try Self.sessionIds(f)
        /// A statement on the daemons' own database (not through the proxy).
        func onStore(_ sql: String) throws -> String {
            let out = try ProcessRunner.run(
                ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql], timeout: 30)
            #expect(out.status == 0, "\(sql): \(out.stderr)")
            return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // A session that sends 4 MB of statement text after a pause: its recording ships in several 1 MiB pieces.
        let marker = "killed_\(UInt32.random(in: 1...UInt32.max))"
        let hex = Array("0123456789abcdef".utf8)
        let big = String(decoding: (0..<1_000_000).map { _ in hex[Int.random(in: 0..<16)] }, as: UTF8.self)
        let script = f.dir.path + "/kill9.sql"
        let statements = (0..<4).map { i in "select length('\(i)\(big)');\n" }.joined()
        try "select '\(marker)';\nselect pg_sleep(6);\n\(statements)select pg_sleep(60);\n".write(
            toFile: script, atomically: true, encoding: .utf8)
        let session = try Background(
            ["psql", "-X", "-At", f.conninfo(admin), "-f", script], environment: ["PGAPPNAME": "gh-kill9"],
            errPath: f.dir.path + "/kill9.err")
        try f.waitUntilRunning("gh-kill9")
        let id = try Self.newSession(f, since: known)
        let spool = f.daemon.dataDirectory + "/recordings/\(id).ghrec"
        // The start of the session reaches the store while it runs.
        let stored = "select coalesce(sum(length(bytes)), 0) from recording_pieces where session = '\(id)'"
        try Self.poll("the first upload") { try onStore(stored) != "0" }
        // Then an upload is caught in flight: a lock holds the next piece's INSERT until the node is killed.
        let lock = try Background(
            [
                "psql", "-X", "-At", url, "-c",
                "begin; lock table recording_pieces in exclusive mode; select pg_sleep(60); commit",
            ],
            environment: ["PGAPPNAME": "gh-lock"], errPath: f.dir.path + "/lock.err")
        try Self.poll("the big statements in the spool") {
            (try? FileManager.default.attributesOfItem(atPath: spool)[.size] as? Int) ?? 0 > 3_500_000
        }
        try Self.poll("an upload waiting on the lock") {
            try onStore(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like '%INSERT INTO recording_pieces%'"
            ) == "1"
        }
        let before = try onStore(stored)
        f.daemon.signal(SIGKILL)
        _ = f.daemon.waitForExit()
        #expect(
            try onStore(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = 'gh-lock'")
                == "1")
        _ = lock.wait(10)
        _ = session.wait(30)
        let atCrash = try [UInt8](Data(contentsOf: URL(fileURLWithPath: spool)))
        #expect(
            Int(before) ?? 0 < atCrash.count, "the store held \(before) of \(atCrash.count) bytes when the node died")

        // Restart: the node closes the session as crashed and ships the rest, then deletes its spool copy.
        let restarted = try DaemonProcess(
            directory: f.dir.path, environment: env.merging(["GATEHOUSE_LOGGING_LEVEL": "info"]) { $1 })
        try restarted.waitUntilListening(expected: 4)
        try Self.poll("the spool copy to go") { !FileManager.default.fileExists(atPath: spool) }
        // Each byte once: the pieces tile the recording with no overlap, and they are the spool's bytes.
        let tiling = try onStore(
            "select count(*) || ' ' || sum(length(bytes)) || ' ' || max(start_at + length(bytes)) from recording_pieces where session = '\(id)'"
        )
        let parts = tiling.split(separator: " ").compactMap { Int($0) }
        #expect(
            parts.count == 3 && parts[0] >= 4 && parts[1] == atCrash.count && parts[2] == atCrash.count,
            "pieces, bytes, end: \(tiling)")
        let store = try PostgresStorage(url: url, logger: Logger(label: "test"))
        let copy = try await store.recordings.read(sessionId: id)
        try await store.close()
        #expect(copy == atCrash, "the store's copy is the spool's bytes")
        // It reads as cut short by the crash: every statement before it, and no tampering.
        let (_, replay, replayCode) = try curl(
            restarted.adminCurl + [restarted.httpsBase + "/api/v1/pam/sessions/\(id)/recording"])
        #expect(
            replayCode == 200 && replay.contains("\"integrity\":\"incomplete\"")
                && replay.contains("stopped (crash or kill)"), "\(replay.prefix(400))")
        #expect(replay.contains(marker) && replay.contains(String(big.prefix(64))))
        let (_, verdict, verdictCode) = try curl(
            restarted.adminCurl + [restarted.httpsBase + "/api/v1/pam/sessions/\(id)/recording/verify"])
        #expect(
            verdictCode == 200 && verdict.contains("\"integrity\":\"incomplete\"")
                && verdict.contains("stopped (crash or kill)"), "\(verdict)")
        let (_, ready, _) = try curl([restarted.operationsBase + "/readyz"])
        #expect(ready.contains("recordings: backlog 0 bytes"), "\(ready)")
        #expect(restarted.stop() == 0)
    }

    /// Recordings in an S3-compatible bucket (moto's server, IAM on): shipped, replayed and verified from the bucket once
    /// the spool copy is gone. Refused credentials fail a fail-closed resource with the reason, lose nothing (the spool
    /// keeps the recording until good credentials ship it), and missing ones stop the daemon from starting.
    @Test func recordingsShipToS3AndRefusedCredentialsFailClosed() async throws {
        let logs = try freshDirectory()
        guard let moto = try MotoServer.start(logDirectory: logs.path) else { return }
        defer { moto.stop() }
        let f: Fixture
        do { f = try Fixture(environment: moto.daemonEnvironment) } catch is Fixture.Skip { return }
        let admin = try f.adminClient()
        _ = try f.adminGrant("1h")
        let bucket = try S3Client(
            location: S3Location(endpoint: moto.endpoint, region: "us-east-1", bucket: moto.bucket),
            credentials: .init(accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey))
        func session(_ daemon: DaemonProcess, _ marker: String) throws -> (ProcessRunner.Output, String?) {
            let known = try Self.sessionIds(daemon)
            let out = try f.psql(f.conninfo(admin, port: daemon.ports["postgres"]), ["select '\(marker)'"])
            return (out, try Self.sessionIds(daemon).subtracting(known).first)
        }

        let (first, id) = try session(f.daemon, "s3-shipped")
        #expect(first.status == 0 && first.stdout.contains("s3-shipped"), "\(first.stderr)")
        let shipped = try #require(id)
        let spool = f.daemon.dataDirectory + "/recordings/\(shipped).ghrec"
        try Self.poll("the spool copy to go") { !FileManager.default.fileExists(atPath: spool) }
        let replay = try Self.recording(f, shipped)
        #expect(
            replay.code == 200 && replay.integrity == "complete" && replay.body.contains("s3-shipped"),
            "\(replay.body.prefix(400))")
        let (_, verdict, _) = try curl(
            f.adminAuth + [f.daemon.httpsBase + "/api/v1/pam/sessions/\(shipped)/recording/verify"])
        #expect(verdict.contains("\"integrity\":\"complete\""), "\(verdict)")
        let objects = try await bucket.list(prefix: shipped)
        #expect(!objects.isEmpty && objects.allSatisfy { $0.key.hasPrefix(shipped + "/") }, "\(objects)")
        #expect(f.daemon.stop() == 0)

        // A wrong secret: the node starts, records to its spool, and once uploads have failed for 10 s a fail-closed
        // resource refuses new sessions, saying why; /readyz says it too.
        var wrong = moto.daemonEnvironment
        wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let refused = try DaemonProcess(directory: f.dir.path, environment: wrong)
        try refused.waitUntilListening(expected: 4)
        let (during, pendingId) = try session(refused, "s3-pending")
        #expect(during.status == 0 && during.stdout.contains("s3-pending"), "\(during.stderr)")
        let pending = try #require(pendingId)
        var ready = ""
        try Self.poll("/readyz to report the refused credentials", 30) {
            ready = (try? curl([refused.operationsBase + "/readyz"]).1) ?? ""
            return ready.contains("BLOCKED")
        }
        #expect(ready.contains("S3 refused the credentials") && ready.contains("SignatureDoesNotMatch"), "\(ready)")
        let (blocked, _) = try session(refused, "s3-blocked")
        #expect(
            blocked.status != 0 && blocked.stderr.contains("session recordings cannot reach their store")
                && blocked.stderr.contains("S3 refused the credentials"), "\(blocked.stdout)\(blocked.stderr)")
        let pendingSpool = refused.dataDirectory + "/recordings/\(pending).ghrec"
        #expect(FileManager.default.fileExists(atPath: pendingSpool), "the spool keeps what the bucket refused")
        #expect(try await bucket.list(prefix: pending).isEmpty)
        #expect(refused.stop() == 0)

        // No credentials at all: the daemon does not start, and says what to set.
        var none = moto.daemonEnvironment
        none["AWS_ACCESS_KEY_ID"] = ""
        none["AWS_SECRET_ACCESS_KEY"] = ""
        let unsigned = try DaemonProcess(directory: f.dir.path, environment: none)
        #expect(unsigned.waitForExit(timeout: 30) != 0)
        #expect(
            unsigned.log.contains("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            "\(unsigned.log.suffix(600))")

        // Good credentials again, from a credentials file this time: the held recording ships, and nothing was lost.
        let credentials = f.dir.path + "/s3-credentials"
        try "[recordings]\naws_access_key_id = \(moto.accessKeyId)\naws_secret_access_key = \(moto.secretAccessKey)\n"
            .write(toFile: credentials, atomically: true, encoding: .utf8)
        var fromFile = none
        fromFile["GATEHOUSE_PAM_RECORDING_S3_CREDENTIALS_FILE"] = credentials
        fromFile["GATEHOUSE_PAM_RECORDING_S3_PROFILE"] = "recordings"
        let healed = try DaemonProcess(directory: f.dir.path, environment: fromFile)
        try healed.waitUntilListening(expected: 4)
        try Self.poll("the held recording to ship") { !FileManager.default.fileExists(atPath: pendingSpool) }
        let (_, held, _) = try curl(healed.adminCurl + [healed.httpsBase + "/api/v1/pam/sessions/\(pending)/recording"])
        #expect(held.contains("\"integrity\":\"complete\"") && held.contains("s3-pending"), "\(held.prefix(400))")
        #expect(healed.stop() == 0)
    }

    /// A project's retention deletes exactly the recordings that outlived it (from the S3 bucket), each deletion audited
    /// once; replay then answers 410 and verify says `deleted`; a session under legal hold keeps its recording until
    /// the hold is released.
    @Test func retentionDeletesExactlyTheExpiredRecordingsAndLegalHoldKeepsOne() async throws {
        let logs = try freshDirectory()
        guard let moto = try MotoServer.start(logDirectory: logs.path) else { return }
        defer { moto.stop() }
        let f: Fixture
        do {
            f = try Fixture(
                environment: moto.daemonEnvironment.merging(["GATEHOUSE_PAM_RETENTION_CHECK_INTERVAL": "1s"]) { $1 })
        } catch is Fixture.Skip { return }
        let admin = try f.adminClient()
        _ = try f.adminGrant("1h")
        let api = ["--data-dir", f.daemon.dataDirectory]
        func cli(_ args: [String]) throws -> ProcessRunner.Output {
            try ProcessRunner.run([ProcessRunner.gatehouseBinary] + args + api, cwd: f.dir.path, timeout: 60)
        }
        func session(_ marker: String) throws -> String {
            let known = try Self.sessionIds(f)
            let out = try f.psql(f.conninfo(admin), ["select '\(marker)'"])
            #expect(out.status == 0, "\(out.stderr)")
            let id = try Self.newSession(f, since: known)
            try Self.poll("\(marker) to ship") {
                !FileManager.default.fileExists(atPath: f.daemon.dataDirectory + "/recordings/\(id).ghrec")
            }
            return id
        }
        func code(_ id: String) throws -> Int { try Self.recording(f, id).code }
        let bucket = try S3Client(
            location: S3Location(endpoint: moto.endpoint, region: "us-east-1", bucket: moto.bucket),
            credentials: .init(accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey))

        let a = try session("kept-a")
        let b = try session("kept-b")
        let c = try session("kept-c")
        let hold = try cli(["pam", "sessions", "hold", b, "--reason", "case-42", "--output", "json"])
        #expect(hold.status == 0 && hold.stdout.contains("case-42"), "\(hold.stdout)\(hold.stderr)")
        // D ends 9 s after C: with a retention of 8 s, A, B and C are past it and D is not (for 8 s more).
        try await Task.sleep(for: .seconds(9))
        let d = try session("kept-d")
        let set = try cli(["pam", "settings", "--project", "prod", "--recording-retention", "8s", "--output", "json"])
        #expect(set.status == 0 && set.stdout.contains("8s"), "\(set.stdout)\(set.stderr)")
        try Self.poll("A and C to be deleted", 10) { try code(a) == 410 && code(c) == 410 }
        #expect(try code(d) == 200, "D has not outlived the retention yet")
        #expect(try code(b) == 200, "B is under legal hold")
        let (objectsA, objectsB, objectsC, objectsD) = (
            try await bucket.list(prefix: a), try await bucket.list(prefix: b), try await bucket.list(prefix: c),
            try await bucket.list(prefix: d)
        )
        #expect(objectsA.isEmpty && objectsC.isEmpty && !objectsB.isEmpty && !objectsD.isEmpty)
        let gone = try Self.recording(f, a)
        #expect(gone.body.contains("was deleted at") && gone.body.contains("retention 8s"), "\(gone.body)")
        let (_, verdict, _) = try curl(
            f.adminAuth + [f.daemon.httpsBase + "/api/v1/pam/sessions/\(a)/recording/verify"])
        #expect(verdict.contains("\"integrity\":\"deleted\""), "\(verdict)")
        let late = try cli(["pam", "sessions", "hold", a, "--reason", "too late"])
        #expect(late.status != 0 && late.stderr.contains("was deleted at"), "\(late.stderr)")
        // D goes once it has outlived the retention; B stays until its hold is released.
        try Self.poll("D to be deleted", 15) { try code(d) == 410 }
        #expect(try code(b) == 200)
        let release = try cli(["pam", "sessions", "release", b])
        #expect(release.status == 0, "\(release.stderr)")
        try Self.poll("B to be deleted after its release", 10) { try code(b) == 410 }
        // verify --all counts the deleted recordings and fails on none of them.
        let verified = try cli(["pam", "sessions", "verify", "--all", "--project", "prod", "--output", "json"])
        #expect(
            verified.status == 0 && verified.stderr.contains("4 deleted under retention"),
            "\(verified.stdout)\(verified.stderr)")
        // Each deletion is audited once, by the retention job, and the hold and release are audited too.
        func events(_ type: String) throws -> [[String: String]] {
            let (_, body, _) = try curl(
                f.adminAuth + [f.daemon.httpsBase + "/api/v1/audit/events?type=\(type)&limit=1000"])
            return
                ((try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["events"]
                as? [[String: Any]] ?? [])
                .compactMap {
                    (($0["event"] as? [String: Any])?["event"] as? [String: Any])?["metadata"] as? [String: String]
                }
        }
        let deletions = try events("pam.recording.delete").compactMap { $0["sessionId"] }
        #expect(deletions.sorted() == [a, b, c, d].sorted(), "\(deletions)")
        #expect(try events("pam.session.hold").contains { $0["sessionId"] == b && $0["reason"] == "case-42" })
        #expect(try events("pam.session.release").contains { $0["sessionId"] == b })
        #expect(try events("pam.settings.update").contains { $0["recordingRetention"] == "8s" })
        #expect(f.daemon.stop() == 0)
    }
}
