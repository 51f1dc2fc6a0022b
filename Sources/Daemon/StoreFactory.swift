import DaemonConfig
import Engine
import EngineAPI
import Foundation
import HSM
import Logging
import StorageAPI
import StoragePostgres
import StorageS3
import StorageSQLite

/// Opens the configured store and engine. Every failure becomes one clear sentence.
public enum StoreFactory {
    public static func storage(_ config: GatehouseConfiguration, logger: Logger) throws -> any Storage {
        switch config.storage {
        case .sqlite(let path):
            do {
                return try SQLiteStorage(path: path)
            } catch let e as StorageError {
                throw DaemonError("cannot open the SQLite store: \(e.detail)")
            }
        case .postgres(let url, let prepared):
            do {
                return try PostgresStorage(
                    url: url, logger: logger, keepConnections: true, preparedStatements: prepared)
            } catch let e as StorageError {
                throw DaemonError("storage.postgres_url: \(e.detail)")
            }
        }
    }

    public static func rootKeyProvider(_ config: GatehouseConfiguration) throws -> any RootKeyProvider {
        try rootKeyProvider(config.rootKey)
    }

    public static func rootKeyProvider(_ source: RootKeySource) throws -> any RootKeyProvider {
        switch source {
        case .file(let path): return FileRootKeyProvider(path: path)
        case .environment(let variable): return EnvironmentRootKeyProvider(variable: variable)
        case .pkcs11(let uri):
            do {
                return PKCS11RootKeyProvider(uri: try PKCS11URI(parsing: uri))
            } catch let e as EngineError {
                throw DaemonError("root_key.pkcs11: \(e.message)")
            }
        }
    }

    /// Loads the configured root key. An HSM that is unreachable, a wrong PIN or an unknown key label is a
    /// `DaemonError` with `rootKeyUnavailable` set (the daemon waits sealed for it).
    public static func loadRootKey(_ config: GatehouseConfiguration) throws -> LoadedRootKeyProvider {
        let provider = try rootKeyProvider(config)
        do {
            return LoadedRootKeyProvider(try provider.loadRootKey(), descriptor: provider.descriptor)
        } catch let e as EngineError {
            if case .pkcs11 = config.rootKey {
                throw DaemonError("root key unavailable: \(e.message)", rootKeyUnavailable: true)
            }
            throw DaemonError(e.message)
        }
    }

