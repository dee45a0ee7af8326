"""Clients for the namespace and messaging tests.

* :class:`SioClient`: python-socketio's ``AsyncClient`` (one Engine.IO connection, one or more
  namespaces multiplexed over it) that records every event it receives, per namespace.
* :class:`RawClient`: one WebSocket driven by hand, for the cases where the exact bytes matter
  or where a client must do what python-socketio never does (stay silent on an ack request,
  never send a CONNECT packet, send ``40/,``).
* :class:`Clients`: creates both kinds and closes them after the test, before the server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiohttp
import socketio

TIMEOUT = 5.0


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"


async def until(predicate: Callable[[], bool], changed: asyncio.Event, what: str) -> None:
    """Wait (at most ``TIMEOUT`` seconds) until ``predicate()``, re-checking when ``changed``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not predicate():
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), remaining)
        except asyncio.TimeoutError:
            pass


class SioClient:
    """A python-socketio ``AsyncClient`` (no reconnection) recording what it receives."""

    def __init__(self, namespaces: Sequence[str] = ("/",)) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.namespaces = list(namespaces)
        self.events: list[tuple[str, str, tuple[Any, ...]]] = []  # (namespace, event, args)
        self.disconnects: list[tuple[str, Any]] = []
        self.connect_errors: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()
        for ns in self.namespaces:
            self.client.on("*", self._recorder(ns), namespace=ns)
            self.client.on("disconnect", self._on_disconnect(ns), namespace=ns)
            self.client.on("connect_error", self._on_connect_error(ns), namespace=ns)

    # -- recording -------------------------------------------------------------------------------
    def _recorder(self, ns: str) -> Callable[..., None]:
        def record(event: str, *args: Any) -> None:
            self.events.append((ns, event, args))
            self.changed.set()

        return record

    def _on_disconnect(self, ns: str) -> Callable[..., None]:
        def on_disconnect(*reason: Any) -> None:
            self.disconnects.append((ns, reason[0] if reason else None))
            self.changed.set()

        return on_disconnect

    def _on_connect_error(self, ns: str) -> Callable[..., None]:
        def on_connect_error(*data: Any) -> None:
            self.connect_errors.append((ns, data[0] if data else None))
            self.changed.set()

        return on_connect_error

    def answer(self, event: str, fn: Callable[..., Any], ns: str = "/") -> None:
        """Handle ``event`` with ``fn`` (its return value is the ack); still recorded."""

        def handler(*args: Any) -> Any:
            self.events.append((ns, event, args))
            self.changed.set()
            return fn(*args)

        self.client.on(event, handler, namespace=ns)

    def got(self, event: str | None = None, ns: str = "/") -> list[Any]:
        """The argument tuples of every ``event`` received in ``ns`` (every event name when
        ``event`` is None)."""
        if event is None:
            return [e for n, e, _ in self.events if n == ns]
        return [a for n, e, a in self.events if n == ns and e == event]

    async def wait(self, event: str, ns: str = "/", count: int = 1) -> tuple[Any, ...]:
        """The arguments of the ``count``-th ``event`` received in ``ns``."""
        await until(lambda: len(self.got(event, ns)) >= count, self.changed, f"{ns} {event}")
        args: tuple[Any, ...] = self.got(event, ns)[count - 1]
        return args

    async def wait_disconnect(self, ns: str = "/") -> Any:
        await until(lambda: any(n == ns for n, _ in self.disconnects), self.changed, "disconnect")
        return next(r for n, r in self.disconnects if n == ns)

    # -- acting ----------------------------------------------------------------------------------
    async def connect(
        self, url: str, transports: Sequence[str] | None = ("websocket",), auth: Any = None
    ) -> None:
        await self.client.connect(
            url,
            namespaces=self.namespaces,
            transports=list(transports) if transports is not None else None,
            auth=auth,
            wait_timeout=TIMEOUT,
        )

    def sid(self, ns: str = "/") -> str:
        sid = self.client.get_sid(ns)
        assert sid, f"not connected to {ns}"
        return str(sid)

    @staticmethod
    def _data(args: tuple[Any, ...]) -> Any:
        if not args:
            return None
        return args[0] if len(args) == 1 else args

    async def emit(self, event: str, *args: Any, ns: str = "/") -> None:
        await self.client.emit(event, self._data(args), namespace=ns)

    async def call(self, event: str, *args: Any, ns: str = "/") -> Any:
        """Emit with an ack request and return the ack's arguments."""
        return await self.client.call(event, self._data(args), namespace=ns, timeout=TIMEOUT)

    async def close(self) -> None:
        await self.client.shutdown()


