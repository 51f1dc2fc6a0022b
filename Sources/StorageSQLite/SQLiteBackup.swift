import CSQLite
import Foundation
import StorageAPI

extension SQLiteStorage {
    /// Copies the database at `source` to a new file `destination` with SQLite's online backup API: one step over
    /// the whole database inside one read transaction, so the copy is a consistent snapshot while writers go on (in
    /// WAL mode readers do not block them). Returns the copy's size in bytes.
    public static func onlineBackup(from source: String, to destination: String) throws -> Int64 {
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw StorageError(.uniqueViolation, "\(destination) exists")
        }
        var src: OpaquePointer?
        guard sqlite3_open_v2(source, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let src
        else {
            let message = src.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let src { sqlite3_close_v2(src) }
            throw StorageError(.unavailable, "open \(source): \(message)")
        }
        defer { sqlite3_close_v2(src) }
        sqlite3_busy_timeout(src, 5000)
        var dst: OpaquePointer?
        guard
            sqlite3_open_v2(destination, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
                == SQLITE_OK, let dst
        else {
            if let dst { sqlite3_close_v2(dst) }
            throw StorageError(.unavailable, "cannot create \(destination)")
        }
        defer { sqlite3_close_v2(dst) }
        guard let backup = sqlite3_backup_init(dst, "main", src, "main") else {
            throw StorageError(.unavailable, "backup of \(source): \(String(cString: sqlite3_errmsg(dst)))")
        }
        var rc: Int32
        var attempts = 0
        repeat {
            rc = sqlite3_backup_step(backup, -1)
            if rc == SQLITE_BUSY || rc == SQLITE_LOCKED {
                attempts += 1
                usleep(20_000)
            }
        } while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && attempts < 500
        let finished = sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE, finished == SQLITE_OK else {
            throw StorageError(.unavailable, "backup of \(source) failed: \(String(cString: sqlite3_errmsg(dst)))")
        }
        // The copy is a plain rollback-journal database file, complete on its own.
        _ = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", nil, nil, nil)
        let size = (try? FileManager.default.attributesOfItem(atPath: destination)[.size] as? NSNumber)?.int64Value
        return size ?? 0
    }
}
