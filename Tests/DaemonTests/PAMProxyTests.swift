import Foundation
import Logging
import ServerSupport
import StoragePostgres
import StorageS3
import TestSupport
import Testing

/// The PostgreSQL access proxy against the real PostgreSQL the test command starts (`PG_TEST_URL`), driven by psql,
/// pgbench and a hostile Python client: resources and accounts checked by real connections, just-in-time grants,
/// client certificates and access tokens, the extended protocol, COPY, large results, cancel, revocation, expiry
/// and upstream failure.
@Suite(.serialized) struct PAMProxyTests {
    /// The test PostgreSQL's host, port, superuser and password.
    struct Upstream {
        var port: Int
        var user: String
        var password: String
        var database: String
        var url: String
    }

    static func upstream() -> Upstream? {
        guard let url = ProcessInfo.processInfo.environment["PG_TEST_URL"], let c = URLComponents(string: url),
            let port = c.port,
            let user = c.user, let password = c.password
        else {
            if dependencyRequired("PG") { Issue.record("PG_TEST_URL is not set") }
            return nil
        }
        return Upstream(port: port, user: user, password: password, database: String(c.path.dropFirst()), url: url)
    }

    /// A daemon with project `prod`, resource `orders` on the test PostgreSQL and its superuser account.
    struct Fixture {
        let dir: TemporaryDirectory
        let daemon: DaemonProcess
        let pg: Upstream
        let resourceId: String
        let accountId: String
        var certs: String { daemon.dataDirectory + "/certs" }
        var proxyPort: Int { daemon.ports["postgres"] ?? 0 }

        /// The SSH relay, when the fixture exposes listeners through the reverse tunnel.
        let relay: SSHTunnelTests.Relay?

        init(environment: [String: String] = [:], tunnelForwards: [String]? = nil) throws {
            guard let pg = PAMProxyTests.upstream() else { throw Skip() }
            self.pg = pg
            dir = try freshDirectory()
            var env = ["GATEHOUSE_LOGGING_LEVEL": "info"].merging(environment) { $1 }
            if let forwards = tunnelForwards {
                guard SSHTunnelTests.openSSHAvailable() else { throw Skip() }
                let authorized = try SSHTunnelTests.prepareGateway(
                    dataDirectory: dir.path + "/.gatehouse", forwards: forwards)
                let relay = try SSHTunnelTests.Relay(dir: dir.path + "/relay", authorizedKeys: authorized)
                env.merge(SSHTunnelTests.tunnelEnvironment(relay: relay, forwards: forwards)) { $1 }
                self.relay = relay
            } else {
                relay = nil
            }
            daemon = try DaemonProcess(directory: dir.path, environment: env)
            try daemon.waitUntilListening(expected: 4)
            try daemon.ensureProject("prod")
            let (_, body, code) = try Fixture.post(
                daemon, "/api/v1/projects/prod/pam/resources",
                ["name": "orders", "host": "127.0.0.1", "port": pg.port, "database": pg.database, "tlsMode": "disable"])
            guard code == 201 else { throw DaemonProcess.DaemonFailure("resource: \(code) \(body)") }
            resourceId = try Fixture.field(body, "resource", "id")
            let (_, account, accountCode) = try Fixture.post(
                daemon, "/api/v1/pam/resources/\(resourceId)/accounts", ["username": pg.user, "password": pg.password])
            guard accountCode == 201 else { throw DaemonProcess.DaemonFailure("account: \(accountCode) \(account)") }
            accountId = try Fixture.field(account, "account", "id")
        }

        struct Skip: Error {}

        static func post(_ daemon: DaemonProcess, _ path: String, _ json: [String: Any], auth: [String]? = nil) throws
            -> (Int32, String, Int)
        {
            let body = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
            return try curl(
                (auth ?? daemon.adminCurl) + [
                    "-X", "POST", "-H", "Content-Type: application/json", "-d", body, daemon.httpsBase + path,
                ])
        }

        static func field(_ body: String, _ outer: String, _ inner: String) throws -> String {
            let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            return try #require((object?[outer] as? [String: Any])?[inner] as? String, "\(outer).\(inner) in \(body)")
        }

        /// An identity with TLS Certificate Auth for `cn` and `role` in `prod`; returns curl's certificate arguments.
        func engineer(_ cn: String, role: String = "developer") throws -> [String] {
            let (_, created, _) = try Fixture.post(daemon, "/api/v1/identities", ["name": cn])
            let id = try Fixture.field(created, "identity", "id")
            let caPEM = try String(contentsOfFile: certs + "/ca.crt", encoding: .utf8)
            let (_, _, attach) = try Fixture.post(
                daemon, "/api/v1/auth/tls-cert-auth/identities/\(id)",
                ["caCertificate": caPEM, "allowedCommonNames": [cn]])
            #expect(attach == 201)
            let (_, _, member) = try curl(
                daemon.adminCurl + [
                    "-X", "PUT", "-H", "Content-Type: application/json", "-d", "{\"roles\":[{\"role\":\"\(role)\"}]}",
                    daemon.httpsBase + "/api/v1/projects/prod/identity-memberships/\(id)",
                ])
            #expect(member == 200)
            let issued = try CertificateFactory.issue(
                commonName: cn, usage: .client, issuer: try applianceCA(daemon.dataDirectory), validity: 3600)
            return ["--cacert", certs + "/ca.crt"] + (try clientFiles(issued, in: dir.path, name: cn))
        }

        /// A libpq connection string to the proxy with a client certificate (curl-style `--cert X --key Y` arguments).
        func conninfo(_ auth: [String], account: String? = nil, resource: String = "orders", port: Int? = nil) -> String
        {
            let cert = auth.firstIndex(of: "--cert").map { auth[$0 + 1] } ?? ""
            let key = auth.firstIndex(of: "--key").map { auth[$0 + 1] } ?? ""
            return
                "host=127.0.0.1 port=\(port ?? proxyPort) user=\(account ?? pg.user) dbname=\(resource) sslmode=verify-ca "
                + "sslrootcert=\(certs)/ca.crt sslcert=\(cert) sslkey=\(key) connect_timeout=10"
        }

        var adminAuth: [String] { daemon.adminCurl }

        /// The administrator's certificate for libpq (its key copied with the 0600 mode libpq insists on), as
        /// `--cert X --key Y` arguments for `conninfo`.
        func adminClient() throws -> [String] {
            let key = dir.path + "/admin.key"
            if !FileManager.default.fileExists(atPath: key) {
                try FileManager.default.copyItem(atPath: certs + "/admin.key", toPath: key)
                chmod(key, 0o600)
            }
            return ["--cert", certs + "/admin.crt", "--key", key]
        }

        /// psql with `-X -At`, one `-c` per statement.
        func psql(
            _ conninfo: String, _ statements: [String], stdin: Data? = nil, environment: [String: String] = [:],
            timeout: TimeInterval = 60
        )
            throws -> ProcessRunner.Output
        {
            try ProcessRunner.run(
                ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", conninfo] + statements.flatMap { ["-c", $0] },
                cwd: dir.path,
                environment: ["PGPASSWORD": "", "PGCONNECT_TIMEOUT": "10"].merging(environment) { $1 }, stdin: stdin,
                timeout: timeout)
        }

        /// Polls the database itself (not through the proxy) until a backend of `application` is running a statement
        /// containing `statement`: the state a test needs before it revokes, cancels or kills, instead of a sleep.
        func waitUntilRunning(_ application: String, _ statement: String = "pg_sleep", timeout: TimeInterval = 15)
            throws
        {
            let direct = "host=127.0.0.1 port=\(pg.port) user=\(pg.user) dbname=\(pg.database) sslmode=disable"
            let query =
                "select count(*) from pg_stat_activity where application_name = '\(application)' and state = 'active' "
                + "and position('\(statement)' in query) > 0"
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let out = try psql(direct, [query], environment: ["PGPASSWORD": pg.password])
                if out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1" { return }
                usleep(50_000)
            }
            Issue.record("no backend of \(application) ran \(statement) within \(timeout) s")
        }

