import Testing

@testable import SSHProtocol

/// Vectors: made with OpenSSH 9.2p1 on Debian 12 (`ssh-keygen -s ca -I alice@example -n alice,root -z 4242
/// -V 20260101000000:20260102000000 -O force-command=/bin/true -O source-address=10.0.0.0/8 -O clear -O permit-pty`).
enum Vectors {
    static let certificate =
        "ecdsa-sha2-nistp256-cert-v01@openssh.com AAAAKGVjZHNhLXNoYTItbmlzdHAyNTYtY2VydC12MDFAb3BlbnNzaC5jb20AAAAg3Lylr/bnr71jTAzQE5pxWQQ29h+r8oAp0AS3Z1OvVZUAAAAIbmlzdHAyNTYAAABBBIoosX88QWmHzG1jpXYAbGTuNInI7W1O7D2JWcEc+hkpthteLypJd7WUwYVzuvL45cC+FcIaJpqHfENLtYrvOrQAAAAAAAAQkgAAAAEAAAANYWxpY2VAZXhhbXBsZQAAABEAAAAFYWxpY2UAAAAEcm9vdAAAAABpVbkAAAAAAGlXCoAAAABGAAAADWZvcmNlLWNvbW1hbmQAAAANAAAACS9iaW4vdHJ1ZQAAAA5zb3VyY2UtYWRkcmVzcwAAAA4AAAAKMTAuMC4wLjAvOAAAABIAAAAKcGVybWl0LXB0eQAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACBnQxsVToEPAjenNgKiNwNc25inQ82zv7MEtHTFlA1gaQAAAFMAAAALc3NoLWVkMjU1MTkAAABA7VyuqFuzgsYpbVdV1F3d1XVt3NAjhIaU9yCTDzKQMmiWE69UgCMuZ1Xp82YRQ0eeSilt4MjzfA0rd9Jl+nzUDA== user"
    static let userKey =
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIoosX88QWmHzG1jpXYAbGTuNInI7W1O7D2JWcEc+hkpthteLypJd7WUwYVzuvL45cC+FcIaJpqHfENLtYrvOrQ= user"
    static let caKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdDGxVOgQ8CN6c2AqI3A1zbmKdDzbO/swS0dMWUDWBp ca"
}

@Suite struct SSHCertificateCodecTests {
    @Test func parsesAnOpenSSHCertificateAndReencodesItByteForByte() throws {
        let cert = try SSHCertificate(line: Vectors.certificate)
        #expect(cert.algorithm == "ecdsa-sha2-nistp256-cert-v01@openssh.com")
        #expect(cert.kind == .user)
        #expect(cert.serial == 4242)
        #expect(cert.keyID == "alice@example")
        #expect(cert.principals == ["alice", "root"])
        #expect(cert.validAfter == 1_767_225_600)
        #expect(cert.validBefore == 1_767_312_000)
        #expect(cert.criticalOptions == ["force-command": "/bin/true", "source-address": "10.0.0.0/8"])
        #expect(cert.extensions == ["permit-pty": ""])
        #expect(cert.publicKey == (try SSHPublicKey(authorizedKey: Vectors.userKey)))
        #expect(cert.signatureKey == (try SSHPublicKey(authorizedKey: Vectors.caKey)).blob)
        let blob = try #require(SSHBase64.decode(Vectors.certificate.split(separator: " ")[1]))
        #expect(cert.blob == blob)
        #expect(cert.line(comment: "user") == Vectors.certificate)
    }

    @Test func publicKeysRoundTripThroughAuthorizedKeysLines() throws {
        for line in [Vectors.userKey, Vectors.caKey] {
            let key = try SSHPublicKey(authorizedKey: line)
            let parts = line.split(separator: " ")
            #expect(key.authorizedKey(comment: String(parts[2])) == line)
        }
        let rsa = SSHPublicKey.rsa(exponent: [1, 0, 1], modulus: [0xc0] + [UInt8](repeating: 7, count: 255))
        #expect(rsa.bits == 2048)
        #expect(try SSHPublicKey(blob: rsa.blob) == rsa)
        // The mpint of a modulus with the high bit set carries a leading zero byte.
        #expect(rsa.blob.count == 4 + 7 + 4 + 3 + 4 + 257)
    }

