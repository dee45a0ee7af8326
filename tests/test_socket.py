"""Socket.IO behaviour on the wire, checked with a raw WebSocket client and python-socketio."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import socketio

import fastsio
from tests.conftest import wait_for


def ws_url(url: str) -> str:
    return url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"


class RawSio:
    """A minimal Socket.IO client over one WebSocket: exact bytes in, exact bytes out."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.sid = ""

    @classmethod
    async def connect(cls, url: str, nsp_connect: str | None = "40") -> RawSio:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(ws_url(url))
        raw = cls(session, ws)
        opened = await raw.recv()
        assert opened.startswith("0{")
        if nsp_connect is not None:
            await raw.send(nsp_connect)
            reply = await raw.recv()
            assert reply.startswith("40{"), reply
            raw.sid = json.loads(reply[2:])["sid"]
        return raw

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def recv(self, timeout: float = 5.0) -> str:
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "2":  # answer heartbeats, keep them out of the assertions
                    await self.ws.send_str("3")
                    continue
                return str(msg.data)
            raise ConnectionError(f"not a text frame: {msg.type}")

    async def closed(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the connection (frames before that are ignored)."""
        try:
            while True:
                msg = await self.ws.receive(timeout=timeout)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING):
                    return True
        except asyncio.TimeoutError:
            return False

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


@pytest.fixture
async def raw_clients():
    made: list[RawSio] = []

    async def factory(url: str, nsp_connect: str | None = "40") -> RawSio:
        c = await RawSio.connect(url, nsp_connect)
        made.append(c)
        return c

    yield factory
    for c in made:
        await c.close()


async def test_connect_reply_carries_the_socket_id(make_server, raw_clients):
    io, url = await make_server()
    ids = []
    io.on("connection", lambda s: ids.append(s.id))
    c = await raw_clients(url)
    await wait_for(lambda: ids)
    assert ids == [c.sid]
    assert len(c.sid) == 20


async def test_handler_return_value_is_the_ack(make_server, raw_clients):
    io, url = await make_server()

    @io.on("sum")
    def total(socket, a, b):
        return a + b

    @io.on("pair")
    async def pair(socket):
        return ("x", {"y": 1})

    c = await raw_clients(url)
    await c.send('427["sum",2,3]')
    assert await c.recv() == "437[5]"
    await c.send('428["pair"]')
    assert await c.recv() == '438["x",{"y":1}]'


async def test_direct_all_and_room_emits(make_server, raw_clients):
    io, url = await make_server()
    sockets: dict[str, fastsio.Socket] = {}
    io.on("connection", lambda s: sockets.__setitem__(s.id, s))
    a = await raw_clients(url)
    b = await raw_clients(url)
    await wait_for(lambda: len(sockets) == 2)
    sockets[a.sid].emit("direct", 1)
    assert await a.recv() == '42["direct",1]'
    io.emit("all", "x")
    assert await a.recv() == '42["all","x"]'
    assert await b.recv() == '42["all","x"]'
    sockets[b.sid].join("room")
    io.to("room").emit("room", True)
    sockets[a.sid].emit("marker")
    assert await b.recv() == '42["room",true]'
    assert await a.recv() == '42["marker"]'  # a, not in the room, got nothing before its marker
    sockets[b.sid].leave("room")
    assert "room" not in sockets[b.sid].rooms
    assert sockets[b.sid].rooms == {b.sid}


async def test_socket_to_room_excludes_the_sender(make_server, raw_clients):
    io, url = await make_server()

    @io.on("connection")
    def join(s):
        s.join("lobby")

    @io.on("say")
    def say(s, text):
        s.to("lobby").emit("said", text)

    a = await raw_clients(url)
    b = await raw_clients(url)
    await a.send('42["say","hi"]')
    assert await b.recv() == '42["said","hi"]'
    await a.send('42["say","again"]')
    assert await b.recv() == '42["said","again"]'


async def test_server_emit_with_ack_and_callback(make_server, raw_clients):
    io, url = await make_server()
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    c = await raw_clients(url)
    await wait_for(lambda: sockets)
    pending = asyncio.ensure_future(sockets[0].emit_with_ack("question", 1))
    assert await c.recv() == '420["question",1]'
    await c.send('430["answer"]')
    assert await pending == "answer"
    got = []
    sockets[0].emit("q2", callback=lambda *a: got.append(a))
    assert await c.recv() == '421["q2"]'
    await c.send("431[1,2]")
    await wait_for(lambda: got)
    assert got == [(1, 2)]


async def test_ack_timeout(make_server, raw_clients):
    io, url = await make_server()
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    c = await raw_clients(url)
    await wait_for(lambda: sockets)
    with pytest.raises(fastsio.AckTimeout):
        await sockets[0].timeout(0.1).emit_with_ack("never")
    assert await c.recv() == '420["never"]'


@pytest.mark.parametrize("bad", ['42{"a":1}', "4", "49", '42["disconnect"]', '42[]', '421-["x"]'])
async def test_malformed_packet_closes_only_that_connection(make_server, raw_clients, bad):
    io, url = await make_server()
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    io.on("echo", lambda s, x: x)
    bad_client = await raw_clients(url)
    good = await raw_clients(url)
    await bad_client.send(bad)
    assert await bad_client.closed()
    await wait_for(lambda: reasons)
    assert reasons == ["forced close"]
    await good.send('425["echo","still here"]')
    assert await good.recv() == '435["still here"]'


async def test_event_before_connect_and_second_connect_close_the_connection(
    make_server, raw_clients
):
    io, url = await make_server()
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    early = await raw_clients(url, nsp_connect=None)
    await early.send('42["hello"]')
    assert await early.closed()
    twice = await raw_clients(url)
    await twice.send("40")
    assert await twice.closed()
    # The official server closes the client itself on a protocol violation.
    assert reasons == ["forced server close"]


async def test_reserved_event_names_raise_on_emit(make_server):
    io, _ = await make_server()
    for name in ("connect", "connect_error", "disconnect", "disconnecting", "newListener",
                 "removeListener"):
        with pytest.raises(ValueError):
            io.emit(name)


async def test_disconnect_reasons(make_server, raw_clients):
    io, url = await make_server()
    sockets: dict[str, fastsio.Socket] = {}
    reasons: dict[str, str] = {}
    rooms_at_disconnecting: dict[str, set] = {}
    io.on("connection", lambda s: (sockets.__setitem__(s.id, s), s.join("r")))
    io.on("disconnecting", lambda s, r: rooms_at_disconnecting.__setitem__(s.id, s.rooms))
    io.on("disconnect", lambda s, r: reasons.__setitem__(s.id, r))

    by_client = await raw_clients(url)
    await by_client.send("41")
    await wait_for(lambda: by_client.sid in reasons)
    assert reasons[by_client.sid] == "client namespace disconnect"
    assert rooms_at_disconnecting[by_client.sid] == {by_client.sid, "r"}

    by_server = await raw_clients(url)
    await wait_for(lambda: by_server.sid in sockets)
    sockets[by_server.sid].disconnect()
    assert await by_server.recv() == "41"
    assert reasons[by_server.sid] == "server namespace disconnect"

    closing = await raw_clients(url)
    await closing.ws.close()
    await wait_for(lambda: closing.sid in reasons)
    assert reasons[closing.sid] == "transport close"

    closed_by_server = await raw_clients(url)
    await wait_for(lambda: closed_by_server.sid in sockets)
    sockets[closed_by_server.sid].disconnect(close=True)
    assert await closed_by_server.recv() == "41"
    assert await closed_by_server.closed()
    assert reasons[closed_by_server.sid] == "server namespace disconnect"
    assert io.sockets.adapter.rooms == {}


async def test_ping_timeout_reason(make_server):
    io, url = await make_server(ping_interval=0.1, ping_timeout=0.1)
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(ws_url(url))
        await ws.receive()
        await ws.send_str("40")
        await ws.receive()
        # never answer the ping
        await wait_for(lambda: reasons)
        assert reasons == ["ping timeout"]
        await ws.close()


async def test_close_disconnects_with_server_shutting_down():
    io = fastsio.Server()
    port = await io.start("127.0.0.1", 0)
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
    await io.close()
    assert reasons == ["server shutting down"]
    await wait_for(lambda: not client.connected)
    await client.disconnect()
