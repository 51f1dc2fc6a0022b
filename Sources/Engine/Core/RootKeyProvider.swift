import Crypto
import EngineAPI
import ExtrasBase64
import Foundation

/// The root key (the key-encryption key), as the engine uses it: it seals and opens data keys, bound to
/// associated data naming them. A key file's root key does this in memory; an HSM's does it inside the token, so
/// the key never reaches this process.
public protocol RootKey: Sendable, CustomStringConvertible {
    /// Seals `plaintext` (a data key) bound to `aad`.
    func wrap(_ plaintext: Data, aad: Data) throws -> Data
    /// Opens what `wrap` produced for the same `aad`; throws if it does not authenticate.
    func unwrap(_ wrapped: Data, aad: Data) throws -> Data
}

/// A root key held in memory: AES-256-GCM, sealed form nonce 12 | ciphertext | tag 16.
public struct SoftwareRootKey: RootKey {
    let key: SymmetricKey
    public let description: String
    public init(_ key: SymmetricKey, description: String = "root key") {
        self.key = key
        self.description = description
    }
    public func wrap(_ plaintext: Data, aad: Data) throws -> Data {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: aad)
        guard let combined = box.combined else { throw EngineError(.internal, "AES-GCM produced no output") }
        return combined
    }
    public func unwrap(_ wrapped: Data, aad: Data) throws -> Data {
        try AES.GCM.open(try AES.GCM.SealedBox(combined: wrapped), using: key, authenticating: aad)
    }
}

/// Where the root key comes from. A protocol so an HSM or KMS provider can be added without touching the engine:
/// it only asks for the key once at start-up (and once more for the new root of a rotation).
public protocol RootKeyProvider: Sendable {
    /// A description for logs and errors (never the key).
    var sourceDescription: String { get }
    /// Loads the root key. Throws `EngineError(.unavailable)` saying why it cannot.
    func loadRootKey() throws -> any RootKey
    /// How the store names this root for other nodes during and after a switch (`file:PATH`, `env:NAME`,
    /// `pkcs11:…`; never secret), or nil for a root no other node could load.
    var descriptor: String? { get }
}

extension RootKeyProvider {
    public var descriptor: String? { nil }
}

/// Reads the root key from a file holding 32 bytes as base64 (one line). The file must not be readable by
/// group or others.
public struct FileRootKeyProvider: RootKeyProvider {
    /// The file path.
    public var path: String
    public init(path: String) { self.path = path }
    public var sourceDescription: String { "key file \(path)" }
    public var descriptor: String? { "file:" + path }

    public func loadRootKey() throws -> any RootKey {
        SoftwareRootKey(try loadKey(), description: sourceDescription)
    }

    public func loadKey() throws -> SymmetricKey {
        let fm = FileManager.default
        guard fm.fileExists(atPath: path) else {
            throw EngineError(.unavailable, "root key file \(path) does not exist (run `gatehouse init`)")
        }
        guard fm.isReadableFile(atPath: path), let data = fm.contents(atPath: path) else {
            throw EngineError(.unavailable, "root key file \(path) is not readable")
        }
        try Self.requirePrivate(path, "root key file")
        return try Self.parse(data, source: sourceDescription)
    }

    /// Throws unless the file at `path` (a key, PIN or passphrase file, named `what` in the message) is closed to
    /// group and others.
    public static func requirePrivate(_ path: String, _ what: String) throws {
        if let perms = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber,
            perms.intValue & 0o077 != 0
        {
            throw EngineError(
                .unavailable,
                "\(what) \(path) is accessible by group or others (mode \(String(perms.intValue, radix: 8))); chmod 600 it"
            )
        }
    }

    static func parse(_ data: Data, source: String) throws -> SymmetricKey {
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = try? Base64.decode(string: text), raw.count == 32 else {
            throw EngineError(.unavailable, "\(source) does not hold a base64-encoded 32-byte key")
        }
        return SymmetricKey(data: raw)
    }

    /// Creates a new random key file with mode 0600. Fails if the file exists.
    public static func create(path: String) throws {
        let key = SymmetricKey(size: .bits256)
        let text = key.withUnsafeBytes { Base64.encodeToString(bytes: $0) } + "\n"
        try writeNew(path: path, contents: Data(text.utf8))
    }

    /// Writes `contents` to a new file with mode 0600, durably (fsync). Fails if the file exists.
    public static func writeNew(path: String, contents: Data) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw EngineError(.unavailable, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let written = contents.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == contents.count, fsync(fd) == 0 else {
            throw EngineError(.unavailable, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// Reads the root key (base64, 32 bytes) from an environment variable, e.g. injected by a secret manager.
public struct EnvironmentRootKeyProvider: RootKeyProvider {
    /// The variable name.
    public var variable: String
    public init(variable: String) { self.variable = variable }
    public var sourceDescription: String { "environment variable \(variable)" }
    public var descriptor: String? { "env:" + variable }

    public func loadRootKey() throws -> any RootKey {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            throw EngineError(.unavailable, "environment variable \(variable) is not set")
        }
        return SoftwareRootKey(
            try FileRootKeyProvider.parse(Data(value.utf8), source: sourceDescription), description: sourceDescription)
    }
}

/// A fixed key, for tests.
public struct StaticRootKeyProvider: RootKeyProvider {
    let key: SymmetricKey
    public init(_ key: SymmetricKey) { self.key = key }
    public var sourceDescription: String { "static key" }
    public func loadRootKey() throws -> any RootKey { SoftwareRootKey(key, description: "static key") }
}

/// A root key loaded already (the daemon loads it first, to tell an unavailable root key from other failures).
public struct LoadedRootKeyProvider: RootKeyProvider {
    let key: any RootKey
    public let descriptor: String?
    public init(_ key: any RootKey, descriptor: String?) {
        self.key = key
        self.descriptor = descriptor
    }
    public var sourceDescription: String { key.description }
    public func loadRootKey() throws -> any RootKey { key }
}
