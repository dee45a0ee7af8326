"""``fastsio.Server(other_asgi_app=app)``: a FastAPI application and Socket.IO on one port,
served by fastsio's own front in one process (no ASGI server): HTTP routes, request bodies,
WebSocket routes, the application's lifespan, and Socket.IO beside them."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import socketio
from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel

import fastsio

TIMEOUT = 5


class Item(BaseModel):
    name: str
    price: float


def make_app(events: list[str], release: asyncio.Event | None = None) -> FastAPI:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        events.append("startup")
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/hello")
    async def hello(name: str = "world") -> dict[str, str]:
        return {"hello": name}

    @app.post("/items")
    async def create(item: Item) -> dict[str, Any]:
        return {"stored": item.name, "price": item.price}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("handler error")

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("x" * 100_000, headers={"X-Custom": "1"})

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def parts() -> Any:
            yield "data: first\n\n"
            if release is not None:
                await release.wait()  # the client must have the first part by now
            yield "data: second\n\n"

        return StreamingResponse(parts(), media_type="text/event-stream")

    @app.websocket("/ws/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("text") is not None:
                await ws.send_text("echo:" + msg["text"])
            else:
                await ws.send_bytes(b"echo:" + msg["bytes"])

    @app.websocket("/ws/refuse")
    async def refuse(ws: WebSocket) -> None:
        await ws.close()

    return app


async def test_fastapi_and_socketio_on_one_port():
    events: list[str] = []
    release = asyncio.Event()
    io = fastsio.Server(other_asgi_app=make_app(events, release))

    @io.on("ping")
    def ping(sock, n):
        return n + 1

    port = await io.start()
    url = f"http://127.0.0.1:{port}"
    assert events == ["startup"]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/hello?name=fastsio") as r:
                assert (r.status, await r.json()) == (200, {"hello": "fastsio"})
            async with http.post(url + "/items", json={"name": "pen", "price": 1.5}) as r:
                assert await r.json() == {"stored": "pen", "price": 1.5}
            async with http.post(url + "/items", json={"name": "pen"}) as r:
                assert r.status == 422  # FastAPI's validation answer, passed through
            async with http.get(url + "/missing") as r:
                assert r.status == 404 and (await r.json()) == {"detail": "Not Found"}
            async with http.get(url + "/text") as r:
                assert r.headers["X-Custom"] == "1"
                assert await r.text() == "x" * 100_000
            async with http.head(url + "/hello") as r:
                assert r.status in (200, 405)
            async with http.get(url + "/boom") as r:
                assert r.status == 500
            # A streaming response goes out as it is produced (server-sent events).
            async with http.get(url + "/stream") as r:
                assert r.headers["Content-Type"].startswith("text/event-stream")
                first = await asyncio.wait_for(r.content.readuntil(b"\n\n"), TIMEOUT)
                assert first == b"data: first\n\n"
                release.set()
                assert await r.content.read() == b"data: second\n\n"
            async with http.get(url + "/hello") as r:  # the connection went on after it
                assert r.status == 200
            # Keep-alive: several requests on one connection, in order.
            for i in range(3):
                async with http.get(url + f"/hello?name={i}") as r:
                    assert (await r.json()) == {"hello": str(i)}
            ws = await http.ws_connect(url + "/ws/echo")
            await ws.send_str("hi")
            assert (await ws.receive(TIMEOUT)).data == "echo:hi"
            await ws.send_bytes(b"\x00")
            assert (await ws.receive(TIMEOUT)).data == b"echo:\x00"
            await ws.close()
            try:
                await http.ws_connect(url + "/ws/refuse")
                raise AssertionError("the refused WebSocket connected")
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 403
        # Socket.IO on the same port, both transports.
        for transports in (["polling"], ["websocket"], ["polling", "websocket"]):
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(url, transports=transports, wait_timeout=TIMEOUT)
            assert await client.call("ping", 41, timeout=TIMEOUT) == 42
            await client.disconnect()
    finally:
        await io.close(1.0)
    assert events == ["startup", "shutdown"]


async def test_app_without_lifespan_and_compat_server():
    """A bare ASGI callable without lifespan support, behind a compat server."""
    from fastsio import compat

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("http only")
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"part 1, ", "more_body": True})
        await send({"type": "http.response.body", "body": b"part 2"})

    sio = compat.AsyncServer(other_asgi_app=app)

    @sio.event
    async def hello(sid, data):
        return "hello " + data

    port = await sio.start()
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http, http.get(url + "/any") as r:
            assert await r.text() == "part 1, part 2"
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=["websocket"], wait_timeout=TIMEOUT)
        assert await client.call("hello", "you", timeout=TIMEOUT) == "hello you"
        await client.disconnect()
    finally:
        await sio.shutdown()
    await asyncio.sleep(0)


async def test_asgiapp_hooks_on_the_own_front():
    """``fastsio run app:app`` for an ``ASGIApp`` with hooks and no other app: the hooks run
    with the own front's start and close; other paths get 404."""
    from fastsio.asgi import ASGIApp, own_front_server

    calls: list[str] = []

    async def up() -> None:
        calls.append("startup")

    io = own_front_server(ASGIApp(fastsio.Server(), on_startup=up,
                                  on_shutdown=lambda: calls.append("shutdown")))
    port = await io.start()
    assert calls == ["startup"]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/nothing") as r:
                assert (r.status, await r.text()) == (404, "Not Found")
            async with http.get(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling") as r:
                assert (await r.text()).startswith("0{")
    finally:
        await io.close(0.5)
    assert calls == ["startup", "shutdown"]
