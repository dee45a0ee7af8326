"""A private ``redis-server`` for the cluster tests: started on a free loopback port in a temporary
directory, never the machine's shared Redis on 6379, with stop/kill/start for fault tests.

Synchronous on purpose (``subprocess`` and plain sockets): the fixture that owns it is
session-scoped, and every async test runs on its own loop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def require_redis_server() -> str:
    """The ``redis-server`` executable; the test fails (never skips) when it is missing."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail(
            "the cluster tests need redis-server (>= 6.2) on PATH: `scripts/dev test` installs "
            "Debian's package when it can; otherwise `apt-get install redis-server`",
            pytrace=False,
        )
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process. ``url`` stays the same across ``stop``/``start``: the port is
    kept, so clients can reconnect to the restarted server."""

    def __init__(self) -> None:
        self.exe = require_redis_server()
        self.dir = Path(tempfile.mkdtemp(prefix="fastsio-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (again); loads ``dump.rdb`` when a ``stop(save=True)`` left one."""
        if self.running:
            return
        log = open(self.dir / "redis.log", "ab")  # the child keeps its own copy
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "yes",
                "--daemonize", "no",
                "--loglevel", "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited at start:\n{self.log_tail()}")
            if self.ping():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.02)

    def command(self, *args: str | bytes, timeout: float = 2.0) -> bytes:
        """One command over a fresh connection; the raw RESP reply (enough for tests)."""
        parts = [a.encode() if isinstance(a, str) else a for a in args]
        payload = b"*%d\r\n" % len(parts) + b"".join(
            b"$%d\r\n%s\r\n" % (len(p), p) for p in parts
        )
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(payload)
            return s.recv(65536)

    def ping(self) -> bool:
        try:
            return self.command("PING", timeout=0.5).startswith(b"+PONG")
        except OSError:
            return False

    def flush(self) -> None:
        self.command("FLUSHALL")

    def stop(self, *, save: bool = False, timeout: float = 10.0) -> None:
        """A clean ``SHUTDOWN`` (with ``SAVE``: the data comes back on ``start``)."""
        if not save:
            self._forget_data()
        if not self.running:
            return
        assert self.proc is not None
        try:
            self.command("SHUTDOWN", "SAVE" if save else "NOSAVE")
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def kill(self) -> None:
        """``kill -9``: everything in memory is lost (and no earlier save comes back)."""
        self._forget_data()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def _forget_data(self) -> None:
        (self.dir / "dump.rdb").unlink(missing_ok=True)

    def restart(self, *, save: bool = True) -> None:
        self.stop(save=save)
        self.start()

    def log_tail(self, n: int = 20) -> str:
        try:
            lines = (self.dir / "redis.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:]) or "(empty log)"

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
