"""How connection middlewares are run: stepped at once in the CONNECT packet's dispatch, as
handlers are (``Server._call``), so middlewares that never suspend connect the socket with no
task; one that suspends goes on in a task. Either way a middleware's context (contextvars) is
its connection's own: the ``connection`` handlers of that socket see it, nothing else does."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from tests.clients.loops import wait_for

who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def server_task(io) -> asyncio.Task | None:
    """The server's task running now, if the current code runs in one of them."""
    task = asyncio.current_task()
    return task if task in io._tasks else None


async def test_middlewares_that_do_not_suspend_run_without_a_task(make_server, clients):
    io, url = await make_server()
    where: list[object] = []

    @io.use
    def sync_check(socket):
        where.append(("sync", server_task(io)))

    @io.use
    async def async_check(socket):
        if socket.handshake.auth.get("slow"):
            await asyncio.sleep(0)
        where.append(("async", server_task(io)))

    connected: list[str] = []
    io.on("connection", lambda s: connected.append(s.id))
    await clients.connect(url)
    await wait_for(lambda: len(connected) == 1)
    assert where == [("sync", None), ("async", None)]

    # One that suspends: it goes on in a task, and so do the middlewares after it.
    where.clear()
    await clients.connect(url, auth={"slow": True})
    await wait_for(lambda: len(connected) == 2)
    assert where[0] == ("sync", None)
    assert where[1][0] == "async" and isinstance(where[1][1], asyncio.Task)


@pytest.mark.parametrize("suspends", [False, True], ids=["no-suspension", "suspends"])
async def test_middleware_context_is_the_connections_own(make_server, clients, suspends):
    io, url = await make_server()
    at_middleware: list[str] = []
    at_connection: list[tuple[str, str]] = []

    @io.use
    async def name_it(socket):
        if suspends:
            await asyncio.sleep(0.01)
        at_middleware.append(who.get())
        who.set(socket.id)

    io.on("connection", lambda s: at_connection.append((s.id, who.get())))
    io.on("whoami", lambda s: who.get())  # an event's handler: the dispatch's context

    first = await clients.connect(url)
    second = await clients.connect(url)
    await wait_for(lambda: len(at_connection) == 2)
    # Each connection handler saw its own middleware's value; the second middleware did not
    # see the first's.
    assert at_middleware == ["nobody", "nobody"]
    assert sorted(at_connection) == sorted((sid, sid) for sid, _ in at_connection)
    for c in (first, second):
        assert await c.call("whoami", timeout=5) == "nobody"
