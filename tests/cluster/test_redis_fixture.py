"""The private Redis the cluster tests use: its own port, and stop/kill/start for fault tests."""

from __future__ import annotations

import redis

from .redisserver import RedisServer


def test_private_server_restarts_on_the_same_url(redis_server: RedisServer) -> None:
    assert redis_server.port != 6379
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set("k", "v")
        redis_server.restart(save=True)
        assert client.get("k") == b"v"  # redis-py reconnects; SHUTDOWN SAVE kept the data
        redis_server.kill()
        assert not redis_server.running and not redis_server.ping()
        redis_server.start()
        assert client.get("k") is None  # kill -9 without persistence loses everything
    finally:
        client.close()


def test_each_test_starts_empty(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.dbsize() == 0
        client.set("left-over", "1")
    finally:
        client.close()
