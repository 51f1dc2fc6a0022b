import Crypto
import EngineAPI
import Foundation
import SSHProtocol
import StorageAPI
import _CryptoExtras

/// Stored form of an SSH CA: public facts and the signing key sealed under the root key.
struct SSHCABody: Codable {
    var info: SSHCAInfo
    var sealedKey: Data
}

struct SSHCertBody: Codable {
    var info: SSHCertificateInfo
}

struct SSHRevokedBody: Codable {
    var serial: String
    var keyId: String
    var revokedAt: Date
}

struct SSHHostNameBody: Codable {
    var hostId: String
}

enum SSHKind {
    static let ca = "ssh-ca"
    static let certificate = "ssh-cert"
    static let revoked = "ssh-revoked"
    static let host = "ssh-host"
    static let hostName = "ssh-host-name"
    static let hostGroup = "ssh-host-group"
}

/// An SSH CA's signing key.
enum SSHSigningKey: @unchecked Sendable {
    case ed25519(Curve25519.Signing.PrivateKey)
    case p256(P256.Signing.PrivateKey)
    case p384(P384.Signing.PrivateKey)
    case rsa(_RSA.Signing.PrivateKey)

    static func generate(_ algorithm: SSHKeyAlgorithm) throws -> SSHSigningKey {
        switch algorithm {
        case .ed25519: return .ed25519(Curve25519.Signing.PrivateKey())
        case .ecdsaP256: return .p256(P256.Signing.PrivateKey())
        case .ecdsaP384: return .p384(P384.Signing.PrivateKey())
        case .rsa3072: return .rsa(try _RSA.Signing.PrivateKey(keySize: .bits3072))
        case .rsa4096: return .rsa(try _RSA.Signing.PrivateKey(keySize: .bits4096))
        }
    }

    init(_ algorithm: SSHKeyAlgorithm, serialized: [UInt8]) throws {
        switch algorithm {
        case .ed25519: self = .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: serialized))
        case .ecdsaP256: self = .p256(try P256.Signing.PrivateKey(rawRepresentation: serialized))
        case .ecdsaP384: self = .p384(try P384.Signing.PrivateKey(rawRepresentation: serialized))
        case .rsa3072, .rsa4096: self = .rsa(try _RSA.Signing.PrivateKey(derRepresentation: serialized))
        }
    }

    var serialized: [UInt8] {
        switch self {
        case .ed25519(let k): return Array(k.rawRepresentation)
        case .p256(let k): return Array(k.rawRepresentation)
        case .p384(let k): return Array(k.rawRepresentation)
        case .rsa(let k): return Array(k.derRepresentation)
        }
    }

    var publicKey: SSHPublicKey {
        get throws {
            switch self {
            case .ed25519(let k): return .ed25519(Array(k.publicKey.rawRepresentation))
            case .p256(let k): return .ecdsa(curve: "nistp256", point: Array(k.publicKey.x963Representation))
            case .p384(let k): return .ecdsa(curve: "nistp384", point: Array(k.publicKey.x963Representation))
            case .rsa(let k):
                let p = try k.publicKey.getKeyPrimitives()
                return .rsa(exponent: Array(p.publicExponent), modulus: Array(p.modulus))
            }
        }
    }

    /// The SSH signature blob over `data` (Ed25519, ECDSA with the curve's hash, RSA with rsa-sha2-512).
    func sign(_ data: [UInt8]) throws -> [UInt8] {
        switch self {
        case .ed25519(let k): return SSHSignature.blob(algorithm: "ssh-ed25519", Array(try k.signature(for: data)))
        case .p256(let k):
            return SSHSignature.ecdsa(curve: "nistp256", raw: Array(try k.signature(for: data).rawRepresentation))
        case .p384(let k):
            return SSHSignature.ecdsa(curve: "nistp384", raw: Array(try k.signature(for: data).rawRepresentation))
        case .rsa(let k):
            let sig = try k.signature(for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
            return SSHSignature.blob(algorithm: "rsa-sha2-512", Array(sig.rawRepresentation))
        }
    }
}

