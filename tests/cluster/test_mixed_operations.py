"""Every cluster operation across a mixed cluster, in both directions: a fastsio node and an
official Node node (socket.io 4.8 + @socket.io/redis-streams-adapter 0.3.1) on one Redis, with
official JS clients on each. Clients ``a1``/``a2`` are on fastsio, ``b1``/``b2`` on Node;
``*1`` are in room ``r1``, ``*2`` in ``r2``."""

from __future__ import annotations

from typing import Any

import pytest

import fastsio
from fastsio import AckTimeout
from tests.clients.node import NodeClient

from .members import Cluster
from .nodeserver import NodeServer

ACKS = {"ask": "echo"}


async def setup(cluster: Cluster) -> tuple[fastsio.Server, NodeServer, dict[str, NodeClient]]:
    io, url = await cluster.fastsio()

    @io.on("connection")
    def on_connection(sock: fastsio.Socket) -> None:
        sock.data = {"node": "py"}
        sock.join(sock.handshake.auth.get("rooms", []))

    @io.on("join")
    def join(sock: fastsio.Socket, room: str) -> str:
        sock.join(room)
        return "ok"

    node = await cluster.node(serverSide=["hello", "ask"])
    clients = {
        "a1": await cluster.client(url, auth={"rooms": ["r1"]}, acks=ACKS),
        "a2": await cluster.client(url, auth={"rooms": ["r2"]}, acks=ACKS),
        "b1": await cluster.client(node.url, auth={"rooms": ["r1"]}, acks=ACKS),
        "b2": await cluster.client(node.url, auth={"rooms": ["r2"]}, acks=ACKS),
    }
    for c in clients.values():
        c.id = (await c.connected())["id"]  # type: ignore[attr-defined]
    return io, node, clients


async def barrier(io: fastsio.Server, node: NodeServer, clients: dict[str, NodeClient],
                  n: int) -> None:
    """Everything sent before reached every client: a marker from each node, awaited on each
    client. Both are needed: a node delivers its own broadcasts locally at once but another
    node's only when its stream reader gets there, so only the other node's marker follows
    the other node's earlier packets."""
    io.emit("marker", "py", n)
    await node.call("emit", event="marker", args=["node", n])
    for c in clients.values():
        got = {tuple(await c.event("marker")) for _ in range(2)}
        assert got == {("py", n), ("node", n)}


def got(clients: dict[str, NodeClient], event: str) -> set[str]:
    return {name for name, c in clients.items() if c.events(event)}


