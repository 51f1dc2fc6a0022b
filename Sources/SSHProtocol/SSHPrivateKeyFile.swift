/// The OpenSSH private key file format (`openssh-key-v1`, PROTOCOL.key in OpenSSH), unencrypted, for the
/// gateway's Ed25519 key: `ssh-keygen -y -f` and libssh2 read what this writes.
public enum SSHPrivateKeyFile {
    static let magic = Array("openssh-key-v1".utf8) + [0]
    static let begin = "-----BEGIN OPENSSH PRIVATE KEY-----"
    static let end = "-----END OPENSSH PRIVATE KEY-----"

    /// PEM text for an Ed25519 key.
    /// - Parameters:
    ///   - seed: the 32-byte private seed (RFC 8032).
    ///   - publicKey: the 32-byte public key.
    ///   - comment: stored inside the encrypted-or-not section, shown by `ssh-keygen -l`.
    ///   - checkInt: a random value repeated twice (OpenSSH uses it to detect a wrong passphrase).
    public static func ed25519(seed: [UInt8], publicKey: [UInt8], comment: String, checkInt: UInt32) throws -> String {
        guard seed.count == 32, publicKey.count == 32 else { throw SSHWireError.invalid("Ed25519 keys are 32 bytes") }
        let key = SSHPublicKey.ed25519(publicKey)
        var secret = SSHWriter()
        secret.uint32(checkInt)
        secret.uint32(checkInt)
        secret.string("ssh-ed25519")
        secret.string(publicKey)
        secret.string(seed + publicKey)
        secret.string(comment)
        var padded = secret.bytes
        var pad: UInt8 = 1
        while padded.count % 8 != 0 {
            padded.append(pad)
            pad += 1
        }
        var w = SSHWriter()
        w.raw(magic)
        w.string("none")  // cipher
        w.string("none")  // KDF
        w.string([UInt8]())  // KDF options
        w.uint32(1)  // number of keys
        w.string(key.blob)
        w.string(padded)
        let b64 = SSHBase64.encode(w.bytes)
        var lines = [begin]
        var index = b64.startIndex
        while index < b64.endIndex {
            let next = b64.index(index, offsetBy: 70, limitedBy: b64.endIndex) ?? b64.endIndex
            lines.append(String(b64[index..<next]))
            index = next
        }
        lines.append(end)
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads the public key of an unencrypted or encrypted OpenSSH private key file (the public part is in clear).
    public static func publicKey(pem: String) throws -> SSHPublicKey {
        let body = pem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters() }
        guard let first = body.firstIndex(of: begin), let last = body.firstIndex(of: end), first < last else {
            throw SSHWireError.invalid("not an OpenSSH private key file")
        }
        guard let bytes = SSHBase64.decode(body[(first + 1)..<last].joined()) else {
            throw SSHWireError.invalid("the key file is not base64")
        }
        guard bytes.starts(with: magic) else { throw SSHWireError.invalid("not an openssh-key-v1 file") }
        var r = SSHReader(Array(bytes.dropFirst(magic.count)))
        _ = try r.string()
        _ = try r.string()
        _ = try r.string()
        guard try r.uint32() == 1 else { throw SSHWireError.invalid("exactly one key expected") }
        return try SSHPublicKey(blob: r.string())
    }
}

/// A pinned host key: a known_hosts line (`[host]:port type base64 [comment]`, markers and hashed names
/// allowed) or a bare `type base64` key.
public struct SSHHostKeyPin: Sendable, Hashable {
    public var key: SSHPublicKey

    public init(_ line: String) throws {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        let types = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"]
        guard let at = fields.firstIndex(where: { types.contains(String($0)) }), at + 1 < fields.count else {
            throw SSHWireError.invalid("expected a known_hosts line or 'type base64' with an Ed25519, ECDSA or RSA key")
        }
        key = try SSHPublicKey(authorizedKey: fields[at...].joined(separator: " "))
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(
            self.drop(while: { $0 == " " || $0 == "\t" || $0 == "\r" }).reversed().drop(while: {
                $0 == " " || $0 == "\t" || $0 == "\r"
            }).reversed())
    }
}
