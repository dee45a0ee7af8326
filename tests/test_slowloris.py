"""Peers that hold a connection without doing anything useful: requests that trickle in
(slowloris), idle keep-alive connections, WebSocket handshakes that never finish, clients that
never join a namespace, and half-open connections (the peer vanished without a FIN). Each is cut
off after its timeout, and everything the server held for it is released."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import pytest

import fastsio
from fastsio.engine.websocket import WebSocketTransport
from tests.clients.http import RawConnection
from tests.clients.loops import wait_for
from tests.clients.server_side import server_objects
from tests.clients.wire import (
    OP_CLOSE,
    OP_TEXT,
    eio_target,
    parse_open,
    request,
    ws_upgrade_request,
)
from tests.clients.ws import RawWebSocket

# Short timeouts so that each case takes a fraction of a second.
REQUEST_TIMEOUT = 0.4
KEEP_ALIVE_TIMEOUT = 0.3
# A deadline fires at most one tick (1/20th of the shortest timeout) late; the rest is slack for
# a loaded 2-core machine.
LATE = 1.0


async def trickle(conn: RawConnection, data: bytes, every: float = 0.05) -> None:
    """Write ``data`` one byte at a time, forever slower than any timeout allows."""
    try:
        for i in range(len(data)):
            conn.write(data[i : i + 1])
            await asyncio.sleep(every)
    except (ConnectionError, RuntimeError):
        pass


async def read_all(conn: RawConnection, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (fails after ``timeout``)."""
    chunks = []
    try:
        while True:
            chunk = await asyncio.wait_for(conn.reader.read(65536), timeout)
            if not chunk:
                break
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


async def timed_cut_off(conn: RawConnection, timeout: float) -> tuple[bytes, float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    got = await read_all(conn, timeout + LATE + 2)
    return got, loop.time() - start


@pytest.fixture
async def slow_server(make_server):
    async def factory(**options: Any) -> tuple[fastsio.Server, str]:
        options.setdefault("http_request_timeout", REQUEST_TIMEOUT)
        options.setdefault("http_keep_alive_timeout", KEEP_ALIVE_TIMEOUT)
        return await make_server(**options)

    return factory


# -- the HTTP front ------------------------------------------------------------------------------
async def test_headers_trickling_in_are_cut_off(slow_server):
    io, url = await slow_server()
    async with await RawConnection.open(url) as conn:
        writer = asyncio.ensure_future(trickle(conn, request("GET", eio_target()) * 10))
        got, elapsed = await timed_cut_off(conn, REQUEST_TIMEOUT)
        writer.cancel()
    assert got.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), got
    assert b"Connection: close" in got
    assert REQUEST_TIMEOUT * 0.9 <= elapsed <= REQUEST_TIMEOUT + LATE
    await wait_for(lambda: not io.engine._http_connections)
    assert io.engine.clients == {}


async def test_body_trickling_in_is_cut_off(slow_server):
    _io, url = await slow_server()
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", eio_target()))
        opened = parse_open((await conn.read_response()).text)
        body = b"40" + b" " * 200
        head = request("POST", eio_target(sid=opened["sid"]), {"Content-Length": str(len(body))})
        conn.write(head)
        writer = asyncio.ensure_future(trickle(conn, body))
        got, elapsed = await timed_cut_off(conn, REQUEST_TIMEOUT)
        writer.cancel()
    assert got.startswith(b"HTTP/1.1 408 "), got
    # The timer runs from the request's first byte (the keep-alive timer, shorter, no longer).
    assert REQUEST_TIMEOUT * 0.9 <= elapsed <= REQUEST_TIMEOUT + LATE


async def test_a_connection_that_sends_nothing_is_cut_off(slow_server):
    io, url = await slow_server()
    async with await RawConnection.open(url) as conn:
        got, elapsed = await timed_cut_off(conn, REQUEST_TIMEOUT)
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert REQUEST_TIMEOUT * 0.9 <= elapsed <= REQUEST_TIMEOUT + LATE
    await wait_for(lambda: not io.engine._http_connections)


