#!/usr/bin/env python3
"""CPU instructions per accepted and per delivered event, counted by valgrind's callgrind
(bench/instructions.sh runs this). Counts, unlike rates, do not drift with what else the machine
does: the same binary and inputs give the same count within a fraction of a percent.

Each figure is a difference of two runs of one server process under callgrind, one with N1 and
one with N2 requests from one client (participant-load, not under valgrind), counted from when
the server answers until the load ends:
  per event = (instructions(N2) - instructions(N1)) / (N2 - N1)
so warm-up (the first requests fill the runtime's caches) cancels out. The profiles kept are the
N2 runs'.

  request path   participant-load baseline: the daemon's HTTP server, body reading, decoding,
                 validation and answer, nothing stored.
  accept         participantd, the sender paced to nothing (quota 0.001/s): request path, the
                 insert, the log line, the sender's wake-up. Read receipts, each on its own
                 connection (no coalescing).
  batch          the same, the events posted in batches of --batch (100) to /v1/events/batch:
                 one request, one answer and one transaction for each batch.
  deliver        participantd, pacing off, the service a participant-standin: accept plus the
                 lease, the upstream request and its outcome; minus accept gives delivery alone.
                 The events arrive one at a time, so each lease finds one or two.
  drain          delivery of a backlog: N events stored first (participantd not under valgrind,
                 pacing at 0.001/s), then participantd under callgrind with pacing off drains
                 them to the stand-in (leases of up to sender.maxInFlight, 64); counted from its
                 start (the same in both runs, so it cancels out) until nothing waits.

For accept and batch, the split between the request path and the insert is read from the profile: the
inclusive cost of the writer's transactions (GRDB's write on the writer thread) is the insert.

Prints a JSON object and, with --profiles DIR, keeps the callgrind files and each one's top entries.

Two things valgrind 3.19 (Debian 12) needs, which bench/instructions.sh prepares: binaries without
their DWARF 5 debug information (it cannot read it; the symbol table stays, so functions keep their
names), and bench/valgrind/sigsuspend-shim.c preloaded (libdispatch hands sigsuspend a mask in
read-only memory, which valgrind writes to and crashes).
"""
import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def socket_answers(path):
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path)
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(64).startswith(b"HTTP/1.1")


def total_instructions(path):
    """The profile's `totals:` line (its `summary:` says 0 when instrumentation started late)."""
    totals = [int(line.split()[1]) for line in open(path) if line.startswith("totals:")]
    if not totals:
        raise RuntimeError(f"no totals in {path}")
    return sum(totals)


SHIM = None


class Server:
    """A server process under callgrind in `workdir`."""

    def __init__(self, workdir, name, command, socket_path, from_start=False):
        self.out = os.path.join(workdir, f"{name}.callgrind")
        self.log = open(os.path.join(workdir, f"{name}.log"), "w")
        environment = dict(os.environ)
        if SHIM:
            environment["LD_PRELOAD"] = SHIM
        self.process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}", "--dump-instr=no",
             f"--instr-atstart={'yes' if from_start else 'no'}"] + command,
            stdout=self.log, stderr=subprocess.STDOUT, env=environment)
        self.socket = socket_path
        wait_for(lambda: socket_answers(socket_path), 120, f"{name} under valgrind")
        if not from_start:
            # Counted from here: start-up stays out of the profile (and of both runs' totals).
            subprocess.run(["callgrind_control", "-i", "on", str(self.process.pid)], check=True, capture_output=True)

    def stop(self):
        subprocess.run(["callgrind_control", "-i", "off", str(self.process.pid)], capture_output=True)
        self.process.terminate()
        self.process.wait(timeout=300)
        return total_instructions(self.out)


MIX = "read=1"
CONNECTIONS = 1_000_000
EXTRA_YAML = ""
BATCH = 100
CLIENTS = 1


