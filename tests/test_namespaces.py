"""Namespaces: the behaviours of the official server's ``test/namespaces.ts``, one test (or one
parametrized test) per upstream case, in upstream order, with real clients over real sockets.

Adaptations to the Python API (noted where they matter):
* ``io.of(name, fn)`` has no second parameter here: ``io.of(name).on("connection", fn)``.
* ``allSockets()`` (deprecated upstream) is ``fetch_sockets()``, compared by socket id.
* upstream inspects the engine's ``packetCreate`` options for ``compress``; fastsio hands the
  flag to the adapter (``BroadcastOptions.compress``), which a recording adapter observes.
* private state that upstream tests read (``io._nsps``, ``operator.flags``) is read the same way
  here (``io._nsps``, ``operator._opts``).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import fastsio
from tests.clients.loops import wait_for
from tests.clients.sio import Clients, names, settle

DYNAMIC = re.compile(r"^/dynamic-\d+$")


def server_socket(io: fastsio.Server, sid: str, ns: str = "/") -> fastsio.Socket:
    sock: fastsio.Socket = io.of(ns).sockets[sid]
    return sock


# -- the default namespace and the server's shortcuts --------------------------------------------
async def test_default_namespace_is_io_sockets(make_server):
    io, _ = await make_server()
    assert isinstance(io.sockets, fastsio.Namespace)
    assert io.sockets.name == "/"
    assert io.of("/") is io.sockets


async def test_server_has_the_namespace_shortcuts(make_server, clients):
    io, url = await make_server()
    for name in ("use", "to", "in_", "except_", "emit", "send", "write", "compress",
                 "timeout", "emit_with_ack", "fetch_sockets", "sockets_join", "sockets_leave",
                 "disconnect_sockets"):
        assert callable(getattr(io, name)), name
    middleware_ran: list[str] = []
    io.use(lambda socket: middleware_ran.append(socket.id))
    c = await clients.sio(url)
    assert middleware_ran == [c.sid()]  # io.use is the default namespace's middleware
    server_socket(io, c.sid()).join("r")
    io.in_("r").emit("via_in")
    io.to("r").emit("via_to")
    io.send("sent")
    io.write("written")
    io.compress(False).emit("uncompressed")
    await settle(io, c)
    assert names(c) == ["via_in", "via_to", "message", "message", "uncompressed", "marker"]
    assert c.got("message") == [("sent",), ("written",)]
    assert [s.id for s in await io.fetch_sockets()] == [c.sid()]


async def test_broadcast_operator_is_immutable(make_server, clients):
    io, url = await make_server()
    b = await clients.sio(url)  # room1
    c = await clients.sio(url)  # room2 and room3 (excluded)
    d = await clients.sio(url)  # room4
    e = await clients.sio(url)  # room1 and room5
    server_socket(io, b.sid()).join("room1")
    server_socket(io, c.sid()).join(["room2", "room3"])
    server_socket(io, d.sid()).join("room4")
    server_socket(io, e.sid()).join(["room1", "room5"])

    operator = io.local.to(["room1", "room2"]).except_("room3")
    operator.volatile.emit("hello", 0)
    operator.compress(True).emit("hello", 1)
    operator.to("room4").emit("hello", 2)
    operator.except_("room5").emit("hello", 3)
    io.to("room6").emit("hello", 4)
    operator.emit("hello", 5)  # none of the derived operators changed this one

    opts = operator._opts
    assert opts.rooms == {"room1", "room2"}
    assert opts.except_rooms == {"room3"}
    assert opts.local is True
    assert opts.volatile is False
    assert opts.compress is True
    assert opts.timeout is None
    await settle(io, b, c, d, e)
    assert b.got("hello") == [(0,), (1,), (2,), (3,), (5,)]
    assert c.got("hello") == []
    assert d.got("hello") == [(2,)]
    assert e.got("hello") == [(0,), (1,), (2,), (5,)]


# -- connecting ----------------------------------------------------------------------------------
async def test_connects_to_the_default_namespace(make_server, clients):
    io, url = await make_server()
    c = await clients.sio(url)
    assert c.client.connected
    assert c.sid() in io.sockets.sockets


@pytest.mark.parametrize("event", ["connection", "connect"])
async def test_connection_event(make_server, clients, event):
    """Upstream: "should fire a `connection` event" and "should fire a `connect` event"."""
    io, url = await make_server()
    got: list[Any] = []
    io.on(event, got.append)
    c = await clients.sio(url)
    await wait_for(lambda: got)
    assert len(got) == 1
    assert isinstance(got[0], fastsio.Socket)
    assert got[0].id == c.sid()
    assert got[0].nsp is io.sockets


async def test_many_namespaces_over_one_connection(make_server, clients):
    io, url = await make_server()
    chat, news = io.of("/chat"), io.of("/news")
    c = await clients.sio(url, ["/chat", "/news"])
    chat_sock = chat.sockets[c.sid("/chat")]
    news_sock = news.sockets[c.sid("/news")]
    assert chat_sock.client is news_sock.client  # one Engine.IO connection
    assert chat_sock.id != news_sock.id
    assert chat_sock.nsp is chat and news_sock.nsp is news


async def test_empty_and_slash_names_are_equivalent_on_the_server(make_server, clients):
    io, url = await make_server()
    assert io.of("") is io.of("/") is io.sockets
    assert io.of("abc") is io.of("/abc")
    assert io.of("abc").name == "/abc"
    root: list[str] = []
    abc: list[str] = []
    io.of("").on("connection", lambda s: root.append(s.id))
    io.of("abc").on("connection", lambda s: abc.append(s.id))
    c = await clients.sio(url, ["/", "/abc"])
    await wait_for(lambda: root and abc)
    assert root == [c.sid("/")]
    assert abc == [c.sid("/abc")]


async def test_empty_and_slash_names_are_equivalent_on_the_client(make_server, clients):
    """The JS client sends ``40`` for both ``""`` and ``"/"``; ``40/,`` names ``/`` explicitly."""
    io, url = await make_server()
    got: list[str] = []
    io.of("/").on("connection", lambda s: got.append(s.id))
    implicit = await clients.raw(url, None)
    await implicit.send("40")
    explicit = await clients.raw(url, None)
    await explicit.send("40/,")
    for raw in (implicit, explicit):
        reply = await raw.recv()
        assert isinstance(reply, str) and reply.startswith('40{"sid":"'), reply
    await wait_for(lambda: len(got) == 2)
    assert set(got) == set(io.sockets.sockets)


async def test_of_returns_one_namespace_and_runs_every_connection_handler(make_server, clients):
    io, url = await make_server()
    assert io.of("/news") is io.of("/news")
    got: list[tuple[str, fastsio.Socket]] = []
    io.of("/news").on("connection", lambda s: got.append(("first", s)))
    io.of("/news").on("connection", lambda s: got.append(("second", s)))
    chat = await clients.refused(url, "/chat")  # never created: refused
    news = await clients.sio(url, ["/news"])
    await wait_for(lambda: len(got) == 2)
    assert [tag for tag, _ in got] == ["first", "second"]
    assert all(isinstance(s, fastsio.Socket) and s.id == news.sid("/news") for _, s in got)
    assert chat.connect_errors == [("/chat", {"message": "Invalid namespace"})]


async def test_connection_handlers_registered_as_decorators(make_server, clients):
    """Upstream: "should work with `of` second param" (``io.of(name, fn)``); fastsio's ``of``
    takes no handler, the decorator form registers it in the same place."""
    io, url = await make_server()
    got: list[str] = []

    @io.of("/news").on("connection")
    def first(socket: fastsio.Socket) -> None:
        got.append("first")

    @io.of("/news").on("connect")
    def second(socket: fastsio.Socket) -> None:
        got.append("second")

    await clients.refused(url, "/chat")
    await clients.sio(url, ["/news"])
    await wait_for(lambda: len(got) == 2)
    assert got == ["first", "second"]


async def test_closing_the_connection_disconnects_every_namespace(make_server, clients):
    io, url = await make_server()
    reasons: dict[str, list[str]] = {"/chat": [], "/news": []}
    for ns in reasons:
        io.of(ns).on("disconnect", lambda s, r: reasons[s.nsp.name].append(r))
    c = await clients.sio(url, ["/chat", "/news"])
    io.of("/chat").sockets[c.sid("/chat")].disconnect(close=True)
    await wait_for(lambda: reasons["/chat"] and reasons["/news"])
    assert reasons == {"/chat": ["server namespace disconnect"],
                       "/news": ["server namespace disconnect"]}
    assert not io.of("/chat").sockets and not io.of("/news").sockets
    await wait_for(lambda: not c.client.connected)
    assert {ns for ns, _ in c.disconnects} == {"/chat", "/news"}


async def test_disconnecting_fires_before_the_socket_leaves_its_rooms(make_server, clients):
    io, url = await make_server()
    sockets: list[fastsio.Socket] = []
    seen: list[tuple[str, str, set[Any]]] = []

    @io.on("connection")
    def on_connection(s: fastsio.Socket) -> None:
        s.join("a")
        s.on("disconnecting", lambda reason: seen.append(("disconnecting", reason, s.rooms)))
        s.on("disconnect", lambda reason: seen.append(("disconnect", reason, s.rooms)))
        sockets.append(s)

    c = await clients.sio(url)
    await wait_for(lambda: sockets)
    s = sockets[0]
    s.disconnect()
    assert seen == [
        ("disconnecting", "server namespace disconnect", {s.id, "a"}),
        ("disconnect", "server namespace disconnect", set()),
    ]
    await c.wait_disconnect()


async def test_unknown_namespace_is_refused(make_server, clients):
    io, url = await make_server()
    c = await clients.refused(url, "/doesnotexist")
    assert c.connect_errors == [("/doesnotexist", {"message": "Invalid namespace"})]
    raw = await clients.raw(url, None)
    await raw.send("40/doesnotexist,")
    assert await raw.recv() == '44/doesnotexist,{"message":"Invalid namespace"}'
    await raw.connect("/")  # the connection itself stays usable
    assert "/doesnotexist" not in io._nsps


async def test_same_namespace_connections_are_not_reused(make_server, clients):
    io, url = await make_server()
    got: list[fastsio.Socket] = []
    io.on("connection", got.append)
    c1 = await clients.sio(url)
    c2 = await clients.sio(url)
    await wait_for(lambda: len(got) == 2)
    assert {s.id for s in got} == {c1.sid(), c2.sid()}
    assert got[0].client is not got[1].client


async def _chat_and_other(io: fastsio.Server, url: str, clients: Clients) -> dict[str, str]:
    """Two clients in /chat (the first joins "bar", the second "foo"), one in /other ("foo")."""
    joined: dict[str, str] = {}
    chat_index = 0

    @io.of("/chat").on("connection")
    def on_chat(socket: fastsio.Socket) -> None:
        nonlocal chat_index
        room = "foo" if chat_index else "bar"
        chat_index += 1
        socket.join(room)
        joined[f"chat_{room}"] = socket.id

    @io.of("/other").on("connection")
    def on_other(socket: fastsio.Socket) -> None:
        socket.join("foo")
        joined["other"] = socket.id

    await clients.sio(url, ["/chat"])
    await clients.sio(url, ["/chat"])
    await clients.sio(url, ["/other"])
    await wait_for(lambda: len(joined) == 3)
    return joined


async def test_fetch_sockets_of_a_namespace(make_server, clients):
    io, url = await make_server()
    sids = await _chat_and_other(io, url, clients)
    found = {s.id for s in await io.of("/chat").fetch_sockets()}
    assert found == {sids["chat_foo"], sids["chat_bar"]}
    assert sids["other"] not in found


async def test_fetch_sockets_of_a_namespace_room(make_server, clients):
    io, url = await make_server()
    sids = await _chat_and_other(io, url, clients)
    found = {s.id for s in await io.of("/chat").in_("foo").fetch_sockets()}
    assert found == {sids["chat_foo"]}
    assert sids["chat_bar"] not in found and sids["other"] not in found


async def test_fetch_sockets_across_the_rooms_of_a_namespace(make_server, clients):
    io, url = await make_server()
    sids = await _chat_and_other(io, url, clients)
    found = {s.id for s in await io.of("/chat").fetch_sockets()}
    assert sids["chat_foo"] in found and sids["chat_bar"] in found
    assert sids["other"] not in found


# -- volatile and compression --------------------------------------------------------------------
TRANSPORTS = pytest.mark.parametrize("transport", ["polling", "websocket"])


@TRANSPORTS
async def test_volatile_event_is_dropped_right_after_a_regular_one(
    make_server, clients, transport
):
    """The regular event keeps the transport busy: the volatile one that follows at once is
    dropped (upstream: ``writable`` is false until the write completes, on both transports)."""
    io, url = await make_server()
    chat = io.of("/chat")
    c = await clients.sio(url, ["/chat"], transports=[transport])
    sock = chat.sockets[c.sid("/chat")]
    await wait_for(lambda: sock.client.conn.writable)  # nothing left from the handshake
    chat.emit("ev", "data")
    chat.volatile.emit("ev", "data")
    await settle(io, c, ns="/chat")
    assert c.got("ev", "/chat") == [("data",)]


@TRANSPORTS
async def test_volatile_event_is_sent_when_the_transport_is_ready(make_server, clients, transport):
    io, url = await make_server()
    chat = io.of("/chat")
    c = await clients.sio(url, ["/chat"], transports=[transport])
    sock = chat.sockets[c.sid("/chat")]
    await wait_for(lambda: sock.client.conn.writable)
    chat.volatile.emit("ev", "data")
    assert await c.wait("ev", "/chat") == ("data",)
    await settle(io, c, ns="/chat")
    assert c.got("ev", "/chat") == [("data",)]


def recording_adapter(seen: list[fastsio.BroadcastOptions]) -> type[fastsio.Adapter]:
    class Recording(fastsio.Adapter):
        def broadcast(self, data: list[Any], opts: fastsio.BroadcastOptions) -> None:
            seen.append(opts)
            super().broadcast(data, opts)

    return Recording


@pytest.mark.parametrize("compress", [None, True, False])
async def test_compression_flag(make_server, clients, compress):
    """Upstream: "should enable compression by default" and "should disable compression"."""
    seen: list[fastsio.BroadcastOptions] = []
    io, url = await make_server(adapter=recording_adapter(seen))
    chat = io.of("/chat")
    c = await clients.sio(url, ["/chat"])
    (chat if compress is None else chat.compress(compress)).emit("woot", "hi")
    assert await c.wait("woot", "/chat") == ("hi",)
    assert [o.compress for o in seen] == [compress is not False]


async def test_reserved_event_names_raise(make_server):
    io, _ = await make_server()
    with pytest.raises(ValueError, match='"connect" is a reserved event name'):
        io.emit("connect")
    with pytest.raises(ValueError, match='"disconnect" is a reserved event name'):
        io.of("/nsp").to("room").emit("disconnect")


async def test_client_that_joins_no_namespace_is_closed(make_server, clients):
    io, url = await make_server(connect_timeout=0.25)
    io.on("ping_me", lambda s: "pong")
    joined = await clients.raw(url)
    idle = await clients.raw(url, None)  # never sends CONNECT
    assert await idle.closed()
    await joined.send('421["ping_me"]')
    assert await joined.recv() == '431["pong"]'


# -- except ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("ns", ["/", "/nsp"])
async def test_except_a_socket_id(make_server, clients, ns):
    """Upstream: "should exclude a specific socket when emitting" (and "in a namespace")."""
    io, url = await make_server()
    target = io if ns == "/" else io.of(ns)
    s1 = await clients.sio(url, [ns])
    s2 = await clients.sio(url, [ns])
    target.except_(s2.sid(ns)).emit("a")
    assert await s1.wait("a", ns) == ()
    await settle(io, s2, ns=ns)
    assert names(s2, ns) == ["marker"]


async def test_except_a_room(make_server, clients):
    io, url = await make_server()
    nsp = io.of("/nsp")

    @nsp.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        def broadcast() -> None:
            socket.join("room1")
            nsp.except_("room1").emit("a")

        socket.on("broadcast", broadcast)

    s1 = await clients.sio(url, ["/nsp"])
    s2 = await clients.sio(url, ["/nsp"])
    await s2.emit("broadcast", ns="/nsp")
    assert await s1.wait("a", "/nsp") == ()
    await settle(io, s2, ns="/nsp")
    assert names(s2, "/nsp") == ["marker"]


# -- new_namespace and cleanup of static namespaces ----------------------------------------------
async def test_new_namespace_event(make_server):
    io, _ = await make_server()
    got: list[fastsio.Namespace] = []
    io.on("new_namespace", got.append)
    nsp = io.of("/nsp")
    assert got == [nsp]
    assert got[0].name == "/nsp"
    io.of("/nsp")
    assert got == [nsp]  # once per namespace


async def test_static_namespace_is_not_cleaned_up(make_server, clients):
    io, url = await make_server(cleanup_empty_child_namespaces=True)
    chat = io.of("/chat")
    c = await clients.sio(url, ["/chat"])
    assert chat.sockets
    await c.client.disconnect()
    await wait_for(lambda: not chat.sockets)
    assert io._nsps.get("/chat") is chat
    assert len(io._nsps["/chat"].sockets) == 0


# -- dynamic namespaces ------------------------------------------------------------------------
async def test_dynamic_namespace_from_a_regex(make_server, clients):
    io, url = await make_server()
    dynamic = io.of(DYNAMIC)
    connected: list[str] = []
    middleware: list[str] = []

    @dynamic.on("connect")
    def on_connect(socket: fastsio.Socket) -> None:
        connected.append(socket.nsp.name)
        dynamic.emit("hello", 1, "2", {"3": "4"})

    dynamic.use(lambda socket: middleware.append(socket.nsp.name))
    c = await clients.sio(url, ["/dynamic-101"])
    assert await c.wait("hello", "/dynamic-101") == (1, "2", {"3": "4"})
    assert connected == ["/dynamic-101"]
    assert middleware == ["/dynamic-101"]
    assert c.connect_errors == []


async def test_dynamic_namespace_from_a_regex_emits_in_a_room(make_server, clients):
    io, url = await make_server()
    dynamic = io.of(DYNAMIC)
    connected: list[str] = []
    middleware: list[str] = []

    @dynamic.on("connect")
    def on_connect(socket: fastsio.Socket) -> None:
        connected.append(socket.nsp.name)
        socket.join("some-room")
        dynamic.to("some-room").emit("hello", 4, "3", {"2": "1"})

    dynamic.use(lambda socket: middleware.append(socket.nsp.name))
    c = await clients.sio(url, ["/dynamic-101"])
    assert await c.wait("hello", "/dynamic-101") == (4, "3", {"2": "1"})
    assert connected == ["/dynamic-101"]
    assert middleware == ["/dynamic-101"]
    assert c.connect_errors == []


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_dynamic_namespace_from_a_function(make_server, clients, kind):
    io, url = await make_server()
    calls: list[tuple[str, Any]] = []

    def check(name: str, auth: Any) -> bool:
        calls.append((name, auth))
        return name == "/dynamic-101"

    async def check_async(name: str, auth: Any) -> bool:
        await asyncio.sleep(0)
        return check(name, auth)

    io.of(check if kind == "sync" else check_async)
    c = await clients.sio(url, ["/dynamic-101"], auth={"token": "abc"})
    assert c.client.connected
    assert calls == [("/dynamic-101", {"token": "abc"})]
    assert c.sid("/dynamic-101") in io.of("/dynamic-101").sockets


async def test_no_matching_dynamic_namespace_is_refused(make_server, clients):
    io, url = await make_server()
    io.of(DYNAMIC)
    io.of(lambda name, auth: name == "/dynamic-101")
    c = await clients.refused(url, "/abc")
    assert c.connect_errors == [("/abc", {"message": "Invalid namespace"})]
    assert "/abc" not in io._nsps


async def test_new_namespace_event_for_a_dynamic_namespace(make_server, clients):
    io, url = await make_server()
    io.of(DYNAMIC)
    got: list[fastsio.Namespace] = []
    io.on("new_namespace", got.append)
    await clients.sio(url, ["/dynamic-101"])
    assert [n.name for n in got] == ["/dynamic-101"]
    assert io.of("/dynamic-101") is got[0]


async def test_concurrent_connections_create_one_dynamic_namespace(make_server, clients):
    """Upstream #4136: two clients waiting in the matcher at once."""
    io, url = await make_server()
    created: list[str] = []
    io.on("new_namespace", lambda nsp: created.append(nsp.name))
    waiting: list[str] = []
    both = asyncio.Event()

    async def matcher(name: str, auth: Any) -> bool:
        waiting.append(name)
        if len(waiting) == 2:
            both.set()
        await both.wait()
        return True

    parent = io.of(matcher)
    connected: list[str] = []

    @parent.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        connected.append(socket.id)
        if len(connected) == 2:
            io.of("/dynamic-101").emit("message")

    one = await clients.sio(url, ["/dynamic-101"], connect=False)
    two = await clients.sio(url, ["/dynamic-101"], connect=False)
    await asyncio.gather(one.connect(url), two.connect(url))
    assert await one.wait("message", "/dynamic-101") == ()
    assert await two.wait("message", "/dynamic-101") == ()
    assert created == ["/dynamic-101"]
    assert set(io.of("/dynamic-101").sockets) == {one.sid("/dynamic-101"), two.sid("/dynamic-101")}