        /// An approved grant for the administrator (auto-approved) of the given duration.
        func adminGrant(_ duration: String) throws -> String {
            let (_, body, code) = try Fixture.post(
                daemon, "/api/v1/pam/accounts/\(accountId)/access-requests", ["duration": duration, "reason": "test"])
            #expect(code == 201, "\(body)")
            #expect(try Fixture.field(body, "grant", "status") == "approved")
            return try Fixture.field(body, "grant", "id")
        }
    }

    @Test func psqlThroughTheProxyWithJustInTimeGrants() throws {
        let f: Fixture
        do { f = try Fixture() } catch is Fixture.Skip { return }
        // Connection tests: a closed port and a wrong password are refused with the reason.
        let (_, closed, closedCode) = try Fixture.post(
            f.daemon, "/api/v1/projects/prod/pam/resources",
            ["name": "nowhere", "host": "127.0.0.1", "port": 1, "database": "x", "tlsMode": "disable"])
        #expect(closedCode == 400 && closed.contains("connection test failed"), "\(closed)")
        let (_, wrong, wrongCode) = try Fixture.post(
            f.daemon, "/api/v1/pam/resources/\(f.resourceId)/accounts",
            ["username": f.pg.user, "password": "not-the-password"])
        #expect(wrongCode == 400 && wrong.contains("password authentication failed"), "\(wrong)")
        let (_, accounts, _) = try curl(
            f.adminAuth + [f.daemon.httpsBase + "/api/v1/pam/resources/\(f.resourceId)/accounts"])
        #expect(accounts.contains(f.pg.user) && !accounts.contains(f.pg.password))

        // An engineer (developer role: may request, not approve) asks for access; refused until approved.
        let alice = try f.engineer("alice")
        let (_, requested, requestCode) = try Fixture.post(
            f.daemon, "/api/v1/pam/accounts/\(f.accountId)/access-requests",
            ["duration": "2h", "reason": "INC-1234 slow orders"], auth: alice)
        #expect(requestCode == 201)
        #expect(try Fixture.field(requested, "grant", "status") == "pending")
        let grantId = try Fixture.field(requested, "grant", "id")
        let before = try f.psql(f.conninfo(alice), ["select 1"])
        #expect(before.status != 0 && before.stderr.contains("no active access grant"), "\(before.stderr)")
        let (_, _, selfApprove) = try Fixture.post(f.daemon, "/api/v1/pam/grants/\(grantId)/approve", [:], auth: alice)
        #expect(selfApprove == 403)
        let (_, approved, approveCode) = try Fixture.post(f.daemon, "/api/v1/pam/grants/\(grantId)/approve", [:])
        #expect(approveCode == 200 && approved.contains("\"approved\""), "\(approved)")

        // Queries, COPY in and out, a large result, as the injected account (the engineer never had the password).
        let table = "pam_t_\(UInt32.random(in: 1...UInt32.max))"
        let session = try f.psql(
            f.conninfo(alice),
            [
                "select current_user", "create table \(table)(id int, note text)", "\\copy \(table) from stdin",
                "select count(*), sum(id) from \(table)", "\\copy (select * from \(table) order by id) to stdout",
            ],
            stdin: Data((1...1000).map { "\($0)\tnote \($0)\n" }.joined().utf8) + Data("\\.\n".utf8))
        #expect(session.status == 0, "\(session.stderr)")
        let lines = session.stdout.split(separator: "\n")
        #expect(lines.first == Substring(f.pg.user))
        #expect(lines.contains("1000|500500"), "\(session.stdout.prefix(300))")
        #expect(lines.contains("1000\tnote 1000") && lines.count >= 1002)
        let large = try f.psql(f.conninfo(alice), ["select repeat('x', 1000) from generate_series(1, 20000)"])
        #expect(
            large.status == 0 && large.stdout.utf8.count == 20000 * 1001, "\(large.stdout.utf8.count) \(large.stderr)")

        // The extended query protocol (pgbench -M extended: Parse/Bind/Execute with parameters).
        let script = f.dir.path + "/bench.sql"
        try "\\set id random(1, 1000)\nselect note from \(table) where id = :id;\n".write(
            toFile: script, atomically: true, encoding: .utf8)
        let bench = try ProcessRunner.run(
            ["pgbench", "-n", "-M", "extended", "-c", "2", "-t", "50", "-f", script, f.conninfo(alice)],
            cwd: f.dir.path, timeout: 120)
        #expect(
            bench.status == 0 && bench.stdout.contains("number of transactions actually processed: 100/100"),
            "\(bench.stdout)\(bench.stderr)")

        // An access token as the password, without a client certificate; a bad token is refused.
        let (_, identities, _) = try curl(f.adminAuth + [f.daemon.httpsBase + "/api/v1/identities"])
        let aliceId = try #require(
            ((try JSONSerialization.jsonObject(with: Data(identities.utf8)) as? [String: Any])?["identities"]
                as? [[String: Any]])?
                .first { $0["name"] as? String == "alice" }?["id"] as? String)
        let (_, _, tokenAuth) = try Fixture.post(f.daemon, "/api/v1/auth/token-auth/identities/\(aliceId)", [:])
        #expect(tokenAuth == 201)
        let (_, tokenBody, _) = try Fixture.post(f.daemon, "/api/v1/auth/token-auth/identities/\(aliceId)/tokens", [:])
        let token = try #require(
            (try JSONSerialization.jsonObject(with: Data(tokenBody.utf8)) as? [String: Any])?["accessToken"] as? String,
            "\(tokenBody)")
        let plain = "host=127.0.0.1 port=\(f.proxyPort) user=\(f.pg.user) dbname=orders sslmode=require"
        let withToken = try f.psql(plain, ["select 'token-ok'"], environment: ["PGPASSWORD": token])
        #expect(withToken.status == 0 && withToken.stdout.contains("token-ok"), "\(withToken.stderr)")
        let badToken = try f.psql(plain, ["select 1"], environment: ["PGPASSWORD": "ghat_not-a-token"])
        #expect(badToken.status != 0 && badToken.stderr.contains("authentication failed"), "\(badToken.stderr)")

        // Another account name, or a resource that does not exist, reveals nothing and is refused alike.
        let other = try f.psql(f.conninfo(alice, account: "postgres"), ["select 1"])
        #expect(other.status != 0 && other.stderr.contains("no active access grant"))
        let unknown = try f.psql(f.conninfo(alice, resource: "no-such-db"), ["select 1"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no active access grant"))
        // A certificate from another CA gets no session.
        let stranger = try CertificateFactory.issue(
            commonName: "alice", usage: .client,
            issuer: try CertificateFactory.makeCA(commonName: "Other CA", validity: 3600), validity: 3600)
        let strangerArgs = try clientFiles(stranger, in: f.dir.path, name: "stranger")
        let refused = try f.psql(f.conninfo(strangerArgs), ["select 1"])
        #expect(refused.status != 0)

        // Sessions are on record with their statement counts, and audited.
        let (_, sessions, _) = try curl(f.adminAuth + [f.daemon.httpsBase + "/api/v1/projects/prod/pam/sessions"])
        let list = try #require(
            (try JSONSerialization.jsonObject(with: Data(sessions.utf8)) as? [String: Any])?["sessions"]
                as? [[String: Any]])
        #expect(list.count >= 5)
        #expect(
            list.contains {
                ($0["granteeName"] as? String) == "alice"
                    && (($0["stats"] as? [String: Any])?["statements"] as? Int ?? 0) >= 5
            })
        let (_, audit, _) = try curl(f.adminAuth + [f.daemon.httpsBase + "/api/v1/audit/events?limit=1000"])
        for event in [
            "pam.resource.create", "pam.account.create", "pam.access.request", "pam.access.approve",
            "pam.session.start", "pam.session.end", "pam.session.denied",
        ] {
            #expect(audit.contains(event), "audit lacks \(event)")
        }
        #expect(!audit.contains(f.pg.password))
        #expect(!f.daemon.log.contains(f.pg.password))
        _ = try f.psql(
            "host=127.0.0.1 port=\(f.pg.port) user=\(f.pg.user) dbname=\(f.pg.database) sslmode=disable",
            ["drop table \(table)"], environment: ["PGPASSWORD": f.pg.password])
        #expect(f.daemon.stop() == 0)
    }

    /// Runs a program in the background with an empty signal mask (the test process blocks some signals, and psql
    /// must see SIGINT to send its CancelRequest), stderr to a file; ended by its PID.
    final class Background: @unchecked Sendable {
        private(set) var pid: pid_t = 0
        let errPath: String
        let started = Date()
        init(_ arguments: [String], environment: [String: String] = [:], errPath: String) throws {
            self.errPath = errPath
            var attributes = CleanSignalSpawn.attributes()
            defer { posix_spawnattr_destroy(&attributes) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            var env = ProcessInfo.processInfo.environment
            for (k, v) in environment { env[k] = v }
            var argv: [UnsafeMutablePointer<CChar>?] = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
            var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { for a in argv + envp { free(a) } }
            let rc = posix_spawn(&pid, "/usr/bin/env", &actions, &attributes, &argv, &envp)
            guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        }
        func wait(_ timeout: TimeInterval) -> (status: Int32, stderr: String, seconds: TimeInterval) {
            let deadline = Date().addingTimeInterval(timeout)
            var status: Int32 = 0
            var done = false
            while !done && Date() < deadline {
                if waitpid(pid, &status, WNOHANG) == pid { done = true } else { usleep(20_000) }
            }
            if !done {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
            }
            let text = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            return (
                (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), text,
                Date().timeIntervalSince(started)
            )
        }
    }

    @Test func sessionsEndOnRevocationExpiryCancelAndUpstreamFailure() throws {
        let f: Fixture
        do { f = try Fixture() } catch is Fixture.Skip { return }
        let admin = try f.adminClient()
        func sleeper(_ app: String) throws -> Background {
            try Background(
                ["psql", "-X", "-At", f.conninfo(admin), "-c", "select pg_sleep(30)"], environment: ["PGAPPNAME": app],
                errPath: f.dir.path + "/\(app).err")
        }

        // Expiry: a 4-second grant ends the session at its end, with the reason.
        _ = try f.adminGrant("4s")
        let expiring = try sleeper("gh-expiry")
        let expired = expiring.wait(25)
        #expect(expired.status != 0 && expired.stderr.contains("access grant expired"), "\(expired.stderr)")
        #expect(expired.seconds < 12, "ended after \(expired.seconds) s")

        // Revocation: within the proxy's check interval (2 s).
        let grant = try f.adminGrant("1h")
        let revoking = try sleeper("gh-revoke")
        try f.waitUntilRunning("gh-revoke")
        let (_, _, revokeCode) = try Fixture.post(f.daemon, "/api/v1/pam/grants/\(grant)/revoke", [:])
        #expect(revokeCode == 200)
        let revoked = revoking.wait(25)
        #expect(revoked.status != 0 && revoked.stderr.contains("revoked"), "\(revoked.stderr)")
        #expect(revoked.seconds < 8, "ended after \(revoked.seconds) s")

        // Cancel (psql's Ctrl-C path sends a CancelRequest with the proxy-issued key).
        _ = try f.adminGrant("1h")
        let cancelling = try sleeper("gh-cancel")
        try f.waitUntilRunning("gh-cancel")
        kill(cancelling.pid, SIGINT)
        let cancelled = cancelling.wait(25)
        #expect(cancelled.stderr.contains("canceling statement due to user request"), "\(cancelled.stderr)")
        #expect(cancelled.seconds < 8)

        // Upstream failure mid-session: the backend is terminated; the client gets the server's FATAL and the proxy
        // ends the session.
        let victim = try sleeper("gh-victim")
        try f.waitUntilRunning("gh-victim")
        let direct = "host=127.0.0.1 port=\(f.pg.port) user=\(f.pg.user) dbname=\(f.pg.database) sslmode=disable"
        let kill = try f.psql(
            direct,
            ["select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = 'gh-victim'"],
            environment: ["PGPASSWORD": f.pg.password])
        #expect(kill.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(kill.stdout) \(kill.stderr)")
        let failed = victim.wait(25)
        #expect(
            failed.status != 0 && failed.stderr.contains("terminating connection due to administrator command"),
            "\(failed.stderr)")

        // Every one of those ended with its reason on record; the proxy still serves.
        let (_, sessions, _) = try curl(f.adminAuth + [f.daemon.httpsBase + "/api/v1/projects/prod/pam/sessions"])
        for reason in ["grant-expired", "grant-revoked", "upstream-closed"] {
            #expect(sessions.contains(reason), "\(reason) in \(sessions)")
        }
        // The API pages the grants one at a time, newest first, each once: the same list as one big page.
        let (_, whole, _) = try curl(f.adminAuth + [f.daemon.httpsBase + "/api/v1/projects/prod/pam/grants?limit=1000"])
        let list =
            ((try? JSONSerialization.jsonObject(with: Data(whole.utf8)) as? [String: Any])?["grants"]
                as? [[String: Any]]) ?? []
        let times = list.compactMap { $0["requestedAt"] as? String }
        #expect(times == times.sorted(by: >), "newest first: \(times)")
        var paged: [String] = []
        var cursor: String?
        repeat {
            let url =
                f.daemon.httpsBase + "/api/v1/projects/prod/pam/grants?limit=1" + (cursor.map { "&after=" + $0 } ?? "")
            let (_, body, code) = try curl(f.adminAuth + [url])
            let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
            let items = object["grants"] as? [[String: Any]] ?? []
            #expect(code == 200 && items.count == 1, "\(body)")
            paged += items.compactMap { $0["id"] as? String }
            cursor = object["next"] as? String
        } while cursor != nil && paged.count < 100
        #expect(paged == list.compactMap { $0["id"] as? String } && paged.count >= 3, "\(paged) vs \(list.count)")
        let after = try f.psql(f.conninfo(admin), ["select 'still-serving'"])
        #expect(after.stdout.contains("still-serving"), "\(after.stderr)")
        #expect(f.daemon.stop() == 0)
    }

    /// A grant that ends stops the work, not only the connection: the statement in flight is cancelled with the
    /// backend's key and its transaction rolls back. Each `insert … select … pg_sleep(8)` would commit a row after 8 s
    /// if the proxy only closed the upstream socket.
    @Test func revocationAndExpiryCancelTheStatementInFlight() throws {
        let f: Fixture
        do { f = try Fixture() } catch is Fixture.Skip { return }
        let admin = try f.adminClient()
        let direct = "host=127.0.0.1 port=\(f.pg.port) user=\(f.pg.user) dbname=\(f.pg.database) sslmode=disable"
        let table = "pam_stop_\(UInt32.random(in: 1...UInt32.max))"
        let made = try f.psql(direct, ["create table \(table)(how text)"], environment: ["PGPASSWORD": f.pg.password])
        #expect(made.status == 0, "\(made.stderr)")
        func slowInsert(_ how: String) throws -> Background {
            try Background(
                [
                    "psql", "-X", "-At", f.conninfo(admin), "-c",
                    "insert into \(table) select '\(how)' from pg_sleep(8)",
                ],
                environment: ["PGAPPNAME": "gh-stop-\(how)"], errPath: f.dir.path + "/stop-\(how).err")
        }
        // Expiry: a 3-second grant.
        _ = try f.adminGrant("3s")
        let expiring = try slowInsert("expired")
        let expired = expiring.wait(25)
        #expect(expired.status != 0 && expired.stderr.contains("access grant expired"), "\(expired.stderr)")
        // Revocation, while the statement runs.
        let grant = try f.adminGrant("1h")
        let revoking = try slowInsert("revoked")
        try f.waitUntilRunning("gh-stop-revoked")
        let (_, _, revokeCode) = try Fixture.post(f.daemon, "/api/v1/pam/grants/\(grant)/revoke", [:])
        #expect(revokeCode == 200)
        let revokedAt = Date()
        let revoked = revoking.wait(25)
        #expect(revoked.status != 0 && revoked.stderr.contains("revoked"), "\(revoked.stderr)")
        let clientEnd = revoking.started.addingTimeInterval(revoked.seconds).timeIntervalSince(revokedAt)
        #expect(
            clientEnd < 1.5,
            "the client was cut \(clientEnd) s after the revocation (a revocation through this node acts at once)")
        // The audit has the session's end within a second of the revocation.
        let events = try auditLog(f.daemon).events
        func time(_ type: String, _ matching: ([String: String]) -> Bool) -> Date? {
            events.last { e in
                let inner = e["event"] as? [String: Any]
                return inner?["type"] as? String == type && matching(inner?["metadata"] as? [String: String] ?? [:])
            }.flatMap { $0["timestamp"] as? String }.flatMap { ISO8601DateFormatter().date(from: $0) }
        }
        let revokeTime = try #require(time("pam.access.revoke") { _ in true })
        let endTime = try #require(time("pam.session.end") { $0["reason"] == "grant-revoked" })
        #expect(endTime.timeIntervalSince(revokeTime) <= 1, "audited end \(endTime) vs revocation \(revokeTime)")
        // Past the time both statements would have committed: no row, and no backend still running them.
        let settle = 9.5 - Date().timeIntervalSince(revoking.started)
        if settle > 0 { usleep(UInt32(settle * 1_000_000)) }
        let rows = try f.psql(
            direct,
            [
                "select count(*) from \(table)",
                "select count(*) from pg_stat_activity where application_name like 'gh-stop-%'",
            ],
            environment: ["PGPASSWORD": f.pg.password])
        #expect(rows.stdout.split(separator: "\n") == ["0", "0"], "rows, backends: \(rows.stdout) \(rows.stderr)")
        let (_, sessions, _) = try curl(f.adminAuth + [f.daemon.httpsBase + "/api/v1/projects/prod/pam/sessions"])
        for reason in ["grant-expired", "grant-revoked"] {
            #expect(sessions.contains(reason), "\(reason) in \(sessions)")
        }
        _ = try f.psql(direct, ["drop table \(table)"], environment: ["PGPASSWORD": f.pg.password])
        #expect(f.daemon.stop() == 0)
    }

    /// Every client message that reaches the database is in the recording whole: a 1.1 MB Query (a comment, then a
    /// `delete`) replays and is found by `pam sessions search`; binary-format parameters replay as values, each
    /// execution names its prepared statement; and a message over `max_message_size` is refused before a byte of it is
    /// forwarded, with the limit named.
    @Test func largeStatementsAreRecordedWholeAndBinaryParametersReadable() throws {
        guard let python = Self.psycopgPython() else { return }
        let f: Fixture
        do { f = try Fixture() } catch is Fixture.Skip { return }
        _ = try f.adminGrant("1h")
        let admin = try f.adminClient()
        let direct = "host=127.0.0.1 port=\(f.pg.port) user=\(f.pg.user) dbname=\(f.pg.database) sslmode=disable"
        let table = "pam_large_\(UInt32.random(in: 1...UInt32.max))"
        let made = try f.psql(
            direct, ["create table \(table)(id int)", "insert into \(table) select generate_series(1, 5)"],
            environment: ["PGPASSWORD": f.pg.password])
        #expect(made.status == 0, "\(made.stderr)")
        let known = try Self.sessionIds(f)
        let out = try ProcessRunner.run(
            [python, ProcessRunner.repositoryRoot + "/Tests/scripts/pg-large.py", f.conninfo(admin), table, "run"],
            cwd: f.dir.path, timeout: 120)
        #expect(
            out.status == 0 && out.stdout.contains("large ok") && out.stdout.contains("binary ok"),
            "\(out.stdout)\(out.stderr)")
        let left = try f.psql(
            direct, ["select string_agg(id::text, ',' order by id) from \(table)"],
            environment: ["PGPASSWORD": f.pg.password])
        #expect(
            left.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1,2,4,5", "the delete ran: \(left.stdout)")

        let id = try Self.newSession(f, since: known)
        let recording = try Self.recording(f, id)
        #expect(recording.code == 200 && recording.integrity == "complete", "\(recording.body.prefix(300))")
        let queries = recording.events.filter { $0["kind"] as? String == "query" }.compactMap { $0["text"] as? String }
        let huge = try #require(
            queries.first { $0.utf8.count > 1_000_000 },
            "no whole 1.1 MB query in the recording: \(queries.map(\.utf8.count))")
        #expect(huge.hasSuffix("select 1; delete from \(table) where id = 3"), "\(huge.suffix(80))")
        let bind = try #require(
            recording.events.first { $0["kind"] as? String == "bind" && ($0["formats"] as? [Int])?.first == 1 })
        let values = (bind["parameters"] as? [Any])?.map { $0 as? String ?? "NULL" } ?? []
        #expect(
            values == [
                "42", "-9000000000", "naïve", "true", "12345678-9abc-def0-1234-56789abcdef0", "-12.0345",
                "2026-01-02 03:04:05.5", "\\x0102ff", "2.5",
            ], "\(values)")
        let statement = try #require(bind["statement"] as? String)
        #expect(!statement.isEmpty, "psycopg's prepare=True names the statement")
        let executes = recording.events.filter { $0["kind"] as? String == "execute" }
        #expect(executes.contains { $0["statement"] as? String == statement }, "\(executes)")

        // The search finds the delete behind the megabyte of comment, and shows it.
        let api = ["--data-dir", f.daemon.dataDirectory]
        let search = try ProcessRunner.run(
            [ProcessRunner.gatehouseBinary, "pam", "sessions", "search"] + api + [
                "--project", "prod", "delete from \(table)",
            ], timeout: 60)
        #expect(
            search.status == 0 && search.stdout.contains(id) && search.stdout.contains("where id = 3"),
            "\(search.stdout.prefix(2000))\(search.stderr)")
        #expect(f.daemon.stop() == 0)

        // With a limit below the message: refused, named, nothing forwarded, and the refusal is in the recording.
        let small = try DaemonProcess(
            directory: f.dir.path,
            environment: [
                "GATEHOUSE_LISTENERS_POSTGRES_MAX_MESSAGE_SIZE": "1048576", "GATEHOUSE_LOGGING_LEVEL": "info",
            ])
        try small.waitUntilListening()
        let before = try f.psql(direct, ["select count(*) from \(table)"], environment: ["PGPASSWORD": f.pg.password])
            .stdout
        let refused = try ProcessRunner.run(
            [
                python, ProcessRunner.repositoryRoot + "/Tests/scripts/pg-large.py",
                f.conninfo(admin, port: small.ports["postgres"]), table, "refuse",
            ],
            cwd: f.dir.path, timeout: 120)
        #expect(refused.status == 0 && refused.stdout.contains("1048576"), "\(refused.stdout)\(refused.stderr)")
        let after = try f.psql(direct, ["select count(*) from \(table)"], environment: ["PGPASSWORD": f.pg.password])
            .stdout
        #expect(before == after && after.hasPrefix("4"), "\(before) → \(after)")
        _ = try f.psql(direct, ["drop table \(table)"], environment: ["PGPASSWORD": f.pg.password])
        #expect(small.stop() == 0)
    }

    /// The idle timeout counts traffic both ways and never cuts a statement in flight (psycopg, idle_timeout 3 s).
    @Test func idleTimeoutSparesBusySessions() throws {
        guard let python = Self.psycopgPython() else { return }
        let f: Fixture
        do { f = try Fixture(environment: ["GATEHOUSE_LISTENERS_POSTGRES_IDLE_TIMEOUT": "3s"]) } catch is Fixture.Skip {
            return
        }
        _ = try f.adminGrant("1h")
        let admin = try f.adminClient()
        let direct =
            "host=127.0.0.1 port=\(f.pg.port) user=\(f.pg.user) password=\(f.pg.password) dbname=\(f.pg.database) sslmode=disable"
        let out = try ProcessRunner.run(
            [python, ProcessRunner.repositoryRoot + "/Tests/scripts/pg-idle.py", f.conninfo(admin), direct, "3"],
            cwd: f.dir.path, timeout: 120)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        for step in ["statement", "listen", "idle"] {
            #expect(out.stdout.contains("\(step) ok"), "\(step): \(out.stdout)\(out.stderr)")
        }
        #expect(f.daemon.stop() == 0)
    }

    @Test func hostileClientsGetProtocolErrorsAndTheProxySurvives() throws {
        let f: Fixture
        do { f = try Fixture() } catch is Fixture.Skip { return }
        _ = try f.adminGrant("1h")
        _ = try f.adminClient()
        let out = try ProcessRunner.run(
            [
                "python3",
                ProcessInfo.processInfo.environment["PG_HOSTILE_SCRIPT"]
                    ?? (ProcessRunner.repositoryRoot + "/Tests/scripts/pg-hostile.py"),
                String(f.proxyPort), f.certs + "/ca.crt", f.certs + "/admin.crt", f.dir.path + "/admin.key", "orders",
                f.pg.user,
            ], timeout: 120)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        for name in [
            "plaintext-startup", "ssl-request-with-trailing-plaintext", "startup-length-overflow",
            "gssenc-then-tls-replication-refused",
            "message-length-overflow", "garbage", "no-certificate-asks-for-password",
            "direct-tls-alpn-postgresql", "direct-tls-without-alpn-refused", "direct-tls-other-alpn-refused",
        ] {
            #expect(out.stdout.contains("\(name) ok"), "\(name): \(out.stdout)")
        }
        let after = try f.psql(f.conninfo(try f.adminClient()), ["select 'alive'"])
        #expect(after.stdout.contains("alive"), "\(after.stderr)")
        #expect(f.daemon.stop() == 0)
    }

    /// The Python with psycopg 3 (`PSYCOPG_PYTHON`); nil skips, and is a failure where PostgreSQL is required.
    static func psycopgPython() -> String? {
        guard let python = ProcessInfo.processInfo.environment["PSYCOPG_PYTHON"] else {
            if dependencyRequired("PG") { Issue.record("PSYCOPG_PYTHON is not set") }
            return nil
        }
        return python
    }

    /// Polls `done` until it holds (every 100 ms), or records that `what` did not happen within `seconds`.
    static func poll(_ what: String, _ seconds: TimeInterval = 20, _ done: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try done() { return }
            usleep(100_000)
        }
        Issue.record("timed out waiting for \(what)")
    }

    /// Ids of the sessions on record.
    static func sessionIds(_ f: Fixture) throws -> Set<String> { try sessionIds(f.daemon) }

    /// Ids of the sessions on record, asked of `daemon`.
    static func sessionIds(_ daemon: DaemonProcess) throws -> Set<String> {
        let (_, sessions, _) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/projects/prod/pam/sessions"])
        let list = try #require(
            (try JSONSerialization.jsonObject(with: Data(sessions.utf8)) as? [String: Any])?["sessions"]
                as? [[String: Any]])
        return Set(list.compactMap { $0["id"] as? String })
    }

    /// The one session that is new since `known`.
    static func newSession(_ f: Fixture, since known: Set<String>) throws -> String {
        let fresh = try sessionIds(f).subtracting(known)
        #expect(fresh.count == 1, "\(fresh)")
        return try #require(fresh.first)
    }

    static func recording(_ f: Fixture, _ id: String) throws -> (
        code: Int, integrity: String, events: [[String: Any]], body: String
    ) {
        let (_, body, code) = try curl(f.adminAuth + [f.daemon.httpsBase + "/api/v1/pam/sessions/\(id)/recording"])
        let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
        return (code, object["integrity"] as? String ?? "", object["events"] as? [[String: Any]] ?? [], body)
    }

    /// The records of a recording file: (type, start, end) after the header (magic, length, JSON).
    static func records(_ bytes: [UInt8]) -> [(type: UInt8, start: Int, end: Int)] {
        func u32(_ i: Int) -> Int { bytes[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) } }
        guard bytes.count >= 12 else { return [] }
        var i = 12 + u32(8)
        var out: [(type: UInt8, start: Int, end: Int)] = []
        while i < bytes.count {
            let type = bytes[i]
            let end: Int
            switch type {
            case 1 where i + 13 <= bytes.count: end = i + 13 + u32(i + 9)
            case 2 where i + 5 <= bytes.count:
                let sig = i + 5 + u32(i + 1)
                guard sig + 2 <= bytes.count else { return out }
                end = sig + 2 + (Int(bytes[sig]) << 8 | Int(bytes[sig + 1]))
            default: return out
            }
            guard end <= bytes.count else { return out }
            out.append((type, i, end))
            i = end
        }
        return out
    }

    @Test func recordingsReplayTheSessionAndDetectTamperingAndCrashes() throws {
        let f: Fixture
        do { f = try Fixture() } catch is Fixture.Skip { return }
        _ = try f.adminGrant("1h")
        let admin = try f.adminClient()
        let marker = "marker_\(UInt32.random(in: 1...UInt32.max))"
        let statements = [
            "select '\(marker)' as m", "create temp table r(x int)", "insert into r values (1), (2)",
            "select * from r where x = 2",
            "select * from no_such_table_\(marker)",
        ]
        var known = try Self.sessionIds(f)
        let psql = try ProcessRunner.run(
            ["psql", "-X", "-At", f.conninfo(admin)] + statements.flatMap { ["-c", $0] }, cwd: f.dir.path, timeout: 60)
        #expect(psql.stderr.contains("does not exist"))
        let id = try Self.newSession(f, since: known)
        known.insert(id)
        let first = try Self.recording(f, id)
        #expect(first.code == 200 && first.integrity == "complete", "\(first.body.prefix(500))")
        let queries = first.events.filter { $0["kind"] as? String == "query" }.compactMap { $0["text"] as? String }
        #expect(queries == statements, "\(queries)")
        let tags = first.events.filter { $0["kind"] as? String == "complete" }.compactMap { $0["text"] as? String }
        #expect(tags == ["SELECT 1", "CREATE TABLE", "INSERT 0 2", "SELECT 1"], "\(tags)")
        let error = first.events.first { $0["kind"] as? String == "error" }
        #expect(error?["sqlState"] as? String == "42P01")
        #expect(first.events.first?["kind"] as? String == "start" && first.events.last?["kind"] as? String == "end")
        // Exactly these events: each statement, its outcome, and nothing for the frames the recorder does not keep
        // (row descriptions, ready-for-query, parameter status).
        let kinds = first.events.compactMap { $0["kind"] as? String }
        let expectedKinds: [String] = [
            "start", "query", "complete", "query", "complete", "query", "complete", "query", "complete", "query",
            "error", "end",
        ]
        #expect(kinds == expectedKinds, "\(kinds)")
        #expect(((first.events.first?["detail"] as? [String: String])?["who"]) == "gatehouse-admin")
        // On disk: ciphertext only.
        let path = f.daemon.dataDirectory + "/recordings/\(id).ghrec"
        let bytes = try #require(FileManager.default.contents(atPath: path))
        #expect(!String(decoding: bytes, as: UTF8.self).contains(marker))

        // The extended protocol: statement text from Parse, parameter values from Bind.
        let script = f.dir.path + "/ext.sql"
        try "\\set v 4242\nselect :v::int + 1 as \(marker);\n".write(toFile: script, atomically: true, encoding: .utf8)
        let bench = try ProcessRunner.run(
            ["pgbench", "-n", "-M", "extended", "-t", "3", "-f", script, f.conninfo(admin)], cwd: f.dir.path,
            timeout: 60)
        #expect(bench.status == 0, "\(bench.stderr)")
        // pgbench opens one connection of its own before its clients: the client's session is the one with Parse.
        let fresh = try Self.sessionIds(f).subtracting(known)
        known.formUnion(fresh)
        let candidates = try fresh.map { ($0, try Self.recording(f, $0)) }
        let (extendedId, extended) = try #require(
            candidates.first { $0.1.events.contains { $0["kind"] as? String == "parse" } })
        #expect(extended.integrity == "complete")
        #expect(
            extended.events.contains {
                $0["kind"] as? String == "parse" && ($0["text"] as? String ?? "").contains(marker)
            })
        #expect(
            extended.events.filter {
                $0["kind"] as? String == "bind" && ($0["parameters"] as? [String])?.first == "4242"
            }.count == 3)
        #expect(extended.events.filter { $0["kind"] as? String == "execute" }.count == 3)

        // Cuts and a changed length field on a session the store says ended: tampering, never "incomplete".
        let original = [UInt8](bytes)
        let records = Self.records(original)
        let chunkRecords = records.filter { $0.type == 1 }
        #expect(records.last?.type == 2 && chunkRecords.count >= 1, "\(records)")
        if let manifest = records.last, let lastChunk = chunkRecords.last, let firstChunk = chunkRecords.first {
            var lengthFlipped = original
            lengthFlipped[firstChunk.start + 9] ^= 0x80  // the high byte of the first chunk's length field
            for (what, file) in [
                ("manifest cut", Array(original[..<manifest.start])),
                ("last chunk and manifest cut", Array(original[..<lastChunk.start])),
                ("length field flipped", lengthFlipped),
            ] {
                try Data(file).write(to: URL(fileURLWithPath: path))
                let read = try Self.recording(f, id)
                #expect(read.code == 200 && read.integrity == "tampered", "\(what): \(read.body.prefix(400))")
            }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try Self.recording(f, id).integrity == "complete")

        // Tampering: a flipped byte, a spliced file.
        var tampered = [UInt8](bytes)
        tampered[tampered.count / 2] ^= 0x20
        try Data(tampered).write(to: URL(fileURLWithPath: path))
        let flipped = try Self.recording(f, id)
        #expect(flipped.code == 200 && flipped.integrity == "tampered", "\(flipped.body.prefix(300))")
        let otherPath = f.daemon.dataDirectory + "/recordings/\(extendedId).ghrec"
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: otherPath, toPath: path)
        #expect(try Self.recording(f, id).integrity == "tampered")

        // kill -9 mid-session: what was flushed (at least once a second) stays readable.
        let long = try Background(
            [
                "psql", "-X", "-At", f.conninfo(admin), "-c", "select 'before-crash-\(marker)'", "-c",
                "select pg_sleep(30)",
            ],
            environment: ["PGAPPNAME": "gh-crash"], errPath: f.dir.path + "/crash.err")
        try f.waitUntilRunning("gh-crash")
        let crashed = try Self.newSession(f, since: known)
        // The kill lands once the live recording on disk has the first statement (it is flushed at least once a
        // second), read back through the API while the session is still open.
        var flushed = false
        let flushDeadline = Date().addingTimeInterval(10)
        while !flushed && Date() < flushDeadline {
            flushed = try Self.recording(f, crashed).body.contains("before-crash-\(marker)")
            if !flushed { usleep(100_000) }
        }
        #expect(flushed, "the open session's recording never showed its first statement")
        f.daemon.signal(SIGKILL)
        _ = f.daemon.waitForExit()
        _ = long.wait(30)
        let restarted = try DaemonProcess(directory: f.dir.path, environment: ["GATEHOUSE_LOGGING_LEVEL": "info"])
        try restarted.waitUntilListening(expected: 4)
        let (_, body, code) = try curl(
            restarted.adminCurl + [restarted.httpsBase + "/api/v1/pam/sessions/\(crashed)/recording"])
        #expect(
            code == 200 && body.contains("\"integrity\":\"incomplete\"") && body.contains("stopped (crash or kill)"),
            "\(body.prefix(400))")
        #expect(body.contains("before-crash-\(marker)") && body.contains("pg_sleep"))
        let (_, sessionList, _) = try curl(
            restarted.adminCurl + [restarted.httpsBase + "/api/v1/projects/prod/pam/sessions"])
        #expect(
            sessionList.contains("node-crashed"),
            "the restarted node closes what the crash left open: \(sessionList.prefix(600))")
        // Reading recordings is audited.
        let (_, audit, _) = try curl(restarted.adminCurl + [restarted.httpsBase + "/api/v1/audit/events?limit=1000"])
        #expect(audit.contains("pam.recording.read"))
        #expect(restarted.stop() == 0)
    }

    @Test func theCLIManagesAccessConnectsAndReplays() throws {
        let f: Fixture
        do { f = try Fixture() } catch is Fixture.Skip { return }
        let gatehouse = ProcessRunner.gatehouseBinary
        let api = ["--data-dir", f.daemon.dataDirectory]
        func cli(_ args: [String], stdin: Data? = nil) throws -> ProcessRunner.Output {
            try ProcessRunner.run([gatehouse] + args, cwd: f.dir.path, stdin: stdin, timeout: 60)
        }
        // A second resource and account through the CLI (the password from stdin only).
        let created = try cli(
            ["pam", "resource", "create"] + api + [
                "--project", "prod", "--name", "orders-cli", "--host", "127.0.0.1", "--port", String(f.pg.port),
                "--database", f.pg.database,
                "--tls-mode", "disable", "--output", "json",
            ])
        #expect(created.status == 0, "\(created.stdout)\(created.stderr)")
        let rid = try #require(
            (try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any])?["id"] as? String)
        let refused = try cli(
            ["pam", "account", "add"] + api + ["--resource", rid, "--username", f.pg.user], stdin: Data("wrong\n".utf8))
        #expect(refused.status != 0 && refused.stderr.contains("password authentication failed"), "\(refused.stderr)")
        let added = try cli(
            ["pam", "account", "add"] + api + ["--resource", rid, "--username", f.pg.user],
            stdin: Data((f.pg.password + "\n").utf8))
        #expect(added.status == 0, "\(added.stderr)")
        // connect: requests (auto-approved for the administrator), then runs psql through the proxy.
        let marker = "cli_\(UInt32.random(in: 1...UInt32.max))"
        let connect = try cli(
            ["pam", "connect", "orders-cli"] + api + [
                "--project", "prod", "--account", f.pg.user, "--duration", "30m", "--reason", "CHG-7",
                "--", "-X", "-At", "-c", "select '\(marker)'",
            ])
        #expect(connect.status == 0 && connect.stdout.contains(marker), "\(connect.stdout)\(connect.stderr)")
        // A second connect reuses the grant (no new request).
        let again = try cli(
            ["pam", "connect", "orders-cli"] + api + [
                "--project", "prod", "--account", f.pg.user, "--", "-X", "-At", "-c", "select 2",
            ])
        #expect(again.status == 0 && again.stdout.contains("2"), "\(again.stderr)")
        let grants = try cli(["pam", "grants"] + api + ["--project", "prod", "--output", "json"])
        let list = (try JSONSerialization.jsonObject(with: Data(grants.stdout.utf8)) as? [[String: Any]]) ?? []
        #expect(list.filter { $0["resourceName"] as? String == "orders-cli" }.count == 1, "\(grants.stdout)")
        // Filtered on the server: the grant is in force for this account; it is neither pending nor another account's.
        func grantIDs(_ filters: [String]) throws -> [String] {
            let out = try cli(["pam", "grants"] + api + ["--project", "prod", "--output", "json"] + filters)
            #expect(out.status == 0, "\(out.stderr)")
            let rows = (try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]]) ?? []
            return rows.filter { $0["resourceName"] as? String == "orders-cli" }.compactMap { $0["id"] as? String }
        }
        #expect(try grantIDs(["--status", "approved", "--account", f.pg.user]).count == 1)
        #expect(try grantIDs(["--status", "pending"]).isEmpty)
        #expect(try grantIDs(["--status", "approved", "--account", "someone-else"]).isEmpty)
        let bogus = try cli(["pam", "grants"] + api + ["--project", "prod", "--status", "bogus"])
        #expect(bogus.status != 0 && bogus.stderr.contains("status must be"), "\(bogus.stderr)")
        // Sessions: list, search, replay.
        let sessions = try cli(
            ["pam", "sessions", "list"] + api + ["--project", "prod", "--resource", "orders-cli", "--output", "json"])
        let ids = ((try JSONSerialization.jsonObject(with: Data(sessions.stdout.utf8)) as? [[String: Any]]) ?? [])
            .compactMap { $0["id"] as? String }
        #expect(ids.count == 2, "\(sessions.stdout)")
        // Filters run on the server: a window after both sessions, and one page of one, newest first.
        let future = try cli(
            ["pam", "sessions", "list"] + api + [
                "--project", "prod", "--resource", "orders-cli", "--since", "2100-01-01T00:00:00Z", "--output", "json",
            ])
        let none = (try? JSONSerialization.jsonObject(with: Data(future.stdout.utf8)) as? [Any]) ?? nil
        #expect(future.status == 0 && none?.isEmpty == true, "\(future.stdout)\(future.stderr)")
        let newest = try cli(
            ["pam", "sessions", "list"] + api + [
                "--project", "prod", "--resource", "orders-cli", "--max", "1", "--output", "json",
            ])
        let newestIds = ((try JSONSerialization.jsonObject(with: Data(newest.stdout.utf8)) as? [[String: Any]]) ?? [])
            .compactMap { $0["id"] as? String }
        #expect(newestIds.count == 1 && ids.first == newestIds.first, "\(newest.stdout)")
        let search = try cli(["pam", "sessions", "search"] + api + ["--project", "prod", marker])
        #expect(
            search.status == 0 && search.stdout.contains(marker) && search.stdout.split(separator: "\n").count == 2,
            "\(search.stdout)\(search.stderr)")
        // Progress goes to standard error: every session of the project searched, one match.
        #expect(search.stderr.contains(" sessions, 1 matches"), "\(search.stderr)")
        let searchJSON = try cli(
            ["pam", "sessions", "search"] + api + ["--project", "prod", marker, "--output", "json"])
        let found = (try? JSONSerialization.jsonObject(with: Data(searchJSON.stdout.utf8)) as? [[String: Any]]) ?? []
        #expect(
            found.count == 1 && (found.first?["statement"] as? String)?.contains(marker) == true, "\(searchJSON.stdout)"
        )
        let hit = try #require(ids.first { search.stdout.contains($0) })
        let replay = try cli(["pam", "sessions", "replay"] + api + [hit])
        #expect(replay.status == 0 && replay.stdout.contains("integrity: complete"), "\(replay.stdout)\(replay.stderr)")
        #expect(
            replay.stdout.contains("query") && replay.stdout.contains("select '\(marker)'")
                && replay.stdout.contains("SELECT 1"))
        #expect(f.daemon.stop() == 0)
    }

    @Test func upstreamTLSIsVerifiedAndTheSCRAMExchangeBoundToIt() throws {
        let f: Fixture
        do { f = try Fixture() } catch is Fixture.Skip { return }
        guard let caPath = ProcessInfo.processInfo.environment["PG_TEST_CA"],
            let ca = try? String(contentsOfFile: caPath, encoding: .utf8)
        else {
            if dependencyRequired("PG") { Issue.record("PG_TEST_CA is not set") }
            return
        }
        func resource(_ name: String, _ extra: [String: Any]) throws -> (String, Int) {
            var body: [String: Any] = ["name": name, "host": "localhost", "port": f.pg.port, "database": f.pg.database]
            for (k, v) in extra { body[k] = v }
            let (_, out, code) = try Fixture.post(f.daemon, "/api/v1/projects/prod/pam/resources", body)
            return (out, code)
        }
        // Another CA's chain, and the system roots, are refused by the connection test; the right CA passes.
        let stranger = try CertificateFactory.makeCA(commonName: "Not the database CA", validity: 3600).certificatePEM
        let (wrongCA, wrongCode) = try resource("tls-wrong", ["tlsMode": "verify-full", "caCertificate": stranger])
        // Both fail in the handshake, where the chain does not verify, and say so.
        #expect(
            wrongCode == 400
                && wrongCA.contains(
                    "connection test failed: TLS handshake failed: the server's certificate did not verify"),
            "\(wrongCA)")
        let (systemRoots, systemCode) = try resource("tls-system", [:])
        #expect(
            systemCode == 400
                && systemRoots.contains(
                    "connection test failed: TLS handshake failed: the server's certificate did not verify"),
            "\(systemRoots)")
        let (created, code) = try resource("tls-good", ["tlsMode": "verify-full", "caCertificate": ca])
        #expect(code == 201, "\(created)")
        let rid = try Fixture.field(created, "resource", "id")
        // The CLI's table shows where a resource connects, never its CA certificate (JSON has it whole).
        let table = try ProcessRunner.run(
            [
                ProcessRunner.gatehouseBinary, "pam", "resource", "list", "--project", "prod", "--data-dir",
                f.daemon.dataDirectory,
            ],
            timeout: 60)
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("localhost:\(f.pg.port)/\(f.pg.database) tls=verify-full"), "\(table.stdout)")
        #expect(!table.stdout.contains("BEGIN CERTIFICATE"), "\(table.stdout)")
        let (account, accountCode) = try { () throws -> (String, Int) in
            let (_, out, c) = try Fixture.post(
                f.daemon, "/api/v1/pam/resources/\(rid)/accounts", ["username": f.pg.user, "password": f.pg.password])
            return (out, c)
        }()
        #expect(accountCode == 201, "\(account)")
        let aid = try Fixture.field(account, "account", "id")
        let (_, grant, grantCode) = try Fixture.post(
            f.daemon, "/api/v1/pam/accounts/\(aid)/access-requests", ["duration": "1h", "reason": "tls"])
        #expect(grantCode == 201, "\(grant)")
        let admin = ["--cert", f.certs + "/admin.crt", "--key", f.certs + "/admin.key"]
        let known = try Self.sessionIds(f)
        let out = try f.psql(
            f.conninfo(admin, resource: "tls-good"), ["select ssl from pg_stat_ssl where pid = pg_backend_pid()"])
        #expect(
            out.status == 0 && out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "t",
            "\(out.stdout)\(out.stderr)")
        let id = try Self.newSession(f, since: known)
        let recording = try Self.recording(f, id)
        let detail = recording.events.first?["detail"] as? [String: String]
        #expect(detail?["upstreamTLS"] == "verify-full")
        #expect(detail?["upstreamAuth"] == "SCRAM-SHA-256-PLUS", "\(String(describing: detail))")
        #expect(f.daemon.stop() == 0)
    }

    @Test func rotationChangesThePasswordAndTheProxyKeepsWorking() throws {
        guard Self.upstream() != nil else { return }
        let receiverDir = try freshDirectory()
        let (receiver, receiverPort, notifications) = try startWebhookReceiver(in: receiverDir.path, failFirst: 0)
        defer {
            kill(receiver.processIdentifier, SIGKILL)
            receiver.waitUntilExit()
        }
        let f: Fixture
        do {
            f = try Fixture(environment: [
                "GATEHOUSE_PAM_ROTATION_CHECK_INTERVAL": "1s",
                "GATEHOUSE_PAM_NOTIFY_URL": "http://127.0.0.1:\(receiverPort)/pam",
                "GATEHOUSE_PAM_NOTIFY_TOKEN": "notify-token-1",
            ])
        } catch is Fixture.Skip { return }
        let admin = try f.adminClient()
        let tag = String(UUID().uuidString.prefix(8)).lowercased()
        let (app, limited, victim, scheduled) = (
            "rot_app_\(tag)", "rot_lim_\(tag)", "rot_victim_\(tag)", "rot_sched_\(tag)"
        )
        func direct(_ user: String, _ password: String, _ sql: String) throws -> ProcessRunner.Output {
            try f.psql(
                "host=127.0.0.1 port=\(f.pg.port) user=\(user) dbname=\(f.pg.database) sslmode=disable", [sql],
                environment: ["PGPASSWORD": password])
        }
        func superuser(_ sql: String) throws -> String {
            let out = try direct(f.pg.user, f.pg.password, sql)
            #expect(out.status == 0, "\(sql): \(out.stderr)")
            return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        for (role, password) in [
            (app, "app-initial"), (limited, "lim-initial"), (victim, "victim-initial"), (scheduled, "sched-initial"),
        ] {
            _ = try superuser("CREATE ROLE \(role) LOGIN PASSWORD '\(password)'")
        }
        defer { for role in [app, limited, victim, scheduled] { _ = try? superuser("DROP ROLE IF EXISTS \(role)") } }
        func verifier(_ role: String) throws -> String {
            try superuser("SELECT rolpassword FROM pg_authid WHERE rolname = '\(role)'")
        }
        func resource(_ name: String, rotator: String) throws -> String {
            let (_, body, code) = try Fixture.post(
                f.daemon, "/api/v1/projects/prod/pam/resources",
                [
                    "name": name, "host": "127.0.0.1", "port": f.pg.port, "database": f.pg.database,
                    "tlsMode": "disable", "rotationAccount": rotator,
                ])
            #expect(code == 201, "\(body)")
            return try Fixture.field(body, "resource", "id")
        }
        func account(_ resource: String, _ user: String, _ password: String, interval: String? = nil) throws -> String {
            var json: [String: Any] = ["username": user, "password": password]
            if let interval { json["rotationInterval"] = interval }
            let (_, body, code) = try Fixture.post(f.daemon, "/api/v1/pam/resources/\(resource)/accounts", json)
            #expect(code == 201, "\(body)")
            return try Fixture.field(body, "account", "id")
        }
        func grant(_ accountId: String) throws {
            let (_, body, code) = try Fixture.post(
                f.daemon, "/api/v1/pam/accounts/\(accountId)/access-requests",
                ["duration": "1h", "reason": "rotation test"])
            #expect(code == 201, "\(body)")
        }
        func rotate(_ accountId: String) throws -> (Int, String) {
            let (_, body, code) = try Fixture.post(f.daemon, "/api/v1/pam/accounts/\(accountId)/rotate", [:])
            return (code, body)
        }
        func accountInfo(_ resource: String, _ accountId: String) throws -> [String: Any] {
            let (_, body, _) = try curl(
                f.adminAuth + [f.daemon.httpsBase + "/api/v1/pam/resources/\(resource)/accounts"])
            let list =
                (try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["accounts"]
                as? [[String: Any]] ?? []
            return try #require(list.first { $0["id"] as? String == accountId }, "\(accountId) in \(body)")
        }
        func viaProxy(_ user: String, _ resource: String) throws -> ProcessRunner.Output {
            try f.psql(f.conninfo(admin, account: user, resource: resource), ["select current_user"])
        }

        // A resource whose rotation account is the superuser: rotating `app` changes its password on the server to a
        // SCRAM verifier Gatehouse computed, the old password stops working, the proxy keeps working — including a
        // session that was open during the rotation.
        let ledger = try resource("ledger-\(tag)", rotator: f.pg.user)
        _ = try account(ledger, f.pg.user, f.pg.password)
        let appId = try account(ledger, app, "app-initial")
        try grant(appId)
        #expect(try viaProxy(app, "ledger-\(tag)").stdout.contains(app))
        let before = try verifier(app)
        let changedBefore = try accountInfo(ledger, appId)["passwordChangedAt"] as? String
        let live = try Background(
            [
                "psql", "-X", "-At", f.conninfo(admin, account: app, resource: "ledger-\(tag)"), "-c",
                "select pg_sleep(3)", "-c", "select 'live-' || current_user",
            ],
            environment: ["PGAPPNAME": "gh-live"], errPath: f.dir.path + "/live.err")
        try f.waitUntilRunning("gh-live")
        // Timestamps are whole seconds: rotate in a later second than the account's last change, so that the change
        // shows in passwordChangedAt.
        let changedSecond = changedBefore.flatMap { ISO8601DateFormatter().date(from: $0) } ?? Date()
        while Date() < changedSecond.addingTimeInterval(1) { usleep(50_000) }
        let (code, body) = try rotate(appId)
        #expect(code == 200, "\(body)")
        let after = try verifier(app)
        #expect(after.hasPrefix("SCRAM-SHA-256$4096:") && after != before, "\(after)")
        let refused = try direct(app, "app-initial", "select 1")
        #expect(refused.status != 0 && refused.stderr.contains("password authentication failed"), "\(refused.stderr)")
        let afterRotation = try viaProxy(app, "ledger-\(tag)")
        #expect(afterRotation.status == 0 && afterRotation.stdout.contains(app), "\(afterRotation.stderr)")
        #expect(live.wait(20).status == 0, "the session open during the rotation ended badly")
        let info = try accountInfo(ledger, appId)
        #expect(info["passwordChangedAt"] as? String != changedBefore && info["lastRotationError"] == nil, "\(info)")
        #expect(!body.contains("password\""), "the API never returns a password: \(body)")

        // A rotation account without CREATEROLE cannot change another role: the rotation fails with the server's
        // reason, the old credential stays (on the server and in Gatehouse), and the failure is on the account and
        // in the audit log.
        let restricted = try resource("restricted-\(tag)", rotator: limited)
        let limitedId = try account(restricted, limited, "lim-initial")
        let victimId = try account(restricted, victim, "victim-initial")
        try grant(victimId)
        let victimBefore = try verifier(victim)
        let (failCode, failBody) = try rotate(victimId)
        #expect(
            failCode == 503 && failBody.contains("ALTER ROLE") && failBody.contains("42501"), "\(failCode) \(failBody)")
        #expect(try verifier(victim) == victimBefore)
        #expect(try direct(victim, "victim-initial", "select 1").status == 0)
        #expect(try viaProxy(victim, "restricted-\(tag)").stdout.contains(victim))
        #expect((try accountInfo(restricted, victimId)["lastRotationError"] as? String)?.contains("ALTER ROLE") == true)
        let (_, audit, _) = try curl(f.adminAuth + [f.daemon.httpsBase + "/api/v1/audit/events?limit=1000"])
        #expect(audit.contains("pam.account.rotate.failed") && audit.contains(victim), "\(audit)")
        #expect(!audit.contains("victim-initial") && !audit.contains("SCRAM-SHA-256$"), "no secrets in the audit log")

        // The rotation account rotates itself (a role may set its own password).
        #expect(try rotate(limitedId).0 == 200)
        #expect(try direct(limited, "lim-initial", "select 1").status != 0)

        // Scheduled: an account with a 10-second interval is rotated by the daemon on its own.
        let scheduledId = try account(ledger, scheduled, "sched-initial", interval: "10s")
        let created = try accountInfo(ledger, scheduledId)["passwordChangedAt"] as? String
        let deadline = Date().addingTimeInterval(40)
        var rotatedOnSchedule = false
        while !rotatedOnSchedule && Date() < deadline {
            usleep(1_000_000)
            rotatedOnSchedule = try accountInfo(ledger, scheduledId)["passwordChangedAt"] as? String != created
        }
        #expect(rotatedOnSchedule)
        #expect(try direct(scheduled, "sched-initial", "select 1").status != 0)
        try grant(scheduledId)
        #expect(try viaProxy(scheduled, "ledger-\(tag)").stdout.contains(scheduled))

        // PAM notifications reached the webhook: access requests, sessions and the failed rotation — not the
        // successful rotations (not selected), and never a password or a verifier.
        var types: [String] = []
        var bodies = ""
        for _ in 0..<100 {
            bodies = (try? String(contentsOfFile: notifications, encoding: .utf8)) ?? ""
            types = bodies.split(separator: "\n").flatMap { line -> [String] in
                guard let entry = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    entry["authorization"] as? String == "Bearer notify-token-1", let body = entry["body"] as? String,
                    let batch = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
                else { return [] }
                return (batch["events"] as? [[String: Any]] ?? []).compactMap {
                    (($0["event"] as? [String: Any])?["event"] as? [String: Any])?["type"] as? String
                }
            }
            if types.contains("pam.account.rotate.failed") && types.filter({ $0 == "pam.session.end" }).count >= 4 {
                break
            }
            usleep(100_000)
        }
        #expect(
            types.contains("pam.access.request") && types.contains("pam.session.start")
                && types.contains("pam.account.rotate.failed"), "\(types)")
        #expect(!types.contains("pam.account.rotate") && !types.contains("project.create"), "\(types)")
        #expect(!bodies.contains("initial") && !bodies.contains("SCRAM-SHA-256$"), "no secrets in notifications")
        #expect(f.daemon.stop() == 0)
    }

    /// psycopg 3 (libpq underneath): server-side parameters (text and binary), transactions, prepared statements,
    /// pipeline mode, a server-side cursor, COPY both ways, errors with their SQLSTATE, `Connection.cancel()`, notices
    /// and LISTEN/NOTIFY, a 20 MB result — and the recording holds what it sent.
    @Test func psycopgThroughTheProxy() throws {
        guard let python = Self.psycopgPython() else { return }
        let f: Fixture
        do { f = try Fixture() } catch is Fixture.Skip { return }
        _ = try f.adminGrant("1h")
        let admin = try f.adminClient()
        let known = try Self.sessionIds(f)
        let out = try ProcessRunner.run(
            [python, ProcessRunner.repositoryRoot + "/Tests/scripts/pg-psycopg.py", f.conninfo(admin)], cwd: f.dir.path,
            timeout: 180)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        for step in [
            "parameters", "transactions", "prepared", "pipeline", "server-cursor", "copy", "errors", "cancel",
            "notices", "large-result",
        ] {
            #expect(out.stdout.contains("\(step) ok"), "\(step): \(out.stdout)\(out.stderr)")
        }
        let id = try Self.newSession(f, since: known)
        let recording = try Self.recording(f, id)
        #expect(recording.code == 200 && recording.integrity == "complete", "\(recording.body.prefix(300))")
        let texts = recording.events.compactMap { e -> String? in
            guard ["query", "parse"].contains(e["kind"] as? String ?? "") else { return nil }
            return e["text"] as? String
        }
        for fragment in [
            "select $1::int + $2::int as psy_marker", "select v from psy_marker_t where id = $1",
            "copy psy_marker_t (id, v) from stdin",
            "pg_sleep(20) as psy_marker", "select 1/0 as psy_marker", "listen psy_marker_channel",
            "DECLARE \"psy_marker_cursor\"",
        ] {
            #expect(
                texts.contains { $0.contains(fragment) },
                "\(fragment) recorded: \(texts.filter { $0.contains("psy") }.prefix(40))")
        }
        // Parameters arrive in Bind: the text one verbatim, the binary bytea as hex.
        let parameters = recording.events.filter { $0["kind"] as? String == "bind" }.flatMap {
            $0["parameters"] as? [String] ?? []
        }
        #expect(parameters.contains("naïve ünïcode"), "\(parameters.prefix(20))")
        // 50 pipelined inserts, each its own Bind/Execute.
        #expect(
            recording.events.filter { $0["kind"] as? String == "complete" && $0["text"] as? String == "INSERT 0 1" }
                .count >= 50)
        #expect(recording.events.contains { $0["kind"] as? String == "error" && $0["sqlState"] as? String == "57014" })
        let after = try f.psql(f.conninfo(admin), ["select 'alive'"])
        #expect(after.stdout.contains("alive"), "\(after.stderr)")
        #expect(f.daemon.stop() == 0)
    }

    /// The proxy exposed through the SSH reverse tunnel: psql at the relay reaches it with TLS end to end (the relay
    /// carries only the SSLRequest and then TLS records), the grant and the recording work as on the local port.
    @Test func psqlThroughTheRelayWithEndToEndTLS() throws {
        let relayPort = try freeLoopbackPort()
        let f: Fixture
        do { f = try Fixture(tunnelForwards: ["postgres=127.0.0.1:\(relayPort)"]) } catch is Fixture.Skip { return }
        defer { f.relay?.kill() }
        let status = try #require(
            SSHTunnelTests.waitForTunnel(f.daemon) {
                ($0["forwards"] as? [[String: Any]])?.first?["state"] as? String == "active"
            },
            "tunnel: \(String(describing: SSHTunnelTests.tunnelStatus(f.daemon)))\n\(f.daemon.log.suffix(2000))")
        #expect((status["forwards"] as? [[String: Any]])?.first?["boundPort"] as? Int == relayPort)
        let admin = try f.adminClient()

        // Without a grant the relay path refuses like the local one; with one, psql works through the relay.
        let refused = try f.psql(f.conninfo(admin, port: relayPort), ["select 1"])
        #expect(refused.status != 0 && refused.stderr.contains("no active access grant"), "\(refused.stderr)")
        _ = try f.adminGrant("1h")
        let known = try Self.sessionIds(f)
        let capture = try CapturingProxy(upstreamPort: relayPort)
        defer { capture.stop() }
        let marker = "relay_marker_\(UInt32.random(in: 1...UInt32.max))"
        let out = try f.psql(
            f.conninfo(admin, port: capture.port),
            ["select '\(marker)' as m", "select count(*) from generate_series(1, 1000)"])
        #expect(
            out.status == 0 && out.stdout.contains(marker) && out.stdout.contains("1000"), "\(out.stdout) \(out.stderr)"
        )
        let seen = capture.bytes
        #expect(seen.count > 1000, "nothing captured")
        // SSLRequest (length 8, code 80877103), the proxy's 'S', then TLS handshake records.
        #expect(Array(seen.prefix(8)) == [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F], "\(Array(seen.prefix(8)))")
        #expect(!seen.containsBytes(Array(marker.utf8)), "the statement crossed the relay in clear")
        #expect(!seen.containsBytes(Array(f.pg.user.utf8)), "the start-up message crossed the relay in clear")
        let id = try Self.newSession(f, since: known)
        let recording = try Self.recording(f, id)
        #expect(
            recording.integrity == "complete"
                && recording.events.contains { ($0["text"] as? String)?.contains(marker) == true })
        #expect(f.daemon.stop() == 0)
    }

    /// A resource that records result rows keeps the first N of each statement (and a resource by default none).
    @Test func resultRowsAreRecordedOnlyWhenTheResourceAsksAndCapped() throws {
        let f: Fixture
        do { f = try Fixture() } catch is Fixture.Skip { return }
        let admin = try f.adminClient()
        let (_, body, code) = try Fixture.post(
            f.daemon, "/api/v1/projects/prod/pam/resources",
            [
                "name": "orders-rows", "host": "127.0.0.1", "port": f.pg.port, "database": f.pg.database,
                "tlsMode": "disable", "recordRows": 2,
            ])
        #expect(code == 201, "\(body)")
        let resource = try Fixture.field(body, "resource", "id")
        let (_, account, _) = try Fixture.post(
            f.daemon, "/api/v1/pam/resources/\(resource)/accounts", ["username": f.pg.user, "password": f.pg.password])
        let accountId = try Fixture.field(account, "account", "id")
        _ = try Fixture.post(
            f.daemon, "/api/v1/pam/accounts/\(accountId)/access-requests", ["duration": "1h", "reason": "rows"])
        _ = try f.adminGrant("1h")
        let statements = [
            "select g, 'v' || g from generate_series(1, 5) g", "select null::text, decode('00ff', 'hex')",
        ]
        var known = try Self.sessionIds(f)
        let recorded = try f.psql(f.conninfo(admin, resource: "orders-rows"), statements)
        #expect(recorded.status == 0, "\(recorded.stderr)")
        let id = try Self.newSession(f, since: known)
        known.insert(id)
        let events = try Self.recording(f, id).events
        let rows = events.filter { $0["kind"] as? String == "row" }.map {
            ($0["parameters"] as? [Any])?.map { $0 as? String ?? "NULL" } ?? []
        }
        #expect(rows == [["1", "v1"], ["2", "v2"], ["NULL", "\\x00ff"]], "\(rows)")
        #expect(events.contains { $0["kind"] as? String == "complete" && $0["rows"] as? Int == 5 })
        // The same statements on a resource that does not record rows: none.
        _ = try f.psql(f.conninfo(admin), statements)
        let plain = try Self.recording(f, try Self.newSession(f, since: known)).events
        #expect(
            !plain.contains { $0["kind"] as? String == "row" } && plain.contains { $0["kind"] as? String == "query" })
        #expect(f.daemon.stop() == 0)
    }
}
