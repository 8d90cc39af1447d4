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
    static func execute(_ sql: DirectSQL, _ arguments: [(any StatementBinding)?], in statements: DirectStatements) throws {
        try run(sql, arguments, in: statements) { _ in true }
    }

    /// The first column of the first row, `nil` when there is no row or it is NULL.
    static func fetchOne<Value: StatementColumnConvertible>(
        _ type: Value.Type, _ sql: DirectSQL, _ arguments: [(any StatementBinding)?], in statements: DirectStatements
    ) throws -> Value? {
        var value: Value?
        try run(sql, arguments, in: statements) { statement in
            value = Value.fromStatement(statement, atUncheckedIndex: 0)
            return false
        }
        return value
    }

    /// The first column of every row.
    /// - Throws: a `DatabaseError` when a row's first column is NULL or not a `Value`.
    static func fetchAll<Value: StatementColumnConvertible>(
        _ type: Value.Type, _ sql: DirectSQL, _ arguments: [(any StatementBinding)?], in statements: DirectStatements
    ) throws -> [Value] {
        var values: [Value] = []
        try run(sql, arguments, in: statements) { statement in
            guard let value = Value.fromStatement(statement, atUncheckedIndex: 0) else {
                throw DatabaseError(resultCode: .SQLITE_MISMATCH, message: "a NULL or another type where \(Value.self) was expected", sql: sql.text)
            }
            values.append(value)
            return true
        }
        return values
    }

    /// Binds and steps the statement, calling `row` for each row until it returns false.
    private static func run(
        _ sql: DirectSQL, _ arguments: [(any StatementBinding)?], in statements: DirectStatements, row: (SQLiteStatement) throws -> Bool
    ) throws {
        let db = statements.db
        guard db.isInsideTransaction else {
            throw DatabaseError(resultCode: .SQLITE_ABORT, message: "Transaction was aborted", sql: sql.text)
        }
        let statement = try statements.prepared(sql)
        guard Int(sqlite3_bind_parameter_count(statement)) == arguments.count else {
            throw DatabaseError(
                resultCode: .SQLITE_MISUSE, message: "wrong number of statement arguments: \(arguments.count), not \(sqlite3_bind_parameter_count(statement))", sql: sql.text)
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

    private static func failure(_ code: CInt, sql: DirectSQL, in db: Database) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: sql.text)
    }
}

/// The text of one of ``DirectStatement``'s statements, written once (a `static let`): the
/// writer connection's statements are remembered by it (``DirectStatements``).
final class DirectSQL: Sendable {
    let text: String

    init(_ text: String) {
        self.text = text
    }
}

/// The statements the writer connection has run through ``DirectStatement``, each looked up in
/// GRDB's cache once for the connection instead of once a call: `cachedStatement` hashes and
/// compares the whole SQL text, about 1,700 to 2,500 instructions a look-up, four or more an
/// accepted event (BENCHMARKS.md, "Issue 31, sixth round" and "eighth round"). ``OutboxWriter``
/// keeps one for its connection and drops it when its thread ends; GRDB keeps owning the
/// statements (it finalizes them when the connection closes), and each is kept alive here too,
/// since GRDB could drop one from its cache meanwhile. Used only on the writer's thread.
final class DirectStatements: @unchecked Sendable {
    let db: Database
    private var found: [(sql: ObjectIdentifier, statement: Statement)] = []

    init(_ db: Database) {
        self.db = db
    }

    /// Whether `sql` was prepared here before (tests).
    func holds(_ sql: DirectSQL) -> Bool {
        found.contains { $0.sql == ObjectIdentifier(sql) }
    }

    fileprivate func prepared(_ sql: DirectSQL) throws -> SQLiteStatement {
        let key = ObjectIdentifier(sql)
        // A handful of statements: a look along an array beats a hash.
        for entry in found where entry.sql == key {
            return entry.statement.sqliteStatement
        }
        let statement = try db.cachedStatement(sql: sql.text)
        found.append((key, statement))
        return statement.sqliteStatement
    }
}
