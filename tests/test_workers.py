"""``fastsio run``: the command, and N worker processes behind one port (fastsio/workers.py).

Every test runs the real command in a subprocess (``python -m fastsio`` or the console script)
serving ``tests/workers_app.py``, whose answers carry the pid of the worker that gave them.
Clients are the official JS client (polling only, WebSocket only, polling then upgrade) and raw
HTTP on plain sockets, which controls what travels on which TCP connection.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

import fastsio
from fastsio.workers import TAGS

from . import rawclient
from .conftest import wait_for
from .interop.node import NodeClient
from .workers_helpers import (
    APP,
    EIO,
    REPO,
    Command,
    KeepAlive,
    Polling,
    fetch,
    packets,
    pid_gone,
)


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Command]:
    """One ``--workers 2`` command shared by the tests that only connect clients."""
    cmd = Command("--workers", "2", "--no-shared-state").started(2)
    yield cmd
    assert cmd.stop() == 0, cmd.log()


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


@pytest.mark.parametrize("workers", ["1", "2"])
def test_unknown_target_is_one_clear_line(workers: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "fastsio", "run", "tests.workers_app:nope", "--port", "0",
         "--workers", workers, "--no-shared-state"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 1, r.stderr
    assert "fastsio: error: module 'tests.workers_app' has no attribute 'nope'" in r.stderr
    assert "Traceback" not in r.stderr
    if workers == "2":
        # Every worker fails the same way: the command stops instead of restarting them.
        assert "exited during startup (code 1): stopping" in r.stderr


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


@pytest.mark.parametrize("ctrl_c", [False, True], ids=["sigterm", "ctrl-c"])
def test_stop_closes_every_process_gracefully(ctrl_c: bool) -> None:
    cmd = Command(
        "--workers", "2", "--no-shared-state", "--shutdown-timeout", "3", own_group=ctrl_c
    ).started(2)
    pids = cmd.worker_pids()
    session = Polling(cmd.url)
    got: list[tuple[int, bytes]] = []
    pending = threading.Thread(target=lambda: got.append(fetch(session.url)))
    pending.start()
    time.sleep(0.3)  # the long-polling GET is waiting in its worker
    started = time.monotonic()
    assert cmd.stop(ctrl_c=ctrl_c) == 0, cmd.log()
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


# -- Server.set_adapter (what --redis does in each worker) -------------------------------------
async def test_set_adapter_replaces_every_namespace_adapter(make_server: Any) -> None:
    made: list[str] = []

    class Recording(fastsio.Adapter):
        def __init__(self, nsp: Any, recovery: Any) -> None:
            super().__init__(nsp, recovery)
            made.append(nsp.name)

    io, url = await make_server()
    old = io.of("/chat").adapter
    io.set_adapter(Recording)
    assert sorted(made) == ["/", "/chat"]
    assert isinstance(io.of("/chat").adapter, Recording) and io.of("/chat").adapter is not old
    io.of("/late")
    assert made[-1] == "/late"
    async with aiohttp.ClientSession() as http:
        session = await rawclient.Polling.open(http, url)
        assert await session.post("40") == (200, "ok")
        await wait_for(lambda: bool(io.sockets.sockets))
        with pytest.raises(RuntimeError, match="after clients connected"):
            io.set_adapter(fastsio.Adapter)
    assert isinstance(io.sockets.adapter, Recording)
