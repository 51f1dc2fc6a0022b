import CSQLite
import Foundation
import StorageAPI

// SQLite's destructor sentinel meaning "copy the buffer now".
let sqliteTransient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

/// A value bound to or read from a SQLite statement.
enum SQLiteValue: Sendable {
    case int(Int64)
    case text(String)
    case blob(Data)
    case null
}

/// A thin, non-thread-safe wrapper over one `sqlite3*`. Callers serialize access.
///
/// Prepared statements are cached by SQL text (the store runs a few dozen distinct statements over and over;
/// parsing them again was a tenth of the CPU of an ACME request), reset and unbound after every use.
final class SQLiteConnection: @unchecked Sendable {
    let handle: OpaquePointer
    let path: String
    private var statements: [String: OpaquePointer] = [:]
    static let maxCachedStatements = 256

    init(path: String) throws {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close_v2(db) }
            throw StorageError(.unavailable, "open \(path): \(message)")
        }
        self.handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
    }

    /// Whether no transaction is open on this connection.
    var isAutocommit: Bool { sqlite3_get_autocommit(handle) != 0 }

    deinit {
        for stmt in statements.values { sqlite3_finalize(stmt) }
        sqlite3_close_v2(handle)
    }

    func error(_ rc: Int32, _ context: String) -> StorageError {
        let message = String(cString: sqlite3_errmsg(handle))
        switch rc & 0xff {
        case SQLITE_CONSTRAINT: return StorageError(.uniqueViolation, "\(context): \(message)")
        case SQLITE_BUSY, SQLITE_LOCKED: return StorageError(.transientConflict, "\(context): \(message)")
        case SQLITE_FULL: return StorageError(.unavailable, "\(context): disk full: \(message)")
        case SQLITE_CORRUPT, SQLITE_NOTADB: return StorageError(.corrupt, "\(context): \(message)")
        default: return StorageError(.unavailable, "\(context): \(message) (\(rc))")
        }
    }

    /// Runs one or more statements without parameters or results (a single statement goes through the cache).
    func execute(_ sql: String) throws {
        // A byte scan: `String.contains(_: StringProtocol)` goes through Foundation's locale-aware search.
        if !sql.utf8.contains(UInt8(ascii: ";")) {
            try query(sql)
            return
        }
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errmsg)
        if let errmsg { sqlite3_free(errmsg) }
        if rc != SQLITE_OK { throw error(rc, sql.prefix(40).description) }
    }

    /// Runs one statement with parameters and returns its rows.
    @discardableResult
    func query(_ sql: String, _ binds: [SQLiteValue] = []) throws -> [[SQLiteValue]] {
        var rc: Int32
        let stmt: OpaquePointer
        if let cached = statements[sql] {
            stmt = cached
        } else {
            var prepared: OpaquePointer?
            rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
            guard rc == SQLITE_OK, let prepared else { throw error(rc, "prepare") }
            if statements.count >= Self.maxCachedStatements {
                for old in statements.values { sqlite3_finalize(old) }
                statements.removeAll()
            }
            statements[sql] = prepared
            stmt = prepared
        }
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        for (i, value) in binds.enumerated() {
            let idx = Int32(i + 1)
            switch value {
            case .int(let v): rc = sqlite3_bind_int64(stmt, idx, v)
            case .text(let v): rc = sqlite3_bind_text(stmt, idx, v, -1, sqliteTransient)
            case .blob(let v):
                rc = v.withUnsafeBytes { buf in
                    // A zero-length blob must still be a blob, not NULL.
                    sqlite3_bind_blob(
                        stmt, idx, buf.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buf.count), sqliteTransient
                    )
                }
            case .null: rc = sqlite3_bind_null(stmt, idx)
            }
            if rc != SQLITE_OK { throw error(rc, "bind") }
        }
        var rows: [[SQLiteValue]] = []
        while true {
            rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, "step") }
            let n = sqlite3_column_count(stmt)
            var row: [SQLiteValue] = []
            row.reserveCapacity(Int(n))
            for c in 0..<n {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(stmt, c)))
                case SQLITE_TEXT:
                    if let p = sqlite3_column_text(stmt, c) {
                        row.append(.text(String(cString: p)))
                    } else {
                        row.append(.null)
                    }
                case SQLITE_BLOB:
                    let count = Int(sqlite3_column_bytes(stmt, c))
                    if let p = sqlite3_column_blob(stmt, c), count > 0 {
                        row.append(.blob(Data(bytes: p, count: count)))
                    } else {
                        row.append(.blob(Data()))
                    }
                case SQLITE_NULL: row.append(.null)
                default: row.append(.null)
                }
            }
            rows.append(row)
        }
        return rows
    }

    var changes: Int { Int(sqlite3_changes(handle)) }
}

extension SQLiteValue {
    var int: Int64? { if case .int(let v) = self { return v } else { return nil } }
    var text: String? { if case .text(let v) = self { return v } else { return nil } }
    var blob: Data? {
        switch self {
        case .blob(let v): return v
        case .text(let v): return Data(v.utf8)
        default: return nil
        }
    }
}
