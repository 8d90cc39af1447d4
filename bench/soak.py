#!/usr/bin/env python3
"""Outbox size under a long steady load (issue: bounds and retention).

Starts participant-standin and participantd (built with `swift build`), submits events at a steady
rate over the Unix socket for a while, and prints the database's size every 15 seconds. With a
short retention the file must stop growing once the janitor deletes finished events.

    swift build && python3 bench/soak.py --rate 200 --seconds 300 --retention 60

With --message-bytes N it submits text messages of N bytes instead of read receipts, and with
--drain S it goes on printing for S seconds after the last submission: the file gives its free
pages back as retention empties it (incremental vacuum).

    swift build && python3 bench/soak.py --rate 200 --seconds 120 --retention 60 --message-bytes 1000 --drain 150
"""
import argparse, http.client, json, os, socket, subprocess, sys, tempfile, threading, time

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.unix_path)
        self.sock = sock

def request(conn, method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body else None, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200, help="events per second")
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--retention", type=float, default=60, help="outbox.retentionSeconds")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--message-bytes", type=int, default=0, help="submit text messages of this size instead of read receipts")
    parser.add_argument("--drain", type=float, default=0, help="seconds to go on printing after the last submission")
    parser.add_argument("--bin", default=subprocess.run(["swift", "build", "--show-bin-path"], capture_output=True, text=True).stdout.strip())
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="pd-soak-")
    sock_path, db = os.path.join(work, "s.sock"), os.path.join(work, "outbox.sqlite")
    standin = subprocess.Popen([os.path.join(args.bin, "participant-standin"), "--port", "18787"], stdout=subprocess.DEVNULL)
    env = dict(os.environ, PARTICIPANTD_OUTBOX_RETENTION_SECONDS=str(args.retention),
               PARTICIPANTD_QUOTA_REQUESTS_PER_SECOND="0", PARTICIPANTD_LOG_LEVEL="warning")
    daemon = subprocess.Popen([os.path.join(args.bin, "participantd"), "--socket", sock_path, "--database", db,
                               "--endpoint", "http://127.0.0.1:18787"], env=env)
    try:
        for _ in range(100):
            if os.path.exists(sock_path):
                break
            time.sleep(0.1)
        time.sleep(0.5)
        stop = time.monotonic() + args.seconds
        submitted, refused = [0], [0]
        lock = threading.Lock()

        def client(worker):
            conn = UnixHTTPConnection(sock_path)
            interval = args.threads / args.rate
            next_at, n = time.monotonic(), 0
            while time.monotonic() < stop:
                n += 1
                connection = f"soak-connection-{(worker * 7919 + n) % 50}"
                if args.message_bytes:
                    text = f"{worker}-{n} ".ljust(args.message_bytes, "x")
                    status, _ = request(conn, "POST", "/v1/messages", {
                        "contentType": "text/plain", "content": text, "connectionToken": connection})
                else:
                    status, _ = request(conn, "POST", "/v1/events", {
                        "contentType": "application/vnd.amazonaws.connect.event.message.read",
                        "content": json.dumps({"messageId": f"{worker}-{n}"}),
                        "connectionToken": connection})
                with lock:
                    if status == 202: submitted[0] += 1
                    else: refused[0] += 1
                next_at += interval
                time.sleep(max(0, next_at - time.monotonic()))

        threads = [threading.Thread(target=client, args=(w,)) for w in range(args.threads)]
        for t in threads: t.start()
        print(f"{'t(s)':>6} {'submitted':>10} {'db MiB':>8} {'wal MiB':>8} {'rows':>8} {'sent':>8} {'waiting':>8}")
        started = time.monotonic()
        health_conn = UnixHTTPConnection(sock_path)
        drain_until = None
        while True:
            if not any(t.is_alive() for t in threads):
                drain_until = drain_until or time.monotonic() + args.drain
                if time.monotonic() >= drain_until:
                    break
            time.sleep(15)
            sizes = [os.path.getsize(db + s) / 1048576 if os.path.exists(db + s) else 0 for s in ("", "-wal")]
            _, health = request(health_conn, "GET", "/v1/health")
            q = health.get("queue", {})
            rows = sum(q.values())
            print(f"{time.monotonic() - started:6.0f} {submitted[0]:10d} {sizes[0]:8.2f} {sizes[1]:8.2f} {rows:8d} {q.get('sent', 0):8d} "
                  f"{q.get('queued', 0) + q.get('sending', 0):8d}", flush=True)
        for t in threads: t.join()
        print(f"submitted {submitted[0]}, refused {refused[0]}, database folder {work}")
    finally:
        daemon.terminate(); standin.terminate()
        daemon.wait(); standin.wait()

if __name__ == "__main__":
    sys.exit(main())
