"""Socket.IO behaviour on the wire, checked with a raw WebSocket client and python-socketio."""

from __future__ import annotations

import asyncio
import json
import re
import time
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import socketio

import fastsio
import fastsio.client
from tests.clients.loops import wait_for
from tests.clients.wire import ws_url


async def test_connect_reply_carries_the_socket_id(make_server, clients):
    io, url = await make_server()
    ids = []
    io.on("connection", lambda s: ids.append(s.id))
    c = await clients.raw(url)
    await wait_for(lambda: ids)
    assert ids == [c.sid]
    assert len(c.sid) == 20


async def test_handler_return_value_is_the_ack(make_server, clients):
    io, url = await make_server()

    @io.on("sum")
    def total(socket, a, b):
        return a + b

    @io.on("pair")
    async def pair(socket):
        return ("x", {"y": 1})

    c = await clients.raw(url)
    await c.send('427["sum",2,3]')
    assert await c.recv() == "437[5]"
    await c.send('428["pair"]')
    assert await c.recv() == '438["x",{"y":1}]'


async def test_client_events_named_like_the_namespaces_own_reach_socket_listeners_only(
    make_server, clients
):
    """A client may emit "connection" or "error" (neither is reserved): as with the official
    server, whose namespace and socket are separate emitters, that never runs the namespace's
    own connection or error handlers; a listener on the socket gets it like any event."""
    io, url = await make_server()
    seen = []

    @io.on("connection")
    def on_connection(socket):
        seen.append(("connection", socket.id))
        socket.on("error", lambda *args: seen.append(("socket error", args)) or "heard")

    io.on("error", lambda socket, exc: seen.append(("namespace error", exc)))
    c = await clients.raw(url)
    await wait_for(lambda: seen)
    await c.send('421["connection",{"again":true}]')
    await c.send('422["error","not really"]')
    assert await c.recv() == '432["heard"]'
    # The first ack request has no listener: the next packet is the second one's ack.
    assert seen == [("connection", c.sid), ("socket error", ("not really",))]


async def test_direct_all_and_room_emits(make_server, clients):
    io, url = await make_server()
    sockets: dict[str, fastsio.Socket] = {}
    io.on("connection", lambda s: sockets.__setitem__(s.id, s))
    a = await clients.raw(url)
    b = await clients.raw(url)
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


async def test_socket_to_room_excludes_the_sender(make_server, clients):
    io, url = await make_server()

    @io.on("connection")
    def join(s):
        s.join("lobby")

    @io.on("say")
    def say(s, text):
        s.to("lobby").emit("said", text)

    a = await clients.raw(url)
    b = await clients.raw(url)
    await a.send('42["say","hi"]')
    assert await b.recv() == '42["said","hi"]'
    await a.send('42["say","again"]')
    assert await b.recv() == '42["said","again"]'


async def test_server_emit_with_ack_and_callback(make_server, clients):
    io, url = await make_server()
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    c = await clients.raw(url)
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


async def test_ack_timeout(make_server, clients):
    io, url = await make_server()
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    c = await clients.raw(url)
    await wait_for(lambda: sockets)
    with pytest.raises(fastsio.AckTimeout):
        await sockets[0].timeout(0.1).emit_with_ack("never")
    assert await c.recv() == '420["never"]'


@pytest.mark.parametrize("bad", ['42{"a":1}', "4", "49", '42["disconnect"]', '42[]', '421-["x"]'])
async def test_malformed_packet_closes_only_that_connection(make_server, clients, bad):
    io, url = await make_server()
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    io.on("echo", lambda s, x: x)
    bad_client = await clients.raw(url)
    good = await clients.raw(url)
    await bad_client.send(bad)
    assert await bad_client.closed()
    await wait_for(lambda: reasons)
    assert reasons == ["forced close"]
    await good.send('425["echo","still here"]')
    assert await good.recv() == '435["still here"]'


async def test_event_before_connect_and_second_connect_close_the_connection(
    make_server, clients
):
    io, url = await make_server()
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    early = await clients.raw(url, None)
    await early.send('42["hello"]')
    assert await early.closed()
    twice = await clients.raw(url)
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


async def test_disconnect_reasons(make_server, clients):
    io, url = await make_server()
    sockets: dict[str, fastsio.Socket] = {}
    reasons: dict[str, str] = {}
    rooms_at_disconnecting: dict[str, set] = {}
    io.on("connection", lambda s: (sockets.__setitem__(s.id, s), s.join("r")))
    io.on("disconnecting", lambda s, r: rooms_at_disconnecting.__setitem__(s.id, s.rooms))
    io.on("disconnect", lambda s, r: reasons.__setitem__(s.id, r))

    by_client = await clients.raw(url)
    await by_client.send("41")
    await wait_for(lambda: by_client.sid in reasons)
    assert reasons[by_client.sid] == "client namespace disconnect"
    assert rooms_at_disconnecting[by_client.sid] == {by_client.sid, "r"}

    by_server = await clients.raw(url)
    await wait_for(lambda: by_server.sid in sockets)
    sockets[by_server.sid].disconnect()
    assert await by_server.recv() == "41"
    assert reasons[by_server.sid] == "server namespace disconnect"

    closing = await clients.raw(url)
    await closing.ws.close()
    await wait_for(lambda: closing.sid in reasons)
    assert reasons[closing.sid] == "transport close"

    closed_by_server = await clients.raw(url)
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


# =============================================================================================
# The official server's test/socket.ts, case by case, adapted to fastsio's Python API, with
# python-socketio's AsyncClient (and RawClient where exact bytes matter), plus the Socket API
# (handshake, rooms, data, transport, reasons) that those cases rely on.
# =============================================================================================

# An image-sized binary blob (the official tests send a 32 KiB JPEG).
IMAGE = bytes(range(256)) * 128
TEXT_PLAIN = {"Content-Type": "text/plain;charset=UTF-8"}
RESERVED = ("connect", "connect_error", "disconnect", "disconnecting", "newListener",
            "removeListener")


