import Foundation
import Logging
import PostgresNIO

/// The statements nearly every request runs (read a record, write one with its index entries, add an audit event),
/// as named prepared statements: PostgreSQL then parses and plans each once per connection instead of once per call.
/// Unprepared, parsing and planning took a third of the database's CPU under a KMIP Get load.
///
/// `storage.postgres_prepared_statements = false` runs the same text unprepared, for a pooler that hands each
/// transaction a different server connection and does not track prepared statements (PgBouncer before 1.21 in
/// transaction mode).
protocol HotStatement {
    /// The statement, with `$n` parameters.
    static var sql: String { get }
}

/// A `HotStatement` as PostgresNIO's prepared statement (prepared on a connection at its first use there).
struct Prepared<Text: HotStatement>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    static var name: String { "gatehouse_" + String(describing: Text.self) }
    static var sql: String { Text.sql }
    let bindings: PostgresBindings
    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

extension PostgresConnection {
    /// Runs a hot statement, prepared or not, and reads every row.
    func run<Text: HotStatement>(_: Text.Type, _ binds: PostgresBindings, prepared: Bool, logger: Logger) async throws
        -> [PostgresRow]
    {
        var rows: [PostgresRow] = []
        if prepared {
            for try await row in try await execute(Prepared<Text>(bindings: binds), logger: logger) { rows.append(row) }
        } else {
            for try await row in try await query(PostgresQuery(unsafeSQL: Text.sql, binds: binds), logger: logger) {
                rows.append(row)
            }
        }
        return rows
    }
}

/// The columns of a record, in `RecordRow`'s order.
let recordColumns = "kind, id, scope, name, version, body, created_at, updated_at"
typealias RecordRow = (String, String, String, String?, Int64, Data, Int64, Int64)

enum GetRecord: HotStatement {
    static let sql = "SELECT \(recordColumns) FROM records WHERE kind = $1 AND id = $2"
}

enum InsertRecord: HotStatement {
    static let sql = """
        INSERT INTO records (kind, id, scope, name, version, body, created_at, updated_at)
        VALUES ($1, $2, $3, $4, 1, $5, $6, $7)
        """
}

/// The record and its index entries in one statement: parameters 1–7 as `InsertRecord`, then index names, scopes,
/// keys and unique flags as arrays.
enum InsertIndexedRecord: HotStatement {
    static let sql = """
        WITH inserted AS (
            INSERT INTO records (kind, id, scope, name, version, body, created_at, updated_at)
            VALUES ($1, $2, $3, $4, 1, $5, $6, $7)
            RETURNING kind, id)
        INSERT INTO record_index (kind, idx, scope, key, id, uniq)
        SELECT inserted.kind, t.i, t.s, t.k, inserted.id, t.u
        FROM inserted, unnest($8::TEXT[], $9::TEXT[], $10::BYTEA[], $11::BOOLEAN[]) AS t(i, s, k, u)
        """
}

/// kind, id, expected version, scope, name, body, updated_at.
enum UpdateRecord: HotStatement {
    static let sql = """
        UPDATE records SET scope = $4, name = $5, version = version + 1, body = $6, updated_at = $7
        WHERE kind = $1 AND id = $2 AND version = $3
        RETURNING \(recordColumns)
        """
}

/// As `UpdateRecord`, then the index entries that go (names, scopes, keys: 8–10) and come (11–14), only if the row
/// moved.
enum UpdateIndexedRecord: HotStatement {
    static let sql = """
        WITH upd AS (
            UPDATE records SET scope = $4, name = $5, version = version + 1, body = $6, updated_at = $7
            WHERE kind = $1 AND id = $2 AND version = $3
            RETURNING \(recordColumns)),
        gone AS (
            DELETE FROM record_index WHERE kind = $1 AND id = $2 AND EXISTS (SELECT 1 FROM upd)
              AND (idx, scope, key) IN (SELECT * FROM unnest($8::TEXT[], $9::TEXT[], $10::BYTEA[]))),
        added AS (
            INSERT INTO record_index (kind, idx, scope, key, id, uniq)
            SELECT upd.kind, t.i, t.s, t.k, upd.id, t.u
            FROM upd, unnest($11::TEXT[], $12::TEXT[], $13::BYTEA[], $14::BOOLEAN[]) AS t(i, s, k, u))
        SELECT \(recordColumns) FROM upd
        """
}

enum AddPendingAudit: HotStatement {
    static let sql =
        "INSERT INTO audit_pending (id, chain, ts, type, actor, project, body) VALUES ($1, $2, $3, $4, $5, $6, $7)"
}

enum AppendAudit: HotStatement {
    static let sql = "SELECT gatehouse_audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
}