    @Test func refusesMalformedInput() {
        #expect(throws: SSHWireError.self) { try SSHPublicKey(authorizedKey: "ssh-ed25519 AAAA") }
        #expect(throws: SSHWireError.self) {
            try SSHPublicKey(authorizedKey: "ssh-rsa " + Vectors.caKey.split(separator: " ")[1])
        }
        #expect(throws: SSHWireError.self) { try SSHPublicKey(authorizedKey: "ssh-ed25519 !!!") }
        var dsa = SSHWriter()
        dsa.string("ssh-dss")
        #expect(throws: SSHWireError.self) { try SSHPublicKey(blob: dsa.bytes) }
        let good = SSHBase64.decode(Vectors.certificate.split(separator: " ")[1]) ?? []
        // Every truncation is refused without trapping.
        for n in stride(from: 0, to: good.count, by: 7) {
            #expect(throws: SSHWireError.self) { try SSHCertificate(blob: Array(good.prefix(n))) }
        }
        #expect(throws: SSHWireError.self) { try SSHCertificate(blob: good + [0]) }
        // A huge declared string length does not allocate or trap.
        #expect(throws: SSHWireError.self) { try SSHCertificate(blob: [0xff, 0xff, 0xff, 0xff, 1, 2, 3]) }
    }

    @Test func optionsAreWrittenInLexicalOrderAndOutOfOrderOptionsAreRefused() throws {
        var cert = try SSHCertificate(line: Vectors.certificate)
        cert.extensions = ["permit-pty": "", "permit-X11-forwarding": "", "permit-agent-forwarding": ""]
        let again = try SSHCertificate(blob: cert.blob)
        #expect(again.extensions == cert.extensions)
        // Hand-built options out of order.
        var inner = SSHWriter()
        for name in ["permit-pty", "permit-X11-forwarding"] {
            inner.string(name)
            inner.string([UInt8]())
        }
        var w = SSHWriter()
        w.string(inner.bytes)
        var r = SSHReader(w.bytes)
        #expect(throws: SSHWireError.self) { try SSHCertificate.readOptions(&r) }
    }

    @Test func krlRoundTripsAndIsSortedPerCA() throws {
        let ca = try SSHPublicKey(authorizedKey: Vectors.caKey).blob
        let krl = SSHKRL(
            version: 3, generatedAt: 1_700_000_000, comment: "c", serials: [ca: [9, 1, 4242]], keyIDs: [ca: ["bob"]])
        let bytes = krl.encoded
        #expect(Array(bytes.prefix(8)) == Array("SSHKRL\n\0".utf8))
        #expect(try SSHKRL(encoded: bytes) == krl)
        #expect(throws: SSHWireError.self) { try SSHKRL(encoded: Array(bytes.dropLast(3))) }
    }

    @Test func base64MatchesRFC4648() {
        for (plain, encoded) in [
            ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            #expect(SSHBase64.encode(Array(plain.utf8)) == encoded)
            #expect(SSHBase64.decode(encoded) == Array(plain.utf8))
        }
        #expect(SSHBase64.decode("Zg=") == nil)
        #expect(SSHBase64.decode("Z") == nil)
        #expect(SSHBase64.decode("Zg==Zg==") == nil)
    }

    /// The gateway key file: PROTOCOL.key layout (checked by reading it back; `ssh-keygen -y` reads it in
    /// SSHTunnelTests), 70-column base64 between the armour lines.
    @Test func openSSHPrivateKeyFileRoundTrips() throws {
        let seed = [UInt8](repeating: 7, count: 32)
        let publicKey = (0..<32).map { UInt8($0) }
        let pem = try SSHPrivateKeyFile.ed25519(seed: seed, publicKey: publicKey, comment: "gw", checkInt: 0x0102_0304)
        let lines = pem.split(separator: "\n")
        #expect(
            lines.first == "-----BEGIN OPENSSH PRIVATE KEY-----" && lines.last == "-----END OPENSSH PRIVATE KEY-----")
        #expect(lines.dropFirst().dropLast().dropLast().allSatisfy { $0.count == 70 })
        #expect(try SSHPrivateKeyFile.publicKey(pem: pem) == .ed25519(publicKey))
        let body = try #require(SSHBase64.decode(lines.dropFirst().dropLast().joined()))
        #expect(Array(body.prefix(15)) == Array("openssh-key-v1".utf8) + [0])
        #expect(throws: SSHWireError.self) {
            try SSHPrivateKeyFile.ed25519(seed: [1], publicKey: publicKey, comment: "", checkInt: 0)
        }
        #expect(throws: SSHWireError.self) {
            try SSHPrivateKeyFile.publicKey(
                pem: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----")
        }
        let pin = try SSHHostKeyPin("[relay]:2222 " + SSHPublicKey.ed25519(publicKey).authorizedKey(comment: "x"))
        #expect(pin.key == .ed25519(publicKey))
        #expect(throws: SSHWireError.self) { try SSHHostKeyPin("relay ssh-dss AAAA") }
    }
}