async def connected_socket(io, clients, url, nsp="/", **connect_options):
    """Connect one python-socketio client to ``nsp``; returns ``(client, server socket)``."""
    got: list[fastsio.Socket] = []
    io.of(nsp).on("connection", got.append)
    if nsp != "/":
        connect_options.setdefault("namespaces", [nsp])
    client = await clients.connect(url, **connect_options)
    await wait_for(lambda: got)
    return client, got[0]


# -- reconnecting --------------------------------------------------------------------------
async def test_manual_reconnect_fires_each_event_once(make_server, clients):
    io, url = await make_server()
    connections: list[fastsio.Socket] = []
    reasons: list[str] = []
    events: list[tuple[str, str]] = []
    io.on("connection", connections.append)
    io.on("disconnect", lambda s, r: reasons.append(r))
    io.on("ev", lambda s, x: events.append((s.id, x)))
    client = clients.new()
    connects: list[int] = []
    client.on("connect", lambda: connects.append(1))
    await clients.connect(url, client)
    # Close the Engine.IO connection under the client, then reconnect by hand.
    await client.eio.disconnect()
    await wait_for(lambda: reasons)
    assert reasons == ["transport close"]
    await clients.connect(url, client)
    await client.emit("ev", "once")
    await wait_for(lambda: events)
    await client.emit("ev", "marker")
    await wait_for(lambda: len(events) == 2)
    assert len(connections) == 2
    assert connects == [1, 1]
    assert events == [(connections[1].id, "once"), (connections[1].id, "marker")]
    assert list(io.sockets.sockets) == [connections[1].id]
    assert reasons == ["transport close"]


async def test_server_close_ends_reconnection_attempts_once(make_server, clients):
    io, url = await make_server()
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    client = clients.new(reconnection=True, reconnection_attempts=2, reconnection_delay=0.05,
                         reconnection_delay_max=0.05, randomization_factor=0)
    disconnects: list[object] = []
    failures: list[object] = []
    client.on("disconnect", lambda *a: disconnects.append(a))
    client.on("connect_error", lambda *a: failures.append(a))
    await clients.connect(url, client)
    await io.close()
    assert reasons == ["server shutting down"]
    await wait_for(lambda: len(failures) == 2)
    await asyncio.sleep(0.2)  # twice the reconnection delay: no third attempt
    assert len(failures) == 2
    assert len(disconnects) == 1
    assert not client.connected
    assert reasons == ["server shutting down"]


async def test_emit_after_server_close_and_restart(make_server, clients):
    io, url = await make_server()
    port = io.port
    got: list[str] = []
    io.on("ev", lambda s, data: got.append(data))
    client = clients.new(reconnection=True, reconnection_attempts=50, reconnection_delay=0.05,
                         reconnection_delay_max=0.1, randomization_factor=0)
    connects: list[int] = []
    client.on("connect", lambda: connects.append(1))
    await clients.connect(url, client)
    await io.close()
    assert await io.start("127.0.0.1", port) == port
    await wait_for(lambda: len(connects) == 2 and client.connected)
    await client.emit("ev", "payload")
    await wait_for(lambda: got)
    assert got == ["payload"]


