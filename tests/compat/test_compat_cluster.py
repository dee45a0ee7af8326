"""``client_manager=socketio.AsyncRedisManager(url)`` on fastsio.compat: two python-socketio
style servers on one Redis (fastsio's Redis streams adapter underneath) share rooms and
broadcasts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import socketio as psio

from fastsio import compat as socketio
from tests.clients.loops import wait_for
from tests.cluster.redisserver import RedisServer

TIMEOUT = 5


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer()
    server.start()
    yield server.url
    server.close()


def make_server(url: str) -> socketio.AsyncServer:
    mgr = socketio.AsyncRedisManager(url)
    sio = socketio.AsyncServer(client_manager=mgr)

    @sio.event
    async def join(sid, room):
        await sio.enter_room(sid, room)

    @sio.event
    async def say(sid, room, text):
        await sio.emit("said", text, room=room, skip_sid=sid)

    return sio


async def test_two_compat_servers_share_rooms(redis_url):
    servers = [make_server(redis_url) for _ in range(2)]
    ports = [await s.start() for s in servers]
    clients = []
    heard: list[list[str]] = [[], []]
    try:
        for i, port in enumerate(ports):
            c = psio.AsyncClient(reconnection=False)
            c.on("said", heard[i].append)
            await c.connect(f"http://127.0.0.1:{port}", transports=["websocket"],
                            wait_timeout=TIMEOUT)
            await c.call("join", "shared", timeout=TIMEOUT)
            clients.append(c)
        # A broadcast from a handler on server 0 reaches the room member on server 1.
        await clients[0].call("say", ("shared", "across"), timeout=TIMEOUT)
        await wait_for(lambda: heard[1] == ["across"])
        await asyncio.sleep(0.1)
        assert heard[0] == []  # skip_sid: not back to the sender
        # And from outside any handler, on server 1.
        await servers[1].emit("said", "from 1", room="shared")
        await wait_for(lambda: heard[0] == ["from 1"] and heard[1] == ["across", "from 1"])
    finally:
        for c in clients:
            await c.disconnect()
        for s in servers:
            await s.shutdown()


def test_write_only_and_python_socketio_managers_are_refused(redis_url):
    with pytest.raises(ValueError, match="write_only"):
        socketio.AsyncRedisManager(redis_url, write_only=True)
    with pytest.raises(ValueError, match="python-socketio's client managers"):
        socketio.AsyncServer(client_manager=psio.AsyncRedisManager(redis_url))
