import ArgumentParser
import Crypto
import Daemon
import DaemonConfig
import Engine
import EngineAPI
import ExtrasBase64
import Foundation
import StorageAPI

/// Where a backup's key comes from: a key file (base64 of 32 bytes, 0600) or a passphrase file.
struct BackupSecretOptions: ParsableArguments {
    @Option(help: "File holding the backup key (base64 of 32 bytes, mode 0600).") var keyFile: String?
    @Option(help: "File holding the backup passphrase (mode 0600; stretched with scrypt).") var passphraseFile: String?

    func secret() throws -> BackupArchive.Secret {
        switch (keyFile, passphraseFile) {
        case (let path?, nil):
            do {
                return .key(try FileRootKeyProvider(path: path).loadKey())
            } catch let e as EngineError {
                throw ValidationError(e.message.replacingOccurrences(of: "root key file", with: "backup key file"))
            }
        case (nil, let path?):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read the passphrase file \(path)")
            }
            do { try FileRootKeyProvider.requirePrivate(path, "the passphrase file") } catch let e as EngineError {
                throw ValidationError(e.message)
            }
            var bytes = [UInt8](data)
            while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
            guard bytes.count >= 12 else { throw ValidationError("the passphrase must be at least 12 characters") }
            return .passphrase(bytes)
        default:
            throw ValidationError("give exactly one of --key-file and --passphrase-file")
        }
    }
}

/// `gatehouse backup [create]` and `gatehouse backup verify`.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up the store (create, the default) or check a backup (verify).",
        subcommands: [BackupCreate.self, BackupVerify.self], defaultSubcommand: BackupCreate.self)
}

