"""Fixtures for the cluster tests: a private ``redis-server`` per test session (never the shared
one on 6379), emptied before each test and started again if a fault test left it down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
