import Crypto
import Foundation
import _CryptoExtras

/// A Gatehouse backup file: encrypted to a backup key or a passphrase, and signed by the appliance.
///
/// Hand-written because no package here makes an encrypted, signed, streamed archive of a few large files:
///
///     "GATEHOUSE-BACKUP-1\n" | u32 header length | header (JSON) | chunk* | 'S' | Ed25519 signature (64)
///     chunk = flag (1: 'C' more, 'F' final) | u32 sealed length | nonce (12) | ciphertext | tag (16)
///
/// Each chunk is AES-256-GCM under the backup key with associated data SHA-256(header) | u64 index | flag, so chunks
/// cannot be reordered, dropped, moved between archives, or the archive cut short (the last is marked final). The
/// signature covers SHA-256 of every byte before it. The plaintext is a stream of entries:
///
///     'F' | u16 name length | name | u64 size | bytes        a file
///     'M' | u32 length | manifest (JSON)                       the last entry: names, sizes and SHA-256 of each file
public enum BackupArchive {

    /// How the backup key is obtained; in the clear in the header.
    public struct Header: Codable, Sendable, Equatable {
        public var version = 1
        public var created: Date
        /// "key" (a 32-byte key file) or "scrypt" (a passphrase).
        public var kdf: String
        /// The scrypt salt, or empty.
        public var salt: Data
        /// scrypt cost (N), block size (r) and parallelism (p).
        public var rounds: Int
        public var blockSize: Int
        public var parallelism: Int
        /// SHA-256 of the backup key (first 8 bytes), to tell a wrong key from a damaged archive.
        public var keyCheck: Data
        /// The Ed25519 public key that signed the archive (the appliance's backup signing key).
        public var signer: Data
    }

