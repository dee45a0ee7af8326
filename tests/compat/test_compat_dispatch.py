"""How ``fastsio.compat`` finds and calls python-socketio handlers, in-process on fastsio's own
front with python-socketio's client: each event is looked up by python-socketio's rules, so a
handler replaced, added or removed between two events counts from the next one (whichever way it
got there: ``sio.on``, ``sio.handlers``, a class-based namespace's ``on_<event>``), and the
``connect``/``disconnect`` handlers are looked up per connection in the same way."""

from __future__ import annotations

import asyncio
import logging

import pytest
import socketio as psio

from fastsio import compat as socketio
from fastsio.compat.server import _MAX_RUNNERS
from tests.clients.loops import wait_for

TIMEOUT = 5


async def started(**options):
    sio = socketio.AsyncServer(**options)
    port = await sio.start()
    return sio, f"http://127.0.0.1:{port}"


async def client(url: str, **kwargs) -> psio.AsyncClient:
    c = psio.AsyncClient(reconnection=False)
    await c.connect(url, transports=["websocket"], wait_timeout=TIMEOUT, **kwargs)
    return c


async def test_handler_changes_count_from_the_next_event():
    sio, url = await started()

    @sio.on("ask")
    async def first(sid, x):
        return ["first", sid, x]

    try:
        c = await client(url)
        sid = c.get_sid()
        assert await c.call("ask", 1, timeout=TIMEOUT) == ["first", sid, 1]
        assert await c.call("ask", 2, timeout=TIMEOUT) == ["first", sid, 2]

        # Registered again with sio.on: the new handler from the next event.
        sio.on("ask", lambda sid, x: ["second", x])
        assert await c.call("ask", 3, timeout=TIMEOUT) == ["second", 3]

        # Put in sio.handlers directly (python-socketio reads that table per event too).
        sio.handlers["/"]["ask"] = lambda sid, x: ["third", x]
        assert await c.call("ask", 4, timeout=TIMEOUT) == ["third", 4]

        # Removed: a catch-all handler registered meanwhile gets it, with the event's name.
        del sio.handlers["/"]["ask"]
        sio.on("*", lambda event, sid, x: ["star", event, x])
        assert await c.call("ask", 5, timeout=TIMEOUT) == ["star", "ask", 5]

        # A handler for the event again: it wins over the catch-all.
        sio.on("ask", lambda sid, x: ["fourth", x])
        assert await c.call("ask", 6, timeout=TIMEOUT) == ["fourth", 6]
        await c.disconnect()
    finally:
        await sio.shutdown()


async def test_class_namespace_methods_are_looked_up_per_event():
    sio, url = await started()

    class Chat(socketio.AsyncNamespace):
        async def on_ask(self, sid, x):
            return ["method", x]

    chat = Chat("/")
    sio.register_namespace(chat)
    try:
        c = await client(url)
        assert await c.call("ask", 1, timeout=TIMEOUT) == ["method", 1]
        # python-socketio's trigger_event finds on_<event> by name at each event.
        chat.on_ask = lambda sid, x: ["replaced", x]  # type: ignore[method-assign]
        assert await c.call("ask", 2, timeout=TIMEOUT) == ["replaced", 2]
        chat.on_later = lambda sid: "added"  # type: ignore[attr-defined]
        assert await c.call("later", timeout=TIMEOUT) == "added"

        # A namespace object registered again for "/": the new one answers.
        class Other(socketio.AsyncNamespace):
            def on_ask(self, sid, x):
                return ["other", x]

        sio.register_namespace(Other("/"))
        assert await c.call("ask", 3, timeout=TIMEOUT) == ["other", 3]
        await c.disconnect()
    finally:
        await sio.shutdown()


async def test_catch_all_answers_any_number_of_event_names():
    """Every name a client sends resolves to a catch-all handler: each still gets its own
    answer past the number of events whose lookups are kept, and what is kept stays bounded."""
    sio, url = await started()

    @sio.on("*")
    async def any_event(event, sid, x):
        return [event, x]

    try:
        c = await client(url)
        names = [f"e{i}" for i in range(_MAX_RUNNERS + 100)]
        for start in range(0, len(names), 200):
            batch = names[start:start + 200]
            got = await asyncio.gather(
                *(c.call(name, i, timeout=TIMEOUT) for i, name in enumerate(batch)))
            assert got == [[name, i] for i, name in enumerate(batch)]
        # Names seen before the bound, and after it, once more.
        assert await c.call("e0", "again", timeout=TIMEOUT) == ["e0", "again"]
        assert await c.call(names[-1], "again", timeout=TIMEOUT) == [names[-1], "again"]
        assert len(sio.io.sockets._handlers) <= _MAX_RUNNERS
        await c.disconnect()
    finally:
        await sio.shutdown()


async def test_async_handlers_is_read_per_event():
    sio, url = await started()
    order = []

    @sio.event
    async def work(sid, n):
        await asyncio.sleep(0.05 if n == 0 else 0)
        order.append(n)

    try:
        c = await client(url)
        await c.emit("work", 0)
        await c.emit("work", 1)
        await wait_for(lambda: len(order) == 2)
        assert order == [1, 0]  # concurrent (the default): the quick one first
        sio.async_handlers = False
        order.clear()
        await c.emit("work", 0)
        await c.emit("work", 1)
        await wait_for(lambda: len(order) == 2)
        assert order == [0, 1]  # one at a time, in order
        await c.disconnect()
    finally:
        await sio.shutdown()


