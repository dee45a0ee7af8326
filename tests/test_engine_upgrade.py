"""Upgrade from long-polling to WebSocket: probe, noop on the pending GET, upgrade packet, and
what the server refuses afterwards (official v4 test suite, "upgrade")."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.clients.http import json_error
from tests.clients.loops import wait_for
from tests.clients.polling import Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.wire import ws_url
from tests.clients.ws import ws_open, ws_receive, ws_wait_closed


async def probe(http: aiohttp.ClientSession, url: str, sid: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(ws_url(url, sid), timeout=aiohttp.ClientWSTimeout(ws_close=1.0))
    await ws.send_str("2probe")
    assert await ws_receive(ws) == "3probe"
    return ws


async def upgraded(
    http: aiohttp.ClientSession, url: str
) -> tuple[Polling, aiohttp.ClientWebSocketResponse]:
    p = await Polling.open(http, url)
    ws = await probe(http, url, p.sid)
    await ws.send_str("5")
    return p, ws


async def test_upgrade(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws = await probe(http, url, p.sid)
        sock = rec.sockets[p.sid]
        assert sock.upgrading and sock.transport_name == "polling"
        # The GET is released with a noop so the client stops polling.
        assert await p.get() == (200, "6")
        await ws.send_str("5")
        await ws.send_str("4hello")
        assert await ws_receive(ws) == "4hello"
        assert sock.upgraded and not sock.upgrading
        assert sock.transport_name == "websocket"
        await ws.close()
        assert await rec.wait_closed(p.sid) == "transport close"


async def test_on_upgrade_is_told_once_the_session_moved(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    told: list[tuple[str, str]] = []
    io.engine.on_upgrade = lambda sock: told.append((sock.sid, sock.transport_name))
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws = await probe(http, url, p.sid)
        assert await p.get() == (200, "6")
        assert told == []  # probing is not upgrading yet
        await ws.send_str("5")
        await ws.send_str("4hello")
        assert await ws_receive(ws) == "4hello"
        assert told == [(p.sid, "websocket")]
        await ws.close()
        assert await rec.wait_closed(p.sid) == "transport close"
    assert told == [(p.sid, "websocket")]


async def test_pending_get_released_by_the_probe(make_server):
    io, url = await make_server()
    EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        get = asyncio.ensure_future(p.get())
        await asyncio.sleep(0.05)
        assert not get.done()
        ws = await probe(http, url, p.sid)
        assert await asyncio.wait_for(get, 2) == (200, "6")
        await ws.send_str("5")
        await ws.send_str("4x")
        assert await ws_receive(ws) == "4x"
        await ws.close()


async def test_buffered_packets_move_to_websocket(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io, echo=False)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws = await probe(http, url, p.sid)
        sock = rec.sockets[p.sid]
        # No GET waits: these stay in the polling buffer until the upgrade completes.
        sock.send("one")
        sock.send(b"\x02")
        await ws.send_str("5")
        assert await ws_receive(ws) == "4one"
        assert await ws_receive(ws) == b"\x02"
        await ws.close()


async def test_messages_over_polling_during_the_probe(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws = await probe(http, url, p.sid)
        assert await p.post("4during") == (200, "ok")
        await ws.send_str("5")
        assert await ws_receive(ws) == "4during"
        await ws.close()
    assert rec.messages[p.sid] == [(b"4during", False)]


async def test_polling_refused_after_upgrade(make_server):
    io, url = await make_server()
    EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p, ws = await upgraded(http, url)
        await ws.send_str("4sync")
        assert await ws_receive(ws) == "4sync"
        async with http.get(p.url) as r:
            assert await json_error(r) == (400, {"code": 3, "message": "Bad request"})
        async with http.post(p.url, data=b"4x", headers={"Content-Type": "text/plain"}) as r:
            assert await json_error(r) == (400, {"code": 3, "message": "Bad request"})
        # The WebSocket carries on.
        await ws.send_str("4hello")
        assert await ws_receive(ws) == "4hello"
        await ws.close()


async def test_second_websocket_closed_after_upgrade(make_server):
    """As the official server: the second WebSocket's handshake completes, then it is closed
    with nothing sent on it; the first carries on."""
    io, url = await make_server()
    EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p, ws = await upgraded(http, url)
        await ws.send_str("4sync")
        assert await ws_receive(ws) == "4sync"
        ws2 = await http.ws_connect(
            ws_url(url, p.sid), timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
        )
        assert await ws_wait_closed(ws2) == []
        await ws.send_str("4hello")
        assert await ws_receive(ws) == "4hello"
        await ws.close()


async def test_second_probe_closed_while_upgrading(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws = await probe(http, url, p.sid)
        ws2 = await http.ws_connect(
            ws_url(url, p.sid), timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
        )
        assert await ws_wait_closed(ws2) == []
        assert rec.sockets[p.sid].upgrading
        await ws.send_str("5")
        await ws.send_str("4hello")
        assert await ws_receive(ws) == "4hello"
        await ws.close()


async def test_websocket_session_cannot_be_upgraded(make_server):
    """A session born on WebSocket has nothing to upgrade to: a second WebSocket with its sid is
    refused and the first one keeps working."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        ws, value = await ws_open(http, url)
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(ws_url(url, value["sid"]))
        await ws.send_str("4hello")
        assert await ws_receive(ws) == "4hello"
        await ws.close()
    assert rec.closed[value["sid"]][0] == "transport close"