# -- receiving -----------------------------------------------------------------------------
async def test_receive_events(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []
    client, s = await connected_socket(io, clients, url)
    s.on("random", lambda *args: got.append(args))
    await client.emit("random", (1, "2", [3]))
    await wait_for(lambda: got)
    assert got == [(1, "2", [3])]


async def test_receive_message_events_through_send(make_server, clients):
    io, url = await make_server()
    got: list[object] = []
    client, s = await connected_socket(io, clients, url)
    s.on("message", got.append)
    await client.send(1337)
    await wait_for(lambda: got)
    assert got == [1337]


async def test_receive_null_messages(make_server, clients):
    io, url = await make_server()
    got: list[object] = []
    client, s = await connected_socket(io, clients, url)
    s.on("message", lambda *args: got.append(args))
    raw = await clients.raw(url)
    raw_socket = io.sockets.sockets[raw.sid]
    raw_socket.on("message", lambda *args: got.append(("raw", *args)))
    await raw.send('42["message",null]')
    await wait_for(lambda: got)
    assert got == [("raw", None)]
    await client.send(None)
    await wait_for(lambda: len(got) == 2)
    assert got[1] in ((None,), ())  # python-socketio sends no argument for None


async def test_undecodable_packet_errors_the_sockets_then_forced_close(make_server, clients):
    # The official server: a packet the decoder refuses reaches every socket of the client as
    # an "error" event, then the connection closes with "forced close".
    io, url = await make_server()
    io.of("/other")
    errors: list[tuple[str, BaseException]] = []
    reasons: list[tuple[str, str]] = []
    for name in ("/", "/other"):
        io.of(name).on("connection", lambda s: s.on(
            "error", lambda err, s=s: errors.append((s.nsp.name, err))))
        io.of(name).on("disconnect", lambda s, r: reasons.append((s.nsp.name, r)))
    raw = await clients.raw(url)
    await raw.connect("/other")
    await raw.send('42["x"')  # no closing bracket
    await raw.until_closed()
    await wait_for(lambda: len(reasons) == 2)
    assert sorted(reasons) == [("/", "forced close"), ("/other", "forced close")]
    assert sorted(name for name, _ in errors) == ["/", "/other"]
    assert all(isinstance(err, fastsio.ProtocolError) for _, err in errors)


# -- emitting ------------------------------------------------------------------------------
async def test_emit_events(make_server, clients):
    io, url = await make_server()
    client = clients.new()
    got: list[object] = []
    client.on("woot", got.append)
    io.on("connection", lambda s: s.emit("woot", "tobi"))
    await clients.connect(url, client)
    await wait_for(lambda: got)
    assert got == ["tobi"]


async def test_emit_events_with_utf8_multibyte_characters(make_server, clients):
    io, url = await make_server()
    client = clients.new()
    got: list[object] = []
    client.on("hoot", got.append)

    @io.on("connection")
    def three(s):
        for _ in range(3):
            s.emit("hoot", "utf8 — string")

    await clients.connect(url, client)
    await wait_for(lambda: len(got) == 3)
    assert got == ["utf8 — string"] * 3
    # On the wire: UTF-8 text, the dash as is (not escaped).
    raw = await clients.raw(url)
    io.sockets.sockets[raw.sid].emit("hoot", "utf8 — string")
    frame = await raw.ws.receive(timeout=5)
    assert frame.type == aiohttp.WSMsgType.TEXT
    assert frame.data == '42["hoot","utf8 — string"]'


async def test_emit_events_with_binary_data(make_server, clients):
    io, url = await make_server()
    client = clients.new()
    got: list[object] = []
    client.on("doge", got.append)
    io.on("connection", lambda s: s.emit("doge", IMAGE))
    await clients.connect(url, client)
    await wait_for(lambda: got)
    assert isinstance(got[0], bytes)
    assert got[0] == IMAGE


async def test_emit_events_with_several_types_of_data_including_binary(make_server, clients):
    io, url = await make_server()
    client = clients.new()
    got: list[tuple] = []
    client.on("multiple", lambda *args: got.append(args))
    buf = b"asdfasdf"
    io.on("connection", lambda s: s.emit("multiple", 1, IMAGE, "3", [4], buf,
                                         [IMAGE, "swag", buf]))
    await clients.connect(url, client)
    await wait_for(lambda: got)
    assert got == [(1, IMAGE, "3", [4], buf, [IMAGE, "swag", buf])]


async def test_emit_binary_exact_packets(make_server, clients):
    io, url = await make_server()
    raw = await clients.raw(url)
    io.sockets.sockets[raw.sid].emit("bin", 1, b"\x00\x01", {"k": [b"\xff"]})
    assert await raw.recv() == (
        '452-["bin",1,{"_placeholder":true,"num":0},{"k":[{"_placeholder":true,"num":1}]}]')
    assert await raw.recv() == b"\x00\x01"
    assert await raw.recv() == b"\xff"


async def test_receive_events_with_binary_data(make_server, clients):
    io, url = await make_server()
    got: list[object] = []
    client, s = await connected_socket(io, clients, url)
    s.on("buff", got.append)
    await client.emit("buff", b"abcdefg")
    await wait_for(lambda: got)
    assert got == [b"abcdefg"]
    assert isinstance(got[0], bytes)


async def test_receive_events_with_several_types_of_data_including_binary(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []
    client, s = await connected_socket(io, clients, url)
    s.on("multiple", lambda *args: got.append(args))
    buf = b"asdfasdf"
    await client.emit("multiple", (1, IMAGE, "3", [4], buf, [IMAGE, "swag", buf]))
    await wait_for(lambda: got)
    assert got == [(1, IMAGE, "3", [4], buf, [IMAGE, "swag", buf])]


async def test_receive_binary_exact_packets(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []
    io.on("bin", lambda s, *args: got.append(args))
    raw = await clients.raw(url)
    await raw.send('452-["bin",{"_placeholder":true,"num":1},[{"_placeholder":true,"num":0}]]')
    await raw.send(b"first")
    assert not got  # still waiting for the second attachment
    await raw.send(b"")
    await wait_for(lambda: got)
    assert got == [(b"", [b"first"])]


# -- volatile ------------------------------------------------------------------------------
async def count_until_end(io, clients, url, transport, emit, *, wait_idle=False):
    """Run ``emit(socket)`` once the socket connected (after its transport has nothing to
    write, with ``wait_idle``), then emit "end"; returns how many "ev" the client got first."""
    counts = {"ev": 0, "end": 0}
    seen_at_end: list[int] = []
    client = clients.new()
    client.on("ev", lambda *a: counts.__setitem__("ev", counts["ev"] + 1))
    client.on("end", lambda: seen_at_end.append(counts["ev"]))

    async def run(s):
        if wait_idle:
            await wait_for(lambda: s.client.conn.writable)
        emit(s)
        s.emit("end")

    io.on("connection", run)
    await clients.connect(url, client, transports=[transport])
    await wait_for(lambda: seen_at_end)
    return seen_at_end[0]


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_volatile_event_after_a_regular_event_is_dropped(make_server, clients, transport):
    io, url = await make_server(transports=[transport])

    def emit(s):
        s.emit("ev", "data")
        s.volatile.emit("ev", "data")

    assert await count_until_end(io, clients, url, transport, emit, wait_idle=True) == 1


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_volatile_event_is_sent_when_the_transport_is_ready(make_server, clients, transport):
    io, url = await make_server(transports=[transport])
    emit = lambda s: s.volatile.emit("ev", "data")  # noqa: E731
    assert await count_until_end(io, clients, url, transport, emit, wait_idle=True) == 1


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_only_one_of_two_consecutive_volatile_events(make_server, clients, transport):
    io, url = await make_server(transports=[transport])

    def emit(s):
        s.volatile.emit("ev", "data")
        s.volatile.emit("ev", "data")

    assert await count_until_end(io, clients, url, transport, emit, wait_idle=True) == 1


async def test_only_one_of_two_consecutive_volatile_events_with_binary(make_server, clients):
    io, url = await make_server(transports=["websocket"])

    def emit(s):
        s.volatile.emit("ev", b"\x01\x02\x03")
        s.volatile.emit("ev", b"\x04\x05\x06")

    assert await count_until_end(io, clients, url, "websocket", emit, wait_idle=True) == 1


async def test_only_one_of_two_consecutive_volatile_broadcasts_with_binary(make_server, clients):
    io, url = await make_server(transports=["websocket"])

    def emit(s):
        io.volatile.emit("ev", b"\x01\x02\x03")
        io.volatile.emit("ev", b"\x04\x05\x06")

    assert await count_until_end(io, clients, url, "websocket", emit, wait_idle=True) == 1


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_regular_events_after_a_failed_volatile_event(make_server, clients, transport):
    io, url = await make_server(transports=[transport])

    def emit(s):
        s.emit("ev", "data")
        s.volatile.emit("ev", "data")
        s.emit("ev", "data")

    assert await count_until_end(io, clients, url, transport, emit, wait_idle=True) == 2


async def test_volatile_event_to_a_polling_client_without_a_pending_get_is_dropped(
    make_server
):
    io, url = await make_server(transports=["polling"])
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    async with aiohttp.ClientSession() as http:
        base = url + "/socket.io/?EIO=4&transport=polling"
        async with http.get(base) as r:
            sid = json.loads((await r.text())[1:])["sid"]
        poll = f"{base}&sid={sid}"
        async with http.post(poll, data="40", headers=TEXT_PLAIN) as r:
            assert r.status == 200
        async with http.get(poll) as r:
            assert (await r.text()).startswith("40{")
        await wait_for(lambda: sockets)
        sockets[0].volatile.emit("ev", "dropped")  # no GET waiting
        sockets[0].emit("ev", "kept")
        async with http.get(poll) as r:
            assert await r.text() == '42["ev","kept"]'


# -- send / acknowledgements -----------------------------------------------------------------
async def test_emit_message_events_through_send(make_server, clients):
    io, url = await make_server()
    client = clients.new()
    got: list[object] = []
    client.on("message", got.append)
    io.on("connection", lambda s: s.send("a"))
    await clients.connect(url, client)
    await wait_for(lambda: got)
    assert got == ["a"]


async def test_receive_event_with_callback(make_server, clients):
    io, url = await make_server()
    client, s = await connected_socket(io, clients, url)
    s.on("woot", lambda: (1, 2))
    assert await client.call("woot", timeout=5) == (1, 2)


async def test_receive_all_events_from_a_namespaced_client_immediately_and_in_order(
    make_server, clients
):
    io, url = await make_server()
    letters: list[str] = []
    io.of("/chat").on("connection", lambda s: s.on("hi", letters.append))
    raw = await clients.raw(url, None)
    # The event follows the CONNECT without waiting for the server's answer.
    await raw.send("40/chat,")
    await raw.send('42/chat,["hi","a"]')
    assert (await raw.recv_text()).startswith("40/chat,{")
    await wait_for(lambda: letters)
    await raw.send('42/chat,["hi","b"]')
    await wait_for(lambda: len(letters) == 2)
    assert letters == ["a", "b"]


async def test_emit_events_with_callbacks(make_server, clients):
    io, url = await make_server()
    acked: list[tuple] = []
    client = clients.new()
    client.on("hi", lambda: None)
    io.on("connection", lambda s: s.emit("hi", callback=lambda *a: acked.append(a)))
    await clients.connect(url, client)
    await wait_for(lambda: acked)
    assert acked == [()]


async def test_receive_events_with_args_and_callback(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []

    @io.on("woot")
    def woot(s, a, b):
        got.append((a, b))

    client = await clients.connect(url)
    assert await client.call("woot", (1, 2), timeout=5) is None
    assert got == [(1, 2)]


async def test_emit_events_with_args_and_callback(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []
    acked: list[tuple] = []
    client = clients.new()
    client.on("hi", lambda a, b: got.append((a, b)))
    io.on("connection", lambda s: s.emit("hi", 1, 2, callback=lambda *a: acked.append(a)))
    await clients.connect(url, client)
    await wait_for(lambda: acked)
    assert got == [(1, 2)]
    assert acked == [()]


async def test_receive_events_with_binary_args_and_callbacks(make_server, clients):
    io, url = await make_server()
    got: list[object] = []

    @io.on("woot")
    def woot(s, buf):
        got.append(buf)
        return 1, 2

    client = await clients.connect(url)
    assert await client.call("woot", bytes(3), timeout=5) == (1, 2)
    assert got == [bytes(3)]


async def test_emit_events_with_binary_args_and_callback(make_server, clients):
    io, url = await make_server()
    got: list[object] = []
    acked: list[tuple] = []
    client = clients.new()
    client.on("hi", got.append)
    io.on("connection", lambda s: s.emit("hi", bytes(4), callback=lambda *a: acked.append(a)))
    await clients.connect(url, client)
    await wait_for(lambda: acked)
    assert got == [bytes(4)]
    assert acked == [()]


async def test_emit_events_and_receive_binary_data_in_a_callback(make_server, clients):
    io, url = await make_server()
    acked: list[tuple] = []
    client = clients.new()
    client.on("hi", lambda: bytes(1))
    io.on("connection", lambda s: s.emit("hi", callback=lambda *a: acked.append(a)))
    await clients.connect(url, client)
    await wait_for(lambda: acked)
    assert acked == [(bytes(1),)]


async def test_receive_events_and_pass_binary_data_in_a_callback(make_server, clients):
    io, url = await make_server()
    io.on("woot", lambda s: bytes(2))
    client = await clients.connect(url)
    assert await client.call("woot", timeout=5) == bytes(2)
    # Exact bytes: a BINARY_ACK with one attachment.
    raw = await clients.raw(url)
    await raw.send('427["woot"]')
    assert await raw.recv() == '461-7[{"_placeholder":true,"num":0}]'
    assert await raw.recv() == bytes(2)


async def test_emit_an_event_and_wait_for_the_acknowledgement(make_server, clients):
    io, url = await make_server()
    values: list[object] = []
    client = clients.new()
    client.on("hi", lambda a, b: a + b)

    @io.on("connection")
    async def ask(s):
        values.append(await s.emit_with_ack("hi", 1, 2))

    await clients.connect(url, client)
    await wait_for(lambda: values)
    assert values == [3]


async def test_emit_with_ack_several_arguments_come_back_as_a_tuple(make_server, clients):
    io, url = await make_server()
    client = clients.new()
    client.on("hi", lambda: (1, b"\x02"))
    client, s = await connected_socket(io, clients, url, client=client)
    assert await s.emit_with_ack("hi") == (1, b"\x02")


async def test_emit_with_ack_fails_when_the_socket_disconnects(make_server, clients):
    io, url = await make_server()
    raw = await clients.raw(url)
    s = io.sockets.sockets[raw.sid]
    pending = asyncio.ensure_future(s.emit_with_ack("never"))
    assert await raw.recv() == '420["never"]'
    await raw.send("41")
    with pytest.raises(fastsio.Disconnected):
        await asyncio.wait_for(pending, 5)


async def test_late_ack_after_disconnect_is_ignored(make_server, clients):
    io, url = await make_server()
    acked: list[tuple] = []
    raw = await clients.raw(url)
    s = io.sockets.sockets[raw.sid]
    s.emit("q", callback=lambda *a: acked.append(a))
    assert await raw.recv() == '420["q"]'
    s.disconnect()
    assert await raw.recv() == "41"
    await raw.send("430[1]")  # no socket any more on "/": the connection is closed
    await raw.until_closed()
    assert acked == []


async def test_handler_ack_is_sent_once_and_only_with_an_ack_id(make_server, clients):
    io, url = await make_server()
    io.on("ev", lambda s: "answer")
    raw = await clients.raw(url)
    await raw.send('42["ev"]')  # no ack id: no ACK
    await raw.send('4213["ev"]')
    assert await raw.recv() == '4313["answer"]'
    assert await raw.silent(0.05)


# -- the socket's context ------------------------------------------------------------------
async def test_access_to_the_client(make_server, clients):
    io, url = await make_server()
    _client, s = await connected_socket(io, clients, url)
    assert isinstance(s.client, fastsio.client.Client)
    assert s.client.nsps["/"] is s


async def test_access_to_the_connection(make_server, clients):
    io, url = await make_server()
    _client, s = await connected_socket(io, clients, url)
    conn = s.client.conn
    assert conn.sid in io.engine.clients
    assert conn.transport_name == s.transport == "websocket"


async def test_access_to_the_request(make_server, clients):
    io, url = await make_server()
    _client, s = await connected_socket(io, clients, url, headers={"X-Custom": "yes"})
    headers = s.client.conn.request.headers
    assert isinstance(headers, dict)
    assert headers["host"] == url.removeprefix("http://")
    assert headers["x-custom"] == "yes"
    assert s.handshake.headers["x-custom"] == "yes"


async def test_query_parameters_in_the_request(make_server, clients):
    io, url = await make_server()
    _client, s = await connected_socket(io, clients, url + "?key1=1&key2=2")
    parsed = parse_qs(urlsplit(s.client.conn.request.url).query)
    assert parsed["key1"] == ["1"]
    assert parsed["key2"] == ["2"]
    assert s.handshake.query["key1"] == "1"
    assert s.handshake.query["key2"] == "2"


async def test_secondary_namespace_handshake_has_the_auth_not_the_query(make_server, clients):
    io, url = await make_server()
    io.on("connection", lambda s: None)
    _client, s = await connected_socket(io, clients, url, nsp="/connection2",
                                        auth={"key1": "aa", "key2": "&=bb"})
    assert "key1" not in s.handshake.query
    assert s.handshake.query["EIO"] == "4"
    assert s.handshake.auth == {"key1": "aa", "key2": "&=bb"}


async def test_handshake_fields(make_server, clients):
    io, url = await make_server()
    before = time.time()
    raw = await clients.raw(url, None, query="foo=bar", Origin="http://example.com")
    await raw.connect("/", auth={"token": "abc"})
    after = time.time()
    hs = io.sockets.sockets[raw.sid].handshake
    assert isinstance(hs, fastsio.Handshake)
    assert hs.headers["host"] == url.removeprefix("http://")
    assert hs.headers["origin"] == "http://example.com"
    assert abs(parsedate_to_datetime(hs.time).timestamp() - before) < 5
    assert hs.address == "127.0.0.1"
    assert hs.xdomain is True
    assert hs.secure is False
    assert isinstance(hs.issued, int)
    assert int(before * 1000) - 1000 <= hs.issued <= int(after * 1000) + 1000
    assert hs.url.startswith("/socket.io/?EIO=4&transport=websocket")
    assert hs.query == {"EIO": "4", "transport": "websocket", "foo": "bar"}
    assert hs.auth == {"token": "abc"}
    # No Origin header: not cross-domain; no auth sent: an empty dict.
    plain = await clients.raw(url)
    hs2 = io.sockets.sockets[plain.sid].handshake
    assert hs2.xdomain is False
    assert hs2.auth == {}


async def test_handshake_of_a_polling_client(make_server, clients):
    io, url = await make_server()
    _client, s = await connected_socket(io, clients, url, transports=["polling"])
    assert s.transport == "polling"
    assert s.handshake.query["transport"] == "polling"
    assert s.handshake.url.startswith("/socket.io/?")


async def test_socket_attributes(make_server, clients):
    io, url = await make_server()
    chat = io.of("/chat")
    seen: dict[str, object] = {}

    @chat.on("connection")
    def on_connection(s):
        seen.update(connected=s.connected, disconnected=s.disconnected, nsp=s.nsp,
                    rooms=s.rooms, data=s.data, recovered=s.recovered, id=s.id)

    client, s = await connected_socket(io, clients, url, nsp="/chat")
    assert seen["connected"] is True
    assert seen["disconnected"] is False
    assert seen["nsp"] is chat
    assert seen["rooms"] == {s.id}
    assert seen["data"] == {}
    assert seen["recovered"] is False
    assert s.id == client.get_sid("/chat")
    assert s.id != client.eio.sid  # the socket id is not the Engine.IO session id
    s.data["user"] = "tobi"
    assert chat.sockets[s.id].data == {"user": "tobi"}
    await client.disconnect()
    await wait_for(lambda: not s.connected)
    assert s.disconnected
    assert s.id not in chat.sockets


async def test_transport_changes_on_upgrade(make_server, clients):
    io, url = await make_server()
    _client, s = await connected_socket(io, clients, url, transports=["polling", "websocket"])
    await wait_for(lambda: s.transport == "websocket")
    assert s.client.conn.upgraded


async def test_very_large_json(make_server, clients):
    io, url = await make_server()
    big = {"hello": "friend",
           "json": [{"id": i, "name": f"item {i}", "tags": ["a", "b"], "n": {"x": i / 2}}
                    for i in range(7000)]}
    assert 400_000 < len(json.dumps(big)) < 1_000_000
    received: list[object] = []
    client = clients.new()

    @client.on("big")
    async def big_back(a):
        received.append(a)
        if len(received) < 3:
            await client.emit("big", a)

    @io.on("connection")
    def start(s):
        s.on("big", lambda a: s.emit("big", a))
        s.emit("big", big)

    await clients.connect(url, client)
    await wait_for(lambda: len(received) == 3)
    assert received == [big, big, big]


async def test_very_large_binary_data(make_server, clients):
    io, url = await make_server()
    image = bytes(range(256)) * 3000  # 750 KiB
    received: list[object] = []
    client = clients.new()

    @client.on("big")
    async def big_back(a):
        received.append(a)
        if len(received) < 3:
            await client.emit("big", a)

    @io.on("connection")
    def start(s):
        s.on("big", lambda a: s.emit("big", a))
        s.emit("big", {"hello": "friend", "image": image})

    await clients.connect(url, client)
    await wait_for(lambda: len(received) == 3)
    assert all(r == {"hello": "friend", "image": image} for r in received)


async def test_compress_flag_keeps_events_flowing(make_server, clients):
    # The official tests look at each packet's compress option; fastsio negotiates no
    # compression, so what can be checked is that every form of the flag delivers the event.
    io, url = await make_server()
    got: list[object] = []
    client = clients.new()
    client.on("woot", got.append)
    client, s = await connected_socket(io, clients, url, nsp="/chat", client=client)
    await wait_for(lambda: s.id in io.of("/chat").sockets)
    chat_got: list[object] = []
    client.on("woot", chat_got.append, namespace="/chat")
    s.emit("woot", "default")
    s.compress(True).emit("woot", "on")
    s.compress(False).emit("woot", "off")
    s.compress(False).volatile.compress(True).emit("woot", "chained")
    io.of("/chat").compress(False).emit("woot", "broadcast")
    s.broadcast.compress(False).emit("woot", "not me")
    await wait_for(lambda: len(chat_got) >= 4)
    await wait_for(lambda: "broadcast" in chat_got)
    assert chat_got[:3] == ["default", "on", "off"]
    assert "not me" not in chat_got
    assert got == []


# -- protocol violations -------------------------------------------------------------------
@pytest.mark.parametrize("packet", ["45woooot", "45"], ids=["raw-binary", "empty-binary"])
async def test_illegal_attachments_reach_the_error_listener(make_server, clients, packet):
    io, url = await make_server()
    errors: list[BaseException] = []
    reasons: list[str] = []
    raw = await clients.raw(url)
    s = io.sockets.sockets[raw.sid]
    s.on("error", errors.append)
    s.on("disconnect", reasons.append)
    await raw.send(packet)
    await raw.until_closed()
    await wait_for(lambda: reasons)
    assert reasons == ["forced close"]
    assert len(errors) == 1
    assert isinstance(errors[0], fastsio.ProtocolError)
    assert re.search("illegal attachments", str(errors[0]), re.IGNORECASE)


@pytest.mark.parametrize("packet", ["45woooot", '444["handle me please"]'])
async def test_bad_packet_without_error_listener_does_not_crash(make_server, clients, packet):
    io, url = await make_server()
    io.on("echo", lambda s, x: x)
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    raw = await clients.raw(url)
    await raw.send(packet)
    await raw.until_closed()
    await wait_for(lambda: reasons)
    other = await clients.connect(url)
    assert await other.call("echo", "still serving", timeout=5) == "still serving"


async def test_prototype_like_keys_are_plain_data(make_server, clients):
    # Adapted from "should not crash when messing with Object prototype": names that are
    # special somewhere (JS prototypes, Python dunders) travel as ordinary keys and events.
    io, url = await make_server()
    odd = {"__proto__": {"polluted": True}, "constructor": 1, "__class__": "x",
           "__init__": None, "toString": "y"}
    got: list[tuple] = []
    io.on("__proto__", lambda s, *a: got.append(("__proto__", *a)))
    io.on("constructor", lambda s, *a: got.append(("constructor", *a)))
    client, s = await connected_socket(io, clients, url, auth=odd)
    assert s.handshake.auth == odd
    await client.emit("__proto__", odd)
    await client.emit("constructor", (odd, 2))
    await wait_for(lambda: len(got) == 2)
    assert got == [("__proto__", odd), ("constructor", odd, 2)]
    assert not hasattr(s, "polluted")


async def test_reserved_event_names_raise_everywhere(make_server, clients):
    io, url = await make_server()
    _client, s = await connected_socket(io, clients, url)
    for name in RESERVED:
        for emitter in (s, s.to("room"), s.broadcast, s.except_("room"), s.volatile,
                        s.timeout(1), s.compress(False), io.of("/"), io.to("room")):
            with pytest.raises(ValueError, match=f'"{name}" is a reserved event name'):
                emitter.emit(name)
        with pytest.raises(ValueError, match=f'"{name}" is a reserved event name'):
            await s.emit_with_ack(name)
    assert s.connected


async def emit_binary_test_then_disconnect(raw):
    """What the official test's client does in one tick: emit "test" with a 10-byte buffer,
    then leave the namespace (python-socketio's client drops packets queued right before its
    disconnect, so the frames are written by hand)."""
    await raw.send('451-["test",{"_placeholder":true,"num":0}]')
    await raw.send(bytes(10))
    await raw.send("41")


async def test_packet_held_by_a_middleware_is_ignored_after_disconnection(make_server, clients):
    io, url = await make_server()
    release = asyncio.Event()
    events: list[object] = []
    reasons: list[str] = []

    @io.on("connection")
    def setup(s):
        async def hold(socket, packet):
            await release.wait()

        s.use(hold)
        s.on("test", events.append)
        s.on("disconnect", reasons.append)

    raw = await clients.raw(url)
    await emit_binary_test_then_disconnect(raw)
    await wait_for(lambda: reasons)
    release.set()
    await asyncio.sleep(0.05)
    assert events == []
    assert reasons == ["client namespace disconnect"]


async def test_no_event_handler_runs_after_disconnect(make_server, clients):
    # fastsio dispatches each packet as it arrives, so the event that came before the
    # DISCONNECT may run, but only while the socket is still connected, never after.
    io, url = await make_server()
    order: list[tuple[str, bool]] = []

    @io.on("connection")
    def setup(s):
        s.on("test", lambda buf: order.append(("test", s.connected)))
        s.on("disconnect", lambda r: order.append(("disconnect", s.connected)))

    raw = await clients.raw(url)
    await emit_binary_test_then_disconnect(raw)
    await wait_for(lambda: ("disconnect", False) in order)
    await asyncio.sleep(0.05)
    assert order[-1] == ("disconnect", False)
    assert all(connected for name, connected in order if name == "test")


async def test_rooms_joined_in_a_failed_middleware_are_left(make_server, clients):
    io, url = await make_server()

    @io.use
    def refuse(s):
        s.join("room1")
        raise fastsio.ConnectionRefused("nope")

    client = clients.new()
    errors: list[object] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await clients.connect(url, client)
    assert errors
    await wait_for(lambda: io.of("/").adapter.rooms == {}, timeout=1)
    assert io.of("/").adapter.rooms == {}
    assert io.of("/").sockets == {}


async def test_no_room_joined_after_disconnection(make_server, clients):
    """The client gets the CONNECT reply, then the DISCONNECT, in that order and on every loop.
    (Read raw: python-socketio's client drops a DISCONNECT handled before its ``connect()`` has
    resumed, which on CPython 3.12 and 3.13 it is, so it would never report this one.)"""
    io, url = await make_server()
    reasons: list[str] = []

    @io.on("connection")
    def leave_then_join(s):
        s.disconnect()
        s.join("room1")
        s.join(["room2", "room3"])

    io.on("disconnect", lambda s, r: reasons.append(r))
    c = await clients.raw(url)  # reads the CONNECT reply
    assert await c.recv() == "41"
    await wait_for(lambda: reasons)
    assert reasons == ["server namespace disconnect"]
    assert io.of("/").adapter.rooms == {}


# -- rooms, broadcast, disconnect --------------------------------------------------------------
async def test_join_and_leave_rooms(make_server, clients):
    io, url = await make_server()
    _client, s = await connected_socket(io, clients, url)
    s.join("a")
    s.join(["b", "c"])
    s.join(("d",))
    assert s.rooms == {s.id, "a", "b", "c", "d"}
    s.leave("b")
    s.leave(["c", "d", "never joined"])
    assert s.rooms == {s.id, "a"}
    assert io.of("/").adapter.rooms == {s.id: {s.id}, "a": {s.id}}
    rooms = s.rooms
    rooms.add("mutated copy")
    assert "mutated copy" not in s.rooms


async def test_socket_broadcast_to_and_except(make_server, clients):
    io, url = await make_server()
    socks: dict[str, fastsio.Socket] = {}
    io.on("connection", lambda s: socks.__setitem__(s.id, s))
    a, b, c, d = [await clients.raw(url) for _ in range(4)]
    await wait_for(lambda: len(socks) == 4)
    sa, sb, sc, sd = (socks[x.sid] for x in (a, b, c, d))
    sa.join("r1")
    sb.join("r1")
    sc.join(["r1", "r2"])
    sd.join("r2")
    sa.broadcast.emit("all-but-a")
    sa.to("r1").emit("r1-but-a")
    sa.to("r1").to("r2").except_("r2").emit("r1-not-r2")
    sa.except_("r2").emit("not-r2")
    sa.in_("r2").emit("in-r2")
    for x in (a, b, c, d):
        x_sock = socks[x.sid]
        x_sock.emit("end")
    got: dict[str, list[str]] = {}
    for x in (a, b, c, d):
        seen = []
        while (msg := await x.recv_text()) != '42["end"]':
            seen.append(json.loads(msg[2:])[0])
        got[x.sid] = seen
    assert got[a.sid] == []
    assert got[b.sid] == ["all-but-a", "r1-but-a", "r1-not-r2", "not-r2"]
    assert got[c.sid] == ["all-but-a", "r1-but-a", "in-r2"]
    assert got[d.sid] == ["all-but-a", "in-r2"]


async def test_disconnecting_sees_the_rooms_and_disconnect_sees_none(make_server, clients):
    io, url = await make_server()
    seen: list[tuple[str, str, set, bool]] = []

    @io.on("connection")
    def setup(s):
        s.join(["x", "y"])
        s.on("disconnecting", lambda r: seen.append(("disconnecting", r, s.rooms, s.connected)))
        s.on("disconnect", lambda r: seen.append(("disconnect", r, s.rooms, s.connected)))

    io.on("disconnecting", lambda s, r: seen.append(("nsp disconnecting", r, s.rooms,
                                                     s.connected)))
    raw = await clients.raw(url)
    await raw.send("41")
    await wait_for(lambda: len(seen) == 3)
    sid = raw.sid
    assert seen == [
        ("nsp disconnecting", "client namespace disconnect", {sid, "x", "y"}, True),
        ("disconnecting", "client namespace disconnect", {sid, "x", "y"}, True),
        ("disconnect", "client namespace disconnect", set(), False),
    ]


async def test_disconnect_reason_parse_error(make_server, clients):
    io, url = await make_server()
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    raw = await clients.raw(url)
    await raw.send("x")  # not an Engine.IO packet type
    await raw.until_closed()
    await wait_for(lambda: reasons)
    assert reasons == ["parse error"]


async def test_disconnect_reason_transport_error(make_server):
    io, url = await make_server(transports=["polling"])
    reasons: list[str] = []
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    io.on("disconnect", lambda s, r: reasons.append(r))
    async with aiohttp.ClientSession() as http:
        base = url + "/socket.io/?EIO=4&transport=polling"
        async with http.get(base) as r:
            sid = json.loads((await r.text())[1:])["sid"]
        poll = f"{base}&sid={sid}"
        async with http.post(poll, data="40", headers=TEXT_PLAIN) as r:
            assert r.status == 200
        async with http.get(poll) as r:
            assert (await r.text()).startswith("40{")
        # Two GETs at once: the official server fails the session with a transport error.
        first = asyncio.ensure_future(http.get(poll))
        await wait_for(lambda: sockets and sockets[0].client.conn.writable)  # GET is waiting
        async with http.get(poll) as r:
            assert r.status == 400
        (await first).release()
    await wait_for(lambda: reasons)
    assert reasons == ["transport error"]


async def test_disconnect_close_true_disconnects_every_namespace(make_server, clients):
    io, url = await make_server()
    io.of("/foo")
    reasons: list[tuple[str, str]] = []
    for name in ("/", "/foo", "/bar"):
        io.of(name).on("disconnect", lambda s, r: reasons.append((s.nsp.name, r)))
    io.of("/bar").on("connection", lambda s: s.disconnect(close=True))
    client = clients.new()
    gone: list[str] = []
    for name in ("/", "/foo", "/bar"):
        client.on("disconnect", lambda *a, name=name: gone.append(name), namespace=name)
    await client.connect(url, transports=["websocket"], namespaces=["/", "/foo", "/bar"],
                         wait_timeout=5)
    await wait_for(lambda: len(reasons) == 3)
    assert sorted(reasons) == [("/", "server namespace disconnect"),
                               ("/bar", "server namespace disconnect"),
                               ("/foo", "server namespace disconnect")]
    await wait_for(lambda: not client.connected)
    await wait_for(lambda: len(gone) == 3)
    assert sorted(gone) == ["/", "/bar", "/foo"]
    assert not io.engine.clients


async def test_disconnect_is_idempotent(make_server, clients):
    io, url = await make_server()
    reasons: list[str] = []
    io.on("disconnect", lambda s, r: reasons.append(r))
    raw = await clients.raw(url)
    s = io.sockets.sockets[raw.sid]
    s.disconnect()
    s.disconnect()
    s.disconnect(close=True)
    assert await raw.recv() == "41"
    assert reasons == ["server namespace disconnect"]
    # The connection itself stays open for the other namespaces.
    await raw.connect("/")
    assert raw.sid != s.id


async def test_connect_timeout_closes_a_client_that_joins_no_namespace(make_server, clients):
    io, url = await make_server(connect_timeout=0.3)
    io.on("ping", lambda s: "pong")
    joined = await clients.raw(url)
    idle = await clients.raw(url, None)
    await idle.until_closed(timeout=2)
    # The client that joined in time (its deadline passed before the idle one's) stays.
    assert len(io.engine.clients) == 1
    await joined.send('422["ping"]')
    assert await joined.recv() == '432["pong"]'
    assert len(io.engine.clients) == 1


# -- any listeners ---------------------------------------------------------------------------
async def test_on_any_calls_the_listener(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []
    io.on("connection", lambda s: s.on_any(lambda *a: got.append(a)))
    client = await clients.connect(url)
    await client.emit("my-event", "123")
    await client.emit("bin", (b"\x01", {"b": b"\x02"}))
    await wait_for(lambda: len(got) == 2)
    assert got == [("my-event", "123"), ("bin", b"\x01", {"b": b"\x02"})]


async def test_prepend_any_runs_first(make_server, clients):
    io, url = await make_server()
    order: list[str] = []

    @io.on("connection")
    def setup(s):
        s.on_any(lambda *a: order.append("last"))
        s.prepend_any(lambda *a: order.append("second"))
        s.prepend_any(lambda *a: order.append("first"))
        s.on("my-event", lambda x: order.append("handler"))

    client = await clients.connect(url)
    await client.emit("my-event", "123")
    await wait_for(lambda: len(order) == 4)
    assert order == ["first", "second", "last", "handler"]


async def test_off_any_removes_the_listener(make_server, clients):
    io, url = await make_server()
    got: list[str] = []

    @io.on("connection")
    def setup(s):
        def fail(*a):
            got.append("fail")

        s.on_any(fail)
        s.off_any(fail)
        assert s.listeners_any() == []
        s.on_any(lambda *a: got.append("a"))
        s.on_any(lambda *a: got.append("b"))
        assert len(s.listeners_any()) == 2
        s.on("remove-all", lambda: s.off_any())

    client = await clients.connect(url)
    await client.emit("my-event", "123")
    await wait_for(lambda: got == ["a", "b"])
    await client.emit("remove-all")
    await client.emit("again")
    await client.call("remove-all", timeout=5)  # a round trip: "again" was dispatched before
    assert got == ["a", "b", "a", "b"]


async def test_on_any_outgoing_calls_the_listener(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []

    @io.on("connection")
    def setup(s):
        s.on_any_outgoing(lambda *a: got.append(a))
        s.emit("my-event", "123")

    await clients.connect(url)
    await wait_for(lambda: got)
    assert got == [("my-event", "123")]


async def test_on_any_outgoing_sees_broadcasts(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []

    @io.on("connection")
    def setup(s):
        s.on_any_outgoing(lambda *a: got.append(a))
        io.emit("my-event", "123")

    await clients.connect(url)
    await wait_for(lambda: got)
    assert got == [("my-event", "123")]


async def test_on_any_outgoing_sees_binary_broadcasts(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []

    @io.on("connection")
    def setup(s):
        s.on_any_outgoing(lambda *a: got.append(a))
        io.emit("my-event", bytes([1, 2, 3]))

    await clients.connect(url)
    await wait_for(lambda: got)
    assert got == [("my-event", b"\x01\x02\x03")]
    assert isinstance(got[0][1], bytes)


async def test_on_any_outgoing_sees_emits_with_ack_and_volatile(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []
    _client, s = await connected_socket(io, clients, url)
    s.on_any_outgoing(lambda *a: got.append(a))
    s.emit("with-ack", 1, callback=lambda *a: None)
    s.volatile.emit("volatile", 2)
    s.to("nobody").emit("not-for-me", 3)
    assert got[:2] == [("with-ack", 1), ("volatile", 2)]
    assert ("not-for-me", 3) not in got


async def test_prepend_any_outgoing_runs_first(make_server, clients):
    io, url = await make_server()
    order: list[str] = []

    @io.on("connection")
    def setup(s):
        s.on_any_outgoing(lambda *a: order.append("last"))
        s.prepend_any_outgoing(lambda *a: order.append("second"))
        s.prepend_any_outgoing(lambda *a: order.append("first"))
        s.emit("my-event", "123")

    await clients.connect(url)
    await wait_for(lambda: len(order) == 3)
    assert order == ["first", "second", "last"]


async def test_off_any_outgoing_removes_the_listener(make_server, clients):
    io, url = await make_server()
    got: list[str] = []

    @io.on("connection")
    def setup(s):
        def fail(*a):
            got.append("fail")

        s.on_any_outgoing(fail)
        s.off_any_outgoing(fail)
        assert s.listeners_any_outgoing() == []
        s.on_any_outgoing(lambda *a: got.append("ok"))
        s.emit("my-event", "123")
        s.off_any_outgoing()
        assert s.listeners_any_outgoing() == []
        s.emit("unseen")

    await clients.connect(url)
    await wait_for(lambda: got)
    assert got == ["ok"]
