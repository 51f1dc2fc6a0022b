import DaemonConfig
import Engine
import Foundation
import ServerSupport

/// The first-start step (`gatehouse init`, and implicitly `gatehouse serve` on an empty data directory):
/// the data directory (0700), the root key file (0600) when the key comes from a file, and the development PKI.
public enum FirstStart {
    public struct Result: Sendable {
        public var created: [String]
        public var pki: DevelopmentPKI
    }

    public static func run(_ config: GatehouseConfiguration) throws -> Result {
        let fm = FileManager.default
        var created: [String] = []
        if !fm.fileExists(atPath: config.dataDirectory) {
            do {
                try fm.createDirectory(
                    atPath: config.dataDirectory, withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700])
            } catch {
                throw DaemonError(
                    "cannot create the data directory \(config.dataDirectory): \(error.localizedDescription)")
            }
            created.append(config.dataDirectory)
        }
        if case .file(let path) = config.rootKey, !fm.fileExists(atPath: path) {
            // A new key for an existing store would lock its secrets away for good: only create one for a new store.
            if case .sqlite(let db) = config.storage, fm.fileExists(atPath: db),
                ((try? fm.attributesOfItem(atPath: db)[.size] as? NSNumber)?.intValue ?? 0) > 0
            {
                throw DaemonError(
                    "the root key file \(path) is missing but the store \(db) exists; restore the key file (a new key cannot open it)"
                )
            }
            do {
                try FileRootKeyProvider.create(path: path)
            } catch {
                throw DaemonError("cannot create the root key file \(path): \(error)")
            }
            created.append(path)
        }
        let pki = DevelopmentPKI(directory: config.certsDirectory)
        do {
            created += try pki.ensure(adminCommonName: config.adminCommonNames.first ?? "gatehouse-admin")
        } catch {
            throw DaemonError("cannot create the development PKI in \(config.certsDirectory): \(error)")
        }
        do {
            created += try GatewayKey.ensure(path: GatewayKey.defaultPath(dataDirectory: config.dataDirectory))
        } catch {
            throw DaemonError("cannot create the gateway SSH key: \(error)")
        }
        return Result(created: created, pki: pki)
    }
}