    /// One file in the archive, as the manifest lists it.
    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        public var size: Int64
        public var sha256: String
    }

    /// The last entry: what the archive holds.
    public struct Manifest: Codable, Sendable, Equatable {
        public var files: [Entry]
        /// Free-form facts about the source (backend, record counts, node, version).
        public var facts: [String: String]
    }

    /// The backup key: a key file's 32 bytes, or scrypt of a passphrase.
    public enum Secret: Sendable {
        case key(SymmetricKey)
        case passphrase([UInt8])
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ d: String) { description = d }
    }

    static func keyCheck(_ key: SymmetricKey) -> Data {
        Data(key.withUnsafeBytes { SHA256.hash(data: Data($0)) }.prefix(8))
    }

    static func derive(_ secret: Secret, header: Header) throws -> SymmetricKey {
        switch secret {
        case .key(let key):
            guard header.kdf == "key" else { throw Failure("this backup is encrypted to a passphrase, not a key file") }
            return key
        case .passphrase(let words):
            guard header.kdf == "scrypt" else {
                throw Failure("this backup is encrypted to a key file, not a passphrase")
            }
            guard header.rounds >= 1 << 14, header.rounds <= 1 << 22, header.blockSize >= 1, header.blockSize <= 32,
                header.parallelism >= 1, header.parallelism <= 16
            else { throw Failure("the backup's scrypt parameters are out of range") }
            return try KDF.Scrypt.deriveKey(
                from: words, salt: header.salt, outputByteCount: 32, rounds: header.rounds,
                blockSize: header.blockSize, parallelism: header.parallelism)
        }
    }

    static func aad(_ headerHash: Data, _ index: UInt64, _ flag: UInt8) -> Data {
        var aad = headerHash
        withUnsafeBytes(of: index.bigEndian) { aad.append(contentsOf: $0) }
        aad.append(flag)
        return aad
    }

    // MARK: Writing

    /// Streams an archive to a new file.
    public final class Writer {
        let out: FileHandle
        let key: SymmetricKey
        let headerHash: Data
        let signer: Curve25519.Signing.PrivateKey
        var hasher = SHA256()
        var pending = Data()
        var index: UInt64 = 0
        var files: [Entry] = []
        public private(set) var bytesWritten: Int64 = 0

        /// Creates `path` (which must not exist; mode 0600) and writes the header.
        public init(path: String, secret: Secret, signer: Curve25519.Signing.PrivateKey, created: Date = Date())
            throws
        {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            guard fd >= 0 else { throw Failure("cannot create \(path): \(String(cString: strerror(errno)))") }
            out = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            var header = Header(
                created: created, kdf: "key", salt: Data(), rounds: 0, blockSize: 0, parallelism: 0, keyCheck: Data(),
                signer: signer.publicKey.rawRepresentation)
            switch secret {
            case .key(let k):
                key = k
            case .passphrase(let words):
                header.kdf = "scrypt"
                header.salt = Data((0..<16).map { _ in UInt8.random(in: 0...255) })
                header.rounds = 1 << 17
                header.blockSize = 8
                header.parallelism = 1
                key = try KDF.Scrypt.deriveKey(
                    from: words, salt: header.salt, outputByteCount: 32, rounds: header.rounds,
                    blockSize: header.blockSize, parallelism: header.parallelism)
            }
            header.keyCheck = BackupArchive.keyCheck(key)
            self.signer = signer
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            let json = try encoder.encode(header)
            headerHash = Data(SHA256.hash(data: json))
            var start = Data(BackupFraming.magic)
            withUnsafeBytes(of: UInt32(json.count).bigEndian) { start.append(contentsOf: $0) }
            start.append(json)
            try write(start)
        }

        func write(_ data: Data) throws {
            hasher.update(data: data)
            try out.write(contentsOf: data)
            bytesWritten += Int64(data.count)
        }

        func seal(final: Bool) throws {
            let flag = final ? BackupFraming.final : BackupFraming.more
            let box = try AES.GCM.seal(pending, using: key, authenticating: aad(headerHash, index, flag))
            guard let sealed = box.combined else { throw Failure("AES-GCM produced no output") }
            var chunk = Data([flag])
            withUnsafeBytes(of: UInt32(sealed.count).bigEndian) { chunk.append(contentsOf: $0) }
            chunk.append(sealed)
            try write(chunk)
            pending.removeAll(keepingCapacity: true)
            index += 1
        }

        func plain(_ data: Data) throws {
            pending.append(data)
            while pending.count >= BackupFraming.chunkSize {
                let rest = pending.subdata(in: BackupFraming.chunkSize..<pending.count)
                pending = pending.prefix(BackupFraming.chunkSize)
                try seal(final: false)
                pending = rest
            }
        }

        /// Adds the file at `path` as `name`.
        public func add(name: String, path: String) throws {
            guard let input = FileHandle(forReadingAtPath: path) else { throw Failure("cannot read \(path)") }
            defer { try? input.close() }
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
            let nameBytes = Data(name.utf8)
            guard nameBytes.count <= BackupFraming.maxName else { throw Failure("name too long: \(name)") }
            var head = Data([UInt8(ascii: "F")])
            withUnsafeBytes(of: UInt16(nameBytes.count).bigEndian) { head.append(contentsOf: $0) }
            head.append(nameBytes)
            withUnsafeBytes(of: UInt64(size).bigEndian) { head.append(contentsOf: $0) }
            try plain(head)
            var digest = SHA256()
            var left = size
            while left > 0 {
                guard let piece = try input.read(upToCount: Int(min(Int64(BackupFraming.chunkSize), left))),
                    !piece.isEmpty
                else {
                    throw Failure("\(path) shrank while it was read")
                }
                digest.update(data: piece)
                try plain(piece)
                left -= Int64(piece.count)
            }
            files.append(
                Entry(name: name, size: size, sha256: digest.finalize().map { String(format: "%02x", $0) }.joined()))
        }

        /// Writes the manifest, the final chunk and the signature, and syncs the file.
        public func finish(facts: [String: String]) throws -> Manifest {
            let manifest = Manifest(files: files, facts: facts)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = try encoder.encode(manifest)
            var entry = Data([UInt8(ascii: "M")])
            withUnsafeBytes(of: UInt32(json.count).bigEndian) { entry.append(contentsOf: $0) }
            entry.append(json)
            try plain(entry)
            try seal(final: true)
            let digest = Data(hasher.finalize())
            let signature = try signer.signature(for: digest)
            var trailer = Data([UInt8(ascii: "S")])
            trailer.append(signature)
            try out.write(contentsOf: trailer)
            bytesWritten += Int64(trailer.count)
            try out.synchronize()
            try out.close()
            return manifest
        }
    }

    // MARK: Reading

    /// What reading an archive found.
    public struct Contents: Sendable {
        public var header: Header
        public var manifest: Manifest
        /// Hex SHA-256 of the signer's public key.
        public var signerFingerprint: String
    }

    /// Reads and checks the archive at `path`: header, every chunk, the manifest (each file's size and digest) and
    /// the signature. `extract` is called with each file's name and bytes in order (nil: only check). Throws a
    /// `Failure` naming the first problem; nothing `extract` received should be trusted if it throws.
    public static func read(
        path: String, secret: Secret, extract: ((String, Data, Bool) throws -> Void)? = nil
    ) throws -> Contents {
        guard let input = FileHandle(forReadingAtPath: path) else { throw Failure("cannot read \(path)") }
        defer { try? input.close() }
        var hasher = SHA256()
        /// The next `n` bytes, or fewer at the end of the file if `short` (else the archive is truncated).
        func take(_ n: Int, short: Bool = false) throws -> Data {
            var data = Data()
            while data.count < n {
                guard let piece = try input.read(upToCount: n - data.count), !piece.isEmpty else {
                    if short { break }
                    throw Failure("the backup is truncated")
                }
                data.append(piece)
            }
            hasher.update(data: data)
            return data
        }
        let header: Header
        let signer: Curve25519.Signing.PublicKey
        var parser = EntryReader(extract: extract)
        do {
            let headerLength = try BackupFraming.headerLength(
                [UInt8](try take(BackupFraming.magic.count + 4, short: true)))
            let headerJSON = try take(headerLength)
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            guard let decoded = try? decoder.decode(Header.self, from: headerJSON), decoded.version == 1 else {
                throw Failure("the backup's header is malformed or of an unknown version")
            }
            header = decoded
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: header.signer) else {
                throw Failure("the backup's signer key is malformed")
            }
            signer = key
            let backupKey = try derive(secret, header: header)
            guard keyCheck(backupKey) == header.keyCheck else {
                throw Failure("wrong backup key or passphrase")
            }
            let headerHash = Data(SHA256.hash(data: headerJSON))
            var index: UInt64 = 0
            while true {
                let head = [UInt8](try take(5))
                let (final, length) = try BackupFraming.chunkHead(head, index: index)
                let sealed = try take(length)
                let plain: Data
                do {
                    plain = try AES.GCM.open(
                        try AES.GCM.SealedBox(combined: sealed), using: backupKey,
                        authenticating: aad(headerHash, index, head[0]))
                } catch {
                    throw Failure("the backup does not authenticate at chunk \(index) (damaged or altered)")
                }
                try parser.feed(plain)
                index += 1
                if final { break }
            }
        } catch let e as BackupFraming.Malformed {
            throw Failure(e.description)
        }
        let digest = Data(hasher.finalize())
        guard let mark = try input.read(upToCount: 1), mark == Data([UInt8(ascii: "S")]),
            let signature = try input.read(upToCount: 64), signature.count == 64
        else { throw Failure("the backup has no signature") }
        guard signer.isValidSignature(signature, for: digest) else {
            throw Failure("the backup's signature is invalid")
        }
        if let extra = try input.read(upToCount: 1), !extra.isEmpty { throw Failure("the backup has trailing bytes") }
        guard let manifest = parser.manifest, parser.finished else { throw Failure("the backup has no manifest") }
        guard manifest.files == parser.files else { throw Failure("the backup's manifest does not match its files") }
        let fingerprint = SHA256.hash(data: header.signer).map { String(format: "%02x", $0) }.joined()
        return Contents(header: header, manifest: manifest, signerFingerprint: fingerprint)
    }

    /// Follows the decrypted entry stream (`BackupFraming.EntryParser`): hashes each file, hands its bytes to
    /// `extract`, and keeps the manifest.
    struct EntryReader {
        let extract: ((String, Data, Bool) throws -> Void)?
        var parser = BackupFraming.EntryParser()
        var current: (name: String, size: Int64, digest: SHA256)?
        var files: [Entry] = []
        var manifest: Manifest?
        var finished: Bool { parser.finished }

        init(extract: ((String, Data, Bool) throws -> Void)?) { self.extract = extract }

        mutating func feed(_ data: Data) throws {
            for event in try parser.feed(data) {
                switch event {
                case .file(let name, let size):
                    current = (name, size, SHA256())
                case .bytes(let bytes, let last):
                    guard var file = current else { throw Failure("the backup has a malformed entry") }
                    file.digest.update(data: bytes)
                    try extract?(file.name, bytes, last)
                    if last {
                        files.append(
                            Entry(
                                name: file.name, size: file.size,
                                sha256: file.digest.finalize().map { String(format: "%02x", $0) }.joined()))
                        current = nil
                    } else {
                        current = file
                    }
                case .manifest(let json):
                    guard let parsed = try? JSONDecoder().decode(Manifest.self, from: json) else {
                        throw Failure("the backup's manifest is malformed")
                    }
                    manifest = parsed
                }
            }
        }
    }
}
