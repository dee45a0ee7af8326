"""``Server(parser="msgpack")`` with the official JS client and ``socket.io-msgpack-parser``
(``io(url, {parser})``), over WebSocket, long-polling and the upgrade between them: connect,
events and acks both ways, binary values at the top level and nested, namespaces, rooms,
connect errors, connection state recovery with offsets, and the msgpack client bundle."""

from __future__ import annotations

import asyncio
import json

import pytest

import fastsio
from tests.clients.http import fetch
from tests.clients.loops import wait_for
from tests.clients.node import REPO, array_buffer, binary_types

TRANSPORTS = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "upgrade": ["polling", "websocket"],
}
transports = pytest.mark.parametrize("transports", list(TRANSPORTS.values()), ids=list(TRANSPORTS))
RECONNECT = {"reconnection": True, "reconnectionDelay": 50, "reconnectionDelayMax": 50}


async def msgpack_client(js_client, url, namespace="/", **opts):
    return await js_client(url, namespace, parser="msgpack", **opts)


@transports
async def test_events_and_acks_both_ways_with_binary_anywhere(make_server, js_client, transports):
    io, url = await make_server(parser="msgpack")
    sockets: asyncio.Queue[fastsio.Socket] = asyncio.Queue()
    io.on("connection", sockets.put_nowait)
    got: list[tuple[object, ...]] = []

    @io.on("echo")
    def echo(socket, *args):
        got.append(args)
        return args

    @io.on("upload")
    def upload(socket, name, blob, meta):
        return len(blob), meta["parts"][1], socket.transport

    client = await msgpack_client(js_client, url, transports=transports,
                                  acks={"ask": "echo", "ask2": ["fine", b"\xff\x00"]})
    hello = await client.connected()
    sock = await asyncio.wait_for(sockets.get(), 5)
    assert sock.id == hello["id"]
    args = [1, "two", {"three": [3, 3.5, None, True]}, None, [], "", "😀 \u2028 \x1e \x00 \\",
            2**53, -(2**31), -1.5, 1e-300]
    assert await client.emit_with_ack("echo", *args) == args
    # Binary at the top level and nested, Buffer and ArrayBuffer: bytes here, in one packet.
    nested = {"a": [b"\x01\x02", {"b": b"\x00" * 3000}], "c": b""}
    assert await client.emit_with_ack("echo", b"\xfe", nested) == [b"\xfe", nested]
    assert got[-1] == (b"\xfe", nested)
    assert await client.emit_with_ack("echo", array_buffer(b"\x07\x08")) == [b"\x07\x08"]
    assert got[-1] == (b"\x07\x08",)
    final = transports[-1]
    if len(transports) > 1:
        await client.next("upgrade")
        await wait_for(lambda: sock.transport == "websocket")
    assert await client.emit_with_ack(
        "upload", "f", b"\x00" * 100_000, {"parts": [b"a", b"bc"]}) == [100_000, b"bc", final]
    # The server emits, the JS client acks: echoed as sent, binary as Buffers.
    assert await sock.emit_with_ack("ask", b"\x00\x01", {"deep": [[b"\x02"]]}) == (
        b"\x00\x01", {"deep": [[b"\x02"]]})
    assert await sock.emit_with_ack("ask2") == ("fine", b"\xff\x00")
    sock.emit("plain", "x", {"bin": b"\x05"}, 7)
    msg = await client.next("event", "plain")
    assert binary_types(msg["args"]) == ["Buffer"]
    assert client.events("plain") == [["x", {"bin": b"\x05"}, 7]]


@transports
async def test_namespaces_and_room_broadcasts(make_server, js_client, transports):
    io, url = await make_server(parser="msgpack")
    chat = io.of("/chat")

    @chat.on("join")
    def join(socket, room):
        socket.join(room)
        return "joined"

    @chat.on("say")
    def say(socket, room, text, blob):
        socket.to(room).emit("said", socket.id, text, blob)

    a = await msgpack_client(js_client, url, "/chat", transports=transports)
    b = await msgpack_client(js_client, url, "/chat", transports=transports)
    c = await msgpack_client(js_client, url, "/chat", transports=transports)
    root = await msgpack_client(js_client, url, transports=transports)
    ida = (await a.connected())["id"]
    for client in (b, c, root):
        await client.connected()
    assert await a.emit_with_ack("join", "r") == ["joined"]
    assert await b.emit_with_ack("join", "r") == ["joined"]
    a.emit("say", "r", "hello", b"\x00\xff")
    assert await b.event("said") == [ida, "hello", b"\x00\xff"]
    # A server broadcast to the room, encoded once for every recipient and transport.
    chat.to("r").emit("news", {"n": 1, "b": b"\x01"})
    io.emit("root-only", 1)
    assert await a.event("news") == [{"n": 1, "b": b"\x01"}]
    assert await b.event("news") == [{"n": 1, "b": b"\x01"}]
    assert await root.event("root-only") == [1]
    await asyncio.sleep(0.1)
    assert c.events("news") == [] and c.events("said") == [] and a.events("said") == []
    assert a.events("root-only") == []


