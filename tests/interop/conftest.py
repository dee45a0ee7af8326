"""Fixtures for the interop tests: real clients (the official JS one, python-socketio's) that are
stopped before the server the test started."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import socketio

from .node import NodeClient

JsClientFactory = Callable[..., Awaitable[NodeClient]]
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
