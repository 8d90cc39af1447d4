#!/usr/bin/env python3
"""participantd against what a user would pick instead to keep events durably, in one run (issue 31).

Run through bench/peers.sh, which installs Redis and PostgreSQL (Debian's packages) and builds
participantd and participant-load in release mode. Every server is started here, on a Unix socket in
a temporary folder of its own, and stopped here; nothing leaves this machine.

- Redis: `appendonly yes`, `appendfsync always` (the AOF is synced before the replies of each
  round of commands); `SET key body NX` with redis-benchmark. Batches: 100 commands pipelined.
- PostgreSQL: `synchronous_commit = on`, `fsync = on`; `INSERT ... ON CONFLICT DO NOTHING` keyed by
  the token, prepared, with pgbench. Batches: one INSERT of 100 rows.
- participantd: its defaults (`synchronous = FULL`, every commit synced), `POST /v1/events` with
  participant-load; batches: `POST /v1/events/batch` of 100.

The payload is a read receipt: participant-load's JSON body, and a body of the same size for the
peers. Each throughput figure is the median of --rounds rounds, the three servers interleaved in
each round so that a slower minute of the machine hits them alike; one client's latency is measured
once for each. This disk's sync cost changes from minute to minute: only ratios from one run mean
anything.
"""
import argparse, csv, json, os, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import as_postgres  # noqa: E402
from compare import Bench  # noqa: E402  (participantd's daemon and load helpers)

# A read receipt as participant-load sends one (LoadRun.swift), with tokens of the length it uses.
BODY = ('{"contentType":"application/vnd.amazonaws.connect.event.message.read",'
        '"clientToken":"load-1a2b3c4d-12-123456","connectionToken":"load-connection-123",'
        '"content":"{\\"messageId\\":\\"m-12-123456\\"}"}')
# Only the receipt, as participant-load's --mix read=1 sends.
RECEIPTS = "read=1"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Redis:
    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder)
        self.sock = os.path.join(folder, "redis.sock")
        self.process = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700", "--dir", folder,
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--logfile", os.path.join(folder, "log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for _ in range(500):
            if subprocess.run(["redis-cli", "-s", self.sock, "ping"], capture_output=True, text=True).stdout.strip() == "PONG":
                break
            time.sleep(0.01)
        else:
            raise RuntimeError(f"Redis did not start: see {folder}/log")
        # Read back where it takes effect: the server's own answer, not the command line.
        answer = subprocess.run(["redis-cli", "-s", self.sock, "config", "get", "appendfsync"], capture_output=True, text=True).stdout.split()
        if answer[-1:] != ["always"]:
            raise RuntimeError(f"Redis's appendfsync is {answer}, not always")

    def bench(self, clients, requests, pipeline=1):
        """redis-benchmark's CSV row: requests/s and the latency percentiles in ms."""
        argv = ["redis-benchmark", "-s", self.sock, "-c", str(clients), "-n", str(requests), "-r", "2000000000",
                "-P", str(pipeline), "--csv", "SET", "token:__rand_int__", BODY, "NX"]
        before = self.keys()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True)
        # Seen in force: every SET stored a key (a key space too small, or a placeholder left
        # unexpanded, makes NX refuse and Redis then writes nothing to its AOF).
        stored = self.keys() - before
        if stored < 0.99 * requests:
            raise RuntimeError(f"redis-benchmark sent {requests} SETs but {stored} keys were stored")
        # The header names the columns; the test's name (the command, the body's commas and quotes
        # unescaped) comes first, so the figures are read from the line's end.
        lines = done.stdout.strip().splitlines()
        names = next(csv.reader([lines[0]]))[1:]
        figures = dict(zip(names, (float(value.strip('"')) for value in lines[-1].rsplit(",", len(names))[1:])))
        return {"rate": figures["rps"], "p50": figures["p50_latency_ms"], "p99": figures["p99_latency_ms"]}

    def keys(self):
        return int(subprocess.run(["redis-cli", "-s", self.sock, "dbsize"], capture_output=True, text=True, check=True).stdout)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


