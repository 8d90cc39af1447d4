import GRDB
import GRDBSQLite

/// The writer's hottest statements (each accepted event's block check, coalescing look-ups and
/// insert), run on SQLite's own API beneath GRDB.
///
/// GRDB's `execute(arguments:)` and `fetchOne`/`fetchAll` spend about 12,000 instructions a
/// statement on its own machinery (the arguments' `[DatabaseValue]`, their validation, temporary
/// bindings, a cursor object, the observation hooks), more than SQLite spends on most of these
/// look-ups (BENCHMARKS.md, "Issue 31, sixth round"). Here a statement GRDB prepared and cached
/// (`cachedStatement`) is bound with GRDB's own conformances (`StatementBinding`), stepped with
/// `sqlite3_step`, and read with GRDB's column conversions (`StatementColumnConvertible`), so
/// values are stored and read exactly as through GRDB (text up to a NUL, as GRDB binds it: every
/// field that could hold one is refused with U+0000 by `FieldRules`).
///
/// What GRDB's path checks and this one needs, it checks too:
/// - a statement runs only inside a transaction: once SQLite has rolled one back by itself (a
///   full disk, `SQLITE_FULL`), a statement would otherwise run and commit alone, outside it
///   (GRDB's `checkForAbortedTransaction`, with the same error: `SQLITE_ABORT`);
/// - the number of arguments is the statement's;
/// - a failed step throws a `DatabaseError` with SQLite's extended code and message, and the
///   statement is reset, its bindings cleared, whatever happens.
/// What it skips is what the outbox does not use: transaction observers and observed regions
/// (none is registered), suspension (an Apple platform's background mode).
enum DirectStatement {
    /// Runs `sql` to its end (an insert, an update).
    static func execute(_ sql: String, _ arguments: [(any StatementBinding)?], in db: Database) throws {
        try run(sql, arguments, in: db) { _ in true }
    }

    /// The first column of the first row, `nil` when there is no row or it is NULL.
    static func fetchOne<Value: StatementColumnConvertible>(
        _ type: Value.Type, _ sql: String, _ arguments: [(any StatementBinding)?], in db: Database
    ) throws -> Value? {
        var value: Value?
        try run(sql, arguments, in: db) { statement in
            value = Value.fromStatement(statement, atUncheckedIndex: 0)
            return false
        }
        return value
    }

    /// The first column of every row.
    /// - Throws: a `DatabaseError` when a row's first column is NULL or not a `Value`.
    static func fetchAll<Value: StatementColumnConvertible>(
        _ type: Value.Type, _ sql: String, _ arguments: [(any StatementBinding)?], in db: Database
    ) throws -> [Value] {
        var values: [Value] = []
        try run(sql, arguments, in: db) { statement in
            guard let value = Value.fromStatement(statement, atUncheckedIndex: 0) else {
                throw DatabaseError(resultCode: .SQLITE_MISMATCH, message: "a NULL or another type where \(Value.self) was expected", sql: sql)
            }
            values.append(value)
            return true
        }
        return values
    }

    /// Binds and steps the statement, calling `row` for each row until it returns false.
    private static func run(
        _ sql: String, _ arguments: [(any StatementBinding)?], in db: Database, row: (SQLiteStatement) throws -> Bool
    ) throws {
        guard db.isInsideTransaction else {
            throw DatabaseError(resultCode: .SQLITE_ABORT, message: "Transaction was aborted", sql: sql)
        }
        let prepared = try db.cachedStatement(sql: sql)
        let statement = prepared.sqliteStatement
        guard Int(sqlite3_bind_parameter_count(statement)) == arguments.count else {
            throw DatabaseError(
                resultCode: .SQLITE_MISUSE, message: "wrong number of statement arguments: \(arguments.count), not \(sqlite3_bind_parameter_count(statement))", sql: sql)
        }
        sqlite3_reset(statement)
        defer {
            // Nothing bound stays in memory after the call (a connection token is a credential).
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (offset, argument) in arguments.enumerated() {
            let index = CInt(offset + 1)
            let code = argument?.bind(to: statement, at: index) ?? sqlite3_bind_null(statement, index)
            guard code == SQLITE_OK else { throw failure(code, sql: sql, in: db) }
        }
        while true {
            switch sqlite3_step(statement) {
            case SQLITE_ROW:
                guard try row(statement) else { return }
            case SQLITE_DONE:
                return
            case let code:
                throw failure(code, sql: sql, in: db)
            }
        }
    }

    private static func failure(_ code: CInt, sql: String, in db: Database) -> DatabaseError {
        let message = db.sqliteConnection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
    }
}
