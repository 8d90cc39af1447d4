#!/usr/bin/env python3
"""persist-queue's SQLiteAckQueue.put, the in-process library a program could use instead.

One writer per client: CLIENTS threads, each with its own SQLiteAckQueue on the same folder (and
so the same SQLite file), putting the same JSON events participant-load sends, with
synchronous=FULL as participantd commits. Prints one JSON object: rate and latency percentiles.

    python3 bench/persistqueue_put.py --dir /tmp/pq --clients 64 --seconds 10
"""
import argparse, json, os, sqlite3, statistics, threading, time

import persistqueue


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    queues = []
    for _ in range(args.clients):
        queue = persistqueue.SQLiteAckQueue(args.dir, multithreading=True, auto_commit=True, timeout=60)
        queue._putter.execute("PRAGMA synchronous=FULL")  # the library leaves the default; make it explicit
        queues.append(queue)
    assert queues[0]._putter.execute("PRAGMA synchronous").fetchone()[0] == 2

    start = time.monotonic()
    measure_from = start + args.warmup
    stop_at = measure_from + args.seconds
    latencies = [[] for _ in range(args.clients)]
    errors = []

    def client(index):
        queue, n = queues[index], 0
        try:
            while True:
                begun = time.monotonic()
                if begun >= stop_at:
                    return
                n += 1
                queue.put({
                    "contentType": "application/vnd.amazonaws.connect.event.message.read",
                    "content": json.dumps({"messageId": f"m-{index}-{n}"}),
                    "clientToken": f"pq-{index}-{n}",
                    "connectionToken": f"load-connection-{n % 10000}",
                })
                if begun >= measure_from:
                    latencies[index].append(time.monotonic() - begun)
        except Exception as error:  # reported, not hidden
            errors.append(repr(error))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = sorted(x for per in latencies for x in per)
    count = len(everything)

    def pct(p):
        return int(everything[min(count - 1, int(count * p / 100))] * 1e6) if count else 0

    print(json.dumps({
        "clients": args.clients, "requests": count, "seconds": args.seconds, "rate": count / args.seconds,
        "p50Micros": pct(50), "p99Micros": pct(99), "errors": errors[:5],
        "persistqueue": persistqueue.__version__, "sqlite": sqlite3.sqlite_version,
    }))


if __name__ == "__main__":
    main()
