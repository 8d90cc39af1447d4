#!/usr/bin/env python3
"""Resident memory and threads under a flood of the largest requests (issue 29: memory bounded).

Starts participantd (built with `swift build`, or --bin) with nothing to send to, then opens
--connections connections (all api.maxConnections by default; the flood raises
access.peerMaxConnections to match, since one user floods) and has each post the largest body the
daemon takes, again and again: a batch of api.maxBatchEvents read receipts padded with whitespace to
api.maxBatchBytes (2 MiB). The outbox fills and then refuses (503), but every body is still read.
Prints the daemon's peak resident memory (VmHWM), its resident memory at the end and its most
threads, which the unit's MemoryMax= and TasksMax= must stay above.

    swift build && python3 bench/flood.py --seconds 30
"""
import argparse, json, os, subprocess, sys, tempfile, threading, time

from benchlib import UnixConnection, wait_for


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--bin", default=subprocess.run(["swift", "build", "--show-bin-path"], capture_output=True, text=True).stdout.strip())
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="pd-flood-")
    sock = os.path.join(work, "s.sock")
    env = dict(os.environ, PARTICIPANTD_LOG_LEVEL="warning", PARTICIPANTD_ACCESS_PEER_MAX_CONNECTIONS=str(args.connections))
    daemon = subprocess.Popen([os.path.join(args.bin, "participantd"), "--socket", sock, "--database", os.path.join(work, "outbox.sqlite"),
                               "--endpoint", "http://127.0.0.1:9"], env=env, stderr=subprocess.DEVNULL)
    try:
        def healthy():
            connection = UnixConnection(sock)
            connection.request("GET", "/v1/health")
            return connection.getresponse().status == 200
        wait_for(healthy, 60, "participantd ready")

        events = [{"contentType": "application/vnd.amazonaws.connect.event.message.read",
                   "content": json.dumps({"messageId": f"m-{i}"}), "connectionToken": f"flood-{i % 50}"} for i in range(500)]
        body = json.dumps({"events": events}).encode()
        body = body[:-1] + b" " * (2 * 1024 * 1024 - len(body)) + b"}"
        stop = time.time() + args.seconds
        counts = {}
        lock = threading.Lock()

        def flood():
            connection = UnixConnection(sock, timeout=60)
            while time.time() < stop:
                try:
                    connection.request("POST", "/v1/events/batch", body=body, headers={"Content-Type": "application/json"})
                    response = connection.getresponse()
                    response.read()
                    with lock:
                        counts[response.status] = counts.get(response.status, 0) + 1
                except Exception as error:
                    with lock:
                        counts[type(error).__name__] = counts.get(type(error).__name__, 0) + 1
                    connection = UnixConnection(sock, timeout=60)

        threads = [threading.Thread(target=flood) for _ in range(args.connections)]
        for thread in threads:
            thread.start()
        most_threads = 0
        while time.time() < stop:
            most_threads = max(most_threads, int(status(daemon.pid)["Threads"]))
            time.sleep(0.5)
        for thread in threads:
            thread.join()
        end = status(daemon.pid)
        print(f"{args.connections} connections x {len(body):,}-byte batches for {args.seconds:.0f} s: answers {dict(sorted(counts.items(), key=str))}")
        print(f"peak resident {end['VmHWM']}, resident at the end {end['VmRSS']}, threads at most {most_threads}")
    finally:
        daemon.terminate()
        daemon.wait()


if __name__ == "__main__":
    sys.exit(main())
