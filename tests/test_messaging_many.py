"""Messaging many sockets at once: the behaviours of the official server's
``test/messaging-many.ts``, one test per upstream case, in upstream order, with real clients
over real sockets.

Adaptations to the Python API:
* upstream's clients with ``multiplex: false`` are separate ``AsyncClient``s here (one Engine.IO
  connection each); "must not receive" is checked with a marker sent straight to the client
  after the broadcast (packets to one connection arrive in order).
* broadcast acks have no callback form in fastsio: upstream's callback variants are run with
  python-socketio clients answering through their handlers' return values, the promise variants
  with raw clients that send their ACK packets by hand; both await ``emit_with_ack``.
* ``leaveAll()`` (private upstream) is ``socket.leave(socket.rooms)``.
* upstream reads ``operator.rooms/exceptRooms/flags`` and ``socket.acks``; here ``_opts`` and
  ``_acks``.
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

import pytest

import fastsio
from tests.clients.loops import wait_for
from tests.clients.sio import Clients, RawClient, SioClient, names, settle


def server_socket(io: fastsio.Server, sid: str, ns: str = "/") -> fastsio.Socket:
    sock: fastsio.Socket = io.of(ns).sockets[sid]
    return sock


# -- emitting to a namespace, to the rest, to rooms ----------------------------------------------
async def test_emits_to_a_namespace(make_server, clients):
    io, url = await make_server()
    io.of("/test")
    s1 = await clients.sio(url)
    s2 = await clients.sio(url)
    s3 = await clients.sio(url, ["/test"])
    io.emit("a", "b")
    assert await s1.wait("a") == ("b",)
    assert await s2.wait("a") == ("b",)
    await settle(io, s3, ns="/test")
    assert names(s3, "/test") == ["marker"]


async def test_emits_binary_data_to_a_namespace(make_server, clients):
    io, url = await make_server()
    io.of("/test")
    s1 = await clients.sio(url)
    raw = await clients.raw(url)
    s3 = await clients.sio(url, ["/test"])
    io.emit("bin", bytes(10))
    (data,) = await s1.wait("bin")
    assert isinstance(data, bytes) and data == bytes(10)
    assert await raw.recv() == '451-["bin",{"_placeholder":true,"num":0}]'
    assert await raw.recv() == bytes(10)
    await settle(io, s3, ns="/test")
    assert names(s3, "/test") == ["marker"]


async def test_emits_to_the_rest(make_server, clients):
    io, url = await make_server()
    io.of("/test")
    finished = asyncio.Event()

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.on("broadcast", lambda: socket.broadcast.emit("a", "b"))
        socket.on("finish", finished.set)

    s1 = await clients.sio(url)
    s2 = await clients.sio(url)
    s3 = await clients.sio(url, ["/test"])
    await s2.emit("broadcast")
    assert await s1.wait("a") == ("b",)
    await s1.emit("finish")
    await asyncio.wait_for(finished.wait(), 5)
    await settle(io, s2)
    await settle(io, s3, ns="/test")
    assert names(s2) == ["marker"]
    assert names(s3, "/test") == ["marker"]


async def test_emits_to_rooms(make_server, clients):
    io, url = await make_server()

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.on("join", lambda room: socket.join(room))
        socket.on("emit", lambda room: io.in_(room).emit("a"))

    s1 = await clients.sio(url)
    s2 = await clients.sio(url)
    await s1.emit("join", "woot")
    await s1.emit("emit", "woot")  # in order on one connection: joined first
    assert await s1.wait("a") == ()
    await settle(io, s2)
    assert names(s2) == ["marker"]


async def test_emits_to_rooms_avoiding_dupes(make_server, clients):
    io, url = await make_server()

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.on("join", lambda room: socket.join(room))

        def emit() -> None:
            io.in_("woot").in_("test").emit("a")
            io.in_("third").emit("b")

        socket.on("emit", emit)

    s1 = await clients.sio(url)
    s2 = await clients.sio(url)
    await s1.call("join", "woot")
    await s1.call("join", "test")
    await s2.call("join", "third")
    await s2.emit("emit")
    assert await s2.wait("b") == ()
    await settle(io, s1, s2)
    assert names(s1) == ["a", "marker"]  # in both rooms, sent once
    assert names(s2) == ["b", "marker"]


async def test_broadcasts_to_rooms(make_server, clients):
    io, url = await make_server()

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.on("join", lambda room: socket.join(room))

        def broadcast() -> None:
            socket.broadcast.to("test").emit("a")
            socket.emit("b")

        socket.on("broadcast", broadcast)

    s1 = await clients.sio(url)
    s2 = await clients.sio(url)
    s3 = await clients.sio(url)
    await s1.call("join", "woot")
    await s2.call("join", "test")
    await s3.call("join", "test")
    await s3.emit("broadcast")
    assert await s2.wait("a") == ()
    assert await s3.wait("b") == ()
    await settle(io, s1, s2, s3)
    assert names(s1) == ["marker"]
    assert names(s2) == ["a", "marker"]
    assert names(s3) == ["b", "marker"]


async def test_broadcasts_binary_data_to_rooms(make_server, clients):
    io, url = await make_server()

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.on("join", lambda room: socket.join(room))

        def broadcast() -> None:
            socket.broadcast.to("test").emit("bin", bytes(5))
            socket.emit("bin2", bytes(5))

        socket.on("broadcast", broadcast)

    s1 = await clients.sio(url)
    s2 = await clients.sio(url)
    s3 = await clients.sio(url)
    await s1.call("join", "woot")
    await s2.call("join", "test")
    await s3.call("join", "test")
    await s3.emit("broadcast")
    (bin_data,) = await s2.wait("bin")
    (bin2_data,) = await s3.wait("bin2")
    assert isinstance(bin_data, bytes) and bin_data == bytes(5)
    assert isinstance(bin2_data, bytes) and bin2_data == bytes(5)
    await settle(io, s1, s2, s3)
    assert names(s1) == ["marker"]
    assert names(s2) == ["bin", "marker"]
    assert names(s3) == ["bin2", "marker"]


# -- rooms of one socket -------------------------------------------------------------------------
async def _server_socket(io: fastsio.Server, url: str, clients: Clients) -> fastsio.Socket:
    got: list[fastsio.Socket] = []
    io.on("connection", got.append)
    await clients.sio(url)
    await wait_for(lambda: got)
    return got[0]


async def test_keeps_track_of_rooms(make_server, clients):
    io, url = await make_server()
    s = await _server_socket(io, url, clients)
    assert s.rooms == {s.id}
    s.join("a")
    assert s.rooms == {s.id, "a"}
    s.join("b")
    assert s.rooms == {s.id, "a", "b"}
    s.join("c")
    assert s.rooms == {s.id, "a", "b", "c"}
    s.leave("b")
    assert s.rooms == {s.id, "a", "c"}
    s.leave(s.rooms)
    assert len(s.rooms) == 0


async def test_deletes_empty_rooms(make_server, clients):
    io, url = await make_server()
    s = await _server_socket(io, url, clients)
    s.join("a")
    assert "a" in s.nsp.adapter.rooms
    s.leave("a")
    assert "a" not in s.nsp.adapter.rooms


async def test_leaving_an_unknown_room_changes_nothing(make_server, clients):
    """Upstream: "should properly cleanup left rooms"."""
    io, url = await make_server()
    s = await _server_socket(io, url, clients)
    s.join("a")
    assert s.rooms == {s.id, "a"}
    s.join("b")
    assert s.rooms == {s.id, "a", "b"}
    s.leave("unknown")
    assert s.rooms == {s.id, "a", "b"}
    assert "unknown" not in s.nsp.adapter.rooms
    s.leave(s.rooms)
    assert len(s.rooms) == 0
    assert s.nsp.adapter.rooms == {}


async def test_joins_several_rooms_at_once(make_server, clients):
    io, url = await make_server()
    s = await _server_socket(io, url, clients)
    s.join(["a", "b", "c"])
    assert s.rooms == {s.id, "a", "b", "c"}


# -- except --------------------------------------------------------------------------------------
async def test_broadcast_excludes_specific_sockets(make_server, clients):
    io, url = await make_server()

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.on("exclude", lambda sid: socket.broadcast.except_(sid).emit("a"))

    s1 = await clients.sio(url)
    s2 = await clients.sio(url)
    s3 = await clients.sio(url)
    await s3.emit("exclude", s2.sid())
    assert await s1.wait("a") == ()
    await settle(io, s2, s3)
    assert names(s2) == ["marker"]
    assert names(s3) == ["marker"]


async def test_broadcast_excludes_a_specific_room(make_server, clients):
    io, url = await make_server()

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.on("join", lambda room: socket.join(room))
        socket.on("broadcast", lambda: socket.broadcast.except_("room1").emit("a"))

    s1 = await clients.sio(url)
    s2 = await clients.sio(url)
    s3 = await clients.sio(url)
    await s2.call("join", "room1")
    await s3.emit("broadcast")
    assert await s1.wait("a") == ()
    await settle(io, s2, s3)
    assert names(s2) == ["marker"]
    assert names(s3) == ["marker"]


async def test_socket_broadcast_operator_is_immutable(make_server, clients):
    io, url = await make_server()
    a = await clients.sio(url)  # the socket the operator starts from
    b = await clients.sio(url)  # room1
    c = await clients.sio(url)  # room2 and room3 (excluded)
    d = await clients.sio(url)  # room4
    e = await clients.sio(url)  # room1 and room5
    socket = server_socket(io, a.sid())
    socket.join("room1")  # the operator never reaches its own socket
    server_socket(io, b.sid()).join("room1")
    server_socket(io, c.sid()).join(["room2", "room3"])
    server_socket(io, d.sid()).join("room4")
    server_socket(io, e.sid()).join(["room1", "room5"])

    operator = socket.local.compress(False).to(["room1", "room2"]).except_("room3")
    operator.volatile.emit("hello", 0)
    operator.compress(True).emit("hello", 1)
    operator.to("room4").emit("hello", 2)
    operator.except_("room5").emit("hello", 3)
    socket.emit("hello", 4)
    socket.to("room6").emit("hello", 5)
    operator.emit("hello", 6)  # none of the derived operators changed this one

    opts = operator._opts
    assert opts.rooms == {"room1", "room2"}
    assert "room4" not in opts.rooms and "room5" not in opts.rooms
    assert opts.except_rooms == {socket.id, "room3"}
    assert opts.local is True
    assert opts.compress is False
    assert opts.volatile is False
    assert opts.timeout is None
    await settle(io, a, b, c, d, e)
    assert a.got("hello") == [(4,)]
    assert b.got("hello") == [(0,), (1,), (2,), (3,), (6,)]
    assert c.got("hello") == []
    assert d.got("hello") == [(2,)]
    assert e.got("hello") == [(0,), (1,), (2,), (6,)]


# -- broadcast acknowledgements ------------------------------------------------------------------
ACK_REQUEST = re.compile(r'^42(\d+)\["some event"\]$')


async def answering(url: str, clients: Clients, value: int) -> SioClient:
    """A python-socketio client whose handler's return value is its ack."""
    c = await clients.sio(url, connect=False)
    c.answer("some event", lambda: value)
    await c.connect(url)
    return c