async def test_handler_errors_are_logged_with_the_handlers_name(caplog):
    sio, url = await started()

    @sio.event
    def breaks(sid):
        raise RuntimeError("boom")

    @sio.event
    async def breaks_async(sid):
        raise RuntimeError("boom")

    try:
        c = await client(url)
        with caplog.at_level(logging.ERROR, logger="fastsio"):
            await c.emit("breaks")
            await c.emit("breaks_async")
            await wait_for(lambda: len([r for r in caplog.records if r.exc_info]) == 2)
        messages = [r.getMessage() for r in caplog.records if r.exc_info]
        assert messages == ["error in handler breaks", "error in handler breaks_async"]
        with pytest.raises(psio.exceptions.TimeoutError):  # no ack for a handler that raised
            await c.call("breaks", timeout=0.3)
        await c.disconnect()
    finally:
        await sio.shutdown()


async def test_connect_and_disconnect_handlers_are_looked_up_per_connection():
    sio, url = await started()
    seen = []
    environs = []
    try:
        # No connect handler: accepted; its environ is kept while connected, gone after.
        c1 = await client(url + "?n=1")
        sid1 = c1.get_sid()
        environ = sio.get_environ(sid1)
        assert "n=1" in environ["QUERY_STRING"]
        assert environ["REMOTE_ADDR"] == "127.0.0.1"
        assert sio.get_environ(sid1) is environ  # one dict per client, as python-socketio
        await c1.disconnect()
        await wait_for(lambda: not sio.manager.is_connected(sid1, "/"))
        assert sio.get_environ(sid1) is None
        assert sio.environ == {}

        # Handlers registered since: the next connection gets them.
        @sio.event
        async def connect(sid, environ, auth):
            seen.append(("connect", environ["QUERY_STRING"], auth))
            environs.append(environ)
            await sio.enter_room(sid, "lobby")
            if auth == {"no": True}:
                raise socketio.exceptions.ConnectionRefusedError("not you")

        @sio.event
        async def disconnect(sid, reason):
            seen.append(("disconnect", reason, sio.rooms(sid)))

        with pytest.raises(psio.exceptions.ConnectionError):
            await client(url + "?n=2", auth={"no": True})
        assert len(seen) == 1
        assert seen[0][0] == "connect" and "n=2" in seen[0][1] and seen[0][2] == {"no": True}
        assert sio.environ == {}  # refused: nothing kept
        c3 = await client(url + "?n=3", auth={"ok": True})
        sid3 = c3.get_sid()
        assert sio.get_environ(sid3) is environs[1]  # the dict its connect handler got
        await c3.disconnect()
        await wait_for(lambda: len(seen) == 3)
        assert seen[1][0] == "connect" and "n=3" in seen[1][1] and seen[1][2] == {"ok": True}
        # (python-socketio's client closes the transport right after its DISCONNECT packet:
        # either may be first.) The handler still sees the rooms it had.
        assert seen[2][0] == "disconnect"
        assert seen[2][1] in ("client disconnect", "transport close")
        assert seen[2][2] == [sid3, "lobby"]
        assert sio.environ == {}

        # Removed again: connections are accepted with no handler, and leave quietly.
        del sio.handlers["/"]["connect"]
        del sio.handlers["/"]["disconnect"]
        c4 = await client(url, auth={"no": True})
        await c4.disconnect()
        await wait_for(lambda: sio.environ == {})
        assert len(seen) == 3
    finally:
        await sio.shutdown()


async def test_registries_written_directly_count_from_the_next_event():
    """Whatever python-socketio's registries hold when an event arrives answers it, even when
    an app puts plain dicts of its own into them or replaces them (the facade keeps what it
    resolved only while it can see every change)."""
    sio, url = await started()
    sio.on("ask", lambda sid, x: ["first", x])
    try:
        c = await client(url)
        assert await c.call("ask", 1, timeout=TIMEOUT) == ["first", 1]
        # A plain dict of the app's own, changed after it was put in.
        mine: dict = {"ask": lambda sid, x: ["mine", x]}
        sio.handlers["/"] = mine
        assert await c.call("ask", 2, timeout=TIMEOUT) == ["mine", 2]
        mine["ask"] = lambda sid, x: ["mine again", x]
        assert await c.call("ask", 3, timeout=TIMEOUT) == ["mine again", 3]
        mine["other"] = lambda sid: "other"
        assert await c.call("other", timeout=TIMEOUT) == "other"
        # The whole table replaced, then changed in place.
        table: dict = {"/": {"ask": lambda sid, x: ["table", x]}}
        sio.handlers = table
        assert await c.call("ask", 4, timeout=TIMEOUT) == ["table", 4]
        table["/"]["ask"] = lambda sid, x: ["table again", x]
        assert await c.call("ask", 5, timeout=TIMEOUT) == ["table again", 5]
        del table["/"]
        # No handler any more, and no catch-all: the ack request stays unanswered.
        with pytest.raises(psio.exceptions.TimeoutError):
            await c.call("ask", 6, timeout=0.3)

        class Chat(socketio.AsyncNamespace):
            def on_ask(self, sid, x):
                return ["class", x]

        # A class-based namespace put in namespace_handlers directly.
        sio.namespace_handlers["/"] = Chat("/")
        assert await c.call("ask", 7, timeout=TIMEOUT) == ["class", 7]
        del sio.namespace_handlers["/"]
        with pytest.raises(psio.exceptions.TimeoutError):
            await c.call("ask", 8, timeout=0.3)
        await c.disconnect()
    finally:
        await sio.shutdown()