async def test_upgrade_refused_when_disabled(make_server):
    io, url = await make_server(allow_upgrades=False)
    EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(ws_url(url, p.sid))
        assert await p.post("4still") == (200, "ok")
        assert await p.get() == (200, "4still")


async def test_upgrade_timeout(make_server):
    io, url = await make_server(upgrade_timeout=0.2)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws = await probe(http, url, p.sid)
        assert await p.get() == (200, "6")
        # No upgrade packet: the probe is closed, the session stays on polling.
        assert await ws_wait_closed(ws) == []
        sock = rec.sockets[p.sid]
        assert not sock.upgrading and sock._upgrade_handle is None and sock._check_handle is None
        assert await p.post("4poll") == (200, "ok")
        assert await p.get() == (200, "4poll")
        # A later upgrade works.
        ws = await probe(http, url, p.sid)
        await ws.send_str("5")
        await ws.send_str("4ws")
        assert await ws_receive(ws) == "4ws"
        await ws.close()


async def test_bad_probe_packet_closes_the_probe_only(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws = await http.ws_connect(ws_url(url, p.sid))
        await ws.send_str("4not a probe")
        assert await ws_wait_closed(ws) == []
        assert not rec.sockets[p.sid].upgrading
        assert await p.post("4poll") == (200, "ok")
        assert await p.get() == (200, "4poll")
    assert rec.messages[p.sid] == [(b"4poll", False)]


async def test_probe_closed_by_client(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws = await probe(http, url, p.sid)
        await ws.close()
        sock = rec.sockets[p.sid]
        await wait_for(lambda: not sock.upgrading)
        assert await p.post("4poll") == (200, "ok")
        assert await p.get() == (200, "4poll")


async def test_session_close_during_probe_closes_the_probe(make_server):
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        ws = await probe(http, url, p.sid)
        rec.sockets[p.sid].close()
        assert await ws_wait_closed(ws) == []
        assert await p.get() == (200, "1")
        assert (await p.get())[0] == 400


async def test_pings_follow_the_upgrade(make_server):
    io, url = await make_server(ping_interval=0.2, ping_timeout=0.3)
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p, ws = await upgraded(http, url)
        for _ in range(2):
            assert await ws_receive(ws) == "2"
            await ws.send_str("3")
        assert rec.closed == {}
        assert await ws_wait_closed(ws) == ["2"]
    assert rec.closed[p.sid][0] == "ping timeout"