class Postgres:
    def __init__(self, folder):
        versions = sorted(v for v in os.listdir("/usr/lib/postgresql") if os.path.exists(f"/usr/lib/postgresql/{v}/bin/initdb"))
        self.bin = f"/usr/lib/postgresql/{versions[-1]}/bin"
        self.folder = folder
        os.makedirs(folder)
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", folder], check=True)
        subprocess.run(as_postgres([f"{self.bin}/initdb", "-D", f"{folder}/data", "-U", "bench", "--auth=trust", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL)
        log = open(os.path.join(folder, "log"), "w")
        self.process = subprocess.Popen(as_postgres(
            [f"{self.bin}/postgres", "-D", f"{folder}/data", "-k", folder, "-c", "listen_addresses=", "-c", "max_connections=200",
             "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "shared_buffers=256MB"]), stdout=log, stderr=log)
        for _ in range(300):
            if subprocess.run([f"{self.bin}/pg_isready", "-q", "-h", folder]).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"PostgreSQL did not start: see {folder}/log")
        self.psql("CREATE TABLE events (client_token text PRIMARY KEY, body text NOT NULL)")
        settings = self.psql("SELECT current_setting('fsync') || ' ' || current_setting('synchronous_commit')").strip()
        if settings != "on on":
            raise RuntimeError(f"PostgreSQL's fsync and synchronous_commit are {settings!r}, not on")

    def psql(self, sql):
        return subprocess.run(as_postgres([f"{self.bin}/psql", "-h", self.folder, "-U", "bench", "-d", "postgres", "-Atqc", sql]),
                              check=True, capture_output=True, text=True).stdout

    def bench(self, clients, seconds, rows=1, log=False):
        """pgbench, prepared statements: transactions/s (x rows for rows a statement); with log, the
        latency percentiles from its per-transaction log."""
        script = os.path.join(self.folder, f"insert-{rows}.sql")
        values = ", ".join(f"('t' || :n || '-{row}', '{BODY}')" for row in range(rows))
        with open(script, "w") as out:
            out.write("\\set n random(1, 9000000000000000)\n")
            out.write(f"INSERT INTO events (client_token, body) VALUES {values} ON CONFLICT DO NOTHING;\n")
        os.chmod(script, 0o644)
        argv = ["pgbench", "-n", "-M", "prepared", "-h", self.folder, "-U", "bench", "-c", str(clients),
                "-j", str(min(clients, 2)), "-T", str(max(1, round(seconds))), "-f", script, "postgres"]
        if log:
            argv += ["-l", "--log-prefix", os.path.join(self.folder, "latency")]
        done = subprocess.run(as_postgres(argv), capture_output=True, text=True, timeout=900, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed: {done.stderr[-2000:]}")
        tps = next(float(line.split("=")[1].split()[0]) for line in done.stdout.splitlines() if line.startswith("tps ="))
        result = {"rate": tps * rows}
        if log:
            latencies = []
            for name in os.listdir(self.folder):
                if name.startswith("latency."):
                    with open(os.path.join(self.folder, name)) as lines:
                        latencies += [int(line.split()[2]) / 1000 for line in lines]
                    os.remove(os.path.join(self.folder, name))
            result.update(p50=percentile(latencies, 0.5), p99=percentile(latencies, 0.99), mean=statistics.mean(latencies))
        return result

    def stop(self):
        subprocess.run(as_postgres([f"{self.bin}/pg_ctl", "-D", f"{self.folder}/data", "-m", "fast", "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.process.wait(timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the folder with the release build of participantd and participant-load")
    parser.add_argument("--dir", default=None, help="where the servers' files go (default: the system's temporary folder)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8, help="seconds of load a measurement")
    parser.add_argument("--single-count", type=int, default=5000, help="events one client sends, one at a time")
    parser.add_argument("--json", default=None, help="also write every figure to this file")
    args = parser.parse_args()
    # Bench's helpers read these (compare.py's options of the same names).
    bench = Bench(argparse.Namespace(bin=args.bin, dir=args.dir, rounds=args.rounds, seconds=args.seconds, keep=False))
    if os.getuid() == 0:
        os.chmod(bench.work, 0o755)  # PostgreSQL runs as postgres, in a folder under this one
    results = {"machine": f"{os.cpu_count()} cores, {os.uname().release}", "rounds": []}
    # The daemon as a user runs it: its default log level (info) to a file, every commit synced.
    daemon_env = {"PARTICIPANTD_LOG_LEVEL": "info"}
    scale = None
    try:
        results["fsync"] = bench.fsync()
        print(f"disk: 4 KiB write + fdatasync p50 {results['fsync']['fdatasyncP50Micros'] / 1000:.3f} ms", flush=True)
        for round_ in range(args.rounds):
            row = {}
            redis = Redis(os.path.join(bench.work, f"redis-{round_}"))
            if scale is None:
                # redis-benchmark counts requests, not seconds: size its runs to --seconds from a probe.
                scale = max(1000.0, redis.bench(64, 20000)["rate"])
            row["redis"] = redis.bench(64, int(scale * args.seconds))
            row["redisBatch"] = redis.bench(8, int(scale * args.seconds * 4) // 100 * 100, pipeline=100)
            redis.stop()
            postgres = Postgres(os.path.join(bench.work, f"postgres-{round_}"))
            row["postgres"] = postgres.bench(64, args.seconds)
            row["postgresBatch"] = postgres.bench(8, args.seconds, rows=100)
            postgres.stop()
            daemon, sock, _ = bench.daemon(f"participantd-{round_}", extra_env=daemon_env)
            row["participantd"] = bench.load(sock, 64, seconds=args.seconds, mix=RECEIPTS)
            bench.stop(daemon)
            daemon, sock, _ = bench.daemon(f"participantd-batch-{round_}", extra_env=daemon_env)
            load = bench.load(sock, 8, seconds=args.seconds, mix=RECEIPTS, batch=100)
            row["participantdBatch"] = dict(load, rate=load["eventRate"])
            bench.stop(daemon)
            results["rounds"].append(row)
            print(f"  round {round_ + 1}: 64 clients: participantd {row['participantd']['rate']:.0f}/s, "
                  f"Redis {row['redis']['rate']:.0f}/s, PostgreSQL {row['postgres']['rate']:.0f}/s; "
                  f"batches of 100: participantd {row['participantdBatch']['rate']:.0f}/s, "
                  f"Redis {row['redisBatch']['rate']:.0f}/s, PostgreSQL {row['postgresBatch']['rate']:.0f}/s", flush=True)
        single = {}
        redis = Redis(os.path.join(bench.work, "redis-single"))
        single["redis"] = redis.bench(1, args.single_count)
        redis.stop()
        postgres = Postgres(os.path.join(bench.work, "postgres-single"))
        single["postgres"] = postgres.bench(1, max(2, round(args.seconds / 2)), log=True)
        postgres.stop()
        daemon, sock, _ = bench.daemon("participantd-single", extra_env=daemon_env)
        load = bench.load(sock, 1, count=args.single_count, warmup=0.5, mix=RECEIPTS)
        single["participantd"] = dict(load, p50=load["p50Micros"] / 1000, p99=load["p99Micros"] / 1000)
        bench.stop(daemon)
        results["single"] = single
    finally:
        bench.close()
    table(results)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


def table(results):
    def median(key):
        return statistics.median(row[key]["rate"] for row in results["rounds"])

    def rounds(key):
        return ", ".join(f"{row[key]['rate']:,.0f}" for row in results["rounds"])

    p, r, g = median("participantd"), median("redis"), median("postgres")
    pb, rb, gb = median("participantdBatch"), median("redisBatch"), median("postgresBatch")
    single = results["single"]
    sp, sr, sg = single["participantd"]["p50"], single["redis"]["p50"], single["postgres"]["p50"]
    print()
    print(f"disk: 4 KiB write + fdatasync, p50 {results['fsync']['fdatasyncP50Micros'] / 1000:.3f} ms")
    print("| durable accepts | median of rounds (the rounds) | participantd against it |")
    print("|---|---|---|")
    print(f"| participantd, `POST /v1/events`, 64 clients | {p:,.0f}/s ({rounds('participantd')}) | |")
    print(f"| Redis, `SET NX`, appendfsync always, 64 clients | {r:,.0f}/s ({rounds('redis')}) | {p / r:.2f} x (target >= 0.5) |")
    print(f"| PostgreSQL, `INSERT ON CONFLICT`, synchronous_commit on, 64 clients | {g:,.0f}/s ({rounds('postgres')}) | {p / g:.2f} x (target >= 1) |")
    print(f"| participantd, `POST /v1/events/batch` of 100, 8 clients | {pb:,.0f} events/s ({rounds('participantdBatch')}) | |")
    print(f"| Redis, 100 commands pipelined, 8 clients | {rb:,.0f} events/s ({rounds('redisBatch')}) | {pb / rb:.2f} x |")
    print(f"| PostgreSQL, one INSERT of 100 rows, 8 clients | {gb:,.0f} events/s ({rounds('postgresBatch')}) | {pb / gb:.2f} x (target >= 1) |")
    print(f"| one client, p50 / p99: participantd | {sp:.3f} / {single['participantd']['p99']:.3f} ms | |")
    print(f"| one client, p50 / p99: Redis | {sr:.3f} / {single['redis']['p99']:.3f} ms | {sp - sr:+.3f} ms |")
    print(f"| one client, p50 / p99: PostgreSQL | {sg:.3f} / {single['postgres']['p99']:.3f} ms | {sp - sg:+.3f} ms (target <= +0.1) |")


if __name__ == "__main__":
    main()