async def test_a_broadcast_is_encoded_once_for_every_transport(make_server, js_client,
                                                               monkeypatch):
    io, url = await make_server(parser="msgpack")
    clients = [await msgpack_client(js_client, url, transports=t) for t in TRANSPORTS.values()]
    for client in clients:
        await client.connected()
    encoded = []
    real_encode = io.encode

    def encode(*args, **kwargs):
        encoded.append(args)
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(io, "encode", encode)
    io.emit("once", b"\x01", {"k": [b"\x02"]})
    monkeypatch.undo()
    assert len(encoded) == 1
    for client in clients:
        assert await client.event("once") == [b"\x01", {"k": [b"\x02"]}]


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
async def test_connect_error_with_data(make_server, js_client, transports):
    io, url = await make_server(parser="msgpack")

    @io.of("/private").use
    def refuse(socket):
        raise fastsio.ConnectionRefused("not allowed", {"code": 42, "raw": b"\x01"})

    client = await msgpack_client(js_client, url, "/private", transports=transports)
    err = await client.connect_error()
    assert err["message"] == "not allowed"
    assert err["data"]["code"] == 42
    assert err["data"]["raw"]["$bin"] == "AQ=="
    other = await msgpack_client(js_client, url, "/nowhere", transports=transports)
    assert (await other.connect_error())["message"] == "Invalid namespace"


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
async def test_recovery_replays_missed_packets_with_offsets(make_server, js_client, transports):
    io, url = await make_server(parser="msgpack",
                                connection_state_recovery={"max_disconnection_duration": 10})
    left = asyncio.Event()
    io.on("disconnect", lambda sock, reason: left.set())

    @io.on("connection")
    def joined(socket):
        if not socket.recovered:
            socket.join("room")

    client = await msgpack_client(js_client, url, transports=transports, **RECONNECT)
    first = await client.connected()
    assert first["recovered"] is False
    io.emit("tick", 0, b"\x00")
    tick = await client.event("tick")
    assert tick[:2] == [0, b"\x00"] and isinstance(tick[2], str)  # the offset, last
    client.send({"op": "drop"})
    await asyncio.wait_for(left.wait(), 5)
    io.to("room").emit("tick", 1, {"b": b"\x01"})
    io.emit("tick", 2)
    io.to("elsewhere").emit("tick", "not for it")
    again = await client.connected()
    assert again["recovered"] is True and again["id"] == first["id"]
    await client.next("event", "tick", where=lambda m: m["args"][0] == 2)
    ticks = client.events("tick")
    assert [t[:-1] for t in ticks] == [[0, b"\x00"], [1, {"b": b"\x01"}], [2]]
    offsets = [t[-1] for t in ticks]
    assert len(set(offsets)) == 3 and all(isinstance(o, str) for o in offsets)
    status = await client.status()
    assert status["offset"] == offsets[-1]
    assert io.stats()["recoveries"] == {"ok": 1, "failed": 0}
    # After recovery the socket's own emits are stamped too.
    (sock,) = io.sockets.sockets.values()
    sock.emit("tick", 3)
    last = await client.next("event", "tick", where=lambda m: m["args"][0] == 3)
    assert isinstance(last["args"][-1], str) and last["args"][-1] != offsets[-1]


async def test_a_json_client_is_refused_by_a_msgpack_server(make_server, js_client):
    """The parsers do not mix: the default client's text packets close its connection."""
    io, url = await make_server(parser="msgpack")
    good = await msgpack_client(js_client, url, transports=["websocket"])
    await good.connected()
    plain = await js_client(url, transports=["websocket"])
    # Its CONNECT ("40", a text message) is a parse error: the server closes the transport.
    assert await plain.disconnected() == "transport close"
    assert not [m for m in plain.messages if m.get("type") == "connect"]
    io.emit("still", "here")
    assert await good.event("still") == ["here"]


# -- the bundle ---------------------------------------------------------------------------------
MSGPACK_BUNDLE = ("socket.io.msgpack.min.js", "socket.io.msgpack.min.js.map")
DIST = REPO / "node_modules" / "socket.io-client" / "dist"


async def test_the_msgpack_bundle_is_served_with_the_msgpack_parser(make_server):
    _, url = await make_server(parser="msgpack")
    for name in (*MSGPACK_BUNDLE, "socket.io.min.js"):
        r = await fetch(f"{url}/socket.io/{name}")
        assert r.status == 200, name
        assert r.body == (DIST / name).read_bytes()


async def test_the_msgpack_bundle_is_not_served_with_the_json_parser(make_server):
    """The official server answers a file it does not serve under its path as any other
    Engine.IO request: 400, Transport unknown."""
    _, url = await make_server()
    for name in MSGPACK_BUNDLE:
        r = await fetch(f"{url}/socket.io/{name}")
        assert r.status == 400, name
        assert json.loads(r.body) == {"code": 0, "message": "Transport unknown"}
    r = await fetch(f"{url}/socket.io/socket.io.min.js")
    assert r.status == 200


def test_parser_is_checked():
    with pytest.raises(ValueError, match="parser"):
        fastsio.Server(parser="cbor")
    with pytest.raises(ValueError, match="allow_eio3"):
        fastsio.Server(parser="msgpack", allow_eio3=True)
    assert fastsio.Server().parser == "json"
