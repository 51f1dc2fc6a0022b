/// An OpenSSH certificate (`*-cert-v01@openssh.com`, OpenSSH PROTOCOL.certkeys).
///
/// The codec only encodes and parses; signing is the engine's: it signs `signedBytes` with the CA key and stores
/// the signature blob in `signature`.
public struct SSHCertificate: Hashable, Sendable {
    public enum Kind: UInt32, Sendable, Hashable {
        case user = 1
        case host = 2
    }

    /// `valid_before` meaning "forever".
    public static let forever = UInt64.max

    public var nonce: [UInt8]
    public var publicKey: SSHPublicKey
    public var serial: UInt64
    public var kind: Kind
    public var keyID: String
    public var principals: [String]
    public var validAfter: UInt64
    public var validBefore: UInt64
    /// name → value; flag options have an empty value. Encoded in lexical order of the names.
    public var criticalOptions: [String: String]
    public var extensions: [String: String]
    /// The CA's public key blob.
    public var signatureKey: [UInt8]
    /// The signature blob: string algorithm, string signature.
    public var signature: [UInt8]

    public init(
        nonce: [UInt8], publicKey: SSHPublicKey, serial: UInt64, kind: Kind, keyID: String, principals: [String],
        validAfter: UInt64, validBefore: UInt64, criticalOptions: [String: String] = [:],
        extensions: [String: String] = [:],
        signatureKey: [UInt8], signature: [UInt8] = []
    ) {
        self.nonce = nonce
        self.publicKey = publicKey
        self.serial = serial
        self.kind = kind
        self.keyID = keyID
        self.principals = principals
        self.validAfter = validAfter
        self.validBefore = validBefore
        self.criticalOptions = criticalOptions
        self.extensions = extensions
        self.signatureKey = signatureKey
        self.signature = signature
    }

    public var algorithm: String { publicKey.certificateAlgorithm }

    /// Options and extensions: lexically ordered names; a non-empty value is itself wrapped in a string.
    static func writeOptions(_ options: [String: String], _ w: inout SSHWriter) {
        var inner = SSHWriter()
        for name in options.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            inner.string(name)
            let value = options[name] ?? ""
            if value.isEmpty {
                inner.string([UInt8]())
            } else {
                var v = SSHWriter()
                v.string(value)
                inner.string(v.bytes)
            }
        }
        w.string(inner.bytes)
    }

    static func readOptions(_ r: inout SSHReader) throws -> [String: String] {
        var inner = SSHReader(try r.string())
        var out: [String: String] = [:]
        var previous: [UInt8]?
        while !inner.isAtEnd {
            let name = try inner.text()
            let nameBytes = Array(name.utf8)
            if let previous, !previous.lexicographicallyPrecedes(nameBytes) {
                throw SSHWireError.invalid("options are not in lexical order or repeat a name")
            }
            previous = nameBytes
            let data = try inner.string()
            if data.isEmpty {
                out[name] = ""
            } else {
                var v = SSHReader(data)
                let value = try v.text()
                guard v.isAtEnd else { throw SSHWireError.invalid("trailing bytes in an option value") }
                out[name] = value
            }
            guard out.count <= 64 else { throw SSHWireError.invalid("too many options") }
        }
        return out
    }

    /// Everything the CA signs: the certificate up to and including the signature key.
    public var signedBytes: [UInt8] {
        var w = SSHWriter()
        w.string(algorithm)
        w.string(nonce)
        publicKey.writeFields(&w)
        w.uint64(serial)
        w.uint32(kind.rawValue)
        w.string(keyID)
        var p = SSHWriter()
        for name in principals { p.string(name) }
        w.string(p.bytes)
        w.uint64(validAfter)
        w.uint64(validBefore)
        Self.writeOptions(criticalOptions, &w)
        Self.writeOptions(extensions, &w)
        w.string([UInt8]())  // reserved
        w.string(signatureKey)
        return w.bytes
    }

    /// The complete certificate blob.
    public var blob: [UInt8] {
        var w = SSHWriter()
        w.raw(signedBytes)
        w.string(signature)
        return w.bytes
    }

    /// `type base64 [comment]`, the `-cert.pub` file format.
    public func line(comment: String? = nil) -> String {
        algorithm + " " + SSHBase64.encode(blob) + (comment.map { " " + $0 } ?? "")
    }

    /// Parses a certificate blob. Checks structure only (lengths, ordering, key fields); the signature is the
    /// caller's to verify.
    public init(blob: [UInt8]) throws {
        guard blob.count <= 65_536 else { throw SSHWireError.invalid("certificate too large") }
        var r = SSHReader(blob)
        let algorithm = try r.text()
        guard algorithm.hasSuffix("-cert-v01@openssh.com") else {
            throw SSHWireError.invalid("not an OpenSSH certificate")
        }
        nonce = try r.string()
        guard nonce.count >= 16 else { throw SSHWireError.invalid("the nonce is too short") }
        publicKey = try SSHPublicKey.readFields(
            algorithm: String(algorithm.dropLast("-cert-v01@openssh.com".count)), &r)
        serial = try r.uint64()
        guard let kind = Kind(rawValue: try r.uint32()) else {
            throw SSHWireError.invalid("certificate type must be user or host")
        }
        self.kind = kind
        keyID = try r.text()
        var p = SSHReader(try r.string())
        var principals: [String] = []
        while !p.isAtEnd {
            principals.append(try p.text())
            guard principals.count <= 256 else { throw SSHWireError.invalid("too many principals") }
        }
        self.principals = principals
        validAfter = try r.uint64()
        validBefore = try r.uint64()
        guard validAfter <= validBefore else { throw SSHWireError.invalid("valid_after is after valid_before") }
        criticalOptions = try Self.readOptions(&r)
        extensions = try Self.readOptions(&r)
        _ = try r.string()  // reserved
        signatureKey = try r.string()
        _ = try SSHPublicKey(blob: signatureKey)
        signature = try r.string()
        var s = SSHReader(signature)
        _ = try s.text()
        _ = try s.string()
        guard s.isAtEnd, r.isAtEnd else { throw SSHWireError.invalid("trailing bytes") }
    }

    /// Parses a `-cert.pub` line.
    public init(line: String) throws {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        guard fields.count >= 2, fields[1].utf8.count <= 90_000, let blob = SSHBase64.decode(fields[1]) else {
            throw SSHWireError.invalid("expected 'type base64 [comment]'")
        }
        try self.init(blob: blob)
        guard algorithm == fields[0] else {
            throw SSHWireError.invalid("the certificate type does not match its encoding")
        }
    }
}

