#!/usr/bin/env python3
"""Instances and the fleet's shared quota, shown with real processes (bench/fleet.sh runs this).

Every scenario runs participant-standin enforcing the service's quota (10 requests/s, burst 15),
real participantd processes (debug build) and, for the fleet, a PostgreSQL server of its own
(initdb in a temporary folder, a free port; as root it runs as the postgres user). Events are
handed over with `participantctl send-events` (one batch per daemon), read receipts each on its
own connection so that nothing coalesces.

Scenarios:
  alone    3 daemons, one instance, 150 receipts each, no fleet: each paces at 10/s by itself.
  fleet    the same with fleet.postgresURL: the quota is shared.
  outage   the fleet, with PostgreSQL stopped for 20 s in the middle, then started again.
  tenants  one daemon, two instances on two stand-ins: 2,000 typing events for the first, whose
           service is down, and 100 receipts for the second (alone, its quota delivers 100 in
           (100 - 15) / 10 = 8.5 s).

Prints one JSON object per scenario and a summary table.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

from benchlib import as_postgres, free_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("PARTICIPANTD_BIN", os.path.join(ROOT, ".build", "debug"))
READ = "application/vnd.amazonaws.connect.event.message.read"
TYPING = "application/vnd.amazonaws.connect.event.typing"


class Postgres:
    def __init__(self, workdir):
        versions = sorted(v for v in os.listdir("/usr/lib/postgresql") if os.path.exists(f"/usr/lib/postgresql/{v}/bin/initdb"))
        self.bin = f"/usr/lib/postgresql/{versions[-1]}/bin"
        self.dir = os.path.join(workdir, "pg")
        os.makedirs(self.dir)
        self.password_file = os.path.join(self.dir, "password")
        with open(self.password_file, "w") as f:
            f.write("pw-" + uuid.uuid4().hex + "\n")
        os.chmod(self.password_file, 0o600)  # participantd refuses a password file every user may read
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", self.dir], check=True)
        subprocess.run(as_postgres([f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-U", "participantd", "--auth=scram-sha-256",
                                    f"--pwfile={self.password_file}", "--no-sync"]), check=True, stdout=subprocess.DEVNULL)
        self.port = free_port()
        self.process = None
        self.start()

    @property
    def url(self):
        return f"postgres://participantd@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def start(self):
        log = open(os.path.join(self.dir, "log"), "a")
        self.process = subprocess.Popen(as_postgres([f"{self.bin}/postgres", "-D", f"{self.dir}/data", "-p", str(self.port), "-k", self.dir,
                                                     "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]), stdout=log, stderr=log)
        for _ in range(300):
            if subprocess.run([f"{self.bin}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start")

    def stop(self):
        if self.process:
            self.process.send_signal(3)  # SIGQUIT: immediate shutdown, as a crash looks to clients
            self.process.wait()
            self.process = None


class StandIn:
    def __init__(self, workdir, name, drop=False):
        self.port = free_port()
        self.log_path = os.path.join(workdir, f"standin-{name}.log")
        arguments = [f"{BIN}/participant-standin", "--port", str(self.port), "--quota-rate", "10", "--quota-burst", "15", "--summary"]
        if drop:
            arguments.append("--drop-connections")
        self.process = subprocess.Popen(arguments, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        wait_for(lambda: "listening" in open(self.log_path).read(), 10, "the stand-in")

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def summaries(self):
        """(seconds since the epoch, accepted, throttled) for each summary line."""
        rows = []
        for line in open(self.log_path):
            if " summary " in line:
                stamp, _, rest = line.partition(" summary ")
                values = dict(part.split("=") for part in rest.split())
                rows.append((parse_time(stamp), int(values["accepted"]), int(values["throttled"])))
        return rows

    def last(self):
        rows = self.summaries()
        return rows[-1] if rows else (time.time(), 0, 0)

    def stop(self):
        self.process.terminate()
        self.process.wait()


def parse_time(stamp):
    from datetime import datetime
    return datetime.strptime(stamp.strip(), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


class Daemon:
    def __init__(self, workdir, name, yaml, environment=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.socket = os.path.join(self.dir, "pd.sock")
        config = os.path.join(self.dir, "participantd.yaml")
        with open(config, "w") as f:
            f.write(f"socket: {self.socket}\ndatabase: {self.dir}/outbox.sqlite\nlog:\n  level: notice\n" + yaml)
        env = dict(os.environ, **(environment or {}))
        self.process = subprocess.Popen([f"{BIN}/participantd", "--config", config], env=env,
                                        stdout=open(os.path.join(self.dir, "log"), "w"), stderr=subprocess.STDOUT)
        wait_for(lambda: self.stats() is not None, 20, f"participantd {name}")

    def ctl(self, *arguments, input_text=None):
        return subprocess.run([f"{BIN}/participantctl", *arguments, "--socket", self.socket], input=input_text, capture_output=True, text=True)

    def stats(self):
        answer = self.ctl("stats")
        return json.loads(answer.stdout) if answer.returncode == 0 else None

    def send(self, events):
        lines = "".join(json.dumps(event) + "\n" for event in events)
        answer = self.ctl("send-events", "--file", "-", input_text=lines)
        refused = [line for line in answer.stdout.splitlines() if '"status":2' not in line.replace(" ", "")]
        if answer.returncode != 0 or refused:
            raise RuntimeError(f"send-events refused events: {answer.stdout[:500]} {answer.stderr[:500]}")

    def stop(self):
        self.process.terminate()
        self.process.wait()


def receipts(prefix, count, instance=None):
    events = []
    for index in range(count):
        event = {"contentType": READ, "content": json.dumps({"messageId": f"{prefix}-m{index}"}),
                 "clientToken": f"{prefix}-{index}", "connectionToken": f"{prefix}-conn-{index}"}
        if instance:
            event["instance"] = instance
        events.append(event)
    return events


def backlog_rate(standin, total, burst=15):
    """Events per second from the end of the first burst to the last event."""
    rows = standin.summaries()
    after_burst = next((t for t, accepted, _ in rows if accepted >= burst), None)
    done = next((t for t, accepted, _ in rows if accepted >= total), None)
    if after_burst is None or done is None or done <= after_burst:
        return None
    return (total - next(a for t, a, _ in rows if t == after_burst)) / (done - after_burst)


def three_daemons(workdir, fleet, outage=False):
    standin = StandIn(workdir, "service")
    postgres = Postgres(workdir) if fleet else None
    daemons = []
    try:
        for index in range(3):
            yaml = f"endpoint: {standin.endpoint}\nretry:\n  baseDelaySeconds: 1\n"
            environment = {}
            if postgres:
                yaml += f"fleet:\n  postgresURL: {postgres.url}\n  hostName: host-{index + 1}\n"
                environment["PARTICIPANTD_FLEET_POSTGRES_PASSWORD_FILE"] = postgres.password_file
            daemons.append(Daemon(workdir, f"host-{index + 1}", yaml, environment))
        if postgres:
            wait_for(lambda: all(d.stats()["fleet"]["shared"] for d in daemons), 20, "the fleet to share")
        started = time.time()
        for index, daemon in enumerate(daemons):
            daemon.send(receipts(f"h{index}", 150))
        stopped_at = None
        degraded_seen = False
        while standin.last()[1] < 450:
            if outage and stopped_at is None and time.time() - started >= 10:
                postgres.stop()
                stopped_at = time.time()
            if stopped_at and not postgres.process:
                degraded_seen = degraded_seen or all(not d.stats()["fleet"]["shared"] for d in daemons)
                if time.time() - stopped_at >= 20:
                    postgres.start()
            if time.time() - started > 180:
                raise RuntimeError(f"not every receipt delivered: {standin.last()}")
            time.sleep(0.2)
        elapsed = time.time() - started
        result = {
            "delivered": standin.last()[1], "throttled_429": standin.last()[2], "seconds": round(elapsed, 1),
            "backlog_rate_per_s": round(backlog_rate(standin, 450) or 0, 2),
        }
        if postgres:
            wait_for(lambda: all(d.stats()["fleet"]["shared"] for d in daemons), 30, "sharing to resume")
            members = daemons[0].stats()["fleet"]["instances"][0]["members"]
            result["members"] = {m["host"]: round(m["share"], 2) for m in members}
        if outage:
            result["database_down_s"] = 20
            result["degraded_seen"] = degraded_seen
        return result
    finally:
        for daemon in daemons:
            daemon.stop()
        standin.stop()
        if postgres:
            postgres.stop()


def tenants(workdir):
    first = StandIn(workdir, "tenant-a", drop=True)
    second = StandIn(workdir, "tenant-b")
    yaml = (f"endpoint: {first.endpoint}\nretry:\n  baseDelaySeconds: 1\n"
            f"instances:\n  tenant-b:\n    endpoint: {second.endpoint}\n")
    daemon = Daemon(workdir, "tenants", yaml)
    try:
        typing = [{"contentType": TYPING, "clientToken": f"t-{i}", "connectionToken": f"t-conn-{i}"} for i in range(2000)]
        for start in range(0, 2000, 500):
            daemon.send(typing[start:start + 500])
        started = time.time()
        daemon.send(receipts("b", 100, instance="tenant-b"))
        wait_for(lambda: second.last()[1] >= 100, 60, "tenant-b's receipts")
        loaded = time.time() - started
        stats = daemon.stats()
        return {
            "tenant_b_100_receipts_s": round(loaded, 2), "tenant_b_throttled_429": second.last()[2],
            "tenant_b_backlog_rate_per_s": round(backlog_rate(second, 100) or 0, 2),
            "tenant_a_waiting": stats["instances"]["default"]["counts"]["queued"] + stats["instances"]["default"]["counts"]["sending"],
            "tenant_a_problems": stats["instances"]["default"]["problems"][:1],
        }
    finally:
        daemon.stop()
        first.stop()
        second.stop()


def main():
    scenarios = sys.argv[1:] or ["alone", "fleet", "outage", "tenants"]
    results = {}
    for name in scenarios:
        workdir = tempfile.mkdtemp(prefix="pd-fleet-")
        os.chmod(workdir, 0o755)
        try:
            if name == "alone":
                results[name] = three_daemons(workdir, fleet=False)
            elif name == "fleet":
                results[name] = three_daemons(workdir, fleet=True)
            elif name == "outage":
                results[name] = three_daemons(workdir, fleet=True, outage=True)
            elif name == "tenants":
                results[name] = tenants(workdir)
            else:
                raise SystemExit(f"unknown scenario {name}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(json.dumps({name: results[name]}), flush=True)


if __name__ == "__main__":
    main()
