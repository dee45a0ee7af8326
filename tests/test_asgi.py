"""Engine.IO and Socket.IO over ASGI (``fastsio.ASGIApp``) under uvicorn, in this process and on
the test's loop (asyncio and uvloop): raw-protocol handshakes and errors, limits, backpressure,
connection state recovery, mount paths, lifespan and its close deadline."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
import socketio
import uvicorn

import fastsio
from fastsio.asgi import ASGIApp
from tests.clients.http import json_error
from tests.clients.loops import wait_for
from tests.clients.polling import Polling
from tests.clients.wire import parse_open, ws_url
from tests.clients.ws import ws_receive

TIMEOUT = 5


class Uvicorn:
    """uvicorn serving an ASGI app on the running loop."""

    def __init__(self, app: Any, **config: Any) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, loop="none", log_level="warning",
            lifespan="on", **config))
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.server.serve())
        await wait_for(lambda: self.server.started or (self.task is not None
                                                       and self.task.done()))
        assert self.server.started, self.task

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 20)


ServeFactory = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[ServeFactory]:
    """``io, url = await serve(**server_options)``: ``ASGIApp(io)`` under uvicorn;
    ``app_wrapper(asgi_app)`` may wrap it (a mount, another app)."""
    started: list[Uvicorn] = []

    async def factory(app_wrapper: Any = None, asgi_options: dict[str, Any] | None = None,
                      **options: Any) -> tuple[fastsio.Server, str]:
        io = fastsio.Server(**options)
        # A short close deadline: a polling session waits for its client's next GET, which
        # these tests never send.
        app: Any = ASGIApp(io, **{"shutdown_timeout": 0.3, **(asgi_options or {})})
        if app_wrapper is not None:
            app = app_wrapper(app)
        server = Uvicorn(app)
        await server.start()
        started.append(server)
        return io, server.url

    yield factory
    for server in started:
        await server.stop()


async def test_polling_handshake_and_errors(serve):
    io, url = await serve(ping_interval=0.5, ping_timeout=0.5)
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert p.handshake["upgrades"] == ["websocket"]
        assert p.handshake["pingInterval"] == 500
        assert p.handshake["maxPayload"] == 1_000_000
        assert p.sid in io.engine.clients
        # The engine's own error answers, through ASGI.
        async with http.get(f"{url}/socket.io/?EIO=4&transport=nope") as r:
            assert await json_error(r) == (400, {"code": 0, "message": "Transport unknown"})
        async with http.get(f"{url}/socket.io/?EIO=4&transport=polling&sid=unknown") as r:
            assert await json_error(r) == (400, {"code": 1, "message": "Session ID unknown"})
        async with http.get(f"{url}/socket.io/?EIO=3&transport=polling") as r:
            assert (await json_error(r))[1]["code"] == 5
        # Heartbeat: the server pings, the client answers on the next POST.
        packets = await p.get_packets()
        assert packets == ["2"]
        assert await p.post("3") == (200, "ok")
        # Socket.IO on top.
        assert await p.post("40") == (200, "ok")
        connect = (await p.get_packets())[0]
        assert connect.startswith("40{") and "sid" in orjson.loads(connect[2:])
        async with http.get(f"{url}/elsewhere") as r:
            assert r.status == 404


async def test_polling_body_limit(serve):
    io, url = await serve(max_http_buffer_size=1000)
    closed: list[str] = []
    io.on("connection", lambda s: s.on("disconnect", closed.append))
    async with aiohttp.ClientSession() as http:
        p = await Polling.open(http, url)
        assert await p.post("40") == (200, "ok")
        await p.get_packets()
        status, _ = await p.post("4" + "x" * 2000)
        assert status == 413
        await wait_for(lambda: closed == ["transport error"])
        assert p.sid not in io.engine.clients


async def test_websocket_message_limit(serve):
    io, url = await serve(max_http_buffer_size=1000)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(url))
        first = await ws_receive(ws)
        sid = parse_open(first)["sid"]
        await ws.send_str("4" + "y" * 2000)
        assert await ws_receive(ws) is None
        assert ws.close_code == 1009
        await wait_for(lambda: sid not in io.engine.clients)


async def test_python_client_every_transport_and_upgrade(serve):
    io, url = await serve()
    transports: list[str] = []

    @io.on("echo")
    def echo(sock, *args):
        transports.append(sock.transport)
        return args

    for choice in (["polling"], ["websocket"], ["polling", "websocket"]):
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=choice, wait_timeout=TIMEOUT)
        if choice == ["polling", "websocket"]:
            await wait_for(lambda c=client: c.transport() == "websocket")
        assert await client.call("echo", (1, b"\x00", {"a": "é"}), timeout=TIMEOUT) == (
            1, b"\x00", {"a": "é"})
        await client.disconnect()
    assert transports == ["polling", "websocket", "websocket"]


async def test_broadcast_reaches_websocket_and_polling_clients(serve):
    io, url = await serve()
    got: dict[str, list[Any]] = {"polling": [], "websocket": []}
    clients = []
    for name in ("polling", "websocket"):
        c = socketio.AsyncClient(reconnection=False)
        c.on("news", lambda *a, n=name: got[n].append(a))
        await c.connect(url, transports=[name], wait_timeout=TIMEOUT)
        clients.append(c)
    await wait_for(lambda: len(io.sockets.sockets) == 2)
    # Ten: python-socketio's client refuses a polling payload of more than 16 packets
    # (python-engineio's Payload.max_decode_packets), whichever server sends it. Over 1 KiB in
    # all, so the polling answer is compressed.
    for i in range(10):
        io.emit("news", i, "x" * 50 * i)
    await wait_for(lambda: len(got["polling"]) == 10 and len(got["websocket"]) == 10)
    assert got["websocket"] == [(i, "x" * 50 * i) for i in range(10)]
    assert got["polling"] == got["websocket"]
    for c in clients:
        await c.disconnect()


async def test_backpressure_disconnects_a_client_that_stops_reading(serve):
    io, url = await serve(write_buffer_high_water=16 * 1024, max_queued_bytes=256 * 1024)
    reasons: list[str] = []
    sockets: list[fastsio.Socket] = []

    def on_connection(sock):
        sockets.append(sock)
        sock.on("disconnect", reasons.append)

    io.on("connection", on_connection)
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    writer.write(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    frame = await reader.readexactly(2)  # the open packet
    await reader.readexactly(frame[1] & 0x7F)
    writer.write(bytes([0x81, 0x82, 0, 0, 0, 0]) + b"40")  # a masked "40" frame
    await wait_for(lambda: bool(sockets))
    sock = sockets[0]
    # The client reads nothing from here on: the kernel buffers fill, then the queue.
    chunk = "z" * 32 * 1024
    dropped_volatile = False
    for _ in range(2000):
        if reasons:
            break
        sock.emit("blob", chunk)
        if not sock.client.conn.writable:
            dropped_volatile = True
        await asyncio.sleep(0)
    await wait_for(lambda: reasons == ["transport error"], timeout=10)
    assert dropped_volatile  # the connection went busy before it was cut off
    writer.close()


async def test_connection_state_recovery_over_asgi(serve):
    io, url = await serve(connection_state_recovery={"max_disconnection_duration": 10})
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(url))
        await ws_receive(ws)
        await ws.send_str("40")
        hello = orjson.loads((await ws_receive(ws))[2:])
        pid = hello["pid"]
        await wait_for(lambda: len(io.sockets.sockets) == 1)
        sock = next(iter(io.sockets.sockets.values()))
        sock.join("room")
        io.to("room").emit("first", 1)
        first = await ws_receive(ws)
        assert first.startswith('42["first",1,')
        offset = orjson.loads(first[2:])[-1]
        await ws.close()
        await wait_for(lambda: not io.sockets.sockets)
        io.to("room").emit("missed", 2)
        ws2 = await http.ws_connect(ws_url(url))
        await ws_receive(ws2)
        await ws2.send_str("40" + orjson.dumps({"pid": pid, "offset": offset}).decode())
        missed = await ws_receive(ws2)
        assert missed.startswith('42["missed",2,')
        back = orjson.loads((await ws_receive(ws2))[2:])
        assert back == {"sid": hello["sid"], "pid": pid}
        restored = next(iter(io.sockets.sockets.values()))
        assert restored.recovered and "room" in restored.rooms
        await ws2.close()


async def test_mounted_paths_and_root_path(serve):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    def wrap(sio_app):
        return Starlette(routes=[
            Route("/", lambda request: PlainTextResponse("home")),
            Mount("/realtime", app=sio_app),
        ])

    _io, url = await serve(app_wrapper=wrap)
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, socketio_path="realtime/socket.io", transports=["polling"],
                         wait_timeout=TIMEOUT)
    await client.disconnect()
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/") as r:
            assert await r.text() == "home"
        async with http.get(f"{url}/realtime/socket.io/?EIO=4&transport=polling") as r:
            assert (await r.text()).startswith("0{")


async def test_custom_socketio_path_and_static_files(serve, tmp_path):
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "app.js").write_text("console.log(1)")
    _io, url = await serve(asgi_options={
        "socketio_path": "rt",
        "static_files": {"/": str(tmp_path / "index.html"),
                         "/static": str(tmp_path / "static")},
    })
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/rt/?EIO=4&transport=polling") as r:
            assert (await r.text()).startswith("0{")
        async with http.get(url + "/") as r:
            assert (r.headers["content-type"], await r.text()) == ("text/html", "<h1>hi</h1>")
        async with http.get(url + "/static/app.js") as r:
            assert await r.text() == "console.log(1)"
            assert "javascript" in r.headers["content-type"]
        async with http.get(url + "/static/../../etc/passwd") as r:
            assert r.status == 404


async def test_lifespan_hooks_and_close_deadline():
    io = fastsio.Server()
    calls: list[str] = []
    reasons: list[str] = []
    io.on("connection", lambda s: s.on("disconnect", reasons.append))

    async def on_startup():
        calls.append("startup")

    def on_shutdown():
        calls.append("shutdown")

    server = Uvicorn(ASGIApp(io, on_startup=on_startup, on_shutdown=on_shutdown,
                             shutdown_timeout=1.0))
    await server.start()
    assert calls == ["startup"]
    client = socketio.AsyncClient(reconnection=False)
    disconnected = asyncio.Event()
    client.on("disconnect", lambda *a: disconnected.set())
    await client.connect(server.url, transports=["websocket"], wait_timeout=TIMEOUT)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await server.stop()
    # uvicorn closes its WebSockets itself, then runs the lifespan shutdown: our hook and a
    # graceful close of what is left, within the deadline.
    assert loop.time() - start < 5
    assert calls == ["startup", "shutdown"]
    assert reasons and reasons[0] in ("transport close", "server shutting down")
    await asyncio.wait_for(disconnected.wait(), TIMEOUT)
    await client.disconnect()
