"""``fastsio run``: the command, and N worker processes behind one port (fastsio/workers.py).

Every test runs the real command in a subprocess (``python -m fastsio`` or the console script)
serving ``tests/workers_app.py``, whose answers carry the pid of the worker that gave them.
Clients are the official JS client (polling only, WebSocket only, polling then upgrade) and raw
HTTP on plain sockets, which controls what travels on which TCP connection.
"""

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from fastsio.workers import TAGS

from .interop.node import NodeClient
from .rawclient import request

REPO = Path(__file__).resolve().parents[1]
APP = "tests.workers_app:io"
START_TIMEOUT = 20.0


class Command:
    """``fastsio run`` in a subprocess; its log lines (stderr) are collected as they come."""

    def __init__(self, *args: str, entry: list[str] | None = None) -> None:
        cmd = entry or [sys.executable, "-m", "fastsio"]
        self.proc = subprocess.Popen(
            [*cmd, "run", APP, "--host", "127.0.0.1", "--port", "0", *args],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
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

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
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


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Command]:
    """One ``--workers 2`` command shared by the tests that only connect clients."""
    cmd = Command("--workers", "2", "--no-shared-state").started(2)
    yield cmd
    assert cmd.stop() == 0, cmd.log()


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


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- the command -------------------------------------------------------------------------------
def test_workers_without_redis_refused() -> None:
    script = Path(sys.executable).parent / "fastsio"
    assert script.is_file(), "the fastsio console script is not installed (pip install -e .)"
    r = subprocess.run(
        [str(script), "run", APP, "--workers", "2"], cwd=REPO, capture_output=True, text=True,
        timeout=30,
    )
    assert r.returncode == 2, r.stderr
    assert "--workers 2 needs --redis URL" in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_target_is_one_clear_line() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "fastsio", "run", "tests.workers_app:nope", "--port", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "fastsio: error: module 'tests.workers_app' has no attribute 'nope'"
    )


async def test_one_worker_is_the_server_itself() -> None:
    cmd = Command()
    try:
        m = cmd.wait_line(r"fastsio listening on http://127\.0\.0\.1:(\d+)")
        client = await NodeClient.start(f"http://127.0.0.1:{m.group(1)}")
        try:
            await client.connected()
            assert await client.emit_with_ack("whoami") == [cmd.proc.pid]
        finally:
            await client.close()
    finally:
        assert cmd.stop() == 0, cmd.log()


# -- routing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "transports", [["polling"], ["websocket"], None], ids=["polling", "websocket", "upgrade"]
)
async def test_js_client_stays_on_its_worker(
    two_workers: Command, transports: list[str] | None
) -> None:
    opts = {} if transports is None else {"transports": transports}
    client = await NodeClient.start(two_workers.url, **opts)
    try:
        await client.connected()
        pids = [(await client.emit_with_ack("whoami"))[0] for _ in range(3)]
        if transports is None:
            # It began on polling (the upgrade may be over before the CONNECT answer): the
            # WebSocket, a new TCP connection through the parent, reached the same worker.
            assert (await client.next("upgrade"))["transport"] == "websocket"
            pids += [(await client.emit_with_ack("whoami"))[0] for _ in range(3)]
        # Past the client's ping timeout too (the app pings every 2 s): no request went astray.
        echoed = await client.emit_with_ack("echo", "x" * 3000, b"\x00\x01")
        pids.append(echoed[0])
        assert echoed[1:] == ["x" * 3000, b"\x00\x01"]
        status = await client.status()
        assert status["connected"]
        assert status["engineTransport"] == (transports or ["websocket"])[0]
        assert len(set(pids)) == 1, pids
        assert pids[0] in two_workers.worker_pids().values()
    finally:
        await client.close()
    assert not any("Traceback" in line for line in two_workers.lines), two_workers.log()


def test_sessions_spread_over_workers_and_stick(two_workers: Command) -> None:
    sessions = [Polling(two_workers.url) for _ in range(6)]
    seen = set()
    for s in sessions:
        pids = {s.call("whoami")[0] for _ in range(3)}
        assert len(pids) == 1, pids
        seen |= pids
        # The session id names its worker.
        worker = TAGS.index(s.sid[0])
        assert two_workers.worker_pids()[worker] == pids.pop()
    assert seen == set(two_workers.worker_pids().values())


