#!/usr/bin/env python3
"""CPU time each thread of a process spends over an interval, summed by thread name.

    python3 bench/threads.py PID [SECONDS]

Reads utime + stime of /proc/PID/task/*/stat at the start and the end (clock ticks, 1/100 s) and
prints the difference by thread name (`comm`), most first. Used while participant-load runs
against participantd (BENCHMARKS.md, "Issue 31, third round"): the outbox writer's thread
(`outbox-writer`) beside the event loops (`NIO-SGLTN-*`) and Swift's pool shows which one bounds
the rate.
"""
import collections
import os
import sys
import time


def sample(pid):
    """Thread id -> (name, ticks of CPU so far)."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat_file:
                stat = stat_file.read()
            with open(f"/proc/{pid}/task/{tid}/comm") as comm_file:
                name = comm_file.read().strip()
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        threads[tid] = (name, int(fields[11]) + int(fields[12]))
    return threads


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pid, seconds = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    ticks = os.sysconf("SC_CLK_TCK")
    before = sample(pid)
    time.sleep(seconds)
    after = sample(pid)
    by_name = collections.Counter()
    for tid, (name, used) in after.items():
        by_name[name] += used - before.get(tid, (name, 0))[1]
    print(f"CPU seconds by thread over {seconds:g} s:")
    for name, used in by_name.most_common():
        print(f"  {name:24s} {used / ticks:6.2f}")


if __name__ == "__main__":
    main()