/// `gatehouse backup create`: an online, consistent, encrypted and signed backup of a SQLite store.
struct BackupCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Write an encrypted, signed backup of the store, the recordings and the certificates (online).",
        discussion: """
            Takes a consistent snapshot of the SQLite store with SQLite's online backup API while the daemon serves, \
            and adds the session recordings, the certificates and the node id. The archive is encrypted (AES-256-GCM, \
            in 1 MiB chunks) to a backup key file or a passphrase (scrypt), and signed with the appliance's backup \
            signing key. The root key is not included unless --include-root-key is given (a key file only): keep \
            it, or the HSM, apart from the backups. For PostgreSQL, back up with pg_dump (docs/operations.md) and \
            check the dump with `gatehouse backup verify --pg-dump`.
            """)
    @OptionGroup var options: ConfigOptions
    @OptionGroup var secretOptions: BackupSecretOptions
    @Option(help: "The backup file to create.") var out: String
    @Flag(help: "Include the root key file (the backup then opens with the backup secret alone).")
    var includeRootKey = false

    func run() async throws {
        let config = try options.load()
        let secret = try secretOptions.secret()
        guard case .sqlite(let database) = config.storage else {
            fail(
                "gatehouse backup covers a SQLite store; for PostgreSQL use pg_dump --format=custom (docs/operations.md) and check it with gatehouse backup verify --pg-dump"
            )
        }
        var rootKeyFile: String?
        if includeRootKey {
            guard case .file(let path) = config.rootKey else {
                fail("--include-root-key needs root_key.source = \"file\" (an HSM's key never leaves it)")
            }
            rootKeyFile = path
        }
        let started = ContinuousClock.now
        let snapshot = (config.dataDirectory as NSString).appendingPathComponent(
            "run/backup-\(getpid()).sqlite")
        try? FileManager.default.createDirectory(
            atPath: (snapshot as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        unlink(snapshot)
        defer { unlink(snapshot) }
        do {
            // One engine for the signing key and the audit event; the snapshot is SQLite's own, taken in between.
            try await StoreFactory.withEngine(config, logger: quietLogger()) { engine in
                let signer = try await engine.backupSigningKey()
                let storeBytes = try StoreFactory.snapshotSQLite(from: database, to: snapshot)
                let writer = try BackupArchive.Writer(path: out, secret: secret, signer: signer)
                do {
                    try writer.add(name: "store/gatehouse.sqlite", path: snapshot)
                    let recordings = files(under: StoreFactory.recordingDirectory(config), prefix: "recordings")
                    for (name, path) in recordings + files(under: config.certsDirectory, prefix: "certs") {
                        try writer.add(name: name, path: path)
                    }
                    let nodeFile = (config.dataDirectory as NSString).appendingPathComponent("node-id")
                    if FileManager.default.fileExists(atPath: nodeFile) {
                        try writer.add(name: "node-id", path: nodeFile)
                    }
                    if let rootKeyFile { try writer.add(name: "root.key", path: rootKeyFile) }
                    let manifest = try writer.finish(facts: [
                        "backend": "sqlite", "version": GatehouseVersion.current, "recordings": "\(recordings.count)",
                        "storeBytes": "\(storeBytes)", "rootKeyIncluded": "\(rootKeyFile != nil)",
                    ])
                    try await engine.recordBackup([
                        "files": "\(manifest.files.count)", "bytes": "\(writer.bytesWritten)",
                        "rootKeyIncluded": "\(rootKeyFile != nil)",
                    ])
                    let seconds = secondsSince(started)
                    let mb = Double(writer.bytesWritten) / 1_048_576
                    print(
                        "backup written: \(out) (\(manifest.files.count) files, \(String(format: "%.1f", mb)) MiB in \(String(format: "%.2f", seconds)) s, \(String(format: "%.1f", mb / max(seconds, 0.001))) MiB/s)"
                    )
                    print("signed by \(fingerprint(signer.publicKey.rawRepresentation))")
                } catch {
                    unlink(out)
                    throw error
                }
            }
        } catch let e as BackupArchive.Failure {
            fail(e.description)
        } catch let e as DaemonError {
            fail(e.description)
        } catch let e as EngineError {
            fail(e.message)
        } catch let e as StorageError {
            fail("cannot snapshot the store: \(e.detail)")
        }
    }
}

/// `gatehouse backup verify`: checks a backup without restoring it in place.
struct BackupVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a backup: a `gatehouse backup` archive, or (--pg-dump) a pg_dump of a PostgreSQL store.",
        discussion: """
            An archive: every chunk authenticates under the backup key or passphrase, every file matches the signed \
            manifest, and the signature verifies (--signer: and is this key's). Nothing is written.

            A PostgreSQL dump (pg_dump --format=custom): it is restored with pg_restore, in one transaction, into \
            --scratch-url, an empty database you provide (createdb). The restored store is opened with the configured \
            root key; every data key must unwrap, every audit chain must verify, and every ended session's recording \
            must be complete and untampered. Recordings are read from the dump (pam.recording_store = "postgres"), \
            the configured S3 bucket, or --recordings DIR (a copy of a node's recordings directory). The restored \
            tables are dropped afterwards unless --keep-scratch. Exits 1 if anything does not hold.
            """)
    @OptionGroup var options: ConfigOptions
    @OptionGroup var secretOptions: BackupSecretOptions
    @Argument(help: "A backup written by `gatehouse backup`.") var file: String?
    @Option(help: "The signer's fingerprint (as `gatehouse backup` printed it) the archive must carry.")
    var signer: String?
    @Option(help: "A PostgreSQL store's dump (pg_dump --format=custom) to check instead of an archive.")
    var pgDump: String?
    @Option(help: "An empty PostgreSQL database (postgres://user:password@host:port/db) to restore the dump into.")
    var scratchUrl: String?
    @Option(help: "A copy of the recordings directory to check the dump's sessions against.") var recordings: String?
    @Flag(help: "Leave the restored store in the scratch database.") var keepScratch = false

    func run() async throws {
        switch (file, pgDump) {
        case (let file?, nil): try verifyArchive(file)
        case (nil, let dump?): try await verifyDump(dump)
        default: throw ValidationError("give a backup file, or --pg-dump FILE (not both)")
        }
    }

    func verifyArchive(_ file: String) throws {
        let secret = try secretOptions.secret()
        let started = ContinuousClock.now
        do {
            let contents = try BackupArchive.read(path: file, secret: secret)
            if let signer, signer.lowercased() != contents.signerFingerprint {
                fail("the backup is signed by \(contents.signerFingerprint), not \(signer)")
            }
            let bytes = contents.manifest.files.reduce(Int64(0)) { $0 + $1.size }
            let facts = contents.manifest.facts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            print(
                "backup of \(contents.header.created): \(contents.manifest.files.count) files, \(String(format: "%.1f", Double(bytes) / 1_048_576)) MiB (\(facts.joined(separator: " ")))"
            )
            print("signed by \(contents.signerFingerprint)")
            print(
                "every chunk authenticates, every file matches the manifest, the signature verifies (\(String(format: "%.2f", secondsSince(started))) s)"
            )
        } catch let e as BackupArchive.Failure {
            fail(e.description)
        }
    }

    func verifyDump(_ dump: String) async throws {
        guard let scratchUrl else {
            throw ValidationError("--pg-dump needs --scratch-url (an empty database to restore the dump into)")
        }
        let config = try options.load()
        let report: PostgresDumpCheck.Report
        do {
            report = try await PostgresDumpCheck.run(
                dump: dump, scratchURL: scratchUrl, config: config, recordingDirectory: recordings,
                keepScratch: keepScratch, logger: quietLogger()
            ) { line in print(line) }
        } catch let e as DaemonError {
            fail(e.description)
        } catch let e as EngineError {
            fail("the dump does not open: \(e.message)\(e.diagnostic.isEmpty ? "" : " (\(e.diagnostic))")")
        }
        for problem in report.auditProblems.prefix(20) { print("audit: \(problem)") }
        for problem in report.recordingProblems.prefix(50) { print("recording \(problem)") }
        print(
            "\(report.projects) projects; \(report.sessions) ended sessions: \(report.complete) complete, \(report.deleted) deleted under retention, \(report.recordingProblems.count) missing, incomplete or tampered"
        )
        guard report.isSound else { fail("the dump does not verify") }
        print("the dump restores, opens with the root key, its audit chains verify and its recordings replay")
    }
}

