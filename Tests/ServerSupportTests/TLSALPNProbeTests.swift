import Foundation
import NIOCore
import ServerSupport
import TestSupport
import Testing
import X509

/// The tls-alpn-01 probe against `openssl s_server` (a TLS server nobody here wrote) presenting challenge-style
/// certificates RFC 8737 allows but a strict TLS client refuses: RSA with Key Usage keyEncipherment only (what lego
/// sends), Ed25519, over TLS 1.2 and 1.3.
@Suite struct TLSALPNProbeTests {
    func server(_ dir: String, key: String, keyUsage: String?, tls: String, alpn: Bool = true) throws -> (
        Process, Int, [UInt8]
    ) {
        var request = [
            "openssl", "req", "-x509", "-newkey", key, "-nodes", "-keyout", dir + "/k.pem", "-out", dir + "/c.pem",
            "-subj", "/CN=probe.localhost", "-days", "1", "-addext", "subjectAltName=DNS:probe.localhost",
        ]
        if let keyUsage { request += ["-addext", "keyUsage=critical," + keyUsage] }
        let made = try ProcessRunner.run(request)
        #expect(made.status == 0, "\(made.stderr)")
        let der = try ProcessRunner.run([
            "openssl", "x509", "-in", dir + "/c.pem", "-outform", "DER", "-out", dir + "/c.der",
        ])
        #expect(der.status == 0)
        let port = try freeLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [
                "openssl", "s_server", "-accept", "127.0.0.1:\(port)", "-cert", dir + "/c.pem", "-key", dir + "/k.pem",
                tls, "-www", "-quiet",
            ] + (alpn ? ["-alpn", "acme-tls/1"] : [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, port, Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/c.der"))))
    }

    func probe(port: Int) async throws -> TLSALPNProbe.Outcome {
        var last: (any Error)?
        for _ in 0..<50 {
            do {
                return try await TLSALPNProbe.handshake(
                    host: "127.0.0.1", port: port, serverName: "probe.localhost", alpn: ["acme-tls/1"])
            } catch {
                last = error  // s_server not listening yet
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw try #require(last)
    }

    @Test(
        arguments: [
            ("rsa:2048", "keyEncipherment", "-tls1_2", "TLSv1.2"),
            ("rsa:2048", "keyEncipherment", "-tls1_3", "TLSv1.3"),
            ("ed25519", nil, "-tls1_3", "TLSv1.3"),
            ("ec:/dev/null", nil, "-tls1_2", "TLSv1.2"),
        ] as [(String, String?, String, String)])
    func anyKeyUsageKeyTypeAndVersion(key: String, keyUsage: String?, tls: String, version: String) async throws {
        let dir = try TemporaryDirectory(prefix: "gh-alpn")
        var keySpec = key
        if key.hasPrefix("ec:") {
            let params = try ProcessRunner.run([
                "openssl", "ecparam", "-name", "prime256v1", "-out", dir.path + "/ec.pem",
            ])
            #expect(params.status == 0)
            keySpec = "ec:" + dir.path + "/ec.pem"
        }
        let (process, port, der) = try server(dir.path, key: keySpec, keyUsage: keyUsage, tls: tls)
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let outcome = try await probe(port: port)
        #expect(outcome.negotiated == "acme-tls/1")
        #expect(outcome.leaf == der, "the leaf is the server's certificate, byte for byte")
        #expect(outcome.version == version)
        if let keyUsage {
            let cert = try Certificate(derEncoded: der)
            #expect(try cert.extensions.keyUsage?.digitalSignature == false, "\(keyUsage) only")
        }
    }

    @Test func aServerWithoutTheProtocolNegotiatesNoneAndAClosedPortFails() async throws {
        let dir = try TemporaryDirectory(prefix: "gh-alpn")
        let (process, port, _) = try server(
            dir.path, key: "rsa:2048", keyUsage: nil, tls: "-tls1_3", alpn: false)
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        #expect(try await probe(port: port).negotiated == nil, "the caller then refuses the challenge")
        let closed = try freeLoopbackPort()
        await #expect(throws: (any Error).self) {
            _ = try await TLSALPNProbe.handshake(
                host: "127.0.0.1", port: closed, serverName: "probe.localhost", alpn: ["acme-tls/1"],
                timeout: .seconds(2))
        }
    }
}