/// Signature blobs (RFC 4253 §6.6, RFC 5656 §3.1.2, RFC 8332, RFC 8709).
public enum SSHSignature {
    /// `string alg, string signature`.
    public static func blob(algorithm: String, _ signature: [UInt8]) -> [UInt8] {
        var w = SSHWriter()
        w.string(algorithm)
        w.string(signature)
        return w.bytes
    }

    /// ECDSA: the signature field is `mpint r, mpint s` (from the raw fixed-width r‖s).
    public static func ecdsa(curve: String, raw: [UInt8]) -> [UInt8] {
        let half = raw.count / 2
        var inner = SSHWriter()
        inner.mpint(raw[0..<half])
        inner.mpint(raw[half...])
        return blob(algorithm: "ecdsa-sha2-" + curve, inner.bytes)
    }
}

/// OpenSSH key revocation lists (OpenSSH PROTOCOL.krl), the subset a CA needs: revoked certificate serials and
/// key ids per CA key.
public struct SSHKRL: Sendable, Hashable {
    public static let magic: [UInt8] = Array("SSHKRL\n\0".utf8)
    public var version: UInt64
    public var generatedAt: UInt64
    public var comment: String
    /// CA public key blob → revoked serials.
    public var serials: [[UInt8]: Set<UInt64>]
    /// CA public key blob → revoked key ids.
    public var keyIDs: [[UInt8]: Set<String>]

    public init(
        version: UInt64, generatedAt: UInt64, comment: String = "", serials: [[UInt8]: Set<UInt64>] = [:],
        keyIDs: [[UInt8]: Set<String>] = [:]
    ) {
        self.version = version
        self.generatedAt = generatedAt
        self.comment = comment
        self.serials = serials
        self.keyIDs = keyIDs
    }

    public var encoded: [UInt8] {
        var w = SSHWriter()
        w.raw(Self.magic)
        w.uint32(1)
        w.uint64(version)
        w.uint64(generatedAt)
        w.uint64(0)
        w.string([UInt8]())
        w.string(comment)
        let cas = Set(serials.keys).union(keyIDs.keys).sorted { $0.lexicographicallyPrecedes($1) }
        for ca in cas {
            var section = SSHWriter()
            section.string(ca)
            section.string([UInt8]())
            if let list = serials[ca], !list.isEmpty {
                var s = SSHWriter()
                for serial in list.sorted() { s.uint64(serial) }
                section.byte(0x20)
                section.string(s.bytes)
            }
            if let ids = keyIDs[ca], !ids.isEmpty {
                var s = SSHWriter()
                for id in ids.sorted() { s.string(id) }
                section.byte(0x23)
                section.string(s.bytes)
            }
            w.byte(1)
            w.string(section.bytes)
        }
        return w.bytes
    }

    /// Parses the subset written by `encoded`; other section types are refused.
    public init(encoded bytes: [UInt8]) throws {
        var r = SSHReader(bytes)
        for b in Self.magic { guard try r.byte() == b else { throw SSHWireError.invalid("not a KRL") } }
        guard try r.uint32() == 1 else { throw SSHWireError.invalid("unsupported KRL format version") }
        version = try r.uint64()
        generatedAt = try r.uint64()
        _ = try r.uint64()
        _ = try r.string()
        comment = try r.text()
        serials = [:]
        keyIDs = [:]
        while !r.isAtEnd {
            guard try r.byte() == 1 else { throw SSHWireError.invalid("unsupported KRL section") }
            var section = SSHReader(try r.string())
            let ca = try section.string()
            _ = try section.string()
            while !section.isAtEnd {
                let type = try section.byte()
                var data = SSHReader(try section.string())
                switch type {
                case 0x20:
                    while !data.isAtEnd { serials[ca, default: []].insert(try data.uint64()) }
                case 0x23:
                    while !data.isAtEnd { keyIDs[ca, default: []].insert(try data.text()) }
                default: throw SSHWireError.invalid("unsupported KRL certificate section")
                }
            }
        }
    }
}
