"""One timer wheel per server for every deadline it keeps.

Heartbeats, HTTP request and keep-alive timeouts, connect and upgrade timeouts, lingering polling
sessions and recovery sessions all wait here, behind one loop timer: a ``TimerHandle`` per
connection (and, on uvloop, a libuv timer each) costs memory per idle connection and a heap
operation per ping.

Deadlines are grouped in buckets of ``tick`` seconds by rounding *down*, so a bucket opens at its
start, before any of its deadlines is due. Opening moves the bucket's timers into a heap ordered
by deadline, from which each fires at its own time: no deadline fires late (only the loop's
latency), and none more than :data:`RESOLUTION` early. The loop timer is armed for whichever
comes first, the earliest deadline in the heap or the start of the next bucket.

A cancelled timer leaves the wheel at once (its bucket, or the heap's index), so the wheel never
keeps the object a timer belongs to past its cancellation. What the heap may still hold for a
cancelled timer is a ``(deadline, number)`` pair, referencing nothing, until that deadline.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections.abc import Callable

log = logging.getLogger("fastsio.engine")

# Deadlines this close to each other (and to now) fire together: uvloop's timers count in
# milliseconds, so a finer schedule would only wake the loop more often.
RESOLUTION = 0.001
DEFAULT_TICK = 0.1

_FIRING = -1  # Timer._seq of a timer taken out of the heap to fire in the current run


def _nothing() -> None:
    pass


class Timer:
    """One deadline of a wheel: ``start(delay)`` (again: moves it), ``cancel()``.

    When it is due the wheel calls :meth:`fire`, which calls ``callback()``; a subclass may
    override ``fire`` instead (no callback object per timer). The timer keeps its callback until
    :meth:`close`: an owner that holds its timer and whose method is the callback forms a
    reference cycle, which ``close`` breaks at the owner's end.
    """

    __slots__ = ("_due", "_key", "_seq", "_wheel", "callback")

    def __init__(self, wheel: TimerWheel, callback: Callable[[], None]) -> None:
        self._wheel = wheel
        self.callback = callback
        self._due = 0.0
        self._key: int | None = None  # the bucket holding this timer
        self._seq = 0  # > 0: in the heap under that number; _FIRING: about to fire

    def fire(self) -> None:
        self.callback()

    def start(self, delay: float) -> None:
        """Call ``callback()`` in ``delay`` seconds (replacing this timer's deadline)."""
        # TimerWheel.loop() inlined: a handshake starts three timers.
        wheel = self._wheel
        loop = wheel._loop
        if loop is None or not loop.is_running():
            loop = wheel.loop()
        wheel._schedule(self, loop.time() + delay)

    def start_at(self, when: float) -> None:
        """Call ``callback()`` at loop time ``when`` (replacing this timer's deadline)."""
        self._wheel._schedule(self, when)

    def cancel(self) -> None:
        """Out of the wheel at once: its bucket, or the heap's index (see the module)."""
        key = self._key
        if key is not None:
            self._key = None
            bucket = self._wheel._buckets.get(key)
            if bucket is not None:
                # An emptied bucket stays until its time: deleting it would push its key again
                # for the next timer of the same tick.
                bucket.pop(self, None)
        elif self._seq:
            self._wheel._near.pop(self._seq, None)
            self._seq = 0

    def close(self) -> None:
        """Cancel, and let go of the callback (and what it references)."""
        if self._key is not None or self._seq:
            self.cancel()
        self.callback = _nothing

    @property
    def active(self) -> bool:
        """Started, and not fired or cancelled since."""
        return self._key is not None or self._seq != 0

    @property
    def due(self) -> float:
        """The loop time it was last started for."""
        return self._due


class TimerWheel:
    """Every deadline of one server, behind one loop timer (see the module's docstring)."""

    __slots__ = (
        "_buckets",
        "_handle",
        "_heap",
        "_keys",
        "_loop",
        "_near",
        "_opened",
        "_running",
        "_seq",
        "_when",
        "tick",
    )

    def __init__(self, tick: float = DEFAULT_TICK) -> None:
        if not tick > 0:
            raise ValueError("tick must be positive")
        self.tick = tick
        self._buckets: dict[int, dict[Timer, None]] = {}
        self._keys: list[int] = []  # heap of the keys in _buckets
        self._opened: float = -math.inf  # the last bucket key opened into the heap
        self._heap: list[tuple[float, int]] = []  # (deadline, number) of the opened timers
        self._near: dict[int, Timer] = {}  # number -> timer, for those still in the heap
        self._seq = 0
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop. Kept while it runs: ``asyncio.get_running_loop`` costs a
        ``getpid`` system call each time on Python 3.11, and a handshake starts several timers.
        A wheel is used from its loop's thread only, where one loop at a time runs."""
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def timer(self, callback: Callable[[], None]) -> Timer:
        """A timer of this wheel, not started."""
        return Timer(self, callback)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """A timer started for ``delay`` seconds from now."""
        timer = Timer(self, callback)
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self.loop()
        self._schedule(timer, loop.time() + delay)
        return timer

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """A timer started for loop time ``when``."""
        timer = Timer(self, callback)
        self._schedule(timer, when)
        return timer

    # -- internals ---------------------------------------------------------------------------
    def _schedule(self, timer: Timer, due: float) -> None:
        if timer._key is not None or timer._seq:
            timer.cancel()
        timer._due = due
        key = math.floor(due / self.tick)
        if key <= self._opened:
            self._push(timer)
            when = due
        else:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._buckets[key] = {timer: None}
                heapq.heappush(self._keys, key)
            else:
                bucket[timer] = None
            timer._key = key
            when = key * self.tick
        if not self._running and (self._handle is None or when < self._when):
            self._arm(when)

    def _push(self, timer: Timer) -> None:
        self._seq += 1
        seq = self._seq
        timer._key = None
        timer._seq = seq
        self._near[seq] = timer
        heapq.heappush(self._heap, (timer._due, seq))

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._when = when
        self._handle = self.loop().call_at(when, self._run)

    def _run(self) -> None:
        self._handle = None
        loop = self.loop()
        horizon = loop.time() + RESOLUTION
        tick = self.tick
        keys = self._keys
        buckets = self._buckets
        while keys and keys[0] * tick <= horizon:
            key = heapq.heappop(keys)
            self._opened = key
            for timer in buckets.pop(key):
                self._push(timer)
        heap = self._heap
        near = self._near
        due: list[Timer] = []
        while heap and heap[0][0] <= horizon:
            timer_or_none = near.pop(heapq.heappop(heap)[1], None)
            if timer_or_none is not None:
                timer_or_none._seq = _FIRING
                due.append(timer_or_none)
        self._running = True
        try:
            for timer in due:
                # An earlier callback of this run may have cancelled or moved it.
                if timer._seq == _FIRING:
                    timer._seq = 0
                    try:
                        timer.fire()
                    except Exception:
                        log.exception("error in a timer callback")
        finally:
            self._running = False
            self._rearm()

    def _rearm(self) -> None:
        when = math.inf
        if self._heap:
            when = self._heap[0][0]
        if self._keys:
            when = min(when, self._keys[0] * self.tick)
        if when == math.inf:
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
        elif self._handle is None or when < self._when:
            self._arm(when)

    def close(self) -> None:
        """Drop every deadline and the loop timer."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for bucket in self._buckets.values():
            for timer in bucket:
                timer._key = None
        for timer in self._near.values():
            timer._seq = 0
        self._buckets.clear()
        self._keys.clear()
        self._heap.clear()
        self._near.clear()
        self._opened = -math.inf
        self._loop = None

    @property
    def pending(self) -> bool:
        """True while the loop timer is armed."""
        return self._handle is not None

    def __len__(self) -> int:
        """How many timers are started (and not fired or cancelled)."""
        return sum(map(len, self._buckets.values())) + len(self._near)