/// The SSH certificate authority: user and host CAs, certificates, KRLs, host groups and hosts, and the short-lived
/// user certificates of `ssh connect`.
final class SSHService: EngineService {
    let core: EngineCore
    init(core: EngineCore) { self.core = core }
}

extension SSHService {
    static let sshUserExtensions: Set<String> = [
        "permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc",
        "no-touch-required",
    ]

    /// `SHA256:` and unpadded base64 of the SHA-256 of the key blob, as `ssh-keygen -l` prints it.
    static func sshFingerprint(_ key: SSHPublicKey) -> String {
        var b64 = SSHBase64.encode(Array(SHA256.hash(data: key.blob)))
        while b64.hasSuffix("=") { b64.removeLast() }
        return "SHA256:" + b64
    }

    /// Parses and checks a key to certify: well-formed, a real point on the curve, RSA ≥ 2048 bits.
    static func sshSubjectKey(_ line: String) throws -> SSHPublicKey {
        let key: SSHPublicKey
        do { key = try SSHPublicKey(authorizedKey: line) } catch {
            throw EngineError(.invalidArgument, "publicKey: \(error)")
        }
        switch key {
        case .ed25519: break
        case .ecdsa(let curve, let point):
            let valid: Bool
            switch curve {
            case "nistp256": valid = (try? P256.Signing.PublicKey(x963Representation: point)) != nil
            case "nistp384": valid = (try? P384.Signing.PublicKey(x963Representation: point)) != nil
            default: valid = (try? P521.Signing.PublicKey(x963Representation: point)) != nil
            }
            guard valid else { throw EngineError(.invalidArgument, "publicKey: the ECDSA point is not on the curve") }
        case .rsa:
            guard key.bits >= 2048 else {
                throw EngineError(.invalidArgument, "publicKey: RSA keys must have at least 2048 bits")
            }
        }
        return key
    }

    static func sshTTL(_ text: String?, default fallback: String, max: String, _ what: String) throws -> Int {
        let chosen = text ?? fallback
        guard let seconds = DurationText.seconds(chosen) else {
            throw EngineError(.invalidArgument, "\(what) must be a duration such as 30m, 8h or 30d")
        }
        guard let cap = DurationText.seconds(max), seconds <= cap else {
            throw EngineError(.permissionDenied, "\(what) \(chosen) exceeds the CA's maximum of \(max)")
        }
        return seconds
    }