async def test_empty_child_namespace_is_cleaned_up_when_enabled(make_server, clients):
    io, url = await make_server(cleanup_empty_child_namespaces=True)
    io.of(DYNAMIC)
    c = await clients.sio(url, ["/dynamic-101"])
    assert "/dynamic-101" in io._nsps
    await c.client.disconnect()
    await wait_for(lambda: "/dynamic-101" not in io._nsps)


async def test_client_can_connect_to_a_cleaned_up_namespace(make_server, clients):
    io, url = await make_server(cleanup_empty_child_namespaces=True)
    parent = io.of(DYNAMIC)
    c1 = await clients.sio(url, ["/dynamic-101"])
    first = io._nsps["/dynamic-101"]
    await c1.client.disconnect()
    await wait_for(lambda: "/dynamic-101" not in io._nsps)
    assert "/dynamic-101" not in parent.children
    c2 = await clients.sio(url, ["/dynamic-101"])
    assert c2.connect_errors == []
    second = io._nsps["/dynamic-101"]
    assert second is not first
    assert c2.sid("/dynamic-101") in second.sockets


async def test_empty_child_namespace_is_kept_when_cleanup_is_off(make_server, clients):
    io, url = await make_server()
    io.of(DYNAMIC)
    c = await clients.sio(url, ["/dynamic-101"])
    child = io._nsps["/dynamic-101"]
    await c.client.disconnect()
    await wait_for(lambda: not child.sockets)
    assert io._nsps.get("/dynamic-101") is child
    assert len(child.sockets) == 0


