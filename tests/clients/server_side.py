"""The server's side of a test: what a test needs to see inside a running server (the
per-connection objects still alive, the Engine.IO sessions and why they closed, the sockets
that connect and leave). Everything
else in the toolkit is a client that knows nothing of fastsio's internals."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import fastsio
from fastsio.client import Client
from fastsio.engine.http import HttpConnection
from fastsio.engine.polling import PollingTransport
from fastsio.engine.socket import EngineSocket
from fastsio.engine.websocket import WebSocketTransport
from tests.clients.wire import TIMEOUT


def server_objects(io: fastsio.Server) -> dict[str, int]:
    """How many of the server's per-connection objects are still alive (after a collection).
    EngineSocket, Client, transports and HTTP connections have no ``__weakref__`` slot (memory
    per connection), so they are found through the garbage collector instead."""
    gc.collect()
    engine = io.engine
    counts = {"EngineSocket": 0, "Client": 0, "Socket": 0, "transport": 0, "HttpConnection": 0}
    for obj in gc.get_objects():
        kind = type(obj)
        if kind is EngineSocket and obj.server is engine:
            counts["EngineSocket"] += 1
        elif kind is Client and obj.server is io:
            counts["Client"] += 1
        elif issubclass(kind, fastsio.Socket) and obj.nsp.server is io:
            counts["Socket"] += 1
        elif issubclass(kind, (WebSocketTransport, PollingTransport)):  # not picows's proxies
            if getattr(obj.socket, "server", None) is engine:
                counts["transport"] += 1
        elif kind is HttpConnection and obj.server is engine:
            counts["HttpConnection"] += 1
    return {k: v for k, v in counts.items() if v}


class EngineRecorder:
    """Takes the place of the Socket.IO layer on ``io.engine``: records every Engine.IO session,
    the messages it got and why it closed; echoes every message back when ``echo`` is true."""

    def __init__(self, io: Any, echo: bool = True) -> None:
        self.echo = echo
        self.sockets: dict[str, Any] = {}
        self.messages: dict[str, list[tuple[bytes, bool]]] = {}
        self.closed: dict[str, tuple[str, str | None]] = {}
        self.engine = io.engine
        io.engine.on_connection = self._on_connection

    def _on_connection(self, sock: Any) -> None:
        sid = sock.sid
        self.sockets[sid] = sock
        self.messages[sid] = []

        def on_message(data: bytes, binary: bool) -> None:
            self.messages[sid].append((data, binary))
            if self.echo:
                sock.send(data if binary else data[1:].decode())

        def on_close(reason: str, description: str | None) -> None:
            self.closed[sid] = (reason, description)

        sock.on_message = on_message
        sock.on_close = on_close

    async def wait_closed(self, sid: str, timeout: float = TIMEOUT) -> str:
        """The close reason of session ``sid`` once it closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while sid not in self.closed:
            if loop.time() > deadline:
                raise AssertionError(f"session {sid} still open")
            await asyncio.sleep(0.01)
        return self.closed[sid][0]


def track_connections(nsp: Any) -> asyncio.Queue[fastsio.Socket]:
    """A queue that gets every socket connecting to ``nsp``."""
    queue: asyncio.Queue[fastsio.Socket] = asyncio.Queue()
    nsp.on("connection", queue.put_nowait)
    return queue


def track_disconnections(nsp: Any) -> asyncio.Queue[tuple[str, str]]:
    """A queue that gets ``(socket.id, reason)`` for every socket leaving ``nsp``."""
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    nsp.on("disconnect", lambda socket, reason: queue.put_nowait((socket.id, reason)))
    return queue


async def get(queue: asyncio.Queue[Any], timeout: float = TIMEOUT) -> Any:
    """The next item of a tracking queue; fails the test after ``timeout`` seconds."""
    return await asyncio.wait_for(queue.get(), timeout)
