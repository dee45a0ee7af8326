"""``fetch_sockets``, ``sockets_join``, ``sockets_leave`` and ``disconnect_sockets`` on the server,
a room selection and an ``except_`` selection, and what ``fetch_sockets`` hands back
(:class:`fastsio.RemoteSocket`). After the official server's test/utility-methods.ts: three
clients over WebSocket, the server sockets in connection order."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass

import pytest
import socketio

import fastsio
from fastsio import BroadcastOptions
from tests.clients.loops import wait_for
from tests.clients.sio import sio_clients

SOCKETS_COUNT = 3


@dataclass
class Trio:
    io: fastsio.Server
    clients: list[socketio.AsyncClient]
    sockets: list[fastsio.Socket]  # server side, same order as ``clients``
    gone: list[asyncio.Event]  # set when the matching client sees its disconnect


async def _connect_trio(io: fastsio.Server, url: str, connect) -> Trio:
    by_id: dict[str, fastsio.Socket] = {}
    io.on("connection", lambda sock: by_id.__setitem__(sock.id, sock))
    io.on("ping", lambda sock: "pong")
    clients, gone = [], []
    for _ in range(SOCKETS_COUNT):
        event = asyncio.Event()
        clients.append(
            await connect(url, transports=["websocket"], handlers={"disconnect": _setter(event)})
        )
        gone.append(event)
    await wait_for(lambda: len(by_id) == SOCKETS_COUNT)
    return Trio(io, clients, [by_id[c.get_sid("/")] for c in clients], gone)


def _setter(event: asyncio.Event):
    def on_disconnect(*_reason):
        event.set()

    return on_disconnect


@pytest.fixture
async def trio(make_server):
    io, url = await make_server()
    async with sio_clients() as connect:
        yield await _connect_trio(io, url, connect)


def _rooms_setup(t: Trio) -> None:
    t.sockets[0].join(["room1", "room2"])
    t.sockets[1].join("room1")
    t.sockets[2].join("room2")


# -- fetch_sockets ------------------------------------------------------------------------------
async def test_fetch_sockets_returns_every_socket(trio):
    found = await trio.io.fetch_sockets()
    assert len(found) == 3
    assert all(isinstance(s, fastsio.RemoteSocket) for s in found)
    assert {s.id for s in found} == {s.id for s in trio.sockets}


async def test_fetch_sockets_in_a_room(trio):
    _rooms_setup(trio)
    found = await trio.io.in_("room1").fetch_sockets()
    assert {s.id for s in found} == {trio.sockets[0].id, trio.sockets[1].id}


async def test_fetch_sockets_except_a_room(trio):
    _rooms_setup(trio)
    found = await trio.io.except_("room1").fetch_sockets()
    assert [s.id for s in found] == [trio.sockets[2].id]
    found = await trio.io.in_("room2").except_("room1").fetch_sockets()
    assert [s.id for s in found] == [trio.sockets[2].id]


class _DummyAdapter(fastsio.Adapter):
    """An adapter that knows of one socket living on another node."""

    def __init__(self, nsp, recovery=None):
        super().__init__(nsp, recovery)
        self.calls: list[tuple[str, BroadcastOptions, object]] = []

    async def fetch_sockets(self, opts):
        handshake = fastsio.Handshake(
            headers={"accept": "*/*"},
            time="Thu, 01 Jan 2026 00:00:00 GMT",
            address="10.0.0.42",
            xdomain=False,
            secure=False,
            issued=0,
            url="/socket.io/?EIO=4&transport=polling",
            query={"transport": "polling", "EIO": "4"},
        )
        return [fastsio.RemoteSocket(self, "42", handshake, {"42", "room1"}, {"username": "john"})]

    def broadcast(self, data, opts):
        self.calls.append(("broadcast", opts, data))
        super().broadcast(data, opts)

    async def add_sockets(self, opts, rooms):
        self.calls.append(("add_sockets", opts, set(rooms)))

    async def del_sockets(self, opts, rooms):
        self.calls.append(("del_sockets", opts, set(rooms)))

    async def disconnect_sockets(self, opts, close):
        self.calls.append(("disconnect_sockets", opts, close))


async def test_fetch_sockets_with_a_custom_adapter(make_server):
    io, _ = await make_server(adapter=_DummyAdapter)
    found = await io.fetch_sockets()
    assert len(found) == 1
    remote = found[0]
    assert remote.id == "42"
    assert {"42", "room1"} <= set(remote.rooms)
    assert remote.data == {"username": "john"}
    assert remote.handshake.headers == {"accept": "*/*"}
    assert remote.handshake.query == {"transport": "polling", "EIO": "4"}


async def _settle(result) -> None:
    if inspect.isawaitable(result):
        await result


async def test_remote_socket_on_another_node_acts_through_the_adapter(make_server):
    io, _ = await make_server(adapter=_DummyAdapter)
    adapter = io.sockets.adapter
    (remote,) = await io.fetch_sockets()
    only_42 = frozenset({"42"})

    remote.emit("hello", 1)
    await _settle(remote.join("room2"))
    await _settle(remote.leave("room1"))
    await _settle(remote.disconnect(True))
    await wait_for(lambda: len(adapter.calls) == 4)
    kinds = [(kind, opts.rooms, extra) for kind, opts, extra in adapter.calls]
    assert kinds == [
        ("broadcast", only_42, ["hello", 1]),
        ("add_sockets", only_42, {"room2"}),
        ("del_sockets", only_42, {"room1"}),
        ("disconnect_sockets", only_42, True),
    ]


# -- sockets_join / sockets_leave ---------------------------------------------------------------
async def test_sockets_join_makes_every_socket_join(trio):
    await trio.io.sockets_join("room1")
    for sock in trio.sockets:
        assert "room1" in sock.rooms


async def test_sockets_join_in_a_room(trio):
    _rooms_setup(trio)
    await trio.io.in_("room1").sockets_join("room3")
    assert "room3" in trio.sockets[0].rooms
    assert "room3" in trio.sockets[1].rooms
    assert "room3" not in trio.sockets[2].rooms


async def test_sockets_join_except_a_room_and_several_rooms(trio):
    _rooms_setup(trio)
    await trio.io.except_("room2").sockets_join(["room4", "room5"])
    assert {"room4", "room5"} <= trio.sockets[1].rooms
    assert not {"room4", "room5"} & trio.sockets[0].rooms
    assert not {"room4", "room5"} & trio.sockets[2].rooms


async def test_sockets_leave_makes_every_socket_leave(trio):
    _rooms_setup(trio)
    await trio.io.sockets_leave("room1")
    assert "room2" in trio.sockets[0].rooms
    assert "room1" not in trio.sockets[0].rooms
    assert "room1" not in trio.sockets[1].rooms
    # Each socket stays in the room named by its id.
    for sock in trio.sockets:
        assert sock.id in sock.rooms


async def test_sockets_leave_in_a_room(trio):
    _rooms_setup(trio)
    await trio.io.in_("room2").sockets_leave("room1")
    assert "room2" in trio.sockets[0].rooms
    assert "room1" not in trio.sockets[0].rooms
    assert "room1" in trio.sockets[1].rooms


async def test_sockets_leave_except_a_room(trio):
    _rooms_setup(trio)
    await trio.io.except_("room2").sockets_leave("room1")
    assert "room1" in trio.sockets[0].rooms
    assert "room1" not in trio.sockets[1].rooms


# -- disconnect_sockets -------------------------------------------------------------------------
async def test_disconnect_sockets_disconnects_everyone(trio):
    await trio.io.disconnect_sockets(True)
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in trio.gone)), 5)
    assert len(trio.io.sockets.sockets) == 0
    await wait_for(lambda: trio.io.engine.clients == {})


async def test_disconnect_sockets_in_a_room(trio):
    _rooms_setup(trio)
    await trio.io.in_("room2").disconnect_sockets(True)
    await asyncio.wait_for(asyncio.gather(trio.gone[0].wait(), trio.gone[2].wait()), 5)
    # The socket outside the room is untouched: still connected, still answering.
    assert await trio.clients[1].call("ping", timeout=5) == "pong"
    assert not trio.gone[1].is_set()
    assert list(trio.io.sockets.sockets) == [trio.sockets[1].id]


async def test_disconnect_sockets_except_a_room(trio):
    _rooms_setup(trio)
    await trio.io.except_("room1").disconnect_sockets(True)
    await asyncio.wait_for(trio.gone[2].wait(), 5)
    assert await trio.clients[0].call("ping", timeout=5) == "pong"
    assert await trio.clients[1].call("ping", timeout=5) == "pong"
    assert not trio.gone[0].is_set() and not trio.gone[1].is_set()


@pytest.mark.parametrize("close", [False, True])
async def test_disconnect_sockets_close_flag(make_server, close):
    """Without ``close`` only the namespace is left (the connection and its other namespaces
    stay); with it the whole connection goes. Either way each namespace that is left gets
    ``server namespace disconnect``."""
    io, url = await make_server()
    other = io.of("/other")
    reasons: list[tuple[str, str]] = []
    io.on("disconnect", lambda s, r: reasons.append(("/", r)))
    other.on("disconnect", lambda s, r: reasons.append(("/other", r)))
    other.on("ping", lambda s: "pong")
    async with sio_clients() as connect:
        client = await connect(url, transports=["websocket"], namespaces=["/", "/other"])
        await wait_for(lambda: len(io.sockets.sockets) == 1 and len(other.sockets) == 1)
        await io.disconnect_sockets(close=close)
        if close:
            await wait_for(lambda: not client.connected)
            assert sorted(reasons) == [
                ("/", "server namespace disconnect"),
                ("/other", "server namespace disconnect"),
            ]
            await wait_for(lambda: io.engine.clients == {})
        else:
            assert reasons == [("/", "server namespace disconnect")]
            assert await client.call("ping", namespace="/other", timeout=5) == "pong"
            assert len(other.sockets) == 1 and len(io.engine.clients) == 1
        assert len(io.sockets.sockets) == 0


async def test_utilities_of_a_namespace_see_only_its_sockets(make_server):
    io, url = await make_server()
    chat = io.of("/chat")
    async with sio_clients() as connect:
        await connect(url, transports=["websocket"], namespaces=["/"])
        await connect(url, transports=["websocket"], namespaces=["/chat"])
        await wait_for(lambda: len(io.sockets.sockets) == 1 and len(chat.sockets) == 1)
        (chat_sock,) = chat.sockets.values()
        (root_sock,) = io.sockets.sockets.values()
        assert [s.id for s in await chat.fetch_sockets()] == [chat_sock.id]
        await chat.sockets_join("lobby")
        assert "lobby" in chat_sock.rooms and "lobby" not in root_sock.rooms
        await chat.in_("lobby").sockets_leave("lobby")
        assert "lobby" not in chat_sock.rooms
        await chat.disconnect_sockets()
        assert len(chat.sockets) == 0 and len(io.sockets.sockets) == 1


# -- RemoteSocket -------------------------------------------------------------------------------
async def test_remote_socket_describes_the_socket(make_server):
    io, url = await make_server()

    @io.on("connection")
    def on_connection(sock):
        sock.data["username"] = "john"
        sock.join("room1")

    async with sio_clients() as connect:
        client = await connect(url + "?token=abc", transports=["websocket"])
        await wait_for(lambda: len(io.sockets.sockets) == 1)
        (sock,) = io.sockets.sockets.values()
        (remote,) = await io.fetch_sockets()
        assert remote.id == sock.id == client.get_sid("/")
        assert remote.handshake.query["token"] == "abc"
        assert remote.handshake.query["EIO"] == "4"
        assert remote.handshake.query["transport"] == "websocket"
        assert remote.handshake.headers == sock.handshake.headers
        assert remote.handshake.address == "127.0.0.1"
        assert set(remote.rooms) == {sock.id, "room1"}
        assert remote.data == {"username": "john"}


async def test_remote_socket_emit_join_leave_disconnect(make_server):
    io, url = await make_server()
    got: asyncio.Queue = asyncio.Queue()
    gone = asyncio.Event()
    reasons = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    async with sio_clients() as connect:
        await connect(
            url,
            transports=["websocket"],
            handlers={"hello": lambda *a: got.put_nowait(a), "disconnect": _setter(gone)},
        )
        await wait_for(lambda: len(io.sockets.sockets) == 1)
        (sock,) = io.sockets.sockets.values()
        (remote,) = await io.fetch_sockets()

        remote.emit("hello", "world", 42)
        assert await asyncio.wait_for(got.get(), 5) == ("world", 42)

        await _settle(remote.join(["room1", "room2"]))
        assert {"room1", "room2"} <= sock.rooms
        await _settle(remote.leave("room1"))
        assert "room1" not in sock.rooms and "room2" in sock.rooms

        await _settle(remote.disconnect())
        await asyncio.wait_for(gone.wait(), 5)
        assert reasons == ["server namespace disconnect"]
        assert len(io.sockets.sockets) == 0
