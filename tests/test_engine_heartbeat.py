"""Engine.IO v4 heartbeat: the server pings every ``ping_interval``; a client that does not
answer within ``ping_timeout`` is closed with ``ping timeout``."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.clients.loops import wait_for
from tests.clients.polling import Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.ws import ws_open, ws_receive, ws_wait_closed

INTERVAL = 0.2
TIMEOUT = 0.3


async def test_polling_ping_pong(make_server):
    io, url = await make_server(ping_interval=INTERVAL, ping_timeout=TIMEOUT)
    rec = EngineRecorder(io)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        for _ in range(3):
            start = loop.time()
            assert await p.get() == (200, "2")
            # The ping comes one interval after the handshake or the last pong.
            assert loop.time() - start > INTERVAL * 0.7
            assert await p.post("3") == (200, "ok")
        assert rec.closed == {}
        assert p.sid in io.engine.clients


async def test_polling_ping_timeout(make_server):
    io, url = await make_server(ping_interval=INTERVAL, ping_timeout=TIMEOUT)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert await p.get() == (200, "2")
        assert await rec.wait_closed(p.sid) == "ping timeout"
        assert (await p.get())[0] == 400
    assert io.engine.clients == {}


async def test_polling_ping_timeout_without_any_poll(make_server):
    """The official suite's case: the client never polls; after interval + timeout the sid is
    gone."""
    _, url = await make_server(ping_interval=INTERVAL, ping_timeout=TIMEOUT)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        await asyncio.sleep(INTERVAL + TIMEOUT + 0.1)
        assert (await p.get())[0] == 400


async def test_polling_ping_timeout_answers_the_pending_get(make_server):
    io, url = await make_server(ping_interval=INTERVAL, ping_timeout=TIMEOUT)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert await p.get() == (200, "2")
        # A GET waits while the ping goes unanswered: it ends with a close packet.
        assert await p.get() == (200, "1")
        assert rec.closed[p.sid][0] == "ping timeout"


async def test_websocket_ping_pong(make_server):
    io, url = await make_server(ping_interval=INTERVAL, ping_timeout=TIMEOUT)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws, value = await ws_open(http, url)
        for _ in range(3):
            assert await ws_receive(ws) == "2"
            await ws.send_str("3")
        assert rec.closed == {}
        assert value["sid"] in io.engine.clients
        await ws.close()


async def test_websocket_ping_timeout(make_server):
    io, url = await make_server(ping_interval=INTERVAL, ping_timeout=TIMEOUT)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws, value = await ws_open(http, url)
        assert await ws_wait_closed(ws) == ["2"]
    assert rec.closed[value["sid"]][0] == "ping timeout"
    assert io.engine.clients == {}


async def test_ping_from_client_is_an_error(make_server):
    """v4: only the server pings."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws, value = await ws_open(http, url)
        await ws.send_str("2")
        await ws_wait_closed(ws)
        p = await Polling.open(http, url)
        assert await p.post("2") == (200, "ok")
        assert rec.closed[p.sid] == ("transport error", "invalid heartbeat direction")
    assert rec.closed[value["sid"]] == ("transport error", "invalid heartbeat direction")


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_socketio_layer_sees_ping_timeout(make_server, transport):
    """Through the real Socket.IO layer: a namespace socket's disconnect reason."""
    io, url = await make_server(ping_interval=INTERVAL, ping_timeout=TIMEOUT)
    reasons: list[str] = []
    connected = asyncio.Event()

    @io.on("connection")
    def on_connection(socket):
        connected.set()

    @io.on("disconnect")
    def on_disconnect(socket, reason):
        reasons.append(reason)

    async with aiohttp.ClientSession() as http:
        if transport == "polling":
            p = await Polling.open(http, url)
            assert await p.post("40") == (200, "ok")
            packets = await p.get_packets()
            assert packets[0].startswith("40{")
        else:
            ws, _ = await ws_open(http, url)
            await ws.send_str("40")
            assert (await ws_receive(ws)).startswith("40{")
        await asyncio.wait_for(connected.wait(), 5)
        await wait_for(lambda: bool(reasons))
        if transport == "websocket":
            await ws.close()
    assert reasons == ["ping timeout"]
    assert io.engine.clients == {}
