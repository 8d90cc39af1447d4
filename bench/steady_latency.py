#!/usr/bin/env python3
"""One client at a steady, modest rate, across the janitor's scrub (BENCHMARKS.md, "Issue 31,
eighth round"): the latency of each event's accept before and after the WAL was emptied.

The janitor empties the WAL every 30 s (a TRUNCATE checkpoint, for the erasure of tokens). At a
rate that does not fill `wal_autocheckpoint`'s 16 MiB within 30 s, every commit after that then
writes past the WAL's end, and its sync must also commit the file's new size; a build that
writes the WAL's room back after the scrub overwrites instead. The load tool's benchmarks do not
see this: they fill the WAL within a second and run on a WAL reused in place.

    python3 bench/steady_latency.py --a BIN_A --b BIN_B          # folders with participantd (release)
    python3 bench/steady_latency.py --a BIN_A --b BIN_B --rate 10 --seconds 62 --rounds 2
    python3 bench/steady_latency.py --a BIN_A --b BIN_B --strace   # and the WAL's syncs, timed by strace

Each build's daemon runs with its defaults (every commit synced), its endpoint refusing, in turn
(the order swapped every round). Printed for each: p50 and p99 of the accepts in the window before
the scrub at 30 s (from 2 s) and in the window after it (from 32 s to 59 s), the WAL's size at
the end, and with --strace the durations of the WAL's `fdatasync` calls in the window after it.
"""
import argparse, json, os, re, shutil, signal, subprocess, sys, time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Bench, UnixHTTPConnection  # noqa: E402

READ = "application/vnd.amazonaws.connect.event.message.read"


def sync_times(trace_file, wal):
    """The durations (ms) of the `fdatasync` calls on the WAL in an `strace -T -y` output."""
    times = []
    with open(trace_file) as lines:
        for line in lines:
            found = re.search(r"fdatasync\(\d+<([^>]*)>\) = 0 <([\d.]+)>", line)
            if found and found.group(1) == os.path.realpath(wal):
                times.append(float(found.group(2)) * 1000)
    return times


def run(bench, name, folder, rate, seconds, trace):
    daemon, sock, _ = bench.daemon(name, bin_dir=folder)
    started = time.monotonic()
    wal = os.path.join(bench.work, name, "outbox.sqlite-wal")
    trace_file = os.path.join(bench.work, name, "fdatasync.strace")
    tracer = None
    connection = UnixHTTPConnection(sock, timeout=10)
    samples = []
    index = 0
    try:
        while True:
            due = started + index / rate
            now = time.monotonic()
            if now - started >= seconds:
                break
            if trace and tracer is None and now - started >= 32:
                tracer = subprocess.Popen(["strace", "-f", "-T", "-y", "-e", "trace=fdatasync", "-o", trace_file, "-p", str(daemon.pid)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if tracer is not None and tracer.poll() is None and now - started >= 59:
                tracer.send_signal(signal.SIGINT)
                tracer.wait()
            if due > now:
                time.sleep(due - now)
            body = json.dumps({"contentType": READ, "content": json.dumps({"messageId": f"m-{index}"}),
                               "connectionToken": f"steady-connection-{index % 16}", "clientToken": f"{name}-{index}"})
            sent = time.monotonic()
            connection.request("POST", "/v1/events", body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            if answer.status not in (200, 202):
                raise RuntimeError(f"{name}: answer {answer.status}")
            samples.append((sent - started, time.monotonic() - sent))
            index += 1
        wal_size = os.path.getsize(wal) if os.path.exists(wal) else 0
    finally:
        if tracer is not None and tracer.poll() is None:
            tracer.send_signal(signal.SIGINT)
            tracer.wait()
        connection.close()
        bench.stop(daemon)
    syncs = None
    if tracer is not None:
        times = sorted(sync_times(trace_file, wal))
        if times:
            syncs = {"count": len(times), "p50": times[len(times) // 2], "p90": times[int(len(times) * 0.9)]}

    def window(low, high):
        values = sorted(latency for at, latency in samples if low <= at < high)
        if not values:
            return None
        return {"count": len(values), "p50": values[len(values) // 2] * 1000, "p99": values[int(len(values) * 0.99)] * 1000}

    return {"before": window(2, 29), "after": window(32, 59), "walBytes": wal_size, "walSyncsAfter": syncs}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="folder with build A's participantd")
    parser.add_argument("--b", required=True, help="folder with build B's participantd")
    parser.add_argument("--rate", type=float, default=10, help="events a second, one at a time (default 10: under 16 MiB of WAL in 30 s)")
    parser.add_argument("--seconds", type=float, default=62, help="seconds a run (default 62: past the scrub at 30 s)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write every figure to this file")
    parser.add_argument("--strace", action="store_true", help="also time the WAL's fdatasync calls after the scrub (32 s to 59 s) with strace -T")
    args = parser.parse_args()
    if args.strace and shutil.which("strace") is None:
        parser.error("--strace: strace is not installed (apt-get install strace)")
    for folder in (args.a, args.b):
        if not os.access(os.path.join(folder, "participantd"), os.X_OK):
            parser.error(f"no participantd in {folder}")
    bench = Bench(argparse.Namespace(bin=args.b, dir=None, rounds=args.rounds, seconds=args.seconds, keep=False))
    results = {"a": [], "b": []}
    for index in range(args.rounds):
        for build in (("a", "b") if index % 2 == 0 else ("b", "a")):
            result = run(bench, f"{build}-{index}", getattr(args, build), args.rate, args.seconds, args.strace)
            results[build].append(result)
            print(f"round {index + 1}, {build}: {json.dumps(result)}", flush=True)
    print()
    print("| | before the scrub at 30 s: p50 / p99 | after it: p50 / p99 | the WAL's syncs after it: p50 / p90 | WAL at the end |")
    print("|---|---|---|---|---|")
    for build in ("a", "b"):
        for result in results[build]:
            before, after, syncs = result["before"], result["after"], result["walSyncsAfter"]
            synced = f"{syncs['p50']:.3f} / {syncs['p90']:.3f} ms ({syncs['count']})" if syncs else "not traced"
            print(f"| {build} | {before['p50']:.3f} / {before['p99']:.3f} ms | {after['p50']:.3f} / {after['p99']:.3f} ms | {synced} | {result['walBytes'] / 1048576:.1f} MiB |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
