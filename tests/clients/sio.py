"""Socket.IO clients.

* :class:`RawClient`: one Engine.IO WebSocket session driven by hand, Socket.IO packets in and
  out as exact text/bytes, for the cases where the bytes matter or where a client must do what
  python-socketio never does (stay silent on an ack request, never send CONNECT, send ``40/,``,
  send malformed packets, acknowledge late). Heartbeats are answered and never returned.
* :class:`SioClient`: python-socketio's ``AsyncClient`` (one Engine.IO connection, one or more
  namespaces multiplexed over it) that records every event it receives, per namespace.
* :class:`Clients`: makes every kind for one test (also bare ``AsyncClient``s) and closes them
  all after it, before the server; :func:`sio_clients` is the same as a context manager.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import socketio

from tests.clients.loops import until
from tests.clients.wire import TIMEOUT, connect_packet, nsp_prefix, ws_url

CLOSED = (
    aiohttp.WSMsgType.CLOSE,
    aiohttp.WSMsgType.CLOSED,
    aiohttp.WSMsgType.CLOSING,
    aiohttp.WSMsgType.ERROR,
)


class RawClient:
    """One Engine.IO WebSocket session. ``send`` writes an Engine.IO message as is (``42[...]``
    is a Socket.IO EVENT; bytes are a binary attachment); ``recv`` returns the next text
    (``str``) or binary (``bytes``) message, answering and skipping heartbeats."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.sids: dict[str, str] = {}

    @classmethod
    async def open(cls, url: str, query: str = "", **headers: str) -> RawClient:
        """Open the Engine.IO session (no namespace joined yet); ``query`` is appended to the
        URL's query string as is, ``headers`` go with the upgrade request."""
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(
                ws_url(url) + (f"&{query}" if query else ""), headers=headers or None
            )
        except BaseException:
            await session.close()
            raise
        raw = cls(session, ws)
        opened = await raw.recv()
        assert isinstance(opened, str) and opened.startswith("0{"), opened
        return raw

    @property
    def sid(self) -> str:
        """The socket id in ``/``."""
        return self.sids["/"]

    async def connect(self, nsp: str = "/", auth: Any = None) -> str:
        """Join ``nsp``; returns the socket id the server sent (fails on CONNECT_ERROR)."""
        reply = await self.try_connect(nsp, auth)
        prefix = "40" + nsp_prefix(nsp)
        assert reply.startswith(prefix + "{"), reply
        sid = str(json.loads(reply[len(prefix):])["sid"])
        self.sids[nsp] = sid
        return sid

    async def try_connect(self, nsp: str = "/", auth: Any = None) -> str:
        """Send CONNECT for ``nsp`` and return the server's reply (CONNECT or CONNECT_ERROR)."""
        await self.send(connect_packet(nsp, auth))
        return await self.recv_text()

    async def send(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def recv(self, timeout: float = TIMEOUT) -> str | bytes:
        """The next message from the server; ``ConnectionError`` once the connection ended."""
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

    async def recv_text(self, timeout: float = TIMEOUT) -> str:
        got = await self.recv(timeout)
        assert isinstance(got, str), got
        return got

    async def recv_until(self, last: str) -> list[str | bytes]:
        """Every message up to and including ``last``."""
        out: list[str | bytes] = []
        while True:
            msg = await self.recv()
            out.append(msg)
            if msg == last:
                return out

    async def silent(self, timeout: float) -> bool:
        """True when nothing but heartbeats arrives for ``timeout`` seconds."""
        try:
            got = await self.recv(timeout)
        except asyncio.TimeoutError:
            return True
        raise AssertionError(f"unexpected message: {got!r}")

    async def closed(self, timeout: float = TIMEOUT) -> bool:
        """True once the server has closed the connection, False when it has not within
        ``timeout`` (messages before the close are ignored)."""
        try:
            while True:
                msg = await self.ws.receive(timeout=timeout)
                if msg.type in CLOSED:
                    return True
        except asyncio.TimeoutError:
            return False

    async def until_closed(self, timeout: float = TIMEOUT) -> list[str | bytes]:
        """Wait for the server to close the connection (a timeout fails); returns what arrived
        before."""
        got: list[str | bytes] = []
        while True:
            try:
                got.append(await self.recv(timeout))
            except ConnectionError:
                return got

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


class SioClient:
    """A python-socketio ``AsyncClient`` (a new one without reconnection, or ``client``)
    recording what it receives in ``namespaces`` (events that have a handler of their own, as
    with :meth:`answer`, are recorded by it)."""

    def __init__(self, namespaces: Sequence[str] = ("/",),
                 client: socketio.AsyncClient | None = None) -> None:
        self.client = client or socketio.AsyncClient(reconnection=False, handle_sigint=False)
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
        self, url: str, transports: Sequence[str] | None = ("websocket",), auth: Any = None,
        **options: Any,
    ) -> None:
        """Connect to every namespace given at creation; ``options`` go to python-socketio's
        ``connect`` (``socketio_path``, ``headers``...)."""
        await self.client.connect(
            url,
            namespaces=self.namespaces,
            transports=list(transports) if transports is not None else None,
            auth=auth,
            wait_timeout=TIMEOUT,
            **options,
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


class Clients:
    """Every client a test opens, closed (in reverse order) when :meth:`close` is called."""

    def __init__(self) -> None:
        self._made: list[SioClient | RawClient | socketio.AsyncClient] = []

    def new(self, **options: Any) -> socketio.AsyncClient:
        """An unconnected python-socketio client (no reconnection unless asked)."""
        options.setdefault("reconnection", False)
        options.setdefault("handle_sigint", False)
        client = socketio.AsyncClient(**options)
        self._made.append(client)
        return client

    async def connect(
        self,
        url: str,
        client: socketio.AsyncClient | None = None,
        *,
        transports: Sequence[str] | None = ("websocket",),
        handlers: dict[str, Callable[..., Any]] | None = None,
        **connect_options: Any,
    ) -> socketio.AsyncClient:
        """Connect ``client`` (a new one when omitted), over WebSocket only by default
        (``transports=None``: python-socketio's default, polling then the upgrade)."""
        if client is None:
            client = self.new()
        for event, fn in (handlers or {}).items():
            client.on(event, fn)
        connect_options.setdefault("wait_timeout", TIMEOUT)
        await client.connect(
            url, transports=list(transports) if transports is not None else None,
            **connect_options,
        )
        return client

    async def sio(
        self,
        url: str,
        namespaces: Sequence[str] = ("/",),
        *,
        transports: Sequence[str] | None = ("websocket",),
        auth: Any = None,
        connect: bool = True,
    ) -> SioClient:
        """A recording client, connected to ``namespaces`` unless ``connect`` is False."""
        client = SioClient(namespaces)
        self._made.append(client)
        if connect:
            await client.connect(url, transports, auth)
        return client

    async def refused(self, url: str, nsp: str, auth: Any = None) -> SioClient:
        """A recording client whose connection to ``nsp`` must be refused."""
        client = await self.sio(url, [nsp], connect=False)
        try:
            await client.connect(url, auth=auth)
        except socketio.exceptions.ConnectionError:
            pass
        else:
            raise AssertionError(f"{nsp}: the connection was accepted")
        return client

    async def raw(
        self,
        url: str,
        namespaces: str | Iterable[str] | None = "/",
        *,
        query: str = "",
        **headers: str,
    ) -> RawClient:
        """A raw client that joined ``namespaces`` one after the other (None: none)."""
        client = await RawClient.open(url, query, **headers)
        self._made.append(client)
        for nsp in [namespaces] if isinstance(namespaces, str) else namespaces or ():
            await client.connect(nsp)
        return client

    async def close(self) -> None:
        for client in reversed(self._made):
            if isinstance(client, socketio.AsyncClient):
                try:
                    await asyncio.wait_for(client.disconnect(), TIMEOUT)
                except Exception:
                    pass
            else:
                await client.close()
        self._made.clear()


Connect = Callable[..., Awaitable[socketio.AsyncClient]]


@asynccontextmanager
async def sio_clients() -> AsyncIterator[Connect]:
    """``connect(url, handlers={...}, **connect_kwargs)`` makes a python-socketio client on
    one shared HTTP session and connects it (python-socketio's default transports unless
    ``transports`` is given); every client is disconnected and the session closed at the end."""
    clients = Clients()
    http = aiohttp.ClientSession()

    async def connect(url: str, *, transports: Sequence[str] | None = None,
                      **kwargs: Any) -> socketio.AsyncClient:
        return await clients.connect(url, clients.new(http_session=http), transports=transports,
                                     **kwargs)

    try:
        yield connect
    finally:
        await clients.close()
        await http.close()


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
