"""What an idle WebSocket session keeps once its upgrade is complete: not the HTTP front's
connection object, no parsed upgrade request or 101 response, and no buffer of a kilobyte or
more (picows's own protocol starts every connection with a 2 KiB read buffer and a 1 KiB write
buffer). The buffers still grow when a larger message comes, both ways; the handshake's
headers stay available to the application."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import orjson

from fastsio.engine.http import HttpConnection
from fastsio.engine.websocket import WebSocketTransport
from tests.clients.wire import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, TIMEOUT, ws_frame
from tests.clients.ws import RawWebSocket

CLIENTS = 20


@contextlib.asynccontextmanager
async def _joined(url: str, n: int) -> AsyncIterator[list[RawWebSocket]]:
    sockets: list[RawWebSocket] = []
    try:
        for _ in range(n):
            ws = await RawWebSocket.open(url)
            sockets.append(ws)
            await ws.join()
        yield sockets
    finally:
        for ws in sockets:
            await ws.close()


def _transports(io: Any) -> list[WebSocketTransport]:
    found = [sock.transport for sock in io.engine.clients.values()]
    assert all(isinstance(t, WebSocketTransport) for t in found)
    return found


async def test_an_idle_session_keeps_no_upgrade_request_or_response(make_server):
    io, url = await make_server()
    async with _joined(url, CLIENTS):
        transports = _transports(io)
        assert len(transports) == CLIENTS
        for t in transports:
            assert t.ws is not None
            assert t.ws.request is None and t.ws.response is None


async def test_the_http_front_is_gone_after_the_upgrade(make_server):
    """uvloop's transport keeps the bound ``data_received`` of the plain protocol it had
    before a buffered one: the front's connection must not be that protocol any more."""
    io, url = await make_server()
    async with _joined(url, CLIENTS):
        gc.collect()
        fronts = [o for o in gc.get_objects()
                  if isinstance(o, HttpConnection) and o.server is io.engine]
        assert fronts == []


async def test_an_idle_session_holds_no_read_buffer_and_a_split_frame_gets_one(echo_server):
    io, url = await echo_server()
    async with _joined(url, 2) as (ws, other):
        transports = _transports(io)
        protocols = [t.ws.underlying_transport.get_protocol() for t in transports if t.ws]
        assert len(protocols) == 2
        # Between frames a connection holds no buffer of its own (picows: 1792 bytes or
        # more each): every connection reads into the one shared buffer.
        assert [p.own_buffer_size for p in protocols] == [0, 0]
        assert protocols[0].get_buffer(-1) is protocols[1].get_buffer(-1)
        big = "x" * 300_000
        frame = ws_frame(OP_TEXT, ("421" + orjson.dumps(["echo", big]).decode()).encode())
        # Half a frame: what was read of it moved to a buffer of its own, the size of the
        # whole frame; the other connection still has none.
        ws.write(frame[:1000])
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while not any(p.own_buffer_size for p in protocols):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        (protocol,) = [p for p in protocols if p.own_buffer_size]
        assert protocol.own_buffer_size >= len(frame)
        assert len(protocol.get_buffer(-1)) >= len(frame) - 1000
        ws.write(frame[1000:])
        while (reply := await ws.recv_text()) == "2":
            pass
        assert reply == "431" + orjson.dumps([big]).decode()
        # Read: the buffer is gone again.
        assert [p.own_buffer_size for p in protocols] == [0, 0]
        # The other connection's frames, read into the shared buffer meanwhile, arrived whole.
        other.write(ws_frame(OP_TEXT, b'422["echo","still here"]'))
        while (reply := await other.recv_text()) == "2":
            pass
        assert reply == '432["still here"]'


async def test_pongs_and_close_frames_outgrow_the_small_write_buffer(make_server):
    io, url = await make_server()
    async with _joined(url, 1) as (ws,):
        payload = bytes(range(125))  # the largest control frame payload
        ws.send_frame(OP_PING, payload)
        assert await ws.recv_frame() == (OP_PONG, payload)
        (sock,) = io.engine.clients.values()
        sock.close()
        frames = await ws.recv_until_close()
        assert frames[-1][0] == OP_CLOSE
        assert frames[-1][1][:2] == (1000).to_bytes(2, "big")


async def test_no_allocation_of_a_kilobyte_or_more_per_idle_session(make_server):
    _, url = await make_server()
    async with _joined(url, 2):
        pass  # first-use costs (imports, caches) are not per connection
    tracemalloc.start(25)
    try:
        before = tracemalloc.take_snapshot()
        async with _joined(url, CLIENTS):
            await asyncio.sleep(0)
            gc.collect()
            after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    engine_side = [tracemalloc.Filter(True, "*/fastsio/engine/*", all_frames=True)]

    def large(snapshot: tracemalloc.Snapshot) -> int:
        return sum(1 for t in snapshot.filter_traces(engine_side).traces if t.size >= 1024)

    assert large(after) - large(before) < CLIENTS


async def test_the_handshake_headers_outlive_the_upgrade(make_server):
    io, url = await make_server()
    seen: list[dict[str, str]] = []

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        seen.append(dict(socket.handshake.headers))

    async with _joined(url, 1):
        (sock,) = io.engine.clients.values()
        assert sock.request.headers["host"] == seen[0]["host"]
        assert "sec-websocket-key" in sock.request.headers