async def ack_id_of(raw: RawClient) -> int:
    packet = await raw.recv()
    assert isinstance(packet, str)
    match = ACK_REQUEST.match(packet)
    assert match, packet
    return int(match.group(1))


async def test_broadcast_collects_every_ack(make_server, clients):
    io, url = await make_server()
    for value in (1, 2, 3):
        await answering(url, clients, value)
    responses = await io.timeout(2).emit_with_ack("some event")
    assert sorted(responses) == [1, 2, 3]


async def test_broadcast_ack_times_out_when_a_client_is_silent(make_server, clients):
    io, url = await make_server()
    s1 = await answering(url, clients, 1)
    s2 = await answering(url, clients, 2)
    silent = await clients.raw(url)  # receives the event, never acks
    with pytest.raises(fastsio.AckTimeout) as failed:
        await io.timeout(0.2).emit_with_ack("some event")
    assert isinstance(failed.value, Exception)
    assert sorted(failed.value.responses) == [1, 2]
    assert s1.got("some event") == [()] and s2.got("some event") == [()]
    await ack_id_of(silent)


async def test_broadcast_collects_every_ack_sent_by_hand(make_server, clients):
    """Upstream: the promise variant (``emitWithAck``)."""
    io, url = await make_server()
    raws = [await clients.raw(url) for _ in range(3)]
    pending = asyncio.ensure_future(io.timeout(2).emit_with_ack("some event"))
    ids = [await ack_id_of(raw) for raw in raws]
    assert len(set(ids)) == 1  # one packet, encoded once, for every socket
    for value, raw in zip((1, 2, 3), raws, strict=True):
        await raw.send(f"43{ids[0]}[{value}]")
    assert sorted(await pending) == [1, 2, 3]


