"""``fastsio run --workers 2 --redis URL``: the workers share state through the Redis streams
adapter, so a broadcast from one worker reaches the clients of the other (official JS clients,
default transports: long-polling, then the upgrade)."""

from __future__ import annotations

import os
import signal
import time

import fastsio
from fastsio.cli import apply_redis
from fastsio.cluster import RedisStreamsAdapter
from tests.clients.node import NodeClient
from tests.clients.polling import BlockingPolling
from tests.workers_helpers import Command

from .redisserver import RedisServer


def test_redis_option_installs_the_adapter_unless_the_app_has_one(redis_url: str) -> None:
    io = fastsio.Server()
    io.of("/chat")
    apply_redis(io, redis_url)
    assert all(isinstance(nsp.adapter, RedisStreamsAdapter) for nsp in io._nsps.values())
    for nsp in io._nsps.values():
        nsp.adapter.close()

    class Own(fastsio.Adapter):
        pass

    mine = fastsio.Server(adapter=Own)
    apply_redis(mine, redis_url)
    assert type(mine.sockets.adapter) is Own


def test_one_worker_with_redis_uses_the_adapter(redis_server: RedisServer) -> None:
    cmd = Command("--redis", redis_server.url, "--shutdown-timeout", "0.3")
    try:
        port = cmd.wait_line(r"fastsio listening on http://127\.0\.0\.1:(\d+)").group(1)
        session = BlockingPolling(f"http://127.0.0.1:{port}")
        assert session.call("shout", "through redis") == [cmd.proc.pid]
        # The broadcast went to the stream (written in the background), where the other nodes
        # read it.
        deadline = time.monotonic() + 5
        while b"through redis" not in redis_server.command("XRANGE", "socket.io", "-", "+"):
            assert time.monotonic() < deadline, "the broadcast never reached the stream"
            time.sleep(0.05)
    finally:
        assert cmd.stop() == 0, cmd.log()


async def test_broadcast_from_one_worker_reaches_clients_of_the_other(redis_url: str) -> None:
    cmd = Command("--workers", "2", "--redis", redis_url).started(2)
    clients: list[NodeClient] = []
    try:
        by_pid: dict[int, NodeClient] = {}
        while len(by_pid) < 2 and len(clients) < 6:
            client = await NodeClient.start(cmd.url)
            clients.append(client)
            await client.connected()
            by_pid.setdefault((await client.emit_with_ack("whoami"))[0], client)
        assert len(by_pid) == 2, "new sessions should spread over both workers"
        assert set(by_pid) == set(cmd.worker_pids().values())
        (pid_a, a), (pid_b, b) = by_pid.items()
        for sender, pid, text in ((a, pid_a, "hello"), (b, pid_b, "back")):
            assert await sender.emit_with_ack("shout", text) == [pid]
            for client in clients:
                assert await client.event("news") == [text, pid]
    finally:
        for client in clients:
            await client.close()
        assert cmd.stop() == 0, cmd.log()


async def test_client_of_a_killed_worker_recovers_on_another(redis_url: str) -> None:
    """kill -9 of a worker: its client reconnects through the parent to another worker, gets
    the same socket back (``recovered``) and the broadcast it missed meanwhile."""
    cmd = Command("--workers", "2", "--redis", redis_url, env={"WORKERS_APP_RECOVERY": "1"})
    cmd.started(2)
    clients: list[NodeClient] = []
    try:
        by_pid: dict[int, NodeClient] = {}
        while len(by_pid) < 2 and len(clients) < 6:
            client = await NodeClient.start(
                cmd.url, reconnection=True, reconnectionDelay=1000, reconnectionDelayMax=1000
            )
            clients.append(client)
            await client.connected()
            by_pid.setdefault((await client.emit_with_ack("whoami"))[0], client)
        (pid_a, a), (pid_b, b) = by_pid.items()
        before = (await a.status())["id"]
        await b.emit_with_ack("shout", "before")
        # With recovery on, each event carries its offset (the stream entry id) last.
        assert (await a.event("news"))[:2] == ["before", pid_b]
        os.kill(pid_a, signal.SIGKILL)
        assert await a.disconnected() in ("transport close", "transport error")
        await b.emit_with_ack("shout", "missed")
        again = await a.connected(timeout=10)
        assert again["id"] == before and again["recovered"] is True, again
        assert (await a.event("news"))[:2] == ["missed", pid_b]
        assert (await a.emit_with_ack("whoami"))[0] != pid_a
    finally:
        for client in clients:
            await client.close()
        assert cmd.stop() == 0, cmd.log()
