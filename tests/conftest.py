"""Shared fixtures: every async test runs on the default asyncio loop and on uvloop, against a
real fastsio server listening on a loopback port; one fixture per kind of client (the toolkit's
raw and recording clients, the official JS client, python-socketio's), each closing its clients
after the test and before the server."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import socketio

import fastsio
from tests.clients.loops import loop_factories
from tests.clients.node import NodeClient, NodeScript
from tests.clients.sio import Clients


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Callable[[], Any]]:
    """Every async test runs once per loop: ``[asyncio]`` and ``[uvloop]`` in its id."""
    return dict(loop_factories())


# -- asyncio's debug mode (PYTHONASYNCIODEBUG=1, a CI pass) -------------------------------------
# The loop's own checks then raise in the test (a call from another thread, a coroutine where a
# callback belongs); what it only logs is taken here: an ERROR from the "asyncio" logger (a task
# destroyed while pending, an exception never retrieved, a callback that raised) fails the test
# it arrived in; the slow callbacks it warns about (over 100 ms) are listed at the end, not
# failed (on a shared 2-core machine any callback can be descheduled for that long).
ASYNCIO_DEBUG = bool(os.environ.get("PYTHONASYNCIODEBUG")) or sys.flags.dev_mode


class AsyncioLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked ``long`` first (stable otherwise): on parallel workers each of them
    then overlaps the many short ones instead of running alone after them."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-asyncio's runner sets the loop's debug flag from its own option (off unless
    # given), which would override the environment for every test loop.
    if ASYNCIO_DEBUG:
        config.option.asyncio_debug = True


asyncio_log = AsyncioLog()
slow_callbacks: list[tuple[str, str]] = []
if ASYNCIO_DEBUG:
    logging.getLogger("asyncio").addHandler(asyncio_log)


@pytest.fixture(autouse=True)
def asyncio_debug_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    if not ASYNCIO_DEBUG:
        yield
        return
    start = len(asyncio_log.records)
    yield
    new = asyncio_log.records[start:]
    slow_callbacks.extend((request.node.nodeid, r.getMessage()) for r in new
                          if r.levelno < logging.ERROR)
    # The message's first lines (debug mode appends where each object was created).
    errors = ["\n".join(r.getMessage().splitlines()[:3]) for r in new
              if r.levelno >= logging.ERROR]
    assert not errors, f"asyncio logged during the test: {errors}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ASYNCIO_DEBUG:
        return
    took = re.compile(r"took (\d+\.\d+) seconds")

    def seconds(message: str) -> float:
        m = took.search(message)
        return float(m.group(1)) if m else 0.0

    terminalreporter.section("asyncio debug mode")
    terminalreporter.write_line(f"{len(slow_callbacks)} slow-callback warnings "
                                f"({len({t for t, _ in slow_callbacks})} tests); the slowest:")
    for test, message in sorted(slow_callbacks, key=lambda x: -seconds(x[1]))[:15]:
        terminalreporter.write_line(f"  {seconds(message):.3f} s {test}: "
                                    f"{message.splitlines()[0][:200]}")


ServerFactory = Callable[..., Awaitable[tuple[fastsio.Server, str]]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """``io, url = await make_server(**options)``: a started server, closed after the test."""
    started: list[fastsio.Server] = []

    async def factory(**options: Any) -> tuple[fastsio.Server, str]:
        io = fastsio.Server(**options)
        port = await io.start("127.0.0.1", 0)
        started.append(io)
        return io, f"http://127.0.0.1:{port}"

    yield factory
    for io in started:
        await io.close()


@pytest.fixture
def echo_server(make_server: ServerFactory) -> ServerFactory:
    """``make_server`` whose ``echo`` event acks its one argument back."""

    async def factory(**options: Any) -> tuple[fastsio.Server, str]:
        io, url = await make_server(**options)

        @io.on("echo")
        def echo(socket: Any, value: Any) -> Any:
            return value

        return io, url

    return factory


@pytest.fixture
async def clients(make_server: ServerFactory) -> AsyncIterator[Clients]:
    """The test's clients (``tests/clients/sio.py``: raw Socket.IO, recording python-socketio,
    bare ``AsyncClient``s), closed after the test, before the server (``make_server`` is torn
    down last)."""
    made = Clients()
    yield made
    await made.close()


JsClientFactory = Callable[..., Awaitable[NodeClient]]
JsScriptFactory = Callable[..., Awaitable[NodeScript]]
PyClientFactory = Callable[..., socketio.AsyncClient]


@pytest.fixture
async def js_client(make_server: Any) -> AsyncIterator[JsClientFactory]:
    """``client = await js_client(url, namespace="/", acks={...}, transports=[...], auth={...})``:
    a ``socket.io-client`` socket in a Node process, ended after the test (before the server).
    Without Node or the npm package the test fails (see ``require_node``), it never skips."""
    clients: list[NodeClient] = []

    async def factory(url: str, namespace: str = "/", **kwargs: Any) -> NodeClient:
        client = await NodeClient.start(url, namespace, **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def js_script(make_server: Any) -> AsyncIterator[JsScriptFactory]:
    """``script = await js_script("recovery.mjs", *args)``: a script of ``tests/clients/js``
    (``socket.io-client`` sockets it drives itself), killed after the test if still running
    (before the server)."""
    scripts: list[NodeScript] = []

    async def factory(name: str, *args: str) -> NodeScript:
        script = await NodeScript.start(name, *args)
        scripts.append(script)
        return script

    yield factory
    for script in scripts:
        await script.close()


@pytest.fixture
async def py_client(make_server: Any) -> AsyncIterator[PyClientFactory]:
    """``client = py_client()``: a python-socketio ``AsyncClient`` (no reconnection),
    disconnected after the test (before the server)."""
    clients: list[socketio.AsyncClient] = []
    sessions: list[aiohttp.ClientSession] = []

    def factory(**kwargs: Any) -> socketio.AsyncClient:
        # The test owns the HTTP session: python-socketio drops (without closing) the one it
        # makes itself when a server's close packet arrives on a GET of its own, as the
        # official server sends it after a DISCONNECT.
        session = aiohttp.ClientSession()
        sessions.append(session)
        client = socketio.AsyncClient(reconnection=False, http_session=session, **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.shutdown()
    for session in sessions:
        await session.close()
