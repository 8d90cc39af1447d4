#!/usr/bin/env python3
"""Every comparison of BENCHMARKS.md in one run, side by side; prints a table of figures and ratios.

Run through bench/compare.sh, which installs what this needs and builds participantd in release
mode. Each throughput figure is the median of --rounds runs, the runs of the things compared
interleaved (baseline, participantd, persist-queue, ...) so that a slower minute of the machine
hits them alike. Every process is started here and stopped here; nothing leaves this machine.
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import http.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def health(sock_path):
    """The daemon's /v1/health, or None while it does not answer."""
    try:
        conn = UnixHTTPConnection(sock_path, timeout=2)
        conn.request("GET", "/v1/health")
        answer = json.loads(conn.getresponse().read())
        conn.close()
        return answer
    except (OSError, http.client.HTTPException, ValueError):
        return None


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# The fills of the delivery and memory backlogs keep every receipt waiting (coalescing.newestReceiptOnly off).
KEEP_EVERY_RECEIPT = {"PARTICIPANTD_COALESCING_NEWEST_RECEIPT_ONLY": "false"}
# The same daemon with commits synced at checkpoints only (synchronous=NORMAL): what the sync costs,
# measured in the same run (README, "Durability": a power loss may then lose acknowledged events).
SYNC_OFF = {"PARTICIPANTD_OUTBOX_SYNC_EVERY_COMMIT": "false"}


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = args.bin
        self.work = tempfile.mkdtemp(prefix="participantd-bench-", dir=args.dir)
        self.results = {}
        self.processes = []

    # -- processes --

    def start(self, argv, env=None, log=None):
        out = open(log, "w") if log else subprocess.DEVNULL
        process = subprocess.Popen(argv, env=dict(os.environ, **(env or {})), stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def stop(self, process):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process in self.processes:
            self.processes.remove(process)

    def run_json(self, argv, timeout=3600):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode not in (0, 1) or not done.stdout.strip():
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if done.returncode == 1:
            raise RuntimeError(f"{' '.join(argv)}: errors in the run: {result}")
        return result

    def daemon(self, name, endpoint="http://127.0.0.1:9", extra_env=None, database=None, bin_dir=None):
        """participantd on a socket of its own; endpoint 127.0.0.1:9 refuses, so events stay waiting."""
        folder = os.path.join(self.work, name)
        os.makedirs(folder, exist_ok=True)
        sock = os.path.join(folder, "participantd.sock")
        env = {
            "PARTICIPANTD_OUTBOX_CAPACITY": "100000000",
            "PARTICIPANTD_LOG_LEVEL": "notice",
        }
        env.update(extra_env or {})
        started = time.monotonic()
        process = self.start(
            [os.path.join(bin_dir or self.bin, "participantd"), "--socket", sock, "--database",
             database or os.path.join(folder, "outbox.sqlite"), "--endpoint", endpoint],
            env=env, log=os.path.join(folder, "participantd.log"))
        while health(sock) is None:
            if process.poll() is not None:
                raise RuntimeError(f"participantd exited: see {folder}/participantd.log")
            if time.monotonic() - started > 120:
                raise RuntimeError("participantd did not answer within 120 s")
            time.sleep(0.01)
        return process, sock, time.monotonic() - started

    def load(self, sock, clients, seconds=None, count=None, mix="read=4,delivered=4,typing=2", warmup=1.0, batch=1, connections=None):
        argv = [os.path.join(self.bin, "participant-load"), "--socket", sock, "--clients", str(clients),
                "--warmup", str(warmup), "--mix", mix, "--batch", str(batch), "--json"]
        argv += ["--connections", str(connections)] if connections else []
        argv += ["--seconds", str(seconds)] if seconds else ["--count", str(count)]
        return self.run_json(argv)

    # -- the measurements --

    def fsync(self):
        result = self.run_json([os.path.join(self.bin, "participant-load"), "fsync", "--dir", self.work, "--count", "2000", "--json"])
        self.results["fsync"] = result
        return result

    def accepts(self):
        """64 keep-alive clients: participantd (durable), the baseline (no database), persist-queue."""
        rounds = {"durable": [], "baseline": [], "persistqueue": [], "syncOff": []}
        for round_ in range(self.args.rounds):
            baseline_sock = os.path.join(self.work, f"baseline-{round_}.sock")
            baseline = self.start([os.path.join(self.bin, "participant-load"), "baseline", "--socket", baseline_sock])
            while not os.path.exists(baseline_sock):
                time.sleep(0.01)
            time.sleep(0.2)
            rounds["baseline"].append(self.load(baseline_sock, 64, seconds=self.args.seconds))
            self.stop(baseline)

            daemon, sock, _ = self.daemon(f"accepts-{round_}")
            rounds["durable"].append(self.load(sock, 64, seconds=self.args.seconds))
            self.stop(daemon)

            daemon, sock, _ = self.daemon(f"accepts-sync-off-{round_}", extra_env=SYNC_OFF)
            rounds["syncOff"].append(self.load(sock, 64, seconds=self.args.seconds))
            self.stop(daemon)

            pq = os.path.join(self.work, f"persistqueue-{round_}")
            rounds["persistqueue"].append(self.run_json(
                [sys.executable, os.path.join(ROOT, "bench", "persistqueue_put.py"), "--dir", pq,
                 "--clients", "64", "--seconds", str(self.args.seconds)]))
            shutil.rmtree(pq, ignore_errors=True)
            print(f"  round {round_ + 1}: participantd {rounds['durable'][-1]['rate']:.0f}/s "
                  f"(sync off {rounds['syncOff'][-1]['rate']:.0f}/s), "
                  f"baseline {rounds['baseline'][-1]['rate']:.0f}/s, persist-queue {rounds['persistqueue'][-1]['rate']:.0f}/s",
                  flush=True)
        self.results["accepts"] = rounds

    def batches(self):
        """8 clients, 100 events per request (POST /v1/events/batch), durable: events/s."""
        rounds = []
        for round_ in range(self.args.rounds):
            daemon, sock, _ = self.daemon(f"batches-{round_}")
            rounds.append(self.load(sock, 8, seconds=self.args.seconds, batch=100))
            self.stop(daemon)
            print(f"  round {round_ + 1}: participantd batches {rounds[-1]['eventRate']:.0f} events/s", flush=True)
        self.results["batches"] = rounds

    def single_client(self):
        daemon, sock, _ = self.daemon("single")
        result = self.load(sock, 1, count=self.args.single_count, warmup=0.5)
        self.stop(daemon)
        self.results["single"] = result
        daemon, sock, _ = self.daemon("single-sync-off", extra_env=SYNC_OFF)
        self.results["singleSyncOff"] = self.load(sock, 1, count=self.args.single_count, warmup=0.5)
        self.stop(daemon)

    def delivery(self):
        """Events waiting in the outbox, then sent to nginx as fast as the sender goes (pacing off)."""
        port = self.args.nginx_port
        folder = os.path.join(self.work, "nginx")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(ROOT, "bench", "nginx.conf")) as template:
            conf = template.read().replace("@PORT@", str(port)).replace("@DIR@", folder)
        with open(os.path.join(folder, "nginx.conf"), "w") as out:
            out.write(conf)
        nginx = self.start([shutil.which("nginx") or "/usr/sbin/nginx", "-c", os.path.join(folder, "nginx.conf"), "-p", folder])
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.01)
        rates = []
        for round_ in range(self.args.rounds):
            database = os.path.join(self.work, f"delivery-{round_}.sqlite")
            # Fill: pacing at one request per 1000 s lets one event out, the rest wait, due now.
            # newestReceiptOnly off: every receipt waits (each has a message of its own); with it,
            # a newer receipt replaces its connection's waiting ones and about one per connection
            # of the 10,000 would be left.
            daemon, sock, _ = self.daemon(f"delivery-fill-{round_}", endpoint=endpoint, database=database, extra_env={
                "PARTICIPANTD_QUOTA_REQUESTS_PER_SECOND": "0.001", "PARTICIPANTD_QUOTA_BURST": "1", **KEEP_EVERY_RECEIPT})
            self.load(sock, 64, count=self.args.delivery_events, mix="read=1,delivered=1", warmup=0)
            waiting = health(sock)["queue"]
            self.stop(daemon)
            to_send = waiting.get("queued", 0) + waiting.get("sending", 0)
            # Drain with pacing off.
            daemon, sock, _ = self.daemon(f"delivery-drain-{round_}", endpoint=endpoint, database=database, extra_env={
                "PARTICIPANTD_QUOTA_REQUESTS_PER_SECOND": "0", "PARTICIPANTD_SENDER_MAX_IN_FLIGHT": "64",
                "PARTICIPANTD_UPSTREAM_MAX_CONNECTIONS": "64"})
            started = time.monotonic()
            while True:
                queue = health(sock)["queue"]
                if queue.get("queued", 0) + queue.get("sending", 0) == 0:
                    break
                if time.monotonic() - started > 600:
                    raise RuntimeError(f"delivery did not finish in 600 s: {queue}")
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            sent = health(sock)["queue"].get("sent", 0) - waiting.get("sent", 0)
            self.stop(daemon)
            os.remove(database)
            if sent != to_send:
                raise RuntimeError(f"{to_send} events were waiting, {sent} were sent")
            rates.append({"events": sent, "seconds": elapsed, "rate": sent / elapsed})
            print(f"  round {round_ + 1}: participantd delivered {sent} events in {elapsed:.2f} s: {sent / elapsed:.0f}/s", flush=True)
        boto = []
        for round_ in range(self.args.rounds):
            boto.append(self.run_json([sys.executable, os.path.join(ROOT, "bench", "boto3_send.py"), "--endpoint", endpoint,
                                       "--threads", "16", "--seconds", str(self.args.seconds)]))
            print(f"  round {round_ + 1}: boto3, 16 threads: {boto[-1]['rate']:.0f}/s", flush=True)
        self.stop(nginx)
        self.results["delivery"] = {"participantd": rates, "boto3": boto}

    def memory_and_start(self):
        """Resident memory idle and with N events waiting; time to answer with N waiting."""
        daemon, sock, _ = self.daemon("memory-idle", bin_dir=self.args.memory_bin)
        time.sleep(2)
        idle = rss_mib(daemon.pid)
        self.stop(daemon)

        database = os.path.join(self.work, "backlog.sqlite")
        n = self.args.backlog
        daemon, sock, _ = self.daemon("backlog-fill", database=database, extra_env=KEEP_EVERY_RECEIPT, bin_dir=self.args.memory_bin)  # see delivery
        filled = self.load(sock, 64, count=n, mix="read=1,delivered=1", warmup=0)
        time.sleep(3)
        full = rss_mib(daemon.pid)
        queue = health(sock)["queue"]
        waiting = queue.get("queued", 0) + queue.get("sending", 0)
        self.stop(daemon)
        database_bytes = os.path.getsize(database)

        starts, rss_after = [], []
        for round_ in range(self.args.rounds):
            daemon, sock, ready = self.daemon(f"backlog-start-{round_}", database=database, bin_dir=self.args.memory_bin)
            starts.append(ready)
            time.sleep(3)
            rss_after.append(rss_mib(daemon.pid))
            self.stop(daemon)
        self.results["memory"] = {
            "idleMiB": idle, "waiting": waiting, "afterFillMiB": full, "afterRestartMiB": statistics.median(rss_after),
            "startSeconds": starts, "databaseBytes": database_bytes, "bytesPerWaitingEvent": database_bytes / max(1, waiting),
            "fillRate": filled["rate"],
        }
        os.remove(database)

    # -- the table --

    def table(self):
        r = self.results
        rows = []

        def median(values, key="rate"):
            return statistics.median(v[key] for v in values)

        if "fsync" in r:
            rows.append(("disk: 4 KiB write + fdatasync, median", f"{r['fsync']['fdatasyncP50Micros'] / 1000:.3f} ms", ""))
        if "accepts" in r:
            a = r["accepts"]
            durable, baseline, pq = median(a["durable"]), median(a["baseline"]), median(a["persistqueue"])
            rows += [
                ("durable accepts, 64 clients (participantd)", f"{durable:,.0f}/s", "target 20,000/s"),
                ("same server, no database (baseline)", f"{baseline:,.0f}/s", f"target 25,000/s (the request path itself); participantd = {durable / baseline:.2f} x baseline"),
                ("persist-queue SQLiteAckQueue.put, 64 writers", f"{pq:,.0f}/s", f"participantd = {durable / pq:.1f} x persist-queue (target >= 3)"),
                ("participantd latency p50 / p99, 64 clients", f"{median(a['durable'], 'p50Micros') / 1000:.1f} / {median(a['durable'], 'p99Micros') / 1000:.1f} ms", ""),
            ]
            if a.get("syncOff"):
                off = median(a["syncOff"])
                rows.append(("same, outbox.syncEveryCommit false (not power-loss safe)", f"{off:,.0f}/s",
                             f"the sync costs {1 - durable / off:.0%} of the rate; p50 {median(a['syncOff'], 'p50Micros') / 1000:.1f} ms"))
        if "batches" in r:
            b = r["batches"]
            rows.append(("durable accepts in batches, 8 clients x 100 events", f"{median(b, 'eventRate'):,.0f} events/s",
                         f"target 100,000 events/s; p50 {median(b, 'p50Micros') / 1000:.1f} ms a batch"))
        if "single" in r:
            s = r["single"]
            limit = r.get("fsync", {}).get("fdatasyncP50Micros", 0) + 300
            rows.append(("one client, one event at a time: p50", f"{s['p50Micros'] / 1000:.3f} ms",
                         f"target <= fdatasync + 0.3 ms = {limit / 1000:.3f} ms; p99 {s['p99Micros'] / 1000:.3f} ms"))
        if "singleSyncOff" in r:
            s = r["singleSyncOff"]
            rows.append(("one client, syncEveryCommit false: p50", f"{s['p50Micros'] / 1000:.3f} ms",
                         f"p99 {s['p99Micros'] / 1000:.3f} ms; the difference is the sync"))
        if "delivery" in r:
            d = r["delivery"]
            sent, boto = median(d["participantd"]), median(d["boto3"])
            rows += [
                ("delivery to nginx, pacing off (participantd)", f"{sent:,.0f}/s", "target 10,000/s"),
                ("boto3 send_event, 16 threads, same nginx", f"{boto:,.0f}/s", f"participantd = {sent / boto:.1f} x boto3 (target >= 10)"),
            ]
        if "memory" in r:
            m = r["memory"]
            binary = os.path.join(self.args.memory_bin or self.bin, "participantd")
            rows += [
                ("resident memory, idle", f"{m['idleMiB']:.1f} MiB", f"target <= 40 MiB; {binary}"),
                (f"resident memory, {m['waiting']:,} waiting (after filling)", f"{m['afterFillMiB']:.1f} MiB", "target <= 80 MiB"),
                (f"resident memory, {m['waiting']:,} waiting (after a restart)", f"{m['afterRestartMiB']:.1f} MiB", ""),
                (f"start to answering, {m['waiting']:,} waiting", f"{statistics.median(m['startSeconds']):.2f} s", "target <= 2 s"),
                ("database bytes per waiting event", f"{m['bytesPerWaitingEvent']:.0f} B", f"{m['databaseBytes'] / 1048576:.0f} MiB for {m['waiting']:,}"),
            ]
        width = max(len(row[0]) for row in rows) if rows else 0
        lines = [f"| {'what':<{width}} | figure | against |", f"|{'-' * (width + 2)}|---|---|"]
        lines += [f"| {name:<{width}} | {figure} | {against} |" for name, figure, against in rows]
        return "\n".join(lines)

    def close(self):
        for process in list(self.processes):
            self.stop(process)
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the folder with the release build of participantd and participant-load")
    parser.add_argument("--memory-bin", default=None,
                        help="the folder of the participantd whose memory and start are measured (default: --bin); "
                             "scripts/build-release's static one is what the Debian package ships")
    parser.add_argument("--dir", default=None, help="where databases go (default: the system's temporary folder)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10, help="length of each throughput run")
    parser.add_argument("--single-count", type=int, default=3000)
    parser.add_argument("--delivery-events", type=int, default=50_000)
    parser.add_argument("--backlog", type=int, default=1_000_000, help="events waiting for the memory and start figures")
    parser.add_argument("--nginx-port", type=int, default=18788)
    parser.add_argument("--only", default="fsync,accepts,batches,single,delivery,memory")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    args = parser.parse_args()

    bench = Bench(args)
    steps = {"fsync": bench.fsync, "accepts": bench.accepts, "batches": bench.batches, "single": bench.single_client,
             "delivery": bench.delivery, "memory": bench.memory_and_start}
    try:
        for name in args.only.split(","):
            print(f"== {name}", flush=True)
            steps[name]()
    finally:
        bench.close()
    print()
    print(bench.table())
    if args.json:
        with open(args.json, "w") as out:
            json.dump(bench.results, out, indent=1)


if __name__ == "__main__":
    main()
