"""The members of a test cluster on one Redis: fastsio nodes on the Redis streams adapter,
official Node servers, official JS clients; stopped together (clients first, then servers)."""

from __future__ import annotations

from typing import Any

import fastsio
from fastsio.cluster import redis_streams_adapter
from tests.clients.node import NodeClient

from .nodeserver import NodeServer
from .redisserver import RedisServer


class Cluster:
    def __init__(self, redis_server: RedisServer) -> None:
        self.redis = redis_server
        self.clients: list[NodeClient] = []
        self.node_servers: list[NodeServer] = []
        self.servers: list[fastsio.Server] = []

    async def fastsio(self, recovery: bool | dict[str, Any] = False,
                      **adapter_opts: Any) -> tuple[fastsio.Server, str]:
        """A fastsio node on the Redis streams adapter; ``(io, url)``."""
        io = fastsio.Server(
            adapter=redis_streams_adapter(self.redis.url, **adapter_opts),
            connection_state_recovery=recovery or None,
            ping_interval=2.0,
            ping_timeout=2.0,
        )
        port = await io.start("127.0.0.1", 0)
        self.servers.append(io)
        return io, f"http://127.0.0.1:{port}"

    async def node(self, **config: Any) -> NodeServer:
        """An official Node server on ``@socket.io/redis-streams-adapter``."""
        server = await NodeServer.start(self.redis.url, **config)
        self.node_servers.append(server)
        return server

    async def client(self, url: str, namespace: str = "/", **opts: Any) -> NodeClient:
        """An official JS client (websocket only unless ``transports`` is given)."""
        opts.setdefault("transports", ["websocket"])
        client = await NodeClient.start(url, namespace, **opts)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        for s in self.node_servers:
            await s.close()
        for io in self.servers:
            await io.close()
