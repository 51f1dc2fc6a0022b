import Foundation
import TestSupport
import Testing

/// The KMIP listener of the running daemon, driven by PyKMIP 0.11.0's client and by hostile peers.
@Suite(.serialized) struct KMIPListenerTests {
    @Test func pykmipClientDiscoversVersionsAndQueries() throws {
        guard let python = ProcessInfo.processInfo.environment["PYKMIP_PYTHON"] else {
            if ProcessInfo.processInfo.environment["GATEHOUSE_REQUIRE_PYKMIP"] == "1" { Issue.record("PYKMIP_PYTHON is not set") }
            return
        }
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let c = daemon.dataDirectory + "/certs"
        let out = try ProcessRunner.run(
            [
                python, ProcessRunner.repositoryRoot + "/Tests/scripts/pykmip-client.py", "127.0.0.1", String(daemon.ports["kmip"] ?? 0),
                c + "/ca.crt", c + "/admin.crt", c + "/admin.key",
            ], timeout: 60)
        #expect(out.status == 0, "\(out.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        #expect(json?["discover_status"] as? String == "SUCCESS")
        #expect(json?["versions"] as? [String] == ["2.1", "2.0", "1.4", "1.3", "1.2", "1.1", "1.0"])
        #expect(json?["discover_filtered"] as? [String] == ["1.2"])
        #expect(json?["query_status"] as? String == "SUCCESS")
        #expect(json?["operations"] as? [String] == ["DISCOVER_VERSIONS", "QUERY"])
        #expect(json?["vendor"] as? String == "Gatehouse")
        // Not implemented yet: an honest Operation Not Supported, not a dropped connection.
        #expect(json?["create"] as? String == "OPERATION_NOT_SUPPORTED")
        #expect(daemon.stop() == 0)
    }

    @Test func hostilePeersGetErrorsAndTheListenerSurvives() throws {
        let dir = try freshDirectory()
        let daemon = try DaemonProcess(directory: dir.path)
        try daemon.waitUntilListening()
        let c = daemon.dataDirectory + "/certs"
        let target = "127.0.0.1:\(daemon.ports["kmip"] ?? 0)"
        func tls(_ input: [UInt8], clientCert: Bool = true) throws -> ProcessRunner.Output {
            var args = ["openssl", "s_client", "-quiet", "-connect", target, "-CAfile", c + "/ca.crt"]
            if clientCert { args += ["-cert", c + "/admin.crt", "-key", c + "/admin.key"] }
            return try ProcessRunner.run(args, stdin: Data(input), timeout: 20)
        }
        // A frame header declaring 2 GiB: an Invalid Message response (Result Reason 4), then the connection closes.
        let huge = try tls([0x42, 0x00, 0x78, 0x01, 0x7F, 0xFF, 0xFF, 0xF8])
        let hugeBytes = Array(huge.stdout.utf8)
        #expect(hugeBytes.starts(with: [0x42, 0x00, 0x7B, 0x01]), "a Response Message came back")
        // Bytes that frame but are not TTLV: an error response too.
        let garbage = try tls([0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x08, 9, 9, 9, 9, 9, 9, 9, 9])
        #expect(Array(garbage.stdout.utf8).starts(with: [0x42, 0x00, 0x7B, 0x01]))
        // No client certificate: no KMIP answer.
        let anonymous = try tls([0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x00], clientCert: false)
        #expect(!Array(anonymous.stdout.utf8).starts(with: [0x42, 0x00, 0x7B]))
        // Random bytes in clear text.
        for _ in 0..<10 {
            let fd = tcpConnect(daemon.ports["kmip"] ?? 0)
            let junk = (0..<512).map { _ in UInt8.random(in: 0...255) }
            _ = junk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            #expect(closedByPeer(fd, within: 5))
            close(fd)
        }
        let (_, body, code) = try curl([daemon.operationsBase + "/readyz"])
        #expect(code == 200 && body.hasPrefix("ready"))
        #expect(daemon.stop() == 0)
    }
}