async def test_operations_from_fastsio_reach_node(cluster: Cluster) -> None:
    io, node, clients = await setup(cluster)
    a1, b1, b2 = clients["a1"], clients["b1"], clients["b2"]

    assert await io.sockets.adapter.server_count() == 2
    assert (await node.call("serverCount"))["count"] == 2

    # Broadcasts: rooms, except, local, volatile, binary.
    io.to("r1").emit("to-r1", 1)
    io.except_("r1").emit("except-r1", 2)
    io.local.emit("local", 3)
    io.to(["r1", "r2"]).except_("r2").emit("union-minus", 5)
    io.emit("bin", b"\x00\x01\xff", {"nested": b"yz", "n": None, "f": 1.5})
    await barrier(io, node, clients, 1)
    assert got(clients, "to-r1") == {"a1", "b1"}
    assert got(clients, "except-r1") == {"a2", "b2"}
    assert got(clients, "local") == {"a1", "a2"}
    assert got(clients, "union-minus") == {"a1", "b1"}
    assert b1.events("bin") == [[b"\x00\x01\xff", {"nested": b"yz", "n": None, "f": 1.5}]]
    assert a1.events("bin") == b1.events("bin")
    # Volatile: dropped where a connection is busy, so sent when every one is idle.
    # Each client gets it before anything else is sent (see the Node → fastsio test).
    io.volatile.emit("volatile", 4)
    for c in clients.values():
        assert await c.event("volatile") == [4]
    await barrier(io, node, clients, 11)
    assert got(clients, "volatile") == {"a1", "a2", "b1", "b2"}

    # Broadcast with acks: one answer per client of the cluster.
    answers = await io.timeout(5).emit_with_ack("ask", "q")
    assert sorted(answers) == ["q"] * 4
    answers = await io.to("r2").timeout(5).emit_with_ack("ask", {"k": 1})
    assert answers == [{"k": 1}, {"k": 1}]

    # fetch_sockets: the Node sockets with their rooms, data and handshake.
    sockets = {s.id: s for s in await io.fetch_sockets()}
    assert set(sockets) == {c.id for c in clients.values()}  # type: ignore[attr-defined]
    remote_b1 = sockets[b1.id]  # type: ignore[attr-defined]
    assert remote_b1.data == {"node": "node"}
    assert remote_b1.rooms == {b1.id, "r1"}  # type: ignore[attr-defined]
    assert remote_b1.handshake.auth == {"rooms": ["r1"]}
    assert remote_b1.handshake.address
    assert [s.id for s in await io.in_("r2").fetch_sockets()].count(b2.id) == 1  # type: ignore[attr-defined]

    # RemoteSocket: emit, join, leave, disconnect a socket of the Node node.
    remote_b1.emit("direct", "hi")
    assert await b1.event("direct") == ["hi"]
    await remote_b1.join("r9")  # type: ignore[misc]
    io.to("r9").emit("in-r9")
    assert await b1.event("in-r9") == []
    await remote_b1.leave("r9")  # type: ignore[misc]
    io.to("r9").emit("in-r9-again")
    await barrier(io, node, clients, 2)
    assert got(clients, "in-r9-again") == set()

    # sockets_join / sockets_leave across nodes.
    await io.in_("r2").sockets_join("r3")
    io.to("r3").emit("to-r3")
    await barrier(io, node, clients, 3)
    assert got(clients, "to-r3") == {"a2", "b2"}
    await io.in_("r3").sockets_leave("r2")
    io.to("r2").emit("to-r2-after-leave")
    await barrier(io, node, clients, 4)
    assert got(clients, "to-r2-after-leave") == set()

    # Server-side emits, with and without acks.
    await io.server_side_emit("hello", 1, {"two": 2})
    msg = await node.next("serverside", where=lambda m: m["event"] == "hello")
    assert msg["args"] == [1, {"two": 2}]
    assert await io.timeout(5).server_side_emit_with_ack("ask", "x") == [
        {"node": "node", "args": ["x"]}
    ]

    # disconnect_sockets across nodes, then a RemoteSocket disconnect.
    await io.in_("r3").disconnect_sockets()
    assert await clients["b2"].disconnected() == "io server disconnect"
    assert await clients["a2"].disconnected() == "io server disconnect"
    await remote_b1.disconnect()  # type: ignore[misc]
    assert await b1.disconnected() == "io server disconnect"