    /// Where session recordings are kept (`pam.recording_store`): the shared PostgreSQL store, an S3-compatible
    /// bucket, or this node's directory. Throws when the S3 store has no credentials to sign with.
    public static func recordingStore(
        _ config: GatehouseConfiguration, storage: any Storage,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> any RecordingStore {
        switch config.pamRecordingStore {
        case .postgres:
            if let pg = storage as? PostgresStorage { return pg.recordings }
        case .s3:
            if let s3 = config.pamRecordingS3 {
                do {
                    let credentials = try S3Credentials.resolve(
                        environment: environment, file: s3.credentialsFile, profile: s3.profile)
                    let location = S3Location(
                        endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, prefix: s3.prefix,
                        pathStyle: s3.pathStyle,
                        caFile: s3.caFile)
                    return S3RecordingStore(client: try S3Client(location: location, credentials: credentials))
                } catch let e as StorageError {
                    throw DaemonError("pam.recording_store = \"s3\": " + e.detail)
                }
            }
        case .local: break
        }
        return LocalRecordingStore(directory: recordingDirectory(config))
    }

    /// Where the PostgreSQL proxy writes session recordings (the store itself, or the spool of a shared store):
    /// `<data_dir>/recordings`.
    public static func recordingDirectory(_ config: GatehouseConfiguration) -> String {
        (config.dataDirectory as NSString).appendingPathComponent("recordings")
    }

    /// This data directory's node id (`<data>/node-id`, created on first use): the name of the node's audit chain,
    /// so a restarted daemon continues its chain (and seals what it left pending) instead of starting another.
    public static func nodeID(_ config: GatehouseConfiguration) -> String {
        let path = (config.dataDirectory as NSString).appendingPathComponent("node-id")
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !id.isEmpty, id.utf8.count <= 64,
                id.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || $0 == "-" })
            {
                return id
            }
        }
        let id = GatehouseEngine.newNodeID()
        try? FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(
            atPath: path, contents: Data((id + "\n").utf8), attributes: [.posixPermissions: 0o600])
        return id
    }

    /// Opens storage and the engine. `cli`: a command run beside the daemon, which writes its own audit chain
    /// (`<node>.cli`) so that it never competes with the daemon's.
    /// Opens the store and the engine for a local operator command, runs `body`, then closes the store (after an
    /// error too), so nothing of the command outlives it.
    /// `recordingDirectory`: read recordings from this directory instead of the configured recording store.
    public static func withEngine<T: Sendable>(
        _ config: GatehouseConfiguration, logger: Logger, recordingDirectory: String? = nil,
        _ body: (GatehouseEngine) async throws -> T
    ) async throws -> T {
        let (engine, storage) = try await engine(
            config, logger: logger, cli: true, recordingDirectory: recordingDirectory)
        do {
            let value = try await body(engine)
            try? await storage.close()
            return value
        } catch {
            try? await storage.close()
            throw error
        }
    }

    public static func engine(
        _ config: GatehouseConfiguration, logger: Logger, cli: Bool = false, pamConnector: (any PAMConnector)? = nil,
        pkiBaseURL: @escaping @Sendable () -> String = { "https://127.0.0.1:8443" },
        kmipClientCAsCreated: @escaping @Sendable ([String]) -> Void = { _ in }, recordingDirectory: String? = nil
    ) async throws -> (GatehouseEngine, any Storage) {
        let rootKey = try loadRootKey(config)
        let storage = try storage(config, logger: logger)
        let node = nodeID(config) + (cli ? ".cli" : "")
        let recordings: any RecordingStore
        do {
            recordings =
                try recordingDirectory.map { LocalRecordingStore(directory: $0) }
                ?? recordingStore(config, storage: storage)
        } catch {
            try? await storage.close()
            throw error
        }
        do {
            let engine = try await GatehouseEngine.open(
                storage: storage,
                rootKey: rootKey,
                bootstrapAdmins: Set(config.adminCommonNames), logger: logger, node: node, recordings: recordings,
                pamConnector: pamConnector, pkiBaseURL: pkiBaseURL, kmipClientCAsCreated: kmipClientCAsCreated,
                rootKeyResolver: rootKeyResolver)
            // A `rotate-root-key` of a key file interrupted after the switch but before its rename: the store's root is
            // <file>.new (found through the store's record of it); finish the rename.
            if case .file(let path) = config.rootKey, engine.rootKeyDescriptors.first == "file:\(path).new",
                FileManager.default.fileExists(atPath: path + ".new")
            {
                guard rename(path + ".new", path) == 0 else {
                    throw DaemonError("the store is wrapped under \(path).new but it cannot be renamed to \(path)")
                }
                try await engine.renameRootKey(from: "file:\(path).new", to: "file:" + path)
                logger.notice("finished an interrupted root key rotation", metadata: ["keyFile": "\(path)"])
            }
            return (engine, storage)
        } catch let e as EngineError {
            try? await storage.close()
            throw DaemonError(
                e.message, rootKeyUnavailable: e.diagnostic == Keyring.rootKeyUnavailableDiagnostic)
        } catch {
            try? await storage.close()
            throw error
        }
    }

    /// A consistent copy of a live SQLite store (SQLite's online backup API), for `gatehouse backup`.
    public static func snapshotSQLite(from database: String, to copy: String) throws -> Int64 {
        try SQLiteStorage.onlineBackup(from: database, to: copy)
    }

    /// Loads a root the store names (`file:PATH`, `env:NAME`, `pkcs11:…`), for a node whose configuration names
    /// another one (during or after an online switch).
    public static let rootKeyResolver: Keyring.RootResolver = { descriptor in
        let source: RootKeySource
        if descriptor.hasPrefix("file:") {
            source = .file(path: String(descriptor.dropFirst(5)))
        } else if descriptor.hasPrefix("env:") {
            source = .environment(variable: String(descriptor.dropFirst(4)))
        } else if descriptor.lowercased().hasPrefix("pkcs11:") {
            source = .pkcs11(uri: descriptor)
        } else {
            throw EngineError(.unavailable, "unknown kind of root key \(descriptor)")
        }
        do {
            return try rootKeyProvider(source).loadRootKey()
        } catch let e as DaemonError {
            throw EngineError(.unavailable, e.description)
        }
    }
}

/// A start-up or command failure with a message for the operator.
public struct DaemonError: Error, CustomStringConvertible {
    public var description: String
    /// The root key could not be loaded (an HSM missing or unreachable, a wrong PIN, an unknown key label): the
    /// daemon waits sealed, serving only `/readyz` with the reason, and tries again.
    public var rootKeyUnavailable = false
    public init(_ d: String, rootKeyUnavailable: Bool = false) {
        description = d
        self.rootKeyUnavailable = rootKeyUnavailable
    }
}