async def test_broadcast_ack_timeout_keeps_what_arrived_and_clears_pending_acks(
    make_server, clients
):
    """Upstream: the promise variant of the timeout case."""
    io, url = await make_server()
    raws = [await clients.raw(url) for _ in range(3)]
    pending = asyncio.ensure_future(io.timeout(0.2).emit_with_ack("some event"))
    ids = [await ack_id_of(raw) for raw in raws]
    await raws[0].send(f"43{ids[0]}[1]")
    await raws[1].send(f"43{ids[1]}[2]")
    with pytest.raises(fastsio.AckTimeout) as failed:
        await pending
    assert sorted(failed.value.responses) == [1, 2]
    assert len(io.sockets.sockets) == 3
    for sock in io.sockets.sockets.values():
        assert len(sock._acks) == 0


async def test_broadcast_ack_to_no_client_returns_at_once(make_server, clients):
    io, url = await make_server()
    cs = [await clients.sio(url) for _ in range(3)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    responses = await io.to("room123").timeout(2).emit_with_ack("some event")
    assert responses == []
    assert loop.time() - started < 1.0  # not after the deadline
    await settle(io, *cs)
    assert all(names(c) == ["marker"] for c in cs)


async def test_broadcast_is_encoded_and_framed_once(make_server, clients, monkeypatch):
    """Upstream: "should precompute the WebSocket frame when broadcasting". Here: the packet is
    encoded once for every recipient, and framed at most once for WebSocket recipients."""
    io, url = await make_server()
    chat = io.of("/chat")
    raws = [await clients.raw(url, ["/chat"]) for _ in range(3)]
    sio = await clients.sio(url, ["/chat"])

    encoded: list[Any] = []
    framed: list[Any] = []
    real_encode = io.encode  # the server's parser: every packet is encoded through it

    def encode(*args: Any, **kwargs: Any) -> Any:
        encoded.append(args)
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(io, "encode", encode)
    for name, module in list(sys.modules.items()):
        real_frame = getattr(module, "ws_frame", None)
        if name.startswith("fastsio.") and callable(real_frame):

            def frame(*args: Any, _real: Any = real_frame, **kwargs: Any) -> Any:
                framed.append(args)
                return _real(*args, **kwargs)

            monkeypatch.setattr(module, "ws_frame", frame)
    chat.compress(False).emit("woot", "hi")
    monkeypatch.undo()

    assert len(encoded) == 1
    assert len(framed) <= 1
    for raw in raws:
        assert await raw.recv() == '42/chat,["woot","hi"]'
    assert await sio.wait("woot", "/chat") == ("hi",)
