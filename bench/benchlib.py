"""What the benchmark scripts in bench/ share (they run as `python3 bench/NAME.py`, so this folder
is on their import path)."""
import http.client
import os
import socket
import time


def free_port():
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(command):
    """`command` run as the postgres user when this runs as root (PostgreSQL refuses root)."""
    return (["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] + command) if os.getuid() == 0 else command


def wait_for(condition, seconds, what, interval=0.1):
    """Polls `condition` (errors count as not yet) until it holds; raises after `seconds`."""
    end = time.time() + seconds
    while time.time() < end:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what}")


class UnixConnection(http.client.HTTPConnection):
    """HTTP over participantd's Unix socket."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)
