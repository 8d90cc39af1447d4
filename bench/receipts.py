#!/usr/bin/env python3
"""Spending the quota as the official chat client does (bench/receipts.sh runs this).

A real participantd (debug build) delivers to participant-standin enforcing the service's quota
(10 requests/s, burst 15). Events are submitted over the Unix socket (POST /v1/events) at the
times a chat client would send them.

Scenarios:
  chats    50 chats, each receiving 10 messages (one every 200 ms), each message delivered at once
           and read 0.2 to 1 s later by the client: 1,000 receipts. How many requests reach the
           service, and does every chat's newest read receipt reach it? Run with the rules on
           (the defaults), with this issue's rules off (newestReceiptOnly, deliveredHold), and
           with every receipt rule off.
  fairness one connection with 500 read receipts waiting (newestReceiptOnly off, so that they
           stay) and 50 other connections with one read receipt each, submitted just after: how
           long until each of the 50 is sent, with fairShare on and off.

Prints one JSON object per run.
"""
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

from benchlib import UnixConnection, free_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("PARTICIPANTD_BIN", os.path.join(ROOT, ".build", "debug"))
READ = "application/vnd.amazonaws.connect.event.message.read"
DELIVERED = "application/vnd.amazonaws.connect.event.message.delivered"


class Run:
    """A stand-in and a daemon configured with `coalescing`, in a temporary folder."""

    def __init__(self, coalescing):
        self.dir = tempfile.mkdtemp(prefix="pd-receipts-")
        port = free_port()
        self.standin_log = os.path.join(self.dir, "standin.log")
        self.standin = subprocess.Popen([f"{BIN}/participant-standin", "--port", str(port), "--quota-rate", "10", "--quota-burst", "15", "--summary"],
                                        stdout=open(self.standin_log, "w"), stderr=subprocess.STDOUT)
        wait_for(lambda: "listening" in open(self.standin_log).read(), 10, "the stand-in", interval=0.05)
        self.socket = os.path.join(self.dir, "pd.sock")
        config = os.path.join(self.dir, "participantd.yaml")
        with open(config, "w") as f:
            f.write(f"socket: {self.socket}\ndatabase: {self.dir}/outbox.sqlite\nendpoint: http://127.0.0.1:{port}\n"
                    f"log:\n  level: warning\nretry:\n  baseDelaySeconds: 1\n")
            if coalescing:
                f.write("coalescing:\n")
            for key, value in coalescing.items():
                f.write(f"  {key}: {json.dumps(value)}\n")
        self.daemon = subprocess.Popen([f"{BIN}/participantd", "--config", config],
                                       stdout=open(os.path.join(self.dir, "daemon.log"), "w"), stderr=subprocess.STDOUT)
        wait_for(lambda: self.get("/v1/health") is not None, 20, "participantd", interval=0.05)
        self.local = threading.local()

    def connection(self):
        if not hasattr(self.local, "connection"):
            self.local.connection = UnixConnection(self.socket)
        return self.local.connection

    def get(self, path):
        connection = UnixConnection(self.socket)
        try:
            connection.request("GET", path)
            answer = connection.getresponse()
            return json.loads(answer.read()) if answer.status == 200 else None
        finally:
            connection.close()

    def submit(self, event):
        connection = self.connection()
        connection.request("POST", "/v1/events", body=json.dumps(event), headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        if answer.status not in (200, 202):
            raise RuntimeError(f"refused: {answer.status}")

    def service_requests(self):
        """Requests that reached the stand-in: (time, ClientToken, throttled) in order; 429s from the summary."""
        sent = []
        for line in open(self.standin_log):
            parts = line.split(" ")
            if len(parts) > 3 and parts[1] == "ok":
                token = next(p.split("=", 1)[1] for p in parts if p.startswith("ClientToken="))
                sent.append((datetime.strptime(parts[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp(), token))
        return sent

    def throttled(self):
        rows = [line for line in open(self.standin_log) if " summary " in line]
        return int(rows[-1].split("throttled=")[1].split()[0]) if rows else 0

    def waiting(self):
        counts = self.get("/v1/queue/stats")["counts"]
        return counts["queued"] + counts["sending"]

    def close(self):
        self.daemon.terminate()
        self.daemon.wait()
        self.standin.terminate()
        self.standin.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def chats(coalescing, label):
    random.seed(7)
    run = Run(coalescing)
    try:
        schedule = []
        for chat in range(50):
            for message in range(10):
                arrival = message * 0.2 + chat * 0.004
                base = {"connectionToken": f"chat-{chat}", "content": json.dumps({"messageId": f"c{chat}-m{message}"})}
                schedule.append((arrival, dict(base, contentType=DELIVERED, clientToken=f"d-{chat}-{message}")))
                schedule.append((arrival + random.uniform(0.2, 1.0), dict(base, contentType=READ, clientToken=f"r-{chat}-{message}")))
        schedule.sort(key=lambda item: item[0])
        newest_read = {}
        for _, event in schedule:
            if event["contentType"] == READ:
                newest_read[event["connectionToken"]] = event["clientToken"]
        started = time.time()
        queue = list(schedule)
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    if not queue:
                        return
                    at, event = queue.pop(0)
                delay = started + at - time.time()
                if delay > 0:
                    time.sleep(delay)
                run.submit(event)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        submitted = time.time() - started
        wait_for(lambda: run.waiting() == 0, 300, "the outbox to empty", interval=0.05)
        requests = run.service_requests()
        sent_tokens = {token for _, token in requests}
        stats = run.get("/v1/queue/stats")
        return {
            "run": label, "receipts": len(schedule), "submitted_over_s": round(submitted, 2),
            "requests_to_service": len(requests) + run.throttled(), "accepted": len(requests), "throttled_429": run.throttled(),
            "every_newest_read_sent": all(token in sent_tokens for token in newest_read.values()),
            "took_s": round(time.time() - started, 1), "saved": stats.get("savedRequests"),
        }
    finally:
        run.close()


def fairness(fair):
    run = Run({"newestReceiptOnly": False, "fairShare": fair})
    try:
        for index in range(500):
            run.submit({"contentType": READ, "content": json.dumps({"messageId": f"b{index}"}), "clientToken": f"busy-{index}", "connectionToken": "busy"})
        started = time.time()
        for index in range(50):
            run.submit({"contentType": READ, "content": json.dumps({"messageId": "m"}), "clientToken": f"chat-{index}", "connectionToken": f"chat-{index}"})
        wait_for(lambda: all(f"chat-{i}" in {t for _, t in run.service_requests()} for i in range(50)), 120, "the fifty chats", interval=0.05)
        sent_at = {token: at for at, token in run.service_requests()}
        latencies = sorted(sent_at[f"chat-{i}"] - started for i in range(50))
        return {"run": f"fairShare={str(fair).lower()}", "slowest_of_50_s": round(latencies[-1], 2),
                "median_of_50_s": round(latencies[25], 2), "all_within_10_s": latencies[-1] <= 10}
    finally:
        run.close()


def main():
    scenarios = sys.argv[1:] or ["chats", "fairness"]
    for name in scenarios:
        if name == "chats":
            print(json.dumps(chats({}, "rules on (defaults)")), flush=True)
            print(json.dumps(chats({"newestReceiptOnly": False, "deliveredHoldMilliseconds": 0}, "newestReceiptOnly and deliveredHold off")), flush=True)
            print(json.dumps(chats({"newestReceiptOnly": False, "deliveredHoldMilliseconds": 0, "receipts": False}, "every receipt rule off")), flush=True)
        elif name == "fairness":
            print(json.dumps(fairness(True)), flush=True)
            print(json.dumps(fairness(False)), flush=True)
        else:
            raise SystemExit(f"unknown scenario {name}")


if __name__ == "__main__":
    main()
