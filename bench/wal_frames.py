#!/usr/bin/env python3
"""WAL frames (4 KiB pages) a transaction of one read receipt writes, on the outbox's schema
(read from a database participantd's migrations created), and with each index dropped in turn,
without AUTOINCREMENT, and without incremental vacuum: each frame is a page the commit writes,
checksums and syncs (BENCHMARKS.md, "Against Redis and PostgreSQL").

  python3 bench/wal_frames.py --participantd .build/release/participantd   # a few seconds

Each variant stores 2,000 receipts one transaction each (the file's pages settle), empties the
WAL, then stores 200 more and divides the WAL's frames by 200. Prints a JSON object:
variant -> frames a transaction.
"""
import argparse
import json
import os
import sqlite3
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from schema_cost import schema_from_daemon  # noqa: E402

READ = "application/vnd.amazonaws.connect.event.message.read"


def frames_per_transaction(workdir, schema, drop=(), auto_vacuum=2, autoincrement=True, settle=2_000, count=200):
    path = os.path.join(workdir, f"{uuid.uuid4().hex}.sqlite")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA auto_vacuum = {auto_vacuum}")
    for pragma in ("journal_mode = WAL", "wal_autocheckpoint = 0", "secure_delete = ON", "synchronous = OFF"):
        db.execute(f"PRAGMA {pragma}")
    for kind, name, sql in schema:
        if name in drop:
            continue
        if kind == "table" and name == "event" and not autoincrement:
            sql = sql.replace("AUTOINCREMENT", "")
        db.execute(sql)

    def store(i):
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO event (clientToken, contentType, content, connectionToken, connectionHash, state, attempts, "
            "acceptedAt, updatedAt, nextAttemptAt, deadline, priority, messageId, instance, viaParticipant, peer, digest) "
            "VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, 0, ?, 'default', 0, 1000, ?) "
            + ("" if "event_token" in drop else "ON CONFLICT (clientToken, peer) DO NOTHING"),
            (str(uuid.uuid4()), READ, '{"messageId":"%s"}' % uuid.uuid4(), "c" * 300, "%016x" % (i * 7919 % 2**60),
             1_700_000_000_000 + i, 1_700_000_000_000 + i, 1_700_000_000_000 + i, 1_700_086_400_000 + i,
             str(uuid.uuid4()), os.urandom(32)))
        db.execute("COMMIT")

    for i in range(settle):
        store(i)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for i in range(settle, settle + count):
        store(i)
    page = db.execute("PRAGMA page_size").fetchone()[0]
    frames = (os.path.getsize(path + "-wal") - 32) / (page + 24)
    db.close()
    return round(frames / count, 2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--participantd", required=True)
    arguments = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="pd-frames-")
    schema = schema_from_daemon(arguments.participantd, workdir)
    indexes = [name for kind, name, _ in schema if kind == "index"]
    results = {"all": frames_per_transaction(workdir, schema)}
    results["without AUTOINCREMENT"] = frames_per_transaction(workdir, schema, autoincrement=False)
    results["without incremental vacuum"] = frames_per_transaction(workdir, schema, auto_vacuum=0)
    for index in indexes:
        results[f"without {index}"] = frames_per_transaction(workdir, schema, drop=(index,))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