def refuse_all(socket: fastsio.Socket) -> None:
    raise Exception("You shall not pass!")


async def test_child_kept_after_middleware_refusal_when_cleanup_is_off(make_server, clients):
    io, url = await make_server(cleanup_empty_child_namespaces=False)
    io.of(DYNAMIC).use(refuse_all)
    c = await clients.refused(url, "/dynamic-101")
    assert c.connect_errors == [("/dynamic-101", {"message": "You shall not pass!"})]
    assert "/dynamic-101" in io._nsps
    assert len(io._nsps["/dynamic-101"].sockets) == 0


async def test_child_cleaned_up_after_middleware_refusal_when_cleanup_is_on(
    make_server, clients
):
    io, url = await make_server(cleanup_empty_child_namespaces=True)
    parent = io.of(DYNAMIC)
    parent.use(refuse_all)
    c = await clients.refused(url, "/dynamic-101")
    assert c.connect_errors == [("/dynamic-101", {"message": "You shall not pass!"})]
    await wait_for(lambda: "/dynamic-101" not in io._nsps, timeout=1.0)
    assert "/dynamic-101" not in parent.children


async def test_child_with_sockets_kept_after_middleware_refusal_when_cleanup_is_on(
    make_server, clients
):
    io, url = await make_server(cleanup_empty_child_namespaces=True)
    admitted = 0

    def admit_first(socket: fastsio.Socket) -> None:
        nonlocal admitted
        admitted += 1
        if admitted > 1:
            raise fastsio.ConnectionRefused("You shall not pass!")

    io.of(DYNAMIC).use(admit_first)
    c1 = await clients.sio(url, ["/dynamic-101"])
    c2 = await clients.refused(url, "/dynamic-101")
    assert c1.connect_errors == []
    assert c2.connect_errors == [("/dynamic-101", {"message": "You shall not pass!"})]
    assert "/dynamic-101" in io._nsps
    assert set(io._nsps["/dynamic-101"].sockets) == {c1.sid("/dynamic-101")}


async def test_manually_created_child_is_attached_to_its_regex_parent(make_server, clients):
    io, url = await make_server()
    parent = io.of(DYNAMIC)
    by_function = io.of(lambda name, auth: True)  # only regex parents adopt manual children
    connected: list[str] = []
    parent.on("connection", lambda s: connected.append(s.nsp.name))
    created: list[str] = []
    io.on("new_namespace", lambda nsp: created.append(nsp.name))

    child = io.of("/dynamic-101")
    assert parent.children.get("/dynamic-101") is child
    assert child.parent is parent
    assert "/dynamic-101" not in by_function.children
    assert created == ["/dynamic-101"]
    assert io.of("/dynamic-101") is child

    c = await clients.sio(url, ["/dynamic-101"])
    await wait_for(lambda: connected)
    assert connected == ["/dynamic-101"]  # the parent's handlers serve the child
    parent.emit("hello", "child")
    assert await c.wait("hello", "/dynamic-101") == ("child",)
