"""python-socketio's ``AsyncClient`` against fastsio: the core set of the JS interop tests."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest
import socketio

import fastsio
from tests.clients.loops import wait_for
from tests.clients.server_side import get, track_connections, track_disconnections
from tests.clients.sio import SioClient

TRANSPORTS = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "upgrade": ["polling", "websocket"],
}
transports = pytest.mark.parametrize("transports", list(TRANSPORTS.values()), ids=list(TRANSPORTS))


@transports
async def test_connect_on_each_transport(make_server, py_client, transports):
    io, url = await make_server()
    sockets = track_connections(io)

    @io.on("ping")
    def ping(socket, n):
        return ("pong", n + 1, socket.transport)

    client = py_client()
    await client.connect(url, transports=transports)
    sock = await get(sockets)
    assert sock.id == client.get_sid("/")
    final = transports[-1]
    await wait_for(lambda: client.transport() == final and sock.transport == final)
    assert await client.call("ping", 1, timeout=5) == ("pong", 2, final)


@transports
async def test_emit_with_ack(make_server, py_client, transports):
    io, url = await make_server()

    @io.on("upper")
    def upper(socket, text):
        return text.upper()

    @io.on("echo")
    async def echo(socket, *args):
        await asyncio.sleep(0)
        return args

    @io.on("nothing")
    def nothing(socket):
        return None

    client = py_client()
    await client.connect(url, transports=transports)
    assert await client.call("upper", "héllo ☃", timeout=5) == "HÉLLO ☃"
    args = (1, "two", {"three": [3, 3.5, None, True]}, None, [], "", "😀 \u2028 \x1e \x00 \\")
    assert await client.call("echo", args, timeout=5) == args  # a tuple: several arguments
    assert await client.call("nothing", timeout=5) is None

    got: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
    await client.emit("echo", ("a", "b"), callback=lambda *a: got.set_result(a))
    assert await asyncio.wait_for(got, 5) == ("a", "b")


@transports
async def test_server_emits_to_one_client(make_server, py_client, transports):
    io, url = await make_server()
    sockets = track_connections(io)

    @io.on("connection")
    def welcome(socket):
        socket.emit("welcome", socket.id, {"n": 1, "list": [1, "a", None]})

    client = py_client()
    rec = SioClient(["/"], client)

    @client.on("question")
    def question(n):
        return 42, n

    await client.connect(url, transports=transports)
    sid = client.get_sid("/")
    assert await rec.wait("welcome") == (sid, {"n": 1, "list": [1, "a", None]})
    sock = await get(sockets)
    assert await asyncio.wait_for(sock.emit_with_ack("question", 21), 5) == (42, 21)

    got: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
    sock.emit("question", "x", callback=lambda *a: got.set_result(a))
    assert await asyncio.wait_for(got, 5) == (42, "x")


async def test_broadcast_and_rooms(make_server, py_client):
    io, url = await make_server()

    @io.on("join")
    def join(socket, room):
        socket.join(room)
        return True

    @io.on("tell")
    def tell(socket, room, text):
        socket.to(room).emit("peer", socket.id, text)

    clients, recs = [], []
    for t in TRANSPORTS.values():
        c = py_client()
        recs.append(SioClient(["/"], c))
        await c.connect(url, transports=t)
        clients.append(c)
    a, b, c = clients
    ra, rb, rc = recs

    io.emit("hello", "everyone", {"bin": b"\x00\x01\xff"})
    for r in recs:
        assert await r.wait("hello") == ("everyone", {"bin": b"\x00\x01\xff"})

    assert await a.call("join", "red", timeout=5) is True
    assert await b.call("join", "red", timeout=5) is True
    io.to("red").emit("news", 1)
    io.emit("end")
    for r in recs:
        await r.wait("end")
    assert ra.got("news") == [(1,)] and rb.got("news") == [(1,)]
    assert rc.got("news") == []

    await a.emit("tell", ("red", "hi from a"))
    assert await rb.wait("peer") == (a.get_sid("/"), "hi from a")
    io.emit("end")
    for r in recs:
        await r.wait("end", count=2)
    assert ra.got("peer") == [] and rc.got("peer") == []


@transports
async def test_binary_both_directions(make_server, py_client, transports):
    io, url = await make_server()
    received: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
    big = os.urandom(100_000)

    @io.on("upload")
    def upload(socket, meta, payload):
        received.set_result((meta, payload))
        return {"reversed": payload["buf"][::-1], "list": [b"", {"x": b"\xff" * 3}]}, b"second"

    @io.on("send-down")
    def send_down(socket):
        socket.emit("down", {"a": b"\x00\x01", "b": [b"\x02", {"c": b"\x03"}]}, "text", big)

    client = py_client()
    rec = SioClient(["/"], client)
    await client.connect(url, transports=transports)
    payload = {"buf": b"\x00\x01\x02\xfe\xff", "nested": [{"deep": b"\x80" * 10}, b""],
               "big": big, "n": 1}
    ack = await client.call("upload", ("meta", payload), timeout=5)
    assert await asyncio.wait_for(received, 5) == ("meta", payload)
    assert ack == ({"reversed": b"\xff\xfe\x02\x01\x00", "list": [b"", {"x": b"\xff\xff\xff"}]},
                   b"second")

    await client.emit("send-down")
    assert await rec.wait("down") == (
        {"a": b"\x00\x01", "b": [b"\x02", {"c": b"\x03"}]}, "text", big)


def received_messages(io: fastsio.Server) -> list[bytes]:
    """Every Engine.IO message the server gets, in order (a spy on its engine's sessions)."""
    got: list[bytes] = []
    accept = io.engine.on_connection
    assert accept is not None

    def spy(sock: Any) -> None:
        accept(sock)
        deliver = sock.on_message

        def on_message(data: bytes, binary: bool) -> None:
            got.append(data)
            deliver(data, binary)

        sock.on_message = on_message

    io.engine.on_connection = spy
    return got


@transports
async def test_client_disconnects(make_server, py_client, transports):
    io, url = await make_server()
    received = received_messages(io)
    gone = track_disconnections(io)
    client = py_client()
    rec = SioClient(["/"], client)
    await client.connect(url, transports=transports)
    sid = client.get_sid("/")
    await client.disconnect()
    assert await rec.wait_disconnect() == client.reason.CLIENT_DISCONNECT
    gone_sid, reason = await get(gone)
    assert gone_sid == sid
    # python-engineio's disconnect() queues DISCONNECT and CLOSE for its write loop, then closes
    # the WebSocket: whether the write loop runs first depends on the client's event loop
    # (on CPython 3.11 it does not, on 3.12 and 3.13 it does). The server reports what reached
    # it: the namespace disconnect when the DISCONNECT did, else the connection's end.
    # Over polling one POST carries "41" then the CLOSE packet, handled in order.
    if b"41" in received:
        assert reason == "client namespace disconnect"
    else:
        assert transports[-1] == "websocket"
        assert reason == "transport close"
    assert io.sockets.sockets == {}


@transports
@pytest.mark.parametrize("close", [False, True], ids=["namespace", "close"])
async def test_server_disconnects(make_server, py_client, close, transports):
    io, url = await make_server()
    gone = track_disconnections(io)

    @io.on("kick-me")
    def kick(socket):
        socket.disconnect(close=close)

    client = py_client()
    rec = SioClient(["/"], client)
    await client.connect(url, transports=transports)
    sid = client.get_sid("/")
    await client.emit("kick-me")
    assert await rec.wait_disconnect() == client.reason.SERVER_DISCONNECT
    assert await get(gone) == (sid, "server namespace disconnect")
    assert io.sockets.sockets == {}


async def test_namespaces_share_one_connection(make_server, py_client):
    io, url = await make_server()
    admin = io.of("/admin")
    roots, admins = track_connections(io), track_connections(admin)

    @admin.on("whoami")
    def whoami(socket):
        return socket.nsp.name, socket.id

    @io.on("whoami")
    def root_whoami(socket):
        return "root"

    client = py_client()
    rec = SioClient(["/", "/admin"], client)
    await client.connect(url, namespaces=["/", "/admin"])
    root, adm = await get(roots), await get(admins)
    assert root.client is adm.client  # multiplexed over one Engine.IO connection
    assert adm.id == client.get_sid("/admin") and root.id == client.get_sid("/")
    assert adm.id != root.id
    assert await client.call("whoami", namespace="/admin", timeout=5) == ("/admin", adm.id)
    assert await client.call("whoami", timeout=5) == "root"

    admin.emit("admin-news", 1)
    io.emit("root-news", 2)
    assert await rec.wait("admin-news", "/admin") == (1,)
    assert await rec.wait("root-news", "/") == (2,)
    assert rec.got("root-news", "/admin") == [] and rec.got("admin-news", "/") == []

    # Leaving one namespace from the server keeps the other.
    adm.disconnect()
    assert await rec.wait_disconnect("/admin") == client.reason.SERVER_DISCONNECT
    assert await client.call("whoami", timeout=5) == "root"
    assert root.connected


async def test_dynamic_namespace(make_server, py_client):
    io, url = await make_server()
    parent = io.of(re.compile(r"^/dyn-\d+$"))
    sockets = track_connections(parent)

    @parent.on("whoami")
    def whoami(socket):
        return socket.nsp.name

    client = py_client()
    rec = SioClient(["/dyn-42"], client)
    await client.connect(url, namespaces=["/dyn-42"])
    sock = await get(sockets)
    assert sock.nsp.name == "/dyn-42" and sock.id == client.get_sid("/dyn-42")
    assert await client.call("whoami", namespace="/dyn-42", timeout=5) == "/dyn-42"
    parent.emit("to-children", "x")
    assert await rec.wait("to-children", "/dyn-42") == ("x",)

    other = py_client()
    other_rec = SioClient(["/dyn-abc"], other)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await other.connect(url, namespaces=["/dyn-abc"])
    assert other_rec.connect_errors == [("/dyn-abc", {"message": "Invalid namespace"})]


async def test_unknown_namespace(make_server, py_client):
    _, url = await make_server()
    client = py_client()
    rec = SioClient(["/nope"], client)
    with pytest.raises(socketio.exceptions.ConnectionError, match="/nope"):
        await client.connect(url, namespaces=["/nope"])
    assert rec.connect_errors == [("/nope", {"message": "Invalid namespace"})]


async def test_middleware_refuses(make_server, py_client):
    io, url = await make_server()

    @io.use
    def check_token(socket):
        if socket.handshake.auth.get("token") != "good":
            raise fastsio.ConnectionRefused("not authorized", data={"code": 401})

    bad = py_client()
    rec = SioClient(["/"], bad)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await bad.connect(url, auth={"token": "bad"})
    assert rec.connect_errors == [("/", {"message": "not authorized", "data": {"code": 401}})]

    good = py_client()
    await good.connect(url, auth={"token": "good"})
    assert good.connected


async def test_broadcast_acks(make_server, py_client):
    io, url = await make_server()
    sockets = track_connections(io)
    for i, t in enumerate(TRANSPORTS.values()):
        c = py_client()
        c.on("ask", lambda q, i=i: f"from-{i}")
        await c.connect(url, transports=t)
        await get(sockets)
    answers = await io.timeout(2).emit_with_ack("ask", {"q": 1})
    assert sorted(answers) == ["from-0", "from-1", "from-2"]
