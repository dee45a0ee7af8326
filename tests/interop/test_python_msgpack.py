"""python-socketio's ``AsyncClient(serializer="msgpack")`` (its ``MsgPackPacket``, the same
format as ``socket.io-msgpack-parser``) against ``fastsio.compat.AsyncServer(serializer="msgpack")``
and against the native ``Server(parser="msgpack")``, over both transports."""

from __future__ import annotations

import asyncio

import pytest
import socketio

import fastsio
from fastsio import compat

transports = pytest.mark.parametrize("transport", ["websocket", "polling"])
TIMEOUT = 5


@transports
async def test_python_socketio_msgpack_client_against_compat(py_client, transport):
    sio = compat.AsyncServer(serializer="msgpack")
    assert sio.io.parser == "msgpack"
    joined: asyncio.Queue[str] = asyncio.Queue()

    @sio.event
    async def connect(sid, environ, auth):
        await sio.enter_room(sid, "r")
        joined.put_nowait(sid)

    @sio.event
    async def echo(sid, *args):
        return args

    @sio.on("ask-back", namespace="/")
    async def ask_back(sid, blob):
        return await sio.call("question", {"blob": blob}, to=sid, timeout=TIMEOUT)

    port = await sio.start()
    url = f"http://127.0.0.1:{port}"
    try:
        client = py_client(serializer="msgpack")
        got: asyncio.Queue[object] = asyncio.Queue()
        client.on("news", lambda *args: got.put_nowait(args))
        client.on("question", lambda data: ["answer", data["blob"][::-1]])
        await client.connect(url, transports=[transport], wait_timeout=TIMEOUT)
        sid = await asyncio.wait_for(joined.get(), TIMEOUT)
        assert client.get_sid() == sid
        data = [1, "two", {"b": b"\x00\xff", "n": [None, 2.5, True]}, b"top"]
        assert await client.call("echo", data, timeout=TIMEOUT) == data
        assert await client.call("ask-back", b"\x01\x02", timeout=TIMEOUT) == [
            "answer", b"\x02\x01"]
        await sio.emit("news", {"blob": b"\x07"}, room="r")
        assert await asyncio.wait_for(got.get(), TIMEOUT) == ({"blob": b"\x07"},)
        await client.disconnect()
    finally:
        await sio.shutdown()


@transports
async def test_python_socketio_msgpack_client_against_native(make_server, py_client, transport):
    io, url = await make_server(parser="msgpack")
    chat = io.of("/chat")

    @chat.use
    def check(socket):
        if socket.handshake.auth.get("token") != "t":
            raise fastsio.ConnectionRefused("bad token", {"why": b"\x00"})

    @chat.on("echo")
    def echo(socket, *args):
        return args

    refused = py_client(serializer="msgpack")
    errors: asyncio.Queue[object] = asyncio.Queue()
    refused.on("connect_error", errors.put_nowait, namespace="/chat")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(url, namespaces=["/chat"], transports=[transport],
                              auth={"token": "no"}, wait_timeout=TIMEOUT)
    assert await asyncio.wait_for(errors.get(), TIMEOUT) == {
        "message": "bad token", "data": {"why": b"\x00"}}

    client = py_client(serializer="msgpack")
    await client.connect(url, namespaces=["/chat"], transports=[transport],
                         auth={"token": "t"}, wait_timeout=TIMEOUT)
    assert await client.call("echo", (b"\x01", [b"\x02"]), namespace="/chat",
                             timeout=TIMEOUT) == (b"\x01", [b"\x02"])
    await client.disconnect()


@transports
async def test_msgpack_over_asgi(py_client, transport):
    """Under uvicorn (``fastsio.ASGIApp``), whose transports build their own messages from the
    session's outbox: the binary messages go out as binary WebSocket frames and ``b`` packets."""
    import socket

    import uvicorn

    from fastsio.asgi import ASGIApp
    from tests.clients.loops import wait_for

    io = fastsio.Server(parser="msgpack")

    @io.on("echo")
    def echo(socket, *args):
        return args

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(ASGIApp(io), host="127.0.0.1", port=port,
                                           loop="none", log_level="warning", lifespan="on"))
    task = asyncio.ensure_future(server.serve())
    try:
        await wait_for(lambda: server.started or task.done())
        client = py_client(serializer="msgpack")
        await client.connect(f"http://127.0.0.1:{port}", transports=[transport],
                             wait_timeout=TIMEOUT)
        assert await client.call("echo", {"b": [b"\x00\x01"]}, timeout=TIMEOUT) == {
            "b": [b"\x00\x01"]}
        await client.disconnect()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
