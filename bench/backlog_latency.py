#!/usr/bin/env python3
"""Accept latency as one connection's backlog grows (issue 18's defect): starts participantd with
an unreachable service, submits 5,000 read receipts with distinct messageIds on one connection
token over the socket, one at a time, and prints the median latency of each thousand.

    python3 bench/backlog_latency.py .build-release/release/participantd
    PARTICIPANTD_COALESCING_RECEIPTS=false python3 bench/backlog_latency.py BINARY   # rules off

A flat line is right; before the fix it grew with the backlog (1.13 ... 4.92 ms).
"""
import http.client, socket, json, time, sys, statistics, subprocess, os, tempfile, shutil
class UnixConn(http.client.HTTPConnection):
    def __init__(self, path): super().__init__("localhost"); self.path_ = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); self.sock.connect(self.path_)
binary, extra = sys.argv[1], sys.argv[2:]
d = tempfile.mkdtemp(dir="/tmp")  # short: a socket path has at most 108 bytes
sock = d + "/s.sock"
p = subprocess.Popen([binary, "--socket", sock, "--database", d + "/o.sqlite", "--endpoint", "http://127.0.0.1:9", "--log-level", "error"] + extra)
while not os.path.exists(sock): time.sleep(0.05)
time.sleep(0.3)
c = UnixConn(sock)
lat = []
for i in range(5000):
    body = json.dumps({"contentType": "application/vnd.amazonaws.connect.event.message.read", "content": json.dumps({"messageId": f"m-{i}"}), "connectionToken": "one-connection"})
    t = time.perf_counter()
    c.request("POST", "/v1/events", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    lat.append(time.perf_counter() - t)
    assert r.status in (200, 202), r.status
print(" ".join(f"{statistics.median(lat[k:k+1000])*1000:.2f}" for k in range(0, 5000, 1000)), "ms median per thousand")
p.terminate(); p.wait()
shutil.rmtree(d)
