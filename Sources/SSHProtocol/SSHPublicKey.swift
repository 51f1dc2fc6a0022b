/// An SSH public key of the algorithms Gatehouse signs for and accepts (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709):
/// Ed25519, ECDSA on NIST P-256/P-384/P-521, RSA. DSA is refused.
public enum SSHPublicKey: Hashable, Sendable {
    case ed25519([UInt8])
    /// `curve` is `nistp256`, `nistp384` or `nistp521`; `point` the uncompressed SEC1 point.
    case ecdsa(curve: String, point: [UInt8])
    /// Unsigned big-endian magnitudes.
    case rsa(exponent: [UInt8], modulus: [UInt8])

    static let curves = ["nistp256": 65, "nistp384": 97, "nistp521": 133]

    /// The key's algorithm name (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
    public var algorithm: String {
        switch self {
        case .ed25519: return "ssh-ed25519"
        case .ecdsa(let curve, _): return "ecdsa-sha2-" + curve
        case .rsa: return "ssh-rsa"
        }
    }

    /// The certificate type that certifies this key (PROTOCOL.certkeys).
    public var certificateAlgorithm: String { algorithm + "-cert-v01@openssh.com" }

    /// Size in bits (RSA modulus, curve size, 256 for Ed25519).
    public var bits: Int {
        switch self {
        case .ed25519: return 256
        case .ecdsa(let curve, _): return curve == "nistp256" ? 256 : curve == "nistp384" ? 384 : 521
        case .rsa(_, let n): return n.isEmpty ? 0 : (n.count - 1) * 8 + (8 - n[0].leadingZeroBitCount)
        }
    }

    /// The key's fields without the leading algorithm name (as they appear inside a certificate).
    func writeFields(_ w: inout SSHWriter) {
        switch self {
        case .ed25519(let k): w.string(k)
        case .ecdsa(let curve, let point):
            w.string(curve)
            w.string(point)
        case .rsa(let e, let n):
            w.mpint(e)
            w.mpint(n)
        }
    }

    static func readFields(algorithm: String, _ r: inout SSHReader) throws -> SSHPublicKey {
        switch algorithm {
        case "ssh-ed25519":
            let k = try r.string()
            guard k.count == 32 else { throw SSHWireError.invalid("an Ed25519 key is 32 bytes") }
            return .ed25519(k)
        case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
            let curve = try r.text()
            guard "ecdsa-sha2-" + curve == algorithm, let size = curves[curve] else {
                throw SSHWireError.invalid("the ECDSA curve does not match the key type")
            }
            let point = try r.string()
            guard point.count == size, point.first == 4 else {
                throw SSHWireError.invalid("an ECDSA point must be uncompressed")
            }
            return .ecdsa(curve: curve, point: point)
        case "ssh-rsa":
            let e = try r.mpint()
            let n = try r.mpint()
            guard !e.isEmpty, e.count <= 8, !n.isEmpty, n.count <= 2048 else {
                throw SSHWireError.invalid("bad RSA key")
            }
            return .rsa(exponent: e, modulus: n)
        case "ssh-dss": throw SSHWireError.invalid("DSA keys are not accepted")
        default: throw SSHWireError.invalid("unsupported key type")
        }
    }

    /// The public key blob (RFC 4253 §6.6): algorithm name then fields.
    public var blob: [UInt8] {
        var w = SSHWriter()
        w.string(algorithm)
        writeFields(&w)
        return w.bytes
    }

    public init(blob: [UInt8]) throws {
        var r = SSHReader(blob)
        let algorithm = try r.text()
        self = try Self.readFields(algorithm: algorithm, &r)
        guard r.isAtEnd else { throw SSHWireError.invalid("trailing bytes after the key") }
    }

    /// `type base64 [comment]` (authorized_keys / `.pub` format).
    public func authorizedKey(comment: String? = nil) -> String {
        algorithm + " " + SSHBase64.encode(blob) + (comment.map { " " + $0 } ?? "")
    }

    /// Parses one `.pub` / authorized_keys line (no options prefix): `type base64 [comment]`.
    public init(authorizedKey line: String) throws {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        guard fields.count >= 2, fields[0].utf8.count <= 64, fields[1].utf8.count <= 16_384 else {
            throw SSHWireError.invalid("expected 'type base64 [comment]'")
        }
        guard let blob = SSHBase64.decode(fields[1]) else { throw SSHWireError.invalid("the key is not base64") }
        try self.init(blob: blob)
        guard algorithm == fields[0] else { throw SSHWireError.invalid("the key type does not match its encoding") }
    }
}
