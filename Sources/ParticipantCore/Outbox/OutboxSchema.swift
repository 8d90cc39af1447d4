import GRDB

/// The outbox's schema, created and evolved by migrations run when the database opens.
enum OutboxSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: event") { db in
            try db.execute(
                sql: """
                    CREATE TABLE event (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- acceptance order
                        clientToken TEXT NOT NULL UNIQUE,       -- idempotency key, sent as ClientToken
                        contentType TEXT NOT NULL,
                        content TEXT,
                        connectionToken TEXT,                   -- the credential; sent as X-Amz-Bearer
                        connectionHash TEXT NOT NULL,           -- SHA-256 of the connection token, hex
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        acceptedAt INTEGER NOT NULL,            -- times: milliseconds since 1970, UTC
                        updatedAt INTEGER NOT NULL,
                        nextAttemptAt INTEGER,
                        deadline INTEGER NOT NULL,
                        lastErrorCode TEXT,
                        lastErrorMessage TEXT,
                        serviceId TEXT,                         -- the service's Id
                        absoluteTime TEXT,                      -- the service's AbsoluteTime
                        supersededBy TEXT
                    );
                    -- The sender's question: which queued events are due?
                    CREATE INDEX event_due ON event(nextAttemptAt) WHERE state = 'queued';
                    -- Per-connection order: is an older event of this connection still waiting?
                    CREATE INDEX event_waiting_by_connection ON event(connectionHash, seq)
                        WHERE state IN ('queued', 'sending');
                    -- Expiry of waiting events.
                    CREATE INDEX event_deadline ON event(deadline) WHERE state IN ('queued', 'sending');
                    -- Counts by state (health).
                    CREATE INDEX event_state ON event(state);
                    """
            )
        }
        return migrator
    }
}
