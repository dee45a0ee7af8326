"""Churn: connections opened and ended every way a client ends them (clean closes, FIN, RST,
drops in the middle of a handshake), many thousand times over. The server's memory and open
file descriptors come back to where they started, and nothing of any connection is left.

The normal run does ``FASTSIO_CHURN_CYCLES`` cycles (default 5,000) per loop;
``FASTSIO_CHURN_CYCLES=50000 python -m pytest tests/test_churn.py -s`` is the full run (it
prints its figures)."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import resource
import socket as pysocket
import struct
import sys
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

import fastsio
from tests.rawclient import (
    OP_CLOSE,
    RawConnection,
    RawWebSocket,
    eio_target,
    parse_open,
    request,
    ws_frame,
    ws_upgrade_request,
)
from tests.test_slowloris import server_objects

CYCLES = int(os.environ.get("FASTSIO_CHURN_CYCLES", "5000"))
# The warm-up takes the allocator to its working size (RSS grows over the first few thousand
# cycles, then stays flat: measured over 6 x 5,000 cycles).
WARMUP = min(3000, CYCLES)
CONCURRENCY = 40
# Bounds after the cycles, against the level after the warm-up: a few descriptors of slack
# (the loop's own) and allocator slack (pymalloc keeps arenas that still hold live blocks).
# Before each measure, every heartbeat deadline the cycles armed comes and goes: until then the
# heartbeat's buckets hold a closed session's objects (up to ping_interval, short here).
DEADLINES = 1.3
FD_SLACK = 4
# Python's heap is checked tightly (allocated blocks: a leak of one object per cycle is 5,000);
# RSS loosely, as the allocators settle: measured without a test harness, RSS stays within
# 2 MiB over 45,000 cycles after the first 5,000, both loops.
BLOCK_SLACK = 2000
RSS_SLACK = 16 * 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def rss() -> int:
    """Resident memory, after a collection and after the C allocator returned what it could."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)  # glibc
    except (AttributeError, OSError):
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


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
    assert (await ws.upgrade(eio_target("websocket"))).status == 101
    await ws.recv_text()
    ws.send_text("40")
    assert (await recv_packet(ws)).startswith("40{")
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
    assert (await ws.upgrade(eio_target("websocket"))).status == 101
    await ws.recv_text()
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
    conn.write(request("GET", eio_target()))
    sid = parse_open((await conn.read_response()).text)["sid"]
    conn.write(request("POST", eio_target(sid=sid), body=b"40"))
    assert (await conn.read_response()).status == 200
    conn.write(request("GET", eio_target(sid=sid)))
    assert (await conn.read_response()).text.startswith("40{")
    conn.write(request("POST", eio_target(sid=sid), body=b"1"))
    assert (await conn.read_response()).status == 200
    await fin(conn)


async def polling_rst_with_parked_get(url: str) -> None:
    """A polling session whose pending GET's connection is reset."""
    conn = await RawConnection.open(url)
    conn.write(request("GET", eio_target()))
    sid = parse_open((await conn.read_response()).text)["sid"]
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


async def settled(io: fastsio.Server, timeout: float = 10.0) -> None:
    """Wait until the server holds nothing of any connection (sessions that lost their
    transport end at once; a dropped half request at its request timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        engine = io.engine
        if (
            not engine.clients
            and not engine._http_connections
            and not engine._lingering
            and not io.sockets.sockets
            and not io._tasks
        ):
            return
        if loop.time() > deadline:
            raise AssertionError(
                f"left: {len(engine.clients)} sessions, {len(engine._http_connections)} "
                f"HTTP connections, {len(io.sockets.sockets)} sockets"
            )
        await asyncio.sleep(0.02)


async def test_churn_returns_memory_and_descriptors(make_server, request):
    io, url = await make_server(
        http_request_timeout=1.0, http_keep_alive_timeout=1.0, ping_interval=1.0, ping_timeout=5
    )
    reasons: Counter[str] = Counter()
    io.on("connection", lambda s: s.join("lobby"))
    io.on("disconnect", lambda s, r: reasons.__setitem__(r, reasons[r] + 1))
    done: Counter[str] = Counter()
    loop = asyncio.get_running_loop()

    await churn(url, WARMUP, done)
    await settled(io)
    await asyncio.sleep(DEADLINES)
    fds0, rss0, blocks0 = open_fds(), rss(), sys.getallocatedblocks()

    start = loop.time()
    await churn(url, CYCLES, done)
    elapsed = loop.time() - start
    await settled(io)
    await asyncio.sleep(DEADLINES)
    fds1, rss1, blocks1 = open_fds(), rss(), sys.getallocatedblocks()

    figures = (
        f"churn: {CYCLES} cycles in {elapsed:.1f} s ({CYCLES / elapsed:.0f}/s) on "
        f"{type(loop).__module__.split('.')[0]}; fds {fds0} -> {fds1}; RSS "
        f"{rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB (peak "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB); Python "
        f"blocks {blocks0} -> {blocks1}; reasons "
        f"{dict(reasons)}"
    )
    print(figures)
    request.node.user_properties.append(("churn", figures))
    assert sum(done.values()) == WARMUP + CYCLES
    assert fds1 <= fds0 + FD_SLACK, figures
    assert blocks1 <= blocks0 + BLOCK_SLACK, figures
    assert rss1 <= rss0 + RSS_SLACK, figures
    assert io.sockets.adapter.rooms == {}
    assert server_objects(io) == {}
    # Every joined socket ended, each for the reason its client gave.
    assert set(reasons) <= {"transport close", "client namespace disconnect"}, reasons
