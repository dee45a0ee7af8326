"""``io.close()``: everyone is disconnected (``server shutting down``), the port is freed, the
connections and timers are gone, and closing is always safe; plus the protocol violations that
close a connection. After the official server's test/close.ts."""

from __future__ import annotations

import asyncio
import logging
import os
import socket as pysocket

import aiohttp
import orjson
import pytest

import fastsio
from tests.clients.loops import wait_for
from tests.clients.polling import Polling
from tests.clients.sio import sio_clients
from tests.clients.wire import port_of, ws_url

FASTSIO_DIR = os.path.dirname(fastsio.__file__) + os.sep
TRANSPORTS = [["polling"], ["websocket"], ["polling", "websocket"]]


def _port_is_free(port: int) -> bool:
    """Bind and listen on the port as a new server would (SO_REUSEADDR, like Node and asyncio)."""
    s = pysocket.socket(pysocket.AF_INET, pysocket.SOCK_STREAM)
    try:
        s.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.mark.parametrize("transports", TRANSPORTS, ids="+".join)
async def test_close_disconnects_everyone_and_frees_the_port(make_server, transports):
    io, url = await make_server()
    admin = io.of("/admin")
    reasons: list[tuple[str, str]] = []
    io.on("disconnect", lambda sock, reason: reasons.append(("/", reason)))
    admin.on("disconnect", lambda sock, reason: reasons.append(("/admin", reason)))
    client_gone = asyncio.Event()
    sockets_left_at_disconnect: list[int] = []

    def on_disconnect(*_reason):
        sockets_left_at_disconnect.append(len(io.sockets.sockets) + len(admin.sockets))
        client_gone.set()

    async with sio_clients() as connect:
        client = await connect(
            url,
            transports=transports,
            namespaces=["/", "/admin"],
            handlers={"disconnect": on_disconnect},
        )
        assert client.connected
        assert len(io.sockets.sockets) == 1 and len(admin.sockets) == 1

        await io.close()
        # close() returns once the listener is gone: the port is free at once.
        assert _port_is_free(port_of(url))
        assert sorted(reasons) == [
            ("/", "server shutting down"),
            ("/admin", "server shutting down"),
        ]
        assert len(io.sockets.sockets) == 0 and len(admin.sockets) == 0
        assert io.engine.clients == {}
        await asyncio.wait_for(client_gone.wait(), 5)
    assert sockets_left_at_disconnect[0] == 0


async def test_close_stops_accepting_connections(make_server):
    io, url = await make_server()
    await io.close()
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
        writer.close()


async def test_close_answers_a_pending_poll_with_a_close_packet(make_server):
    io, url = await make_server()
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert (await p.post("40"))[0] == 200
        packets = await p.get_packets()
        assert packets[0].startswith("40{")
        pending = asyncio.ensure_future(p.get_packets())
        # The GET is parked on the server (the session can write to it).
        await wait_for(lambda: io.engine.clients[p.sid].writable)
        await io.close()
        got = await asyncio.wait_for(pending, 5)
    assert got[-1] == "1", got


async def test_close_closes_open_connections(make_server):
    """Idle keep-alive HTTP connections and WebSocket connections are closed too."""
    io, url = await make_server()
    port = port_of(url)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
        b"Connection: keep-alive\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(url))
        first = await ws.receive(5)
        assert first.type == aiohttp.WSMsgType.TEXT and first.data.startswith("0{")
        await io.close()
        # The WebSocket is closed by the server (a close frame, as the official websocket
        # transport does: no Engine.IO close packet on this transport).
        while True:
            msg = await ws.receive(5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
        assert msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
        ), msg
        await ws.close()
    # The idle keep-alive connection reaches end of stream.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_close_before_start_is_harmless():
    io = fastsio.Server()
    await io.close()
    assert io.engine.clients == {}


async def test_second_close_is_harmless(make_server):
    io, url = await make_server()
    async with sio_clients() as connect:
        await connect(url, transports=["websocket"])
        await io.close()
        await io.close()
    assert _port_is_free(port_of(url))


async def test_close_stops_sessions_and_timers(make_server, caplog):
    """Nothing of the server runs after close(): no task, no timer (ping, ping timeout, connect
    timeout), no warning or error logged (the official fixture server-close.ts: the process
    can exit)."""
    io, url = await make_server(ping_interval=0.05, ping_timeout=0.05, connect_timeout=0.2)
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    async with sio_clients() as connect, aiohttp.ClientSession() as http:
        client = await connect(url, transports=["websocket"])
        polling = await connect(url, transports=["polling"])
        await Polling.open(http, url)  # an Engine.IO session that never joins a namespace
        await asyncio.sleep(0.12)  # a few heartbeats
        assert client.connected and polling.connected
        caplog.clear()
        await io.close()
        await wait_for(lambda: not client.connected and not polling.connected)
    await asyncio.sleep(0.3)  # past every interval and timeout the server had armed

    def ours(task: asyncio.Task) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        return code is not None and code.co_filename.startswith(FASTSIO_DIR)

    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and ours(t)]
    assert leftover == []
    # The default loop lists its timers (uvloop does not): none of ours may still be armed.
    timers = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled() and ours_handle(h)]
    assert timers == []
    assert errors == []
    assert [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("fastsio") and r.levelno >= logging.WARNING
    ] == []
    loop.set_exception_handler(None)


def ours_handle(handle: asyncio.TimerHandle) -> bool:
    fn = getattr(handle, "_callback", None)
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return code is not None and code.co_filename.startswith(FASTSIO_DIR)


# -- protocol violations ------------------------------------------------------------------------
async def _after_close_the_sid_is_unknown(p: Polling) -> None:
    status, body = await p.get()
    assert status == 400
    assert orjson.loads(body)["code"] == 1


async def test_several_connect_packets_close_the_connection(make_server):
    io, url = await make_server()
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert (await p.post("40"))[0] == 200
        assert (await p.post("40"))[0] == 200
        # Closed cleanly, not dropped: the CONNECT answer first, then a close packet.
        got = await p.poll_until_close()
        assert len(got) == 2, got
        assert got[0].startswith("40{") and "sid" in orjson.loads(got[0][2:])
        assert got[1] == "1"
        await _after_close_the_sid_is_unknown(p)
    assert len(io.sockets.sockets) == 0
    assert io.engine.clients == {}


async def test_event_before_connect_closes_the_connection(make_server):
    io, url = await make_server()
    handled = []
    io.on("some event", lambda *args: handled.append(args))
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert (await p.post('42["some event"]'))[0] == 200
        assert await p.poll_until_close() == ["1"]
        await _after_close_the_sid_is_unknown(p)
    assert handled == []
    assert io.engine.clients == {}


async def test_invalid_packet_closes_the_connection(make_server):
    io, url = await make_server()
    reasons = []
    io.on("disconnect", lambda sock, reason: reasons.append(reason))
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert (await p.post("40"))[0] == 200
        assert (await p.post("4abc"))[0] == 200
        got = await p.poll_until_close()
        assert len(got) == 2, got
        assert got[0].startswith("40{")
        assert got[1] == "1"
        await _after_close_the_sid_is_unknown(p)
    assert len(io.sockets.sockets) == 0
    assert len(reasons) == 1