class RawClient:
    """One Engine.IO WebSocket session: Socket.IO packets in and out as exact text/bytes."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.sids: dict[str, str] = {}

    @classmethod
    async def open(cls, url: str) -> RawClient:
        """Open the Engine.IO session (no namespace joined yet)."""
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(ws_url(url))
        except BaseException:
            await session.close()
            raise
        raw = cls(session, ws)
        opened = await raw.recv()
        assert isinstance(opened, str) and opened.startswith("0{"), opened
        return raw

    @staticmethod
    def connect_packet(nsp: str = "/", auth: Any = None) -> str:
        prefix = "40" if nsp == "/" else f"40{nsp},"
        return prefix + (json.dumps(auth, separators=(",", ":")) if auth is not None else "")

    async def connect(self, nsp: str = "/", auth: Any = None) -> str:
        """Join ``nsp``; returns the socket id the server sent."""
        await self.send(self.connect_packet(nsp, auth))
        reply = await self.recv()
        prefix = "40" if nsp == "/" else f"40{nsp},"
        assert isinstance(reply, str) and reply.startswith(prefix + "{"), reply
        sid = str(json.loads(reply[len(prefix):])["sid"])
        self.sids[nsp] = sid
        return sid

    @property
    def sid(self) -> str:
        return self.sids["/"]

    async def send(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def recv(self, timeout: float = TIMEOUT) -> str | bytes:
        """The next Engine.IO message from the server (pings are answered, never returned)."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "2":
                    await self.ws.send_str("3")
                    continue
                return str(msg.data)
            if msg.type == aiohttp.WSMsgType.BINARY:
                return bytes(msg.data)
            raise ConnectionError(f"connection ended: {msg.type}")

    async def recv_until(self, last: str) -> list[str | bytes]:
        """Every message up to and including ``last``."""
        out: list[str | bytes] = []
        while True:
            msg = await self.recv()
            out.append(msg)
            if msg == last:
                return out

    async def closed(self, timeout: float = TIMEOUT) -> bool:
        """True once the server has closed the connection (messages before that are ignored)."""
        try:
            while True:
                msg = await self.ws.receive(timeout=timeout)
                if msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.ERROR,
                ):
                    return True
        except asyncio.TimeoutError:
            return False

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


class Clients:
    """Creates clients for one test and closes them all at the end."""

    def __init__(self) -> None:
        self._made: list[SioClient | RawClient] = []

    async def sio(
        self,
        url: str,
        namespaces: Sequence[str] = ("/",),
        *,
        transports: Sequence[str] | None = ("websocket",),
        auth: Any = None,
        connect: bool = True,
    ) -> SioClient:
        """A python-socketio client, connected to ``namespaces`` unless ``connect`` is False."""
        client = SioClient(namespaces)
        self._made.append(client)
        if connect:
            await client.connect(url, transports, auth)
        return client

    async def refused(self, url: str, nsp: str, auth: Any = None) -> SioClient:
        """A python-socketio client whose connection to ``nsp`` must be refused."""
        client = await self.sio(url, [nsp], connect=False)
        try:
            await client.connect(url, auth=auth)
        except socketio.exceptions.ConnectionError:
            pass
        else:
            raise AssertionError(f"{nsp}: the connection was accepted")
        return client

    async def raw(self, url: str, namespaces: Iterable[str] | None = ("/",)) -> RawClient:
        """A raw client that joined ``namespaces`` one after the other (None: none)."""
        client = await RawClient.open(url)
        self._made.append(client)
        for nsp in namespaces or ():
            await client.connect(nsp)
        return client

    async def close(self) -> None:
        for client in reversed(self._made):
            await client.close()
        self._made.clear()


async def settle(io: Any, *clients: SioClient, ns: str = "/") -> None:
    """Emit a ``marker`` straight to each client's socket in ``ns`` and wait for it: once it is
    there, every packet the server sent that client before it has arrived too."""
    counts = []
    for client in clients:
        counts.append(len(client.got("marker", ns)) + 1)
        io.of(ns).sockets[client.sid(ns)].emit("marker")
    for client, count in zip(clients, counts, strict=True):
        await client.wait("marker", ns, count)


def names(client: SioClient, ns: str = "/") -> list[str]:
    """The names of the events ``client`` received in ``ns``, in order."""
    return list(client.got(None, ns))