def load(bin_dir, socket_path, count, batch=1):
    # --count counts requests: with batches, count events / batch requests.
    count = count // batch
    answer = subprocess.run([f"{bin_dir}/participant-load", "submit", "--socket", socket_path, "--clients", str(CLIENTS), "--count", str(count),
                             "--warmup", "0", "--mix", MIX, "--connections", str(CONNECTIONS), "--batch", str(batch), "--json"],
                            capture_output=True, text=True, timeout=1800)
    if answer.returncode != 0:
        raise RuntimeError(f"participant-load failed: {answer.stdout[-500:]} {answer.stderr[-500:]}")


def daemon_config(workdir, name, endpoint, extra):
    config = os.path.join(workdir, f"{name}.yaml")
    with open(config, "w") as f:
        f.write(f"socket: {workdir}/{name}.sock\ndatabase: {workdir}/{name}.sqlite\nendpoint: {endpoint}\nlog:\n  level: info\n  format: text\n{extra}{EXTRA_YAML}")
    return config


def measure(bin_dir, valgrind_bin, workdir, kind, count, endpoint):
    name = f"{kind}-{count}"
    socket_path = f"{workdir}/{name}.sock"
    if kind == "drain":
        return drain(bin_dir, valgrind_bin, workdir, name, socket_path, count, endpoint)
    if kind == "baseline":
        command = [f"{valgrind_bin}/participant-load", "baseline", "--socket", socket_path]
    elif kind == "baseline-nio":
        command = [f"{valgrind_bin}/participant-load", "baseline", "--server", "nio", "--socket", socket_path]
    else:
        extra = "quota:\n  requestsPerSecond: 0.001\n  burst: 1\n" if kind in ("accept", "batch") else \
            "quota:\n  requestsPerSecond: 0\ncoalescing:\n  newestReceiptOnly: false\n  deliveredHoldMilliseconds: 0\n"
        command = [f"{valgrind_bin}/participantd", "--config", daemon_config(workdir, name, endpoint, extra)]
    server = Server(workdir, name, command, socket_path)
    load(bin_dir, socket_path, count, BATCH if kind == "batch" else 1)
    if kind == "deliver":
        wait_for(lambda: waiting_in_file(f"{workdir}/{name}.sqlite") == 0, 1800, "every event delivered")
    elif kind in ("accept", "batch"):
        time.sleep(1)  # the sender's last wake-up
    return server.stop(), server.out


def drain(bin_dir, valgrind_bin, workdir, name, socket_path, count, endpoint):
    """`count` events stored while the sender is paced to nothing, then drained under callgrind."""
    fill = daemon_config(workdir, name, endpoint, "quota:\n  requestsPerSecond: 0.001\n  burst: 1\n")
    filling = subprocess.Popen([f"{bin_dir}/participantd", "--config", fill], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: socket_answers(socket_path), 60, "participantd filling the outbox")
        load(bin_dir, socket_path, count)
    finally:
        filling.terminate()
        filling.wait(timeout=60)
    config = daemon_config(workdir, name, endpoint,
                           "quota:\n  requestsPerSecond: 0\nsender:\n  maxInFlight: 64\nupstream:\n  maxConnections: 64\n")
    server = Server(workdir, name, [f"{valgrind_bin}/participantd", "--config", config], socket_path, from_start=True)
    # Asked of the database file, not of the daemon: `participantctl stats` costs the daemon
    # instructions of its own, as many as the polls the run's length allows.
    wait_for(lambda: waiting_in_file(f"{workdir}/{name}.sqlite") == 0, 1800, "every event delivered")
    return server.stop(), server.out


def waiting_in_file(path):
    """Waiting events, read from the outbox's file by another process (WAL: no lock taken)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT COUNT(*) FROM event WHERE state IN ('queued', 'sending')").fetchone()[0]
    finally:
        db.close()


def top_entries(path, lines=18):
    """callgrind_annotate's top functions, inclusive, names demangled."""
    annotate = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=99", path], capture_output=True, text=True)
    demangled = subprocess.run(["swift", "demangle", "--simplified"], input=annotate.stdout, capture_output=True, text=True).stdout
    rows = [line for line in demangled.splitlines() if re.match(r"\s*[\d,]+ \(", line)]
    return rows[:lines]


