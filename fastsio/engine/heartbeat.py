"""One timer for the heartbeat of every session of a server.

A ``TimerHandle`` per session and per ping costs about half a KiB per idle connection and a heap
operation per ping. Here each session holds only its next deadline; deadlines are grouped in
buckets of ``tick`` seconds, and one loop timer wakes up for the earliest bucket. A session whose
deadline moved (a pong arrived) leaves a stale entry behind, recognised and skipped when its
bucket comes up. Deadlines fire at most one tick late: the tick is a small fraction of the
shortest heartbeat period.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastsio.engine.socket import EngineSocket


class Heartbeat:
    """Deadlines of sessions, in buckets of ``tick`` seconds, behind one loop timer."""

    __slots__ = ("_buckets", "_handle", "_handle_key", "_keys", "tick")

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self._buckets: dict[int, list[EngineSocket]] = {}
        self._keys: list[int] = []  # heap of the bucket keys in _buckets
        self._handle: asyncio.TimerHandle | None = None
        self._handle_key = 0

    @staticmethod
    def tick_for(ping_interval: float, ping_timeout: float) -> float:
        """A tick well below both periods (1/20th), between 5 ms and 1 s."""
        return min(1.0, max(0.005, min(ping_interval, ping_timeout) / 20))

    def schedule(self, sock: EngineSocket, delay: float) -> None:
        """Call ``sock._on_heartbeat()`` in ``delay`` seconds (replacing its previous deadline)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        sock._hb_due = due
        key = math.ceil(due / self.tick)
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = [sock]
            heapq.heappush(self._keys, key)
        else:
            bucket.append(sock)
        if self._handle is None or key < self._handle_key:
            if self._handle is not None:
                self._handle.cancel()
            self._handle_key = key
            self._handle = loop.call_at(key * self.tick, self._run)

    @staticmethod
    def cancel(sock: EngineSocket) -> None:
        """Forget ``sock``'s deadline (its bucket entry becomes stale)."""
        sock._hb_due = None

    def _run(self) -> None:
        self._handle = None
        loop = asyncio.get_running_loop()
        now_key = math.floor(loop.time() / self.tick + 1e-6)  # call_at may wake a hair early
        keys = self._keys
        while keys and keys[0] <= now_key:
            key = heapq.heappop(keys)
            for sock in self._buckets.pop(key):
                due = sock._hb_due
                if due is not None and math.ceil(due / self.tick) == key:
                    sock._hb_due = None
                    sock._on_heartbeat()
        if keys and self._handle is None:
            self._handle_key = keys[0]
            self._handle = loop.call_at(keys[0] * self.tick, self._run)

    def close(self) -> None:
        """Drop every deadline and the timer."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for bucket in self._buckets.values():
            for sock in bucket:
                sock._hb_due = None
        self._buckets.clear()
        self._keys.clear()

    @property
    def pending(self) -> bool:
        """True while the loop timer is armed."""
        return self._handle is not None
