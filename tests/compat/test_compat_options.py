"""``fastsio.compat.AsyncServer``'s options and helpers, in-process on fastsio's own front:
every documented python-socketio/python-engineio option is accepted, and those with an effect
here have it (CORS, cookie, ping, transports, always_connect, async_handlers, ...)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
import socketio as psio

from fastsio import compat as socketio
from tests.clients.loops import wait_for
from tests.clients.ws import ws_open, ws_receive

TIMEOUT = 5


async def started(**options):
    sio = socketio.AsyncServer(**options)
    port = await sio.start()
    return sio, f"http://127.0.0.1:{port}"


async def test_every_documented_option_is_accepted():
    sio = socketio.AsyncServer(
        client_manager=None, logger=True, json=None, async_handlers=True, namespaces=["/x"],
        always_connect=False, serializer="default", async_mode="asgi",
        ping_interval=(10, 5), ping_timeout=7, max_http_buffer_size=5000, allow_upgrades=False,
        http_compression=True, compression_threshold=200, cookie="sticky",
        cors_allowed_origins=["https://a.example"], cors_credentials=True,
        monitor_clients=True, transports=["websocket"], engineio_logger=True,
    )
    engine = sio.io.engine
    assert (engine.ping_interval, engine.ping_timeout) == (10.0, 7.0)
    assert engine.max_http_buffer_size == 5000
    assert engine.allow_upgrades is False
    assert engine.transports == ("websocket",)
    assert engine.http_compression is not None and engine.http_compression.threshold == 200
    assert engine.cookie is not None and engine.cookie.name == "sticky"
    assert "/x" in sio.io._nsps
    sio.instrument(auth=False)
    assert "/admin" in sio.io._nsps
    logging.getLogger("socketio.server").setLevel(logging.NOTSET)
    logging.getLogger("fastsio.engine").setLevel(logging.NOTSET)


def test_unsupported_choices_are_clear_errors():
    with pytest.raises(ValueError, match="serializer"):
        socketio.AsyncServer(serializer="pickle")
    with pytest.raises(ValueError, match="python-socketio's client managers"):
        socketio.AsyncServer(client_manager=psio.AsyncManager())


async def test_cors_default_refuses_other_origins():
    sio, url = await started()
    try:
        async with aiohttp.ClientSession() as http:
            q = f"{url}/socket.io/?EIO=4&transport=polling"
            async with http.get(q, headers={"Origin": "https://evil.example"}) as r:
                assert r.status == 403
                assert "not an accepted origin" in (await r.text())
            host = url.removeprefix("http://")
            async with http.get(q, headers={"Origin": f"http://{host}"}) as r:
                assert r.status == 200
            async with http.get(q) as r:  # no Origin (not a browser): accepted
                assert r.status == 200
    finally:
        await sio.shutdown()
    sio, url = await started(cors_allowed_origins="*")
    try:
        async with aiohttp.ClientSession() as http, http.get(
                f"{url}/socket.io/?EIO=4&transport=polling",
                headers={"Origin": "https://any.example"}) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == "https://any.example"
            assert r.headers["Access-Control-Allow-Credentials"] == "true"
    finally:
        await sio.shutdown()


async def test_always_connect_and_refusal_after_connect():
    sio, url = await started(always_connect=True)
    seen = []

    @sio.event
    async def connect(sid, environ, auth):
        seen.append(("connect", sio.manager.is_connected(sid, "/")))
        if auth and auth.get("no"):
            return False

    @sio.event
    def disconnect(sid, reason):
        seen.append(("disconnect", reason))

    try:
        # Read the wire with a raw client: python-socketio's client ignores a DISCONNECT that
        # arrives before its connect() has returned (it checks its own `connected` flag
        # first), and the two packets come back to back here, so on some Pythons it would
        # never report the refusal it was sent.
        async with aiohttp.ClientSession() as http:
            ws, _ = await ws_open(http, url)
            await ws.send_str('40{"no":true}')
            got = [await ws_receive(ws), await ws_receive(ws)]
            await ws.close()
        # Connected first (always_connect), then disconnected by the refusal; no disconnect
        # handler for a refused client, as python-socketio.
        assert got[0].startswith('40{"sid":"'), got
        assert got[1] == "41", got
        assert seen == [("connect", True)]

        # The python-socketio client that is accepted stays connected.
        c = psio.AsyncClient(reconnection=False)
        await c.connect(url, transports=["websocket"], wait_timeout=TIMEOUT)
        assert c.connected
        assert seen == [("connect", True), ("connect", True)]
        await c.disconnect()
        await wait_for(lambda: len(seen) == 3)
        assert seen[2][0] == "disconnect"
    finally:
        await sio.shutdown()


async def test_async_handlers_false_keeps_order():
    sio, url = await started(async_handlers=False)
    order = []

    @sio.event
    async def work(sid, n):
        await asyncio.sleep(0.05 if n == 0 else 0)
        order.append(n)

    try:
        c = psio.AsyncClient(reconnection=False)
        await c.connect(url, transports=["websocket"], wait_timeout=TIMEOUT)
        for n in range(4):
            await c.emit("work", n)
        await wait_for(lambda: len(order) == 4)
        assert order == [0, 1, 2, 3]
        with pytest.raises(RuntimeError):
            await sio.call("x", to=c.get_sid())
        await c.disconnect()
    finally:
        await sio.shutdown()


async def test_helpers_background_task_environ_and_manager():
    sio, url = await started()
    ticks = []

    async def ticker(n):
        for i in range(n):
            ticks.append(i)
            await sio.sleep(0.01)

    @sio.event
    async def connect(sid, environ):
        # the legacy two-argument connect handler
        sio.start_background_task(ticker, 3)
        await sio.emit("early", "from connect", to=sid)

    try:
        c = psio.AsyncClient(reconnection=False)
        early = []
        c.on("early", early.append)
        await c.connect(url + "?token=abc", transports=["websocket"],
                        headers={"X-Test": "yes"}, wait_timeout=TIMEOUT)
        sid = c.get_sid()
        await wait_for(lambda: ticks == [0, 1, 2] and early == ["from connect"])
        env = sio.get_environ(sid)
        assert "token=abc" in env["QUERY_STRING"]
        assert env["HTTP_X_TEST"] == "yes"
        assert env["REMOTE_ADDR"] == "127.0.0.1"
        assert sio.transport(sid) == "websocket"
        assert list(sio.manager.get_participants("/", None)) == [
            (sid, sio.io.sockets.sockets[sid].client.conn.sid)]
        await sio.enter_room(sid, "r")
        assert sio.manager.get_rooms(sid, "/") == [sid, "r"]
        assert sio.manager.rooms["/"]["r"] == {sid: sio.manager.eio_sid_from_sid(sid, "/")}
        await c.disconnect()
        await wait_for(lambda: not sio.manager.is_connected(sid, "/"))
        assert sio.get_environ(sid) is None
    finally:
        await sio.shutdown()


async def test_native_handlers_beside_compat_ones():
    """``sio.io`` is the native server: native handlers on the same namespace run too (the
    compat handler answers the ack when both exist)."""
    sio, url = await started()
    native_seen = []

    @sio.event
    async def both(sid, x):
        return "compat"

    sio.io.on("both", lambda sock, x: native_seen.append(("both", sock.id, x)))
    sio.io.on("only_native", lambda sock, x: x * 2)
    sio.io.on("connection", lambda sock: native_seen.append(("connection", sock.id)))
    try:
        c = psio.AsyncClient(reconnection=False)
        await c.connect(url, transports=["websocket"], wait_timeout=TIMEOUT)
        sid = c.get_sid()
        assert await c.call("both", 1, timeout=TIMEOUT) == "compat"
        assert await c.call("only_native", 21, timeout=TIMEOUT) == 42
        assert native_seen == [("connection", sid), ("both", sid, 1)]
        await c.disconnect()
    finally:
        await sio.shutdown()