async def test_operations_from_node_reach_fastsio(cluster: Cluster) -> None:
    io, node, clients = await setup(cluster)
    a1, a2 = clients["a1"], clients["a2"]
    seen: list[tuple[str, tuple[Any, ...]]] = []

    @io.on_server_side("hello")
    def hello(*args: Any) -> None:
        seen.append(("hello", args))

    @io.on_server_side("ask")
    async def ask(*args: Any) -> dict[str, Any]:
        return {"node": "py", "args": list(args)}

    await node.call("emit", rooms=["r1"], event="to-r1", args=[1])
    await node.call("emit", except_=[], event="all", args=[0])
    await node.call("emit", **{"except": ["r1"]}, event="except-r1", args=[2])
    await node.call("emit", local=True, event="local", args=[3])
    await node.call("emit", event="bin", args=[b"\x00\x01\xff", {"nested": b"yz"}])
    await barrier(io, node, clients, 1)
    assert got(clients, "to-r1") == {"a1", "b1"}
    assert got(clients, "all") == {"a1", "a2", "b1", "b2"}
    assert got(clients, "except-r1") == {"a2", "b2"}
    assert got(clients, "local") == {"b1", "b2"}
    assert a1.events("bin") == [[b"\x00\x01\xff", {"nested": b"yz"}]]
    # Nothing else is sent until the volatile packet arrives: a volatile packet is dropped for
    # a connection that has a frame waiting in the same loop iteration (the official server
    # drops it while a write is pending), so a marker sent right behind it could race it out.
    await node.call("emit", volatile=True, event="volatile", args=[4])
    for c in clients.values():
        assert await c.event("volatile") == [4]
    await barrier(io, node, clients, 11)
    assert got(clients, "volatile") == {"a1", "a2", "b1", "b2"}

    # emitWithAck from Node: the fastsio node counts its clients and relays their acks.
    result = await node.call("emitWithAck", timeout=5000, event="ask", args=["q"])
    assert sorted(result["responses"]) == ["q"] * 4
    result = await node.call("emitWithAck", rooms=["r1"], timeout=5000, event="ask", args=[7])
    assert result["responses"] == [7, 7]

    # fetchSockets from Node sees the fastsio sockets (id, rooms, data, handshake).
    result = await node.call("fetchSockets")
    sockets = {s["id"]: s for s in result["sockets"]}
    assert set(sockets) == {c.id for c in clients.values()}  # type: ignore[attr-defined]
    assert sockets[a1.id]["data"] == {"node": "py"}  # type: ignore[attr-defined]
    assert sorted(sockets[a1.id]["rooms"]) == sorted([a1.id, "r1"])  # type: ignore[attr-defined]
    assert sockets[a1.id]["auth"] == {"rooms": ["r1"]}  # type: ignore[attr-defined]
    assert isinstance(sockets[a1.id]["issued"], int)  # type: ignore[attr-defined]

    # RemoteSocket on Node acting on a fastsio socket.
    await node.call("remote", id=a1.id, action="emit", event="direct", args=["hi"])  # type: ignore[attr-defined]
    assert await a1.event("direct") == ["hi"]
    await node.call("remote", id=a1.id, action="join", target="r9")  # type: ignore[attr-defined]
    await pytest_wait(lambda: "r9" in io.sockets.sockets[a1.id].rooms)  # type: ignore[attr-defined]
    await node.call("remote", id=a1.id, action="leave", target="r9")  # type: ignore[attr-defined]
    await pytest_wait(lambda: "r9" not in io.sockets.sockets[a1.id].rooms)  # type: ignore[attr-defined]

    # socketsJoin / socketsLeave from Node.
    await node.call("socketsJoin", rooms=["r2"], target="r3")
    await pytest_wait(lambda: "r3" in io.sockets.sockets[a2.id].rooms)  # type: ignore[attr-defined]
    # The Node node applies it to its own sockets once its XADD answered (not awaited there).
    for _ in range(50):
        local = await node.call("fetchSockets", rooms=["r3"], local=True)
        if local["sockets"]:
            break
    io.to("r3").emit("to-r3")
    await barrier(io, node, clients, 2)
    assert got(clients, "to-r3") == {"a2", "b2"}
    await node.call("socketsLeave", rooms=["r3"], target="r3")
    await pytest_wait(lambda: "r3" not in io.sockets.sockets[a2.id].rooms)  # type: ignore[attr-defined]

    # Server-side events from Node reach fastsio's handlers; acks come back.
    await node.call("serverSideEmit", event="hello", args=[1, "two"])
    await pytest_wait(lambda: bool(seen))
    assert seen == [("hello", (1, "two"))]
    result = await node.call("serverSideEmitWithAck", event="ask", args=["x"])
    assert result["responses"] == [{"node": "py", "args": ["x"]}]

    # disconnectSockets from Node, then a remote disconnect.
    await node.call("disconnectSockets", rooms=["r2"])
    assert await a2.disconnected() == "io server disconnect"
    await node.call("remote", id=a1.id, action="disconnect")  # type: ignore[attr-defined]
    assert await a1.disconnected() == "io server disconnect"


async def test_requests_time_out_with_what_was_gathered(cluster: Cluster) -> None:
    """A node that does not answer in time: the request fails by its deadline and carries the
    answers that came (the fastsio node's own sockets, the Node node's ack)."""
    io, url = await cluster.fastsio()
    node = await cluster.node(serverSide=["ask"])
    a1 = await cluster.client(url)
    await a1.connected()
    slow, _ = await cluster.fastsio()

    @slow.on_server_side("ask")
    async def never(*args: Any) -> None:
        import asyncio

        await asyncio.sleep(10)

    with pytest.raises(AckTimeout) as info:
        await io.timeout(0.5).server_side_emit_with_ack("ask", 1)
    assert info.value.responses == [{"node": "node", "args": [1]}]
    assert node.seen("serverside", event="ask")


async def pytest_wait(predicate: Any, timeout: float = 5.0) -> None:
    from tests.clients.loops import wait_for

    await wait_for(predicate, timeout)


async def test_a_node_killed_does_not_hang_the_others(cluster: Cluster) -> None:
    """``kill -9`` of the Node node: Redis drops its connections, the server count follows,
    and requests from fastsio complete at once instead of waiting for its answer."""
    import asyncio
    import time

    io, url = await cluster.fastsio()
    node = await cluster.node(serverSide=["ask"])
    a1 = await cluster.client(url)
    b1 = await cluster.client(node.url)
    id1 = (await a1.connected())["id"]
    await b1.connected()
    assert len(await io.timeout(5).fetch_sockets()) == 2
    assert node.proc is not None
    node.proc.kill()
    await node.proc.wait()
    for _ in range(100):
        if await io.sockets.adapter.server_count() == 1:
            break
        await asyncio.sleep(0.02)
    t0 = time.monotonic()
    assert [s.id for s in await io.timeout(5).fetch_sockets()] == [id1]
    assert await io.timeout(5).server_side_emit_with_ack("ask") == []
    assert time.monotonic() - t0 < 1.0
