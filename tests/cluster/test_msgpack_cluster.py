"""Two fastsio nodes with ``parser="msgpack"`` on one Redis (the streams adapter carries the
packets' data, each node encodes it with its own parser): broadcasts with binary values reach
the official msgpack clients of both nodes, and a client that moves to the other node recovers
the packets it missed (replayed from the stream, offsets appended by the msgpack encoder)."""

from __future__ import annotations

import asyncio

import fastsio
from fastsio.cluster import redis_streams_adapter

from .members import Cluster

RECOVERY = {"max_disconnection_duration": 10.0}
RECONNECT = {"reconnection": True, "reconnectionDelay": 300, "reconnectionDelayMax": 300}


async def msgpack_node(cluster: Cluster) -> tuple[fastsio.Server, str]:
    io = fastsio.Server(adapter=redis_streams_adapter(cluster.redis.url), parser="msgpack",
                        connection_state_recovery=RECOVERY, ping_interval=2.0, ping_timeout=2.0)
    port = await io.start("127.0.0.1", 0)
    cluster.servers.append(io)  # closed by the fixture

    @io.on("connection")
    def on_connection(sock: fastsio.Socket) -> None:
        if not sock.recovered:
            sock.join("r")

    return io, f"http://127.0.0.1:{port}"


async def test_msgpack_broadcast_and_recovery_across_nodes(cluster: Cluster) -> None:
    io1, url1 = await msgpack_node(cluster)
    io2, url2 = await msgpack_node(cluster)
    c1 = await cluster.client(url1, parser="msgpack")
    c2 = await cluster.client(url2, parser="msgpack", **RECONNECT)
    await c1.connected()
    first = await c2.connected()
    io1.to("r").emit("hello", b"\x01", {"nested": [b"\x02"]})
    assert (await c1.event("hello"))[:2] == [b"\x01", {"nested": [b"\x02"]}]
    got = await c2.event("hello")
    assert got[:2] == [b"\x01", {"nested": [b"\x02"]}] and isinstance(got[2], str)

    left = asyncio.Event()
    io2.on("disconnect", lambda sock, reason: left.set())
    c2.send({"op": "drop", "url": url1})
    await asyncio.wait_for(left.wait(), 5)
    io2.to("r").emit("missed", 1, b"\x03")
    io1.emit("missed", 2)
    again = await c2.connected()
    assert again["recovered"] is True and again["id"] == first["id"]
    for _ in range(2):
        await c2.event("missed")
    missed = c2.events("missed")
    assert sorted(m[0] for m in missed) == [1, 2]
    assert [m[:-1] for m in missed if m[0] == 1] == [[1, b"\x03"]]
    assert all(isinstance(m[-1], str) for m in missed)
