"""Coroutine handlers: stepped in the packet's dispatch up to their first suspension (no task
when they never suspend), continued by a task when they do."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

import fastsio
from tests.clients.loops import wait_for
from tests.clients.sio import RawClient

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def test_async_handler_that_never_suspends_acks_from_the_dispatch(make_server, clients):
    io, url = await make_server()
    tasks: list[Any] = []

    @io.on("double")
    async def double(socket, n):
        tasks.append(asyncio.current_task())
        return n * 2

    c = await clients.raw(url)
    await c.send('425["double",21]')
    assert await c.recv() == "435[42]"
    # Run inside the dispatch of the packet (a transport callback), not in a task of its own.
    assert tasks == [None]


async def test_async_handler_that_awaits_acks_later_and_does_not_hold_up_others(
    make_server, clients
):
    io, url = await make_server()
    seen: list[tuple[str, Any, str]] = []
    release = asyncio.Event()

    @io.on("slow")
    async def slow(socket, x):
        VAR.set("slow")
        seen.append(("before", asyncio.current_task(), VAR.get()))
        await release.wait()
        await asyncio.sleep(0.01)
        seen.append(("after", asyncio.current_task(), VAR.get()))
        return x + 1

    @io.on("fast")
    def fast(socket):
        release.set()
        return VAR.get()

    c = await clients.raw(url)
    await c.send('420["slow",1]')
    await c.send('421["fast"]')
    # The slow one's context is its own: the sync handler does not see what it set.
    assert await c.recv() == '431["unset"]'
    assert await c.recv() == "430[2]"
    assert [s[0] for s in seen] == ["before", "after"]
    assert seen[0][1] is None
    assert isinstance(seen[1][1], asyncio.Task)  # the rest ran in a task...
    assert seen[0][2] == seen[1][2] == "slow"  # ...in the same context as its first step


async def test_errors_before_and_after_the_first_await_are_logged(make_server, clients, caplog):
    io, url = await make_server()

    @io.on("early")
    async def early(socket):
        raise ValueError("early failure")

    @io.on("late")
    async def late(socket):
        await asyncio.sleep(0.01)
        raise ValueError("late failure")

    @io.on("ping2")
    async def ping2(socket):
        await asyncio.sleep(0)
        return "pong"

    c = await clients.raw(url)
    with caplog.at_level(logging.ERROR, "fastsio"):
        await c.send('420["early"]')
        await c.send('421["late"]')
        await c.send('422["ping2"]')
        assert await c.recv() == '432["pong"]'
        await wait_for(lambda: "late failure" in caplog.text)
    errors = [r for r in caplog.records if r.name == "fastsio" and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["error in handler early", "error in handler late"]
    assert [str(r.exc_info[1]) for r in errors if r.exc_info] == ["early failure", "late failure"]
    # Neither failure acked nor closed the connection: it still answers.
    await c.send('423["ping2"]')
    assert await c.recv() == '433["pong"]'


async def test_events_of_one_client_start_in_arrival_order(make_server, clients):
    io, url = await make_server()
    started: list[int] = []

    @io.on("sync")
    def on_sync(socket, i):
        started.append(i)
        return i

    @io.on("async")
    async def on_async(socket, i):
        started.append(i)
        if i % 3 == 0:
            await asyncio.sleep(0.001 * (10 - i))
        return i

    c = await clients.raw(url)
    for i in range(10):
        await c.send(f'42{i}["{"async" if i % 2 else "sync"}",{i}]')
    acks = {await c.recv() for _ in range(10)}
    assert acks == {f"43{i}[{i}]" for i in range(10)}
    assert started == list(range(10))


async def test_a_handler_that_cancels_itself_is_not_logged(make_server, clients, caplog):
    io, url = await make_server()

    @io.on("quit")
    async def quit_(socket):
        raise asyncio.CancelledError

    @io.on("ok")
    async def ok(socket):
        return 1

    c = await clients.raw(url)
    with caplog.at_level(logging.ERROR, "fastsio"):
        await c.send('420["quit"]')
        await c.send('421["ok"]')
        assert await c.recv() == "431[1]"
    assert not [r for r in caplog.records if r.name == "fastsio"]


async def test_close_cancels_a_suspended_handler_and_returns():
    io = fastsio.Server()
    port = await io.start("127.0.0.1", 0)
    entered = asyncio.Event()
    outcome: list[str] = []

    @io.on("hang")
    async def hang(socket):
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    c = await RawClient.open(f"http://127.0.0.1:{port}")
    try:
        await c.connect()
        await c.send('420["hang"]')
        await asyncio.wait_for(entered.wait(), 5)
        await asyncio.wait_for(io.close(), 5)
        assert outcome == ["cancelled"]
        assert await c.closed()
    finally:
        await c.close()
