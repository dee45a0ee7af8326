"""Two fastsio nodes alone on one Redis: operations, recovery between them (a client that got
no event yet included; volatile packets never replayed), Redis restarted under them, bad data
on Redis, and the emitter."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis.asyncio as aioredis

import fastsio
from fastsio import AckTimeout
from fastsio.cluster import AsyncEmitter, Emitter
from tests.clients.loops import wait_for

from .members import Cluster

RECOVERY = {"max_disconnection_duration": 10.0}
RECONNECT = {"reconnection": True, "reconnectionDelay": 300, "reconnectionDelayMax": 300}


def join_from_auth(io: fastsio.Server) -> None:
    @io.on("connection")
    def on_connection(sock: fastsio.Socket) -> None:
        if not sock.recovered:
            sock.join(sock.handshake.auth.get("rooms", []))


async def test_two_fastsio_nodes(cluster: Cluster) -> None:
    io1, url1 = await cluster.fastsio()
    io2, url2 = await cluster.fastsio()
    join_from_auth(io1)
    join_from_auth(io2)
    c1 = await cluster.client(url1, auth={"rooms": ["r"]}, acks={"ask": "echo"})
    c2 = await cluster.client(url2, auth={"rooms": ["r"]}, acks={"ask": "echo"})
    id1 = (await c1.connected())["id"]
    id2 = (await c2.connected())["id"]
    assert await io1.sockets.adapter.server_count() == 2
    io1.to("r").emit("hello", b"\x01", 2)
    assert await c2.event("hello") == [b"\x01", 2]
    assert await c1.event("hello") == [b"\x01", 2]
    assert sorted(await io2.timeout(5).emit_with_ack("ask", 9)) == [9, 9]
    assert {s.id for s in await io2.fetch_sockets()} == {id1, id2}

    @io2.on_server_side("sum")
    def total(a: int, b: int) -> int:
        return a + b

    assert await io1.timeout(5).server_side_emit_with_ack("sum", 2, 3) == [5]
    await io2.in_(id1).sockets_join("only-1")
    io2.to("only-1").emit("one")
    assert await c1.event("one") == []
    await io1.in_(id2).disconnect_sockets()
    assert await c2.disconnected() == "io server disconnect"


async def test_recovery_between_fastsio_nodes_without_any_event(cluster: Cluster) -> None:
    """The client got no event before it dropped (so it has no offset): fastsio recovers it
    from where its session began; the volatile packet it missed is not replayed."""
    io1, url1 = await cluster.fastsio(recovery=RECOVERY)
    io2, url2 = await cluster.fastsio(recovery=RECOVERY)
    join_from_auth(io1)
    join_from_auth(io2)
    left = asyncio.Event()
    io1.on("disconnect", lambda sock, reason: left.set())
    c = await cluster.client(url1, auth={"rooms": ["r"]}, **RECONNECT)
    first = await c.connected()
    c.send({"op": "drop", "url": url2})
    await asyncio.wait_for(left.wait(), 5)
    io1.to("r").emit("tick", 1)
    io1.volatile.emit("tick", "volatile")
    io2.emit("tick", 2)
    again = await c.connected()
    assert again["recovered"] is True and again["id"] == first["id"]
    io2.to("r").emit("tick", 3)
    for _ in range(3):
        await c.event("tick")
    await asyncio.sleep(0.1)
    got = c.events("tick")
    # 1 and 2 come from two nodes at once: in stream order (the offsets only grow).
    assert sorted(a[0] for a in got) == [1, 2, 3] and got[-1][0] == 3
    ids = [tuple(map(int, a[-1].split("-"))) for a in got]
    assert ids == sorted(set(ids))


async def test_redis_restarted_under_the_cluster(cluster: Cluster, caplog: Any) -> None:
    """Redis dies (its data with it) and comes back: local delivery goes on meanwhile,
    requests fail by their deadline with what this node has, and the nodes reconnect by
    themselves (the stream readers and pub/sub resume)."""
    caplog.set_level(logging.WARNING, "fastsio.cluster")
    io1, url1 = await cluster.fastsio(block_time=1.0)
    _io2, url2 = await cluster.fastsio(block_time=1.0)
    c1 = await cluster.client(url1)
    c2 = await cluster.client(url2)
    id1 = (await c1.connected())["id"]
    await c2.connected()
    io1.emit("before")
    assert await c2.event("before") == []

    cluster.redis.kill()
    io1.emit("during", 1)
    assert await c1.event("during") == [1]  # local delivery does not wait for Redis
    with pytest.raises(AckTimeout) as info:
        await io1.timeout(0.5).fetch_sockets()
    assert [s.id for s in info.value.responses] == [id1]

    cluster.redis.start()
    n = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not c2.events("probe"):
        assert loop.time() < deadline, "the cluster did not come back after Redis restarted"
        n += 1
        io1.emit("probe", n)
        await asyncio.sleep(0.2)
    await wait_for(lambda: bool(c1.events("probe")))
    await wait_for(lambda: io1.sockets.adapter.node.channels != set())
    assert await io1.sockets.adapter.server_count() == 2
    assert len(await io1.timeout(5).fetch_sockets()) == 2
    assert c2.events("during") == []  # what Redis never got is not delivered late
    assert any("Redis" in r.getMessage() or "redis" in r.getMessage() for r in caplog.records)


async def test_bad_data_on_redis_is_logged_and_skipped(cluster: Cluster, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, "fastsio.cluster")
    io1, _url1 = await cluster.fastsio()
    _io2, url2 = await cluster.fastsio()
    c2 = await cluster.client(url2)
    await c2.connected()
    r = aioredis.Redis.from_url(cluster.redis.url)
    try:
        await r.xadd("socket.io", {"uid": "x", "nsp": "/", "type": "3", "data": "{not json"})
        await r.xadd("socket.io", {"uid": "x", "nsp": "/", "type": "3", "data": "!!!"})
        await r.xadd("socket.io", {"uid": "x", "nsp": "/", "type": "3",
                                   "data": '{"packet": 5, "opts": []}'})
        await r.xadd("socket.io", {"uid": "x", "nsp": "/", "type": "zz"})
        await r.xadd("socket.io", {"foreign": "entry"})
        await r.publish("socket.io#/#", b"\xc1 not msgpack")
        await r.publish("socket.io#/#", b"\x93\x01\x02\x03")  # msgpack, not a message
    finally:
        await r.aclose()
    io1.emit("after", "ok")
    assert await c2.event("after") == ["ok"]
    messages = [rec.getMessage() for rec in caplog.records]
    assert sum("malformed" in m for m in messages) >= 1


async def test_emitters_reach_every_node(cluster: Cluster) -> None:
    io, url = await cluster.fastsio()
    node = await cluster.node(namespaces=["/", "/chat"])
    join_from_auth(io)
    io.of("/chat")
    on_py = await cluster.client(url, auth={"rooms": ["r"]})
    on_node = await cluster.client(node.url, auth={"rooms": ["r"]})
    chat_py = await cluster.client(url, "/chat")
    for c in (on_py, on_node, chat_py):
        await c.connected()
    seen: list[Any] = []
    io.on_server_side("job", lambda *args: seen.append(args))

    emitter = Emitter(cluster.redis.url)
    try:
        emitter.to("r").emit("from-sync", 1, b"\x02")
        emitter.of("/chat").emit("chat", "hi")
        emitter.server_side_emit("job", 42)
    finally:
        emitter.close()
    for c in (on_py, on_node):
        assert await c.event("from-sync") == [1, b"\x02"]
    assert await chat_py.event("chat") == ["hi"]
    await wait_for(lambda: seen == [(42,)])

    aemitter = AsyncEmitter(cluster.redis.url)
    try:
        await aemitter.except_("r").emit("nobody")
        await aemitter.in_("r").sockets_join("r2")
        await aemitter.to("r2").emit("from-async", {"x": None})
        await aemitter.in_("r2").disconnect_sockets()
    finally:
        await aemitter.aclose()
    for c in (on_py, on_node):
        assert await c.event("from-async") == [{"x": None}]
        assert await c.disconnected() == "io server disconnect"
    assert on_py.events("nobody") == [] and on_node.events("nobody") == []




async def test_sharded_pubsub_several_streams_and_time_bound(cluster: Cluster) -> None:
    """``use_sharded_pubsub``, ``stream_count`` (with a namespace whose hash is negative: its
    stream is ``socket.io--3``, which fastsio reads) and ``max_age`` (XTRIM MINID)."""
    opts: dict[str, Any] = {"use_sharded_pubsub": True, "stream_count": 4, "max_age": 0.5}
    io1, _url1 = await cluster.fastsio(**opts)
    io2, url2 = await cluster.fastsio(**opts)
    io1.of("/notifications")
    io2.of("/notifications")
    c2 = await cluster.client(url2, "/notifications")
    id2 = (await c2.connected())["id"]
    nsp1 = io1.of("/notifications")
    assert await nsp1.adapter.server_count() == 2
    assert [s.id for s in await nsp1.fetch_sockets()] == [id2]
    for i in range(250):
        nsp1.emit("n", i)
    await wait_for(lambda: len(c2.events("n")) == 250)
    assert [a[0] for a in c2.events("n")] == list(range(250))
    r = aioredis.Redis.from_url(cluster.redis.url)
    try:
        assert await r.xlen("socket.io--3") == 250
        await asyncio.sleep(1.1)
        nsp1.emit("n", "last")
        await wait_for(lambda: len(c2.events("n")) == 251)
        # Approximate trimming removes whole stream nodes (100 entries each by default).
        assert await r.xlen("socket.io--3") <= 51
    finally:
        await r.aclose()


async def test_room_changes_and_disconnects_during_the_outage(cluster: Cluster) -> None:
    """What happened to the session's rooms while it was away counts: a sockets_join /
    sockets_leave in the stream updates the restored rooms (and so what is replayed); a
    disconnect_sockets aimed at it refuses the recovery."""
    io1, url1 = await cluster.fastsio(recovery=RECOVERY)
    io2, url2 = await cluster.fastsio(recovery=RECOVERY)
    join_from_auth(io1)
    join_from_auth(io2)
    left = asyncio.Event()
    io1.on("disconnect", lambda sock, reason: left.set())
    c = await cluster.client(url1, auth={"rooms": ["r"]}, **RECONNECT)
    first = await c.connected()
    c.send({"op": "drop", "url": url2})
    await asyncio.wait_for(left.wait(), 5)
    await io1.in_("r").sockets_join("r2")
    await io1.in_("r2").sockets_leave("r")
    io1.to("r2").emit("tick", 1)
    io1.to("r").emit("tick", "left r before this")
    again = await c.connected()
    assert again["recovered"] is True and again["id"] == first["id"]
    assert (await c.event("tick"))[0] == 1
    assert io2.sockets.sockets[first["id"]].rooms == {first["id"], "r2"}

    left.clear()
    io2.on("disconnect", lambda sock, reason: left.set())
    c.send({"op": "drop", "url": url1})
    await asyncio.wait_for(left.wait(), 5)
    await io2.in_("r2").disconnect_sockets()
    third = await c.connected()
    assert third["recovered"] is False and third["id"] != first["id"]
    await asyncio.sleep(0.1)
    assert [a[0] for a in c.events("tick")] == [1]


async def test_reconnect_storm_over_two_nodes_is_exactly_once(cluster: Cluster) -> None:
    """Both nodes broadcast a numbered sequence while clients drop and come back on one node or
    the other, several times: every client ends with both sequences complete, each packet once,
    in order, with offsets that only grow."""
    io1, url1 = await cluster.fastsio(recovery=RECOVERY)
    io2, url2 = await cluster.fastsio(recovery=RECOVERY)
    urls = [url1, url2]
    clients = [await cluster.client(urls[i % 2], reconnection=True, reconnectionDelay=100,
                                    reconnectionDelayMax=100) for i in range(6)]
    for c in clients:
        await c.connected()
    count = 60

    async def ticker(io: fastsio.Server, name: str) -> None:
        for i in range(count):
            io.emit("tick", name, i)
            await asyncio.sleep(0.015)

    async def storm() -> None:
        for step in range(3):
            for j, c in enumerate(clients):
                c.send({"op": "drop", "url": urls[(j + step + 1) % 2]})
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.15)

    await asyncio.gather(ticker(io1, "a"), ticker(io2, "b"), storm())
    io1.emit("end")
    for c in clients:
        await c.event("end", timeout=10)
        connects = [m for m in c.messages if m.get("type") == "connect"]
        assert len(connects) == 4 and all(m["recovered"] for m in connects[1:]), connects
        got = c.events("tick")
        for name in ("a", "b"):
            assert [t[1] for t in got if t[0] == name] == list(range(count)), (name, got)
        ids = [tuple(map(int, t[-1].split("-"))) for t in got]
        assert ids == sorted(set(ids))
