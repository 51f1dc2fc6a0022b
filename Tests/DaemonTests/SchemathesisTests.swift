import Foundation
import TestSupport
import Testing

/// Schemathesis (property-based API testing from the OpenAPI document) against a running daemon, as the
/// bootstrap administrator. Checks: no 5xx, documented status codes and content types, responses matching their
/// schemas, schema-violating requests rejected, 405 for undeclared methods. Two checks are excluded on purpose:
/// `ignored_auth` (it strips headers, but this API authenticates by mTLS, which a client cannot "strip" per request)
/// and `positive_data_acceptance` (semantic rules the schema cannot express: CIDR syntax, TTL ≤ max TTL, existing
/// identities and roles).
@Suite struct SchemathesisTests {
    @Test func adminAPIConformsToItsOpenAPIDocument() throws {
        guard let bin = ProcessInfo.processInfo.environment["SCHEMATHESIS_BIN"] else {
            if dependencyRequired("SCHEMATHESIS") {
                Issue.record("SCHEMATHESIS_BIN is not set")
            }
            return
        }
        let dir = try freshDirectory()
        // The run sends thousands of deliberately unauthorized requests from one address; the failure rate limit
        // (tested in HostileClientTests) would answer most of them 429 after its tarpit, so it is raised here.
        let daemon = try DaemonProcess(
            directory: dir.path, environment: ["GATEHOUSE_LISTENERS_HTTPS_FAILURE_BURST": "1000000"])
        try daemon.waitUntilListening()
        let certs = daemon.dataDirectory + "/certs"
        // A request that breaks the schema must be refused, and schemathesis lists which refusals count. A request
        // head over the listener's limit (a long generated Authorization header or query string) is refused before
        // routing with 431 (RFC 6585 §5), and an oversized body with 413: both are refusals, so they are added to
        // schemathesis's default list here rather than leaving the outcome to which values the generator draws.
        let config = URL(fileURLWithPath: dir.path + "/schemathesis.toml")
        try Data(
            """
            [checks.negative_data_rejection]
            expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "431", "5xx"]

            """.utf8
        ).write(to: config)
        let out = try ProcessRunner.run(
            [
                bin, "--config-file", config.path, "run", daemon.httpsBase + "/api/v1/openapi.json", "--tls-verify",
                certs + "/ca.crt",
                "--request-cert", certs + "/admin.crt", "--request-cert-key", certs + "/admin.key",
                "--exclude-checks", "ignored_auth,positive_data_acceptance",
                // Binary protocol bodies (PKCS#10, OCSP requests) that schemathesis cannot generate; ESTTests sends
                // them hostile bodies instead. PAM resources and accounts: creating one connects to the host it names, and
                // tests send traffic to loopback only (PAMProxyTests covers them).
                "--exclude-name-regex",
                "^POST /(\\.well-known/est|pki/ocsp|acme/|api/v1/cert-manager/|api/v1/projects/\\{project\\}/pam/resources|api/v1/pam/resources/)",
                "-n", "15", "--seed", "7", "--max-time", "90",
                "--no-color",
            ],
            cwd: dir.path, environment: ["HOME": dir.path], timeout: 240)
        let summary = out.stdout.split(separator: "\n").filter { $0.contains("generated") || $0.contains("passed") }
        print("schemathesis: \(summary.suffix(2).joined(separator: " | "))")
        // On failure, show every failing case with its "Reproduce with" line: the FAILURES section, not only the tail.
        let report =
            out.stdout.range(of: "FAILURES").map { String(out.stdout[$0.lowerBound...].prefix(30000)) }
            ?? String(out.stdout.suffix(6000))
        #expect(out.status == 0, "schemathesis failed:\n\(report)\n\(out.stderr.suffix(2000))")
        #expect(out.stdout.contains("generated"))
        // The daemon survived the run and still answers.
        let (_, _, code) = try curl(daemon.adminCurl + [daemon.httpsBase + "/api/v1/whoami"])
        #expect(code == 200)
        #expect(daemon.stop() == 0)
    }
}