    /// Principals: 1–256 names of printable ASCII without spaces or commas.
    static func validatePrincipals(_ names: [String]) throws {
        guard !names.isEmpty, names.count <= 256 else { throw EngineError(.invalidArgument, "principals: 1–256 names") }
        for n in names {
            guard !n.isEmpty, n.utf8.count <= 255,
                n.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ",") })
            else {
                throw EngineError(
                    .invalidArgument,
                    "principal '\(n.prefix(64))' must be 1–255 printable characters without spaces or commas")
            }
        }
        guard Set(names).count == names.count else { throw EngineError(.invalidArgument, "principals repeat a name") }
    }

    // MARK: - CAs

    func loadSSHCA(_ id: String, _ tx: any StorageTransaction) async throws -> (SSHCABody, SSHSigningKey) {
        guard id.utf8.count <= 64, let record = try await tx.get(kind: SSHKind.ca, id: id) else {
            throw EngineError(.notFound, "SSH CA '\(id)' not found")
        }
        let body = try cachedDecode(SSHCABody.self, record)
        let raw = try await keyring.open(body.sealedKey, binding: "ssh-ca/\(id)/key", tx)
        do { return (body, try SSHSigningKey(body.info.keyAlgorithm, serialized: raw)) } catch {
            throw EngineError(.internal, "an SSH CA key is unreadable", diagnostic: "\(id): \(error)")
        }
    }

    public func createSSHCA(_ ctx: CallContext, project: String, _ spec: SSHCASpec) async throws -> SSHCAInfo {
        try Self.validateName(project, "project")
        try Self.validateName(spec.name, "name")
        let decision = try await authorize(
            ctx, AccessRequest(.project(project), .sshCertificateAuthorities, .create, ["name": spec.name]))
        let userTTL = spec.userTTL ?? "8h"
        let maxUserTTL = spec.maxUserTTL ?? "24h"
        let hostTTL = spec.hostTTL ?? "30d"
        let maxHostTTL = spec.maxHostTTL ?? "365d"
        for (value, field) in [
            (userTTL, "userTTL"), (maxUserTTL, "maxUserTTL"), (hostTTL, "hostTTL"), (maxHostTTL, "maxHostTTL"),
        ] {
            guard DurationText.seconds(value) != nil else {
                throw EngineError(.invalidArgument, "\(field) must be a duration such as 8h or 30d")
            }
        }
        _ = try Self.sshTTL(userTTL, default: userTTL, max: maxUserTTL, "userTTL")
        _ = try Self.sshTTL(hostTTL, default: hostTTL, max: maxHostTTL, "hostTTL")
        let algorithm = spec.keyAlgorithm ?? .ed25519
        let key = try SSHSigningKey.generate(algorithm)
        let publicKey = try key.publicKey
        let id = RecordID.make()
        let now = clock()
        let info = SSHCAInfo(
            id: id, project: project, name: spec.name, keyAlgorithm: algorithm,
            publicKey: publicKey.authorizedKey(comment: "gatehouse-ssh-ca-\(spec.name)"),
            fingerprint: Self.sshFingerprint(publicKey),
            userTTL: userTTL, maxUserTTL: maxUserTTL, hostTTL: hostTTL, maxHostTTL: maxHostTTL, createdAt: now)
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            if try await tx.find(kind: SSHKind.ca, scope: project, name: spec.name) != nil {
                throw EngineError(.alreadyExists, "an SSH CA named '\(spec.name)' exists in the project")
            }
            let sealed = try await self.keyring.seal(key.serialized, binding: "ssh-ca/\(id)/key", tx)
            try await tx.insert(
                Record(
                    kind: SSHKind.ca, id: id, scope: project, name: spec.name,
                    body: try Self.encode(SSHCABody(info: info, sealedKey: sealed)),
                    createdAt: now))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "ssh.ca.create", project: project, ["caId": id, "keyAlgorithm": algorithm.rawValue]),
                tx)
            return info
        }
    }

    public func listSSHCAs(_ ctx: CallContext, project: String) async throws -> [SSHCAInfo] {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .sshCertificateAuthorities, .read))
        return try await transact(relaxed: true) { tx in
            _ = try await self.requireProject(project, tx)
            return try await tx.listEvery(kind: SSHKind.ca, scope: project).map {
                try self.decode(SSHCABody.self, $0).info
            }
        }
    }

    public func getSSHCA(_ ctx: CallContext, id: String) async throws -> SSHCAInfo {
        let info = try await sshCAInfo(id)
        try await authorize(
            ctx, AccessRequest(.project(info.project), .sshCertificateAuthorities, .read, ["name": info.name]))
        return info
    }

    public func sshCAPublicKey(caId: String) async throws -> String { try await sshCAInfo(caId).publicKey }

    func sshCAInfo(_ id: String) async throws -> SSHCAInfo {
        try await transact(relaxed: true) { tx in
            guard id.utf8.count <= 64, let r = try await tx.get(kind: SSHKind.ca, id: id) else {
                throw EngineError(.notFound, "SSH CA '\(id)' not found")
            }
            return try self.cachedDecode(SSHCABody.self, r).info
        }
    }

    // MARK: - Certificates

    /// Signs a certificate inside `tx` after every check; records and audits it.
    func signSSHCertificate(
        _ ctx: CallContext, _ decision: Decision, caId: String, _ request: SSHCertificateRequest, auditType: String,
        auditExtra: [String: String] = [:], _ tx: any StorageTransaction
    ) async throws -> SSHCertificateInfo {
        let (ca, key) = try await loadSSHCA(caId, tx)
        let subjectKey = try Self.sshSubjectKey(request.publicKey)
        try Self.validatePrincipals(request.principals)
        let keyID = request.keyId ?? decision.caller.name
        guard keyID.utf8.count <= 256, keyID.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f }) else {
            throw EngineError(.invalidArgument, "keyId must be at most 256 printable characters")
        }
        let ttl: Int
        var options: [String: String] = [:]
        var extensions: [String: String] = [:]
        switch request.type {
        case .user:
            ttl = try Self.sshTTL(request.ttl, default: ca.info.userTTL, max: ca.info.maxUserTTL, "ttl")
            for (name, value) in request.criticalOptions ?? [:] {
                switch name {
                case "force-command":
                    guard !value.isEmpty, value.utf8.count <= 4096, !value.contains("\0") else {
                        throw EngineError(.invalidArgument, "force-command must be 1–4096 characters")
                    }
                case "source-address":
                    let blocks = value.split(separator: ",", omittingEmptySubsequences: false)
                    guard !blocks.isEmpty, blocks.count <= 100, blocks.allSatisfy({ CIDR(String($0)) != nil }) else {
                        throw EngineError(
                            .invalidArgument,
                            "source-address must be a comma-separated list of addresses or CIDR blocks")
                    }
                case "verify-required":
                    guard value.isEmpty else { throw EngineError(.invalidArgument, "verify-required takes no value") }
                default: throw EngineError(.invalidArgument, "unknown critical option '\(name.prefix(64))'")
                }
                options[name] = value
            }
            for name in request.extensions ?? ["permit-pty"] {
                guard Self.sshUserExtensions.contains(name) else {
                    throw EngineError(.invalidArgument, "unknown extension '\(name.prefix(64))'")
                }
                extensions[name] = ""
            }
        case .host:
            ttl = try Self.sshTTL(request.ttl, default: ca.info.hostTTL, max: ca.info.maxHostTTL, "ttl")
            guard (request.criticalOptions ?? [:]).isEmpty, (request.extensions ?? []).isEmpty else {
                throw EngineError(.invalidArgument, "host certificates have no critical options or extensions")
            }
        }
        let now = clock()
        let validAfter = now.addingTimeInterval(-60)
        let validBefore = now.addingTimeInterval(TimeInterval(ttl))
        let serial = UInt64.random(in: 1...UInt64.max)
        var nonce = [UInt8](repeating: 0, count: 32)
        for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255) }
        var cert = SSHCertificate(
            nonce: nonce, publicKey: subjectKey, serial: serial, kind: request.type == .user ? .user : .host,
            keyID: keyID,
            principals: request.principals, validAfter: UInt64(validAfter.timeIntervalSince1970),
            validBefore: UInt64(validBefore.timeIntervalSince1970), criticalOptions: options, extensions: extensions,
            signatureKey: try key.publicKey.blob)
        cert.signature = try key.sign(cert.signedBytes)
        let info = SSHCertificateInfo(
            serial: String(serial), caId: caId, project: ca.info.project, type: request.type, keyId: keyID,
            principals: request.principals, validAfter: Date(timeIntervalSince1970: TimeInterval(cert.validAfter)),
            validBefore: Date(timeIntervalSince1970: TimeInterval(cert.validBefore)), criticalOptions: options,
            extensions: extensions.keys.sorted(), publicKeyFingerprint: Self.sshFingerprint(subjectKey),
            certificate: cert.line(comment: keyID.isEmpty || keyID.contains(" ") ? nil : keyID), status: .active,
            revokedAt: nil, issuedTo: decision.caller.identityId ?? decision.caller.name)
        try await tx.insert(
            Record(
                kind: SSHKind.certificate, id: info.serial, scope: ca.info.project, name: nil,
                body: try Self.encode(SSHCertBody(info: info)), createdAt: now))
        var meta = auditExtra
        meta["caId"] = caId
        meta["serial"] = info.serial
        meta["type"] = request.type.rawValue
        meta["keyId"] = keyID
        meta["principals"] = request.principals.joined(separator: ",")
        meta["validBefore"] = ISO8601DateFormatter().string(from: info.validBefore)
        try await audit.append(allowed(ctx, decision, auditType, project: ca.info.project, meta), tx)
        return info
    }

    public func issueSSHCertificate(_ ctx: CallContext, caId: String, _ request: SSHCertificateRequest) async throws
        -> SSHCertificateInfo
    {
        let ca = try await sshCAInfo(caId)
        let decision = try await authorize(
            ctx, AccessRequest(.project(ca.project), .sshCertificates, .create, ["name": ca.name]))
        return try await transact { tx in
            try await self.signSSHCertificate(
                ctx, decision, caId: caId, request, auditType: "ssh.certificate.issue", tx)
        }
    }

    func describeSSH(_ info: SSHCertificateInfo) -> SSHCertificateInfo {
        var info = info
        if info.status == .active, info.validBefore < clock() { info.status = .expired }
        return info
    }

    public func listSSHCertificates(_ ctx: CallContext, project: String, after: String?, limit: Int) async throws
        -> Page<SSHCertificateInfo>
    {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .sshCertificates, .read))
        let n = max(1, min(limit, 1000))
        return try await transact(relaxed: true) { tx in
            _ = try await self.requireProject(project, tx)
            let records = try await tx.list(kind: SSHKind.certificate, scope: project, afterID: after, limit: n + 1)
            let items = try records.prefix(n).map { self.describeSSH(try self.decode(SSHCertBody.self, $0).info) }
            return Page(items: items, next: records.count > n ? items.last?.serial : nil)
        }
    }

    func sshCertificateRecord(_ serial: String, _ tx: any StorageTransaction) async throws -> (Record, SSHCertBody) {
        guard !serial.isEmpty, serial.utf8.count <= 20, UInt64(serial) != nil,
            let r = try await tx.get(kind: SSHKind.certificate, id: serial)
        else { throw EngineError(.notFound, "SSH certificate '\(serial.prefix(32))' not found") }
        return (r, try decode(SSHCertBody.self, r))
    }

    public func getSSHCertificate(_ ctx: CallContext, serial: String) async throws -> SSHCertificateInfo {
        let (_, body) = try await read { tx in try await self.sshCertificateRecord(serial, tx) }
        try await authorize(ctx, AccessRequest(.project(body.info.project), .sshCertificates, .read))
        return describeSSH(body.info)
    }

    public func revokeSSHCertificate(_ ctx: CallContext, serial: String) async throws -> SSHCertificateInfo {
        let (_, existing) = try await read { tx in try await self.sshCertificateRecord(serial, tx) }
        let decision = try await authorize(
            ctx, AccessRequest(.project(existing.info.project), .sshCertificates, .revoke))
        let now = clock()
        return try await transact { tx in
            var (record, body) = try await self.sshCertificateRecord(serial, tx)
            guard body.info.status != .revoked else {
                throw EngineError(.wrongState, "the certificate is already revoked")
            }
            body.info.status = .revoked
            body.info.revokedAt = now
            record.body = try Self.encode(body)
            _ = try await tx.update(record)
            try await tx.insert(
                Record(
                    kind: SSHKind.revoked, id: serial, scope: body.info.caId, name: nil,
                    body: try Self.encode(SSHRevokedBody(serial: serial, keyId: body.info.keyId, revokedAt: now)),
                    createdAt: now))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "ssh.certificate.revoke", project: body.info.project,
                    ["caId": body.info.caId, "serial": serial]), tx)
            return body.info
        }
    }

    public func sshKRL(caId: String) async throws -> [UInt8] {
        let now = clock()
        return try await transact(relaxed: true) { tx in
            guard caId.utf8.count <= 64, let r = try await tx.get(kind: SSHKind.ca, id: caId) else {
                throw EngineError(.notFound, "SSH CA not found")
            }
            let ca = try self.cachedDecode(SSHCABody.self, r)
            let caKey = try SSHPublicKey(authorizedKey: ca.info.publicKey).blob
            var serials: Set<UInt64> = []
            var after: String?
            while true {
                let page = try await tx.list(kind: SSHKind.revoked, scope: caId, afterID: after, limit: 1000)
                for rec in page {
                    if let s = UInt64(try self.decode(SSHRevokedBody.self, rec).serial) { serials.insert(s) }
                }
                guard page.count == 1000, let last = page.last else { break }
                after = last.id
            }
            let krl = SSHKRL(
                version: UInt64(serials.count), generatedAt: UInt64(now.timeIntervalSince1970),
                comment: "gatehouse \(ca.info.name)", serials: serials.isEmpty ? [:] : [caKey: serials])
            return krl.encoded
        }
    }

    // MARK: - Hosts and groups

    static func validateMappings(_ mappings: [SSHLoginMapping]) throws {
        guard mappings.count <= 100 else { throw EngineError(.invalidArgument, "at most 100 login mappings") }
        for m in mappings {
            try validatePrincipals([m.login])
            guard m.login.utf8.count <= 32, m.login.utf8.allSatisfy({ $0 != UInt8(ascii: "/") }) else {
                throw EngineError(.invalidArgument, "login '\(m.login.prefix(64))' is not a valid user name")
            }
            guard !m.allowedIdentities.isEmpty, m.allowedIdentities.count <= 1000 else {
                throw EngineError(.invalidArgument, "login mapping '\(m.login)' needs 1–1000 allowed identities")
            }
            for i in m.allowedIdentities { try validateName(i, "allowed identity") }
        }
        guard Set(mappings.map(\.login)).count == mappings.count else {
            throw EngineError(.invalidArgument, "a login appears in two mappings")
        }
    }

    public func createSSHHostGroup(_ ctx: CallContext, project: String, _ spec: SSHHostGroupSpec) async throws
        -> SSHHostGroupInfo
    {
        try Self.validateName(project, "project")
        try Self.validateName(spec.name, "name")
        try Self.validateMappings(spec.loginMappings ?? [])
        let decision = try await authorize(
            ctx, AccessRequest(.project(project), .sshHosts, .create, ["name": spec.name]))
        let now = clock()
        let info = SSHHostGroupInfo(
            id: RecordID.make(), project: project, name: spec.name, loginMappings: spec.loginMappings ?? [],
            createdAt: now)
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            if try await tx.find(kind: SSHKind.hostGroup, scope: project, name: spec.name) != nil {
                throw EngineError(.alreadyExists, "a host group named '\(spec.name)' exists in the project")
            }
            try await tx.insert(
                Record(
                    kind: SSHKind.hostGroup, id: info.id, scope: project, name: spec.name, body: try Self.encode(info),
                    createdAt: now))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "ssh.host-group.create", project: project,
                    ["hostGroupId": info.id, "name": spec.name]), tx)
            return info
        }
    }

    public func listSSHHostGroups(_ ctx: CallContext, project: String) async throws -> [SSHHostGroupInfo] {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .sshHosts, .read))
        return try await transact(relaxed: true) { tx in
            _ = try await self.requireProject(project, tx)
            return try await tx.listEvery(kind: SSHKind.hostGroup, scope: project).map {
                try self.decode(SSHHostGroupInfo.self, $0)
            }
        }
    }

    public func addSSHHost(_ ctx: CallContext, project: String, _ spec: SSHHostSpec) async throws -> SSHHostInfo {
        try Self.validateName(project, "project")
        try Self.validateHostname(spec.hostname)
        try Self.validateMappings(spec.loginMappings ?? [])
        let port = spec.port ?? 22
        guard (1...65535).contains(port) else { throw EngineError(.invalidArgument, "port must be 1–65535") }
        let decision = try await authorize(
            ctx, AccessRequest(.project(project), .sshHosts, .create, ["name": spec.hostname]))
        if spec.hostPublicKey != nil {
            try await authorize(ctx, AccessRequest(.project(project), .sshCertificates, .create))
        }
        let now = clock()
        let id = RecordID.make()
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let (userCA, _) = try await self.loadSSHCA(spec.userCaId, tx)
            let (hostCA, _) = try await self.loadSSHCA(spec.hostCaId, tx)
            guard userCA.info.project == project, hostCA.info.project == project else {
                throw EngineError(.invalidArgument, "the SSH CAs must belong to the project")
            }
            var groupId: String?
            if let g = spec.hostGroup {
                guard g.utf8.count <= 200 else { throw EngineError(.notFound, "host group not found") }
                let r: Record?
                if let byName = try await tx.find(kind: SSHKind.hostGroup, scope: project, name: g) {
                    r = byName
                } else {
                    r = try await tx.get(kind: SSHKind.hostGroup, id: g)
                }
                guard let r, r.scope == project else {
                    throw EngineError(.notFound, "host group '\(g)' not found in the project")
                }
                groupId = r.id
            }
            if try await tx.find(kind: SSHKind.hostName, scope: AccessKind.org, name: spec.hostname) != nil {
                throw EngineError(.alreadyExists, "host '\(spec.hostname)' is already registered")
            }
            var info = SSHHostInfo(
                id: id, project: project, hostname: spec.hostname, port: port, hostGroupId: groupId,
                userCaId: spec.userCaId,
                hostCaId: spec.hostCaId, loginMappings: spec.loginMappings ?? [],
                userCAPublicKey: userCA.info.publicKey,
                hostCAPublicKey: hostCA.info.publicKey, hostCertificate: nil, createdAt: now)
            try await tx.insert(
                Record(
                    kind: SSHKind.hostName, id: "hn-" + id, scope: AccessKind.org, name: spec.hostname,
                    body: try Self.encode(SSHHostNameBody(hostId: id)), createdAt: now))
            if let key = spec.hostPublicKey {
                let cert = try await self.signSSHCertificate(
                    ctx, decision, caId: spec.hostCaId,
                    SSHCertificateRequest(
                        type: .host, publicKey: key, keyId: spec.hostname, principals: [spec.hostname],
                        ttl: spec.hostCertificateTTL),
                    auditType: "ssh.certificate.issue", auditExtra: ["hostId": id], tx)
                info.hostCertificate = cert.certificate
            }
            try await tx.insert(
                Record(
                    kind: SSHKind.host, id: id, scope: project, name: spec.hostname, body: try Self.encode(info),
                    createdAt: now))
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "ssh.host.add", project: project, ["hostId": id, "hostname": spec.hostname]), tx)
            return info
        }
    }

    public func listSSHHosts(_ ctx: CallContext, project: String) async throws -> [SSHHostInfo] {
        try Self.validateName(project, "project")
        try await authorize(ctx, AccessRequest(.project(project), .sshHosts, .read))
        return try await transact(relaxed: true) { tx in
            _ = try await self.requireProject(project, tx)
            return try await tx.listEvery(kind: SSHKind.host, scope: project).map {
                try self.decode(SSHHostInfo.self, $0)
            }
        }
    }

    func sshHostRecord(_ host: String, _ tx: any StorageTransaction) async throws -> (Record, SSHHostInfo) {
        guard !host.isEmpty, host.utf8.count <= 253 else { throw EngineError(.notFound, "SSH host not found") }
        var record = try await tx.get(kind: SSHKind.host, id: host)
        if record == nil, let index = try await tx.find(kind: SSHKind.hostName, scope: AccessKind.org, name: host) {
            record = try await tx.get(kind: SSHKind.host, id: try decode(SSHHostNameBody.self, index).hostId)
        }
        guard let record else { throw EngineError(.notFound, "SSH host '\(host.prefix(64))' not found") }
        return (record, try decode(SSHHostInfo.self, record))
    }

    public func getSSHHost(_ ctx: CallContext, host: String) async throws -> SSHHostInfo {
        let (_, info) = try await read { tx in try await self.sshHostRecord(host, tx) }
        try await authorize(ctx, AccessRequest(.project(info.project), .sshHosts, .read, ["name": info.hostname]))
        return info
    }

    public func deleteSSHHost(_ ctx: CallContext, host: String) async throws {
        let (_, existing) = try await read { tx in try await self.sshHostRecord(host, tx) }
        let decision = try await authorize(
            ctx, AccessRequest(.project(existing.project), .sshHosts, .delete, ["name": existing.hostname]))
        try await transact { tx in
            let (record, info) = try await self.sshHostRecord(existing.id, tx)
            try await tx.delete(kind: SSHKind.host, id: record.id, expectedVersion: record.version)
            if let index = try await tx.get(kind: SSHKind.hostName, id: "hn-" + record.id) {
                try await tx.delete(kind: SSHKind.hostName, id: index.id, expectedVersion: index.version)
            }
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "ssh.host.delete", project: info.project,
                    ["hostId": info.id, "hostname": info.hostname]), tx)
        }
    }

    public func issueSSHHostCertificate(_ ctx: CallContext, host: String, publicKey: String, ttl: String?) async throws
        -> SSHCertificateInfo
    {
        let (_, existing) = try await read { tx in try await self.sshHostRecord(host, tx) }
        let decision = try await authorize(ctx, AccessRequest(.project(existing.project), .sshCertificates, .create))
        return try await transact { tx in
            var (record, info) = try await self.sshHostRecord(existing.id, tx)
            let cert = try await self.signSSHCertificate(
                ctx, decision, caId: info.hostCaId,
                SSHCertificateRequest(
                    type: .host, publicKey: publicKey, keyId: info.hostname, principals: [info.hostname], ttl: ttl),
                auditType: "ssh.certificate.issue", auditExtra: ["hostId": info.id], tx)
            info.hostCertificate = cert.certificate
            record.body = try Self.encode(info)
            _ = try await tx.update(record)
            return cert
        }
    }

    public func connectSSHHost(_ ctx: CallContext, host: String, login: String?, publicKey: String, ttl: String?)
        async throws
        -> SSHConnectGrant
    {
        guard let caller = try await resolve(ctx.principal) else {
            await auditFailure(
                ctx, "authentication.failed", project: nil,
                ["action": "ssh-hosts.connect", "reason": "no identity accepts these credentials"])
            throw EngineError(.unauthenticated, "authentication required")
        }
        let (hostInfo, mappings) = try await transact(relaxed: true) { tx in
            let (_, info) = try await self.sshHostRecord(host, tx)
            var mappings = info.loginMappings
            if let g = info.hostGroupId, let r = try await tx.get(kind: SSHKind.hostGroup, id: g) {
                mappings += try self.decode(SSHHostGroupInfo.self, r).loginMappings
            }
            return (info, mappings)
        }
        let who = Set([caller.identityId, caller.name].compactMap { $0 })
        let permitted = mappings.filter { !who.isDisjoint(with: $0.allowedIdentities) }.map(\.login)
        let chosen: String
        if let login {
            guard permitted.contains(login) else {
                await auditFailure(
                    ctx, "authorization.denied", project: hostInfo.project,
                    [
                        "action": "ssh-hosts.connect", "resource": hostInfo.hostname, "login": String(login.prefix(64)),
                        "identityId": caller.identityId ?? "", "reason": "no login mapping allows this login",
                    ])
                throw EngineError(
                    .permissionDenied,
                    "no login mapping of \(hostInfo.hostname) lets you log in as '\(login.prefix(64))'")
            }
            chosen = login
        } else {
            let unique = Array(Set(permitted)).sorted()
            guard unique.count == 1, let only = unique.first else {
                if unique.isEmpty {
                    await auditFailure(
                        ctx, "authorization.denied", project: hostInfo.project,
                        [
                            "action": "ssh-hosts.connect", "resource": hostInfo.hostname,
                            "identityId": caller.identityId ?? "",
                            "reason": "no login mapping allows this identity",
                        ])
                    throw EngineError(.permissionDenied, "no login mapping of \(hostInfo.hostname) allows you")
                }
                throw EngineError(.invalidArgument, "choose a login: \(unique.joined(separator: ", "))")
            }
            chosen = only
        }
        let decision = Decision(caller: caller, grantedBy: "ssh-login-mapping:\(chosen)", rules: [])
        let cert = try await transact { tx in
            try await self.signSSHCertificate(
                ctx, decision, caId: hostInfo.userCaId,
                SSHCertificateRequest(
                    type: .user, publicKey: publicKey, keyId: caller.name, principals: [chosen], ttl: ttl),
                auditType: "ssh.connect",
                auditExtra: ["hostId": hostInfo.id, "hostname": hostInfo.hostname, "login": chosen], tx)
        }
        let pattern = hostInfo.port == 22 ? hostInfo.hostname : "[\(hostInfo.hostname)]:\(hostInfo.port)"
        let caKey = hostInfo.hostCAPublicKey.split(separator: " ").prefix(2).joined(separator: " ")
        return SSHConnectGrant(
            certificate: cert, hostname: hostInfo.hostname, port: hostInfo.port, login: chosen,
            knownHostsLine: "@cert-authority \(pattern) \(caKey)")
    }
}
