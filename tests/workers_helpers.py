"""Helpers for the ``fastsio run`` tests (tests/test_workers.py, tests/cluster/test_workers.py):
the command in a subprocess with its log, and plain-HTTP polling clients on their own sockets."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from .rawclient import request

REPO = Path(__file__).resolve().parents[1]
APP = "tests.workers_app:io"
START_TIMEOUT = 20.0


class Command:
    """``fastsio run`` in a subprocess; its log lines (stderr) are collected as they come."""

    def __init__(
        self, *args: str, entry: list[str] | None = None, own_group: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        cmd = entry or [sys.executable, "-m", "fastsio"]
        self.proc = subprocess.Popen(
            [*cmd, "run", APP, "--host", "127.0.0.1", "--port", "0", *args],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
            # own_group: its own process group, as a terminal's foreground job, for a Ctrl-C
            # (killpg SIGINT). Otherwise it stays in the test run's group (and dies with it).
            start_new_session=own_group,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<eof>")
            self._changed.notify_all()

    def wait_line(
        self, pattern: str, timeout: float = START_TIMEOUT, after: int = 0
    ) -> re.Match[str]:
        """The first log line from index ``after`` on that matches ``pattern``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    m = rx.search(line)
                    if m:
                        return m
                if "<eof>" in self.lines[after:]:
                    raise AssertionError(f"exited before {pattern!r}:\n" + self.log())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} in {timeout}s:\n" + self.log())
                self._changed.wait(left)

    def log(self) -> str:
        return "\n".join(self.lines)

    def started(self, workers: int) -> Command:
        m = self.wait_line(rf"fastsio: {workers} workers listening on http://127\.0\.0\.1:(\d+)")
        self.port = int(m.group(1))
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> dict[int, int]:
        """The latest pid of each worker, from the parent's log."""
        pids: dict[int, int] = {}
        for line in self.lines:
            m = re.search(r"worker (\d+) started \(pid (\d+)\)", line)
            if m:
                pids[int(m.group(1))] = int(m.group(2))
        return pids

    def stop(self, timeout: float = 20.0, ctrl_c: bool = False) -> int:
        """SIGTERM to the parent (a service manager), or SIGINT to the whole process group
        (Ctrl-C in a terminal); the exit status."""
        if self.proc.poll() is None:
            if ctrl_c:
                assert os.getpgid(self.proc.pid) == self.proc.pid, "needs own_group=True"
                os.killpg(self.proc.pid, signal.SIGINT)
            else:
                self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("fastsio run did not stop on SIGTERM:\n" + self.log()) from None
        finally:
            self._reader.join(5)
            assert self.proc.stderr is not None
            self.proc.stderr.close()


# -- plain HTTP --------------------------------------------------------------------------------
EIO = "/socket.io/?EIO=4&transport=polling"


def packets(body: bytes) -> list[str]:
    return body.decode().split("\x1e") if body else []


def fetch(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request on its own TCP connection (urllib closes it): each goes through the parent."""
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Polling:
    """One Socket.IO session over polling, every request on a new connection."""

    def __init__(self, base: str) -> None:
        self.base = base
        status, body = fetch(base + EIO)
        assert status == 200, body
        self.sid: str = orjson.loads(body[1:])["sid"]
        self.url = f"{base}{EIO}&sid={self.sid}"
        assert fetch(self.url, b"40") == (200, b"ok")
        assert any(p.startswith("40{") for p in self.get()), "no CONNECT answer"
        self._ack = 0

    def get(self) -> list[str]:
        status, body = fetch(self.url)
        assert status == 200, body
        return packets(body)

    def call(self, event: str, *args: Any) -> Any:
        """Emit with an ack over the session; the ack's arguments."""
        self._ack += 1
        payload = orjson.dumps([event, *args]).decode()
        assert fetch(self.url, f"42{self._ack}{payload}".encode()) == (200, b"ok")
        prefix = f"43{self._ack}"
        for _ in range(5):
            for p in self.get():
                if p.startswith(prefix):
                    return orjson.loads(p[len(prefix):])
        raise AssertionError(f"no ack {self._ack}")


class KeepAlive:
    """One keep-alive TCP connection carrying whatever requests the test writes on it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        self.sock.sendall(request(method, target, body=body))
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert not any(line.lower() == "connection: close" for line in lines), lines
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        )
        while len(self.buf) < length:
            self._more()
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(lines[0].split()[1]), body

    def _more(self) -> None:
        data = self.sock.recv(65536)
        assert data, "connection closed"
        self.buf += data

    def close(self) -> None:
        self.sock.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
