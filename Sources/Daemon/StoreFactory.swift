import DaemonConfig
import Engine
import EngineAPI
import Foundation
import Logging
import StorageAPI
import StoragePostgres
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
        case .postgres(let url):
            do {
                return try PostgresStorage(url: url, logger: logger)
            } catch let e as StorageError {
                throw DaemonError("storage.postgres_url: \(e.detail)")
            }
        }
    }

    public static func rootKeyProvider(_ config: GatehouseConfiguration) -> any RootKeyProvider {
        switch config.rootKey {
        case .file(let path): return FileRootKeyProvider(path: path)
        case .environment(let variable): return EnvironmentRootKeyProvider(variable: variable)
        }
    }

    /// Opens storage and the engine.
    public static func engine(_ config: GatehouseConfiguration, logger: Logger) async throws -> (GatehouseEngine, any Storage) {
        let storage = try storage(config, logger: logger)
        do {
            let engine = try await GatehouseEngine.open(
                storage: storage, rootKey: rootKeyProvider(config),
                bootstrapAdmins: Set(config.adminCommonNames), logger: logger)
            return (engine, storage)
        } catch let e as EngineError where e.code == .cryptographicFailure {
            // An interrupted `rotate-root-key` may have re-wrapped the store under <file>.new: finish it.
            if case .file(let path) = config.rootKey, FileManager.default.fileExists(atPath: path + ".new"),
                let engine = try? await GatehouseEngine.open(
                    storage: storage, rootKey: FileRootKeyProvider(path: path + ".new"),
                    bootstrapAdmins: Set(config.adminCommonNames), logger: logger)
            {
                guard rename(path + ".new", path) == 0 else {
                    throw DaemonError("the store is wrapped under \(path).new but it cannot be renamed to \(path)")
                }
                logger.notice("finished an interrupted root key rotation", metadata: ["keyFile": "\(path)"])
                return (engine, storage)
            }
            try? await storage.close()
            throw DaemonError(e.message)
        } catch let e as EngineError {
            try? await storage.close()
            throw DaemonError(e.message)
        }
    }
}

/// A start-up or command failure with a message for the operator.
public struct DaemonError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
