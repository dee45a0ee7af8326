"""Connection state recovery across a mixed cluster: a client that drops from one node comes
back on another (fastsio and Node, both ways) or on its own node restarted after ``kill -9``,
and gets every packet it missed, once, in order."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tests.clients.node import NodeClient

from .members import Cluster
from .redisserver import free_port

RECOVERY_PY = {"max_disconnection_duration": 10.0}
RECOVERY_NODE = {"maxDisconnectionDuration": 10_000}
RECONNECT = {"reconnection": True, "reconnectionDelay": 300, "reconnectionDelayMax": 300}


def ticks(client: NodeClient) -> list[Any]:
    return [args[0] for args in client.events("tick")]


def offsets(client: NodeClient) -> list[tuple[int, int]]:
    return [tuple(map(int, args[-1].split("-"))) for args in client.events("tick")]


def check_once_in_order(client: NodeClient, expected: list[Any]) -> None:
    """Each expected tick exactly once, the first and the last where they were sent; the two
    nodes' concurrent emits in between come in stream order (the offsets only grow)."""
    got = ticks(client)
    assert sorted(got, key=str) == sorted(expected, key=str), got
    assert got[0] == expected[0] and got[-1] == expected[-1], got
    assert offsets(client) == sorted(set(offsets(client))), offsets(client)


async def test_recovery_from_node_to_fastsio(cluster: Cluster) -> None:
    io, url = await cluster.fastsio(recovery=RECOVERY_PY)
    node = await cluster.node(recovery=RECOVERY_NODE)
    c = await cluster.client(node.url, auth={"rooms": ["r1"]}, **RECONNECT)
    first = await c.connected()
    await node.call("emit", rooms=["r1"], event="tick", args=[1])
    assert (await c.event("tick"))[0] == 1
    c.send({"op": "drop", "url": url})
    await node.next("disconnect", where=lambda m: m["id"] == first["id"])
    io.to("r1").emit("tick", 2)  # missed: sent by the node it will come back to
    await node.call("emit", rooms=["r1"], event="tick", args=[3])  # missed: from its old node
    io.to("r2").emit("tick", "not for it")
    io.volatile.emit("tick", "volatile: never replayed")
    again = await c.connected()
    assert again["recovered"] is True and again["id"] == first["id"]
    io.to("r1").emit("tick", 4)  # live, in the room the session restored
    await c.event("tick")
    await c.event("tick")
    await c.event("tick")
    check_once_in_order(c, [1, 2, 3, 4])


async def test_recovery_from_fastsio_to_node(cluster: Cluster) -> None:
    io, url = await cluster.fastsio(recovery=RECOVERY_PY)
    node = await cluster.node(recovery=RECOVERY_NODE)
    left = asyncio.Event()

    @io.on("connection")
    def on_connection(sock: Any) -> None:
        if not sock.recovered:
            sock.join("r1")
            sock.data = {"who": "py"}
        sock.on("disconnect", lambda reason: left.set())

    c = await cluster.client(url, **RECONNECT)
    first = await c.connected()
    io.to("r1").emit("tick", 1)
    assert (await c.event("tick"))[0] == 1
    c.send({"op": "drop", "url": node.url})
    await asyncio.wait_for(left.wait(), 5)
    await node.call("emit", rooms=["r1"], event="tick", args=[2])
    io.to("r1").emit("tick", 3)
    again = await c.connected()
    assert again["recovered"] is True and again["id"] == first["id"]
    await node.call("emit", rooms=["r1"], event="tick", args=[4])
    for _ in range(3):
        await c.event("tick")
    check_once_in_order(c, [1, 2, 3, 4])
    # Node restored the session fastsio stored: its rooms and data.
    sockets = (await node.call("fetchSockets", rooms=["r1"]))["sockets"]
    assert [(s["id"], s["data"]) for s in sockets] == [(first["id"], {"who": "py"})]


async def start_pyserver(redis_url: str, port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("pyserver.py")), redis_url, str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 15)
    assert line.strip() == b"ready", line
    return proc


async def test_recovery_after_fastsio_kill_9(cluster: Cluster) -> None:
    """The node dies without a word: its sessions were already in Redis (written on connect),
    so the client recovers on the restarted node with what the Node node sent meanwhile."""
    node = await cluster.node(recovery=RECOVERY_NODE)
    port = free_port()
    proc = await start_pyserver(cluster.redis.url, port)
    try:
        c = await cluster.client(f"http://127.0.0.1:{port}", auth={"rooms": ["r1"]},
                                 **RECONNECT)
        first = await c.connected()
        await asyncio.sleep(0.1)  # the session write on connect
        await node.call("emit", rooms=["r1"], event="tick", args=[1])
        assert (await c.event("tick"))[0] == 1
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await c.disconnected()
        await node.call("emit", rooms=["r1"], event="tick", args=[2])
        await node.call("emit", event="tick", args=[3])
        await node.call("emit", rooms=["r2"], event="tick", args=["not for it"])
        proc = await start_pyserver(cluster.redis.url, port)
        again = await c.connected(timeout=10)
        assert again["recovered"] is True and again["id"] == first["id"]
        await node.call("emit", rooms=["r1"], event="tick", args=[4])
        for _ in range(3):
            await c.event("tick")
        check_once_in_order(c, [1, 2, 3, 4])
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