async def test_an_idle_keep_alive_connection_is_closed(slow_server):
    io, url = await slow_server(http_request_timeout=5.0)
    async with await RawConnection.open(url) as conn:
        for _ in range(3):  # several requests in a row: each answer restarts the idle timer
            conn.write(request("GET", "/nothing-here"))
            assert (await conn.read_response()).status == 404
            await asyncio.sleep(KEEP_ALIVE_TIMEOUT / 2)
        got, elapsed = await timed_cut_off(conn, KEEP_ALIVE_TIMEOUT)
    assert got == b""  # closed without a word, as Node does
    assert elapsed <= KEEP_ALIVE_TIMEOUT + LATE
    await wait_for(lambda: not io.engine._http_connections)


async def test_a_pending_long_poll_is_not_timed_out(slow_server):
    """A GET read whole and waiting for packets is the transport working, not a slow request:
    it waits for the next ping, well past both HTTP timeouts."""
    io, url = await slow_server(ping_interval=0.9, ping_timeout=5.0)
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", eio_target()))
        sid = parse_open((await conn.read_response()).text)["sid"]
        loop = asyncio.get_running_loop()
        start = loop.time()
        conn.write(request("GET", eio_target(sid=sid)))
        r = await conn.read_response()
        assert (r.status, r.text) == (200, "2")
        assert loop.time() - start >= 0.8  # past both HTTP timeouts
        conn.write(request("POST", eio_target(sid=sid), body=b"3"))
        assert (await conn.read_response()).status == 200
    assert sid in io.engine.clients


async def test_pipelined_requests_are_each_timed(slow_server):
    """Whole requests pipelined behind one another are answered; a partial one behind them is
    cut off like any other."""
    _io, url = await slow_server()
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", "/a") + request("GET", "/b") + b"GET /c HTTP/1.1\r\nHo")
        assert (await conn.read_response()).status == 404
        assert (await conn.read_response()).status == 404
        got, _elapsed = await timed_cut_off(conn, REQUEST_TIMEOUT)
    assert got.startswith(b"HTTP/1.1 408 "), got


async def test_timeouts_can_be_turned_off(slow_server):
    _io, url = await slow_server(http_request_timeout=None, http_keep_alive_timeout=None)
    async with await RawConnection.open(url) as conn:
        await asyncio.sleep(REQUEST_TIMEOUT + 0.15)
        conn.write(request("GET", "/x"))
        assert (await conn.read_response()).status == 404
        await asyncio.sleep(KEEP_ALIVE_TIMEOUT + 0.15)
        conn.write(request("GET", "/y"))
        assert (await conn.read_response()).status == 404


@pytest.mark.parametrize(
    "options",
    [{"http_request_timeout": 0}, {"http_keep_alive_timeout": -1}, {"shutdown_timeout": -1}],
)
def test_timeout_options_are_checked(options):
    with pytest.raises(ValueError):
        fastsio.Server(**options)


def test_timeout_defaults():
    io = fastsio.Server()
    assert io.engine.http_request_timeout == 10.0
    assert io.engine.http_keep_alive_timeout == 5.0  # Node's keepAliveTimeout
    assert io.shutdown_timeout is None


# -- WebSocket -----------------------------------------------------------------------------------
async def test_a_websocket_handshake_trickling_in_is_cut_off(slow_server):
    """The HTTP part of the upgrade is the front's: picows's handshake timeout only starts once
    the whole request was handed over."""
    io, url = await slow_server()
    async with await RawWebSocket.open(url) as ws:
        writer = asyncio.ensure_future(trickle(ws, ws_upgrade_request(eio_target("websocket"))))
        got, elapsed = await timed_cut_off(ws, REQUEST_TIMEOUT)
        writer.cancel()
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert REQUEST_TIMEOUT * 0.9 <= elapsed <= REQUEST_TIMEOUT + LATE
    assert io.engine.clients == {}


async def test_an_open_websocket_is_not_touched_by_the_http_timeouts(slow_server):
    io, url = await slow_server(ping_interval=0.2, ping_timeout=2.0)
    io.on("echo", lambda s, x: x)
    async with await RawWebSocket.open(url) as ws:
        assert (await ws.upgrade(eio_target("websocket"))).status == 101
        await ws.recv_text()  # open
        ws.send_text("40")
        assert (await ws.recv_text()).startswith("40{")
        loop = asyncio.get_running_loop()
        end = loop.time() + 2 * max(REQUEST_TIMEOUT, KEEP_ALIVE_TIMEOUT)
        while loop.time() < end:  # answer pings, send nothing else
            assert await ws.recv_text() == "2"
            ws.send_text("3")
        ws.send_text('421["echo","still here"]')
        assert await ws.recv_text() == '431["still here"]'
    assert len(io.engine._http_connections) == 0