def writer_share(path):
    """The inclusive instructions of the outbox writer's transactions, from the profile."""
    annotate = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path], capture_output=True, text=True)
    demangled = subprocess.run(["swift", "demangle", "--simplified"], input=annotate.stdout, capture_output=True, text=True).stdout
    best = 0
    for line in demangled.splitlines():
        match = re.match(r"\s*([\d,]+) \(", line)
        if match and "OutboxWriter" in line and ("perform" in line or "commit" in line or "run" in line):
            best = max(best, int(match.group(1).replace(",", "")))
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--valgrind-bin", help="participantd and participant-load without debug information (default: --bin)")
    parser.add_argument("--shim", help="bench/valgrind/sigsuspend-shim.c built as a shared object, preloaded")
    parser.add_argument("--n1", type=int, default=500)
    parser.add_argument("--n2", type=int, default=2500)
    parser.add_argument("--only", default="baseline,baseline-nio,accept,batch,deliver,drain")
    parser.add_argument("--profiles", help="keep the callgrind files and their top entries here")
    parser.add_argument("--mix", default="read=1", help="participant-load's --mix (default: read receipts only)")
    parser.add_argument("--connections", type=int, default=1_000_000, help="participant-load's --connections (default: one per event)")
    parser.add_argument("--batch", type=int, default=100, help="events per request of the batch kind (POST /v1/events/batch); figures stay per event")
    parser.add_argument("--clients", type=int, default=1, help="participant-load's --clients: concurrent clients, each waiting for its answer (default 1; 64: the group commit as under load)")
    parser.add_argument("--yaml", default="", help="more participantd configuration, YAML (e.g. a coalescing: section)")
    arguments = parser.parse_args()
    global SHIM, MIX, CONNECTIONS, EXTRA_YAML, BATCH, CLIENTS
    SHIM = arguments.shim
    BATCH = arguments.batch
    CLIENTS = arguments.clients
    if "batch" in arguments.only.split(",") and (arguments.n1 % BATCH or arguments.n2 % BATCH):
        parser.error("--n1 and --n2 must be multiples of --batch")
    MIX, CONNECTIONS = arguments.mix, arguments.connections
    EXTRA_YAML = arguments.yaml.replace("\\n", "\n") + ("\n" if arguments.yaml else "")
    valgrind_bin = arguments.valgrind_bin or arguments.bin
    workdir = tempfile.mkdtemp(prefix="pd-instr-")
    standin_port = free_port()
    standin = subprocess.Popen([f"{arguments.bin}/participant-standin", "--port", str(standin_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{standin_port}"
    results = {}
    profiles = {}
    try:
        for kind in arguments.only.split(","):
            first, _ = measure(arguments.bin, valgrind_bin, workdir, kind, arguments.n1, endpoint)
            second, profile = measure(arguments.bin, valgrind_bin, workdir, kind, arguments.n2, endpoint)
            results[kind] = round((second - first) / (arguments.n2 - arguments.n1))
            profiles[kind] = profile
            if kind in ("accept", "batch"):
                first_writer = writer_share(os.path.join(workdir, f"{kind}-{arguments.n1}.callgrind"))
                second_writer = writer_share(profile)
                results[f"{kind}_insert"] = round((second_writer - first_writer) / (arguments.n2 - arguments.n1))
                results[f"{kind}_outside_insert"] = results[kind] - results[f"{kind}_insert"]
            print(json.dumps({kind: results[kind]}), file=sys.stderr, flush=True)
        if "accept" in results and "deliver" in results:
            results["deliver_minus_accept"] = results["deliver"] - results["accept"]
        results["n1"], results["n2"] = arguments.n1, arguments.n2
        print(json.dumps(results), flush=True)
        if arguments.profiles:
            os.makedirs(arguments.profiles, exist_ok=True)
            for kind, profile in profiles.items():
                shutil.copy(profile, os.path.join(arguments.profiles, f"{kind}.callgrind"))
                with open(os.path.join(arguments.profiles, f"{kind}.top.txt"), "w") as f:
                    f.write("\n".join(top_entries(profile)) + "\n")
    finally:
        standin.terminate()
        standin.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
