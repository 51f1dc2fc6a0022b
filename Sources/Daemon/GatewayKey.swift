import Crypto
import Foundation
import SSHProtocol

/// The gateway's SSH key for the reverse tunnel: an Ed25519 key in OpenSSH format under
/// `<data_dir>/tunnel/gateway_ed25519` (mode 0600, like the TLS keys next to it) and its `.pub`.
public enum GatewayKey {
    /// The default location inside a data directory.
    public static func defaultPath(dataDirectory: String) -> String {
        (dataDirectory as NSString).appendingPathComponent("tunnel/gateway_ed25519")
    }

    /// Creates the key pair when missing; returns the paths created.
    public static func ensure(path: String, comment: String = "gatehouse-gateway") throws -> [String] {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) { return [] }
        let dir = (path as NSString).deletingLastPathComponent
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = Curve25519.Signing.PrivateKey()
        let publicKey = Array(key.publicKey.rawRepresentation)
        let pem = try SSHPrivateKeyFile.ed25519(
            seed: Array(key.rawRepresentation), publicKey: publicKey, comment: comment,
            checkInt: UInt32.random(in: .min ... .max))
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(pem.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == bytes.count, rename(tmp, path) == 0 else { throw DaemonError("cannot write \(path)") }
        let pub = SSHPublicKey.ed25519(publicKey).authorizedKey(comment: comment) + "\n"
        try pub.write(toFile: path + ".pub", atomically: true, encoding: .utf8)
        return [path, path + ".pub"]
    }

    /// The `.pub` line of a key file (from the `.pub` next to it, else derived from the private key file).
    public static func publicKeyLine(path: String) throws -> String {
        if let text = try? String(contentsOfFile: path + ".pub", encoding: .utf8),
            let key = try? SSHPublicKey(authorizedKey: text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            return key.authorizedKey(comment: "gatehouse-gateway")
        }
        guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DaemonError("cannot read the gateway key \(path) (run `gatehouse init`)")
        }
        return try SSHPrivateKeyFile.publicKey(pem: pem).authorizedKey(comment: "gatehouse-gateway")
    }
}
