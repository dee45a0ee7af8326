"""``await io.close()``: every session ends, the port stops listening, and nothing is left
running (no task, no timer, no connection)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.clients.http import RawConnection
from tests.clients.polling import Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.wire import eio_target, host_port, request, ws_upgrade_request, ws_url
from tests.clients.ws import RawWebSocket, ws_open, ws_receive, ws_wait_closed

SOCKET_HANDLES = ("_upgrade_handle", "_check_handle")


def live_timers(loop: asyncio.AbstractEventLoop) -> list[asyncio.TimerHandle]:
    """Scheduled, not cancelled timers (the default loop exposes them; uvloop does not)."""
    scheduled = getattr(loop, "_scheduled", None)
    if scheduled is None:
        return []
    return [h for h in scheduled if not h.cancelled()]


async def test_close_ends_everything(make_server):
    io, url = await make_server(ping_interval=5, ping_timeout=5)
    engine = io.engine
    rec = EngineRecorder(io)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        # A polling session with a GET waiting, one with none, a WebSocket session, an upgraded
        # session, one in the middle of its upgrade, and an idle keep-alive connection.
        waiting = await Polling.open(http, url)
        pending_get = asyncio.ensure_future(waiting.get())
        await Polling.open(http, url)  # no GET waiting
        ws, ws_value = await ws_open(http, url)
        up = await Polling.open(http, url)
        up_ws = await http.ws_connect(ws_url(url, up.sid))
        await up_ws.send_str("2probe")
        assert await ws_receive(up_ws) == "3probe"
        assert await up.get() == (200, "6")
        await up_ws.send_str("5")
        mid = await Polling.open(http, url)
        mid_ws = await http.ws_connect(ws_url(url, mid.sid))
        await mid_ws.send_str("2probe")
        assert await ws_receive(mid_ws) == "3probe"
        keep = await RawConnection.open(url)
        keep.write(request("GET", "/nothing"))
        assert (await keep.read_response()).status == 404
        await asyncio.sleep(0.05)
        sockets = list(rec.sockets.values())
        assert len(sockets) == 5
        assert sockets[3].upgraded and sockets[4].upgrading

        await io.close()

        # Every session closed, with the server's reason.
        assert engine.clients == {}
        assert {sid: reason for sid, (reason, _) in rec.closed.items()} == {
            s.sid: "forced server close" for s in sockets
        }
        for s in sockets:
            assert all(getattr(s, h) is None for h in SOCKET_HANDLES), s.sid
            assert not s._heartbeat.active, s.sid
            assert not s.upgrading
        assert engine._lingering == {}
        assert not engine.timers.pending and len(engine.timers) == 0
        assert engine._tasks == set()
        assert engine._http_connections == set()
        # The clients heard about it.
        assert await pending_get == (200, "1")
        assert await ws_wait_closed(ws) == []
        assert await ws_wait_closed(up_ws) == []
        assert await ws_wait_closed(mid_ws) == []
        assert await keep.at_eof()
        await keep.close()
        assert ws_value["sid"] in rec.closed
        # Nothing listens any more.
        with pytest.raises(OSError):
            await asyncio.open_connection(*host_port(url))
    # No task but this one, no timer armed by the engine.
    await asyncio.sleep(0.05)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert live_timers(loop) == []


async def test_close_is_idempotent_and_quick(make_server):
    io, url = await make_server()
    async with aiohttp.ClientSession() as http:
        await Polling.open(http, url)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await io.close()
    await io.close()
    assert loop.time() - start < 1.0
    assert io.engine.clients == {}


async def test_close_with_lingering_session(make_server):
    """A session the server closed while no GET waited keeps its sid for that GET; close()
    drops it and its timer."""
    io, url = await make_server()
    rec = EngineRecorder(io)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        rec.sockets[p.sid].close()
        assert p.sid in io.engine._lingering
        await io.close()
        assert io.engine._lingering == {}
        await asyncio.sleep(0.02)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert live_timers(asyncio.get_running_loop()) == []


async def test_close_while_allow_request_runs(make_server):
    """A handshake waiting on an async allow_request when the server closes: no session is
    created afterwards and the task is gone."""
    started = asyncio.Event()

    async def allow(req):
        started.set()
        await asyncio.sleep(10)
        return True

    io, url = await make_server(allow_request=allow)
    async with await RawConnection.open(url) as conn:
        conn.write(request("GET", eio_target()))
        await asyncio.wait_for(started.wait(), 5)
        async with await RawWebSocket.open(url) as ws:
            ws.write(ws_upgrade_request(eio_target("websocket")))
            await asyncio.sleep(0.02)
            await io.close()
            assert await ws.at_eof()
        assert await conn.at_eof()
    assert io.engine.clients == {}
    assert io.engine._tasks == set()
    await asyncio.sleep(0.02)
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_socketio_layer_close(make_server):
    """The same through the Socket.IO layer: namespace sockets see ``server shutting down``."""
    io, url = await make_server()
    reasons = []

    @io.on("disconnect")
    def on_disconnect(socket, reason):
        reasons.append(reason)

    async with aiohttp.ClientSession() as http:
        ws, _ = await ws_open(http, url)
        await ws.send_str("40")
        assert (await ws_receive(ws)).startswith("40{")
        p = await Polling.open(http, url)
        assert await p.post("40") == (200, "ok")
        assert (await p.get())[1].startswith("40{")
        await io.close()
        await ws_wait_closed(ws)
    assert reasons == ["server shutting down", "server shutting down"]
    assert io.engine.clients == {}
    await asyncio.sleep(0.02)
    assert asyncio.all_tasks() == {asyncio.current_task()}
