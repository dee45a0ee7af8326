"""``fastsio.instrument``: the Admin UI's protocol, spoken to the official JS client connected to
``/admin`` the way the UI connects (``auth`` with username/password or a session id)."""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest

import fastsio
import fastsio.admin
from tests.clients.loops import wait_for
from tests.clients.node import REPO, from_js, require_node

USER = "admin"
PASSWORD = "s3cret-p4ss"
ALL_FEATURES = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT",
                "AGGREGATED_EVENTS", "ALL_EVENTS"]
ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class _AnyDate:
    """Equal to any timestamp as the UI gets them (JavaScript's Date.toJSON)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and ISO_DATE.match(other) is not None


ANY_DATE = _AnyDate()


@pytest.fixture(scope="module")
def bcryptjs_hash() -> str:
    """``PASSWORD`` hashed by bcryptjs, the official server's bcrypt (from its npm package)."""
    node = require_node()
    script = f"console.log(require('bcryptjs').hashSync({PASSWORD!r}, 4))"
    out = subprocess.run([node, "-e", script], cwd=REPO, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


@pytest.fixture(autouse=True)
def fast_stats(monkeypatch):
    monkeypatch.setattr(fastsio.admin, "STATS_INTERVAL", 0.2)


async def event_where(client, name, predicate):
    """The args of the next ``name`` event whose args satisfy ``predicate``."""
    message = await client.next("event", name, where=lambda m: predicate(from_js(m["args"])))
    return from_js(message["args"])


def connections(nsp):
    queue: asyncio.Queue[fastsio.Socket] = asyncio.Queue()
    nsp.on("connection", queue.put_nowait)
    return queue


async def test_development_mode_lists_sockets_and_streams_their_events(make_server, js_client):
    io, url = await make_server()
    fastsio.instrument(io, auth=False)
    chat = io.of("/chat")
    arrivals = connections(io)

    @chat.on("connection")
    def tag(socket):  # registered after instrument(): the UI still sees what it does
        socket.data["name"] = socket.handshake.auth.get("name")
        socket.join("team")

    @io.on("hello")
    def hello(socket, *args):
        socket.join("lobby")
        socket.emit("welcome", "you")
        return "ok"

    early = await js_client(url, transports=["websocket"], query={"who": "early"})
    early_id = (await early.connected())["id"]
    await asyncio.wait_for(arrivals.get(), 5)

    admin = await js_client(url, "/admin", transports=["websocket"])
    await admin.connected()
    (config,) = await admin.event("config")
    assert config == {"supportedFeatures": ALL_FEATURES}
    (stats,) = await admin.event("server_stats")
    assert stats["clientsCount"] == 2
    assert stats["pollingClientsCount"] == 0
    assert stats["pid"] > 0 and stats["serverId"] == stats["hostname"]
    assert {"name": "/", "socketsCount": 1} in stats["namespaces"]
    assert {"name": "/chat", "socketsCount": 0} in stats["namespaces"]
    assert {"name": "/admin", "socketsCount": 1} in stats["namespaces"]

    (sockets,) = await admin.event("all_sockets")
    by_id = {s["id"]: s for s in sockets}
    first = by_id[early_id]
    assert first["nsp"] == "/"
    assert first["transport"] == "websocket"
    assert first["rooms"] == [early_id]
    assert first["data"] == {}
    assert first["handshake"]["query"]["who"] == "early"
    assert first["handshake"]["address"] == "127.0.0.1"
    assert first["handshake"]["url"].startswith("/socket.io/?")
    assert len(first["clientId"]) == 12
    assert [s["nsp"] for s in sockets].count("/admin") == 1

    # A socket that arrives now is announced, then everything it does.
    late = await js_client(url, "/chat", transports=["polling", "websocket"],
                           auth={"name": "late"})
    late_id = (await late.connected())["id"]
    connected, when = await event_where(admin, "socket_connected",
                                        lambda args: args[0]["nsp"] == "/chat")
    assert connected["id"] == late_id and connected["nsp"] == "/chat"
    assert connected["data"] == {"name": "late"}
    assert sorted(connected["rooms"]) == sorted([late_id, "team"])
    assert ISO_DATE.match(when)
    await late.next("upgrade")
    if connected["transport"] == "polling":
        # Connected before its upgrade (the usual order): the UI is told of the new transport.
        (updated,) = await admin.event("socket_updated")
        assert updated == {"id": late_id, "nsp": "/chat", "transport": "websocket"}
    else:
        assert connected["transport"] == "websocket"

    assert await early.emit_with_ack("hello", 1, {"a": [True, None]}) == ["ok"]
    nsp, sid, args, when = await admin.event("event_received")
    assert (nsp, sid, args) == ("/", early_id, ["hello", 1, {"a": [True, None]}])
    assert await event_where(admin, "room_joined", lambda a: a[0] == "/" and a[1] == "lobby") \
        == ["/", "lobby", early_id, ANY_DATE]
    nsp, sid, args, _ = await admin.event("event_sent")
    assert (nsp, sid, args) == ("/", early_id, ["welcome", "you"])

    chat.emit("news", b"\x00\x01")  # broadcasts count as sent to each socket
    nsp, sid, args, _ = await admin.event("event_sent")
    assert (nsp, sid, args) == ("/chat", late_id, ["news", b"\x00\x01"])

    await early.disconnect()
    nsp, sid, reason, _ = await admin.event("socket_disconnected")
    assert (nsp, sid, reason) == ("/", early_id, "client namespace disconnect")
    left = [await event_where(admin, "room_left", lambda a: a[0] == "/") for _ in range(2)]
    assert sorted(room for _, room, _, _ in left) == sorted(["lobby", early_id])
    assert all(nsp == "/" and sid == early_id for nsp, _, sid, _ in left)

    # The aggregated figures: connections, disconnections with their reason, packets in.
    totals: dict[tuple[str, str | None], int] = {}
    deadline = asyncio.get_running_loop().time() + 5
    while ("rawDisconnection", "transport close") not in totals:
        assert asyncio.get_running_loop().time() < deadline, totals
        (stats,) = await admin.event("server_stats")
        for e in stats["aggregatedEvents"]:
            key = (e["type"], e.get("subType"))
            totals[key] = totals.get(key, 0) + e["count"]
            assert e["timestamp"] % 1000 == 0
    assert totals[("rawConnection", None)] >= 1
    assert totals[("packetsIn", None)] >= 2  # at least the CONNECT and the event of "late"
    assert totals[("bytesIn", None)] > totals[("packetsIn", None)]


async def test_actions_from_the_admin_reach_the_sockets(make_server, js_client):
    io, url = await make_server()
    fastsio.instrument(io, auth=False)
    arrivals = connections(io)
    left = asyncio.Queue()
    io.on("disconnect", lambda socket, reason: left.put_nowait((socket.id, reason)))

    target = await js_client(url, transports=["websocket"])
    other = await js_client(url, transports=["websocket"])
    target_id = (await target.connected())["id"]
    other_id = (await other.connected())["id"]
    socks = {}
    for _ in range(2):
        s = await asyncio.wait_for(arrivals.get(), 5)
        socks[s.id] = s

    admin = await js_client(url, "/admin", transports=["websocket"])
    await admin.connected()
    await admin.event("all_sockets")

    admin.emit("join", "/", "vip", target_id)
    await wait_for(lambda: "vip" in socks[target_id].rooms)
    assert "vip" not in socks[other_id].rooms
    admin.emit("join", "/", "everyone")  # no filter: the whole namespace
    await wait_for(lambda: all("everyone" in s.rooms for s in socks.values()))

    admin.emit("emit", "/", "vip", "promo", 42, {"x": "y"})
    assert await target.event("promo") == [42, {"x": "y"}]
    admin.emit("emit", "/", None, "all", "hi")
    assert await other.event("all") == ["hi"]
    assert other.events("promo") == []

    admin.emit("leave", "/", "vip", target_id)
    await wait_for(lambda: "vip" not in socks[target_id].rooms)

    # What the UI's disconnect button sends: (namespace, close, socket id).
    admin.emit("_disconnect", "/", False, target_id)
    assert await target.disconnected() == "io server disconnect"
    assert await asyncio.wait_for(left.get(), 5) == (target_id, "server namespace disconnect")
    assert socks[other_id].connected

    # Nonsense is ignored, nothing is created, and the admin stays connected.
    admin.emit("emit", "/nowhere", None, "x")
    admin.emit("emit", "/", None, "connect")
    admin.emit("join", 12, "room", None)
    admin.emit("_disconnect", {"nsp": "/"})
    admin.emit("join", "/", "after-nonsense", other_id)
    await wait_for(lambda: "after-nonsense" in socks[other_id].rooms)
    assert "/nowhere" not in [n["name"] for n in (await admin.event("server_stats"))[0]
                              ["namespaces"]]
    assert other.events("x") == [] and socks[other_id].connected


async def test_read_only_offers_no_action_and_ignores_them(make_server, js_client):
    io, url = await make_server()
    admin_nsp = fastsio.instrument(io, auth=False, read_only=True)
    admin_nsp.on("probe", lambda socket: "done")
    arrivals = connections(io)
    client = await js_client(url, transports=["websocket"])
    client_id = (await client.connected())["id"]
    sock = await asyncio.wait_for(arrivals.get(), 5)

    admin = await js_client(url, "/admin", transports=["websocket"])
    await admin.connected()
    (config,) = await admin.event("config")
    assert config == {"supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"]}
    admin.emit("_disconnect", "/", False, client_id)
    admin.emit("join", "/", "vip", client_id)
    # The admin's next message is handled after those: they changed nothing.
    assert await admin.emit_with_ack("probe") == ["done"]
    assert sock.connected and sock.rooms == {client_id}


