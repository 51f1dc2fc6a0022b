import Foundation
import TestSupport
import Testing

/// The web console in a real browser: Debian's headless Chromium, driven by selenium from PyPI, against a daemon
/// with a PAM session that psql recorded through the proxy in the same test (`Tests/scripts/console-browser.sh`
/// sets it up, `Tests/scripts/console_browser.py` drives the browser). A screenshot of each page is saved into
/// `.build/test-output/console-browser/` (or `$GATEHOUSE_TEST_OUTPUT/console-browser/`).
@Suite(.serialized) struct ConsoleBrowserTests {
    static let screenshots = [
        "01-sign-in-refused", "02-overview", "03-project", "04-sessions", "05-replay", "06-certificates", "07-kmip",
        "08-audit", "09-audit-verify", "10-viewer-sessions", "11-viewer-replay", "12-live",
    ]

    @Test func aReviewerReadsARecordedSessionAndAViewerWithoutPAMPermissionSeesNone() throws {
        let env = ProcessInfo.processInfo.environment
        let driver = env["CHROMEDRIVER"] ?? "/usr/bin/chromedriver"
        guard let python = env["PYKMIP_PYTHON"], FileManager.default.isExecutableFile(atPath: driver),
            FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
        else {
            if dependencyRequired("BROWSER") {
                Issue.record("needs /usr/bin/chromium, \(driver) and PYKMIP_PYTHON (with selenium)")
            }
            return
        }
        guard let url = env["PG_TEST_URL"].flatMap(URLComponents.init(string:)), let ca = env["PG_TEST_CA"],
            let host = url.host, let user = url.user
        else {
            if dependencyRequired("PG") { Issue.record("needs PG_TEST_URL and PG_TEST_CA") }
            return
        }
        let root = ProcessRunner.repositoryRoot
        let output = (env["GATEHOUSE_TEST_OUTPUT"] ?? root + "/.build/test-output") + "/console-browser"
        try? FileManager.default.removeItem(atPath: output)
        let dir = try freshDirectory()
        var environment = [
            "PATH": (ProcessRunner.gatehouseBinary as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? ""),
            "HOME": dir.path, "CONSOLE_PYTHON": python, "CHROMEDRIVER": driver, "SCREENSHOTS": output,
            "PGHOST": host, "PGPORT": String(url.port ?? 5432), "PGUSER": user, "PGPASSWORD": url.password ?? "",
            "PGDATABASE": String(url.path.dropFirst()), "PGSSLROOTCERT": ca,
        ]
        for variable in [
            "GATEHOUSE_LISTENERS_HTTPS_PORT", "GATEHOUSE_LISTENERS_KMIP_PORT", "GATEHOUSE_LISTENERS_POSTGRES_PORT",
            "GATEHOUSE_LISTENERS_OPERATIONS_PORT", "GATEHOUSE_ACME_HTTP01_PORT",
        ] {
            environment[variable] = String(try freeLoopbackPort())
        }
        let run = try ProcessRunner.run(
            ["bash", root + "/Tests/scripts/console-browser.sh"], cwd: dir.path, environment: environment,
            timeout: 300)
        let log = (try? String(contentsOfFile: dir.path + "/gatehouse.log", encoding: .utf8)) ?? ""
        #expect(
            run.status == 0 && run.stdout.contains("console browser checks passed"),
            """
            exit \(run.status)
            --- stdout ---
            \(run.stdout.suffix(3000))
            --- stderr ---
            \(run.stderr.suffix(3000))
            --- daemon log ---
            \(log.suffix(3000))
            """)
        guard run.status == 0 else { return }
        for name in Self.screenshots {
            let png = FileManager.default.contents(atPath: "\(output)/\(name).png") ?? Data()
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 5_000, "screenshot \(name).png")
        }
    }
}
