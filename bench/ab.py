#!/usr/bin/env python3
"""Two builds of participantd side by side, in one run: which is faster at durable accepts.

This machine's speed drifts by a third within minutes (BENCHMARKS.md), so two builds measured
one after the other cannot be compared by their rates; here the two alternate in every round,
and each round gives a ratio. Each build's daemon runs with its defaults (every commit synced)
at `log.level: info`, on a socket of its own, its endpoint refusing, so events stay waiting.

    python3 bench/ab.py --a BIN_A --b BIN_B            # folders with participantd (release)
    python3 bench/ab.py --a BIN_A --b BIN_B --rounds 5 --seconds 8 --json FILE

Measured in each round, for each build, the order of the two swapped every round: 64 clients
(read receipts), 8 clients posting batches of 100, and one client's latency (p50, p99) over
--single-count events. participant-load is the one in --load (default: --b's folder).
"""
import argparse, json, os, statistics, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Bench  # noqa: E402

RECEIPTS = "read=1"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="folder with build A's participantd")
    parser.add_argument("--b", required=True, help="folder with build B's participantd")
    parser.add_argument("--load", default=None, help="folder with participant-load (default: --b)")
    parser.add_argument("--dir", default=None, help="where the daemons' files go (default: the system's temporary folder)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8, help="seconds of load a measurement")
    parser.add_argument("--single-count", type=int, default=3000, help="events one client sends, one at a time")
    parser.add_argument("--only", default="clients64,batches,single", help="which measurements, comma-separated (default: all three)")
    parser.add_argument("--json", default=None, help="also write every figure to this file")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if not only <= {"clients64", "batches", "single"}:
        parser.error(f"--only: unknown {sorted(only - {'clients64', 'batches', 'single'})}")
    for folder in (args.a, args.b):
        if not os.access(os.path.join(folder, "participantd"), os.X_OK):
            parser.error(f"no participantd in {folder}")
    bench = Bench(argparse.Namespace(bin=args.load or args.b, dir=args.dir, rounds=args.rounds, seconds=args.seconds, keep=False))
    env = {"PARTICIPANTD_LOG_LEVEL": "info"}
    rounds = []
    try:
        for index in range(args.rounds):
            order = ("a", "b") if index % 2 == 0 else ("b", "a")
            row = {}
            for build in order:
                folder = getattr(args, build)
                figures = {}
                if "clients64" in only:
                    daemon, sock, _ = bench.daemon(f"{build}-{index}", extra_env=env, bin_dir=folder)
                    figures["clients64"] = bench.load(sock, 64, seconds=args.seconds, mix=RECEIPTS)["rate"]
                    bench.stop(daemon)
                if "batches" in only:
                    daemon, sock, _ = bench.daemon(f"{build}-batch-{index}", extra_env=env, bin_dir=folder)
                    figures["batches"] = bench.load(sock, 8, seconds=args.seconds, mix=RECEIPTS, batch=100)["eventRate"]
                    bench.stop(daemon)
                if "single" in only:
                    daemon, sock, _ = bench.daemon(f"{build}-single-{index}", extra_env=env, bin_dir=folder)
                    single = bench.load(sock, 1, count=args.single_count, warmup=0.5, mix=RECEIPTS)
                    figures["p50"], figures["p99"] = single["p50Micros"] / 1000, single["p99Micros"] / 1000
                    bench.stop(daemon)
                row[build] = figures
            rounds.append(row)
            said = []
            if "clients64" in only:
                said.append(f"64 clients {row['a']['clients64']:,.0f} -> {row['b']['clients64']:,.0f}/s")
            if "batches" in only:
                said.append(f"batches {row['a']['batches']:,.0f} -> {row['b']['batches']:,.0f} events/s")
            if "single" in only:
                said.append(f"one client p50 {row['a']['p50']:.3f} -> {row['b']['p50']:.3f} ms")
            print(f"round {index + 1}: " + "; ".join(said), flush=True)
    finally:
        bench.close()

    def column(build, key):
        return [row[build][key] for row in rounds]

    print()
    print("| | A: median (the rounds) | B: median (the rounds) | B / A, median of the rounds' ratios |")
    print("|---|---|---|---|")
    for key, name, unit in (("clients64", "64 clients", "/s"), ("batches", "batches of 100, 8 clients", " events/s")):
        if key not in only:
            continue
        a, b = column("a", key), column("b", key)
        ratio = statistics.median(y / x for x, y in zip(a, b))
        print(f"| {name} | {statistics.median(a):,.0f}{unit} ({', '.join(f'{v:,.0f}' for v in a)}) | "
              f"{statistics.median(b):,.0f}{unit} ({', '.join(f'{v:,.0f}' for v in b)}) | {ratio:.2f} x |")
    for key in ("p50", "p99") if "single" in only else ():
        a, b = column("a", key), column("b", key)
        difference = statistics.median(y - x for x, y in zip(a, b))
        print(f"| one client, {key} | {statistics.median(a):.3f} ms | {statistics.median(b):.3f} ms | {difference:+.3f} ms |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"a": args.a, "b": args.b, "rounds": rounds}, out, indent=1)


if __name__ == "__main__":
    main()