async def test_production_mode_sends_only_aggregates(make_server, js_client):
    io, url = await make_server()
    fastsio.instrument(io, auth=False, mode="production", server_id="node-7")
    io.on("ping", lambda socket: "pong")
    admin = await js_client(url, "/admin", transports=["websocket"])
    await admin.connected()
    (config,) = await admin.event("config")
    assert config == {"supportedFeatures": ALL_FEATURES[:-1]}

    client = await js_client(url, transports=["polling"])
    await client.connected()
    await client.emit_with_ack("ping")
    totals: dict[str, int] = {}
    deadline = asyncio.get_running_loop().time() + 5
    while totals.get("rawConnection", 0) < 1 or totals.get("packetsIn", 0) < 2:
        assert asyncio.get_running_loop().time() < deadline, totals
        (stats,) = await admin.event("server_stats")
        assert stats["serverId"] == "node-7"
        for e in stats["aggregatedEvents"]:
            totals[e["type"]] = totals.get(e["type"], 0) + e["count"]
    assert stats["clientsCount"] == 2 and stats["pollingClientsCount"] == 1
    names = {m.get("event") for m in admin.messages if m.get("type") == "event"}
    assert names == {"config", "server_stats"}


async def test_basic_auth_with_a_bcryptjs_hash_and_sessions(make_server, js_client,
                                                             bcryptjs_hash):
    io, url = await make_server()
    fastsio.instrument(io, auth={"type": "basic", "username": USER, "password": bcryptjs_hash})

    async def refused(creds):
        client = await js_client(url, "/admin", transports=["websocket"], auth=creds)
        return (await client.connect_error())["message"]

    assert await asyncio.gather(
        refused({"username": USER, "password": "wrong"}),
        refused({"username": "root", "password": PASSWORD}),
        refused({"sessionId": "0123456789abcdef"}),
        refused({}),
    ) == ["invalid credentials"] * 4

    admin = await js_client(url, "/admin", transports=["websocket"],
                            auth={"username": USER, "password": PASSWORD})
    await admin.connected()
    (session,) = await admin.event("session")
    assert re.fullmatch(r"[0-9a-f]{16}", session)
    assert await admin.event("config") == [{"supportedFeatures": ALL_FEATURES}]
    await admin.event("all_sockets")

    # The UI reconnects (a page reload) with the session id alone.
    again = await js_client(url, "/admin", transports=["websocket"], auth={"sessionId": session})
    await again.connected()
    await again.event("config")
    assert again.events("session") == []

    # Other namespaces are not behind the admin's password.
    plain = await js_client(url, transports=["websocket"])
    await plain.connected()


