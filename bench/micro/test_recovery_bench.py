"""Connection state recovery costs: stamping+logging per broadcast and restoring sessions.

Run with ``python -m pytest bench/micro --benchmark-only`` (not part of the test suite).
"""

from __future__ import annotations

import asyncio

from fastsio._core import sio_packet
from fastsio._core.packetlog import PacketLog
from fastsio.adapter import Adapter, Session

PARTS = sio_packet.encode(sio_packet.EVENT, "/", ["tick", {"t": 1234567890, "pad": "x" * 50}])
NO_ROOMS: frozenset[str] = frozenset()


def test_log_append_and_stamp(benchmark):
    log = PacketLog(10_000, 8 * 1024 * 1024)
    benchmark(log.append, PARTS, NO_ROOMS, NO_ROOMS)


def test_replay_100_of_10000(benchmark):
    log = PacketLog(10_000, 8 * 1024 * 1024)
    for i in range(10_000):
        log.append(PARTS, frozenset((f"room{i % 10}",)), NO_ROOMS)
    after = log.next_seq - 101
    rooms = {"sid", "room3"}
    out = benchmark(log.replay, after, rooms)
    assert len(out) == 10


class _Nsp:
    name = "/"
    sockets: dict[str, object] = {}


def test_restore_1000_sessions_with_100_missed_each(benchmark):
    """Adapter-level: 1,000 persisted sessions, 100 broadcasts missed by each, all restored."""

    async def scenario() -> int:
        adapter = Adapter(_Nsp(), {"max_disconnection_duration": 120, "max_packets": 10_000,
                                   "max_bytes": 8 << 20, "skip_middlewares": True})
        start = adapter.log_position()
        for i in range(1000):
            adapter.persist_session(Session(f"s{i}", f"p{i}", [f"s{i}", "lobby"], {}, start))
        for _ in range(100):
            adapter.broadcast(["tick", 1], _opts)
        total = 0
        for i in range(1000):
            session = await adapter.restore_session(f"p{i}", None)
            assert session is not None
            total += len(session.missed_packets)
        adapter.close()
        return total

    from fastsio.adapter import BroadcastOptions

    _opts = BroadcastOptions()
    result = benchmark.pedantic(lambda: asyncio.run(scenario()), rounds=5, iterations=1)
    assert result == 100_000