/// `gatehouse restore`: checks a backup and restores it into a new data directory.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Check a backup's signature and every chunk, and restore it into a new data directory.",
        discussion: """
            The data directory (--data-dir) must not exist or be empty. Everything is written to a temporary \
            directory beside it and moved into place only once the whole archive has authenticated and its signature \
            verifies. Then the restored store is opened with the root key (the backup's own if it holds one, else \
            the configured one) and its audit chain verified.
            """)
    @OptionGroup var options: ConfigOptions
    @OptionGroup var secretOptions: BackupSecretOptions
    @Argument(help: "The backup file.") var file: String
    @Option(help: "The signer's fingerprint (as `gatehouse backup` printed it) the backup must carry.")
    var signer: String?

    func run() async throws {
        guard let dataDir = options.dataDir else {
            throw ValidationError("--data-dir (the new data directory) is required")
        }
        let secret = try secretOptions.secret()
        let fm = FileManager.default
        let target = (dataDir as NSString).standardizingPath
        if let existing = try? fm.contentsOfDirectory(atPath: target), !existing.isEmpty {
            fail("\(target) is not empty; restore into a new data directory")
        }
        let staging = target + ".restoring-\(getpid())"
        try? fm.removeItem(atPath: staging)
        let contents: BackupArchive.Contents
        do {
            try fm.createDirectory(
                atPath: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            var handle: FileHandle?
            contents = try BackupArchive.read(path: file, secret: secret) { name, bytes, last in
                let path = staging + "/" + (name == "store/gatehouse.sqlite" ? "gatehouse.sqlite" : name)
                if handle == nil {
                    try fm.createDirectory(
                        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                        attributes: [.posixPermissions: 0o700])
                    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
                    guard fd >= 0 else { throw BackupArchive.Failure("cannot create \(path)") }
                    handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
                }
                try handle?.write(contentsOf: bytes)
                if last {
                    try handle?.synchronize()
                    try handle?.close()
                    handle = nil
                }
            }
            if let signer, signer.lowercased() != contents.signerFingerprint {
                throw BackupArchive.Failure("the backup is signed by \(contents.signerFingerprint), not \(signer)")
            }
            try? fm.removeItem(atPath: target)  // an empty directory
            guard rename(staging, target) == 0 else {
                throw BackupArchive.Failure("cannot move the restored files to \(target)")
            }
        } catch let e as BackupArchive.Failure {
            try? fm.removeItem(atPath: staging)
            fail(e.description)
        }
        print(
            "restored \(contents.manifest.files.count) files into \(target) (backup of \(contents.header.created), signed by \(contents.signerFingerprint))"
        )
        // Open what was restored: the root key opens it, the signer is the store's own, the audit chain holds.
        var config = try options.load()
        config.storage = .sqlite(path: target + "/gatehouse.sqlite")
        if fm.fileExists(atPath: target + "/root.key") { config.rootKey = .file(path: target + "/root.key") }
        do {
            let (intact, detail, own) = try await StoreFactory.withEngine(config, logger: quietLogger()) { engine in
                let own = fingerprint(try await engine.backupSigningKey().publicKey.rawRepresentation)
                let report = try await engine.verifyAudit(.system("cli"))
                return (report.isIntact, "\(report)", own)
            }
            guard own == contents.signerFingerprint else {
                fail("restored, but the backup was not signed by the restored store's own key (\(own))")
            }
            guard intact else { fail("restored, but the audit chain does not verify: \(detail)") }
            print("the store opens with its root key; signed by its own backup key; audit chain intact")
        } catch let e as DaemonError {
            fail("restored, but the store does not open: \(e.description)")
        }
    }
}

/// Seconds elapsed since `start`, for the commands' summaries.
func secondsSince(_ start: ContinuousClock.Instant) -> Double {
    let elapsed = (ContinuousClock.now - start).components
    return Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
}

func fingerprint(_ publicKey: Data) -> String {
    SHA256.hash(data: publicKey).map { String(format: "%02x", $0) }.joined()
}

/// Regular files under `directory`, as (prefix/relative path, absolute path), in name order.
func files(under directory: String, prefix: String) -> [(String, String)] {
    guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
    var found: [(String, String)] = []
    while let relative = walker.nextObject() as? String {
        let path = (directory as NSString).appendingPathComponent(relative)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            found.append((prefix + "/" + relative, path))
        }
    }
    return found.sorted { $0.0 < $1.0 }
}
