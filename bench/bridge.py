#!/usr/bin/env python3
"""A bridge's whole outgoing side through participantd (bench/bridge.sh runs this; issue 27).

A real participantd (debug build) delivers to participant-standin, which enforces the service's
quotas (SendEvent and SendMessage 10/s burst 15 in one bucket, DisconnectParticipant 3/s burst 5,
CreateParticipantConnection 6/s burst 9) and checks every request's wire format.

Scenarios:
  bridge       50 chats, each 20 messages with typing and a read receipt around each, then a
               disconnect, submitted over the socket as a bridge would (each chat in order, a
               little apart); the stand-in answers 10% of requests 500 and drops 3% of
               connections; participantd is killed with SIGKILL once, midway, and started again,
               and every client resubmits what was not acknowledged (same ClientToken). Checked:
               every message reached the service once and in order per chat, each disconnect after
               its chat's last message, and how many 429s the quota gave.
  participant  10 chats named by a participant token, connection tokens living 10 s at the
               stand-in, a message per chat every 2 s for 40 s; then one chat ends at the
               stand-in and gets three more items. Checked: no request with an expired token,
               connections created per chat and how far apart, and how many requests the ended
               chat cost before its items failed.
  sdk          the real aws CLI and boto3: send-message and disconnect-participant through the
               daemon's aws.listen (only changing the endpoint URL).

Prints one JSON object per scenario.
"""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import UnixConnection, free_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("PARTICIPANTD_BIN", os.path.join(ROOT, ".build", "debug"))
TYPING = "application/vnd.amazonaws.connect.event.typing"
READ = "application/vnd.amazonaws.connect.event.message.read"