def test_instrument_checks_its_options():
    io = fastsio.Server(serve_client=False)
    with pytest.raises(ValueError, match="bcrypt hash"):
        fastsio.instrument(io, auth={"username": USER, "password": PASSWORD})
    with pytest.raises(ValueError, match="mode"):
        fastsio.instrument(io, auth=False, mode="staging")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="auth type"):
        fastsio.instrument(io, auth={"type": "oauth", "username": "a", "password": "b"})
    with pytest.raises(TypeError):
        fastsio.instrument(io)  # type: ignore[call-arg]


async def test_dynamic_namespaces_are_watched_once(make_server, js_client):
    io, url = await make_server()
    fastsio.instrument(io, auth=False)
    io.of(re.compile(r"^/room-\d+$"))  # children share the parent's handlers
    admin = await js_client(url, "/admin", transports=["websocket"])
    await admin.connected()
    await admin.event("all_sockets")

    ids = {}
    for name in ("/room-1", "/room-2", "/room-1"):
        client = await js_client(url, name, transports=["websocket"])
        ids[(await client.connected())["id"]] = name
        client.emit("move", name)
    for sid, name in ids.items():
        nsp, _who, args, _ = await event_where(admin, "event_received", lambda a, s=sid: a[1] == s)
        assert (nsp, args) == (name, ["move", name])
    await wait_for(lambda: len(admin.events("socket_connected")) >= 4)  # the admin + 3
    await asyncio.sleep(0.1)
    connected = admin.events("socket_connected")
    assert len(connected) == 4, connected  # once each, however many children share handlers
    assert sorted(s["id"] for s, _ in connected[1:]) == sorted(ids)
    assert {s["id"]: s["nsp"] for s, _ in connected[1:]} == ids
    assert len(admin.events("event_received")) == 3
