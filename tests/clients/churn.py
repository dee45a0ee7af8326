"""The churn harness (tests/test_churn.py, bench/churn_memory.py): byte-level clients that
open a connection and end it every way a client ends one (clean closes, FIN, RST, drops in the
middle of a handshake), many at a time; and ``tests/churn_server.py`` in a process of its own,
with its command channel (RSS, the objects left, its state)."""

from __future__ import annotations

import asyncio
import json
import os
import socket as pysocket
import struct
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.clients.http import RawConnection
from tests.clients.wire import OP_CLOSE, eio_target, request, ws_frame, ws_upgrade_request
from tests.clients.ws import RawWebSocket

# How many ways run at once in ``churn``.
CONCURRENCY = 40


def reset(conn: RawConnection) -> None:
    """End the connection with a RST (SO_LINGER 0), not a FIN."""
    sock = conn.writer.get_extra_info("socket")
    sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.writer.transport.abort()


async def fin(conn: RawConnection) -> None:
    await conn.close()


async def recv_packet(ws: RawWebSocket) -> str:
    """The next text packet that is not a ping."""
    while (text := await ws.recv_text()) == "2":
        pass
    return text


async def ws_joined(url: str) -> RawWebSocket:
    ws = await RawWebSocket.open(url)
    await ws.join()
    return ws


# -- the ways a connection ends ----------------------------------------------------------------
async def ws_clean(url: str) -> None:
    """Leave the namespace, close frame, wait for the server's, FIN."""
    ws = await ws_joined(url)
    ws.send_text("41")
    ws.write(ws_frame(OP_CLOSE, struct.pack("!H", 1000)))
    await ws.recv_until_close()
    await fin(ws)


async def ws_fin(url: str) -> None:
    await fin(await ws_joined(url))


async def ws_rst(url: str) -> None:
    reset(await ws_joined(url))


async def ws_before_connect(url: str) -> None:
    """Handshake done, gone before the Socket.IO CONNECT."""
    ws = await RawWebSocket.open(url)
    await ws.handshake()
    reset(ws)


async def mid_upgrade(url: str) -> None:
    """The upgrade request sent, gone before the 101 is read."""
    ws = await RawWebSocket.open(url)
    ws.write(ws_upgrade_request(eio_target("websocket")))
    await asyncio.sleep(0)
    reset(ws)


async def mid_request(url: str) -> None:
    """Half an HTTP request, then a FIN."""
    conn = await RawConnection.open(url)
    conn.write(request("GET", eio_target())[:25])
    await fin(conn)


async def polling_clean(url: str) -> None:
    """Join over polling, then the Engine.IO close packet."""
    conn = await RawConnection.open(url)
    sid = await conn.polling_join()
    conn.write(request("POST", eio_target(sid=sid), body=b"1"))
    assert (await conn.read_response()).status == 200
    await fin(conn)


async def polling_rst_with_parked_get(url: str) -> None:
    """A polling session whose pending GET's connection is reset."""
    conn = await RawConnection.open(url)
    sid = await conn.polling_handshake()
    conn.write(request("GET", eio_target(sid=sid)))
    await asyncio.sleep(0)
    reset(conn)


async def connection_refused_handshake(url: str) -> None:
    """A handshake the server refuses (bad protocol version), FIN after the answer."""
    conn = await RawConnection.open(url)
    conn.write(request("GET", eio_target(EIO="3")))
    assert (await conn.read_response()).status == 400
    await fin(conn)


WAYS: list[Callable[[str], Awaitable[None]]] = [
    ws_clean,
    ws_fin,
    ws_rst,
    ws_before_connect,
    mid_upgrade,
    mid_request,
    polling_clean,
    polling_rst_with_parked_get,
    connection_refused_handshake,
]


async def churn(url: str, cycles: int, done: Counter[str]) -> None:
    next_cycle = 0

    async def worker() -> None:
        nonlocal next_cycle
        while next_cycle < cycles:
            way = WAYS[next_cycle % len(WAYS)]
            next_cycle += 1
            await asyncio.wait_for(way(url), 10)
            done[way.__name__] += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


# A round (issue 13): ROUND clients, ROUND_CONCURRENCY at a time, each joining "/" and then
# ending by its index: half clean, a quarter with a FIN and nothing said, a quarter with a RST.
ROUND = int(os.environ.get("FASTSIO_CHURN_ROUND", "4000"))
ROUND_CONCURRENCY = 100
REPO = str(Path(__file__).resolve().parents[2])


async def end_websocket(ws: RawWebSocket, i: int) -> None:
    kind = i % 4
    if kind < 2:  # Socket.IO DISCONNECT, close 1000, the server's close frame, then its EOF
        ws.send_text("41")
        ws.write(ws_frame(OP_CLOSE, struct.pack("!H", 1000)))
        await ws.recv_until_close()
        assert await ws.at_eof()
        await fin(ws)
    elif kind == 2:
        await fin(ws)
    else:
        reset(ws)


async def polling_joined(url: str) -> tuple[RawConnection, str]:
    conn = await RawConnection.open(url)
    return conn, await conn.polling_join()


async def mix_websocket(url: str, i: int) -> None:
    await end_websocket(await ws_joined(url), i)


async def mix_polling(url: str, i: int) -> None:
    conn, sid = await polling_joined(url)
    kind = i % 4
    if kind < 2:  # Socket.IO DISCONNECT and Engine.IO close in one POST, then FIN
        conn.write(request("POST", eio_target(sid=sid), body=b"41\x1e1"))
        assert (await conn.read_response()).status == 200
        await fin(conn)
        return
    conn.write(request("GET", eio_target(sid=sid)))  # a GET waiting on the connection
    await asyncio.sleep(0)
    if kind == 2:
        await fin(conn)
    else:
        reset(conn)


async def mix_upgrade(url: str, i: int) -> None:
    conn, sid = await polling_joined(url)
    ws = await RawWebSocket.open(url)
    assert (await ws.upgrade(eio_target("websocket", sid=sid))).status == 101
    ws.send_text("2probe")
    assert await ws.recv_text() == "3probe"
    ws.send_text("5")
    await fin(conn)
    await end_websocket(ws, i)


class ServerProcess:
    """``tests/churn_server.py`` in a subprocess, and its command channel."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url

    @classmethod
    async def start(cls, options: dict[str, object], loop: str) -> ServerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.churn_server", json.dumps(options), loop,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        assert proc.stdout is not None
        port = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))["port"]
        return cls(proc, f"http://127.0.0.1:{port}")

    async def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 30))

    async def settled(self, timeout: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any((state := await self.ask("state")).values()):
            assert loop.time() < deadline, state
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"quit\n")
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def churn_round(
    url: str, mix: Callable[[str, int], Awaitable[None]], count: int = ROUND
) -> None:
    next_i = 0

    async def worker() -> None:
        nonlocal next_i
        while next_i < count:
            i = next_i
            next_i += 1
            await asyncio.wait_for(mix(url, i), 10)

    await asyncio.gather(*(worker() for _ in range(ROUND_CONCURRENCY)))


# A polling session that its client closed keeps its sid for ping_timeout (20 s by default),
# for a GET that raced the close POST (it gets its noop): shortened here so that a round can
# settle, lingering sessions gone, in a second.
POLLING_OPTIONS = {"ping_timeout": 1.0}
