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
from fastsio.workers import TAGS, WorkerRouter
from tests.clients.http import KeepAlive, fetch_blocking
from tests.clients.loops import wait_for
from tests.clients.node import NodeClient
from tests.clients.polling import BlockingPolling, Polling
from tests.clients.wire import eio_target, split_payload
from tests.workers_helpers import APP, REPO, Command, cpu_seconds, pid_gone

EIO = eio_target()



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


def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "fastsio", "run", APP, "--host", "127.0.0.1", "--port",
             str(port), "--workers", "2", "--no-shared-state"],
            cwd=REPO, capture_output=True, text=True, timeout=30,
        )
    assert r.returncode == 1, r.stderr
    assert f"fastsio: error: cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr and "worker 0 started" not in r.stderr


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
    sessions = [BlockingPolling(two_workers.url) for _ in range(6)]
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
        assert status == 200 and split_payload(body)[0].startswith("40{"), body
        status, body = b.send("GET", f"{EIO}&sid={sid_a}")
        assert status == 200 and split_payload(body)[0].startswith("40{"), body
        # A body that arrives with the headers travels with the connection.
        assert b.send("POST", f"{EIO}&sid={sid_b}", b'421["echo","' + b"y" * 20000 + b'"]') == (
            200, b"ok"
        )
        status, body = a.send("GET", f"{EIO}&sid={sid_b}")
        worker_b = two_workers.worker_pids()[TAGS.index(sid_b[0])]
        assert split_payload(body) == [f'431[{worker_b},"{"y" * 20000}"]'], body[:100]
    finally:
        a.close()
        b.close()


def test_garbage_and_silent_connections_leave_the_parent_serving(two_workers: Command) -> None:
    port = two_workers.port
    # Not HTTP: routed like any connection, refused by the worker's HTTP parser.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\x00\xff\xfe not http at all\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400 ")
    # A request line over what the parent reads before routing (16 KiB): still answered.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400 ")
    # Gone before sending anything, or halfway through the request line.
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /socket.io/?EIO=4&transport=pol")
    # A forged session id: the worker it names says the session is unknown.
    status, body = fetch_blocking(f"{two_workers.url}{EIO}&sid={TAGS[1]}{'x' * 20}")
    assert status == 400 and orjson.loads(body)["code"] == 1
    status, body = fetch_blocking(f"{two_workers.url}{EIO}&sid=%25%00")
    assert status == 400
    assert BlockingPolling(two_workers.url).call("whoami")[0] in two_workers.worker_pids().values()
    assert not any("Traceback" in line for line in two_workers.lines), two_workers.log()


# -- the processes -----------------------------------------------------------------------------
def test_dead_worker_is_restarted_and_gets_the_new_sessions() -> None:
    # (Its polling sessions stop polling: a short graceful close at the end.)
    cmd = Command("--workers", "2", "--no-shared-state", "--shutdown-timeout", "0.3",
                  env={"WORKERS_APP_PING": "20"})
    cmd.started(2)
    try:
        old = cmd.worker_pids()
        sessions = [BlockingPolling(cmd.url) for _ in range(4)]
        # A new session goes to the worker with the fewest: two each.
        assert sorted(s.sid[0] for s in sessions) == [TAGS[0]] * 2 + [TAGS[1]] * 2
        on_0 = [s for s in sessions if s.sid[0] == TAGS[0]]
        on_1 = [s for s in sessions if s.sid[0] == TAGS[1]]
        assert on_0[0].call("whoami") == [old[0]]
        mark = len(cmd.lines)
        os.kill(old[0], signal.SIGKILL)
        cmd.wait_line(rf"worker 0 \(pid {old[0]}\) exited \(signal 9\); restarting it", after=mark)
        new = int(cmd.wait_line(r"worker 0 started \(pid (\d+)\)", after=mark).group(1))
        cmd.wait_line(rf"worker 0 \(pid {new}\) serving", after=mark)
        # Its sessions are gone (their clients are told so, and reconnect) ...
        for s in on_0:
            status, body = fetch_blocking(s.url)
            assert status == 400, body
            assert orjson.loads(body) == {"code": 1, "message": "Session ID unknown"}
        # ... the other worker's live on, and new sessions go to the fresh worker first.
        assert [s.call("whoami") for s in on_1] == [[old[1]]] * 2
        assert [BlockingPolling(cmd.url).call("whoami") for _ in range(2)] == [[new]] * 2
    finally:
        assert cmd.stop() == 0, cmd.log()