async def test_a_client_that_never_joins_a_namespace_is_closed(slow_server):
    """``connect_timeout``: an Engine.IO session that never sends the Socket.IO CONNECT."""
    io, url = await slow_server(connect_timeout=0.3, ping_interval=5, ping_timeout=5)
    loop = asyncio.get_running_loop()
    async with await RawWebSocket.open(url) as ws, await RawConnection.open(url) as conn:
        assert (await ws.upgrade(eio_target("websocket"))).status == 101
        await ws.recv_text()
        conn.write(request("GET", eio_target()))
        sid = parse_open((await conn.read_response()).text)["sid"]
        start = loop.time()
        conn.write(request("GET", eio_target(sid=sid)))
        frames = await ws.recv_until_close()
        assert frames[-1][0] in (OP_CLOSE, -1)
        assert all(op != OP_TEXT for op, _ in frames[:-1])
        # The polling session's pending GET gets the close packet.
        r = await conn.read_response()
        assert (r.status, r.text) == (200, "1")
        assert 0.25 <= loop.time() - start <= 0.3 + LATE
    await wait_for(lambda: not io.engine.clients)


# -- half-open connections -----------------------------------------------------------------------
async def half_open_websocket(url: str) -> RawConnection:
    """Upgrade, join ``/``, then go silent: nothing read or written again, and no FIN."""
    ws = await RawWebSocket.open(url)
    await ws.join()
    ws.writer.transport.pause_reading()
    return ws


async def half_open_polling(url: str) -> RawConnection:
    """A polling client that joins ``/``, parks a GET, and goes silent."""
    conn = await RawConnection.open(url)
    sid = await conn.polling_join()
    conn.write(request("GET", eio_target(sid=sid)))  # parked: the ping will come on it
    conn.writer.transport.pause_reading()
    return conn


@pytest.mark.parametrize("kind", ["websocket", "polling"])
async def test_half_open_connections_are_reaped_by_the_heartbeat(slow_server, kind):
    io, url = await slow_server(ping_interval=0.2, ping_timeout=0.2)
    reasons: list[str] = []
    refs: list[weakref.ref[Any]] = []

    @io.on("connection")
    def on_connection(socket):
        socket.join(["lobby", "room-" + socket.id])
        refs.append(weakref.ref(socket))
        transport = socket.client.conn.transport
        if isinstance(transport, WebSocketTransport):
            refs.append(weakref.ref(transport))

    io.on("disconnect", lambda s, r: reasons.append(r))
    silent = await (half_open_websocket(url) if kind == "websocket" else half_open_polling(url))
    try:
        assert len(io.engine.clients) == 1 and len(io.sockets.sockets) == 1
        assert set(io.sockets.adapter.rooms) >= {"lobby"}
        await wait_for(lambda: reasons, 3)
        assert reasons == ["ping timeout"]
        assert io.engine.clients == {}
        assert io.sockets.sockets == {}
        assert io.sockets.adapter.rooms == {}
        # Every reference dropped: the socket and transport (weak references) and everything
        # else of that connection (the collector finds none). The server may still hold the
        # TCP connection of a polling client for the keep-alive timeout.
        await wait_for(lambda: not server_objects(io) and all(r() is None for r in refs), 3)
        assert refs
    finally:
        silent.writer.transport.abort()


async def test_the_timers_hold_no_connection_once_it_is_done(make_server):
    """Every connection is armed on arrival (default timeouts: 10 s, 5 s); once upgraded or
    closed, the timers let go of it at once rather than at its deadline."""
    io, url = await make_server()
    for _ in range(10):
        async with await RawWebSocket.open(url) as ws:
            assert (await ws.upgrade(eio_target("websocket"))).status == 101
            await ws.recv_text()
        async with await RawConnection.open(url) as conn:
            conn.write(request("GET", "/nothing"))
            assert (await conn.read_response()).status == 404
    await wait_for(lambda: not io.engine.clients and not io.engine._http_connections)
    # Only the sessions' heartbeats are left (emptied buckets wait their time).
    assert len(io.engine.timers) == len(io.engine.clients) == 0
    assert "HttpConnection" not in server_objects(io)
