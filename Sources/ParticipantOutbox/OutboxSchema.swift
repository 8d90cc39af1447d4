import GRDB

/// The outbox's schema, created and evolved by migrations run when the database opens.
///
/// Migrations are history: their SQL stays as it was written, state names included, while every
/// query names states through ``ParticipantWire/EventState/sql``. (A partial index is used only by
/// a query whose condition repeats its own, so the two spell each state the same.)
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
        migrator.registerMigration("v2: priority") { db in
            // When the quota is the bottleneck: read receipts first, then delivered receipts, then the rest.
            try db.execute(
                sql: """
                    ALTER TABLE event ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
                    UPDATE event SET priority = CASE contentType
                        WHEN 'application/vnd.amazonaws.connect.event.message.read' THEN 0
                        WHEN 'application/vnd.amazonaws.connect.event.message.delivered' THEN 1
                        WHEN 'application/vnd.amazonaws.connect.event.connection.acknowledged' THEN 2
                        ELSE 3 END;
                    DROP INDEX event_due;
                    CREATE INDEX event_due ON event(priority, nextAttemptAt) WHERE state = 'queued';
                    """
            )
        }
        migrator.registerMigration("v3: connection blocks, retention") { db in
            try db.execute(
                sql: """
                    -- Connections the service refused for good (403: all events; 409: receipts).
                    CREATE TABLE connection_block (
                        connectionHash TEXT NOT NULL,
                        scope TEXT NOT NULL,            -- 'all' or 'receipts'
                        errorCode TEXT NOT NULL,
                        errorMessage TEXT NOT NULL,
                        blockedAt INTEGER NOT NULL,
                        expiresAt INTEGER NOT NULL,
                        PRIMARY KEY (connectionHash, scope)
                    );
                    -- Retention: finished events, oldest first.
                    CREATE INDEX event_finished ON event(updatedAt)
                        WHERE state IN ('sent', 'failed', 'expired', 'superseded');
                    """
            )
        }
        migrator.registerMigration("v4: coalescing") { db in
            try db.execute(
                sql: """
                    ALTER TABLE event ADD COLUMN messageId TEXT;  -- receipts: the message receipted
                    -- The last typing events of a connection.
                    CREATE INDEX event_typing ON event(connectionHash, seq)
                        WHERE contentType = 'application/vnd.amazonaws.connect.event.typing';
                    -- The receipts of a connection for one message.
                    CREATE INDEX event_receipt ON event(connectionHash, messageId) WHERE messageId IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("v5: short connection hashes") { db in
            // ConnectionHash keeps the first 16 hex digits of the SHA-256 it stored in full before:
            // a prefix, so events and blocks stored earlier keep matching their connection.
            try db.execute(
                sql: """
                    UPDATE event SET connectionHash = substr(connectionHash, 1, 16) WHERE length(connectionHash) > 16;
                    UPDATE OR REPLACE connection_block SET connectionHash = substr(connectionHash, 1, 16)
                        WHERE length(connectionHash) > 16;
                    """
            )
        }
        migrator.registerMigration("v6: instances") { db in
            // Each event belongs to one Connect instance (by its configured name); the sender of
            // each instance asks only for its own, so the indexes it walks lead with the instance.
            // Events stored before belong to `default`.
            try db.execute(
                sql: """
                    ALTER TABLE event ADD COLUMN instance TEXT NOT NULL DEFAULT 'default';
                    DROP INDEX event_due;
                    CREATE INDEX event_due ON event(instance, priority, nextAttemptAt) WHERE state = 'queued';
                    DROP INDEX event_waiting_by_connection;
                    CREATE INDEX event_waiting_by_connection ON event(instance, connectionHash, seq)
                        WHERE state IN ('queued', 'sending');
                    -- Counts by state and instance (health, stats, metrics).
                    DROP INDEX event_state;
                    CREATE INDEX event_state ON event(state, instance);
                    """
            )
        }
        migrator.registerMigration("v7: request starts, connections served") { db in
            try db.execute(
                sql: """
                    -- When the last attempt's request started (its lease): the typing interval counts from it.
                    ALTER TABLE event ADD COLUMN leasedAt INTEGER;
                    -- When each connection was last served (a request made for it): when the quota
                    -- binds, the connection served least recently goes first among equals.
                    CREATE TABLE connection_served (
                        instance TEXT NOT NULL,
                        connectionHash TEXT NOT NULL,
                        servedAt INTEGER NOT NULL,
                        PRIMARY KEY (instance, connectionHash)
                    ) WITHOUT ROWID;
                    """
            )
        }
        migrator.registerMigration("v8: finished events by comparisons") { db in
            // The same rows, by a condition SQLite evaluates as comparisons: for an `IN` list of
            // more than two values it builds a temporary table at every statement, and every
            // insert and state change evaluates a partial index's condition (an update, for the
            // old row and the new). What the list of four cost an insert, a lease and an outcome
            // is measured by bench/schema_cost.py (BENCHMARKS.md).
            try db.execute(
                sql: """
                    DROP INDEX event_finished;
                    CREATE INDEX event_finished ON event(updatedAt)
                        WHERE (state = 'sent' OR state = 'failed' OR state = 'expired' OR state = 'superseded');
                    """
            )
        }
        migrator.registerMigration("v9: messages") { db in
            // Messages (SendMessage) share the table with events: their content type says their
            // kind. The service's answer to a message says how it is processed.
            try db.execute(sql: "ALTER TABLE event ADD COLUMN processingStatus TEXT")
        }
        // A chat's disconnect (DisconnectParticipant) closes it through `connection_block` (scope
        // 'disconnected'), which every submission already looks up: no schema of its own.
        migrator.registerMigration("v10: participant connections") { db in
            try db.execute(sql: """
                -- 1: the chat is named by a participant token; its connection token comes from
                -- participant_connection (connectionToken stays NULL).
                ALTER TABLE event ADD COLUMN viaParticipant INTEGER NOT NULL DEFAULT 0;
                -- The connections the daemon creates (CreateParticipantConnection) for chats named
                -- by a participant token, by the hash its items carry. Both tokens are credentials:
                -- the row is deleted once the chat has nothing waiting and was idle a while.
                CREATE TABLE participant_connection (
                    instance TEXT NOT NULL,
                    connectionHash TEXT NOT NULL,
                    participantToken TEXT NOT NULL,
                    connectParticipant INTEGER,        -- asked for by a submission; NULL: the default
                    connectionToken TEXT,              -- NULL until created, or after a 403
                    createdAt INTEGER,                 -- when it was created (ms)
                    expiresAt INTEGER,                 -- its Expiry (ms)
                    connected INTEGER NOT NULL DEFAULT 0,  -- created with ConnectParticipant true
                    lastUsedAt INTEGER NOT NULL,       -- the last submission for the chat (ms)
                    PRIMARY KEY (instance, connectionHash)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v11: peers") { db in
            try db.execute(sql: """
                -- The user (uid) whose program submitted the item; -1: not known (stored before v11,
                -- or an anonymous client off loopback).
                ALTER TABLE event ADD COLUMN peer INTEGER NOT NULL DEFAULT -1;
                -- Each peer's due items in the sender's order: when the quota binds, the lease
                -- looks at every peer's first due item, not only at the first due ones of all.
                CREATE INDEX event_due_by_peer ON event(instance, peer, priority, nextAttemptAt) WHERE state = 'queued';
                -- When each peer was last served: peers take turns, the one served least recently first.
                CREATE TABLE peer_served (
                    instance TEXT NOT NULL,
                    peer INTEGER NOT NULL,
                    servedAt INTEGER NOT NULL,
                    PRIMARY KEY (instance, peer)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v12: ClientTokens per peer") { db in
            // Each peer's ClientTokens are its own: the key is (clientToken, peer), not the token
            // alone. SQLite cannot drop v1's inline UNIQUE, so the table is built again (SQLite's
            // "generalized ALTER TABLE procedure"): the same columns, rows and seq, and every
            // index as it was, read back from the schema.
            let indexes = try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event' AND sql IS NOT NULL")
            let lastSeq = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'event'")
            try db.execute(sql: """
                CREATE TABLE event_v12 (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    clientToken TEXT NOT NULL,
                    contentType TEXT NOT NULL,
                    content TEXT,
                    connectionToken TEXT,
                    connectionHash TEXT NOT NULL,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    acceptedAt INTEGER NOT NULL,
                    updatedAt INTEGER NOT NULL,
                    nextAttemptAt INTEGER,
                    deadline INTEGER NOT NULL,
                    lastErrorCode TEXT,
                    lastErrorMessage TEXT,
                    serviceId TEXT,
                    absoluteTime TEXT,
                    supersededBy TEXT,
                    priority INTEGER NOT NULL DEFAULT 0,
                    messageId TEXT,
                    instance TEXT NOT NULL DEFAULT 'default',
                    leasedAt INTEGER,
                    processingStatus TEXT,
                    viaParticipant INTEGER NOT NULL DEFAULT 0,
                    peer INTEGER NOT NULL DEFAULT -1
                );
                INSERT INTO event_v12 (seq, clientToken, contentType, content, connectionToken, connectionHash, state,
                    attempts, acceptedAt, updatedAt, nextAttemptAt, deadline, lastErrorCode, lastErrorMessage, serviceId,
                    absoluteTime, supersededBy, priority, messageId, instance, leasedAt, processingStatus, viaParticipant, peer)
                SELECT seq, clientToken, contentType, content, connectionToken, connectionHash, state,
                    attempts, acceptedAt, updatedAt, nextAttemptAt, deadline, lastErrorCode, lastErrorMessage, serviceId,
                    absoluteTime, supersededBy, priority, messageId, instance, leasedAt, processingStatus, viaParticipant, peer
                FROM event;
                DROP TABLE event;
                ALTER TABLE event_v12 RENAME TO event;
                -- A peer's ClientToken names one item; leading with the token, the index also finds
                -- a token across peers (an administrator's look-up).
                CREATE UNIQUE INDEX event_token ON event(clientToken, peer);
                """)
            for index in indexes { try db.execute(sql: index) }
            // Sequence numbers are never used twice, not even those of items deleted before.
            if let lastSeq {
                try db.execute(sql: "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'event'", arguments: [lastSeq])
                if db.changesCount == 0 {
                    try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('event', ?)", arguments: [lastSeq])
                }
            }
        }
        migrator.registerMigration("v13: finished items keep a digest") { db in
            // A finished item keeps what deduplication needs, not its content or credential: a
            // digest of the content (ContentDigest) for every item, the content of sent and
            // superseded items dropped, the connection token of every finished one erased.
            db.add(function: ContentDigest.sqlFunction)
            defer { db.remove(function: ContentDigest.sqlFunction) }
            try db.execute(sql: """
                ALTER TABLE event ADD COLUMN digest BLOB;
                UPDATE event SET digest = participantd_digest(content);
                UPDATE event SET content = NULL WHERE state IN ('sent', 'superseded');
                UPDATE event SET connectionToken = NULL WHERE state IN ('sent', 'superseded', 'failed', 'expired');
                """)
        }
        migrator.registerMigration("v14: no index of every state") { db in
            // `event_state` held an entry for every row and moved it at every state change: of
            // an event's insert, lease and outcome, the index SQLite spent most on (BENCHMARKS.md,
            // "Issue 31, seventh round"). Each state is found by an index of its own now: waiting
            // ones by `event_due` and `event_waiting_by_connection`; finished ones by
            // `event_finished`, now by instance, state, then time, so that counting them reads
            // the index in its order and nothing else (its queries skip from one instance to the
            // next: `Outbox.finishedInstances`); and the states an item leaves only by an
            // operator's command or by retention (held, failed, expired) by `event_stuck`, which
            // a queued, sending or sent row never enters.
            try db.execute(sql: """
                DROP INDEX event_state;
                CREATE INDEX event_stuck ON event(state, instance, connectionHash, seq)
                    WHERE (state = 'held' OR state = 'failed' OR state = 'expired');
                DROP INDEX event_finished;
                CREATE INDEX event_finished ON event(instance, state, updatedAt)
                    WHERE (state = 'sent' OR state = 'failed' OR state = 'expired' OR state = 'superseded');
                """)
        }
        return migrator
    }
}
