"""The server's timer wheel: every deadline fires in order and never late, a cancelled timer
leaves at once; and the deadlines the server keeps with it (pings above all) come on time for
many sessions opened over time, over WebSocket and over polling."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import weakref
from typing import Any

import aiohttp
import pytest

from fastsio.engine.timers import RESOLUTION, TimerWheel
from tests.clients.polling import Polling
from tests.clients.server_side import EngineRecorder
from tests.clients.wire import OP_TEXT, eio_target
from tests.clients.ws import RawWebSocket

# How late a deadline may be seen to fire on this shared 2-core machine, beyond what the loop
# itself was late (LoopLag): the loop's own latency (a wheel bucket is 100 ms, so a bucket-late
# fire would show far beyond this).
LATE = 0.05


class LoopLag:
    """The worst lateness of a plain ``asyncio.sleep`` while the block ran: when this process
    is off the CPU (the machine is shared), every deadline is late by that much, the wheel's
    included. A deadline is late only by more than the loop was."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Future[None] | None = None

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.ensure_future(self._probe())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, loop.time() - start - 0.005)


class Fired:
    """Records when each named callback ran, in order."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.at: dict[str, float] = {}

    def cb(self, name: str) -> Any:
        def fire() -> None:
            self.order.append(name)
            self.at[name] = asyncio.get_running_loop().time()

        return fire


# -- the wheel itself --------------------------------------------------------------------------
async def test_timers_fire_in_deadline_order_and_never_late():
    wheel = TimerWheel(tick=0.05)
    fired = Fired()
    # Deadlines across several buckets, inside one bucket, and out of order of creation.
    delays = {"d": 0.31, "a": 0.02, "c": 0.12, "b": 0.07, "e": 0.3, "f": 0.121, "g": 0.0}
    due = {}
    async with LoopLag() as lag:
        for name, delay in delays.items():
            due[name] = wheel.call_later(delay, fired.cb(name)).due
        await asyncio.sleep(0.45)
    assert fired.order == sorted(delays, key=delays.__getitem__)
    for name in delays:
        assert fired.at[name] >= due[name] - RESOLUTION, name  # never early (beyond resolution)
        late = fired.at[name] - due[name]
        assert late <= LATE + lag.worst, (name, late, lag.worst)
    assert len(wheel) == 0
    await asyncio.sleep(0)
    assert not wheel.pending  # nothing left: no loop timer either
    wheel.close()


async def test_equal_deadlines_fire_in_the_order_they_were_set():
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(tick=0.05)
    fired = Fired()
    when = loop.time() + 0.06
    for name in "abcde":
        wheel.call_at(when, fired.cb(name))
    await asyncio.sleep(0.12)
    assert fired.order == list("abcde")
    wheel.close()


async def test_a_cancelled_timer_does_not_fire_and_is_let_go_at_once():
    wheel = TimerWheel(tick=0.05)
    fired = Fired()

    class Owner:
        def on_timer(self) -> None:
            fired.order.append("owner")

    far_owner, near_owner = Owner(), Owner()
    far_ref, near_ref = weakref.ref(far_owner), weakref.ref(near_owner)
    far = wheel.call_later(5.0, far_owner.on_timer)  # waits in its bucket
    near = wheel.call_later(0.01, near_owner.on_timer)  # its bucket is already open
    keep = wheel.call_later(0.03, fired.cb("kept"))
    await asyncio.sleep(0)
    assert len(wheel) == 3
    far.cancel()
    near.cancel()
    assert not far.active and not near.active and keep.active
    assert len(wheel) == 1
    del far_owner, near_owner, far, near
    gc.collect()
    # Neither owner is referenced by the wheel, long before the deadlines they had.
    assert far_ref() is None and near_ref() is None
    await asyncio.sleep(0.1)
    assert fired.order == ["kept"]
    wheel.close()


async def test_restarting_a_timer_moves_its_deadline():
    wheel = TimerWheel(tick=0.05)
    fired = Fired()
    t = wheel.timer(fired.cb("t"))
    assert not t.active
    t.start(0.05)
    t.start(0.25)  # later: the first deadline is gone
    assert t.active
    async with LoopLag() as lag:
        await asyncio.sleep(0.15)
        assert fired.order == []
        t.start(0.01)  # earlier again, in a bucket already open
        await asyncio.sleep(0.06)
    assert fired.order == ["t"]
    assert fired.at["t"] - t.due <= LATE + lag.worst
    await asyncio.sleep(0.2)
    assert fired.order == ["t"]  # once
    wheel.close()


async def test_an_earlier_deadline_is_not_held_back_by_a_later_one():
    """The defect of the old heartbeat: firing one deadline set a later one, whose loop timer
    then held back every deadline due before it."""
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(tick=0.05)
    fired = Fired()

    def first() -> None:
        fired.cb("first")()
        wheel.call_later(0.4, fired.cb("late"))  # as a ping sets its pong deadline

    wheel.call_later(0.05, first)
    second = wheel.call_later(0.12, fired.cb("second")).due
    async with LoopLag() as lag:
        await asyncio.sleep(0.25)
    assert fired.order == ["first", "second"]
    assert fired.at["second"] <= second + LATE + lag.worst
    assert loop.time() < second + 0.4
    wheel.close()


async def test_callbacks_may_cancel_and_set_timers_of_the_same_run():
    wheel = TimerWheel(tick=0.05)
    fired = Fired()
    when = asyncio.get_running_loop().time() + 0.03
    victims = {}

    def killer() -> None:
        fired.order.append("killer")
        victims["b"].cancel()  # due in this same run: it must not fire
        wheel.call_later(0, fired.cb("now"))  # due at once: in the next run, not this one

    wheel.call_at(when, killer)
    victims["b"] = wheel.call_at(when, fired.cb("b"))
    wheel.call_at(when, fired.cb("c"))
    await asyncio.sleep(0.1)
    assert fired.order == ["killer", "c", "now"]
    wheel.close()


async def test_a_failing_callback_is_logged_and_the_others_still_fire(caplog):
    wheel = TimerWheel(tick=0.05)
    fired = Fired()

    def boom() -> None:
        raise RuntimeError("boom")

    wheel.call_later(0.01, boom)
    wheel.call_later(0.01, fired.cb("after"))
    await asyncio.sleep(0.05)
    assert fired.order == ["after"]
    assert any("timer callback" in r.getMessage() for r in caplog.records)
    wheel.close()


async def test_close_drops_every_timer():
    wheel = TimerWheel(tick=0.05)
    fired = Fired()
    timers = [wheel.call_later(d, fired.cb(str(d))) for d in (0.0, 0.02, 0.3)]
    wheel.close()
    assert not wheel.pending and len(wheel) == 0
    assert not any(t.active for t in timers)
    await asyncio.sleep(0.1)
    assert fired.order == []
    timers[2].start(0.01)  # usable again afterwards
    await asyncio.sleep(0.06)
    assert fired.order == ["0.3"]
    wheel.close()


# -- pings of many sessions opened over time ---------------------------------------------------
async def pinged_websocket(
    url: str,
    interval: float,
    until: float,
    lateness: list[float],
    after_pong: list[float],
    closed: list[str],
) -> None:
    """One raw WebSocket session that answers every ping and records how late each came
    (against the open packet or the last pong; ``after_pong``: only those after a pong)."""
    loop = asyncio.get_running_loop()
    ref_is_pong = False
    async with await RawWebSocket.open(url) as ws:
        assert (await ws.upgrade(eio_target("websocket"))).status == 101
        assert (await ws.recv_text()).startswith("0{")
        ref = loop.time()
        while loop.time() < until:
            try:
                op, payload = await asyncio.wait_for(ws.recv_frame(), until - loop.time() + 1)
            except asyncio.TimeoutError:
                closed.append("no ping")
                return
            if (op, payload) != (OP_TEXT, b"2"):
                closed.append(f"{op} {payload!r}")
                return
            lateness.append(loop.time() - (ref + interval))
            if ref_is_pong:
                after_pong.append(lateness[-1])
            ref_is_pong = True
            ws.send_text("3")
            ref = loop.time()


@pytest.mark.timing
async def test_every_ping_of_sessions_opened_over_time_is_on_time(make_server):
    interval, timeout = 0.3, 0.2
    io, url = await make_server(ping_interval=interval, ping_timeout=timeout)
    rec = EngineRecorder(io)
    loop = asyncio.get_running_loop()
    sessions, spread, run = 120, 1.0, 2.0
    until = loop.time() + spread + run
    lateness: list[float] = []
    after_pong: list[float] = []
    closed: list[str] = []

    async def later(i: int) -> None:
        await asyncio.sleep(spread * i / sessions)
        await pinged_websocket(url, interval, until, lateness, after_pong, closed)

    async with LoopLag() as lag:
        await asyncio.gather(*(later(i) for i in range(sessions)))
    figures = (
        f"{len(lateness)} pings, late by median {statistics.median(lateness) * 1000:.1f} ms, "
        f"max {max(lateness) * 1000:.1f} ms (the loop itself up to {lag.worst * 1000:.1f} ms)"
    )
    print(figures)
    assert closed == []
    # Every session ended when its client went, none on the server's initiative.
    assert {reason for reason, _ in rec.closed.values()} == {"transport close"}
    assert len(lateness) >= sessions * int(run / interval)
    assert max(lateness) <= LATE + lag.worst, figures
    assert statistics.median(lateness) <= 0.02, figures
    # Not early either. (A first ping is timed from the open packet's arrival, some delivery
    # time after the server started counting; a later one from the pong, sent before the
    # server sees it.) The wheel fires up to RESOLUTION early, on a clock that uvloop counts
    # in whole milliseconds.
    assert min(after_pong) >= -RESOLUTION - 0.001 - 1e-9, figures


async def test_polling_ping_pong_cycles_are_on_time(make_server):
    """The Socket.IO v5 suite's "should send ping/pong packets": three cycles of 300 ms on an
    Engine.IO session that never joins a namespace, so all within the 1 s connect timeout."""
    interval, timeout = 0.3, 0.2
    io, url = await make_server(ping_interval=interval, ping_timeout=timeout, connect_timeout=1)
    rec = EngineRecorder(io)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http, LoopLag() as lag:
        start = loop.time()
        p = await Polling.open(http, url)
        ref = loop.time()
        for _ in range(3):
            assert await p.get() == (200, "2")
            assert interval - LATE <= loop.time() - ref <= interval + LATE + lag.worst
            assert await p.post("3") == (200, "ok")
            ref = loop.time()
        assert loop.time() - start < 1.0
    assert rec.closed == {}


async def test_a_polling_session_that_does_not_poll_ends_at_its_deadline(make_server):
    """The Engine.IO v4 suite's "closes the session upon ping timeout": a GET at exactly
    ping_interval + ping_timeout gets 400; one just before finds the session alive."""
    interval, timeout = 0.3, 0.2
    io, url = await make_server(ping_interval=interval, ping_timeout=timeout)
    rec = EngineRecorder(io)
    loop = asyncio.get_running_loop()

    async def until(t: float) -> None:
        # uvloop's timers count whole milliseconds and may wake a hair before ``t``.
        while loop.time() < t:  # noqa: ASYNC110
            await asyncio.sleep(t - loop.time())

    async with aiohttp.ClientSession() as http:
        alive = await Polling.open(http, url)
        alive_open = loop.time()
        gone = await Polling.open(http, url)
        gone_open = loop.time()
        await until(alive_open + interval + timeout - 0.04)
        assert await alive.get() == (200, "2")  # the ping, unanswered so far
        await until(gone_open + interval + timeout)
        status, _ = await gone.get()
        assert status == 400
        assert rec.closed[gone.sid][0] == "ping timeout"