class Run:
    """A stand-in started with `standin_args` and a daemon over it, in a temporary folder."""

    def __init__(self, standin_args, daemon_yaml="", aws_listen=False):
        self.dir = tempfile.mkdtemp(prefix="pd-bridge-")
        self.port = free_port()
        self.standin_log = os.path.join(self.dir, "standin.log")
        self.standin = subprocess.Popen([f"{BIN}/participant-standin", "--port", str(self.port)] + standin_args,
                                        stdout=open(self.standin_log, "w"), stderr=subprocess.STDOUT)
        wait_for(lambda: "listening" in open(self.standin_log).read(), 10, "the stand-in", interval=0.05)
        self.socket = os.path.join(self.dir, "pd.sock")
        self.config = os.path.join(self.dir, "participantd.yaml")
        self.aws_port = free_port() if aws_listen else None
        with open(self.config, "w") as f:
            f.write(f"socket: {self.socket}\ndatabase: {self.dir}/outbox.sqlite\nendpoint: http://127.0.0.1:{self.port}\n"
                    f"log:\n  level: warning\n{daemon_yaml}")
            if aws_listen:
                f.write(f"aws:\n  listen: 127.0.0.1:{self.aws_port}\n  waitForDeliverySeconds: 10\n")
        self.start_daemon()
        self.local = threading.local()

    def start_daemon(self):
        self.daemon = subprocess.Popen([f"{BIN}/participantd", "--config", self.config],
                                       stdout=open(os.path.join(self.dir, "daemon.log"), "a"), stderr=subprocess.STDOUT)
        wait_for(lambda: self.get("/v1/health") is not None, 30, "participantd", interval=0.05)

    def kill_and_restart(self):
        self.daemon.send_signal(signal.SIGKILL)
        self.daemon.wait()
        self.start_daemon()

    def get(self, path):
        connection = UnixConnection(self.socket)
        try:
            connection.request("GET", path)
            answer = connection.getresponse()
            return json.loads(answer.read()) if answer.status == 200 else None
        except OSError:
            return None
        finally:
            connection.close()

    def post(self, path, body):
        """The answer's status and JSON; raises OSError when the daemon cannot be reached."""
        connection = UnixConnection(self.socket)
        try:
            connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read() or b"{}")
        finally:
            connection.close()

    def submit_until_acknowledged(self, path, body):
        """As a careful client: until the daemon acknowledged it (a restart in between: again, same ClientToken)."""
        while True:
            try:
                status, answer = self.post(path, body)
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
                continue
            if status in (200, 202):
                return answer
            if status in (503,):
                time.sleep(0.1)
                continue
            raise RuntimeError(f"{path} refused: {status} {answer}")

    def standin_report(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", "/standin/report")
        return json.loads(connection.getresponse().read())

    def standin_post(self, path, text):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("POST", path, body=text)
        connection.getresponse().read()

    def waiting(self):
        stats = self.get("/v1/queue/stats")
        return None if stats is None else stats["counts"]["queued"] + stats["counts"]["sending"]

    def close(self):
        self.daemon.terminate()
        self.daemon.wait()
        self.standin.terminate()
        self.standin.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def bridge(chats=50, messages=20):
    random.seed(27)
    run = Run(["--quota-rate", "10", "--quota-burst", "15", "--disconnect-quota-rate", "3", "--disconnect-quota-burst", "5",
               "--error-percent", "10", "--drop-percent", "3", "--seed", "27"])
    try:
        acknowledged = [0]
        lock = threading.Lock()
        killed = threading.Event()

        def chat(index):
            token = f"bridge-chat-{index}-connection-token"
            rng = random.Random(index)
            for number in range(1, messages + 1):
                run.submit_until_acknowledged("/v1/events", {"contentType": TYPING, "clientToken": f"c{index}-t{number}", "connectionToken": token})
                run.submit_until_acknowledged("/v1/messages", {"contentType": "text/plain", "content": f"{number}/{messages}",
                                                               "clientToken": f"c{index}-m{number}", "connectionToken": token})
                run.submit_until_acknowledged("/v1/events", {"contentType": READ, "content": json.dumps({"messageId": f"agent-{index}-{number}"}),
                                                             "clientToken": f"c{index}-r{number}", "connectionToken": token})
                with lock:
                    acknowledged[0] += 1
                time.sleep(rng.uniform(0.05, 0.3))
            run.submit_until_acknowledged("/v1/disconnect", {"clientToken": f"c{index}-bye", "connectionToken": token})

        kill_times = []

        def killer():
            wait_for(lambda: acknowledged[0] >= chats * messages // 2, 600, "half the messages acknowledged", interval=0.05)
            kill_times.append(time.time())
            run.kill_and_restart()
            kill_times.append(time.time())
            killed.set()

        started = time.time()
        threads = [threading.Thread(target=chat, args=(index,)) for index in range(chats)] + [threading.Thread(target=killer)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        submitted = time.time() - started
        wait_for(lambda: run.waiting() == 0, 1800, "the outbox to empty", interval=0.2)
        took = time.time() - started
        report = run.standin_report()
        arrivals = report["arrivals"]
        by_chat = {}
        for position, arrival in enumerate(arrivals):
            by_chat.setdefault(arrival["bearer"], []).append((position, arrival))
        in_order, disconnect_last, complete = 0, 0, 0
        for index in range(chats):
            items = by_chat.get(f"bridge-chat-{index}-connection-token", [])
            contents = [a["content"] for _, a in items if a["operation"] == "SendMessage"]
            if contents == [f"{n}/{messages}" for n in range(1, messages + 1)]:
                in_order += 1
            if len(contents) == messages and len(set(contents)) == messages:
                complete += 1
            last_message = max((p for p, a in items if a["operation"] == "SendMessage"), default=None)
            disconnects = [p for p, a in items if a["operation"] == "DisconnectParticipant"]
            if len(disconnects) == 1 and last_message is not None and disconnects[0] > last_message:
                disconnect_last += 1
        message_arrivals = [a for a in arrivals if a["operation"] == "SendMessage"]
        deduplicated = sum(count - 1 for key, count in report["acceptCounts"].items() if key.startswith("SendMessage "))
        stats = run.get("/v1/queue/stats")
        return {
            "scenario": "bridge", "chats": chats, "messages": chats * messages, "killed_midway": killed.is_set(),
            "messages_at_the_service": len(message_arrivals), "distinct_messages": len({a["clientToken"] for a in message_arrivals}),
            "chats_complete": complete, "chats_in_order": in_order, "chats_disconnect_after_last_message": disconnect_last,
            "messages_sent_again_and_deduplicated_by_clienttoken": deduplicated,
            "quota_429s": report["throttled"], "requests": report["requests"], "invalid_requests": report["invalidRequests"],
            "killed_at_s": round(kill_times[0] - started, 2), "restarted_at_s": round(kill_times[1] - started, 2),
            "quota_429s_at": [line.rsplit(" at ", 1)[1] for line in report["throttledRequests"]],
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)),
            "outbox_counts": stats["counts"], "saved_requests": stats.get("savedRequests"),
            "submitted_over_s": round(submitted, 1), "took_s": round(took, 1),
        }
    finally:
        run.close()


def participant(chats=10, seconds=40, lifetime=10):
    run = Run(["--quota-rate", "10", "--quota-burst", "15", "--connection-quota-rate", "6", "--connection-quota-burst", "9",
               "--connection-lifetime-seconds", str(lifetime)])
    try:
        tokens = [f"participant-token-{index}-{os.urandom(4).hex()}" for index in range(chats)]
        started = time.time()

        def chat(index):
            for number in range(seconds // 2):
                at = started + number * 2 + index * 0.05
                time.sleep(max(0, at - time.time()))
                run.submit_until_acknowledged("/v1/messages", {"contentType": "text/plain", "content": f"{number}",
                                                               "clientToken": f"p{index}-m{number}", "participantToken": tokens[index]})

        threads = [threading.Thread(target=chat, args=(index,)) for index in range(chats)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_for(lambda: run.waiting() == 0, 300, "the outbox to empty", interval=0.2)
        report = run.standin_report()
        creations = {}
        for creation in report["creations"]:
            creations.setdefault(creation["participantToken"], []).append(creation)
        gaps = [b["createdAt"] - a["createdAt"] for made in creations.values() for a, b in zip(made, made[1:])]
        early = [a["expiry"] - b["createdAt"] for made in creations.values() for a, b in zip(made, made[1:])]

        # One chat ends at the service; three more items for it.
        ended = tokens[0]
        bearers = {ended} | {c["connectionToken"] for c in creations.get(ended, [])}
        before = sum(report["requestsByBearer"].get(b, 0) for b in bearers)
        run.standin_post("/standin/end-participant", ended)
        # Three more items at once: those acknowledged fail; once the chat is known to be over,
        # the rest are refused at once (410 ConnectionRejected).
        late = {}
        for number in range(3):
            status, answer = run.post("/v1/messages", {"contentType": "text/plain", "content": "after the end",
                                                       "clientToken": f"p0-late-{number}", "participantToken": ended})
            late[f"p0-late-{number}"] = status
        stored = [token for token, status in late.items() if status in (200, 202)]
        wait_for(lambda: all((run.get(f"/v1/events/{t}") or {}).get("state") == "failed" for t in stored), 60, "the ended chat's items to fail")
        after = run.standin_report()
        bearers |= {c["connectionToken"] for c in after["creations"] if c["participantToken"] == ended}
        cost = sum(after["requestsByBearer"].get(b, 0) for b in bearers) - before
        reason = run.get(f"/v1/events/{stored[0]}")["lastError"]["message"]
        return {
            "scenario": "participant", "chats": chats, "messages": chats * (seconds // 2), "connection_lifetime_s": lifetime,
            "requests_with_an_expired_token": after["expiredTokenUses"],
            "connections_created": len(report["creations"]),
            "connections_per_chat": sorted({len(made) for made in creations.values()}),
            "shortest_gap_between_a_chats_connections_s": round(min(gaps), 2) if gaps else None,
            "most_life_left_at_a_renewal_s": round(max(early), 2) if early else None,
            "quota_429s": after["throttled"],
            "ended_chat_submissions": late, "ended_chat_requests_until_its_items_failed": cost, "ended_chat_reason": reason,
        }
    finally:
        run.close()


def sdk():
    run = Run([], aws_listen=True)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    endpoint = f"http://127.0.0.1:{run.aws_port}"
    try:
        cli = ["aws", "connectparticipant", "--endpoint-url", endpoint, "--region", "us-east-1", "--no-sign-request", "--output", "json"]
        message = subprocess.run(cli[:2] + ["send-message"] + cli[2:] + ["--connection-token", "cli-chat", "--content-type", "text/plain", "--content", "from the aws CLI"],
                                 capture_output=True, text=True, env=env)
        disconnect = subprocess.run(cli[:2] + ["disconnect-participant"] + cli[2:] + ["--connection-token", "cli-chat"], capture_output=True, text=True, env=env)
        script = f"""
import boto3, botocore, json
from botocore.config import Config
client = boto3.client("connectparticipant", region_name="us-east-1", endpoint_url="{endpoint}", config=Config(signature_version=botocore.UNSIGNED))
sent = client.send_message(ConnectionToken="boto-chat", ContentType="text/markdown", Content="**from boto3**")
gone = client.disconnect_participant(ConnectionToken="boto-chat")
print(json.dumps({{"Id": sent["Id"], "MessageMetadata": sent.get("MessageMetadata"), "disconnect": gone["ResponseMetadata"]["HTTPStatusCode"]}}))
"""
        boto = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
        report = run.standin_report()
        return {
            "scenario": "sdk",
            "aws_cli_send_message": {"exit": message.returncode, "output": json.loads(message.stdout or "{}"), "error": message.stderr.strip()[-300:]},
            "aws_cli_disconnect_participant": {"exit": disconnect.returncode, "error": disconnect.stderr.strip()[-300:]},
            "boto3": json.loads(boto.stdout) if boto.returncode == 0 else boto.stderr.strip()[-300:],
            "at_the_service": [(a["operation"], a["bearer"]) for a in report["arrivals"]],
        }
    finally:
        run.close()


def main():
    scenarios = sys.argv[1:] or ["bridge", "participant", "sdk"]
    for name in scenarios:
        if name == "bridge":
            print(json.dumps(bridge()), flush=True)
        elif name == "participant":
            print(json.dumps(participant()), flush=True)
        elif name == "sdk":
            print(json.dumps(sdk()), flush=True)
        else:
            raise SystemExit(f"unknown scenario {name}")


if __name__ == "__main__":
    main()
