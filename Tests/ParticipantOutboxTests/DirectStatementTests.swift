import Foundation
import GRDB
import GRDBSQLite
@testable import ParticipantOutbox
import Testing

/// The writer's statements on SQLite's own API (``DirectStatement``) store and read values as
/// GRDB does, run only inside a transaction, and leave nothing bound.
@Suite struct DirectStatementTests {
    func database() throws -> DatabaseQueue {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, s TEXT, b BLOB, i INTEGER, f INTEGER)")
        }
        return queue
    }

    static let insert = DirectSQL("INSERT INTO t (k, s, b, i, f) VALUES (?, ?, ?, ?, ?)")

    @Test("Values are stored as GRDB stores them: text, empty text, blobs, NULL, integers, booleans")
    func valuesAsGRDB() throws {
        let queue = try database()
        let rows: [[(any DatabaseValueConvertible)?]] = [
            ["a", "text é 🎉 \"quoted\"", Data([0, 1, 2, 255]), Int64.max, true],
            ["b", "", Data(), -1, false],
            ["c", nil, nil, nil, nil],
        ]
        try queue.write { db in
            for row in rows {
                try DirectStatement.execute(Self.insert, row.map { $0 as (any StatementBinding)? }, in: DirectStatements(db))
                try db.execute(sql: Self.insert.text, arguments: StatementArguments([row[0].map { "grdb-\($0)" }] + row.dropFirst()))
            }
        }
        try queue.read { db in
            for key in ["a", "b", "c"] {
                let direct = try #require(try Row.fetchOne(db, sql: "SELECT s, b, i, f, typeof(s) AS ts, typeof(b) AS tb FROM t WHERE k = ?", arguments: [key]))
                let grdb = try #require(try Row.fetchOne(db, sql: "SELECT s, b, i, f, typeof(s) AS ts, typeof(b) AS tb FROM t WHERE k = ?", arguments: ["grdb-\(key)"]))
                #expect(direct == grdb, "\(key): \(direct) against \(grdb)")
            }
            #expect(try String.fetchOne(db, sql: "SELECT s FROM t WHERE k = 'a'") == "text é 🎉 \"quoted\"")
            #expect(try Data.fetchOne(db, sql: "SELECT b FROM t WHERE k = 'a'") == Data([0, 1, 2, 255]))
        }
    }

    @Test("fetchOne gives the first row's first column, nil for no row or NULL; fetchAll every row's, and refuses a NULL")
    func fetching() throws {
        let queue = try database()
        try queue.write { db in
            for (key, value) in [("x", 3), ("y", 1), ("z", 2)] {
                try DirectStatement.execute(Self.insert, [key, "s", nil, value, nil], in: DirectStatements(db))
            }
            #expect(try DirectStatement.fetchOne(Int64.self, DirectSQL("SELECT i FROM t ORDER BY i"), [], in: DirectStatements(db)) == 1)
            #expect(try DirectStatement.fetchOne(String.self, DirectSQL("SELECT k FROM t WHERE i = ?"), [2], in: DirectStatements(db)) == "z")
            #expect(try DirectStatement.fetchOne(Int64.self, DirectSQL("SELECT i FROM t WHERE k = ?"), ["none"], in: DirectStatements(db)) == nil)
            #expect(try DirectStatement.fetchOne(Int64.self, DirectSQL("SELECT f FROM t WHERE k = ?"), ["x"], in: DirectStatements(db)) == nil)
            #expect(try DirectStatement.fetchOne(Bool.self, DirectSQL("SELECT EXISTS (SELECT 1 FROM t WHERE k = ?)"), ["y"], in: DirectStatements(db)) == true)
            #expect(try DirectStatement.fetchAll(Int64.self, DirectSQL("SELECT i FROM t ORDER BY i DESC"), [], in: DirectStatements(db)) == [3, 2, 1])
            #expect(try DirectStatement.fetchAll(Int64.self, DirectSQL("SELECT i FROM t WHERE i > ?"), [5], in: DirectStatements(db)) == [])
            let null = #expect(throws: DatabaseError.self) { try DirectStatement.fetchAll(Int64.self, DirectSQL("SELECT f FROM t"), [], in: DirectStatements(db)) }
            #expect(null?.resultCode == .SQLITE_MISMATCH)
        }
    }

    @Test("Outside a transaction (as after SQLite rolled one back by itself) nothing runs: SQLITE_ABORT")
    func onlyInsideATransaction() throws {
        let queue = try database()
        let error = #expect(throws: DatabaseError.self) {
            try queue.writeWithoutTransaction { db in try DirectStatement.execute(Self.insert, ["k", "s", nil, 1, nil], in: DirectStatements(db)) }
        }
        #expect(error?.resultCode == .SQLITE_ABORT)
        #expect(try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t") } == 0)
    }

    @Test("A failed step throws SQLite's extended code and message, and the statement runs again afterwards")
    func failures() throws {
        let queue = try database()
        try queue.write { db in
            try DirectStatement.execute(Self.insert, ["k", "s", nil, 1, nil], in: DirectStatements(db))
            let duplicate = #expect(throws: DatabaseError.self) { try DirectStatement.execute(Self.insert, ["k", "s", nil, 2, nil], in: DirectStatements(db)) }
            #expect(duplicate?.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE)
            #expect(duplicate?.message?.contains("t.k") == true)
            #expect(duplicate?.sql == Self.insert.text)
            try DirectStatement.execute(Self.insert, ["k2", "s", nil, 2, nil], in: DirectStatements(db))
            let arguments = #expect(throws: DatabaseError.self) { try DirectStatement.execute(Self.insert, ["k3"], in: DirectStatements(db)) }
            #expect(arguments?.resultCode == .SQLITE_MISUSE)
        }
        #expect(try queue.read { db in try String.fetchAll(db, sql: "SELECT k FROM t ORDER BY k") } == ["k", "k2"])
    }

    @Test("Nothing stays bound after a call: a connection token is not left in the statement")
    func bindingsCleared() throws {
        let queue = try database()
        try queue.write { db in
            try DirectStatement.execute(Self.insert, ["k", "secret-token", nil, 1, nil], in: DirectStatements(db))
            _ = try? DirectStatement.execute(Self.insert, ["k", "secret-again", nil, 1, nil], in: DirectStatements(db))
            let statement = try db.cachedStatement(sql: Self.insert.text).sqliteStatement
            let expanded = try #require(sqlite3_expanded_sql(statement))
            defer { sqlite3_free(expanded) }
            #expect(!String(cString: expanded).contains("secret"))
            #expect(sqlite3_stmt_busy(statement) == 0)
        }
    }

    @Test("A transaction's statements, remembered for it, run again and again; once it ends the connection closes with none left behind")
    func rememberedForATransaction() throws {
        let queue = try database()
        let count = DirectSQL("SELECT COUNT(*) FROM t WHERE i >= ?")
        let sameText = DirectSQL(count.text)
        try queue.write { db in
            let statements = DirectStatements(db)
            for index in 0..<50 {
                try DirectStatement.execute(Self.insert, ["k\(index)", "s", nil, index, nil], in: statements)
                #expect(try DirectStatement.fetchOne(Int64.self, count, [0], in: statements) == Int64(index + 1))
                #expect(try DirectStatement.fetchOne(Int64.self, sameText, [index], in: statements) == 1)
            }
        }
        try queue.close()
    }
}
