"""Fixtures for the cluster tests: a private ``redis-server`` per test session (never the shared
one on 6379), emptied before each test and started again if a fault test left it down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import fastsio
from fastsio.cluster import redis_streams_adapter
from tests.interop.node import NodeClient

from .nodeserver import NodeServer
from .redisserver import RedisServer


@pytest.fixture(scope="session")
def redis_server_session() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_server(redis_server_session: RedisServer) -> Iterator[RedisServer]:
    """The session's ``RedisServer``, running and empty: ``.url``, ``.stop(save=...)``,
    ``.kill()``, ``.start()``, ``.restart()``, ``.command(...)``."""
    server = redis_server_session
    server.start()
    server.flush()
    yield server
    # A fault test may have stopped it: the next test gets it back from ``start`` above.


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[Cluster]:
    """Start cluster members on the test's Redis; everything is stopped after the test
    (clients first, then servers)."""
    c = Cluster(redis_server)
    yield c
    await c.close()


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