@pytest.mark.parametrize("ctrl_c", [False, True], ids=["sigterm", "ctrl-c"])
def test_stop_closes_every_process_gracefully(ctrl_c: bool) -> None:
    cmd = Command(
        "--workers", "2", "--no-shared-state", "--shutdown-timeout", "3", own_group=ctrl_c
    ).started(2)
    pids = cmd.worker_pids()
    session = BlockingPolling(cmd.url)
    got: list[tuple[int, bytes]] = []
    pending = threading.Thread(target=lambda: got.append(fetch_blocking(session.url)))
    pending.start()
    time.sleep(0.3)  # the long-polling GET is waiting in its worker
    started = time.monotonic()
    assert cmd.stop(ctrl_c=ctrl_c) == 0, cmd.log()
    assert time.monotonic() - started < 3 + 2
    pending.join(5)
    # The waiting GET got the close packet: the client knows the server went away.
    assert got and got[0][0] == 200 and split_payload(got[0][1])[-1] == "1", got
    assert all(pid_gone(pid) for pid in pids.values())
    assert "fastsio: all workers stopped" in cmd.log()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cmd.port), timeout=2).close()


def test_out_of_file_descriptors_pauses_accepting_then_serves() -> None:
    entry = ["sh", "-c", 'ulimit -n 64 && exec "$0" "$@"', sys.executable, "-m", "fastsio"]
    cmd = Command("--workers", "2", "--no-shared-state", "--shutdown-timeout", "0.3",
                  entry=entry).started(2)
    held: list[socket.socket] = []
    try:
        # Half a request line each: the parent holds them, waiting for the rest, until its
        # descriptors run out.
        for _ in range(80):
            s = socket.create_connection(("127.0.0.1", cmd.port), timeout=5)
            s.sendall(b"GET /socket.io/?EIO=4&transport=pol")
            held.append(s)
        cmd.wait_line(r"accept failed: \[Errno 24\] Too many open files; pausing accepting")
        # It does not spin on the listener meanwhile.
        before = cpu_seconds(cmd.proc.pid)
        time.sleep(0.5)
        assert cpu_seconds(cmd.proc.pid) - before < 0.2
        for s in held:
            s.close()
        held = []
        assert BlockingPolling(cmd.url).call("whoami")[0] in cmd.worker_pids().values()
    finally:
        for s in held:
            s.close()
        assert cmd.stop() == 0, cmd.log()
    assert sum("accept failed" in line for line in cmd.lines) == 1, "warned once, not per retry"


def test_workers_stop_when_the_parent_is_killed() -> None:
    cmd = Command("--workers", "2", "--no-shared-state", "--shutdown-timeout", "0.3").started(2)
    pids = cmd.worker_pids()
    cmd.proc.kill()  # no shutdown from the parent: each worker sees its control socket close
    cmd.proc.wait()
    deadline = time.monotonic() + 10
    while not all(pid_gone(pid) for pid in pids.values()):
        assert time.monotonic() < deadline, "orphaned workers:\n" + cmd.log()
        time.sleep(0.05)
    cmd.stop()


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
    broadcasts: list[list[Any]] = []

    class Recording(fastsio.Adapter):
        def __init__(self, nsp: Any, recovery: Any) -> None:
            super().__init__(nsp, recovery)
            made.append(nsp.name)

        def broadcast(self, packet: list[Any], opts: Any) -> None:
            broadcasts.append(packet)
            super().broadcast(packet, opts)

    io, url = await make_server()
    old = io.of("/chat").adapter
    io.emit("before")  # through the old adapter (the namespace keeps one operator for emits)
    io.set_adapter(Recording)
    io.emit("after")
    io.of("/chat").emit("after chat")
    assert broadcasts == [["after"], ["after chat"]]
    assert sorted(made) == ["/", "/chat"]
    assert isinstance(io.of("/chat").adapter, Recording) and io.of("/chat").adapter is not old
    io.of("/late")
    assert made[-1] == "/late"
    async with aiohttp.ClientSession() as http:
        session = await Polling.open(http, url)
        assert await session.post("40") == (200, "ok")
        await wait_for(lambda: bool(io.sockets.sockets))
        with pytest.raises(RuntimeError, match="after clients connected"):
            io.set_adapter(fastsio.Adapter)
    assert isinstance(io.sockets.adapter, Recording)


# -- a worker's session ids --------------------------------------------------------------------
async def test_worker_sids_start_with_its_tag() -> None:
    io = fastsio.Server(sid_generator=lambda req: "custom")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        router = WorkerRouter(io.engine, a, 3, 4, lambda: None)
        plain = router.make_sid(None)(None)
        assert plain[0] == TAGS[3] and len(plain) == 21
        # The application's own generator, sync or async, keeps its ids after the tag.
        assert router.make_sid(io.engine.sid_generator)(None) == TAGS[3] + "custom"

        async def later(req: Any) -> str:
            return "later"

        assert await router.make_sid(later)(None) == TAGS[3] + "later"
        # Another worker's session, by its tag; not ours, nor a tag no worker has.
        assert router.foreign(f"/socket.io/?EIO=4&transport=polling&sid={TAGS[0]}xyz".encode())
        assert not router.foreign(f"/socket.io/?EIO=4&sid={TAGS[3]}xyz".encode())
        assert not router.foreign(f"/socket.io/?EIO=4&sid={TAGS[4]}xyz".encode())
        assert not router.foreign(b"/socket.io/?EIO=4&transport=polling")
        assert not router.foreign(f"/socket.io/?EIO=4&nosid={TAGS[0]}".encode())
    finally:
        a.close()
        b.close()
