"""Fixtures for the cluster tests: a private ``redis-server`` per test session (never the shared
one on 6379), emptied before each test and started again if a fault test left it down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from .members import Cluster
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
