"""Broadcasts across a mixed cluster: a fastsio node and an official Node node on one Redis."""

from __future__ import annotations

from .members import Cluster


async def test_broadcast_both_directions(cluster: Cluster) -> None:
    io, url = await cluster.fastsio()
    node = await cluster.node()
    on_py = await cluster.client(url)
    on_node = await cluster.client(node.url)
    await on_py.connected()
    await on_node.connected()
    io.emit("from-py", 1, {"a": [1, 2]}, "x")
    assert await on_node.event("from-py") == [1, {"a": [1, 2]}, "x"]
    assert await on_py.event("from-py") == [1, {"a": [1, 2]}, "x"]
    await node.call("emit", event="from-node", args=[2, "y"])
    assert await on_py.event("from-node") == [2, "y"]
    assert await on_node.event("from-node") == [2, "y"]