def test_keep_alive_connection_shared_by_sessions(two_workers: Command) -> None:
    """A browser may send a request of one session on a connection another session's worker
    holds: that worker hands the connection back and the right one answers."""
    a, b = KeepAlive(two_workers.port), KeepAlive(two_workers.port)
    try:
        status, body = a.send("GET", EIO)
        sid_a = orjson.loads(body[1:])["sid"]
        status, body = b.send("GET", EIO)
        sid_b = orjson.loads(body[1:])["sid"]
        assert sid_a[0] != sid_b[0], "round robin should have put them on different workers"
        # b's session, on a's connection (held by a's worker), and back.
        assert a.send("POST", f"{EIO}&sid={sid_b}", b"40") == (200, b"ok")
        assert a.send("POST", f"{EIO}&sid={sid_a}", b"40") == (200, b"ok")
        status, body = a.send("GET", f"{EIO}&sid={sid_b}")
        assert status == 200 and packets(body)[0].startswith("40{"), body
        status, body = b.send("GET", f"{EIO}&sid={sid_a}")
        assert status == 200 and packets(body)[0].startswith("40{"), body
        # A body that arrives with the headers travels with the connection.
        assert b.send("POST", f"{EIO}&sid={sid_b}", b'421["echo","' + b"y" * 20000 + b'"]') == (
            200, b"ok"
        )
        status, body = a.send("GET", f"{EIO}&sid={sid_b}")
        worker_b = two_workers.worker_pids()[TAGS.index(sid_b[0])]
        assert packets(body) == [f'431[{worker_b},"{"y" * 20000}"]'], body[:100]
    finally:
        a.close()
        b.close()


# -- the processes -----------------------------------------------------------------------------
def test_dead_worker_is_restarted() -> None:
    cmd = Command("--workers", "2", "--no-shared-state").started(2)
    try:
        old = cmd.worker_pids()
        session = next(s for s in (Polling(cmd.url) for _ in range(4)) if s.sid[0] == TAGS[0])
        assert session.call("whoami") == [old[0]]
        mark = len(cmd.lines)
        os.kill(old[0], signal.SIGKILL)
        cmd.wait_line(rf"worker 0 \(pid {old[0]}\) exited \(signal 9\); restarting it", after=mark)
        new = int(cmd.wait_line(r"worker 0 started \(pid (\d+)\)", after=mark).group(1))
        cmd.wait_line(rf"worker 0 \(pid {new}\) serving", after=mark)
        # Its sessions are gone (the client is told so and reconnects) ...
        status, body = fetch(session.url)
        assert status == 400 and orjson.loads(body) == {"code": 1, "message": "Session ID unknown"}
        # ... and new sessions reach both workers again.
        deadline = time.monotonic() + 5
        seen: set[int] = set()
        while seen != {new, old[1]} and time.monotonic() < deadline:
            seen.add(Polling(cmd.url).call("whoami")[0])
        assert seen == {new, old[1]}
    finally:
        assert cmd.stop() == 0, cmd.log()


def test_sigterm_stops_every_process_gracefully() -> None:
    cmd = Command("--workers", "2", "--no-shared-state", "--shutdown-timeout", "3").started(2)
    pids = cmd.worker_pids()
    session = Polling(cmd.url)
    got: list[tuple[int, bytes]] = []
    pending = threading.Thread(target=lambda: got.append(fetch(session.url)))
    pending.start()
    time.sleep(0.3)  # the long-polling GET is waiting in its worker
    started = time.monotonic()
    assert cmd.stop() == 0, cmd.log()
    assert time.monotonic() - started < 3 + 2
    pending.join(5)
    # The waiting GET got the close packet: the client knows the server went away.
    assert got and got[0][0] == 200 and packets(got[0][1])[-1] == "1", got
    assert all(pid_gone(pid) for pid in pids.values())
    assert "fastsio: all workers stopped" in cmd.log()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cmd.port), timeout=2).close()


def test_worker_stuck_past_the_deadline_is_killed() -> None:
    cmd = Command("--workers", "2", "--no-shared-state", "--shutdown-timeout", "0.5").started(2)
    pids = cmd.worker_pids()
    os.kill(pids[1], signal.SIGSTOP)  # it cannot close any more
    started = time.monotonic()
    assert cmd.stop() == 0, cmd.log()
    took = time.monotonic() - started
    assert "1 worker(s) still running after" in cmd.log()
    assert took < 0.5 + 2 + 2, took
    assert all(pid_gone(pid) for pid in pids.values())
