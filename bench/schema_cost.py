#!/usr/bin/env python3
"""What each index of the outbox costs SQLite, in instructions counted by callgrind inside
sqlite3_step only (so Python's own work is left out): per event inserted, leased (queued ->
sending) and sent (sending -> sent, its connection token erased), in transactions of 64 as the
group commit makes them under load.

The schema is read from a database participantd created (so it is the migrations' own), then
each variant drops one index; `all` keeps them. Each figure is (I(N2) - I(N1)) / (N2 - N1), so
the database's creation and the first pages cancel out.

  python3 bench/schema_cost.py --participantd .build/release/participantd   # about 3 minutes

Needs valgrind (bench/instructions.sh installs it). Prints a JSON object: variant -> phase -> instructions.
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from benchlib import wait_for

BATCH = 64
# Variants that rewrite a statement instead of dropping an index: name -> [(old, new)]. Since
# schema v8, event_finished is by comparisons; "finished-in-list" is how it was before.
REWRITES = {
    "finished-in-list": [("WHERE (state = 'sent' OR state = 'failed' OR state = 'expired' OR state = 'superseded')",
                          "WHERE state IN ('sent', 'failed', 'expired', 'superseded')")],
}
READ = "application/vnd.amazonaws.connect.event.message.read"


def schema_from_daemon(participantd, workdir):
    """The outbox schema, as participantd's migrations create it."""
    config = os.path.join(workdir, "schema.yaml")
    database = os.path.join(workdir, "schema.sqlite")
    with open(config, "w") as f:
        f.write(f"socket: {workdir}/schema.sock\ndatabase: {database}\nendpoint: http://127.0.0.1:9\nlog:\n  level: notice\n")
    daemon = subprocess.Popen([participantd, "--config", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(f"{workdir}/schema.sock"), 60, "participantd to create its database")
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
    db = sqlite3.connect(database)
    rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'grdb_%' AND name != 'sqlite_sequence'").fetchall()
    db.close()
    return rows


def workload(path, schema, drop, phase, count):
    """Runs in a child process under callgrind: creates the database, then `count` events through `phase`."""
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "secure_delete = ON", "cache_size = -16384"):
        db.execute(f"PRAGMA {pragma}")
    for kind, name, sql in schema:
        if name == drop:
            continue
        for old, new in REWRITES.get(drop, []):
            sql = sql.replace(old, new)
        db.execute(sql)
    now = 1_780_000_000_000
    for start in range(0, count, BATCH):
        db.execute("BEGIN")
        for index in range(start, min(start + BATCH, count)):
            db.execute(
                """INSERT INTO event (clientToken, contentType, content, connectionToken, connectionHash, state, attempts,
                                      acceptedAt, updatedAt, nextAttemptAt, deadline, priority, messageId, supersededBy, instance)
                   VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, 0, ?, NULL, 'default')""",
                (f"{index:08d}-4b1e-4c4f-9a55-3f0d8d1f2a6b", READ, f'{{"messageId":"m{index}"}}', "t" * 400,
                 f"{index * 2654435761 % 2**64:016x}", now, now, now, now + 60_000, f"m{index}"))
        db.execute("COMMIT")
    if phase in ("lease", "sent"):
        for start in range(1, count + 1, BATCH):
            db.execute("BEGIN")
            for seq in range(start, min(start + BATCH, count + 1)):
                db.execute("UPDATE event SET state = 'sending', attempts = attempts + 1, updatedAt = ?, leasedAt = ? WHERE seq = ?",
                           (now + 1, now + 1, seq))
            db.execute("COMMIT")
    if phase == "sent":
        for start in range(1, count + 1, BATCH):
            db.execute("BEGIN")
            for seq in range(start, min(start + BATCH, count + 1)):
                db.execute("""UPDATE event SET state = 'sent', serviceId = ?, absoluteTime = ?, lastErrorCode = NULL,
                              lastErrorMessage = NULL, nextAttemptAt = NULL, connectionToken = NULL, updatedAt = ?
                              WHERE seq = ? AND state = 'sending'""",
                           (f"id-{seq}", "2026-12-03T10:00:00.000Z", now + 2, seq))
            db.execute("COMMIT")
    db.close()


def counted(schema_file, drop, phase, count, workdir):
    """Instructions inside sqlite3_step for one run of `workload`."""
    out = os.path.join(workdir, f"{drop}-{phase}-{count}.callgrind")
    path = os.path.join(workdir, f"{drop}-{phase}-{count}.sqlite")
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--toggle-collect=sqlite3_step",
                    sys.executable, os.path.abspath(__file__), "--child", schema_file, drop, phase, str(count), path],
                   check=True, capture_output=True)
    with open(out) as f:
        totals = [int(line.split()[1]) for line in f if line.startswith("totals:") or line.startswith("summary:")]
    return max(totals)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, schema_file, drop, phase, count, path = sys.argv
        with open(schema_file) as f:
            workload(path, json.load(f), drop, phase, int(count))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--participantd", required=True)
    parser.add_argument("--n1", type=int, default=1_024)
    parser.add_argument("--n2", type=int, default=5_120)
    parser.add_argument("--only", help="variants to run, comma-separated: all, or the name of the index dropped")
    arguments = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="pd-schema-")
    try:
        schema = schema_from_daemon(arguments.participantd, workdir)
        schema_file = os.path.join(workdir, "schema.json")
        with open(schema_file, "w") as f:
            json.dump(schema, f)
        indexes = [name for kind, name, sql in schema if kind == "index"]
        results = {}
        for drop in ["all"] + indexes + list(REWRITES):
            if arguments.only and drop not in arguments.only.split(","):
                continue
            figures = {}
            for phase in ("insert", "lease", "sent"):
                first = counted(schema_file, drop, phase, arguments.n1, workdir)
                second = counted(schema_file, drop, phase, arguments.n2, workdir)
                figures[phase] = round((second - first) / (arguments.n2 - arguments.n1))
            # Each phase's run includes the ones before it.
            figures["sent"] -= figures["lease"]
            figures["lease"] -= figures["insert"]
            results["all" if drop == "all" else drop if drop in REWRITES else f"without {drop}"] = figures
            print(json.dumps({drop: figures}), file=sys.stderr, flush=True)
        results["n1"], results["n2"] = arguments.n1, arguments.n2
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
